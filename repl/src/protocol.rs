//! What a console and a node say over the control socket: a client sends a
//! [`Request`] and reads one [`Response`], as often as it likes on one
//! connection. How they are framed is the transport's business
//! ([`crate::transport`]).
//!
//! Replies are text for people: the console prints them as they are. One
//! request turns its connection into a stream: [`Request::Log`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// What a client asks of the node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Run Lua in the node's console peerlet.
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
    /// own, else as the node's own.
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
    /// Words for the REPL's Tab completion, one a line: the peerlet names
    /// this node knows (installed here, kept here for the overlay, or asked
    /// about lately), this node's id and the ids of the nodes it knows.
    Completions,
    /// Which nodes run which version of peerlet `name`, as far as this node
    /// knows: the name's records in the overlay and the nodes that said
    /// what they run.
    Versions {
        name: String,
    },
    /// The nodes of this process (`peerlet demo`): number, address, id,
    /// state.
    Nodes,
    /// Stop node `node` of this process at once, telling nobody: a crash.
    Crash {
        node: NodeChoice,
    },
    /// Make node `node` of this process leave the ring gracefully.
    Leave {
        node: NodeChoice,
    },
    /// Start one more node in this process; it joins the ring.
    Spawn,
    /// Cut the network of this process between `groups` of node numbers
    /// (the nodes no group names form one group more).
    Partition {
        groups: Vec<Vec<usize>>,
    },
    /// Lift the partition.
    Heal,
}

/// Which node of the process a fault command means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeChoice {
    /// Its number in `.nodes`.
    Number(usize),
    /// The successor of the node this console runs on.
    Successor,
}

impl std::str::FromStr for NodeChoice {
    type Err = ();

    /// `3` or `successor`.
    fn from_str(text: &str) -> Result<NodeChoice, ()> {
        match text {
            "successor" => Ok(NodeChoice::Successor),
            n => n.parse().map(NodeChoice::Number).map_err(drop),
        }
    }
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
