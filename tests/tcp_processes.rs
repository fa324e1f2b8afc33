//! Twenty `peerlet node` processes on loopback: an in-process node joins
//! them and its lookups end at the oracle's root, before and after four
//! processes are killed, and after two freeze (their connections stay open:
//! only timeouts find them out); SIGTERM makes a node leave and exit 0.

#![forbid(unsafe_code)]

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{eventually, lookups_match_oracle, random_keys, spawn_fast, NodeProcess};
use peerlet::wire::NodeRef;

const REPAIR: Duration = Duration::from_secs(60);

#[test]
fn separate_processes_form_a_ring_that_survives_kills() {
    let first = NodeProcess::start(None, &[], Stdio::null());
    let bootstrap = first.me.addr;
    let mut procs = vec![first];
    for _ in 1..20 {
        procs.push(NodeProcess::start(Some(bootstrap), &[], Stdio::null()));
    }
    let me = spawn_fast(Some(bootstrap));
    me.wait_joined(Duration::from_secs(20)).expect("joined");
    let check = |procs: &[NodeProcess], round: u64| {
        let mut live: Vec<NodeRef> = procs.iter().map(|p| p.me).collect();
        live.push(me.me());
        lookups_match_oracle(&[&me], &live, &random_keys(round, 200), round)
    };
    let t = Instant::now();
    eventually(REPAIR, || check(&procs, 1));
    eprintln!("21 nodes correct after {:?}", t.elapsed());

    for i in [2, 6, 10, 14] {
        procs[i].child.kill().expect("SIGKILL");
        procs[i].child.wait().expect("reap");
    }
    for i in [14, 10, 6, 2] {
        procs.remove(i);
    }
    let mut frozen = Vec::new(); // killed when dropped, like the others
    let t = Instant::now();
    eventually(REPAIR, || check(&procs, 2));
    eprintln!("correct again {:?} after 4 SIGKILLs", t.elapsed());

    for i in [12, 3] {
        procs[i].freeze();
        frozen.push(procs.remove(i));
    }
    let t = Instant::now();
    eventually(REPAIR, || check(&procs, 4));
    eprintln!("correct again {:?} after 2 SIGSTOPs", t.elapsed());

    let mut leaving = procs.remove(5);
    leaving.terminate();
    let status = leaving.wait_exit(Duration::from_secs(20));
    assert!(
        status.success(),
        "SIGTERM should end in exit 0, got {status}"
    );
    let t = Instant::now();
    eventually(REPAIR, || check(&procs, 3));
    eprintln!("correct again {:?} after SIGTERM", t.elapsed());
}
