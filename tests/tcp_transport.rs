//! The transport's limits, seen from a node: a peer that stops reading
//! fills its bounded queue (further messages are dropped and counted, the
//! queue never grows), and a write that stays blocked fails that peer.

#![forbid(unsafe_code)]

mod common;

use std::net::TcpListener;
use std::time::Duration;

use common::{eventually, fast_config};
use peerlet::id::{AppId, Id};
use peerlet::node::Node;
use peerlet::wire::{AppMessage, AppType, NodeRef};

#[test]
fn full_queue_drops_and_a_stuck_peer_is_reported_failed() {
    // Accepts connections and never reads from them.
    let stuck = TcpListener::bind("127.0.0.1:0").unwrap();
    let stuck_addr = stuck.local_addr().unwrap();
    let (done, until_done) = std::sync::mpsc::channel::<()>();
    let hold = std::thread::spawn(move || {
        let conn = stuck.accept().map(|(c, _)| c);
        let _ = until_done.recv(); // keeps it open, unread, until the end
        drop(conn);
    });
    let mut cfg = fast_config(None);
    cfg.tcp.queue_len = 4;
    cfg.tcp.write_timeout = Duration::from_millis(700);
    let node = Node::spawn(cfg).unwrap();
    node.wait_joined(Duration::from_secs(5)).unwrap();
    let peer = NodeRef {
        id: Id::key("stuck"),
        addr: stuck_addr,
    };
    let send_bulk = |count: usize| {
        node.call(move |kbr, now| {
            let mut api = kbr.api(now);
            for _ in 0..count {
                let msg = AppMessage {
                    app: AppId::derive(b"test", "bulk"),
                    app_type: AppType::EndNode,
                    code: None,
                    data: serde_bytes::ByteBuf::from(vec![0u8; 256 * 1024]),
                    kind: peerlet::wire::AppKind::Message,
                    refused_by: Vec::new(),
                };
                api.send(peer, msg);
            }
        })
        .unwrap()
    };
    // `call` returns once the sends were handed to the transport: the
    // queue took 4, the rest were dropped.
    send_bulk(64);
    let stats = node.stats();
    assert_eq!(stats.messages_out, 4, "{stats:?}");
    assert_eq!(stats.dropped_queue_full, 60, "{stats:?}");
    // Keep sending until the socket buffers are full and a write blocks
    // past the write timeout: then the peer is reported failed.
    eventually(Duration::from_secs(20), || {
        send_bulk(8);
        match node.stats().peer_failures {
            0 => Err("the stuck peer was not reported failed".into()),
            _ => Ok(()),
        }
    });
    done.send(()).unwrap();
    hold.join().unwrap();
}
