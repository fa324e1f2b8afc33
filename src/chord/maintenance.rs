//! Keeping the ring correct: stabilize and notify, fix_fingers, the
//! predecessor check, failures and graceful leaves (Chord paper §4–5).

use std::net::SocketAddr;

use super::timers::Timer;
use super::{Chord, LookupPurpose, Phase, Request};
use crate::id::ID_BITS;
use crate::routing::Event;
use crate::time::Time;
use crate::wire::{Message, NodeRef};

impl Chord {
    /// Asks the successor for its predecessor and successor list.
    pub(super) fn stabilize(&mut self, now: Time) {
        self.timers
            .set(Timer::Stabilize, now + self.cfg.stabilize_every);
        self.dead.retain(|_, until| *until > now);
        if self.table.successors().is_empty() {
            // Alone, but someone notified us: a two-node ring.
            if let Some(p) = self.table.predecessor() {
                self.table.set_successors([p], &[], |_| false);
                self.transmits
                    .push_back(super::Transmit::to_node(p, Message::Notify));
            }
            return;
        }
        let already_asking = self
            .requests
            .values()
            .any(|r| matches!(r, Request::Stabilize { .. }));
        if !already_asking {
            let succ = self.table.successor();
            self.ask_neighbors(now, succ);
        }
    }

    pub(super) fn ask_neighbors(&mut self, now: Time, to: NodeRef) {
        let req = self.wait_for(now, self.cfg.rpc_timeout, Request::Stabilize { to });
        self.transmits
            .push_back(super::Transmit::to_node(to, Message::GetNeighbors { req }));
    }

    /// The successor answered stabilize.
    pub(super) fn on_neighbors(
        &mut self,
        now: Time,
        from: NodeRef,
        req: u64,
        predecessor: Option<NodeRef>,
        successors: &[NodeRef],
    ) {
        match self.requests.get(&req) {
            Some(Request::Stabilize { to }) if to.addr == from.addr => {}
            _ => return,
        }
        self.requests.remove(&req);
        let me = self.table.me();
        let dead = self.dead.clone();
        let skip = |n: &NodeRef| dead.contains_key(&n.addr);
        let closer =
            predecessor.filter(|p| p.id.in_open(&me.id, &from.id) && !skip(p) && p.id != me.id);
        match closer {
            Some(p) => {
                // A node joined between us and our successor: it is our new
                // successor. Ask it right away, which also checks it is alive.
                self.table.set_successors([p, from], successors, skip);
                self.transmits
                    .push_back(super::Transmit::to_node(p, Message::Notify));
                self.ask_neighbors(now, p);
            }
            None => {
                self.table.set_successors([from], successors, skip);
                self.transmits
                    .push_back(super::Transmit::to_node(from, Message::Notify));
                if self.phase == Phase::Admitting {
                    self.admission(now, from, predecessor);
                }
            }
        }
    }

    /// `from` thinks it might be our predecessor.
    pub(super) fn on_notify(&mut self, now: Time, from: NodeRef) {
        if self.is_dead(&from.addr) {
            // It is back: a notify is proof of life.
            self.dead.remove(&from.addr);
        }
        let me = self.table.me();
        let succ = self.table.successor();
        if self.has_place() && from.id.in_open(&me.id, &succ.id) {
            // A node between us and our successor (a newcomer told of us by
            // its successor): check it now rather than at the next stabilize,
            // so keys stop going past it. It is not our predecessor.
            self.ask_neighbors(now, from);
            return;
        }
        match self.table.predecessor() {
            Some(p) if p.addr == from.addr => {}
            Some(p) if !from.id.in_open(&p.id, &me.id) => {
                // A node behind our predecessor takes us for its successor:
                // it has seen our predecessor fail. Keep it as the next
                // predecessor and check the current one now, so the gap
                // closes in one timeout, not at its next stabilize.
                self.pred_candidate = Some(from);
                self.ping(now, p);
            }
            _ => {
                self.pred_candidate = None;
                self.table.set_predecessor(Some(from));
            }
        }
        if self.table.successors().is_empty() {
            self.table.set_successors([from], &[], |_| false);
        }
    }

    pub(super) fn check_predecessor(&mut self, now: Time) {
        self.timers.set(
            Timer::CheckPredecessor,
            now + self.cfg.check_predecessor_every,
        );
        // Both neighbours, so a failure is seen within one period and a
        // timeout on either side, not at the next stabilize.
        let succ = self.table.successors().first().copied();
        for n in self.table.predecessor().into_iter().chain(succ) {
            self.ping(now, n);
        }
    }

    /// Checks that `n` is alive, unless a check is already under way.
    fn ping(&mut self, now: Time, n: NodeRef) {
        let pinging = self
            .requests
            .values()
            .any(|r| matches!(r, Request::Ping { to } if to.addr == n.addr));
        if !pinging {
            let req = self.wait_for(now, self.cfg.rpc_timeout, Request::Ping { to: n });
            self.transmits
                .push_back(super::Transmit::to_node(n, Message::Ping { req }));
        }
    }

    /// Refreshes the next finger that a lookup is needed for. Fingers whose
    /// start lies before the successor are the successor, no lookup needed.
    pub(super) fn fix_fingers(&mut self, now: Time) {
        self.timers
            .set(Timer::FixFingers, now + self.cfg.fix_fingers_every);
        if self.table.successors().is_empty() {
            return;
        }
        let me = self.table.me();
        let succ = self.table.successor();
        // Finger i starts at me + 2^i, inside (me, succ] exactly when
        // 2^i <= d(me, succ): those fingers are the successor, no lookup.
        let covered = me.id.distance_to(&succ.id).bit_length(); // fingers 0..covered
        for i in 0..covered.min(ID_BITS) {
            self.table.set_finger(i, Some(succ));
        }
        if self.next_finger < covered {
            self.next_finger = covered % ID_BITS;
        }
        if covered >= ID_BITS {
            return;
        }
        let i = self.next_finger;
        self.next_finger = (i + 1) % ID_BITS;
        self.start_lookup(now, me.id.add_pow2(i), LookupPurpose::Finger(i));
    }

    /// A finger lookup came back: finger `i` and every later finger whose
    /// start the root also covers.
    pub(super) fn finger_found(&mut self, i: usize, root: NodeRef) {
        let me = self.table.me();
        if root.id == me.id {
            return;
        }
        let reach = me.id.distance_to(&root.id);
        let mut j = i;
        while j < ID_BITS && me.id.distance_to(&me.id.add_pow2(j)) <= reach {
            self.table.set_finger(j, Some(root));
            j += 1;
        }
        if j > i + 1 {
            self.next_finger = j % ID_BITS;
        }
    }

    /// Forgets a failed peer and re-routes whatever was on its way to it.
    pub(super) fn peer_failed(&mut self, now: Time, addr: SocketAddr) {
        if matches!(self.phase, Phase::Joining { bootstrap, .. } if bootstrap == addr) {
            // The transport could not reach the bootstrap node (connection
            // refused, say): this join attempt has failed now, not at its
            // deadline.
            let join: Vec<u64> = self
                .requests
                .iter()
                .filter(|(_, r)| match r {
                    Request::Lookup { purpose, .. } => *purpose == LookupPurpose::Join,
                    // The join lookup's hop to the bootstrap goes with it.
                    Request::Hop { to, .. } => *to == addr,
                    _ => false,
                })
                .map(|(id, _)| *id)
                .collect();
            let had_lookup = join
                .iter()
                .any(|id| matches!(self.requests.remove(id), Some(Request::Lookup { .. })));
            if had_lookup {
                self.join_attempt_failed(now, "cannot reach");
                return;
            }
        }
        self.dead.insert(addr, now + self.cfg.dead_memory);
        self.remember(now, addr);
        let lost_pred = self.table.predecessor().is_some_and(|p| p.addr == addr);
        self.table.remove(addr);
        if let Some(c) = self.pred_candidate.take().filter(|c| c.addr != addr) {
            if lost_pred && !self.is_dead(&c.addr) {
                self.table.set_predecessor(Some(c));
            } else {
                self.pred_candidate = Some(c);
            }
        }
        let lost: Vec<u64> = self
            .requests
            .iter()
            .filter(|(_, r)| match r {
                Request::Hop { to, .. } => *to == addr,
                Request::Stabilize { to } | Request::Ping { to } => to.addr == addr,
                Request::Lookup { .. } => false,
            })
            .map(|(id, _)| *id)
            .collect();
        for id in lost {
            if let Some(Request::Hop { msg, .. }) = self.requests.remove(&id) {
                self.reroute(now, msg);
            }
        }
        if self.table.successors().is_empty() {
            // Every successor is gone: fall back on the closest finger, or the
            // predecessor, and let stabilize rebuild the list from there.
            let me = self.table.me();
            let fallback = self
                .table
                .known_nodes()
                .into_iter()
                .min_by_key(|n| me.id.distance_to(&n.id));
            if let Some(n) = fallback {
                self.table.set_successors([n], &[], |_| false);
            }
        }
        if self.has_place() {
            // Repair the successor list now rather than at the next tick.
            self.timers.set(Timer::Stabilize, now);
        }
    }

    /// A neighbour leaves gracefully and handed over its neighbourhood.
    pub(super) fn on_leaving(
        &mut self,
        now: Time,
        from: NodeRef,
        predecessor: Option<NodeRef>,
        successors: &[NodeRef],
    ) {
        let me = self.table.me();
        let was_successor = self.table.successor().addr == from.addr;
        let was_predecessor = self
            .table
            .predecessor()
            .is_some_and(|p| p.addr == from.addr);
        // Same as a failure for our tables and in-flight messages, but we
        // already know who closes the gap.
        self.peer_failed(now, from.addr);
        let dead = self.dead.clone();
        let skip = |n: &NodeRef| dead.contains_key(&n.addr);
        if was_successor {
            let mine = self.table.successors().to_vec();
            self.table.set_successors(mine, successors, skip);
            let succ = self.table.successor();
            if succ.id != me.id {
                self.transmits
                    .push_back(super::Transmit::to_node(succ, Message::Notify));
            }
        }
        if was_predecessor {
            let p = predecessor.filter(|p| p.id != me.id && !skip(p));
            self.table.set_predecessor(p);
        }
    }

    /// A request's deadline passed without an answer.
    pub(super) fn request_expired(&mut self, now: Time, id: u64, req: Request) {
        match req {
            Request::Stabilize { to } | Request::Ping { to } => self.peer_failed(now, to.addr),
            Request::Hop {
                to,
                id: to_id,
                to_root,
                msg,
                attempt,
            } => {
                if attempt + 1 < self.cfg.hop_attempts {
                    self.send_hop_attempt(now, msg, (to, to_id), to_root, attempt + 1);
                } else if self.probe_unanswered(&msg) {
                    // A remembered peer that is still gone: nothing to repair.
                } else {
                    // Puts this hop back before failing the peer, which
                    // re-routes every message that was on its way there.
                    self.requests.insert(
                        id,
                        Request::Hop {
                            to,
                            id: to_id,
                            to_root,
                            msg,
                            attempt,
                        },
                    );
                    self.peer_failed(now, to);
                }
            }
            Request::Lookup {
                key,
                purpose,
                attempt,
            } => match purpose {
                LookupPurpose::Join => self.join_attempt_failed(now, "no answer from"),
                LookupPurpose::Finger(_) | LookupPurpose::Merge => {}
                // The answer (or a hop's ack) may have been lost: ask again.
                LookupPurpose::User if attempt + 1 < self.cfg.lookup_attempts => {
                    let next = Request::Lookup {
                        key,
                        purpose,
                        attempt: attempt + 1,
                    };
                    self.wait_for_id(id, now + self.cfg.lookup_timeout, next);
                    let msg = self.lookup_message(key, id, true);
                    self.route_lookup(now, msg, false, None);
                }
                LookupPurpose::User => self.events.push_back(Event::LookupDone {
                    req: id,
                    key,
                    result: Err(super::RouteError::Timeout),
                }),
            },
        }
    }
}
