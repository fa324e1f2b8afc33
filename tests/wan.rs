//! An emulated wide-area network (`testnet --latency 25ms`): frames
//! between two nodes take the pair's latency, so a trace shows wide-area
//! times. (Loss is tested in `net::wan`: the Chord core still takes one
//! lost answer for a failed peer, so a lossy ring converges slowly; issue
//! 14's failure detection is the place to fix that.)

mod common;

use std::time::Duration;

use common::{converged_ring, fast_config};
use peerlet::id::Id;
use peerlet::net::wan::Wan;
use peerlet::node::{Node, NodeHandle};

fn spawn_with(wan: Wan) -> impl Fn(Option<std::net::SocketAddr>) -> NodeHandle {
    move |join| {
        let mut cfg = fast_config(join);
        cfg.tcp.wan = Some(wan);
        Node::spawn(cfg).expect("spawn")
    }
}

#[test]
fn a_trace_shows_the_latency_of_every_hop() {
    let one_way = Duration::from_millis(25);
    let wan = Wan {
        latency: (one_way, one_way),
        loss: 0.0,
        seed: 1,
    };
    let nodes = converged_ring(4, spawn_with(wan));
    let from = &nodes[0];
    // A key another node roots: at least one hop.
    let key = (0..)
        .map(|i| Id::key(format!("far-{i}")))
        .find(|k| from.lookup(*k).expect("lookup").root.id != from.id())
        .unwrap();
    let report = from.trace(key).expect("trace");
    assert!(report.incomplete.is_none(), "{report:?}");
    let hops: Vec<_> = report.hops.iter().filter(|h| h.hop > 0).collect();
    assert!(!hops.is_empty(), "{report:?}");
    for h in hops {
        // Out to the node (one way per hop at least) and its report back.
        let least = one_way * (h.hop + 1);
        assert!(
            h.after >= least,
            "hop {} heard after {:?}, before {least:?}",
            h.hop,
            h.after
        );
    }
}
