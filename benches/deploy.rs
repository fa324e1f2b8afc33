//! Deployment by traffic on loopback TCP, in one run (`cargo bench --bench
//! deploy`; prints figures, asserts nothing):
//!
//! 1. Cold deployment on a 20-node overlay: for each of 30 fresh signed
//!    peerlets installed on node 0, one message to a key whose root lacks
//!    it; the root's own record splits first message → first deliver()
//!    into fetch (from the code store, a routed request and a direct
//!    answer), verify (hash, decoding, signature, policy) and start
//!    (sandbox, host API, chunk, init), plus the first upcall. Baseline in
//!    the same run: an overlay lookup round trip from the same roots.
//! 2. A per-hop app reaching every node of a 50-node overlay by traffic
//!    alone: messages from the origin to random keys, one every 10 ms,
//!    until all 50 nodes run it.

#![forbid(unsafe_code)]

#[path = "common/ring.rs"]
mod common;
use common::percentile;

use std::path::Path;
use std::time::{Duration, Instant};

use peerlet::id::{AppId, Id};
use peerlet::node::NodeHandle;
use peerlet::package::secret_key::SigningKey;
use peerlet::package::signing::sign_source;
use peerlet::peerlet::deploy::Deployment;
use peerlet::sim::{Oracle, Rng};
use peerlet::wire::{AppKind, AppMessage, AppType, CodeLocator, NodeRef};

const ROUNDS: usize = 30;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate().unwrap();
    let pub_file = dir.path().join("bench.pub");
    std::fs::write(&pub_file, key.public().to_pub_text()).unwrap();
    cold_deployment(&key, &pub_file);
    per_hop_spread(&key, &pub_file);
}

fn cold_deployment(key: &SigningKey, pub_file: &Path) {
    let nodes = ring(20, pub_file);
    let ids: Vec<NodeRef> = nodes.iter().map(|n| n.me()).collect();
    let oracle = Oracle::new(ids);
    let mut rng = Rng::new(3);
    let mut records: Vec<Deployment> = Vec::new();
    let mut lookups = Vec::new();
    for i in 0..ROUNDS {
        let name = format!("cold{i}");
        let text = format!(
            "--@peerlet name={name} type=end-node version=1\n\
             local P = {{}}\n\
             function P.deliver(key, msg, from) store.put('n', 1) end\n\
             return P\n"
        );
        let sig = sign_source(key, text.as_bytes(), "x.lua").unwrap();
        let app = nodes[0].install_signed(text.as_bytes(), &sig).unwrap();
        let code = locator(&nodes[0], &name);
        // Let the package reach the code store first.
        std::thread::sleep(Duration::from_millis(100));
        let (k, root) = loop {
            let k = rng.id();
            let r = oracle.successor(&k).id;
            let root = nodes.iter().position(|n| n.id() == r).unwrap();
            if root != 0 {
                break (k, root);
            }
        };
        // Baseline: a lookup round trip from the root, through the same
        // control channel the deployment is read back with.
        let t = Instant::now();
        nodes[root].lookup(rng.id()).unwrap();
        lookups.push(t.elapsed());
        route(&nodes[0], k, app, AppType::EndNode, &code);
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let n = name.clone();
            let found = nodes[root]
                .with_peerlets(move |m, _| {
                    m.deployer().deployments().find(|d| d.name == n).cloned()
                })
                .unwrap();
            if let Some(d) = found {
                records.push(d);
                break;
            }
            if Instant::now() > end {
                println!("round {i}: not deployed within 10 s");
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let part =
        |f: fn(&Deployment) -> Duration| -> Vec<Duration> { records.iter().map(f).collect() };
    let total = part(|d| d.fetch + d.verify + d.start + d.first_upcall);
    println!(
        "cold deployment, 20 nodes, {} of {ROUNDS} deployed (from the store: {}):",
        records.len(),
        records.iter().filter(|d| d.source == "store").count()
    );
    for (what, v) in [
        ("fetch", part(|d| d.fetch)),
        ("verify", part(|d| d.verify)),
        ("start", part(|d| d.start)),
        ("first deliver()", part(|d| d.first_upcall)),
        ("total", total.clone()),
        ("baseline: lookup round trip", lookups.clone()),
    ] {
        println!(
            "  {what:<28} median {:>8.3} ms  p90 {:>8.3} ms",
            ms(median(&v)),
            ms(percentile(&v, 0.9))
        );
    }
    println!(
        "  total / lookup round trip: {:.2}",
        ms(median(&total)) / ms(median(&lookups))
    );
    for n in &nodes {
        n.kill();
    }
}

fn per_hop_spread(key: &SigningKey, pub_file: &Path) {
    let nodes = ring(50, pub_file);
    let text = "--@peerlet name=spread type=per-hop version=1\n\
        local P = {}\n\
        function P.forward(key, msg, next) end\n\
        function P.deliver(key, msg, from) end\n\
        return P\n";
    let sig = sign_source(key, text.as_bytes(), "x.lua").unwrap();
    let app = nodes[0].install_signed(text.as_bytes(), &sig).unwrap();
    let code = locator(&nodes[0], "spread");
    std::thread::sleep(Duration::from_millis(100));
    let mut rng = Rng::new(5);
    let start = Instant::now();
    let mut sent = 0;
    let mut marks: Vec<(usize, usize, f64)> = Vec::new();
    let mut running = Vec::new();
    while start.elapsed() < Duration::from_secs(30) {
        for _ in 0..5 {
            route(&nodes[0], rng.id(), app, AppType::PerHop, &code);
            sent += 1;
            std::thread::sleep(Duration::from_millis(10));
        }
        running = nodes
            .iter()
            .map(|n| {
                n.with_peerlets(|m, _| m.by_name("spread").is_some())
                    .unwrap()
            })
            .collect();
        let count = running.iter().filter(|r| **r).count();
        if marks.last().is_none_or(|m| m.0 < count) {
            marks.push((count, sent, start.elapsed().as_secs_f64()));
        }
        if count == nodes.len() {
            break;
        }
    }
    println!("per-hop app on 50 nodes by traffic alone (one message every 10 ms from the origin to a random key):");
    for target in [25, 40, 45, 48, 50] {
        if let Some((n, sent, t)) = marks.iter().find(|m| m.0 >= target) {
            println!("  {n:>2} nodes run it after {sent:>5} messages, {t:>6.2} s");
        }
    }
    // Who never saw a message: how much of the ring each owns.
    let ids: Vec<NodeRef> = nodes.iter().map(|n| n.me()).collect();
    let oracle = Oracle::new(ids);
    for (i, n) in nodes.iter().enumerate().filter(|(i, _)| !running[*i]) {
        let pred = oracle.predecessor_of(&n.id()).unwrap();
        let arc = pred.id.distance_to(&n.id()).high_u64() as f64 / 2f64.powi(64);
        println!(
            "  not reached after {sent} messages: node {i}, which owns {:.4}% of the ring",
            arc * 100.0
        );
    }
    for n in &nodes {
        n.kill();
    }
}

fn ring(n: usize, pub_file: &Path) -> Vec<NodeHandle> {
    common::ring(n, |c| c.trust_files = vec![pub_file.to_path_buf()])
}

fn locator(node: &NodeHandle, name: &str) -> CodeLocator {
    let name = name.to_string();
    node.with_peerlets(move |m, _| m.by_name(&name).unwrap().code.clone().unwrap())
        .unwrap()
}

fn route(node: &NodeHandle, key: Id, app: AppId, app_type: AppType, code: &CodeLocator) {
    let mut data = Vec::new();
    ciborium::into_writer(&ciborium::Value::Null, &mut data).unwrap();
    let msg = AppMessage {
        app,
        app_type,
        code: Some(code.clone()),
        data: serde_bytes::ByteBuf::from(data),
        kind: AppKind::Message,
        refused_by: Vec::new(),
    };
    node.call(move |kbr, now| {
        kbr.api(now).route(key, msg, None);
    })
    .unwrap();
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(v: &[Duration]) -> Duration {
    percentile(v, 0.5)
}
