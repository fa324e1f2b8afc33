//! What a peer can make a node hold or do by what it sends, bounded by the
//! node's own limits rather than by the peer's claims: a frame's buffer
//! grows with the bytes that arrive, not with its declared length; a routed
//! message's `ttl` is capped by the node's own.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use common::values::app_message;
use common::NodeProcess;
use peerlet::id::Id;
use peerlet::kbr::KbrEvent;
use peerlet::wire::{AppKind, AppMessage, AppType, Body, Message, RoutedMessage};
use serde_bytes::ByteBuf;

/// Resident memory of process `pid`, in KiB (`VmRSS` of /proc).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[test]
fn frames_declared_large_and_sent_slowly_cost_what_arrived() {
    let node = NodeProcess::start(None, &[], std::process::Stdio::null());
    let pid = node.child.id();
    let before = rss_kib(pid);
    // 400 connections, each declaring a frame of almost 1 MiB (the node's
    // limit) and sending one byte of it: the slowloris of the issue.
    const CONNECTIONS: usize = 400;
    let mut open = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let mut s = TcpStream::connect(node.me.addr).expect("connect");
        let len: u32 = (1 << 20) - 16;
        s.write_all(&len.to_be_bytes()).unwrap();
        s.write_all(&[0xa1]).unwrap();
        open.push(s);
    }
    // Wait until the node has read what was sent on every connection: its
    // memory stops moving (bounded: 10 s).
    let mut last = rss_kib(pid);
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(500));
        let now = rss_kib(pid);
        if now == last {
            break;
        }
        last = now;
    }
    let grown_mib = rss_kib(pid).saturating_sub(before) / 1024;
    // Buffers sized by the declared length would take 400 MiB; grown with
    // the bytes that arrived they take a few KiB each.
    assert!(
        grown_mib < 64,
        "400 slow 1 MiB frames grew the node by {grown_mib} MiB"
    );
    drop(open);
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
