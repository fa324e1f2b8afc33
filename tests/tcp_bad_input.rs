//! A `peerlet node` process fed bad input on fresh connections (before,
//! in and after the handshake) closes each of them with exactly one warning
//! naming the reason, and keeps serving: a second node's lookups through it
//! succeed throughout.

#![forbid(unsafe_code)]

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use common::attack::LoggedNode;
use common::wire_peer::{chosen_id, WirePeer};
use common::{eventually, lookups_match_oracle, random_keys, spawn_fast};
use peerlet::net::secure;
use peerlet::node::NodeHandle;
use peerlet::wire::{encode_frame, Message, DEFAULT_MAX_FRAME, PROTOCOL_VERSION};

struct Target {
    node: LoggedNode,
    other: NodeHandle,
}

impl Target {
    fn start() -> Target {
        let node = LoggedNode::start(&["--frame-timeout-ms", "1500"]);
        let other = spawn_fast(Some(node.proc.me.addr));
        other.wait_joined(Duration::from_secs(20)).expect("joined");
        Target { node, other }
    }

    /// Lookups from the second node, half of which the process must answer.
    fn still_serves(&mut self, round: u64) {
        let live = [self.node.proc.me, self.other.me()];
        eventually(Duration::from_secs(20), || {
            lookups_match_oracle(&[&self.other], &live, &random_keys(round, 20), round)
        });
        let exited = self.node.proc.child.try_wait().expect("try_wait");
        assert!(exited.is_none(), "the node process must keep running");
    }

    /// Waits for the one warning about the connection from `peer`, which
    /// must contain `reason`, and checks no second one follows.
    fn expect_one_line(&self, peer: std::net::SocketAddr, reason: &str) {
        let tag = format!("from {peer}");
        let lines = || -> Vec<String> {
            let log = self.node.log.lock().unwrap();
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
    let mut s = TcpStream::connect(target.node.proc.me.addr).expect("connect");
    let local = s.local_addr().unwrap();
    s.write_all(bytes).expect("write");
    if end {
        s.shutdown(Shutdown::Write).expect("half-close");
    }
    assert_closed(&mut s);
    local
}

/// Sends `bytes` as the plaintext of records on a new secure link (then
/// half-closes if `end`), and asserts the node closes it.
fn feed_sealed(target: &Target, peer: &WirePeer, bytes: &[u8], end: bool) -> std::net::SocketAddr {
    let mut link = peer.link(target.node.proc.me.addr).expect("handshake");
    let local = link.stream.local_addr().unwrap();
    link.send_frame(bytes).expect("write");
    if end {
        link.stream.shutdown(Shutdown::Write).expect("half-close");
    }
    assert_closed(&mut link.stream);
    local
}

/// Opens a link whose handshake carries `hello`, and asserts the node
/// closes it.
fn feed_hello(target: &Target, peer: &WirePeer, hello: &[u8]) -> std::net::SocketAddr {
    let s = TcpStream::connect(target.node.proc.me.addr).expect("connect");
    let local = s.local_addr().unwrap();
    let mut conn = async_net::TcpStream::try_from(s.try_clone().unwrap()).unwrap();
    let shook = smol::block_on(secure::initiate_with(
        &mut conn,
        &peer.key,
        hello,
        &peer.settings,
    ));
    if let Err(e) = shook {
        panic!("our side of the handshake completes: {e}");
    }
    drop(conn);
    s.set_nonblocking(false).unwrap();
    assert_closed(&mut s.try_clone().unwrap());
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

fn hello(peer: &WirePeer, version: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let hello = Message::Hello {
        version,
        node: peer.me,
        seen: None,
    };
    ciborium::into_writer(&hello, &mut out).unwrap();
    out
}

#[test]
fn bad_input_closes_only_that_connection_with_one_warning_each() {
    let mut target = Target::start();
    let peer = WirePeer::start();
    target.still_serves(1);

    // Not a handshake at all.
    let conn = feed(&target, &[0xff, 0xff, 1, 2, 3], false);
    target.expect_one_line(conn, "too large");
    target.still_serves(2);

    // Handshakes that prove a key but say the wrong thing.
    let notify = encode_frame(&Message::Notify, DEFAULT_MAX_FRAME).unwrap();
    let conn = feed_hello(&target, &peer, &notify[4..]);
    target.expect_one_line(conn, "expected hello first, got notify");
    let conn = feed_hello(&target, &peer, &hello(&peer, PROTOCOL_VERSION + 98));
    let versions = format!(
        "version {}, we speak {PROTOCOL_VERSION}",
        PROTOCOL_VERSION + 98
    );
    target.expect_one_line(conn, &versions);
    let mut liar = peer.me;
    liar.id = chosen_id("a place on the ring I want");
    let claim = secure::hello_payload(liar);
    let conn = feed_hello(&target, &peer, &claim);
    target.expect_one_line(conn, "need --lab");
    // Another node's address: the key there is not ours.
    let mut thief = peer.me;
    thief.addr = target.other.addr();
    let conn = feed_hello(&target, &peer, &secure::hello_payload(thief));
    target.expect_one_line(conn, "another key answers there");
    target.still_serves(3);

    // Bad frames inside good records.
    let mut garbage = vec![0, 0, 0, 8];
    garbage.extend([0xff; 8]);
    let conn = feed_sealed(&target, &peer, &garbage, false);
    target.expect_one_line(conn, "does not decode");
    target.still_serves(4);

    let oversize = (2u32 << 20).to_be_bytes();
    let conn = feed_sealed(&target, &peer, &oversize, false);
    target.expect_one_line(conn, "exceeds the maximum");
    target.still_serves(5);

    let frame = encode_frame(&Message::Ping { req: 1 }, DEFAULT_MAX_FRAME).unwrap();
    let conn = feed_sealed(&target, &peer, &frame[..frame.len() - 3], true);
    target.expect_one_line(conn, "ended early");
    target.still_serves(6);

    // A record changed on the way.
    let mut link = peer.link(target.node.proc.me.addr).expect("handshake");
    let conn = link.stream.local_addr().unwrap();
    let mut records = link.sealer.sealed(&frame);
    let last = records.len() - 1;
    records[last] ^= 0x40;
    link.stream.write_all(&records).unwrap();
    assert_closed(&mut link.stream);
    target.expect_one_line(conn, "failed authentication");
    target.still_serves(7);

    // One byte a second of a record: it never completes in time.
    let link = peer.link(target.node.proc.me.addr).expect("handshake");
    let mut slow = link.stream;
    let mut sealer = link.sealer;
    let conn = slow.local_addr().unwrap();
    let trickle = std::thread::spawn(move || {
        slow.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let start = Instant::now();
        for byte in sealer.sealed(&frame) {
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
    target.still_serves(8);
    let took = trickle.join().expect("trickle thread");
    assert!(took < Duration::from_secs(5), "closed after {took:?}");
    target.expect_one_line(conn, "not complete");
    target.still_serves(9);
}
