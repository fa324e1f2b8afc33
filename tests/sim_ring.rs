//! The Chord core over the in-memory network: joins, lookups, crashes and
//! graceful leaves, all in virtual time and reproducible from a seed.

use std::time::Duration;

use peerlet::chord::Config;
use peerlet::id::Id;
use peerlet::sim::{Rng, SimConfig, SimNet};
use proptest::prelude::*;

fn net(seed: u64) -> SimNet {
    SimNet::new(SimConfig {
        seed,
        chord: Config::default(),
        ..SimConfig::default()
    })
}

/// Lookups from random live nodes for random keys; returns how many did not
/// end at the oracle's successor (failed or wrong).
fn wrong_lookups(net: &mut SimNet, count: usize, rng: &mut Rng) -> usize {
    let live = net.live();
    let asks: Vec<(usize, Id)> = (0..count)
        .map(|_| (live[rng.below(live.len() as u64) as usize], rng.id()))
        .collect();
    let oracle = net.oracle();
    let mut bad = 0;
    for chunk in asks.chunks(500) {
        for (ask, result) in chunk.iter().zip(net.lookups(chunk)) {
            match result {
                Ok(found) if found.root.id == oracle.successor(&ask.1).id => {}
                _ => bad += 1,
            }
        }
    }
    bad
}

/// Joins nodes `first..net.len()` one by one through random members.
fn join_one_by_one(net: &mut SimNet, first: usize, rng: &mut Rng) {
    for i in first..net.len() {
        let live = net.live();
        let via = live[rng.below(live.len() as u64) as usize];
        net.join(i, via);
        let joined = net.run_while_not(Duration::from_secs(30), Duration::from_millis(100), |n| {
            n.node(i).kbr.chord().is_joined()
        });
        assert!(joined, "node {i} did not join");
    }
}

fn converge(net: &mut SimNet) {
    let ok = net.run_while_not(
        Duration::from_secs(600),
        Duration::from_secs(1),
        SimNet::is_converged,
    );
    assert!(ok, "ring did not converge within 600 s of virtual time");
}

fn ring_of_200(seed: u64) -> (SimNet, Rng) {
    let mut rng = Rng::new(seed);
    let mut net = net(seed);
    for _ in 0..200 {
        net.add_node(rng.id());
    }
    net.create(0);
    join_one_by_one(&mut net, 1, &mut rng);
    converge(&mut net);
    (net, rng)
}

#[test]
fn two_hundred_nodes_joined_one_by_one_converge_and_route_every_lookup_to_the_root() {
    let (mut net, mut rng) = ring_of_200(11);
    assert_eq!(net.live().len(), 200);
    // Let fix_fingers fill the finger tables too, then check routing.
    net.run_for(Duration::from_secs(60));
    assert_eq!(wrong_lookups(&mut net, 10_000, &mut rng), 0);
}

#[test]
fn lookups_are_correct_again_after_a_quarter_of_the_nodes_crash_at_once() {
    let (mut net, mut rng) = ring_of_200(12);
    let mut live = net.live();
    for _ in 0..50 {
        let k = rng.below(live.len() as u64) as usize;
        net.crash(live.swap_remove(k));
    }
    converge(&mut net);
    assert_eq!(net.live().len(), 150);
    assert_eq!(wrong_lookups(&mut net, 2_000, &mut rng), 0);
}

#[test]
fn lookups_are_correct_after_graceful_leaves() {
    let (mut net, mut rng) = ring_of_200(13);
    let mut live = net.live();
    for _ in 0..40 {
        let k = rng.below(live.len() as u64) as usize;
        net.leave(live.swap_remove(k));
        // A leave hands over the neighbourhood: the ring closes within a
        // round trip, long before any timeout (1.5 s) could notice.
        net.run_for(Duration::from_millis(200));
        assert!(
            net.is_converged(),
            "a graceful leave did not close the ring at once"
        );
    }
    assert_eq!(wrong_lookups(&mut net, 2_000, &mut rng), 0);
    // Neighbours leaving at the same moment can't hand over to each other;
    // stabilization repairs that.
    for _ in 0..20 {
        let k = rng.below(live.len() as u64) as usize;
        net.leave(live.swap_remove(k));
    }
    converge(&mut net);
    assert_eq!(net.live().len(), 140);
    assert_eq!(wrong_lookups(&mut net, 2_000, &mut rng), 0);
}

#[test]
fn twenty_simultaneous_joins_converge() {
    let mut rng = Rng::new(14);
    let mut net = net(14);
    for _ in 0..30 {
        net.add_node(rng.id());
    }
    net.create(0);
    join_one_by_one(&mut net, 1, &mut rng);
    for _ in 0..20 {
        net.add_node(rng.id());
    }
    for i in 30..50 {
        let via = rng.below(30) as usize;
        net.join(i, via);
    }
    // (The thirty are converged already: wait for the newcomers first.)
    let all = net.run_while_not(Duration::from_secs(60), Duration::from_millis(100), |n| {
        n.live().len() == 50
    });
    assert!(all, "not every newcomer was admitted");
    converge(&mut net);
    assert_eq!(net.live().len(), 50);
    assert_eq!(wrong_lookups(&mut net, 2_000, &mut rng), 0);
}

#[test]
fn join_through_a_dead_node_fails_with_a_reason() {
    let mut net = net(15);
    let a = net.add_node(Id::key("a"));
    let b = net.add_node(Id::key("b"));
    net.create(a);
    net.crash(a);
    net.join(b, a);
    net.run_for(Duration::from_secs(120));
    let reason = net.events.iter().find_map(|(i, _, e)| match e {
        peerlet::kbr::KbrEvent::JoinFailed { reason } if *i == b => Some(reason.clone()),
        _ => None,
    });
    let reason = reason.expect("join failure reported");
    assert!(
        reason.contains("cannot reach") || reason.contains("no answer"),
        "{reason}"
    );
}

#[test]
fn same_seed_same_simulation() {
    let exp = peerlet::sim::Experiment {
        nodes: 300,
        lookups: 500,
        fail: 0.2,
        churn: 0.5,
        ..Default::default()
    };
    let a = peerlet::sim::experiment::run(&exp);
    let b = peerlet::sim::experiment::run(&exp);
    assert_eq!(
        (a.mean_hops, a.p99_hops, a.failed, a.wrong),
        (b.mean_hops, b.p99_hops, b.failed, b.wrong)
    );
    assert_eq!(a.maint_msgs_per_node_s, b.maint_msgs_per_node_s);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// In any static, converged ring, routing from any node ends at the
    /// oracle successor of the key.
    #[test]
    fn routing_in_a_static_ring_ends_at_the_oracle_successor(
        seed in any::<u64>(),
        n in 1usize..60,
        r in 1usize..6,
    ) {
        let mut rng = Rng::new(seed);
        let chord = Config { successors: r, ..Config::default() };
        let mut net = SimNet::new(SimConfig { seed, chord, ..SimConfig::default() });
        for _ in 0..n {
            net.add_node(rng.id());
        }
        net.install_converged();
        let oracle = net.oracle();
        let asks: Vec<(usize, Id)> = (0..50).map(|_| (rng.below(n as u64) as usize, rng.id())).collect();
        for (ask, result) in asks.iter().zip(net.lookups(&asks)) {
            let found = result.expect("lookup answered");
            prop_assert_eq!(found.root.id, oracle.successor(&ask.1).id);
            prop_assert!(found.hops as usize <= n);
        }
    }
}
