//! What a peer can make a node hold or do by what it sends, bounded by the
//! node's own limits rather than by the peer's claims: a frame's buffer
//! grows with the bytes that arrive, not with its declared length; a routed
//! message's `ttl` is capped by the node's own.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::attack::{rss_kib, settled_rss_kib};
use common::values::app_message;
use common::wire_peer::{Link, WirePeer};
use common::NodeProcess;
use peerlet::id::Id;
use peerlet::kbr::KbrEvent;
use peerlet::net::TcpConfig;
use peerlet::wire::{AppKind, AppMessage, AppType, Body, Message, RoutedMessage};
use serde_bytes::ByteBuf;

/// Open file descriptors of process `pid` (its sockets among them).
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("proc fd")
        .count()
}

/// 400 links to `node`, each sending a record that begins a frame of
/// almost 1 MiB (the node's limit) and holds one byte of it: the slowloris
/// of the issue. Returns the links the node holds; asserts that those past
/// the cap of links from one address were refused.
fn slowloris(node: &NodeProcess, peer: &WirePeer) -> Vec<Link> {
    const CONNECTIONS: usize = 400;
    let cap = TcpConfig::default().max_incoming_per_ip;
    let len: u32 = (1 << 20) - 16;
    let mut start = len.to_be_bytes().to_vec();
    start.push(0xa1);
    let mut open = Vec::new();
    let mut refused = 0;
    for _ in 0..CONNECTIONS {
        match peer.link(node.me.addr) {
            Ok(mut link) => {
                link.send_frame(&start).expect("write");
                open.push(link);
            }
            Err(_) => refused += 1,
        }
    }
    eprintln!("{} links held, {refused} refused", open.len());
    assert_eq!(open.len(), cap, "links up to the cap are held");
    assert_eq!(refused, CONNECTIONS - cap, "links past the cap are refused");
    // The node still holds them (it waits for the rest of the frames).
    for link in open.iter_mut().take(5) {
        link.stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut buf = [0u8; 1];
        let r = std::io::Read::read(&mut link.stream, &mut buf);
        assert!(r.is_err(), "a held link is still open: {r:?}");
    }
    open
}

#[test]
fn frames_declared_large_and_sent_slowly_cost_what_arrived() {
    // A long frame timeout: the slow frames stay held while memory is read.
    let node = NodeProcess::start(None, &["--frame-timeout-ms", "60000"], Stdio::null());
    let pid = node.child.id();
    let peer = WirePeer::start();
    let before = rss_kib(pid);
    let fds_before = fds(pid);
    let mut held_kib = Vec::new();
    for round in 0..2 {
        let open = slowloris(&node, &peer);
        // The node has read what was sent on every link once its memory
        // stops moving (bounded: 10 s).
        let held = settled_rss_kib(pid, Duration::from_millis(500), Duration::from_secs(10));
        let grown_mib = held.saturating_sub(before) / 1024;
        eprintln!(
            "round {round}: {} slow 1 MiB frames grew the node by {grown_mib} MiB",
            open.len()
        );
        // Buffers sized by the declared length would take 256 MiB; grown
        // with the bytes that arrived they take a few KiB each.
        assert!(
            grown_mib < 64,
            "{} slow 1 MiB frames grew the node by {grown_mib} MiB",
            open.len()
        );
        held_kib.push(held);
        // Closed by us, the node lets them go: its sockets are back to
        // what they were (and one link of its own to the peer, to check
        // the address the peer's hellos name).
        drop(open);
        common::eventually(Duration::from_secs(20), || match fds(pid) {
            n if n <= fds_before + 1 => Ok(()),
            n => Err(format!(
                "{n} descriptors open, {fds_before} before the links"
            )),
        });
    }
    // The allocator keeps freed memory rather than give it back, so the
    // second round must reuse what the first took: no growth beyond slack.
    assert!(
        held_kib[1] <= held_kib[0] + 4 * 1024,
        "the second round held {} KiB, the first {} KiB: memory not reused",
        held_kib[1],
        held_kib[0]
    );
    let after = rss_kib(pid);
    eprintln!("resident memory: {before} KiB before, {after} KiB after both rounds");
    assert!(
        after <= before + 32 * 1024,
        "{after} KiB after, {before} KiB before"
    );
}

#[test]
fn a_routed_message_claiming_a_huge_ttl_stops_at_the_nodes_own() {
    let (mut net, _) = common::sim::converged(8, 3);
    let oracle = net.oracle();
    // A key rooted elsewhere, so node 0 would forward it.
    let me = net.me(0);
    let key = (0..)
        .map(|i| Id::key(format!("ttl-{i}")))
        .find(|k| oracle.successor(k).id != me.id)
        .unwrap();
    let own_ttl = 64;
    let msg = RoutedMessage {
        id: 1,
        key,
        source: net.me(1),
        hops: own_ttl,
        ttl: u32::MAX,
        direct: false,
        body: Body::App(AppMessage {
            app: peerlet::id::AppId::derive(b"k", "x"),
            app_type: AppType::EndNode,
            code: None,
            data: ByteBuf::from(vec![0xf6]),
            kind: AppKind::Message,
            refused_by: Vec::new(),
        }),
    };
    let from = net.me(1);
    let dropped = net.with_node(0, |k, now| {
        k.handle_message(
            now,
            from,
            Message::Route {
                hop: 7,
                to_root: false,
                msg,
            },
        );
        let mut routed_on = 0;
        while let Some(t) = k.poll_transmit() {
            if matches!(t.msg, Message::Route { .. }) {
                routed_on += 1;
            }
        }
        let mut reasons = Vec::new();
        while let Some(ev) = k.poll_event() {
            if let KbrEvent::Dropped { reason, .. } = ev {
                reasons.push(reason);
            }
        }
        (reasons, routed_on)
    });
    let (reasons, routed_on) = dropped;
    assert_eq!(routed_on, 0, "not sent one hop further");
    assert!(
        reasons.iter().any(|r| r.contains("TTL")),
        "given up for its TTL: {reasons:?}"
    );
}

#[test]
fn messages_for_apps_that_do_not_run_here_cannot_fill_the_log() {
    let cfg = peerlet::peerlet::ManagerConfig::default();
    let (mut net, managers, _) = common::sim::with_managers(4, 5, &cfg);
    let me = net.me(0);
    for i in 0..5_000u32 {
        let app = peerlet::id::AppId::derive(b"nobody", &format!("app-{i}"));
        let msg = app_message(app, AppType::EndNode, &ciborium::Value::Null);
        net.with_node(1, |k, now| k.api(now).send(me, msg));
    }
    net.run_for(Duration::from_secs(2));
    let m = managers[0].0.borrow();
    let dropped = m
        .reports()
        .filter(|r| r.contains("message dropped"))
        .count();
    // A burst of 100, then 20 a second: 5,000 would have been one line each.
    assert!(
        (1..=160).contains(&dropped),
        "{dropped} report lines for 5,000 messages"
    );
    drop(m);
    // Later lines say how many were left out.
    net.run_for(Duration::from_secs(10));
    let app = peerlet::id::AppId::derive(b"nobody", "late");
    let late = app_message(app, AppType::EndNode, &ciborium::Value::Null);
    net.with_node(1, |k, now| k.api(now).send(me, late));
    net.run_for(Duration::from_secs(1));
    let m = managers[0].0.borrow();
    assert!(
        m.reports().any(|r| r.contains("log lines suppressed")),
        "a summary of what was left out"
    );
}
