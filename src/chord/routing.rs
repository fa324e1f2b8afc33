//! Recursive routing, hop by hop, each hop acknowledged; and Chord's own
//! lookups, which ride on the same hops.

use std::net::SocketAddr;

use super::{Chord, Event, Found, LookupPurpose, NextHop, Request, RouteError, Time, Transmit};
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
        if to_root && self.must_park() {
            let until = now + self.cfg.check_predecessor_every + self.cfg.rpc_timeout;
            let until = until.min(now + self.cfg.lookup_timeout / 2);
            self.parked.push(super::Parked { until, from, msg });
            return;
        }
        self.dispatch_routed(now, from, to_root, msg);
    }

    /// Sent here as to the key's root, a message can only be checked against
    /// this node's range, (predecessor, me]. Without a predecessor (it just
    /// failed; the node before it notifies us within a check period) the range
    /// is unknown, and delivering would answer for a stretch that may hold
    /// other nodes: such messages wait for the predecessor instead.
    fn must_park(&self) -> bool {
        self.has_place()
            && self.table.predecessor().is_none()
            && !self.table.successors().is_empty()
    }

    /// Routes again, now with a predecessor, the parked messages (or, past
    /// their deadline, as things stand: the node may well be their root).
    pub(super) fn release_parked(&mut self, now: Time) {
        if self.parked.is_empty() {
            return;
        }
        let all = !self.must_park();
        let (go, stay) = std::mem::take(&mut self.parked)
            .into_iter()
            .partition(|p| all || p.until <= now);
        self.parked = stay;
        for p in go {
            self.dispatch_routed(now, p.from, true, p.msg);
        }
    }

    fn dispatch_routed(&mut self, now: Time, from: NodeRef, to_root: bool, msg: RoutedMessage) {
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
                // A failed join hop is retried by the join's own timeout;
                // a probe is not retried at all (see `merge.rs`).
                if !own_join && !self.probe_unanswered(&msg) {
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
        if !self.has_place() {
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
            LookupPurpose::Merge => self.merge_found(now, root),
            LookupPurpose::User => self.events.push_back(Event::LookupDone {
                req,
                key,
                result: Ok(Found { root, hops }),
            }),
        }
    }
}
