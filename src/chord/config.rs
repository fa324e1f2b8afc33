//! The knobs of the Chord core, with defaults for a real node on a LAN.

use std::time::Duration;

/// How a node keeps its ring state fresh and how patient it is with peers.
#[derive(Clone, Debug)]
pub struct Config {
    /// Length r of the successor list. With each node failing independently
    /// with probability ½, a node loses all r successors with probability
    /// 2^-r; 32 keeps that below 1/N for the 100,000-node simulator.
    pub successors: usize,
    /// Period of stabilize (ask the successor for its predecessor and list).
    pub stabilize_every: Duration,
    /// Period of the neighbour liveness check: a ping to the predecessor and
    /// one to the successor. A failed neighbour is seen within this period
    /// plus `rpc_timeout`, and repaired at once (see docs/design.md, §
    /// "Consistent roots under churn"); stabilize can then be slower.
    pub check_predecessor_every: Duration,
    /// Period of fix_fingers; each tick refreshes one finger by a lookup.
    pub fix_fingers_every: Duration,
    /// How long to wait for an answer to a request (stabilize, ping) before
    /// the peer counts as failed.
    pub rpc_timeout: Duration,
    /// How long to wait for the next hop to acknowledge a routed message.
    pub hop_timeout: Duration,
    /// Sends of one hop to the same peer before it counts as failed.
    pub hop_attempts: u32,
    /// How long one attempt at a lookup may take, end to end.
    pub lookup_timeout: Duration,
    /// Attempts at a lookup before it is reported failed (an answer or an
    /// acknowledgement can be lost).
    pub lookup_attempts: u32,
    /// Attempts at joining through the bootstrap node.
    pub join_attempts: u32,
    /// How long a failed peer is ignored when others still list it.
    pub dead_memory: Duration,
    /// Hops a routed message may take before it is dropped.
    pub ttl: u32,
    /// Period of the partition probe: one remembered peer outside the view
    /// is asked to look up this node's id, so rings formed apart merge.
    pub probe_every: Duration,
    /// How many lost peers a node remembers to probe (0: never probe).
    pub remembered: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            successors: 32,
            stabilize_every: Duration::from_millis(500),
            check_predecessor_every: Duration::from_millis(1000),
            fix_fingers_every: Duration::from_millis(250),
            rpc_timeout: Duration::from_millis(1500),
            hop_timeout: Duration::from_millis(1000),
            hop_attempts: 2,
            lookup_timeout: Duration::from_secs(3),
            lookup_attempts: 3,
            join_attempts: 5,
            dead_memory: Duration::from_secs(10),
            ttl: 64,
            probe_every: Duration::from_secs(30),
            remembered: 16,
        }
    }
}

impl Config {
    /// The longest a lookup can take before it is reported, all attempts included.
    pub fn lookup_deadline(&self) -> Duration {
        self.lookup_timeout * self.lookup_attempts.max(1)
    }

    /// Periods for a wide-area ring under churn, with timeouts fitting the
    /// simulator's latency model; used by `peerlet sim`. Neighbours are
    /// pinged every 2 s (24-byte frames) so failures are seen in seconds;
    /// the successor list (a 1.5 KB answer) is refreshed every 15 s and
    /// fingers every 10 s: at Bamboo's churn this keeps 99.9% of lookups
    /// consistent for under 400 bytes per node per second (docs/benchmarks.md).
    pub fn simulation() -> Config {
        Config {
            stabilize_every: Duration::from_secs(15),
            check_predecessor_every: Duration::from_secs(2),
            fix_fingers_every: Duration::from_secs(10),
            rpc_timeout: Duration::from_millis(500),
            hop_timeout: Duration::from_millis(500),
            lookup_timeout: Duration::from_secs(10),
            dead_memory: Duration::from_secs(120),
            ..Config::default()
        }
    }
}
