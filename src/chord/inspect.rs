//! What the core can tell people about its peers and its work in flight:
//! the liveness of each node in the routing table, and the requests
//! waiting for an answer. Read-only views for the REPL's `.peers` and
//! `.stats`; routing never looks at them.

use std::net::SocketAddr;
use std::time::Duration;

use super::{Chord, Request, Time};

/// Peers remembered in the "last heard" map before it is pruned to the
/// routing table (so a node talking to many strangers stays bounded).
const HEARD_CAP: usize = 1024;

/// What this node believes about a peer in its routing table, from
/// nothing but what it saw: no probe is sent to find out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    /// The peer sent us something (an ack, an answer, any message) within
    /// the last [`Chord::alive_window`].
    Alive { heard: Duration },
    /// A hop to it went unacknowledged and is being retried, or it was
    /// declared failed recently and has been learnt again since.
    Suspected { why: &'static str },
    /// Nothing heard from it lately (or ever): it is neither known alive
    /// nor known failed. Fingers far away are often in this state, since
    /// only routing through them shows they are alive.
    Unknown { heard: Option<Duration> },
}

impl std::fmt::Display for Liveness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Liveness::Alive { heard } => write!(f, "alive (heard {} ms ago)", heard.as_millis()),
            Liveness::Suspected { why } => write!(f, "suspected ({why})"),
            Liveness::Unknown { heard: Some(h) } => {
                write!(f, "unknown (last heard {:.1} s ago)", h.as_secs_f64())
            }
            Liveness::Unknown { heard: None } => write!(f, "unknown (never heard from)"),
        }
    }
}

/// Requests waiting for an answer, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pending {
    /// Hops of routed messages not yet acknowledged by the next node.
    pub hops: usize,
    /// Lookups (user, finger and join) waiting for their root's answer.
    pub lookups: usize,
    /// Stabilize questions to the successor.
    pub stabilize: usize,
    /// Pings of the predecessor.
    pub pings: usize,
}

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
        let mut chord = Chord::new(node(1), Config::default());
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
