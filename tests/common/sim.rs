//! Simulated rings for tests: converged from the start, optionally with a
//! peerlet manager on every node.

use peerlet::chord::Config;
use peerlet::peerlet::{Manager, ManagerApp, ManagerConfig};
use peerlet::sim::{Rng, SimConfig, SimNet};

/// A converged ring of `n` nodes with random ids and successor lists of 4.
pub fn converged(n: usize, seed: u64) -> (SimNet, Rng) {
    let mut rng = Rng::new(seed);
    let chord = Config {
        successors: 4,
        ..Config::default()
    };
    let mut net = SimNet::new(SimConfig {
        seed,
        chord,
        ..SimConfig::default()
    });
    for _ in 0..n {
        net.add_node(rng.id());
    }
    net.install_converged();
    (net, rng)
}

/// A converged ring with a peerlet manager (configured by `cfg`) as every
/// node's default application; the managers in node order.
pub fn with_managers(n: usize, seed: u64, cfg: &ManagerConfig) -> (SimNet, Vec<ManagerApp>, Rng) {
    let (mut net, rng) = converged(n, seed);
    let mut managers = Vec::new();
    for i in 0..n {
        let m = ManagerApp::new(Manager::new(cfg.clone()));
        let app = m.clone();
        net.with_node(i, move |k, _| k.set_default_app(Box::new(app)));
        managers.push(m);
    }
    (net, managers, rng)
}
