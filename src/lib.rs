//! peerlet: a programmable structured peer-to-peer overlay.
//!
//! Map of the crate: [`id`] (ring ids, keys), [`wire`] (messages, frames),
//! [`chord`] (the sans-IO ring state machine), [`kbr`] (the common API and
//! application upcalls over it), [`net`] (TCP transport), [`node`] (a running
//! node: transport + KBR on one thread, reached through a `NodeHandle`),
//! [`sim`] (the same core over a virtual network), [`cmd`] (the CLI).
//!
//! A message's way through a node: a reader task of [`net::tcp`] reads a
//! frame and hands the [`wire::Message`] to the node's core task
//! ([`node`]), which calls `Kbr::handle_message`; the core decides (next
//! hop, upcalls) and the node drains its `poll_transmit` into the transport's
//! per-peer queues, whose writer tasks put the frames on the sockets.
#![forbid(unsafe_code)]

pub mod chord;
pub mod cmd;
pub mod id;
pub mod kbr;
pub mod net;
pub mod node;
pub mod sim;
pub mod wire;
