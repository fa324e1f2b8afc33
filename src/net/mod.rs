//! Transports that carry [`crate::wire::Message`]s between nodes.
//!
//! [`tcp`] is the real one: framed CBOR over TCP with smol and async-net,
//! driven by [`crate::node`]. The in-memory network with a virtual clock
//! lives in [`crate::sim::net`], next to the simulator that drives it.
//! [`tcp`] holds the outgoing side and the design; [`incoming`] accepts
//! connections and checks what they send; [`connection`] reads frames off
//! one stream with the limits that keep a node safe from bad or slow peers.
//! [`identity`] is a node's key pair and the id it gives; [`secure`] the
//! handshake and encrypted records every connection starts with; [`book`]
//! which key this node found at which address; [`warn`] rate-limits the
//! warnings a peer can cause; [`wan`] emulates a wide-area network and
//! [`cut`] a partition of it.

pub mod book;
pub mod connection;
pub mod cut;
pub mod identity;
pub mod incoming;
pub mod secure;
pub mod tcp;
pub mod wan;
pub mod warn;

pub use connection::{FrameReader, ReadError};
pub use identity::NodeKey;
pub use tcp::{NetCounters, NetInput, TcpConfig, Transport};
