//! The routing core behind the KBR layer: which one a node runs, and every
//! call the KBR layer makes on it, in one place.
//!
//! Today there is one core, Chord. A second one (say Kademlia) adds a
//! variant to [`CoreKind`] and [`RoutingCore`] and an arm to each method
//! below; its `RoutingView` goes into `view.rs`, its messages into
//! `wire.rs`, and its name into the `--core` flag. Nothing else changes:
//! the node and the simulator build their core with [`RoutingCore::new`].

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use super::view::RoutingView;
use crate::chord::{Chord, Config};
use crate::id::Id;
use crate::routing::{Event, Liveness, NextHop, Pending, Transmit};
use crate::time::Time;
use crate::wire::{Message, NodeRef, RoutedMessage};

/// Which routing core a node runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CoreKind {
    /// Chord (Stoica et al.): a ring, successor lists and fingers.
    #[default]
    Chord,
}

impl std::str::FromStr for CoreKind {
    type Err = String;

    /// The name `--core` takes.
    fn from_str(name: &str) -> Result<CoreKind, String> {
        match name {
            "chord" => Ok(CoreKind::Chord),
            other => Err(format!("unknown routing core `{other}` (known: chord)")),
        }
    }
}

/// A node's routing core (see the module docs).
pub enum RoutingCore {
    Chord(Chord),
}

impl From<Chord> for RoutingCore {
    fn from(chord: Chord) -> RoutingCore {
        RoutingCore::Chord(chord)
    }
}

impl RoutingCore {
    /// A core of `kind` for node `me`; `chord` holds the periods and
    /// timeouts (a core reads the ones it has).
    /// `secret` seeds the core's request ids (see [`Chord::new`]).
    pub fn new(kind: CoreKind, me: NodeRef, chord: &Config, secret: [u8; 32]) -> RoutingCore {
        match kind {
            CoreKind::Chord => RoutingCore::Chord(Chord::new(me, chord.clone(), secret)),
        }
    }

    /// The Chord core, if this is one (for the simulator and tests).
    pub fn as_chord(&self) -> Option<&Chord> {
        match self {
            RoutingCore::Chord(c) => Some(c),
        }
    }

    pub fn as_chord_mut(&mut self) -> Option<&mut Chord> {
        match self {
            RoutingCore::Chord(c) => Some(c),
        }
    }

    /// The routing state, read only.
    pub fn view(&self) -> &dyn RoutingView {
        match self {
            RoutingCore::Chord(c) => c.table(),
        }
    }

    /// A copy of the routing state to share (see `view.rs`).
    pub fn snapshot(&self) -> Rc<dyn RoutingView> {
        match self {
            RoutingCore::Chord(c) => Rc::new(c.table().clone()),
        }
    }

    /// Changes whenever the neighbours change.
    pub fn neighbors_version(&self) -> u64 {
        match self {
            RoutingCore::Chord(c) => c.table().neighbors_version(),
        }
    }

    pub fn me(&self) -> NodeRef {
        match self {
            RoutingCore::Chord(c) => c.me(),
        }
    }

    /// Hops a message this node sends may take.
    pub fn ttl(&self) -> u32 {
        match self {
            RoutingCore::Chord(c) => c.config().ttl,
        }
    }

    pub fn lookup_timeout(&self) -> Duration {
        match self {
            RoutingCore::Chord(c) => c.config().lookup_timeout,
        }
    }

    pub fn is_joined(&self) -> bool {
        match self {
            RoutingCore::Chord(c) => c.is_joined(),
        }
    }

    pub fn create(&mut self, now: Time) {
        match self {
            RoutingCore::Chord(c) => c.create(now),
        }
    }

    pub fn join(&mut self, now: Time, bootstrap: SocketAddr) {
        match self {
            RoutingCore::Chord(c) => c.join(now, bootstrap),
        }
    }

    pub fn leave(&mut self, now: Time) {
        match self {
            RoutingCore::Chord(c) => c.leave(now),
        }
    }

    pub fn lookup(&mut self, now: Time, key: Id) -> u64 {
        match self {
            RoutingCore::Chord(c) => c.lookup(now, key),
        }
    }

    pub fn liveness(&self, now: Time, addr: SocketAddr) -> Liveness {
        match self {
            RoutingCore::Chord(c) => c.liveness(now, addr),
        }
    }

    pub fn pending(&self) -> Pending {
        match self {
            RoutingCore::Chord(c) => c.pending(),
        }
    }

    pub fn next_hop(&self, key: &Id, claimed_root: bool, from: Option<&NodeRef>) -> NextHop {
        match self {
            RoutingCore::Chord(c) => c.next_hop(key, claimed_root, from),
        }
    }

    pub fn send_routed(&mut self, now: Time, msg: RoutedMessage, next: NodeRef, to_root: bool) {
        match self {
            RoutingCore::Chord(c) => c.send_routed(now, msg, next, to_root),
        }
    }

    pub fn new_message_id(&mut self) -> u64 {
        match self {
            RoutingCore::Chord(c) => c.new_message_id(),
        }
    }

    pub fn handle_message(&mut self, now: Time, from: NodeRef, msg: Message) {
        match self {
            RoutingCore::Chord(c) => c.handle_message(now, from, msg),
        }
    }

    pub fn handle_timeout(&mut self, now: Time) {
        match self {
            RoutingCore::Chord(c) => c.handle_timeout(now),
        }
    }

    pub fn handle_peer_failed(&mut self, now: Time, addr: SocketAddr) {
        match self {
            RoutingCore::Chord(c) => c.handle_peer_failed(now, addr),
        }
    }

    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        match self {
            RoutingCore::Chord(c) => c.poll_transmit(),
        }
    }

    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        match self {
            RoutingCore::Chord(c) => c.poll_event(),
        }
    }

    #[must_use]
    pub fn poll_timeout(&self) -> Option<Time> {
        match self {
            RoutingCore::Chord(c) => c.poll_timeout(),
        }
    }
}
