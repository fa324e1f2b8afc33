//! A ring of 20 in-process nodes over real loopback TCP: lookups end at the
//! oracle's root, and again after crashes and after graceful leaves.

#![forbid(unsafe_code)]

mod common;

use std::time::Duration;

use common::{eventually, lookups_match_oracle, random_keys, spawn_fast};
use peerlet::node::NodeHandle;
use peerlet::wire::NodeRef;

const REPAIR: Duration = Duration::from_secs(60);

fn check_all(nodes: &[NodeHandle], round: u64) -> Result<(), String> {
    let from: Vec<&NodeHandle> = nodes.iter().collect();
    let live: Vec<NodeRef> = nodes.iter().map(|n| n.me()).collect();
    lookups_match_oracle(&from, &live, &random_keys(round, 200), round)
}

#[test]
fn lookups_reach_the_oracle_root_through_crashes_and_leaves() {
    let first = spawn_fast(None);
    let bootstrap = first.addr();
    let mut nodes = vec![first];
    for _ in 1..20 {
        nodes.push(spawn_fast(Some(bootstrap)));
    }
    for n in &nodes {
        n.wait_joined(Duration::from_secs(20)).expect("joined");
    }
    let t = std::time::Instant::now();
    eventually(REPAIR, || check_all(&nodes, 1));
    eprintln!("ring of 20 correct after {:?}", t.elapsed());

    // Four nodes crash at once (not the bootstrap: it does not matter, but
    // keeps the survivors' story simple to read in logs).
    let crashed: Vec<NodeHandle> = [3, 7, 11, 15]
        .iter()
        .rev()
        .map(|&i| nodes.remove(i))
        .collect();
    for n in &crashed {
        n.kill();
    }
    let t = std::time::Instant::now();
    eventually(REPAIR, || check_all(&nodes, 2));
    eprintln!("correct again {:?} after 4 crashes", t.elapsed());

    // Two more leave gracefully: their neighbours hear it and close the gap.
    let left: Vec<NodeHandle> = [4, 9].iter().rev().map(|&i| nodes.remove(i)).collect();
    for n in &left {
        n.leave();
        assert!(!n.is_running());
    }
    let t = std::time::Instant::now();
    eventually(REPAIR, || check_all(&nodes, 3));
    eprintln!("correct again {:?} after 2 leaves", t.elapsed());
    let dropped: u64 = nodes.iter().map(|n| n.stats().dropped_queue_full).sum();
    assert_eq!(
        dropped, 0,
        "no outgoing queue should overflow in a quiet ring"
    );
}

#[test]
fn joining_through_an_unreachable_node_fails_with_the_reason() {
    // A port nobody listens on: bound, then freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let node = common::spawn_fast(Some(port));
    match node.wait_joined(Duration::from_secs(60)) {
        Err(peerlet::node::NodeError::JoinFailed { reason, .. }) => {
            assert!(reason.contains(&format!("cannot reach {port}")), "{reason}");
        }
        other => panic!("expected a failed join, got {other:?}"),
    }
    node.kill();
}
