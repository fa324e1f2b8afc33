//! PROST's thesis, measured in the simulator (`cargo bench --bench prost`;
//! prints figures, asserts nothing): the upkeep each node pays when k
//! applications share one overlay, against k applications each on an
//! overlay of its own (k separate Chord rings over the same hosts).
//!
//! Both sides run the same sample peerlets on simulated nodes with peerlet
//! managers, the same workload and the same churn, for the same virtual
//! time; every count is of messages really sent in the run.
//!
//! - Apps: k = 1 is dht; k = 5 is dht, im, directory, scribe, trace; k = 10
//!   is those five twice (the second copy renamed, so a distinct app).
//! - Workload, per app instance: each dht puts 100 items from random nodes
//!   (so its replicas have something to repair); each scribe has 20 nodes
//!   join a group (its tree is kept alive by periodic joins).
//! - Churn, during the measured window: every 60 s one node crashes and a
//!   fresh node (running the same apps) joins; on the separate overlays the
//!   same host crashes and joins in every ring.
//! - Counted: Chord maintenance (stabilize, notify, predecessor checks,
//!   finger lookups and their answers), and every other message (the apps'
//!   own traffic, their routed messages' hop acknowledgements and code
//!   fetches): per host per second.

#![forbid(unsafe_code)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use common::samples::{source, SampleRing};
use peerlet::chord::Config;
use peerlet::id::AppId;
use peerlet::peerlet::{Manager, ManagerApp, ManagerConfig};
use peerlet::sim::{Rng, SimConfig, SimNet};

/// Hosts per overlay: 100, or `PROST_NODES` from the environment.
fn nodes() -> usize {
    std::env::var("PROST_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
}
const SAMPLES: [&str; 5] = ["dht", "im", "directory", "scribe", "trace"];
const WARMUP: Duration = Duration::from_secs(60);
const WINDOW: Duration = Duration::from_secs(600);
const CHURN_EVERY: Duration = Duration::from_secs(60);

/// A sample under its own name: copy 0 is the sample itself, copy c its
/// source with the header renamed to NAMEc.
struct App {
    sample: &'static str,
    name: String,
    source: String,
}

fn apps(k: usize) -> Vec<App> {
    (0..k)
        .map(|i| {
            let sample = SAMPLES[i % SAMPLES.len()];
            let copy = i / SAMPLES.len();
            let name = if copy == 0 {
                sample.to_string()
            } else {
                format!("{sample}{}", copy + 1)
            };
            let source = source(sample).replacen(
                &format!("--@peerlet name={sample} "),
                &format!("--@peerlet name={name} "),
                1,
            );
            App {
                sample,
                name,
                source,
            }
        })
        .collect()
}

fn app_id(name: &str) -> AppId {
    AppId::derive(&ManagerConfig::default().local_publisher, name)
}

/// Messages counted in the window. Every hop of a routed message is
/// acknowledged by one `RouteAck`; acks are split between the ring and the
/// apps by that rule (an app hop brings one ack; the rest acknowledge
/// Chord's own lookups).
#[derive(Clone, Copy, Default)]
struct Counts {
    /// Chord maintenance and the acks of its routed lookups.
    chord: u64,
    /// Application messages' hops and their acks.
    apps: u64,
    /// Anything else (user lookups and their answers).
    rest: u64,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        self.chord += o.chord;
        self.apps += o.apps;
        self.rest += o.rest;
    }
}

/// A converged ring of `nodes()` hosts with the simulator's Chord settings (those of
/// `peerlet sim`: stabilize every 30 s, a finger every 5 s, successor lists
/// of 32) and a peerlet manager on every node.
fn ring(seed: u64) -> SampleRing {
    let mut rng = Rng::new(seed);
    let mut net = SimNet::new(SimConfig {
        seed,
        chord: Config::simulation(),
        ..SimConfig::default()
    });
    for _ in 0..nodes() {
        net.add_node(rng.id());
    }
    net.install_converged();
    let mut managers = Vec::new();
    for i in 0..nodes() {
        let m = ManagerApp::new(Manager::new(ManagerConfig::default()));
        let app = m.clone();
        net.with_node(i, move |k, _| k.set_default_app(Box::new(app)));
        managers.push(m);
    }
    SampleRing { net, managers, rng }
}

fn install(ring: &mut SampleRing, i: usize, apps: &[App]) {
    for app in apps {
        let m = ring.managers[i].clone();
        let chunk = format!("{}.lua", app.name);
        ring.net
            .with_node(i, |k, now| {
                m.0.borrow_mut()
                    .install_local(&mut k.api(now), &chunk, app.source.as_bytes())
            })
            .unwrap_or_else(|e| panic!("{} on node {i}: {e}", app.name));
    }
}

/// One overlay of `nodes()` hosts running `apps`, with the workload and the
/// churn; the messages of the measured window.
fn overlay(apps: &[App], seed: u64) -> Counts {
    let mut ring = ring(seed);
    for i in ring.all() {
        install(&mut ring, i, apps);
    }
    for app in apps {
        let id = app_id(&app.name).to_string();
        match app.sample {
            "dht" => {
                for j in 0..100 {
                    let at = ring.rng.below(nodes() as u64) as usize;
                    let item = format!("item-{j}");
                    ring.eval(
                        at,
                        &format!(
                            "return peerlet.lookup(kbr.key({item:?}), {id:?}):put({item:?}, {j})"
                        ),
                    )
                    .unwrap();
                }
            }
            "scribe" => {
                for _ in 0..20 {
                    let at = ring.rng.below(nodes() as u64) as usize;
                    ring.eval(
                        at,
                        &format!("return peerlet.lookup(kbr.id().id, {id:?}):join('g')"),
                    )
                    .unwrap();
                }
            }
            _ => {}
        }
    }
    ring.net.run_for(WARMUP);
    let before = ring.net.stats.clone();
    // The same churn on every overlay: host choices come from their own seed.
    let mut churn = peerlet::sim::Rng::new(99);
    let rounds = (WINDOW.as_secs() / CHURN_EVERY.as_secs()) as usize;
    for _ in 0..rounds {
        ring.net.run_for(CHURN_EVERY);
        let live = ring.net.live();
        let victim = live[1 + churn.below(live.len() as u64 - 1) as usize];
        ring.net.crash(victim);
        let i = ring.net.add_node(churn.id());
        let m = ManagerApp::new(Manager::new(ManagerConfig::default()));
        let handler = m.clone();
        ring.net
            .with_node(i, move |k, _| k.set_default_app(Box::new(handler)));
        ring.managers.push(m);
        install(&mut ring, i, apps);
        ring.net.join(i, live[0]);
    }
    let after = &ring.net.stats;
    let messages = after.messages - before.messages;
    let maintenance = after.maintenance - before.maintenance;
    let app_hops = after.app_hops - before.app_hops;
    let acks = after.acks - before.acks;
    let chord = maintenance + acks.saturating_sub(app_hops);
    let apps = app_hops + acks.min(app_hops);
    Counts {
        chord,
        apps,
        rest: messages - chord - apps,
    }
}

fn per_host_per_sec(n: u64) -> f64 {
    n as f64 / nodes() as f64 / WINDOW.as_secs_f64()
}

fn main() {
    println!(
        "{} simulated hosts, {} s measured after {} s warm-up, one crash + one join every {} s",
        nodes(),
        WINDOW.as_secs(),
        WARMUP.as_secs(),
        CHURN_EVERY.as_secs()
    );
    println!(
        "messages sent per host per second: Chord upkeep (incl. acks) | apps (incl. acks) | rest"
    );
    println!();
    println!("| apps | one overlay: Chord | apps | rest | separate overlays: Chord | apps | rest | separate ÷ one, Chord |");
    println!("|---|---|---|---|---|---|---|---|");
    for k in [1, 5, 10] {
        let apps = apps(k);
        let t = std::time::Instant::now();
        let shared = overlay(&apps, 1);
        let mut separate = Counts::default();
        for (i, app) in apps.iter().enumerate() {
            separate += overlay(std::slice::from_ref(app), 1 + i as u64);
        }
        println!(
            "| {k} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.1}× |  ({:.0} s wall)",
            per_host_per_sec(shared.chord),
            per_host_per_sec(shared.apps),
            per_host_per_sec(shared.rest),
            per_host_per_sec(separate.chord),
            per_host_per_sec(separate.apps),
            per_host_per_sec(separate.rest),
            separate.chord as f64 / shared.chord as f64,
            t.elapsed().as_secs_f64(),
        );
    }
}
