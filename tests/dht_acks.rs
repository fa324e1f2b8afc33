//! What a put through peerlets/dht.lua promises: any replica takes it, it
//! is acknowledged only once w of its r copies are stored, a full store
//! refuses it cleanly, and tombstones go after their grace period.

mod common;

use std::time::Duration;

use common::dht::{at_root, copy, dht_with, here, holders, want_holders};
use common::samples::SampleRing;
use peerlet::id::Id;
use peerlet::peerlet::ManagerConfig;

const NODES: usize = 20;

#[test]
fn dht_any_replica_takes_a_put_and_it_is_acknowledged_with_w_copies_stored() {
    let mut r = SampleRing::new(NODES, 21);
    let app = r.install(&r.all(), "dht");
    for (n, item) in ["left", "right", "middle"].iter().enumerate() {
        // The put starts at the n-th replica (root, second, third), which
        // passes it on to the root.
        let set = r.replica_set(&Id::key(item), 3);
        let out = r.eval(set[n], &format!("{}:put({item:?}, 'v-{item}')", here(app)));
        assert_eq!(out.as_deref(), Ok("1"), "put of {item} at replica {n}");
        // Acknowledged: at least two copies exist at that very moment.
        assert!(
            holders(&r, item).len() >= 2,
            "{item}: {:?}",
            holders(&r, item)
        );
    }
    r.net.run_for(Duration::from_secs(1));
    for item in ["left", "right", "middle"] {
        assert_eq!(holders(&r, item), want_holders(&r, item, 3), "{item}");
        let out = r.eval(0, &format!("{}:get({item:?})", at_root(app, item)));
        assert_eq!(out, Ok(format!("v-{item}\t1")));
    }
    // A node outside the replica set passes a put to the root as well.
    let item = "far";
    let set = r.replica_set(&Id::key(item), 3);
    let outsider = (0..NODES).find(|i| !set.contains(i)).unwrap();
    let out = r.eval(outsider, &format!("{}:put({item:?}, 'x')", here(app)));
    assert_eq!(
        out.as_deref(),
        Ok("1"),
        "put at node {outsider}, outside the set"
    );
    assert_eq!(holders(&r, item).len(), 3);
}

#[test]
fn dht_put_is_not_acknowledged_while_fewer_than_w_replicas_can_store_it() {
    let mut r = SampleRing::new(NODES, 22);
    let app = r.install(&r.all(), "dht");
    let item = "lonely";
    let set = r.replica_set(&Id::key(item), 3);
    // Both other replicas crash; the root does not know it yet.
    r.net.crash(set[1]);
    r.net.crash(set[2]);
    let out = r.eval_many(
        &[(set[0], format!("{}:put({item:?}, 'v')", here(app)))],
        Duration::from_secs(60),
    );
    assert_eq!(
        out[0].as_deref(),
        Ok("nil\tdht: only 1 of 2 copies stored"),
        "no acknowledgement with one copy"
    );
    // The ring repairs; the same put is then acknowledged, by new replicas.
    let mut last = Err(String::new());
    for _ in 0..30 {
        r.net.run_for(Duration::from_secs(2));
        last = r.eval(set[0], &format!("{}:put({item:?}, 'v')", here(app)));
        if last.as_deref().is_ok_and(|s| !s.starts_with("nil")) {
            break;
        }
    }
    assert_eq!(last.as_deref(), Ok("2"), "acknowledged once the set healed");
    assert!(holders(&r, item).len() >= 2);
}

#[test]
fn dht_a_full_store_refuses_a_put_and_the_node_keeps_serving() {
    let cfg = ManagerConfig {
        store_quota: 2000,
        ..ManagerConfig::default()
    };
    let (net, managers, rng) = common::sim::with_managers(NODES, 23, &cfg);
    let mut r = SampleRing { net, managers, rng };
    let app = r.install(&r.all(), "dht");
    let h = at_root(app, "small");
    assert_eq!(
        r.eval(1, &format!("{h}:put('small', 'fits')")).as_deref(),
        Ok("1")
    );
    let big = at_root(app, "big");
    let out = r.eval(1, &format!("{big}:put('big', string.rep('x', 3000))"));
    let out = out.expect("an answer, not an abort");
    assert!(
        out.starts_with("nil\tdht: ") && out.contains("quota of 2000 bytes"),
        "{out}"
    );
    assert_eq!(holders(&r, "big"), Vec::<usize>::new(), "nothing half kept");
    assert_eq!(
        r.eval(5, &format!("{h}:get('small')")).as_deref(),
        Ok("fits\t1")
    );
    assert_eq!(
        r.eval(5, &format!("{h}:put('small', 'still')")).as_deref(),
        Ok("2")
    );
}

#[test]
fn dht_tombstones_are_kept_on_every_replica_then_expire_after_the_grace_period() {
    let mut r = SampleRing::new(NODES, 24);
    let src = dht_with(&[("local GRACE = 3600", "local GRACE = 60")]);
    let all = r.all();
    let app = common::sim::install_on(&mut r.net, &r.managers, &all, "dht", &src);
    let item = "short-lived";
    let h = at_root(app, item);
    assert_eq!(
        r.eval(3, &format!("{h}:put({item:?}, 'v')")).as_deref(),
        Ok("1")
    );
    assert_eq!(
        r.eval(3, &format!("{h}:remove({item:?})")).as_deref(),
        Ok("true")
    );
    r.net.run_for(Duration::from_secs(1));
    for n in want_holders(&r, item, 3) {
        assert_eq!(copy(&r, n, item), Some((2, None)), "tombstone on node {n}");
    }
    assert_eq!(
        r.eval(4, &format!("{h}:get({item:?})")).as_deref(),
        Ok("nil\t2")
    );
    // After the grace period and a round, no node keeps it.
    r.net.run_for(Duration::from_secs(75));
    assert_eq!(holders(&r, item), Vec::<usize>::new());
    assert_eq!(r.eval(4, &format!("{h}:get({item:?})")).as_deref(), Ok(""));
}
