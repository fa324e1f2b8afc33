//! Peerlets on a ring of real nodes over loopback TCP: an end-node peerlet
//! runs at the roots only, a per-hop one sees every hop, two apps stay
//! apart, and `peerlet.lookup` handles call methods on remote nodes.

#![forbid(unsafe_code)]

mod common;

use std::time::Duration;

use common::values::{self, app_message, decode_stored};
use common::{eventually, random_keys, spawn_fast};
use peerlet::id::Id;
use peerlet::node::NodeHandle;
use peerlet::sim::Oracle;
use peerlet::wire::{AppType, NodeRef};

const COUNTER: &str = r#"
local P = {}
function P.deliver(key, msg, from)
  store.put("delivered", (store.get("delivered") or 0) + 1)
end
return P
"#;

const HOPS: &str = r#"--@peerlet name=hops type=per-hop
local P = {}
function P.forward(key, msg, next_hop)
  store.put("seen", (store.get("seen") or 0) + 1)
end
function P.deliver(key, msg, from)
  store.put("delivered", (store.get("delivered") or 0) + 1)
end
return P
"#;

const KV: &str = r#"
local P = {}
local data = {}
function P.put(k, v) data[k] = v return true end
function P.get(k) return data[k] end
function P.deliver(key, msg, from)
  local h = peerlet.lookup(kbr.key(msg.k))
  h:put(msg.k, msg.v)
  store.put("result", h:get(msg.k))
end
return P
"#;

fn stored(node: &NodeHandle, name: &'static str, key: &'static str) -> Option<ciborium::Value> {
    let bytes = node
        .with_peerlets(move |m, _| m.by_name(name)?.store_get(key))
        .unwrap()?;
    Some(decode_stored(&bytes))
}

fn count(node: &NodeHandle, name: &'static str, key: &'static str) -> i128 {
    values::count(stored(node, name, key))
}

#[test]
fn peerlets_run_where_their_messages_go_over_tcp() {
    let nodes = common::converged_ring(8, spawn_fast);
    let live: Vec<NodeRef> = nodes.iter().map(|n| n.me()).collect();

    let mut apps = Vec::new();
    for n in &nodes {
        let counter = n.install_local("counter.lua", COUNTER.as_bytes()).unwrap();
        let other = n.install_local("other.lua", COUNTER.as_bytes()).unwrap();
        let hops = n.install_local("hops.lua", HOPS.as_bytes()).unwrap();
        let kv = n.install_local("kv.lua", KV.as_bytes()).unwrap();
        apps = vec![counter, other, hops, kv];
    }
    let (counter, other, hops, kv) = (apps[0], apps[1], apps[2], apps[3]);
    assert_ne!(counter, other);

    // End-node: each message runs at its key's root only; `other` sees none.
    let oracle = Oracle::new(live.clone());
    let keys = random_keys(7, 24);
    let mut want = vec![0i128; nodes.len()];
    for (i, key) in keys.iter().enumerate() {
        let root = oracle.successor(key);
        want[live.iter().position(|n| n.id == root.id).unwrap()] += 1;
        let (key, msg) = (
            *key,
            app_message(counter, AppType::EndNode, &ciborium::Value::Null),
        );
        nodes[i % nodes.len()]
            .call(move |k, now| k.api(now).route(key, msg, None))
            .unwrap();
    }
    eventually(Duration::from_secs(20), || {
        let got: Vec<i128> = nodes
            .iter()
            .map(|n| count(n, "counter", "delivered"))
            .collect();
        if got == want {
            Ok(())
        } else {
            Err(format!("deliveries {got:?}, want {want:?}"))
        }
    });
    assert!(nodes.iter().all(|n| count(n, "other", "delivered") == 0));

    // Per-hop: forward() runs at the source, every hop and the root.
    let key = Id::key("far away");
    let msg = app_message(hops, AppType::PerHop, &ciborium::Value::Null);
    nodes[0]
        .call(move |k, now| k.api(now).route(key, msg, None))
        .unwrap();
    eventually(Duration::from_secs(20), || {
        let delivered: i128 = nodes.iter().map(|n| count(n, "hops", "delivered")).sum();
        if delivered == 1 {
            Ok(())
        } else {
            Err("not yet delivered".into())
        }
    });
    let seen: i128 = nodes.iter().map(|n| count(n, "hops", "seen")).sum();
    assert!(seen >= 1, "forward ran at least at the source");

    // A remote call through a handle, across real sockets.
    let me = nodes[2].me();
    let arg = ciborium::Value::Map(vec![
        (
            ciborium::Value::Text("k".into()),
            ciborium::Value::Bytes(b"colour".to_vec()),
        ),
        (
            ciborium::Value::Text("v".into()),
            ciborium::Value::Bytes(b"green".to_vec()),
        ),
    ]);
    let msg = app_message(kv, AppType::EndNode, &arg);
    nodes[2]
        .call(move |k, now| k.api(now).send(me, msg))
        .unwrap();
    eventually(Duration::from_secs(20), || {
        match stored(&nodes[2], "kv", "result") {
            Some(ciborium::Value::Text(t)) if t == "green" => Ok(()),
            other => Err(format!("result {other:?}")),
        }
    });
}

#[test]
fn a_peerlet_store_survives_a_node_restart() {
    let dir = std::env::temp_dir().join(format!("peerlet-tcp-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let start = |dir: &std::path::Path| {
        let mut cfg = common::fast_config(None);
        cfg.data_dir = Some(dir.to_path_buf());
        let node = peerlet::node::Node::spawn(cfg).unwrap();
        node.wait_joined(Duration::from_secs(20)).unwrap();
        node
    };
    let node = start(&dir);
    let app = node
        .install_local("counter.lua", COUNTER.as_bytes())
        .unwrap();
    let me = node.me();
    for _ in 0..3 {
        let msg = app_message(app, AppType::EndNode, &ciborium::Value::Null);
        node.call(move |k, now| k.api(now).send(me, msg)).unwrap();
    }
    eventually(Duration::from_secs(10), || {
        match count(&node, "counter", "delivered") {
            3 => Ok(()),
            n => Err(format!("{n} delivered")),
        }
    });
    node.kill();
    assert!(
        dir.join("store").read_dir().unwrap().count() >= 1,
        "a store file on disk"
    );

    let node = start(&dir);
    node.install_local("counter.lua", COUNTER.as_bytes())
        .unwrap();
    assert_eq!(
        count(&node, "counter", "delivered"),
        3,
        "the count came back from disk"
    );
    node.kill();
    std::fs::remove_dir_all(&dir).unwrap();
}
