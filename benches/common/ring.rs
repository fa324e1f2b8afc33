//! Shared by the loopback benches (included with `#[path]`): a ring of node
//! threads in this process, converged before it is measured.

use std::time::{Duration, Instant};

use peerlet::id::Id;
use peerlet::node::{Node, NodeConfig, NodeHandle};
use peerlet::sim::{Oracle, Rng};
use peerlet::wire::NodeRef;

/// `n` nodes on 127.0.0.1 with the fast periods of the TCP tests (so the
/// ring converges in seconds), each config then passed to `configure`;
/// returned once 5 lookups from every node end at the oracle's root (90 s
/// at most, else a panic).
pub fn ring(n: usize, configure: impl Fn(&mut NodeConfig)) -> Vec<NodeHandle> {
    let cfg = |join| {
        let mut c = NodeConfig::new("127.0.0.1:0".parse().unwrap());
        c.join = join;
        let ms = Duration::from_millis;
        c.chord.stabilize_every = ms(150);
        c.chord.check_predecessor_every = ms(150);
        c.chord.fix_fingers_every = ms(50);
        configure(&mut c);
        c
    };
    let first = Node::spawn(cfg(None)).expect("spawn");
    let boot = first.addr();
    let mut nodes = vec![first];
    for _ in 1..n {
        nodes.push(Node::spawn(cfg(Some(boot))).expect("spawn"));
    }
    for node in &nodes {
        node.wait_joined(Duration::from_secs(30)).expect("joined");
    }
    let oracle = Oracle::new(nodes.iter().map(|n| n.me()).collect::<Vec<NodeRef>>());
    let mut rng = Rng::new(7);
    let end = Instant::now() + Duration::from_secs(90);
    'again: while Instant::now() < end {
        for node in &nodes {
            for _ in 0..5 {
                let k: Id = rng.id();
                match node.lookup(k) {
                    Ok(f) if f.root.id == oracle.successor(&k).id => {}
                    _ => {
                        std::thread::sleep(Duration::from_millis(200));
                        continue 'again;
                    }
                }
            }
        }
        return nodes;
    }
    panic!("the ring did not converge within 90 s");
}

/// The `p` quantile of `v` (0 for an empty `v`).
pub fn percentile(v: &[Duration], p: f64) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    if v.is_empty() {
        return Duration::ZERO;
    }
    v[((v.len() - 1) as f64 * p).round() as usize]
}
