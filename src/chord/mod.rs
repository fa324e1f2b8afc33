//! The Chord protocol as a sans-IO state machine.
//!
//! [`Chord`] owns one node's ring state and makes every protocol decision; it
//! has no sockets, no clock and no tasks. A driver feeds it events through the
//! `handle_*` methods, each taking the current [`Time`], and then drains what
//! it wants done:
//!
//! 1. `poll_transmit()` until `None`: messages to send;
//! 2. `poll_event()` until `None`: what the layer above must hear about;
//! 3. `poll_timeout()`: when to call `handle_timeout` next.
//!
//! The TCP node (`crate::node`) and the simulator (`crate::sim`) are two such
//! drivers, through the KBR layer (`crate::kbr`), which adds the application
//! upcalls. Routing is recursive: each hop is acknowledged by the next node,
//! and a hop that is not acknowledged in time marks that peer failed and the
//! message takes the next best route (another finger, then the successors).

mod config;
mod inspect;
mod join;
mod maintenance;
mod merge;
mod routing;
mod table;
mod timers;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;

pub use config::Config;
pub use table::RoutingTable;
use timers::{Timer, TimerTable};

use crate::id::Id;
use crate::routing::{Event, Found, NextHop, RouteError, Transmit};
use crate::time::Time;
use crate::wire::{Message, NodeRef, RoutedMessage};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Created; neither a new ring nor joined yet.
    Idle,
    Joining {
        bootstrap: SocketAddr,
        attempt: u32,
    },
    /// Found its successor, learned its predecessor from it and told both;
    /// routes and answers for its keys, but is not a member until the
    /// successor names it as predecessor (ownership has then moved).
    Admitting,
    Joined,
    Left,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LookupPurpose {
    Join,
    Finger(usize),
    /// A probe of a remembered peer (see `merge.rs`).
    Merge,
    User,
}

/// Something this node waits for, with a deadline.
#[derive(Clone, Debug)]
// Sizes differ, but requests live in one map and are short-lived: no boxing.
#[allow(clippy::large_enum_variant)]
enum Request {
    Stabilize {
        to: NodeRef,
    },
    Ping {
        to: NodeRef,
    },
    Hop {
        to: SocketAddr,
        /// The node expected at `to` (`None`: a bootstrap node).
        id: Option<Id>,
        to_root: bool,
        msg: RoutedMessage,
        attempt: u32,
    },
    Lookup {
        key: Id,
        purpose: LookupPurpose,
        attempt: u32,
    },
}

/// A routed message waiting for this node to know its predecessor.
#[derive(Clone, Debug)]
struct Parked {
    until: Time,
    from: NodeRef,
    msg: RoutedMessage,
}

/// One node's Chord state machine. See the module docs for the polling order.
pub struct Chord {
    cfg: Config,
    table: RoutingTable,
    phase: Phase,
    timers: TimerTable,
    requests: BTreeMap<u64, Request>,
    deadlines: BTreeSet<(Time, u64)>,
    /// Request ids: SHA-256 of a secret and a counter, so a peer that saw
    /// some cannot guess the next (and forge an answer to it).
    req_secret: [u8; 32],
    req_counter: u64,
    req_pool: Vec<u64>,
    next_finger: usize,
    dead: BTreeMap<SocketAddr, Time>,
    /// When each peer in the routing table last sent us anything (see
    /// [`Chord::liveness`]).
    heard: BTreeMap<SocketAddr, Time>,
    /// Messages sent here as to their root while this node knows no
    /// predecessor, so cannot tell which keys are its own: held until one
    /// notifies it, or until their deadline (see `must_park`).
    parked: Vec<Parked>,
    /// A node that notified us while our predecessor still answered for the
    /// stretch before us: the predecessor to take if that one fails.
    pred_candidate: Option<NodeRef>,
    /// Peers that left the view, and when: probed now and then, so rings
    /// that formed apart during a partition merge (see `merge.rs`).
    remembered: BTreeMap<SocketAddr, Time>,
    probe_cursor: Option<SocketAddr>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    reported_pred: Option<NodeRef>,
    reported_succ: Vec<NodeRef>,
    reported_version: u64,
}

impl Chord {
    /// A node `me` whose request ids come from `secret` (the node draws it
    /// from the operating system; the simulator from its seed).
    pub fn new(me: NodeRef, cfg: Config, secret: [u8; 32]) -> Chord {
        Chord {
            table: RoutingTable::new(me, cfg.successors),
            cfg,
            phase: Phase::Idle,
            timers: TimerTable::default(),
            requests: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            req_secret: secret,
            req_counter: 0,
            req_pool: Vec::new(),
            next_finger: 0,
            dead: BTreeMap::new(),
            heard: BTreeMap::new(),
            parked: Vec::new(),
            pred_candidate: None,
            remembered: BTreeMap::new(),
            probe_cursor: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            reported_pred: None,
            reported_succ: Vec::new(),
            reported_version: 0,
        }
    }

    pub fn me(&self) -> NodeRef {
        self.table.me()
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn table(&self) -> &RoutingTable {
        &self.table
    }

    /// Has this node a place in a ring (created one, or joined and been
    /// named predecessor by its successor)?
    pub fn is_joined(&self) -> bool {
        self.phase == Phase::Joined
    }

    /// Does this node take part in routing (joined, or being admitted)?
    fn has_place(&self) -> bool {
        matches!(self.phase, Phase::Joined | Phase::Admitting)
    }

    /// Starts a new ring with this node alone in it.
    pub fn create(&mut self, now: Time) {
        self.phase = Phase::Joined;
        self.arm_all(now);
    }

    /// Joins the ring that the node at `bootstrap` is part of.
    pub fn join(&mut self, now: Time, bootstrap: SocketAddr) {
        self.phase = Phase::Joining {
            bootstrap,
            attempt: 0,
        };
        self.send_join_lookup(now, bootstrap);
        self.arm_all(now);
    }

    /// Starts from a ring state computed elsewhere (the simulator's converged
    /// start, as in the Chord paper's static experiments).
    pub fn install_state(
        &mut self,
        now: Time,
        predecessor: Option<NodeRef>,
        successors: &[NodeRef],
        fingers: &[(usize, NodeRef)],
    ) {
        self.table.set_predecessor(predecessor);
        self.table
            .set_successors(successors.iter().copied(), &[], |_| false);
        for &(i, f) in fingers {
            self.table.set_finger(i, Some(f));
        }
        self.reported_pred = self.table.predecessor();
        self.reported_succ = self.table.successors().to_vec();
        self.phase = Phase::Joined;
        self.arm_all(now);
    }

    /// Leaves gracefully: tells the predecessor and successor, then stops.
    /// Drain `poll_transmit` once more before dropping the node.
    pub fn leave(&mut self, _now: Time) {
        let predecessor = self.table.predecessor();
        let successors = self.table.successors().to_vec();
        let mut told = BTreeSet::new();
        for n in predecessor.iter().chain(successors.first()) {
            if told.insert(n.addr) {
                let msg = Message::Leaving {
                    predecessor,
                    successors: successors.clone(),
                };
                self.transmits.push_back(Transmit::to_node(*n, msg));
            }
        }
        self.phase = Phase::Left;
        self.timers = TimerTable::default();
        self.requests.clear();
        self.deadlines.clear();
        self.parked.clear();
    }

    /// A new message id, unique for this node.
    pub fn new_message_id(&mut self) -> u64 {
        self.fresh_req()
    }

    /// Looks up the root of `key`; the answer comes as [`Event::LookupDone`]
    /// with the returned request id.
    pub fn lookup(&mut self, now: Time, key: Id) -> u64 {
        self.start_lookup(now, key, LookupPurpose::User)
    }

    /// The next hop for `key` (see [`RoutingTable::next_hop`]).
    pub fn next_hop(&self, key: &Id, claimed_root: bool, from: Option<&NodeRef>) -> NextHop {
        self.table.next_hop(key, claimed_root, from)
    }

    /// A message arrived from the peer `from` (as named in its hello).
    pub fn handle_message(&mut self, now: Time, from: NodeRef, msg: Message) {
        if self.phase == Phase::Left {
            return;
        }
        self.heard_from(now, from.addr);
        self.seen_alive(from.addr);
        match msg {
            Message::Hello { .. } => {}
            Message::Route { hop, to_root, msg } => {
                self.transmits
                    .push_back(Transmit::to_node(from, Message::RouteAck { hop }));
                self.on_route(now, from, to_root, msg);
            }
            // Answers count only from the node they were asked of.
            Message::RouteAck { hop } => {
                // (The join's first hop goes to a bootstrap node known by
                // address alone, which may call itself by another.)
                if matches!(self.requests.get(&hop),
                    Some(Request::Hop { to, id, .. }) if *to == from.addr || id.is_none())
                {
                    self.requests.remove(&hop);
                }
            }
            Message::FoundRoot {
                req, root, hops, ..
            } => {
                // The root answers for itself: nobody else may say where a
                // lookup ended.
                if root == from {
                    self.on_found_root(now, req, root, hops);
                }
            }
            Message::GetNeighbors { req } => {
                let reply = Message::Neighbors {
                    req,
                    predecessor: self.table.predecessor(),
                    successors: self.table.successors().to_vec(),
                };
                self.transmits.push_back(Transmit::to_node(from, reply));
            }
            Message::Neighbors {
                req,
                predecessor,
                successors,
            } => self.on_neighbors(now, from, req, predecessor, &successors),
            Message::Notify => self.on_notify(now, from),
            Message::Ping { req } => {
                self.transmits
                    .push_back(Transmit::to_node(from, Message::Pong { req }));
            }
            Message::Pong { req } => {
                if matches!(self.requests.get(&req), Some(Request::Ping { to }) if *to == from) {
                    self.requests.remove(&req);
                }
            }
            Message::Leaving {
                predecessor,
                successors,
            } => self.on_leaving(now, from, predecessor, &successors),
        }
        self.release_parked(now);
        self.report_neighbors();
    }

    /// Time has come for whatever `poll_timeout` announced (calling it early
    /// or late is harmless).
    pub fn handle_timeout(&mut self, now: Time) {
        for timer in self.timers.expire(now) {
            match timer {
                Timer::Stabilize => self.stabilize(now),
                Timer::CheckPredecessor => self.check_predecessor(now),
                Timer::FixFingers => self.fix_fingers(now),
                Timer::Probe => self.probe(now),
            }
        }
        while let Some(&(at, id)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(req) = self.requests.remove(&id) {
                self.request_expired(now, id, req);
            }
        }
        self.release_parked(now);
        self.report_neighbors();
    }

    /// The transport could not reach the peer at `addr` (connect refused,
    /// connection reset): treat it as failed now rather than at a timeout.
    pub fn handle_peer_failed(&mut self, now: Time, addr: SocketAddr) {
        if self.phase == Phase::Left {
            return;
        }
        self.peer_failed(now, addr);
        self.report_neighbors();
    }

    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When `handle_timeout` should be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Time> {
        let request = self.deadlines.first().map(|&(t, _)| t);
        let parked = self.parked.iter().map(|p| p.until).min();
        [self.timers.next(), request, parked]
            .into_iter()
            .flatten()
            .min()
    }

    fn fresh_req(&mut self) -> u64 {
        loop {
            if self.req_pool.is_empty() {
                use sha2::{Digest, Sha256};
                self.req_counter += 1;
                let digest = Sha256::new()
                    .chain_update(self.req_secret)
                    .chain_update(self.req_counter.to_be_bytes())
                    .finalize();
                for word in digest.chunks_exact(8) {
                    let id = u64::from_be_bytes(word.try_into().expect("8 bytes"));
                    self.req_pool.push(id | 1);
                }
            }
            let id = self.req_pool.pop().expect("refilled");
            if !self.requests.contains_key(&id) {
                return id;
            }
        }
    }

    fn wait_for(&mut self, now: Time, timeout: std::time::Duration, req: Request) -> u64 {
        let id = self.fresh_req();
        self.wait_for_id(id, now + timeout, req);
        id
    }

    fn wait_for_id(&mut self, id: u64, deadline: Time, req: Request) {
        self.requests.insert(id, req);
        self.deadlines.insert((deadline, id));
    }

    fn arm_all(&mut self, now: Time) {
        // Spread the first ticks a little by id so a simulated ring does not
        // stabilize in lockstep.
        let jitter = |period: std::time::Duration, salt: u64| {
            let frac = (self.table.me().id.high_u64() ^ salt) % 1000;
            period.mul_f64(frac as f64 / 1000.0)
        };
        let s = jitter(self.cfg.stabilize_every, 1);
        let p = jitter(self.cfg.check_predecessor_every, 2);
        let f = jitter(self.cfg.fix_fingers_every, 3);
        self.timers.set(Timer::Stabilize, now + s);
        self.timers.set(Timer::CheckPredecessor, now + p);
        self.timers.set(Timer::FixFingers, now + f);
        let m = jitter(self.cfg.probe_every, 4);
        self.timers.set(Timer::Probe, now + m);
    }

    fn is_dead(&self, addr: &SocketAddr) -> bool {
        self.dead.contains_key(addr)
    }

    /// Emits neighbour events for changes since the last report.
    fn report_neighbors(&mut self) {
        if self.table.neighbors_version() == self.reported_version {
            return;
        }
        self.reported_version = self.table.neighbors_version();
        if self.table.predecessor() == self.reported_pred
            && self.table.successors() == self.reported_succ.as_slice()
        {
            return;
        }
        let set = |pred: Option<NodeRef>, succ: &[NodeRef]| {
            let mut v: Vec<NodeRef> = pred.iter().chain(succ).copied().collect();
            v.sort_by_key(|n| n.id);
            v.dedup_by_key(|n| n.id);
            v
        };
        let old = set(self.reported_pred, &self.reported_succ);
        let new = set(self.table.predecessor(), self.table.successors());
        for n in &new {
            if old.binary_search_by_key(&n.id, |o| o.id).is_err() {
                self.events.push_back(Event::Neighbor {
                    node: *n,
                    joined: true,
                });
            }
        }
        for o in &old {
            if new.binary_search_by_key(&o.id, |n| n.id).is_err() {
                self.events.push_back(Event::Neighbor {
                    node: *o,
                    joined: false,
                });
            }
        }
        self.reported_pred = self.table.predecessor();
        self.reported_succ = self.table.successors().to_vec();
    }
}
