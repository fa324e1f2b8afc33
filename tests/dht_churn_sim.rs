//! peerlets/dht.lua under churn in the simulator, shortened (the full soak,
//! 1,000 nodes for 30 minutes, is `cargo bench --bench dht_churn`): 100
//! nodes at Bamboo's churn rate per node (median session about 1.4 min) for
//! 4 minutes of virtual time, 400 keys put through dht.lua, read back from
//! the nodes that are members of the ring at the end.
//!
//! The goal (issue 14) is that every acknowledged key reads back, but for
//! those all of whose copies failed between two repairs (counted and
//! shown). On the Chord core of design.md §11 that does not hold yet: with
//! seed 41, 1 of 393 acknowledged keys reads back as nil; with seed 42, 4 of
//! 394 (this dht.lua was written against the core before §11, where seed 41
//! lost none). Until that is found, this test holds the loss to what was
//! measured, at most 2% of the acknowledged keys, over two seeds, so that a
//! change that loses more fails here; the goal stays open in the issue.

mod common;

use common::dht_churn::{run, Soak};

#[test]
fn dht_loses_at_most_two_percent_of_acknowledged_keys_while_a_hundred_nodes_churn() {
    for seed in [41, 42] {
        let soak = Soak {
            nodes: 100,
            churn: 1.65,
            duration: 240.0,
            keys: 400,
            seed,
            stabilize: 5.0,
            progress: false,
        };
        let report = run(&soak, &common::samples::source("dht"));
        println!("seed {seed}: {report:?}");
        assert!(report.crashes >= 150, "churned: {report:?}");
        assert!(report.acked >= 300, "most puts acknowledged: {report:?}");
        assert!(
            report.lost_to_churn * 20 <= report.acked,
            "few keys lose all copies between repairs: {report:?}"
        );
        assert!(
            report.lost.len() * 50 <= report.acked,
            "acknowledged keys lost beyond churn: {report:?}"
        );
        assert_eq!(report.get_errors, 0, "every get answered: {report:?}");
    }
}
