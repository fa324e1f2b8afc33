//! What a routing core reports to the layers above, whichever core it is:
//! messages to send ([`Transmit`]), what happened ([`Event`]), where a
//! message for a key goes next ([`NextHop`]), where a lookup ended
//! ([`Found`]) or why it failed ([`RouteError`]), and for people, what it
//! believes of a peer's liveness ([`Liveness`]) and its requests in flight
//! ([`Pending`]).
//! The Chord core (`crate::chord`) produces them; the KBR layer, the
//! drivers and the control socket read them, without naming the core.

use std::net::SocketAddr;
use std::time::Duration;

use crate::id::Id;
use crate::wire::{Message, NodeRef, RoutedMessage};

/// A message the driver must send to the peer listening at `to`.
#[derive(Clone, Debug, PartialEq)]
pub struct Transmit {
    pub to: SocketAddr,
    /// The node the core expects at `to`: the transport sends only if the
    /// key it finds there gives this id. `None` for a bootstrap node, known
    /// by its address alone.
    pub id: Option<Id>,
    pub msg: Message,
}

impl Transmit {
    /// `msg` for the node `to`, at its address.
    pub fn to_node(to: NodeRef, msg: Message) -> Transmit {
        Transmit {
            to: to.addr,
            id: Some(to.id),
            msg,
        }
    }
}

/// Where a lookup ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    pub root: NodeRef,
    pub hops: u32,
}

/// Why a lookup or a routed message did not arrive.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("no answer within the lookup timeout")]
    Timeout,
    #[error("dropped after {0} hops (TTL)")]
    TtlExpired(u32),
    #[error("peer {0} did not acknowledge")]
    PeerFailed(SocketAddr),
}

/// What this node believes about a peer in its routing table, from
/// nothing but what it saw: no probe is sent to find out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    /// The peer sent us something (an ack, an answer, any message) within
    /// the last `alive_window` (two stabilize periods and an answer's timeout, in Chord).
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

/// What the layer above must hear about.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// The join completed: this node has a successor.
    Joined { successor: NodeRef },
    /// Joining through the bootstrap node failed for good.
    JoinFailed { reason: String },
    /// A node entered (`joined`) or left the neighbour set (predecessor and
    /// successor list): the common API's update upcall.
    Neighbor { node: NodeRef, joined: bool },
    /// An application message arrived from `from` and was acknowledged; the
    /// layer above decides where it goes (see [`Chord::next_hop`]).
    Routed {
        from: NodeRef,
        to_root: bool,
        msg: RoutedMessage,
    },
    /// A hop of an application message failed; route it again from here.
    Reroute { msg: RoutedMessage },
    /// An application message was given up.
    Undeliverable {
        msg: RoutedMessage,
        error: RouteError,
    },
    /// A lookup started with [`Chord::lookup`] ended.
    LookupDone {
        req: u64,
        key: Id,
        result: Result<Found, RouteError>,
    },
}

/// Where a message for a key goes from here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextHop {
    /// This node is the key's root.
    Local,
    /// Send to `node`; `to_root` when we believe `node` is the key's root.
    Forward { node: NodeRef, to_root: bool },
}
