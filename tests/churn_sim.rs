//! Consistent roots under churn, in the simulator: test-sized versions of
//! the goals of issue 14 (docs/benchmarks.md has the full-size runs), and
//! the mechanisms behind them: a newcomer owns its keys only once its
//! successor agrees, and a failed neighbour is replaced within seconds.

use std::time::Duration;

use peerlet::chord::Config;
use peerlet::id::Id;
use peerlet::kbr::KbrEvent;
use peerlet::sim::{experiment, Experiment, Rng, SimConfig, SimNet};

/// Bamboo's churn (median session 1.4 min: 16.5 joins plus crashes per
/// second among 1,000 nodes) scaled to 200 nodes, the same rate per node.
fn bamboo_churn(seed: u64) -> Experiment {
    Experiment {
        nodes: 200,
        lookups: 2_000,
        churn: 16.5 * 200.0 / 1000.0,
        duration: 120.0,
        settle: 30.0,
        seed,
        chord: Config::simulation(),
        ..Experiment::default()
    }
}

#[test]
fn lookups_stay_consistent_at_bamboos_churn_within_the_upkeep_budget() {
    for seed in [1, 2, 3] {
        let r = experiment::run(&bamboo_churn(seed));
        // 99.9% consistent: at most 2 of 2,000.
        assert!(
            r.wrong <= 2,
            "seed {seed}: {} of 2000 wrong: {r:?}",
            r.wrong
        );
        assert_eq!(r.failed, 0, "seed {seed}: {r:?}");
        assert!(
            r.maint_bytes_per_node_s > 0.0 && r.maint_bytes_per_node_s <= 500.0,
            "seed {seed}: upkeep {} bytes/node/s",
            r.maint_bytes_per_node_s
        );
    }
}

#[test]
fn no_lookup_is_wrong_or_fails_at_the_chord_papers_churn() {
    for seed in [1, 2] {
        let r = experiment::run(&Experiment {
            nodes: 200,
            lookups: 2_000,
            churn: 0.5 * 200.0 / 500.0,
            duration: 600.0,
            seed,
            chord: Config::simulation(),
            ..Experiment::default()
        });
        assert_eq!((r.wrong, r.failed), (0, 0), "seed {seed}: {r:?}");
    }
}

fn converged_ring(seed: u64, n: usize) -> (SimNet, Rng) {
    let mut rng = Rng::new(seed);
    let mut net = SimNet::new(SimConfig {
        seed,
        chord: Config::simulation(),
        ..SimConfig::default()
    });
    for _ in 0..n {
        net.add_node(rng.id());
    }
    net.install_converged();
    (net, rng)
}

/// The node of the ring with id `id`.
fn index_of(net: &SimNet, id: Id) -> usize {
    (0..net.len())
        .find(|&i| net.me(i).id == id)
        .expect("a node")
}

#[test]
fn a_newcomer_is_a_member_only_once_its_successor_names_it_predecessor() {
    let (mut net, mut rng) = converged_ring(21, 60);
    for _ in 0..10 {
        let newcomer = net.add_node(rng.id());
        let oracle_before = net.oracle();
        let succ = index_of(&net, oracle_before.successor(&net.me(newcomer).id).id);
        let pred = oracle_before
            .predecessor_of(&net.me(succ).id)
            .expect("a ring");
        net.join(newcomer, rng.below(60) as usize);
        let first = net.events.len();
        let joined = net.run_while_not(Duration::from_secs(10), Duration::from_millis(1), |n| {
            n.node(newcomer).kbr.chord().is_joined()
        });
        assert!(joined, "the newcomer was not admitted");
        let at = net.events[first..]
            .iter()
            .find(|(i, _, e)| *i == newcomer && matches!(e, KbrEvent::Joined { .. }))
            .map(|(_, t, _)| *t)
            .expect("a Joined event");
        // When the newcomer hears it is a member, the handover has happened:
        // its successor no longer answers for the newcomer's keys, and the
        // newcomer knows where its own range starts.
        let succ_pred = net.node(succ).kbr.chord().table().predecessor();
        assert_eq!(succ_pred.map(|p| p.id), Some(net.me(newcomer).id));
        let own_pred = net.node(newcomer).kbr.chord().table().predecessor();
        assert_eq!(own_pred.map(|p| p.id), Some(pred.id), "joined at {at:?}");
        // And every lookup for its keys, from anywhere, ends there at once.
        let key = net.me(newcomer).id;
        let asks: Vec<(usize, Id)> = (0..20).map(|_| (rng.below(60) as usize, key)).collect();
        for found in net.lookups(&asks) {
            assert_eq!(found.expect("answered").root.id, key);
        }
    }
}

#[test]
fn a_crashed_node_is_replaced_by_both_neighbours_within_seconds() {
    let (mut net, mut rng) = converged_ring(22, 100);
    let cfg = Config::simulation();
    // Seen within one check period and a timeout; one more round trip to
    // repair. Much less than the stabilize period (15 s).
    let bound = cfg.check_predecessor_every + cfg.rpc_timeout * 2 + Duration::from_millis(500);
    assert!(bound < cfg.stabilize_every);
    net.run_for(Duration::from_secs(20));
    for _ in 0..10 {
        let live = net.live();
        let victim = live[rng.below(live.len() as u64) as usize];
        let oracle = net.oracle();
        let id = net.me(victim).id;
        let before = index_of(&net, oracle.predecessor_of(&id).expect("ring").id);
        let after = index_of(&net, oracle.successors_of(&id, 1)[0].id);
        net.crash(victim);
        let repaired = net.run_while_not(bound, Duration::from_millis(50), |n| {
            let t = n.node(after).kbr.chord().table();
            let s = n.node(before).kbr.chord().table();
            t.predecessor().map(|p| p.id) == Some(n.me(before).id)
                && s.successor().id == n.me(after).id
        });
        assert!(repaired, "ring not closed {bound:?} after a crash");
        net.run_for(Duration::from_secs(3));
    }
}
