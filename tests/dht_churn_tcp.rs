//! peerlets/dht.lua over TCP while nodes are killed, shortened (the full
//! soak, 20 processes for 5 minutes, is `cargo bench --bench dht_churn --
//! tcp`): 6 `peerlet node` processes, one killed with SIGKILL and restarted
//! with its data every 5 s for 30 s, while two clients put and get through
//! the nodes' control sockets. No acknowledged put is lost (each reads back
//! once the ring has healed) and every get is answered (by another node
//! when the one asked was being killed). Gets during the churn may miss a
//! put acknowledged under another view of the ring: counted, not asserted.

#![forbid(unsafe_code)]

mod common;

use std::time::Duration;

use common::dht_tcp_churn::{run, TcpSoak};

#[test]
fn dht_over_tcp_keeps_every_acknowledged_put_while_nodes_are_killed_and_restarted() {
    let soak = TcpSoak {
        nodes: 6,
        clients: 2,
        kill_every: Duration::from_secs(5),
        duration: Duration::from_secs(30),
        seed: 14,
    };
    let report = run(&soak);
    eprintln!("{report:?}");
    assert!(report.kills >= 3, "{report:?}");
    assert!(report.acked >= 20, "puts went through: {report:?}");
    assert_eq!(report.unanswered, Vec::<String>::new(), "{report:?}");
    assert_eq!(report.lost, Vec::<String>::new(), "{report:?}");
}
