//! What the web view costs a ring (`cargo bench --bench web`; prints
//! figures, asserts nothing): a snapshot of every node (what one server-sent
//! event carries, once a second per open page) against the cheapest thing
//! one can ask a node (an empty call), both taken in the same run over
//! the same ring; the node threads' own time per snapshot; the size of an
//! event; and a snapshot through HTTP on loopback (`GET /api/ring`).

#![forbid(unsafe_code)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use peerlet::node::NodeHandle;
use peerlet::web::RingSnapshot;

const ROUNDS: u32 = 200;

fn busy(nodes: &[Arc<NodeHandle>]) -> Duration {
    nodes.iter().map(|n| n.stats().busy).sum()
}

/// Wall time per round of `f` over the ring, and node-thread time per
/// round per node.
fn measure(nodes: &[Arc<NodeHandle>], mut f: impl FnMut()) -> (Duration, Duration) {
    let (t, b) = (Instant::now(), busy(nodes));
    for _ in 0..ROUNDS {
        f();
    }
    let wall = t.elapsed() / ROUNDS;
    let thread = busy(nodes).saturating_sub(b) / ROUNDS / nodes.len() as u32;
    (wall, thread)
}

fn get_ring(addr: std::net::SocketAddr) -> usize {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /api/ring HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = Vec::new();
    s.read_to_end(&mut body).unwrap();
    body.len()
}

fn main() {
    println!("| nodes | empty call, all nodes | snapshot, all nodes | ratio | node thread per snapshot per node (empty call) | event bytes | GET /api/ring | ratio to snapshot |");
    println!("|---|---|---|---|---|---|---|---|");
    for n in [10, 30] {
        let nodes: Vec<Arc<NodeHandle>> = common::converged_ring(n, common::spawn_fast)
            .into_iter()
            .map(Arc::new)
            .collect();
        // Warm up both paths.
        for _ in 0..20 {
            let _ = RingSnapshot::take(&nodes);
        }
        let (empty, empty_thread) = measure(&nodes, || {
            for node in &nodes {
                node.call(|_, _| ()).unwrap();
            }
        });
        let (snap, snap_thread) = measure(&nodes, || {
            std::hint::black_box(RingSnapshot::take(&nodes));
        });
        let bytes = serde_json::to_string(&RingSnapshot::take(&nodes))
            .unwrap()
            .len();
        let web = peerlet::web::serve(
            "127.0.0.1:0".parse().unwrap(),
            Arc::new(nodes.clone()),
            None,
        )
        .unwrap();
        let addr = web.addr();
        let (http, _) = measure(&nodes, || {
            std::hint::black_box(get_ring(addr));
        });
        let us = |d: Duration| format!("{:.0} µs", d.as_secs_f64() * 1e6);
        println!(
            "| {n} | {} | {} | {:.1}x | {} ({}) | {bytes} | {} | {:.2}x |",
            us(empty),
            us(snap),
            snap.as_secs_f64() / empty.as_secs_f64(),
            us(snap_thread),
            us(empty_thread),
            us(http),
            http.as_secs_f64() / snap.as_secs_f64(),
        );
        drop(web);
    }
}
