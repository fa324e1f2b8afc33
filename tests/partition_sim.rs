//! Partitions in the simulator (issue 11, item 3): a ring cut in two becomes
//! two rings, each routing to the roots on its side; once the cut heals,
//! the two merge into one ring again within a bounded virtual time.

use std::time::Duration;

use peerlet::chord::Config;
use peerlet::id::Id;
use peerlet::sim::{Oracle, Rng, SimConfig, SimNet};

fn ring(seed: u64, n: usize) -> (SimNet, Rng) {
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
    net.run_for(Duration::from_secs(30));
    (net, rng)
}

/// Lookups from random members of `side` for random keys that did not end
/// at the root `oracle` names.
fn off_root(net: &mut SimNet, side: &[usize], oracle: &Oracle, rng: &mut Rng) -> usize {
    let asks: Vec<(usize, Id)> = (0..200)
        .map(|_| (side[rng.below(side.len() as u64) as usize], rng.id()))
        .collect();
    let results = net.lookups(&asks);
    asks.iter()
        .zip(results)
        .filter(|(ask, r)| !matches!(r, Ok(f) if f.root.id == oracle.successor(&ask.1).id))
        .count()
}

#[test]
fn a_ring_cut_in_two_routes_within_each_half_and_merges_again_after_healing() {
    for seed in [31, 32] {
        let (mut net, mut rng) = ring(seed, 100);
        let halves: Vec<Vec<usize>> = vec![(0..50).collect(), (50..100).collect()];
        net.partition(&halves);

        let apart = net.run_while_not(Duration::from_secs(120), Duration::from_secs(1), |n| {
            halves.iter().all(|h| n.is_converged_among(h))
        });
        assert!(apart, "seed {seed}: the halves did not each form a ring");
        for half in &halves {
            let oracle = Oracle::new(half.iter().map(|&i| net.me(i)).collect());
            assert_eq!(
                off_root(&mut net, half, &oracle, &mut rng),
                0,
                "seed {seed}"
            );
        }
        // Two rings apart for a while: neither notices the other by itself.
        net.run_for(Duration::from_secs(60));
        assert!(!net.is_converged(), "seed {seed}");

        net.heal();
        let probe = Config::simulation().probe_every;
        let healed_at = net.now();
        let merged = net.run_while_not(probe * 6, Duration::from_secs(1), SimNet::is_converged);
        assert!(
            merged,
            "seed {seed}: not one ring {:?} after healing",
            probe * 6
        );
        eprintln!(
            "seed {seed}: one ring {:?} after healing",
            net.now().since(healed_at)
        );
        let all: Vec<usize> = (0..100).collect();
        let oracle = net.oracle();
        assert_eq!(
            off_root(&mut net, &all, &oracle, &mut rng),
            0,
            "seed {seed}"
        );
    }
}

#[test]
fn nodes_that_never_lost_a_peer_send_no_probes() {
    // Probing costs nothing while nothing is lost: a ring without failures
    // sends exactly the same upkeep with probing on and off.
    let upkeep = |remembered: usize| {
        let chord = Config {
            remembered,
            ..Config::simulation()
        };
        let mut rng = Rng::new(33);
        let mut net = SimNet::new(SimConfig {
            seed: 33,
            chord,
            ..SimConfig::default()
        });
        for _ in 0..50 {
            net.add_node(rng.id());
        }
        net.install_converged();
        net.run_for(Duration::from_secs(300));
        net.stats.maintenance_bytes
    };
    assert_eq!(upkeep(16), upkeep(0));
}
