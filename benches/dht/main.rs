//! peerlets/dht.lua against OpenDHT, in one run (`cargo bench --bench dht`;
//! prints figures, asserts nothing):
//!
//! 1. Latency: put and get from random nodes of a 20-node loopback overlay
//!    running dht.lua (node threads in this process, each put or get one
//!    line typed at a node's console that calls the item's root through a
//!    `peerlet.lookup` handle), against 20 OpenDHT nodes on loopback (the
//!    DhtRunners of Debian's python3-opendht in one Python process: see
//!    opendht_bench.py), same number of operations and value size.
//! 2. Memory: resident set (VmRSS) of 20 `peerlet node` processes running
//!    dht.lua, idle and after 500 items were put, against 20 `dhtnode`
//!    processes (Debian's dhtnode) holding the same number of values.
//!
//! OpenDHT's side is skipped, with a message, when /usr/bin/python3 cannot
//! import `opendht` or `dhtnode` is not installed.

#![forbid(unsafe_code)]

mod memory;
#[path = "../common/ring.rs"]
mod ring;

use std::process::Command;
use std::time::{Duration, Instant};

use peerlet::id::AppId;
use peerlet::node::NodeHandle;
use peerlet::sim::Rng;
use ring::percentile;

const NODES: usize = 20;
const OPS: usize = 500;
const PYTHON: &str = "/usr/bin/python3";

fn main() {
    let opendht = opendht_available();
    if let Err(why) = &opendht {
        println!("OpenDHT side skipped: {why}");
        println!("  (install it with: apt-get install -y python3-opendht dhtnode)");
    }
    println!(
        "dht latency, {NODES} nodes on 127.0.0.1, {OPS} puts and {OPS} gets of 64-byte values"
    );
    let console = peerlet_latency(None);
    // Twenty nodes fit in one successor list, so most calls above reach
    // the root in one hop; with lists of 4 (as in the tests) they route.
    peerlet_latency(Some(4));
    if opendht.is_ok() {
        opendht_latency(&console);
    }
    memory::run(opendht.is_ok());
}

/// Whether OpenDHT's side can run here, and why not.
fn opendht_available() -> Result<(), String> {
    let ok = Command::new(PYTHON)
        .args(["-c", "import opendht; opendht.DhtRunner"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        return Err(format!("{PYTHON} cannot import opendht (python3-opendht)"));
    }
    if Command::new("dhtnode").arg("-h").output().is_err() {
        return Err("no `dhtnode` on PATH".into());
    }
    Ok(())
}

pub fn app() -> AppId {
    AppId::derive(b"peerlet local publisher", "dht")
}

pub fn value(i: usize) -> String {
    format!("{:<64}", format!("v{i:06}")).replace(' ', "x")
}

/// Median and p99 of put and get; the figures the OpenDHT side compares with.
struct Figures {
    put: (Duration, Duration),
    get: (Duration, Duration),
}

/// `successors`: the length of the successor lists, if not the default.
fn peerlet_latency(successors: Option<usize>) -> Figures {
    let nodes = ring(NODES, successors);
    let src = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/peerlets/dht.lua")).unwrap();
    // A peerlet whose one method does nothing: what a handle call costs
    // without dht.lua's work.
    let ping = "--@peerlet name=ping type=end-node version=1\n\
                local P = {}\nfunction P.ping() return 1 end\nreturn P\n";
    for n in &nodes {
        n.install_local("dht.lua", &src).unwrap();
        n.install_local("ping.lua", ping.as_bytes()).unwrap();
    }
    let ping_app = AppId::derive(b"peerlet local publisher", "ping").to_string();
    let app = app().to_string();
    let mut rng = Rng::new(1);
    // The cost of a console line that does no routing: what every figure
    // below pays on top of the dht call itself.
    let mut bare = Vec::new();
    for _ in 0..OPS {
        let n = &nodes[rng.below(NODES as u64) as usize];
        let t = Instant::now();
        console(n, "return 1").unwrap();
        bare.push(t.elapsed());
    }
    let (mut puts, mut gets, mut found) = (Vec::new(), Vec::new(), 0);
    let mut errors = Vec::new();
    for i in 0..OPS {
        let item = format!("bench-{i}");
        let a = rng.below(NODES as u64) as usize;
        let b = (a + 1 + rng.below(NODES as u64 - 1) as usize) % NODES;
        let handle = format!("peerlet.lookup(kbr.key({item:?}), {app:?})");
        let t = Instant::now();
        let put = console(
            &nodes[a],
            &format!("return {handle}:put({item:?}, {:?})", value(i)),
        );
        match put {
            Ok(_) => puts.push(t.elapsed()),
            Err(e) => errors.push(format!("put: {e}")),
        }
        let t = Instant::now();
        match console(&nodes[b], &format!("return {handle}:get({item:?})")) {
            Ok(got) => {
                gets.push(t.elapsed());
                if got.contains(&value(i)) {
                    found += 1;
                }
            }
            Err(e) => errors.push(format!("get: {e}")),
        }
    }
    let (hops, lookup_times) = lookups(&nodes, &mut rng);
    let mut pings = Vec::new();
    for i in 0..OPS {
        let n = &nodes[rng.below(NODES as u64) as usize];
        let code = format!("return peerlet.lookup(kbr.key('p{i}'), {ping_app:?}):ping()");
        let t = Instant::now();
        if console(n, &code).is_ok() {
            pings.push(t.elapsed());
        }
    }
    println!();
    println!(
        "peerlet, dht.lua (r = 3), node threads in one process, mean hops to a root {hops:.2}:"
    );
    row("  put", &puts);
    row("  get", &gets);
    println!("  gets that found the value: {found} / {OPS}");
    row(
        "  baseline: a console line that routes nothing (`return 1`)",
        &bare,
    );
    row(
        "  baseline: a KBR lookup round trip (no Lua)",
        &lookup_times,
    );
    if pings.is_empty() {
        println!("  baseline: no-op handle calls all failed");
    } else {
        row(
            "  baseline: a console line calling a no-op method at a key's root",
            &pings,
        );
    }
    if !errors.is_empty() {
        println!(
            "  calls that failed (left out of the figures): {}; first: {}",
            errors.len(),
            errors[0]
        );
    }
    Figures {
        put: (percentile(&puts, 0.5), percentile(&puts, 0.99)),
        get: (percentile(&gets, 0.5), percentile(&gets, 0.99)),
    }
}

fn opendht_latency(ours: &Figures) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/dht/opendht_bench.py");
    let out = Command::new(PYTHON)
        .args([script, "latency", &NODES.to_string(), &OPS.to_string(), "1"])
        .arg(base_port(0).to_string())
        .output()
        .expect("run opendht_bench.py");
    if !out.status.success() {
        println!(
            "OpenDHT latency run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON from the script");
    let us = |k: &str| -> Vec<Duration> {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|x| Duration::from_secs_f64(x.as_f64().unwrap() / 1e6))
            .collect()
    };
    let (puts, gets) = (us("put_us"), us("get_us"));
    println!();
    println!(
        "OpenDHT {} (python3-opendht), {NODES} DhtRunners in one process:",
        opendht_version()
    );
    row("  put", &puts);
    row("  get", &gets);
    println!("  gets that found the value: {} / {OPS}", v["found"]);
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!();
    println!(
        "ratio peerlet / OpenDHT: put median {:.2} (p99 {:.2}), get median {:.2} (p99 {:.2}); goal: median <= 0.20",
        ratio(ours.put.0, percentile(&puts, 0.5)),
        ratio(ours.put.1, percentile(&puts, 0.99)),
        ratio(ours.get.0, percentile(&gets, 0.5)),
        ratio(ours.get.1, percentile(&gets, 0.99)),
    );
}

pub fn opendht_version() -> String {
    Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", "python3-opendht"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// UDP ports for OpenDHT nodes, away from the common ones; `set` picks a
/// block of 100.
pub fn base_port(set: u16) -> u16 {
    41_000 + set * 100 + (std::process::id() % 50) as u16 * 200
}

/// One console line at `node`; its printed result or its error.
fn console(node: &NodeHandle, code: &str) -> Result<String, String> {
    let rx = node.console_start(code).map_err(|e| e.to_string())?;
    rx.recv_timeout(Duration::from_secs(20))
        .map_err(|_| "no answer within 20 s".to_string())?
}

/// Mean hops of `OPS` lookups of random keys from random nodes, and their
/// round trips: the routing floor under every dht call.
fn lookups(nodes: &[NodeHandle], rng: &mut Rng) -> (f64, Vec<Duration>) {
    let mut hops = 0;
    let mut times = Vec::new();
    for _ in 0..OPS {
        let n = &nodes[rng.below(nodes.len() as u64) as usize];
        let t = Instant::now();
        hops += n.lookup(rng.id()).unwrap().hops as usize;
        times.push(t.elapsed());
    }
    (hops as f64 / OPS as f64, times)
}

/// A converged ring of `n` node threads (see `common/ring.rs`), with
/// `successors` when given.
fn ring(n: usize, successors: Option<usize>) -> Vec<NodeHandle> {
    ring::ring(n, |c| {
        if let Some(s) = successors {
            c.chord.successors = s;
        }
    })
}

fn row(what: &str, v: &[Duration]) {
    println!(
        "{what}: median {:.0} µs, p99 {:.0} µs",
        micros(percentile(v, 0.5)),
        micros(percentile(v, 0.99)),
    );
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
