//! An in-memory network with a virtual clock: the second driver of the
//! sans-IO core, for tests and for `peerlet sim`.
//!
//! Every node is a [`Kbr`] state machine. Messages are handed over as values
//! after a per-link latency (fixed for each pair, so links stay FIFO like TCP)
//! and may be lost with a set probability. A crashed node silently drops what
//! it is sent: its peers notice by timeouts, as over a real network.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::oracle::Oracle;
use super::rng::Rng;
use crate::chord::Config;
use crate::id::{AppId, Id, ID_BITS};
use crate::kbr::core::{CoreKind, RoutingCore};
use crate::kbr::{Application, Kbr, KbrEvent};
use crate::routing::{Found, RouteError};
use crate::time::Time;
use crate::wire::{Body, Message, NodeRef};

/// How the virtual network behaves.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub seed: u64,
    /// One-way latency range; each pair of nodes gets a fixed value in it.
    pub latency: (Duration, Duration),
    /// Probability that a message is lost.
    pub loss: f64,
    /// Which routing core the nodes run, and Chord's settings.
    pub core: CoreKind,
    pub chord: Config,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            seed: 1,
            latency: (Duration::from_millis(5), Duration::from_millis(50)),
            loss: 0.0,
            core: CoreKind::default(),
            chord: Config::default(),
        }
    }
}

/// One simulated node.
pub struct SimNode {
    pub kbr: Kbr,
    pub alive: bool,
    scheduled: Option<Time>,
}

// Sizes differ, but requests live in one map and are short-lived: no boxing.
#[allow(clippy::large_enum_variant)]
enum Pending {
    Deliver {
        to: usize,
        from: NodeRef,
        msg: Message,
    },
    Timer {
        node: usize,
    },
}

/// Counters of what crossed the network.
#[derive(Clone, Debug, Default)]
pub struct NetStats {
    pub messages: u64,
    pub maintenance: u64,
    /// Hops of application messages (routed or sent straight to a node).
    pub app_hops: u64,
    /// Hop acknowledgements, whatever the message they acknowledge.
    pub acks: u64,
    pub lost: u64,
    pub to_dead: u64,
    /// Messages dropped because sender and receiver were cut apart.
    pub cut: u64,
    /// Bytes of every frame sent (length prefix + CBOR, as the TCP
    /// transport frames them; TCP/IP headers not included).
    pub bytes: u64,
    /// Bytes of Chord's upkeep: maintenance messages and the acks of their
    /// hops (a finger lookup's hops are acked like any other).
    pub maintenance_bytes: u64,
}

/// The virtual network. See the module docs.
pub struct SimNet {
    cfg: SimConfig,
    now: Time,
    rng: Rng,
    nodes: Vec<SimNode>,
    by_addr: HashMap<SocketAddr, usize>,
    /// Each node's side of a partition; all 0 when the network is whole.
    group: Vec<u32>,
    queue: BinaryHeap<Reverse<(Time, u64, usize)>>,
    pending: HashMap<u64, Pending>,
    seq: u64,
    /// Hops of maintenance lookups not yet acknowledged, so their acks
    /// count as upkeep: (receiver, hop).
    maintenance_hops: std::collections::HashSet<(SocketAddr, u64)>,
    /// Events the nodes reported, oldest first: (node, time, event).
    pub events: Vec<(usize, Time, KbrEvent)>,
    pub stats: NetStats,
}

impl SimNet {
    pub fn new(cfg: SimConfig) -> SimNet {
        SimNet {
            rng: Rng::new(cfg.seed),
            cfg,
            now: Time::ZERO,
            nodes: Vec::new(),
            by_addr: HashMap::new(),
            group: Vec::new(),
            queue: BinaryHeap::new(),
            pending: HashMap::new(),
            seq: 0,
            maintenance_hops: Default::default(),
            events: Vec::new(),
            stats: NetStats::default(),
        }
    }

    pub fn now(&self) -> Time {
        self.now
    }

    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn node(&self, i: usize) -> &SimNode {
        &self.nodes[i]
    }

    pub fn me(&self, i: usize) -> NodeRef {
        self.nodes[i].kbr.chord().me()
    }

    /// Loopback-range addresses, one per node; nothing is ever sent to them.
    fn addr_for(i: usize) -> SocketAddr {
        let n = i as u32 + 1;
        let ip = Ipv4Addr::new(127, (n >> 16) as u8, (n >> 8) as u8, n as u8);
        SocketAddr::from((ip, 7000 + (n >> 24) as u16))
    }

    /// Adds a node with id `id` that is not yet part of any ring.
    pub fn add_node(&mut self, id: Id) -> usize {
        let i = self.nodes.len();
        let me = NodeRef {
            id,
            addr: Self::addr_for(i),
        };
        let secret = sim_secret(self.cfg.seed, &me);
        let kbr = Kbr::new(RoutingCore::new(self.cfg.core, me, &self.cfg.chord, secret));
        self.nodes.push(SimNode {
            kbr,
            alive: true,
            scheduled: None,
        });
        self.by_addr.insert(me.addr, i);
        self.group.push(0);
        i
    }

    /// Cuts the network: nodes in different `groups` (and nodes in none,
    /// which form one more) no longer reach each other; messages between
    /// them, in flight ones too, are dropped. A node that crashes keeps its
    /// side.
    pub fn partition(&mut self, groups: &[Vec<usize>]) {
        self.group.iter_mut().for_each(|g| *g = 0);
        for (k, members) in groups.iter().enumerate() {
            for &i in members {
                self.group[i] = k as u32 + 1;
            }
        }
    }

    /// Makes the network whole again.
    pub fn heal(&mut self) {
        self.group.iter_mut().for_each(|g| *g = 0);
    }

    /// Does every live node in `nodes` have the successor and predecessor
    /// that the oracle of just those nodes says (as one ring of its own)?
    pub fn is_converged_among(&self, nodes: &[usize]) -> bool {
        let oracle = Oracle::new(nodes.iter().map(|&i| self.me(i)).collect());
        nodes.iter().all(|&i| {
            let t = self.nodes[i].kbr.chord().table();
            let me = t.me();
            let want_succ = oracle
                .successors_of(&me.id, 1)
                .first()
                .copied()
                .unwrap_or(me);
            t.successor().id == want_succ.id
                && t.predecessor().map(|p| p.id) == oracle.predecessor_of(&me.id).map(|p| p.id)
        })
    }

    pub fn register_app(&mut self, i: usize, app: AppId, handler: Box<dyn Application>) {
        self.nodes[i].kbr.register(app, handler);
    }

    /// Runs `f` on node `i`'s KBR layer (e.g. to route through its API) and
    /// then lets the node act on what `f` queued.
    pub fn with_node<R>(&mut self, i: usize, f: impl FnOnce(&mut Kbr, Time) -> R) -> R {
        let now = self.now;
        let out = f(&mut self.nodes[i].kbr, now);
        self.after_handle(i);
        out
    }

    /// Node `i` starts a new ring.
    pub fn create(&mut self, i: usize) {
        self.with_node(i, |k, now| k.create(now));
    }

    /// Node `i` joins through node `via`.
    pub fn join(&mut self, i: usize, via: usize) {
        let addr = self.me(via).addr;
        self.with_node(i, |k, now| k.join(now, addr));
    }

    /// Node `i` stops at once, telling nobody.
    pub fn crash(&mut self, i: usize) {
        self.nodes[i].alive = false;
    }

    /// Node `i` leaves gracefully.
    pub fn leave(&mut self, i: usize) {
        self.with_node(i, |k, now| k.leave(now));
        self.nodes[i].alive = false;
    }

    /// The live nodes that are part of a ring.
    pub fn live(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].alive && self.nodes[i].kbr.chord().is_joined())
            .collect()
    }

    pub fn oracle(&self) -> Oracle {
        Oracle::new(self.live().into_iter().map(|i| self.me(i)).collect())
    }

    /// Does every live node have the oracle's successor and predecessor?
    pub fn is_converged(&self) -> bool {
        self.is_converged_among(&self.live())
    }

    fn push(&mut self, at: Time, what: Pending) {
        self.seq += 1;
        self.pending.insert(self.seq, what);
        self.queue.push(Reverse((at, self.seq, 0)));
    }

    fn latency(&self, a: SocketAddr, b: SocketAddr) -> Duration {
        let (lo, hi) = self.cfg.latency;
        let span = hi.saturating_sub(lo).as_micros() as u64;
        if span == 0 {
            return lo;
        }
        let (x, y) = if a < b { (a, b) } else { (b, a) };
        let mut h = Rng::new(self.cfg.seed ^ hash_addr(x).rotate_left(17) ^ hash_addr(y));
        lo + Duration::from_micros(h.below(span))
    }

    /// Sends what node `i` wants sent, collects its events, reschedules its timer.
    fn after_handle(&mut self, i: usize) {
        let from = self.me(i);
        while let Some(t) = self.nodes[i].kbr.poll_transmit() {
            self.stats.messages += 1;
            let bytes = frame_bytes(&t.msg);
            self.stats.bytes += bytes;
            match &t.msg {
                m if m.is_maintenance() => {
                    self.stats.maintenance += 1;
                    self.stats.maintenance_bytes += bytes;
                    if let Message::Route { hop, .. } = m {
                        self.maintenance_hops.insert((t.to, *hop));
                    }
                }
                Message::Route { msg, .. } if matches!(msg.body, Body::App(_)) => {
                    self.stats.app_hops += 1
                }
                Message::RouteAck { hop } => {
                    self.stats.acks += 1;
                    if self.maintenance_hops.remove(&(from.addr, *hop)) {
                        self.stats.maintenance_bytes += bytes;
                    }
                }
                _ => {}
            }
            if self.cfg.loss > 0.0 && self.rng.unit() < self.cfg.loss {
                self.stats.lost += 1;
                continue;
            }
            let Some(&to) = self.by_addr.get(&t.to) else {
                continue;
            };
            let at = self.now + self.latency(from.addr, t.to);
            self.push(
                at,
                Pending::Deliver {
                    to,
                    from,
                    msg: t.msg,
                },
            );
        }
        while let Some(ev) = self.nodes[i].kbr.poll_event() {
            self.events.push((i, self.now, ev));
        }
        if !self.nodes[i].alive {
            return;
        }
        if let Some(t) = self.nodes[i].kbr.poll_timeout() {
            if self.nodes[i].scheduled.is_none_or(|s| t < s) {
                self.nodes[i].scheduled = Some(t);
                self.push(t.max(self.now), Pending::Timer { node: i });
            }
        }
    }

    /// Processes the next event; `false` when there is none before `until`.
    pub fn step(&mut self, until: Time) -> bool {
        let Some(Reverse((at, seq, _))) = self.queue.peek().copied() else {
            return false;
        };
        if at > until {
            return false;
        }
        self.queue.pop();
        self.now = self.now.max(at);
        let Some(what) = self.pending.remove(&seq) else {
            return true;
        };
        match what {
            Pending::Deliver { to, from, msg } => {
                if !self.nodes[to].alive {
                    self.stats.to_dead += 1;
                    return true;
                }
                let sender = self.by_addr.get(&from.addr).copied();
                if sender.is_some_and(|f| self.group[f] != self.group[to]) {
                    self.stats.cut += 1;
                    return true;
                }
                self.nodes[to].kbr.handle_message(self.now, from, msg);
                self.after_handle(to);
            }
            Pending::Timer { node } => {
                if self.nodes[node].scheduled != Some(at) || !self.nodes[node].alive {
                    return true;
                }
                self.nodes[node].scheduled = None;
                self.nodes[node].kbr.handle_timeout(self.now);
                self.after_handle(node);
            }
        }
        true
    }

    /// Runs the network until virtual time `until`.
    pub fn run_until(&mut self, until: Time) {
        while self.step(until) {}
        self.now = self.now.max(until);
    }

    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    /// Runs until `done` holds (checked every `every` of virtual time) or
    /// `limit` of virtual time passed. Returns whether `done` held.
    pub fn run_while_not(
        &mut self,
        limit: Duration,
        every: Duration,
        mut done: impl FnMut(&SimNet) -> bool,
    ) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if done(self) {
                return true;
            }
            self.run_for(every);
        }
        done(self)
    }

    /// Gives every node the state a converged ring would have: the oracle's
    /// predecessor, successor list and fingers.
    pub fn install_converged(&mut self) {
        let nodes: Vec<NodeRef> = (0..self.len()).map(|i| self.me(i)).collect();
        let oracle = Oracle::new(nodes.clone());
        let r = self.cfg.chord.successors;
        for (i, me) in nodes.iter().enumerate() {
            let pred = oracle.predecessor_of(&me.id);
            let succ = oracle.successors_of(&me.id, r);
            let fingers: Vec<(usize, NodeRef)> = (0..ID_BITS)
                .map(|bit| (bit, oracle.successor(&me.id.add_pow2(bit))))
                .filter(|(_, f)| f.id != me.id)
                .collect();
            self.with_node(i, |k, now| {
                k.chord_mut().install_state(now, pred, &succ, &fingers)
            });
        }
    }

    /// Starts a lookup for each `(from, key)` at once and runs the network
    /// until every one is answered (or timed out). Results in input order.
    pub fn lookups(&mut self, asks: &[(usize, Id)]) -> Vec<Result<Found, RouteError>> {
        let first = self.events.len();
        let mut waiting: HashMap<(usize, u64), usize> = HashMap::new();
        for (k, &(from, key)) in asks.iter().enumerate() {
            let req = self.with_node(from, |kbr, now| kbr.lookup(now, key));
            waiting.insert((from, req), k);
        }
        let mut out: Vec<Result<Found, RouteError>> = vec![Err(RouteError::Timeout); asks.len()];
        let limit = self.now + self.cfg.chord.lookup_deadline() + Duration::from_secs(1);
        // Scan only events that are new since the last look; take the
        // answers out at the end.
        let mut scanned = first;
        let mut answered: Vec<usize> = Vec::new();
        while !waiting.is_empty() {
            for (pos, (i, _, ev)) in self.events.iter().enumerate().skip(scanned) {
                if let KbrEvent::LookupDone { req, result, .. } = ev {
                    if let Some(k) = waiting.remove(&(*i, *req)) {
                        out[k] = result.clone();
                        answered.push(pos);
                    }
                }
            }
            scanned = self.events.len();
            if !waiting.is_empty() && !self.step(limit) {
                break;
            }
        }
        for pos in answered.into_iter().rev() {
            self.events.remove(pos);
        }
        out
    }

    /// Looks up `key` from node `from` and runs the network until the answer.
    pub fn lookup(&mut self, from: usize, key: Id) -> Result<Found, RouteError> {
        self.lookups(&[(from, key)]).remove(0)
    }
}

/// The size of `msg` framed as the TCP transport frames it.
fn frame_bytes(msg: &Message) -> u64 {
    crate::wire::encode_frame(msg, usize::MAX).map_or(0, |f| f.len() as u64)
}

fn hash_addr(a: SocketAddr) -> u64 {
    let ip = match a.ip() {
        std::net::IpAddr::V4(v4) => u32::from(v4) as u64,
        std::net::IpAddr::V6(v6) => u128::from(v6) as u64,
    };
    (ip << 16) ^ a.port() as u64
}

/// A simulated node's request-id secret: from the run's seed, so a run is
/// the same for the same seed.
fn sim_secret(seed: u64, me: &NodeRef) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::new()
        .chain_update(seed.to_be_bytes())
        .chain_update(me.id.0)
        .finalize()
        .into()
}
