//! `peerlet node --core NAME`: the routing core is chosen by name, and an
//! unknown name stops the node before it starts, saying which names exist.

use std::process::Command;

#[test]
fn an_unknown_routing_core_is_refused_with_the_known_names() {
    let out = Command::new(env!("CARGO_BIN_EXE_peerlet"))
        .args(["node", "--listen", "127.0.0.1:0", "--core", "pastry"])
        .output()
        .expect("run peerlet");
    assert!(!out.status.success(), "exits non-zero");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown routing core `pastry`") && err.contains("known: chord"),
        "{err}"
    );
}

#[test]
fn chord_is_a_known_routing_core() {
    let kind: peerlet::kbr::core::CoreKind = "chord".parse().unwrap();
    assert_eq!(kind, peerlet::kbr::core::CoreKind::default());
}
