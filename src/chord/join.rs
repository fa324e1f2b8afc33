//! Joining a ring: the join lookup through a bootstrap node, its retries,
//! and the admission that makes a newcomer a member only once its
//! successor names it as predecessor (docs/design.md §11).

use std::net::SocketAddr;

use super::{Chord, LookupPurpose, Phase, Request};
use crate::id::Id;
use crate::routing::Event;
use crate::time::Time;
use crate::wire::{Message, NodeRef};

impl Chord {
    /// A newcomer's successor answered (see `Phase::Admitting`). Naming us
    /// its predecessor, it has handed our keys over: we are a member. Else
    /// it names the node before us, which becomes our predecessor and hears
    /// of us (so it need not wait for its next stabilize), and we ask again:
    /// the notify just sent arrives first (links are FIFO).
    pub(super) fn admission(&mut self, now: Time, succ: NodeRef, succ_pred: Option<NodeRef>) {
        let me = self.table.me();
        if succ_pred.is_some_and(|p| p.id == me.id) {
            self.phase = Phase::Joined;
            self.events.push_back(Event::Joined { successor: succ });
            return;
        }
        if let Some(p) = succ_pred.filter(|p| !self.is_dead(&p.addr)) {
            let pred = self.table.predecessor();
            if pred.is_none_or(|q| p.id.in_open(&q.id, &me.id)) {
                self.table.set_predecessor(Some(p));
            }
            self.transmits
                .push_back(super::Transmit::to_node(p, Message::Notify));
        }
        self.ask_neighbors(now, succ);
    }

    pub(super) fn send_join_lookup(&mut self, now: Time, bootstrap: SocketAddr) {
        let me = self.table.me();
        let req = self.fresh_req();
        let deadline = now + self.cfg.rpc_timeout.max(self.cfg.hop_timeout) * 2;
        self.wait_for_id(
            req,
            deadline,
            Request::Lookup {
                key: me.id,
                purpose: LookupPurpose::Join,
                attempt: 0,
            },
        );
        let msg = self.lookup_message(me.id, req, false);
        self.send_hop_attempt(now, msg, (bootstrap, None), false, self.cfg.hop_attempts);
    }

    /// One join attempt through the bootstrap node failed (`why`, followed
    /// by its address, says how); try again, or give up after the last.
    pub(super) fn join_attempt_failed(&mut self, now: Time, why: &str) {
        if let Phase::Joining { bootstrap, attempt } = self.phase {
            if attempt + 1 < self.cfg.join_attempts {
                self.phase = Phase::Joining {
                    bootstrap,
                    attempt: attempt + 1,
                };
                self.send_join_lookup(now, bootstrap);
            } else {
                self.phase = Phase::Idle;
                let reason = format!("{why} {bootstrap} after {} attempts", attempt + 1);
                self.events.push_back(Event::JoinFailed { reason });
            }
        }
    }

    /// The join lookup found our successor-to-be.
    pub(super) fn joined_at(&mut self, now: Time, root: NodeRef) {
        let Phase::Joining { bootstrap, attempt } = self.phase else {
            return;
        };
        if root.id == self.table.me().id {
            // Our own id is still in the ring (a stale entry of an earlier
            // run): wait for it to be evicted, then try again.
            self.phase = Phase::Joining { bootstrap, attempt };
            return;
        }
        self.table.set_successors([root], &[], |_| false);
        self.phase = Phase::Admitting;
        self.ask_neighbors(now, root);
    }

    pub(super) fn lookup_message(
        &mut self,
        key: Id,
        req: u64,
        user: bool,
    ) -> crate::wire::RoutedMessage {
        crate::wire::RoutedMessage {
            id: self.fresh_req(),
            key,
            source: self.table.me(),
            hops: 0,
            ttl: self.cfg.ttl,
            direct: false,
            body: crate::wire::Body::Lookup { req, user },
        }
    }
}
