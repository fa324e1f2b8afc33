//! The control socket: how a REPL on the same machine talks to a node.
//!
//! A node started with `--data DIR` listens on the Unix socket
//! `DIR/control.sock` (socket 0600 in a 0700 directory: its owner only;
//! nothing of it is reachable over the network). Each request and reply is
//! one frame of the nodes' own codec ([`crate::wire::write_frame`]): a
//! 4-byte big-endian length and one CBOR value, at most [`MAX_FRAME`] bytes. A client sends a
//! [`Request`] and reads one [`Response`], as often as it likes on one
//! connection. A bad frame closes that connection only.
//!
//! Replies are text for people: the REPL prints them as they are. One
//! request turns its connection into a stream: [`Request::Log`].

mod load;
pub mod log_tap;
mod server;
mod show;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::wire::{read_frame, write_frame, FrameError};

pub use load::LOCAL_KEY;
pub use server::{serve, ControlServer};

/// The socket's file name in a node's data directory.
pub const SOCKET_NAME: &str = "control.sock";

/// Largest request or reply frame: 1 MiB.
pub const MAX_FRAME: usize = 1 << 20;

/// What a client asks of the node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Run Lua in the node's console (see [`crate::peerlet::console`]).
    Eval {
        code: String,
    },
    /// Successors, predecessor, fingers.
    Peers,
    /// The ring as this node knows it, drawn as text.
    Ring,
    /// Installed peerlets and their counters.
    Apps,
    /// Install the peerlet in the file at `path` (read by the node):
    /// signed if `path.minisig` exists or the node has a trusted key of its
    /// own, else as the node's own (see `control/load.rs`).
    Load {
        path: PathBuf,
    },
    /// Swap the code of peerlet `name` for the file at `path`; without a
    /// path, the file it was last loaded from through this socket.
    Reload {
        name: String,
        path: Option<PathBuf>,
    },
    Unload {
        name: String,
    },
    /// Transport counters, queue depths and recent peerlet reports.
    Stats,
    /// Route a probe to `key` (40 hex digits, else a name hashed like
    /// `kbr.key(name)`) and list every hop with its latency.
    Trace {
        key: String,
    },
    /// Interrupt the console line waiting on a remote call (the REPL sends
    /// it on a second connection when Ctrl-C is pressed).
    Interrupt,
    /// Stream the node's log at `level` (`error` … `trace`) on this
    /// connection: one [`Response::Ok`], then [`Response::Log`] frames
    /// until the client closes the connection (`.log off`).
    Log {
        level: String,
    },
    /// Words for the REPL's Tab completion, one a line: the installed
    /// peerlets' names, this node's id and the ids of the nodes it knows.
    Completions,
}

/// The node's answer: text to print, or an error naming the reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    Ok(String),
    Error(String),
    /// Lines of the node's log, on a connection that asked for
    /// [`Request::Log`]; `dropped`: lines lost since the last frame
    /// because the client read too slowly.
    Log {
        lines: Vec<String>,
        dropped: u64,
    },
}

/// A connection to a node's control socket.
pub struct Client {
    stream: std::os::unix::net::UnixStream,
}

impl Client {
    pub fn connect(socket: &Path) -> std::io::Result<Client> {
        let stream = std::os::unix::net::UnixStream::connect(socket)?;
        Ok(Client { stream })
    }

    /// Sends `req` and waits for the node's answer.
    pub fn request(&mut self, req: &Request) -> Result<Response, FrameError> {
        write_frame(&mut self.stream, req, MAX_FRAME)?;
        read_frame(&mut self.stream, MAX_FRAME)?.ok_or_else(|| {
            FrameError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the node closed the control connection",
            ))
        })
    }
}
