//! Partitions that heal: rings that lost sight of each other merge again.
//!
//! Chord's stabilize only follows pointers a node already has; two rings
//! that formed while the network was cut know nothing of each other once it
//! heals. So a node remembers the peers it lost (`peer_failed`) and now and
//! then asks one that is not in its view to look up the node's own id. An
//! answer from a ring that is not ours names our successor there; if it lies
//! between us and our successor, we take it (ask its neighbours, notify it)
//! and stabilize zips the two rings together. Why and what it costs:
//! docs/design.md §11.

use std::net::SocketAddr;

use super::timers::Timer;
use super::{Chord, LookupPurpose, Request};
use crate::time::Time;
use crate::wire::{Message, NodeRef, RoutedMessage};

impl Chord {
    /// Keeps `addr`, a peer that just left the view, to probe later. The
    /// oldest memory goes when `cfg.remembered` are kept.
    pub(super) fn remember(&mut self, now: Time, addr: SocketAddr) {
        if self.cfg.remembered == 0 || self.remembered.contains_key(&addr) {
            return;
        }
        if self.remembered.len() >= self.cfg.remembered {
            let oldest = self.remembered.iter().min_by_key(|(_, at)| **at);
            if let Some((&a, _)) = oldest {
                self.remembered.remove(&a);
            }
        }
        self.remembered.insert(addr, now);
    }

    /// A peer spoke to us: it is alive and reachable, so not one to probe
    /// and no longer one to ignore.
    pub(super) fn seen_alive(&mut self, addr: SocketAddr) {
        self.remembered.remove(&addr);
        self.dead.remove(&addr);
    }

    /// Timer::Probe: asks the next remembered peer outside the view (in
    /// turn, by address) to look up our own id.
    pub(super) fn probe(&mut self, now: Time) {
        self.timers.set(Timer::Probe, now + self.cfg.probe_every);
        if !self.has_place() || self.remembered.is_empty() {
            return;
        }
        let view: Vec<SocketAddr> = self.table.known_nodes().iter().map(|n| n.addr).collect();
        self.remembered.retain(|a, _| !view.contains(a));
        use std::ops::Bound::{Excluded, Unbounded};
        let after = self.probe_cursor.map_or(Unbounded, Excluded);
        let next = self
            .remembered
            .range((after, Unbounded))
            .next()
            .or_else(|| self.remembered.iter().next())
            .map(|(a, _)| *a);
        let Some(to) = next else {
            return;
        };
        self.probe_cursor = Some(to);
        let me = self.table.me();
        let req = self.fresh_req();
        let deadline = now + self.cfg.lookup_timeout;
        let purpose = LookupPurpose::Merge;
        self.wait_for_id(
            req,
            deadline,
            Request::Lookup {
                key: me.id,
                purpose,
                attempt: 0,
            },
        );
        let msg = self.lookup_message(me.id, req, false);
        // One try: a remembered peer is often gone for good.
        let last = self.cfg.hop_attempts.saturating_sub(1);
        self.send_hop_attempt(now, msg, (to, None), false, last);
    }

    /// Is `msg` our own probe, whose first hop was not acknowledged? Then it
    /// is dropped quietly: the peer is not in the view, there is nothing to
    /// repair, and no other route leads into a ring we do not know.
    pub(super) fn probe_unanswered(&mut self, msg: &RoutedMessage) -> bool {
        let crate::wire::Body::Lookup { req, .. } = msg.body else {
            return false;
        };
        let ours = msg.source.id == self.table.me().id
            && matches!(
                self.requests.get(&req),
                Some(Request::Lookup {
                    purpose: LookupPurpose::Merge,
                    ..
                })
            );
        if ours {
            self.requests.remove(&req);
        }
        ours
    }

    /// The probe's lookup ended at `root`: our successor in the ring the
    /// probed peer is part of. Between us and our successor, it is a node
    /// our ring does not know: take it as successor and tell it of us.
    pub(super) fn merge_found(&mut self, now: Time, root: NodeRef) {
        let me = self.table.me();
        let succ = self.table.successor();
        let closer = succ.id == me.id || root.id.in_open(&me.id, &succ.id);
        if root.id == me.id || !closer {
            return;
        }
        self.seen_alive(root.addr);
        let mine = self.table.successors().to_vec();
        self.table.set_successors([root], &mine, |_| false);
        self.transmits
            .push_back(super::Transmit::to_node(root, Message::Notify));
        self.ask_neighbors(now, root);
    }
}
