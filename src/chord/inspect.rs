//! What the core can tell people about its peers and its work in flight:
//! the [`Liveness`] of each node in the routing table, and the requests
//! waiting for an answer ([`Pending`]). Read-only views for the REPL's `.peers` and
//! `.stats`; routing never looks at them.

use std::net::SocketAddr;
use std::time::Duration;

use super::{Chord, Request};
use crate::routing::{Liveness, Pending};
use crate::time::Time;

/// Peers remembered in the "last heard" map before it is pruned to the
/// routing table (so a node talking to many strangers stays bounded).
const HEARD_CAP: usize = 1024;

impl Chord {
    /// Notes that `addr` just sent us something.
    pub(super) fn heard_from(&mut self, now: Time, addr: SocketAddr) {
        self.heard.insert(addr, now);
        if self.heard.len() > HEARD_CAP {
            let known: Vec<SocketAddr> = self.table.known_nodes().iter().map(|n| n.addr).collect();
            self.heard.retain(|a, _| known.contains(a));
        }
    }

    /// How recently a peer must have been heard from to count as alive:
    /// two stabilize periods and an answer's timeout, so a successor that
    /// answers every stabilize always is.
    pub fn alive_window(&self) -> Duration {
        self.cfg.stabilize_every * 2 + self.cfg.rpc_timeout
    }

    /// What this node believes about the peer at `addr` (see [`Liveness`]).
    pub fn liveness(&self, now: Time, addr: SocketAddr) -> Liveness {
        let retrying = self
            .requests
            .values()
            .any(|r| matches!(r, Request::Hop { to, attempt, .. } if *to == addr && *attempt > 0));
        if retrying {
            return Liveness::Suspected {
                why: "a hop to it is unacknowledged, retrying",
            };
        }
        if self.dead.contains_key(&addr) {
            return Liveness::Suspected {
                why: "it failed recently",
            };
        }
        match self.heard.get(&addr).map(|t| now.since(*t)) {
            Some(heard) if heard <= self.alive_window() => Liveness::Alive { heard },
            heard => Liveness::Unknown { heard },
        }
    }

    /// The requests waiting for an answer, by kind.
    pub fn pending(&self) -> Pending {
        let mut p = Pending::default();
        for r in self.requests.values() {
            match r {
                Request::Hop { .. } => p.hops += 1,
                Request::Lookup { .. } => p.lookups += 1,
                Request::Stabilize { .. } => p.stabilize += 1,
                Request::Ping { .. } => p.pings += 1,
            }
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chord::Config;
    use crate::id::Id;
    use crate::wire::{Message, NodeRef};

    fn node(n: u8) -> NodeRef {
        NodeRef {
            id: Id::key([n]),
            addr: format!("127.0.0.1:{}", 4000 + n as u16).parse().unwrap(),
        }
    }

    #[test]
    fn a_peer_is_alive_after_it_spoke_and_unknown_once_quiet() {
        let mut chord = Chord::new(node(1), Config::default(), [1; 32]);
        chord.create(Time::ZERO);
        let peer = node(2);
        assert_eq!(
            chord.liveness(Time::ZERO, peer.addr),
            Liveness::Unknown { heard: None }
        );
        let t = Time::ZERO + Duration::from_secs(1);
        chord.handle_message(t, peer, Message::Notify);
        assert!(matches!(
            chord.liveness(t, peer.addr),
            Liveness::Alive { .. }
        ));
        let later = t + chord.alive_window() + Duration::from_secs(1);
        assert!(matches!(
            chord.liveness(later, peer.addr),
            Liveness::Unknown { heard: Some(_) }
        ));
        chord.handle_peer_failed(later, peer.addr);
        assert!(matches!(
            chord.liveness(later, peer.addr),
            Liveness::Suspected { .. }
        ));
    }
}
