//! A ring across hosts: five network namespaces on a bridge (see
//! tests/common/netns.rs), one `peerlet node` each, listening on all
//! addresses (`0.0.0.0` or `[::]`) and advertising what its host has, some
//! by IPv4 and some by IPv6 (the address their seed saw them come from),
//! joined through seeds of either family. It
//! checks what a user of several machines relies on: one ring of all;
//! every host's lookups reach the oracle's root; a value put on one host
//! is read on another;
//! a node restarted with its data keeps its id.
//!
//! Needs root. Without it the test says why and stops; with
//! `PEERLET_REQUIRE_NETNS=1` (CI sets it) it fails instead.

mod common;

use std::path::Path;
use std::time::Duration;

use common::netns::{addr, unavailable, BareHost, HostNode, Lab};
use common::{eventually, random_keys};
use peerlet::id::Id;
use peerlet::sim::Oracle;
use peerlet::wire::NodeRef;

const PORT: u16 = 47510;
const HOSTS: usize = 5;

/// False, after saying why, where namespaces cannot be made; a failure
/// instead when `PEERLET_REQUIRE_NETNS` is set.
fn can_run() -> bool {
    let Some(why) = unavailable() else {
        return true;
    };
    assert!(
        std::env::var_os("PEERLET_REQUIRE_NETNS").is_none(),
        "PEERLET_REQUIRE_NETNS is set, but the multi-host tests cannot run: {why}"
    );
    eprintln!("NOT RUN: the multi-host tests need network namespaces: {why}");
    false
}

#[test]
fn a_ring_across_hosts_routes_stores_and_heals() {
    if !can_run() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let lab = Lab::new(HOSTS);
    let (key_pub, dht) = signed_dht(work.path());

    // Host 0 starts the ring on [::]; the others alternate v4 and v6
    // listeners and seeds, so the ring holds both families.
    let seed_v4 = addr(lab.hosts[0].v4, PORT);
    let seed_v6 = addr(lab.hosts[0].v6, PORT);
    let args = |i: usize| -> Vec<String> {
        let mut a: Vec<String> = vec![
            "--trust".into(),
            key_pub.clone(),
            "--load".into(),
            dht.clone(),
        ];
        let listen = if i % 2 == 0 { "[::]" } else { "0.0.0.0" };
        a.extend(["--listen".into(), format!("{listen}:{PORT}")]);
        if i > 0 {
            // Two seeds, one address of host 0 per family, tried in turn.
            let (first, second) = match i % 2 {
                0 => (seed_v4.clone(), seed_v6.clone()),
                _ => (seed_v6.clone(), seed_v4.clone()),
            };
            a.extend(["--join".into(), first, "--join".into(), second]);
        }
        a
    };
    let data = |i: usize| work.path().join(format!("host{i}"));
    let mut nodes: Vec<HostNode> = (0..HOSTS)
        .map(|i| HostNode::start(&lab.hosts[i].ns, &data(i), &args(i)))
        .collect();

    // Each advertises its own host's address, of the family it listens on.
    for (i, node) in nodes.iter().enumerate() {
        let host = &lab.hosts[i];
        let want = match i % 2 {
            0 => addr(host.v6, PORT),
            _ => addr(host.v4, PORT),
        };
        assert_eq!(node.me.addr.to_string(), want, "host {i}");
        // A joiner takes the address its seed saw it come from.
        let log = std::fs::read_to_string(&node.log).unwrap();
        assert!(
            i == 0 || log.contains(&format!("advertising {want}, the address seed")),
            "host {i}: {}",
            node.log_tail()
        );
    }

    let live: Vec<NodeRef> = nodes.iter().map(|n| n.me).collect();
    let keys = random_keys(11, 6);
    eventually(Duration::from_secs(90), || one_ring(&nodes, &live, &keys));

    // A value put on host 1 is read on host 3 (through the overlay: the
    // key's root is wherever the ring puts it).
    put_get(&nodes, 1, 3, "colour", "blue");

    // Not yet checked here: a host cut off its bridge port for 60 s coming
    // back into one ring. With the Chord core of design.md §11 a node left
    // alone in its ring takes no notifier for its predecessor, and the cut
    // host (or two cut together) did not merge back within 300 s in three
    // runs, while halves of a ring cut in one process do (tests/partition.rs).
    // Issue 11 stays open for it.
    put_get(&nodes, 4, 0, "shape", "round");

    // Host 2's node stops at once and starts again with its data: the same
    // key, so the same id, back in the ring.
    let id = nodes[2].me.id;
    nodes[2].kill();
    nodes[2] = HostNode::start(&lab.hosts[2].ns, &data(2), &args(2));
    assert_eq!(nodes[2].me.id, id, "host 2 came back with another id");
    eventually(Duration::from_secs(90), || one_ring(&nodes, &live, &keys));
    for node in &mut nodes {
        node.kill();
    }
}

/// A host with no route to any of its seeds (no IPv6 at all, no IPv4
/// network) cannot be taken in by waiting: the node says why and exits.
/// One seed it can route to, even a late one, keeps it trying.
#[test]
fn a_node_that_cannot_route_to_its_seeds_stops_with_the_reason() {
    if !can_run() {
        return;
    }
    let host = BareHost::new();
    let run = |seeds: &[&str]| {
        let mut cmd = std::process::Command::new("ip");
        cmd.args([
            "netns",
            "exec",
            &host.ns,
            env!("CARGO_BIN_EXE_peerlet"),
            "node",
        ])
        .args(["--listen", "127.0.0.1:47510"]);
        for s in seeds {
            cmd.args(["--join", s]);
        }
        cmd
    };
    let out = run(&["[fd77::1]:47510", "10.77.0.1:47510"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("no seed can be reached from this host")
            && stderr.contains("no route to IPv6 address fd77::1")
            && stderr.contains("no route to IPv4 address 10.77.0.1"),
        "{stderr}"
    );
    // A late seed on this host's loopback: the node keeps trying.
    let mut child = run(&["[fd77::1]:47510", "127.0.0.1:47511"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let end = std::time::Instant::now() + Duration::from_secs(60);
    let mut retrying = false;
    while let Some(left) = end.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("no seed answered; trying again") => {
                retrying = true;
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(retrying, "the node did not keep trying its late seed");
}

/// Every node's successor is the oracle's, and `.trace` from every node
/// ends at the oracle's root of each key.
fn one_ring(nodes: &[HostNode], live: &[NodeRef], keys: &[Id]) -> Result<(), String> {
    let oracle = Oracle::new(live.to_vec());
    for node in nodes {
        let succ = node.console("return kbr.neighbor_set(1)[1].id")?;
        let want = oracle.successors_of(&node.me.id, 1)[0].id.to_string();
        if succ.trim_matches('"') != want {
            return Err(format!("{:?}: successor {succ}, want {want}", node.me));
        }
        for key in keys {
            let trace = node.console(&format!(".trace {key}"))?;
            let root = oracle.successor(key).id.short(8);
            let ends = trace.lines().last().unwrap_or("");
            if !(ends.contains(&root) && ends.ends_with("root")) {
                return Err(format!(
                    "{:?}: trace to {key} ends `{ends}`, want {root}",
                    node.me
                ));
            }
        }
    }
    Ok(())
}

/// `dht:put` on node `from`, `dht:get` on node `to`, of the same key.
fn put_get(nodes: &[HostNode], from: usize, to: usize, key: &str, value: &str) {
    let handle = format!("local d = peerlet.lookup(kbr.key(\"{key}\"), \"dht\")");
    let put = format!("{handle}; return d:put(\"{key}\", \"{value}\")");
    let get = format!("{handle}; return (d:get(\"{key}\"))");
    eventually(Duration::from_secs(30), || {
        nodes[from].console(&put).map(drop)
    });
    eventually(Duration::from_secs(30), || {
        let got = nodes[to].console(&get)?;
        match got.trim_matches('"') == value {
            true => Ok(()),
            false => Err(format!("get {key} on host {to}: {got}, want {value}")),
        }
    });
}

/// A publisher key and dht.lua signed with it, in `dir`: every node
/// trusts the key and installs the sample.
fn signed_dht(dir: &Path) -> (String, String) {
    let bin = env!("CARGO_BIN_EXE_peerlet");
    let (public, secret) = (dir.join("lab.pub"), dir.join("lab.key"));
    let run = |args: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new(bin).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "keygen".as_ref(),
        "--pub".as_ref(),
        public.as_os_str(),
        "--sec".as_ref(),
        secret.as_os_str(),
    ]);
    let dht = dir.join("dht.lua");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("peerlets/dht.lua"),
        &dht,
    )
    .unwrap();
    run(&[
        "sign".as_ref(),
        "--sec".as_ref(),
        secret.as_os_str(),
        dht.as_os_str(),
    ]);
    (
        public.to_string_lossy().into_owned(),
        dht.to_string_lossy().into_owned(),
    )
}
