//! The control socket: how a REPL on the same machine talks to a node.
//!
//! A node started with `--data DIR` listens on the Unix socket
//! `DIR/control.sock` (socket 0600 in a 0700 directory: its owner only;
//! nothing of it is reachable over the network). Each request and reply is
//! one frame, as on the wire between nodes: a 4-byte big-endian length and
//! one CBOR value, at most [`MAX_FRAME`] bytes. A client sends a
//! [`Request`] and reads one [`Response`], as often as it likes on one
//! connection. A bad frame closes that connection only.
//!
//! Replies are text for people: the REPL prints them as they are. One
//! request turns its connection into a stream: [`Request::Log`].

mod load;
pub mod log_tap;
mod server;
mod show;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{de::DeserializeOwned, Deserialize, Serialize};

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

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("frame of {len} bytes is larger than the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("bad CBOR in frame: {0}")]
    Decode(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Writes `value` as one frame.
pub fn write_frame<T: Serialize>(w: &mut impl Write, value: &T) -> Result<(), ControlError> {
    let mut out = vec![0u8; 4];
    ciborium::into_writer(value, &mut out).map_err(|e| ControlError::Decode(e.to_string()))?;
    let len = out.len() - 4;
    if len > MAX_FRAME {
        return Err(ControlError::TooLarge {
            len,
            max: MAX_FRAME,
        });
    }
    out[..4].copy_from_slice(&(len as u32).to_be_bytes());
    w.write_all(&out)?;
    w.flush()?;
    Ok(())
}

/// Reads one frame; `None` when the peer closed the connection between frames.
pub fn read_frame<T: DeserializeOwned>(r: &mut impl Read) -> Result<Option<T>, ControlError> {
    let mut prefix = [0u8; 4];
    match r.read_exact(&mut prefix) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(prefix) as usize;
    if len > MAX_FRAME {
        return Err(ControlError::TooLarge {
            len,
            max: MAX_FRAME,
        });
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    ciborium::from_reader(&body[..])
        .map(Some)
        .map_err(|e| ControlError::Decode(e.to_string()))
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
    pub fn request(&mut self, req: &Request) -> Result<Response, ControlError> {
        write_frame(&mut self.stream, req)?;
        read_frame(&mut self.stream)?.ok_or_else(|| {
            ControlError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the node closed the control connection",
            ))
        })
    }
}
