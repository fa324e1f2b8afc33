//! A `peerlet node` process fed bad input on fresh connections closes each
//! of them with exactly one warning naming the reason, and keeps serving: a
//! second node's lookups through it succeed throughout.

#![forbid(unsafe_code)]

mod common;

use std::io::{BufRead, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{eventually, lookups_match_oracle, random_keys, spawn_fast, NodeProcess};
use peerlet::id::Id;
use peerlet::node::NodeHandle;
use peerlet::wire::{encode_frame, Message, NodeRef, DEFAULT_MAX_FRAME, PROTOCOL_VERSION};

struct Target {
    proc: NodeProcess,
    log: Arc<Mutex<Vec<String>>>,
    other: NodeHandle,
}

impl Target {
    fn start() -> Target {
        let mut proc = NodeProcess::start(None, &["--frame-timeout-ms", "1500"], Stdio::piped());
        let stderr = proc.child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                sink.lock().unwrap().push(line);
            }
        });
        let other = spawn_fast(Some(proc.me.addr));
        other.wait_joined(Duration::from_secs(20)).expect("joined");
        Target { proc, log, other }
    }

    /// Lookups from the second node, half of which the process must answer.
    fn still_serves(&mut self, round: u64) {
        let live = [self.proc.me, self.other.me()];
        eventually(Duration::from_secs(20), || {
            lookups_match_oracle(&[&self.other], &live, &random_keys(round, 20), round)
        });
        let exited = self.proc.child.try_wait().expect("try_wait");
        assert!(exited.is_none(), "the node process must keep running");
    }

    /// Waits for the one warning about the connection from `peer`, which
    /// must contain `reason`, and checks no second one follows.
    fn expect_one_line(&self, peer: std::net::SocketAddr, reason: &str) {
        let tag = format!("from {peer}");
        let lines = || -> Vec<String> {
            let log = self.log.lock().unwrap();
            log.iter().filter(|l| l.contains(&tag)).cloned().collect()
        };
        eventually(Duration::from_secs(10), || match lines().len() {
            0 => Err(format!("no log line about {peer}")),
            _ => Ok(()),
        });
        let got = lines();
        assert_eq!(got.len(), 1, "exactly one line about {peer}: {got:?}");
        assert!(got[0].contains("WARN"), "a warning: {}", got[0]);
        assert!(got[0].contains(reason), "`{reason}` in: {}", got[0]);
        eprintln!("{}", got[0]);
    }
}

/// Sends `bytes` on a new connection (then half-closes if `end`), and
/// asserts the node closes it. Returns the connection's local address.
fn feed(target: &Target, bytes: &[u8], end: bool) -> std::net::SocketAddr {
    let mut s = TcpStream::connect(target.proc.me.addr).expect("connect");
    let local = s.local_addr().unwrap();
    s.write_all(bytes).expect("write");
    if end {
        s.shutdown(Shutdown::Write).expect("half-close");
    }
    assert_closed(&mut s);
    local
}

fn assert_closed(s: &mut TcpStream) {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("expected the node to close the connection, got {other:?}"),
    }
}

fn hello(version: u32) -> Vec<u8> {
    let node = NodeRef {
        id: Id::key("intruder"),
        addr: "127.0.0.1:9".parse().unwrap(),
    };
    encode_frame(&Message::Hello { version, node }, DEFAULT_MAX_FRAME).unwrap()
}

#[test]
fn bad_input_closes_only_that_connection_with_one_warning_each() {
    let mut target = Target::start();
    target.still_serves(1);

    let mut garbage = vec![0, 0, 0, 8];
    garbage.extend([0xff; 8]);
    let peer = feed(&target, &garbage, false);
    target.expect_one_line(peer, "does not decode");
    target.still_serves(2);

    let oversize = (2u32 << 20).to_be_bytes();
    let peer = feed(&target, &oversize, false);
    target.expect_one_line(peer, "exceeds the maximum");
    target.still_serves(3);

    let frame = hello(PROTOCOL_VERSION);
    let peer = feed(&target, &frame[..frame.len() - 3], true);
    target.expect_one_line(peer, "ended early");
    target.still_serves(4);

    let notify = encode_frame(&Message::Notify, DEFAULT_MAX_FRAME).unwrap();
    let peer = feed(&target, &notify, false);
    target.expect_one_line(peer, "expected hello first, got notify");
    target.still_serves(5);

    let peer = feed(&target, &hello(PROTOCOL_VERSION + 98), false);
    let versions = format!(
        "version {}, we speak {PROTOCOL_VERSION}",
        PROTOCOL_VERSION + 98
    );
    target.expect_one_line(peer, &versions);
    target.still_serves(6);

    // One byte a second of a valid hello: the frame never completes in time.
    let mut slow = TcpStream::connect(target.proc.me.addr).expect("connect");
    let peer = slow.local_addr().unwrap();
    let trickle = std::thread::spawn(move || {
        slow.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let start = Instant::now();
        for byte in hello(PROTOCOL_VERSION) {
            if slow.write_all(&[byte]).is_err() {
                return start.elapsed();
            }
            let mut buf = [0u8; 1];
            match slow.read(&mut buf) {
                Ok(0) => return start.elapsed(),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    return start.elapsed()
                }
                _ => {} // still open after a second: next byte
            }
        }
        panic!("the slow connection was never closed");
    });
    target.still_serves(7);
    let took = trickle.join().expect("trickle thread");
    assert!(took < Duration::from_secs(5), "closed after {took:?}");
    target.expect_one_line(peer, "too slow");
    target.still_serves(8);
}
