//! Helpers shared by the TCP tests: fast ring settings, the lookup check
//! against the oracle, and polling with a deadline.

#![allow(dead_code)] // each test binary uses its own part

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use peerlet::id::Id;
use peerlet::node::{Node, NodeConfig, NodeHandle};
use peerlet::sim::{Oracle, Rng};
use peerlet::wire::NodeRef;

/// Periods short enough for a loopback ring to repair itself in seconds.
pub fn fast_config(join: Option<SocketAddr>) -> NodeConfig {
    let mut cfg = NodeConfig::new("127.0.0.1:0".parse().unwrap());
    cfg.join = join;
    let ms = Duration::from_millis;
    cfg.chord.stabilize_every = ms(150);
    cfg.chord.check_predecessor_every = ms(150);
    cfg.chord.fix_fingers_every = ms(50);
    cfg.chord.rpc_timeout = ms(500);
    cfg.chord.hop_timeout = ms(500);
    cfg.chord.lookup_timeout = ms(4000);
    cfg
}

/// The same settings as flags of `peerlet node`.
pub const FAST_FLAGS: [&str; 6] = [
    "--stabilize-ms",
    "150",
    "--fix-fingers-ms",
    "50",
    "--rpc-timeout-ms",
    "500",
];

pub fn spawn_fast(join: Option<SocketAddr>) -> NodeHandle {
    Node::spawn(fast_config(join)).expect("spawn node")
}

/// Polls `check` every 200 ms until it returns `Ok` or `limit` passes;
/// returns the last error then.
pub fn eventually(limit: Duration, mut check: impl FnMut() -> Result<(), String>) {
    let end = Instant::now() + limit;
    loop {
        match check() {
            Ok(()) => return,
            Err(e) if Instant::now() >= end => panic!("not true within {limit:?}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// `count` random keys (fixed by `seed`).
pub fn random_keys(seed: u64, count: usize) -> Vec<Id> {
    let mut rng = Rng::new(seed);
    (0..count).map(|_| rng.id()).collect()
}

/// Looks up every key from a random one of `from` and compares the root
/// with the oracle's successor among `live`.
pub fn lookups_match_oracle(
    from: &[&NodeHandle],
    live: &[NodeRef],
    keys: &[Id],
    seed: u64,
) -> Result<(), String> {
    let oracle = Oracle::new(live.to_vec());
    let mut rng = Rng::new(seed);
    for key in keys {
        let node = from[rng.below(from.len() as u64) as usize];
        let want = oracle.successor(key);
        match node.lookup(*key) {
            Ok(found) if found.root.id == want.id => {}
            Ok(found) => {
                return Err(format!(
                    "lookup of {key} from {:?} ended at {:?}, oracle says {want:?}",
                    node.me(),
                    found.root
                ))
            }
            Err(e) => return Err(format!("lookup of {key} from {:?}: {e}", node.me())),
        }
    }
    Ok(())
}
