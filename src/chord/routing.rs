//! Recursive routing, hop by hop, each hop acknowledged; and Chord's own
//! lookups, which ride on the same hops.

use std::net::SocketAddr;

use super::{
    Chord, Event, Found, LookupPurpose, NextHop, Phase, Request, RouteError, Time, Transmit,
};
use crate::id::Id;
use crate::wire::{Body, Message, NodeRef, RoutedMessage};

impl Chord {
    /// Sends a routed message one hop, to `next`, and keeps it until `next`
    /// acknowledges. If it never does, `next` counts as failed and the message
    /// is routed again: a lookup here, an application message through
    /// [`Event::Reroute`] (or [`Event::Undeliverable`] for a direct send).
    pub fn send_routed(&mut self, now: Time, msg: RoutedMessage, next: NodeRef, to_root: bool) {
        if next.id == self.table.me().id {
            // Routing to ourselves: hand it straight back up.
            self.events.push_back(Event::Routed {
                from: next,
                to_root: true,
                msg,
            });
            return;
        }
        self.send_hop_attempt(now, msg, (next.addr, Some(next.id)), to_root, 0);
    }

    pub(super) fn send_hop_attempt(
        &mut self,
        now: Time,
        msg: RoutedMessage,
        (to, id): (SocketAddr, Option<Id>),
        to_root: bool,
        attempt: u32,
    ) {
        // The sender chose `ttl`; this node's own limit caps it, so a message
        // claiming a huge one cannot circle for long.
        if msg.hops >= msg.ttl.min(self.cfg.ttl) {
            let hops = msg.hops;
            self.give_up(msg, RouteError::TtlExpired(hops));
            return;
        }
        let hop = self.fresh_req();
        let mut wire_msg = msg.clone();
        wire_msg.hops += 1;
        self.wait_for_id(
            hop,
            now + self.cfg.hop_timeout,
            Request::Hop {
                to,
                id,
                to_root,
                msg,
                attempt,
            },
        );
        self.transmits.push_back(Transmit {
            to,
            id,
            msg: Message::Route {
                hop,
                to_root,
                msg: wire_msg,
            },
        });
    }

    /// A routed message arrived (already acknowledged).
    pub(super) fn on_route(&mut self, now: Time, from: NodeRef, to_root: bool, msg: RoutedMessage) {
        match msg.body {
            Body::Lookup { .. } => self.route_lookup(now, msg, to_root, Some(from)),
            Body::App(_) => self.events.push_back(Event::Routed { from, to_root, msg }),
        }
    }

    /// Routes a message again after its hop failed.
    pub(super) fn reroute(&mut self, now: Time, msg: RoutedMessage) {
        match msg.body {
            Body::Lookup { req, .. } => {
                let own_join = msg.source.id == self.table.me().id
                    && matches!(
                        self.requests.get(&req),
                        Some(Request::Lookup {
                            purpose: LookupPurpose::Join,
                            ..
                        })
                    );
                // A failed join hop is retried by the join's own timeout.
                if !own_join {
                    self.route_lookup(now, msg, false, None);
                }
            }
            Body::App(_) if msg.direct => {
                let addr = msg.source.addr;
                self.give_up(msg, RouteError::PeerFailed(addr));
            }
            Body::App(_) => self.events.push_back(Event::Reroute { msg }),
        }
    }

    fn give_up(&mut self, msg: RoutedMessage, error: RouteError) {
        match msg.body {
            Body::Lookup { .. } => {} // the source's lookup timeout reports it
            Body::App(_) => self.events.push_back(Event::Undeliverable { msg, error }),
        }
    }

    pub(super) fn route_lookup(
        &mut self,
        now: Time,
        msg: RoutedMessage,
        to_root: bool,
        from: Option<NodeRef>,
    ) {
        let Body::Lookup { req, user } = msg.body else {
            return;
        };
        if self.phase != Phase::Joined {
            return; // not part of a ring yet: the source will time out and retry
        }
        match self.table.next_hop(&msg.key, to_root, from.as_ref()) {
            NextHop::Local => {
                let me = self.table.me();
                if msg.source.id == me.id {
                    self.on_found_root(now, req, me, msg.hops);
                } else {
                    let answer = Message::FoundRoot {
                        req,
                        root: me,
                        hops: msg.hops,
                        user,
                    };
                    // To the source as the message names it: the transport
                    // sends only if the key there gives the source's id.
                    self.transmits
                        .push_back(Transmit::to_node(msg.source, answer));
                }
            }
            NextHop::Forward { node, to_root } => {
                self.send_hop_attempt(now, msg, (node.addr, Some(node.id)), to_root, 0)
            }
        }
    }

    pub(super) fn start_lookup(&mut self, now: Time, key: Id, purpose: LookupPurpose) -> u64 {
        let req = self.fresh_req();
        self.wait_for_id(
            req,
            now + self.cfg.lookup_timeout,
            Request::Lookup {
                key,
                purpose,
                attempt: 0,
            },
        );
        let msg = self.lookup_message(key, req, purpose == LookupPurpose::User);
        self.route_lookup(now, msg, false, None);
        req
    }

    pub(super) fn on_found_root(&mut self, now: Time, req: u64, root: NodeRef, hops: u32) {
        let Some(Request::Lookup { key, purpose, .. }) = self.requests.get(&req).cloned() else {
            return;
        };
        self.requests.remove(&req);
        match purpose {
            LookupPurpose::Join => self.joined_at(now, root),
            LookupPurpose::Finger(i) => self.finger_found(i, root),
            LookupPurpose::User => self.events.push_back(Event::LookupDone {
                req,
                key,
                result: Ok(Found { root, hops }),
            }),
        }
    }
}
