//! `peerlet sim`: the Chord paper's experiments on the real core, in virtual
//! time: path length, simultaneous failures, lookups under churn.
//!
//! The ring starts converged (every node's predecessor, successor list and
//! fingers as an oracle would set them), as in the paper's static
//! experiments; then a fraction of nodes crashes at once (`fail`), nodes join
//! and crash at a rate (`churn`, through the real join protocol), and lookups
//! are issued from random live nodes for random keys, spread over `duration`
//! seconds after `settle` seconds. Each lookup's root is checked against the
//! oracle ring of live nodes at the moment the answer arrives.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::net::{SimConfig, SimNet};
use super::rng::Rng;
use crate::chord::Config;
use crate::id::Id;
use crate::kbr::KbrEvent;
use crate::time::Time;

/// What to simulate.
#[derive(Clone, Debug)]
pub struct Experiment {
    pub nodes: usize,
    pub lookups: usize,
    /// Fraction of nodes that crash at once at time zero.
    pub fail: f64,
    /// Joins plus crashes per second of virtual time.
    pub churn: f64,
    /// Seconds of virtual time over which the lookups are spread.
    pub duration: f64,
    /// Seconds of virtual time between the failures and the first lookup.
    pub settle: f64,
    pub seed: u64,
    /// Probability that any one message is lost.
    pub loss: f64,
    pub chord: Config,
}

impl Default for Experiment {
    fn default() -> Experiment {
        Experiment {
            nodes: 1000,
            lookups: 10_000,
            fail: 0.0,
            churn: 0.0,
            duration: 60.0,
            settle: 0.0,
            seed: 1,
            loss: 0.0,
            chord: Config::simulation(),
        }
    }
}

/// What came out; the JSON form has exactly these keys.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Report {
    pub nodes: usize,
    pub lookups: usize,
    pub mean_hops: f64,
    pub p1_hops: u32,
    pub p50_hops: u32,
    pub p99_hops: u32,
    /// Lookups that got no answer (or an error) while their source lived.
    pub failed: usize,
    /// Lookups whose source crashed before the answer came: nobody was
    /// left to receive it, so they count neither as failed nor as right.
    pub abandoned: usize,
    pub wrong: usize,
    pub maint_msgs_per_node_s: f64,
    /// Upkeep in bytes per live node per second (see `NetStats::maintenance_bytes`).
    pub maint_bytes_per_node_s: f64,
    pub wall_s: f64,
    #[serde(skip)]
    pub peak_rss_kb: u64,
}

enum Action {
    Lookup,
    Churn,
}

/// The live ring as the oracle sees it, with uniform random picks.
#[derive(Default)]
struct LiveSet {
    ring: BTreeMap<Id, usize>,
    list: Vec<Id>,
    pos: HashMap<Id, usize>,
}

impl LiveSet {
    fn insert(&mut self, id: Id, i: usize) {
        if self.ring.insert(id, i).is_none() {
            self.pos.insert(id, self.list.len());
            self.list.push(id);
        }
    }

    fn remove(&mut self, id: &Id) {
        if self.ring.remove(id).is_some() {
            let p = self.pos.remove(id).expect("listed");
            self.list.swap_remove(p);
            if let Some(moved) = self.list.get(p) {
                self.pos.insert(*moved, p);
            }
        }
    }

    fn len(&self) -> usize {
        self.list.len()
    }

    /// A uniformly random live node: (index, id).
    fn pick(&self, rng: &mut Rng) -> (usize, Id) {
        let id = self.list[rng.below(self.list.len() as u64) as usize];
        (self.ring[&id], id)
    }

    fn successor(&self, key: &Id) -> Id {
        self.ring
            .range(key..)
            .next()
            .or_else(|| self.ring.iter().next())
            .map(|(id, _)| *id)
            .unwrap_or(*key)
    }
}

/// Lookups asked and answered.
#[derive(Default)]
struct Tally {
    asked: HashMap<(usize, u64), Id>,
    hops: Vec<u32>,
    failed: usize,
    wrong: usize,
}

impl Tally {
    /// Takes the nodes' events in order: joins enter the oracle ring, answers
    /// are checked against it.
    fn absorb(&mut self, net: &mut SimNet, live: &mut LiveSet) {
        let events = std::mem::take(&mut net.events);
        for (i, _, ev) in events {
            match ev {
                KbrEvent::Joined { .. } => live.insert(net.me(i).id, i),
                KbrEvent::LookupDone { req, result, .. } => {
                    let Some(key) = self.asked.remove(&(i, req)) else {
                        continue;
                    };
                    match result {
                        Ok(found) => {
                            self.hops.push(found.hops);
                            if live.successor(&key) != found.root.id {
                                self.wrong += 1;
                            }
                        }
                        Err(_) => self.failed += 1,
                    }
                }
                _ => {}
            }
        }
    }
}

/// Runs the experiment; the same seed gives the same report (but `wall_s`).
pub fn run(exp: &Experiment) -> Report {
    let started = Instant::now();
    let cfg = SimConfig {
        seed: exp.seed,
        loss: exp.loss,
        chord: exp.chord.clone(),
        ..SimConfig::default()
    };
    let mut net = SimNet::new(cfg);
    let mut rng = Rng::new(exp.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5eed);
    for _ in 0..exp.nodes {
        let id = rng.id();
        net.add_node(id);
    }
    net.install_converged();
    let mut live = LiveSet::default();
    for i in 0..net.len() {
        live.insert(net.me(i).id, i);
    }

    let crash = ((exp.fail * exp.nodes as f64).round() as usize).min(exp.nodes.saturating_sub(1));
    for _ in 0..crash {
        let (i, id) = live.pick(&mut rng);
        net.crash(i);
        live.remove(&id);
    }

    // The schedule: lookups evenly spread, churn as a Poisson process.
    let mut actions: Vec<(Time, Action)> = Vec::new();
    for k in 0..exp.lookups {
        let at = exp.settle + exp.duration * (k as f64 + rng.unit()) / exp.lookups.max(1) as f64;
        actions.push((Time::from_secs_f64(at), Action::Lookup));
    }
    if exp.churn > 0.0 {
        let mut t = 0.0;
        loop {
            t += -(1.0 - rng.unit()).ln() / exp.churn;
            if t >= exp.settle + exp.duration {
                break;
            }
            actions.push((Time::from_secs_f64(t), Action::Churn));
        }
    }
    actions.sort_by_key(|(t, _)| *t);

    let mut tally = Tally::default();
    let mut node_seconds = 0.0;
    let mut last = Time::ZERO;
    for (at, action) in actions {
        net.run_until(at);
        node_seconds += live.len() as f64 * at.since(last).as_secs_f64();
        last = at;
        tally.absorb(&mut net, &mut live);
        match action {
            Action::Lookup => {
                let (src, _) = live.pick(&mut rng);
                let key = rng.id();
                let req = net.with_node(src, |k, now| k.lookup(now, key));
                tally.asked.insert((src, req), key);
            }
            Action::Churn if rng.below(2) == 0 || live.len() < 2 => {
                let (via, _) = live.pick(&mut rng);
                let i = net.add_node(rng.id());
                net.join(i, via);
            }
            Action::Churn => {
                let (i, id) = live.pick(&mut rng);
                net.crash(i);
                live.remove(&id);
            }
        }
    }
    let end = net.now() + exp.chord.lookup_deadline() + Duration::from_secs(1);
    net.run_until(end);
    node_seconds += live.len() as f64 * end.since(last).as_secs_f64();
    tally.absorb(&mut net, &mut live);
    let abandoned = tally
        .asked
        .keys()
        .filter(|(src, _)| !net.node(*src).alive)
        .count();
    let failed = tally.failed + tally.asked.len() - abandoned;

    let hops = &mut tally.hops;
    hops.sort_unstable();
    let pct = |p: f64| -> u32 {
        if hops.is_empty() {
            return 0;
        }
        hops[((hops.len() - 1) as f64 * p).round() as usize]
    };
    let mean = if hops.is_empty() {
        0.0
    } else {
        hops.iter().map(|&h| h as f64).sum::<f64>() / hops.len() as f64
    };
    let maint = net.stats.maintenance as f64;
    let per_node_s = |x: f64| {
        if node_seconds > 0.0 {
            round3(x / node_seconds)
        } else {
            0.0
        }
    };
    Report {
        nodes: exp.nodes,
        lookups: exp.lookups,
        mean_hops: round3(mean),
        p1_hops: pct(0.01),
        p50_hops: pct(0.50),
        p99_hops: pct(0.99),
        failed,
        abandoned,
        wrong: tally.wrong,
        maint_msgs_per_node_s: per_node_s(maint),
        maint_bytes_per_node_s: per_node_s(net.stats.maintenance_bytes as f64),
        wall_s: round3(started.elapsed().as_secs_f64()),
        peak_rss_kb: peak_rss_kb(),
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The process's peak resident set (VmHWM), in KiB; 0 where unknown.
pub fn peak_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
