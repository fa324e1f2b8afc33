//! Loopback latency, in one run: the round trip of a bare smol + async-net
//! TCP echo of 64 bytes on a persistent connection, against the per-hop
//! latency of application messages routed through a 20-node TCP ring
//! (end-to-end latency divided by hops). Run with
//! `cargo bench --bench tcp_hops`; prints figures, asserts nothing.
//!
//! The ring is measured twice. In one process (20 node threads), the
//! source and the root stamp the message with the same monotonic clock. In
//! 20 processes (this binary started again as a node, as a real deployment
//! runs one node per process), the root sends the hop count straight back
//! to the source, and the source divides the round trip by hops + 1. The
//! echo server runs in its own process too. A ring of bare relay processes
//! (read 64 bytes, write them to the next) gives the cost of a hop with no
//! framing or routing at all. `TCP_HOPS_ONLY=threads|procs|relay` runs only
//! one part (for profiling).

#![forbid(unsafe_code)]

use std::sync::mpsc;
use std::time::{Duration, Instant};

use peerlet::id::AppId;
use peerlet::kbr::{Api, Application};
use peerlet::node::{Node, NodeConfig, NodeHandle};
use peerlet::sim::{Oracle, Rng};
use peerlet::wire::{AppMessage, AppType, NodeRef, RoutedMessage};

const ECHOES: usize = 5000;
const NODES: usize = 20;
const MESSAGES: usize = 2000;

fn main() {
    match std::env::var("TCP_HOPS_ROLE").as_deref() {
        Ok("echo") => return procs::serve_echo(),
        Ok("node") => return procs::serve_node(),
        Ok("relay") => return relay::serve_relay(),
        _ => {}
    }
    let mut echo = procs::Echo::start();
    let rtt: Vec<Duration> = (0..ECHOES).map(|_| echo.round_trip()).collect();
    println!(
        "bare TCP echo, 64 B, persistent loopback connection, server in another process: \
         median RTT {} (p10 {}, p90 {}) over {ECHOES}",
        us(median(&rtt)),
        us(percentile(&rtt, 0.10)),
        us(percentile(&rtt, 0.90))
    );
    // TCP_HOPS_ONLY=threads|procs|relay runs one part (for profiling).
    let only = std::env::var("TCP_HOPS_ONLY").ok();
    let run = |part: &str| only.as_deref().is_none_or(|o| o == part);
    if run("threads") {
        let (per_hop, mean_hops, rtt) = routed_per_hop(&mut echo, false);
        report(
            &format!("{NODES} nodes in this process (one thread each)"),
            &per_hop,
            mean_hops,
            &rtt,
        );
        // The same ring with records left unencrypted (handshakes as
        // always): what encryption costs per hop.
        let (plain, mean_hops, rtt) = routed_per_hop(&mut echo, true);
        report(
            &format!("{NODES} nodes in this process, records not encrypted"),
            &plain,
            mean_hops,
            &rtt,
        );
        println!(
            "secure links: per hop median {} sealed / {} plaintext records = {:.3} (goal <= 1.1)",
            us(median(&per_hop)),
            us(median(&plain)),
            median(&per_hop).as_secs_f64() / median(&plain).as_secs_f64()
        );
        handshakes::report(&mut echo);
    }
    if run("procs") {
        let (per_hop, mean_hops, rtt) = procs::routed_per_hop(&mut echo);
        report(
            &format!("{NODES} node processes + 1 here, round trips (hops + 1 back)"),
            &per_hop,
            mean_hops,
            &rtt,
        );
    }
    if run("relay") {
        let (per_hop, rtt) = relay::per_hop(NODES, MESSAGES, &mut echo);
        report(
            &format!("{NODES} bare relay processes (baseline: no framing, no routing)"),
            &per_hop,
            (NODES + 1) as f64,
            &rtt,
        );
    }
    if run("relay") {
        let (per_hop, rtt) = relay::per_hop(2, MESSAGES, &mut echo);
        report(
            "2 bare relay processes (baseline for short routes)",
            &per_hop,
            3.0,
            &rtt,
        );
    }
}

/// Prints per-hop latency against the echo round trips taken between the
/// same messages (so both saw the same machine load).
fn report(ring: &str, per_hop: &[Duration], mean_hops: f64, rtt: &[Duration]) {
    let (hop, echo) = (median(per_hop), median(rtt));
    println!(
        "ring of {ring}: {} messages, mean {mean_hops:.2} hops; per hop median {} \
         (p10 {}, p90 {}); echo RTT between them median {}; ratio {:.2} (goal <= 2)",
        per_hop.len(),
        us(hop),
        us(percentile(per_hop, 0.10)),
        us(percentile(per_hop, 0.90)),
        us(echo),
        hop.as_secs_f64() / echo.as_secs_f64()
    );
}

mod handshakes;
mod procs;
mod relay;

fn payload() -> serde_bytes::ByteBuf {
    let mut data = vec![0x58, 62];
    data.extend([0xab; 62]); // one CBOR byte string, 64 bytes in all
    serde_bytes::ByteBuf::from(data)
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn percentile(v: &[Duration], p: f64) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn median(v: &[Duration]) -> Duration {
    percentile(v, 0.5)
}

/// Records when and after how many hops each message arrived.
struct Recorder {
    delivered: mpsc::Sender<(u64, u32, Instant)>,
}

impl Application for Recorder {
    fn deliver(&mut self, _api: &mut Api<'_>, msg: &RoutedMessage) {
        let _ = self.delivered.send((msg.id, msg.hops, Instant::now()));
    }
}

/// Per-hop latency of messages routed one at a time to random keys from
/// random nodes of a converged ring; also mean hops, and echo round trips
/// taken between the messages.
fn routed_per_hop(echo: &mut procs::Echo, plaintext: bool) -> (Vec<Duration>, f64, Vec<Duration>) {
    // The same keys every run, so both rings (sealed and plaintext) have
    // the same ids, the same routes and the same hops.
    let cfg = |i: usize, join| {
        let mut c = NodeConfig::new("127.0.0.1:0".parse().unwrap());
        c.join = join;
        c.key = Some(peerlet::net::NodeKey::from_secret([i as u8 + 1; 32]));
        c.tcp.link.plaintext = plaintext;
        c
    };
    let first = Node::spawn(cfg(0, None)).expect("spawn");
    let boot = first.addr();
    let mut nodes: Vec<NodeHandle> = vec![first];
    for i in 1..NODES {
        nodes.push(Node::spawn(cfg(i, Some(boot))).expect("spawn"));
    }
    for n in &nodes {
        n.wait_joined(Duration::from_secs(30)).expect("joined");
    }
    wait_converged(&nodes);
    let app = AppId::derive(b"bench", "recorder");
    let (tx, delivered) = mpsc::channel();
    for n in &nodes {
        let tx = tx.clone();
        n.call(move |kbr, _| kbr.register(app, Box::new(Recorder { delivered: tx })))
            .expect("register");
    }
    let mut rng = Rng::new(42);
    let (mut per_hop, mut rtts, mut hops_total) = (Vec::new(), Vec::new(), 0u64);
    for _ in 0..MESSAGES {
        rtts.push(echo.round_trip());
        let from = &nodes[rng.below(NODES as u64) as usize];
        let key = rng.id();
        let msg = AppMessage {
            app,
            app_type: AppType::EndNode,
            code: None,
            data: payload(),
            kind: peerlet::wire::AppKind::Message,
            refused_by: Vec::new(),
        };
        let (id, sent) = from
            .call(move |kbr, now| {
                let sent = Instant::now();
                (kbr.api(now).route(key, msg, None), sent)
            })
            .expect("route");
        let (got, hops, at) = delivered
            .recv_timeout(Duration::from_secs(10))
            .expect("delivered");
        assert_eq!(got, id, "messages are routed one at a time");
        if hops > 0 {
            hops_total += hops as u64;
            per_hop.push((at - sent) / hops);
        }
    }
    for n in &nodes {
        n.leave();
    }
    let mean_hops = hops_total as f64 / per_hop.len() as f64;
    (per_hop, mean_hops, rtts)
}

/// Waits until lookups from every node end at the oracle's root.
fn wait_converged(nodes: &[NodeHandle]) {
    let ring: Vec<NodeRef> = nodes.iter().map(|n| n.me()).collect();
    let from: Vec<&NodeHandle> = nodes.iter().collect();
    wait_converged_from(&from, &ring);
}

/// Waits until 10 lookups from each of `from` end at the oracle's root
/// among `ring`, 60 s at most.
fn wait_converged_from(from: &[&NodeHandle], ring: &[NodeRef]) {
    let oracle = Oracle::new(ring.to_vec());
    let end = Instant::now() + Duration::from_secs(60);
    let mut rng = Rng::new(7);
    'again: while Instant::now() < end {
        for n in from {
            for _ in 0..10 {
                let key = rng.id();
                match n.lookup(key) {
                    Ok(f) if f.root.id == oracle.successor(&key).id => {}
                    _ => {
                        std::thread::sleep(Duration::from_millis(200));
                        continue 'again;
                    }
                }
            }
        }
        return;
    }
    panic!("the ring did not converge within 60 s");
}
