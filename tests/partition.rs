//! A partitioned ring over loopback TCP (`.partition` / `.heal` in the
//! console of `demo` and `testnet`, `net::cut`): while cut, each group
//! routes every key to the root among its own nodes; once healed, the
//! groups merge into one ring again, with no node restarted.

mod common;

use std::time::Duration;

use common::neighbours_match_oracle;
use common::{converged_ring, eventually, fast_config, lookups_match_oracle, random_keys};
use peerlet::net::cut::Cut;
use peerlet::node::{Node, NodeHandle};
use peerlet::wire::NodeRef;

#[test]
fn a_cut_ring_routes_within_each_half_then_merges_when_healed() {
    let cut = Cut::default();
    let nodes = {
        let cut = cut.clone();
        converged_ring(8, move |join| {
            let mut cfg = fast_config(join);
            cfg.tcp.cut = Some(cut.clone());
            Node::spawn(cfg).expect("spawn")
        })
    };
    // Two halves by position on the ring, so each half is an arc and the
    // other half's keys move to it.
    let mut by_id: Vec<&NodeHandle> = nodes.iter().collect();
    by_id.sort_by_key(|n| n.id());
    let (a, b) = by_id.split_at(4);
    // Not along the arcs: each group takes every other node, so both
    // halves must repair their successor lists and fingers.
    let group = |parity: usize| -> Vec<&NodeHandle> {
        a.iter()
            .chain(b.iter())
            .enumerate()
            .filter(|(i, _)| i % 2 == parity)
            .map(|(_, n)| *n)
            .collect()
    };
    let (even, odd) = (group(0), group(1));
    let addrs = |g: &[&NodeHandle]| g.iter().map(|n| n.addr()).collect::<Vec<_>>();
    cut.partition(&[addrs(&even), addrs(&odd)]);

    let keys = random_keys(7, 40);
    for half in [&even, &odd] {
        let live: Vec<NodeRef> = half.iter().map(|n| n.me()).collect();
        eventually(Duration::from_secs(60), || {
            neighbours_match_oracle(half, &live)?;
            lookups_match_oracle(half, &live, &keys, 1)
        });
    }

    cut.heal();
    let all: Vec<&NodeHandle> = nodes.iter().collect();
    let live: Vec<NodeRef> = nodes.iter().map(|n| n.me()).collect();
    eventually(Duration::from_secs(90), || {
        neighbours_match_oracle(&all, &live)?;
        lookups_match_oracle(&all, &live, &keys, 1)
    });
}
