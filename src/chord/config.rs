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
    /// Period of the predecessor liveness check.
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
        }
    }
}

impl Config {
    /// The longest a lookup can take before it is reported, all attempts included.
    pub fn lookup_deadline(&self) -> Duration {
        self.lookup_timeout * self.lookup_attempts.max(1)
    }

    /// Periods like the Chord paper's simulations (stabilize every 30 s on
    /// average is theirs; we use 30 s) and timeouts fitting a WAN-like
    /// latency model. Used by `peerlet sim`.
    pub fn simulation() -> Config {
        Config {
            stabilize_every: Duration::from_secs(30),
            check_predecessor_every: Duration::from_secs(30),
            fix_fingers_every: Duration::from_secs(5),
            rpc_timeout: Duration::from_millis(500),
            hop_timeout: Duration::from_millis(500),
            lookup_timeout: Duration::from_secs(10),
            dead_memory: Duration::from_secs(120),
            ..Config::default()
        }
    }
}
