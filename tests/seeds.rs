//! `peerlet node --join`: seeds by name or address, tried in turn and again
//! until one answers (a node may start before its seed); a name that does
//! not resolve stops the node with the reason; a node listening on all
//! addresses advertises one that others reach; IPv6 rings.

mod common;

use std::io::BufRead;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{eventually, lookups_match_oracle, random_keys, spawn_fast, FAST_FLAGS};
use peerlet::node::{Node, NodeHandle};
use peerlet::wire::NodeRef;

/// A `peerlet node` process and its `listening ADDR id HEX` line, when it
/// comes.
struct Started {
    child: Child,
    line: mpsc::Receiver<String>,
}

impl Started {
    fn new(args: &[&str]) -> Started {
        let mut child = Command::new(env!("CARGO_BIN_EXE_peerlet"))
            .arg("node")
            .args(FAST_FLAGS)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run peerlet");
        let stdout = child.stdout.take().unwrap();
        let (tx, line) = mpsc::channel();
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if l.starts_with("listening ") {
                    let _ = tx.send(l);
                }
            }
        });
        Started { child, line }
    }

    /// The node as its listening line names it.
    fn listening(&self, limit: Duration) -> NodeRef {
        let line = self.line.recv_timeout(limit).expect("a listening line");
        let w: Vec<&str> = line.split_whitespace().collect();
        NodeRef {
            addr: w[1].parse().unwrap(),
            id: w[3].parse().unwrap(),
        }
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_node_started_before_its_seed_joins_once_the_seed_is_up() {
    let port = free_port();
    let seed_addr = format!("127.0.0.1:{port}");
    // A dead seed first, then the real one, by name.
    let dead = format!("127.0.0.1:{}", free_port());
    let early = Started::new(&[
        "--listen",
        "127.0.0.1:0",
        "--join",
        &dead,
        "--join",
        &format!("localhost:{port}"),
    ]);
    // No ring yet: it keeps trying (and says so on stderr).
    assert!(early.line.recv_timeout(Duration::from_secs(3)).is_err());
    let seed = Started::new(&["--listen", &seed_addr]);
    let seed_ref = seed.listening(Duration::from_secs(30));
    let joined = early.listening(Duration::from_secs(60));
    let me = spawn_fast(Some(seed_ref.addr));
    me.wait_joined(Duration::from_secs(20)).expect("joined");
    let live = [seed_ref, joined, me.me()];
    eventually(Duration::from_secs(30), || {
        lookups_match_oracle(&[&me], &live, &random_keys(5, 20), 5)
    });
}

#[test]
fn a_port_in_use_stops_the_node_with_the_reason() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_peerlet"))
        .args(["node", "--listen", &addr])
        .output()
        .expect("run peerlet");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot start a node on {addr}")) && err.contains("in use"),
        "{err}"
    );
}

#[test]
fn a_name_that_does_not_resolve_stops_the_node_with_the_reason() {
    let out = Command::new(env!("CARGO_BIN_EXE_peerlet"))
        .args([
            "node",
            "--listen",
            "127.0.0.1:0",
            "--join",
            "no-such-host.invalid:47510",
        ])
        .output()
        .expect("run peerlet");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot resolve") && err.contains("no-such-host.invalid"),
        "{err}"
    );
}

#[test]
fn a_node_on_all_addresses_advertises_an_address_others_reach() {
    let seed = spawn_fast(None);
    seed.wait_joined(Duration::from_secs(10)).unwrap();
    let node = Started::new(&["--listen", "0.0.0.0:0", "--join", &seed.addr().to_string()]);
    let me = node.listening(Duration::from_secs(30));
    assert_eq!(me.addr.ip().to_string(), "127.0.0.1", "{me:?}");
    assert_ne!(me.addr.port(), 0);
    let live = [seed.me(), me];
    eventually(Duration::from_secs(30), || {
        lookups_match_oracle(&[&seed], &live, &random_keys(6, 20), 6)
    });
}

#[test]
fn a_ring_on_ipv6_routes_and_prints_bracketed_addresses() {
    let spawn = |join: Option<SocketAddr>| -> NodeHandle {
        let mut cfg = common::fast_config(join);
        cfg.listen = "[::1]:0".parse().unwrap();
        Node::spawn(cfg).expect("spawn on [::1] (this host needs IPv6 loopback)")
    };
    let nodes = common::converged_ring(3, spawn);
    for n in &nodes {
        let shown = format!("{:?}", n.me());
        assert!(shown.contains("@[::1]:"), "{shown}");
    }
}
