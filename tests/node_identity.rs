//! A node is who its key says: its id comes from the key it keeps in its
//! data directory; a chosen id needs lab mode on both sides; links that
//! fall idle close without counting as failures.

mod common;

use std::time::Duration;

use common::{eventually, fast_config, lookups_match_oracle, random_keys};
use peerlet::id::Id;
use peerlet::net::identity::{derive_id, NodeKey};
use peerlet::node::{Node, NodeState};

#[test]
fn a_node_keeps_its_key_and_id_in_its_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = fast_config(None);
    cfg.data_dir = Some(dir.path().to_path_buf());
    let first = Node::spawn(cfg.clone()).expect("spawn");
    let id = first.id();
    let key = NodeKey::load_or_create(dir.path()).unwrap();
    assert_eq!(id, key.id(), "the id is the one the kept key gives");
    assert_eq!(id, derive_id(key.public()));
    first.kill();
    let again = Node::spawn(cfg).expect("spawn again");
    assert_eq!(again.id(), id, "same data directory, same id");
    again.kill();
    // Without a data directory, a fresh key and id each start.
    let a = Node::spawn(fast_config(None)).expect("spawn");
    let b = Node::spawn(fast_config(None)).expect("spawn");
    assert_ne!(a.id(), b.id());
    assert_ne!(a.id(), id);
}

#[test]
fn a_chosen_id_needs_lab_mode_here_and_at_its_peers() {
    let chosen = Id::key("a place I like");
    let mut cfg = fast_config(None);
    cfg.id = Some(chosen);
    let err = Node::spawn(cfg.clone())
        .err()
        .expect("refused without lab mode");
    assert!(err.to_string().contains("--lab"), "{err}");

    // A lab node cannot join a ring that is not in lab mode: its links are
    // refused, so the join fails.
    let plain = Node::spawn(fast_config(None)).expect("spawn");
    plain.wait_joined(Duration::from_secs(10)).expect("created");
    let mut lab = cfg.clone();
    lab.tcp.link.lab = true;
    lab.join = Some(plain.addr());
    lab.chord.join_attempts = 2;
    let outsider = Node::spawn(lab.clone()).expect("spawn in lab mode");
    assert_eq!(outsider.id(), chosen);
    let joined = outsider.wait_joined(Duration::from_secs(30));
    assert!(joined.is_err(), "joined a ring that is not in lab mode");
    assert!(matches!(outsider.state(), NodeState::JoinFailed(_)));
    outsider.kill();

    // In a lab ring it joins and stands where it chose.
    let mut boot = fast_config(None);
    boot.tcp.link.lab = true;
    let first = Node::spawn(boot).expect("spawn");
    lab.join = Some(first.addr());
    lab.chord.join_attempts = fast_config(None).chord.join_attempts;
    let member = Node::spawn(lab).expect("spawn");
    member
        .wait_joined(Duration::from_secs(20))
        .expect("joined the lab ring");
    let live = [first.me(), member.me()];
    eventually(Duration::from_secs(20), || {
        lookups_match_oracle(&[&first, &member], &live, &random_keys(3, 20), 3)
    });
    let found = first.lookup(chosen).expect("lookup");
    assert_eq!(found.root.id, chosen, "the chosen id roots its own key");
}

#[test]
fn idle_links_close_without_counting_as_failures() {
    let slow = |join| {
        let mut cfg = fast_config(join);
        // Upkeep once a second, idle links closed after 150 ms: between two
        // rounds every link falls idle.
        cfg.chord.stabilize_every = Duration::from_secs(1);
        cfg.chord.check_predecessor_every = Duration::from_secs(1);
        cfg.chord.fix_fingers_every = Duration::from_secs(1);
        cfg.tcp.idle_timeout = Duration::from_millis(150);
        cfg
    };
    let a = Node::spawn(slow(None)).expect("spawn");
    let b = Node::spawn(slow(Some(a.addr()))).expect("spawn");
    b.wait_joined(Duration::from_secs(20)).expect("joined");
    let live = [a.me(), b.me()];
    let agree = || lookups_match_oracle(&[&a, &b], &live, &random_keys(7, 10), 7);
    eventually(Duration::from_secs(30), agree);
    // A moment with no link open: each was closed for idleness (and the
    // next round of upkeep opened new ones).
    eventually(Duration::from_secs(20), || {
        match (a.stats().connections_in, b.stats().connections_in) {
            (0, 0) => Ok(()),
            (x, y) => Err(format!("{x} + {y} incoming connections still open")),
        }
    });
    eventually(Duration::from_secs(30), agree);
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!(
        sa.peer_failures + sb.peer_failures,
        0,
        "an idle close counted as a peer failure"
    );
}

#[test]
fn the_command_line_takes_a_chosen_id_only_with_lab() {
    let id = Id::key("by hand").to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_peerlet"))
        .args(["node", "--listen", "127.0.0.1:0", "--id", &id])
        .output()
        .expect("run peerlet");
    assert!(!out.status.success(), "exits non-zero");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--lab"), "{err}");
}
