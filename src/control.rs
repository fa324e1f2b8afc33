//! The control socket: how a REPL on the same machine talks to a node.
//!
//! A node started with `--data DIR` listens on the Unix socket
//! `DIR/control.sock` (socket 0600 in a 0700 directory: its owner only;
//! nothing of it is reachable over the network). Requests and replies are
//! the console's ([`peerlet_repl::protocol`]: a client sends a [`Request`]
//! and reads one [`Response`], as often as it likes on one connection),
//! each one frame of the nodes' own codec ([`crate::wire::write_frame`]): a
//! 4-byte big-endian length and one CBOR value, at most [`MAX_FRAME`]
//! bytes. A bad frame closes that connection only. `control/client.rs` is
//! the console's way in, `control/server.rs` the node's side.

mod client;
pub mod fleet;
mod load;
pub mod log_tap;
mod server;
mod show;

pub use client::{Client, ControlSocket};
pub use fleet::Fleet;
pub use load::LOCAL_KEY;
pub use peerlet_repl::{Request, Response};
pub use server::{serve, serve_with_fleet, ControlServer, MAX_FRAME, SOCKET_NAME};
