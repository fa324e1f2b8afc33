//! peerlets/dht.lua under churn in the simulator, shortened (the full soak,
//! 1,000 nodes for 30 minutes, is `cargo bench --bench dht_churn`): 100
//! nodes at Bamboo's churn rate per node (median session about 1.4 min) for
//! 4 minutes of virtual time, 400 keys put through dht.lua. Every
//! acknowledged key reads back, but those all of whose copies failed
//! between two repairs (counted and shown).

mod common;

use common::dht_churn::{run, Soak};

#[test]
fn dht_keeps_every_acknowledged_key_while_a_hundred_nodes_churn() {
    let soak = Soak {
        nodes: 100,
        churn: 1.65,
        duration: 240.0,
        keys: 400,
        seed: 41,
        stabilize: 5.0,
        progress: false,
    };
    let report = run(&soak, &common::samples::source("dht"));
    println!("{report:?}");
    assert!(report.crashes >= 150, "churned: {report:?}");
    assert!(report.acked >= 300, "most puts acknowledged: {report:?}");
    assert!(
        report.lost_to_churn * 20 <= report.acked,
        "few keys lose all copies between repairs: {report:?}"
    );
    assert_eq!(report.lost, Vec::<String>::new(), "{report:?}");
}
