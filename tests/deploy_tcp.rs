//! Deployment by traffic over loopback TCP: signed code installed on one
//! node runs at the roots its messages reach, fetched from the overlay's
//! code store, also after the origin node was killed.

#![forbid(unsafe_code)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::values::{app_message, count, decode_stored};
use common::{eventually, fast_config, lookups_match_oracle, random_keys};
use peerlet::id::{AppId, Id};
use peerlet::node::{Node, NodeHandle};
use peerlet::package::secret_key::SigningKey;
use peerlet::package::signing::sign_source;
use peerlet::sim::Oracle;
use peerlet::wire::{AppType, CodeLocator, NodeRef};

const COUNTER: &str = "--@peerlet name=counter type=end-node version=1\n\
    local P = {}\n\
    function P.deliver(key, msg, from) store.put('n', (store.get('n') or 0) + 1) end\n\
    return P\n";

fn route(node: &NodeHandle, key: Id, app: AppId, code: &CodeLocator) {
    let mut msg = app_message(app, AppType::EndNode, &ciborium::Value::Null);
    msg.code = Some(code.clone());
    node.call(move |kbr, now| {
        kbr.api(now).route(key, msg, None);
    })
    .unwrap();
}

fn delivered(node: &NodeHandle) -> i128 {
    let bytes = node
        .with_peerlets(|m, _| m.by_name("counter")?.store_get("n"))
        .unwrap();
    count(bytes.map(|b| decode_stored(&b)))
}

#[test]
fn signed_code_deploys_itself_at_the_roots_over_tcp_and_outlives_its_origin() {
    let dir = tempfile::tempdir().unwrap();
    let publisher = SigningKey::generate().unwrap();
    let pub_file = dir.path().join("publisher.pub");
    std::fs::write(&pub_file, publisher.public().to_pub_text()).unwrap();
    let spawn = |join| {
        let mut cfg = fast_config(join);
        cfg.trust_files = vec![pub_file.clone()];
        Node::spawn(cfg).expect("spawn node")
    };
    let nodes = common::converged_ring(10, spawn);

    let sig = sign_source(&publisher, COUNTER.as_bytes(), "counter.lua").unwrap();
    let app = nodes[0].install_signed(COUNTER.as_bytes(), &sig).unwrap();
    let code = nodes[0]
        .with_peerlets(|m, _| m.by_name("counter").unwrap().code.clone().unwrap())
        .unwrap();
    let keys = random_keys(5, 50);
    for key in &keys[..10] {
        route(&nodes[0], *key, app, &code);
    }
    let live: Vec<NodeRef> = nodes.iter().map(|n| n.me()).collect();
    let oracle = Oracle::new(live);
    let root_of = |key: &Id, nodes: &[NodeHandle]| {
        let id = oracle.successor(key).id;
        nodes.iter().position(|n| n.id() == id).unwrap()
    };
    eventually(Duration::from_secs(30), || {
        let total: i128 = keys[..10]
            .iter()
            .map(|k| root_of(k, &nodes))
            .collect::<BTreeSet<_>>()
            .iter()
            .map(|&r| delivered(&nodes[r]))
            .sum();
        (total == 10)
            .then_some(())
            .ok_or(format!("{total} of 10 delivered"))
    });
    for (i, n) in nodes.iter().enumerate() {
        let runs = n
            .with_peerlets(|m, _| m.by_name("counter").is_some())
            .unwrap();
        let needed = i == 0 || keys[..10].iter().any(|k| root_of(k, &nodes) == i);
        assert_eq!(runs, needed, "node {i} runs the peerlet only if needed");
    }

    // Kill the origin; the rest still deploys from the overlay's store.
    nodes[0].kill();
    let nodes: Vec<NodeHandle> = nodes.into_iter().skip(1).collect();
    let live: Vec<NodeRef> = nodes.iter().map(|n| n.me()).collect();
    let from: Vec<&NodeHandle> = nodes.iter().collect();
    eventually(Duration::from_secs(60), || {
        lookups_match_oracle(&from, &live, &random_keys(2, 30), 2)
    });
    let oracle = Oracle::new(live);
    let root_of = |key: &Id| {
        let id = oracle.successor(key).id;
        nodes.iter().position(|n| n.id() == id).unwrap()
    };
    let before: Vec<bool> = nodes
        .iter()
        .map(|n| {
            n.with_peerlets(|m, _| m.by_name("counter").is_some())
                .unwrap()
        })
        .collect();
    for key in &keys[10..] {
        route(&nodes[0], *key, app, &code);
    }
    let fresh: BTreeSet<usize> = keys[10..]
        .iter()
        .map(root_of)
        .filter(|&r| !before[r])
        .collect();
    assert!(!fresh.is_empty(), "the seed gives new roots");
    eventually(Duration::from_secs(30), || {
        for &r in &fresh {
            if delivered(&nodes[r]) == 0 {
                return Err(format!("nothing delivered at node {r} yet"));
            }
        }
        Ok(())
    });
    for &r in &fresh {
        let source = nodes[r]
            .with_peerlets(|m, _| m.deployer().deployments().next().map(|d| d.source))
            .unwrap();
        assert_eq!(source, Some("store"), "node {r} fetched from the store");
    }
    for n in &nodes {
        n.kill();
    }
}
