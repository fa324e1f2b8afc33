//! The route tracer (`.trace KEY`) over the simulated ring: every hop
//! reports, in order, from the source (hop 0) to the key's root, with the
//! time until the source heard from it; a trace whose root cannot answer
//! ends at its deadline, marked incomplete.

#![forbid(unsafe_code)]

mod common;

use std::sync::mpsc;
use std::time::Duration;

use peerlet::id::Id;
use peerlet::kbr::trace::{TraceReport, Tracer, TRACE_APP};
use peerlet::sim::SimNet;

/// A tracer on every node; returns node 0's.
fn tracers(net: &mut SimNet) -> Tracer {
    let mut first = None;
    for i in 0..net.len() {
        let t = Tracer::new();
        first.get_or_insert_with(|| t.clone());
        net.register_app(i, TRACE_APP, Box::new(t));
    }
    first.expect("nodes")
}

fn trace(net: &mut SimNet, tracer: &Tracer, key: Id, timeout: Duration) -> TraceReport {
    let (tx, rx) = mpsc::channel();
    let done = Box::new(move |r| {
        let _ = tx.send(r);
    });
    net.with_node(0, |kbr, now| {
        tracer.start(&mut kbr.api(now), key, timeout, done);
    });
    net.run_for(timeout + Duration::from_secs(1));
    rx.try_recv().expect("the trace ended")
}

#[test]
fn trace_reports_each_hop_in_order_and_ends_at_the_root() {
    let (mut net, mut rng) = common::sim::converged(64, 7);
    let tracer = tracers(&mut net);
    let oracle = net.oracle();
    let mut longest = 0;
    for _ in 0..30 {
        let key = rng.id();
        let report = trace(&mut net, &tracer, key, Duration::from_secs(5));
        assert_eq!(report.key, key);
        assert_eq!(report.incomplete, None, "{report:?}");
        let hops = &report.hops;
        assert_eq!(hops[0].hop, 0);
        assert_eq!(hops[0].node, net.me(0), "the source is hop 0");
        for (i, h) in hops.iter().enumerate() {
            assert_eq!(h.hop as usize, i, "one report per hop: {report:?}");
            assert_eq!(h.root, i == hops.len() - 1, "{report:?}");
        }
        let root = hops.last().unwrap();
        assert_eq!(root.node.id, oracle.successor(&key).id, "{report:?}");
        if root.hop > 0 {
            // There and back over links of at least 5 ms each.
            assert!(root.after >= Duration::from_millis(10), "{report:?}");
        }
        longest = longest.max(hops.len());
    }
    assert!(longest >= 3, "some traces take several hops");
}

#[test]
fn trace_without_an_answer_from_the_root_ends_incomplete() {
    let (mut net, mut rng) = common::sim::converged(16, 8);
    let tracer = tracers(&mut net);
    let oracle = net.oracle();
    // A key whose root is not node 0, then the root crashes unnoticed for
    // longer than the trace waits.
    let key = loop {
        let k = rng.id();
        if oracle.successor(&k).id != net.me(0).id {
            break k;
        }
    };
    let root = (0..net.len())
        .find(|&i| net.me(i).id == oracle.successor(&key).id)
        .unwrap();
    net.crash(root);
    let report = trace(&mut net, &tracer, key, Duration::from_millis(300));
    let why = report.incomplete.as_deref().expect("incomplete");
    assert!(why.contains("no answer from the root"), "{why}");
    assert!(!report.hops.iter().any(|h| h.root), "{report:?}");
    assert_eq!(report.hops[0].node, net.me(0), "the source still reported");
}
