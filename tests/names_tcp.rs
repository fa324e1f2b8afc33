//! Peerlet names over loopback TCP: a node that never ran an app calls it by
//! name at a root that did not run it either, which deploys it; a newer
//! version then reaches that caller and that root.

#![forbid(unsafe_code)]

mod common;

use std::time::Duration;

use common::{eventually, fast_config};
use peerlet::id::Id;
use peerlet::node::{Node, NodeHandle};
use peerlet::package::secret_key::SigningKey;
use peerlet::package::signing::sign_source;
use peerlet::sim::Oracle;
use peerlet::wire::NodeRef;

fn kv(version: u32) -> String {
    format!(
        "--@peerlet name=kv type=end-node version={version}\n\
         local P = {{}}\n\
         local data = {{}}\n\
         function P.put(k, v) data[k] = v return true end\n\
         function P.get(k) return data[k] end\n\
         function P.version() return {version} end\n\
         function P.save() return data end\n\
         function P.restore(state) data = state end\n\
         return P\n"
    )
}

fn eval(node: &NodeHandle, code: &str) -> Result<String, String> {
    let rx = node.console_start(code).expect("node runs");
    rx.recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|e| Err(format!("`{code}`: no outcome: {e}")))
}

fn version_at(node: &NodeHandle) -> Option<u32> {
    node.with_peerlets(|m, _| m.by_name("kv").map(|p| p.version))
        .unwrap()
}

#[test]
fn a_call_by_name_deploys_at_the_root_and_a_new_version_follows_over_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let publisher = SigningKey::generate().unwrap();
    let pub_file = dir.path().join("publisher.pub");
    std::fs::write(&pub_file, publisher.public().to_pub_text()).unwrap();
    let spawn = |join| {
        let mut cfg = fast_config(join);
        cfg.trust_files = vec![pub_file.clone()];
        cfg.names.cache_ttl = Duration::from_secs(1);
        cfg.names.refresh = Duration::from_secs(1);
        Node::spawn(cfg).expect("spawn node")
    };
    let nodes = common::converged_ring(6, spawn);
    let install = |version| {
        let text = kv(version);
        let sig = sign_source(&publisher, text.as_bytes(), "kv.lua").unwrap();
        nodes[0].install_signed(text.as_bytes(), &sig).unwrap();
    };
    install(1);
    let oracle = Oracle::new(nodes.iter().map(|n| n.me()).collect::<Vec<NodeRef>>());
    let caller = 3;
    let (item, root) = (0..1000)
        .map(|i| format!("item{i}"))
        .find_map(|item| {
            let id = oracle.successor(&Id::key(&item)).id;
            let root = nodes.iter().position(|n| n.id() == id).unwrap();
            (root != 0 && root != caller).then_some((item, root))
        })
        .expect("a key rooted elsewhere");
    let call = |m: &str| format!("peerlet.lookup(kbr.key('{item}'), 'kv'):{m}");

    // The record may still be on its way to the name's root: ask again.
    eventually(Duration::from_secs(20), || {
        match eval(&nodes[caller], &call("put('k', 'kept')")) {
            Ok(v) if v == "true" => Ok(()),
            other => Err(format!("put: {other:?}")),
        }
    });
    assert_eq!(version_at(&nodes[root]), Some(1), "deployed at the root");
    assert_eq!(version_at(&nodes[caller]), None, "not on the caller");

    install(2);
    eventually(Duration::from_secs(20), || {
        match eval(&nodes[caller], &call("version()")) {
            Ok(v) if v == "2" => Ok(()),
            other => Err(format!("version: {other:?}")),
        }
    });
    assert_eq!(version_at(&nodes[root]), Some(2), "the root upgraded");
    assert_eq!(
        eval(&nodes[caller], &call("get('k')")),
        Ok("kept".into()),
        "its state went over with save/restore"
    );
    for node in &nodes {
        node.kill();
    }
}
