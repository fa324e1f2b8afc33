//! The churn soak of peerlets/dht.lua in the simulator (issue 14, item 4):
//! a ring churning at a Poisson rate (half joins of fresh nodes, half
//! crashes that take a node's copies with it), keys put through dht.lua at
//! random live nodes' consoles, then read back from random live nodes.
//!
//! A key counts as *lost to churn* (not held against dht.lua) when at some
//! crash no live node near it (its root by the oracle and the 2r-1 nodes
//! after) held a copy of its acknowledged version any more: all its copies
//! failed between two repairs. Every other acknowledged key must read back.
//! Shared by tests/dht_churn_sim.rs (short) and benches/dht_churn (full).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::{Duration, Instant};

use peerlet::chord::Config;
use peerlet::id::{AppId, Id};
use peerlet::peerlet::{Manager, ManagerApp, ManagerConfig};
use peerlet::sim::{Oracle, Rng, SimConfig, SimNet};
use peerlet::time::Time;

/// What to run.
#[derive(Clone, Debug)]
pub struct Soak {
    pub nodes: usize,
    /// Joins plus crashes per second (Bamboo's median session of 1.4 min
    /// on 1,000 nodes: 16.5).
    pub churn: f64,
    /// Seconds of churn; the puts are spread over the first two thirds.
    pub duration: f64,
    pub keys: usize,
    pub seed: u64,
    /// Chord's stabilization period, in seconds.
    pub stabilize: f64,
    /// Print a line every 100 s of virtual time (for the long bench).
    pub progress: bool,
}

/// What came out.
#[derive(Clone, Debug, Default)]
pub struct SoakReport {
    pub joins: usize,
    pub crashes: usize,
    pub acked: usize,
    /// Puts that answered with an error (not acknowledged).
    pub refused: usize,
    /// Puts whose console node crashed before the answer.
    pub unanswered: usize,
    /// Acknowledged keys all of whose nearby copies failed between repairs.
    pub lost_to_churn: usize,
    /// Other acknowledged keys that did not read back as written.
    pub lost: Vec<String>,
    /// Live nodes whose join had not completed when the keys were read
    /// back (they are not asked).
    pub not_members: usize,
    /// Reads that failed (an error or no answer), among those asked.
    pub get_errors: usize,
    pub wall_s: f64,
    pub virtual_s: f64,
}

type Slot = Rc<RefCell<Option<Result<String, String>>>>;

struct Ring {
    net: SimNet,
    managers: Vec<Option<ManagerApp>>,
    index: HashMap<Id, usize>,
    live: Vec<usize>,
    source: String,
    app: Option<AppId>,
}

impl Ring {
    fn add(&mut self, id: Id) -> usize {
        let i = self.net.add_node(id);
        let m = ManagerApp::new(Manager::new(ManagerConfig::default()));
        let app = m.clone();
        self.net
            .with_node(i, move |k, _| k.set_default_app(Box::new(app)));
        let src = self.source.clone();
        let mm = m.clone();
        let id = self.net.with_node(i, |k, now| {
            mm.0.borrow_mut()
                .install_local(&mut k.api(now), "dht.lua", src.as_bytes())
        });
        self.app = Some(id.expect("dht.lua installs"));
        self.managers.push(Some(m));
        self.index.insert(self.net.me(i).id, i);
        i
    }

    fn crash(&mut self, i: usize) {
        self.net.crash(i);
        self.live.retain(|&n| n != i);
        // A crashed node's copies are gone; free its Lua states.
        if let Some(m) = self.managers[i].take() {
            let mut m = m.0.borrow_mut();
            let names: Vec<String> = m.peerlets().map(|p| p.name.clone()).collect();
            for name in names {
                let _ = m.unload(&name);
            }
        }
    }

    /// The version of node `i`'s copy of `name`, if it holds one.
    fn version(&self, i: usize, name: &str) -> Option<i128> {
        let m = self.managers[i].as_ref()?.0.borrow();
        let bytes = m.by_name("dht")?.store_get(name)?;
        let ciborium::Value::Map(fields) = ciborium::from_reader(bytes.as_slice()).ok()? else {
            return None;
        };
        fields.into_iter().find_map(|(k, v)| match (k, v) {
            (ciborium::Value::Bytes(k), ciborium::Value::Integer(n)) if k == b"ver" => {
                Some(n.into())
            }
            _ => None,
        })
    }

    /// Whether a live node near `name` (its root and the next 2r-1 nodes,
    /// by the oracle) holds version `ver` of it or a newer one.
    fn has_live_copy(&self, oracle: &Oracle, name: &str, ver: i128) -> bool {
        let root = oracle.successor(&Id::key(name));
        let mut near = vec![root.id];
        near.extend(oracle.successors_of(&root.id, 5).into_iter().map(|n| n.id));
        near.iter()
            .filter_map(|id| self.index.get(id))
            .any(|&i| self.version(i, name).is_some_and(|v| v >= ver))
    }

    fn console(&mut self, i: usize, code: String) -> Slot {
        let slot: Slot = Rc::new(RefCell::new(None));
        let out = slot.clone();
        let m = self.managers[i].clone().expect("a live node");
        self.net.with_node(i, |k, now| {
            m.0.borrow_mut().console_eval(
                &mut k.api(now),
                &code,
                Box::new(move |r| *out.borrow_mut() = Some(r)),
            )
        });
        slot
    }
}

enum Action {
    Churn,
    Put(usize),
}

fn name(k: usize) -> String {
    format!("key-{k}")
}

/// Runs the soak; the same settings give the same report (but `wall_s`).
pub fn run(soak: &Soak, source: &str) -> SoakReport {
    let started = Instant::now();
    let mut rng = Rng::new(soak.seed);
    let secs = Duration::from_secs_f64(soak.stabilize);
    let chord = Config {
        stabilize_every: secs,
        check_predecessor_every: secs,
        ..Config::simulation()
    };
    let net = SimNet::new(SimConfig {
        seed: soak.seed,
        chord,
        ..SimConfig::default()
    });
    let mut ring = Ring {
        net,
        managers: Vec::new(),
        index: HashMap::new(),
        live: Vec::new(),
        source: source.to_string(),
        app: None,
    };
    for _ in 0..soak.nodes {
        let id = rng.id();
        ring.add(id);
    }
    ring.net.install_converged();
    ring.live = (0..soak.nodes).collect();
    let app = ring.app.expect("at least one node").to_string();

    let mut actions: Vec<(Time, Action)> = Vec::new();
    let window = soak.duration * 2.0 / 3.0;
    for k in 0..soak.keys {
        let at = window * (k as f64 + rng.unit()) / soak.keys as f64;
        actions.push((Time::from_secs_f64(at), Action::Put(k)));
    }
    let mut t = 0.0;
    loop {
        t += -(1.0 - rng.unit()).ln() / soak.churn;
        if t >= soak.duration {
            break;
        }
        actions.push((Time::from_secs_f64(t), Action::Churn));
    }
    actions.sort_by_key(|(t, _)| *t);

    let mut report = SoakReport::default();
    let mut puts: Vec<(usize, usize, Slot)> = Vec::new(); // (key, node, answer)
    let mut busy: HashMap<usize, Slot> = HashMap::new();
    let mut acked: HashMap<usize, i128> = HashMap::new();
    let mut lost_to_churn: HashSet<usize> = HashSet::new();
    let absorb = |puts: &mut Vec<(usize, usize, Slot)>,
                  acked: &mut HashMap<usize, i128>,
                  report: &mut SoakReport| {
        puts.retain(|(k, _, slot)| match slot.borrow().as_ref() {
            None => true,
            Some(Ok(v)) => match v.parse::<i128>() {
                Ok(ver) => {
                    acked.insert(*k, ver);
                    false
                }
                Err(_) => {
                    report.refused += 1;
                    false
                }
            },
            Some(Err(_)) => {
                report.refused += 1;
                false
            }
        });
    };
    let mut shown = 0.0;
    for (at, action) in actions {
        ring.net.run_until(at);
        if soak.progress && at.as_secs_f64() >= shown + 100.0 {
            shown = at.as_secs_f64();
            eprintln!(
                "  {shown:.0} s: {} live, {} acknowledged, {} lost to churn, {:.0} s wall",
                ring.live.len(),
                acked.len(),
                lost_to_churn.len(),
                started.elapsed().as_secs_f64()
            );
        }
        absorb(&mut puts, &mut acked, &mut report);
        busy.retain(|_, slot| slot.borrow().is_none());
        match action {
            Action::Put(k) => {
                let free: Vec<usize> = ring
                    .live
                    .iter()
                    .copied()
                    .filter(|n| !busy.contains_key(n))
                    .collect();
                if free.is_empty() {
                    continue;
                }
                let node = free[rng.below(free.len() as u64) as usize];
                let n = name(k);
                let code = format!("peerlet.lookup(kbr.key({n:?}), {app:?}):put({n:?}, 'v-{k}')");
                let slot = ring.console(node, code);
                busy.insert(node, slot.clone());
                puts.push((k, node, slot));
            }
            Action::Churn if rng.below(2) == 0 || ring.live.len() < 8 => {
                let via = ring.live[rng.below(ring.live.len() as u64) as usize];
                let id = rng.id();
                let i = ring.add(id);
                ring.net.join(i, via);
                ring.live.push(i);
                report.joins += 1;
            }
            Action::Churn => {
                let i = ring.live[rng.below(ring.live.len() as u64) as usize];
                let held: Vec<String> = match &ring.managers[i] {
                    Some(m) => {
                        m.0.borrow()
                            .by_name("dht")
                            .map(|p| p.store_keys())
                            .unwrap_or_default()
                    }
                    None => Vec::new(),
                };
                ring.crash(i);
                report.crashes += 1;
                // Puts typed at the crashed node never answer.
                puts.retain(|(_, node, slot)| {
                    let gone = *node == i && slot.borrow().is_none();
                    if gone {
                        report.unanswered += 1;
                    }
                    !gone
                });
                busy.remove(&i);
                let oracle = ring.net.oracle();
                for n in held {
                    let Some(k) = n.strip_prefix("key-").and_then(|s| s.parse().ok()) else {
                        continue;
                    };
                    if let Some(&ver) = acked.get(&k) {
                        if !lost_to_churn.contains(&k) && !ring.has_live_copy(&oracle, &n, ver) {
                            lost_to_churn.insert(k);
                        }
                    }
                }
            }
        }
    }
    // Churn stops; answers still on their way arrive, repairs run.
    ring.net.run_for(Duration::from_secs(60));
    absorb(&mut puts, &mut acked, &mut report);
    report.unanswered += puts.len();
    report.acked = acked.len();
    report.lost_to_churn = lost_to_churn.len();

    // Every acknowledged key not lost to churn, read from live nodes.
    let mut want: Vec<usize> = acked
        .keys()
        .copied()
        .filter(|k| !lost_to_churn.contains(k))
        .collect();
    want.sort();
    // Read from the nodes that are members of the ring: a newcomer whose
    // join has not completed (see design.md §11) routes nowhere yet.
    let members = ring.net.live();
    report.not_members = ring.live.len() - members.len();
    let per_node = want.len().div_ceil(members.len()).max(1);
    let lines: Vec<(Vec<usize>, Slot)> = want
        .chunks(per_node)
        .zip(members)
        .map(|(keys, node)| {
            let list: Vec<String> = keys.iter().map(|&k| format!("{:?}", name(k))).collect();
            let code = format!(
                "local out = {{}} for _, k in ipairs({{{}}}) do \
                 local ok, v, ver = pcall(function() return peerlet.lookup(kbr.key(k), {app:?}):get(k) end) \
                 out[#out + 1] = ok and (tostring(v) .. '/' .. tostring(ver)) or '!' end \
                 return table.concat(out, ',')",
                list.join(",")
            );
            (keys.to_vec(), ring.console(node, code))
        })
        .collect();
    ring.net
        .run_while_not(Duration::from_secs(600), Duration::from_millis(500), |_| {
            lines.iter().all(|(_, s)| s.borrow().is_some())
        });
    for (keys, slot) in &lines {
        let answer = slot.borrow().clone();
        let Some(Ok(text)) = answer else {
            report.get_errors += keys.len();
            report.lost.extend(keys.iter().map(|&k| name(k)));
            continue;
        };
        for (&k, got) in keys.iter().zip(text.split(',')) {
            if got == "!" {
                report.get_errors += 1;
            }
            if got != format!("v-{k}/{}", acked[&k]) {
                report.lost.push(format!("{} ({got})", name(k)));
            }
        }
    }
    report.wall_s = started.elapsed().as_secs_f64();
    report.virtual_s = ring.net.now().as_secs_f64();
    report
}
