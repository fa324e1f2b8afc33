//! Remote calls as the runtime sees them: which peerlet a handle calls,
//! and the call a suspended upcall waits on.

use crate::id::{AppId, Id};
use crate::wire::NodeRef;

/// Upcall names that cannot be called remotely: they belong to the node.
pub const RESERVED_METHODS: [&str; 7] = [
    "deliver",
    "forward",
    "update",
    "undelivered",
    "init",
    "save",
    "restore",
];

/// Which peerlet a handle calls: an app id, or the name of a peerlet
/// installed on this node (resolved by the manager when the call is sent).
#[derive(Clone, Debug, PartialEq)]
pub enum CallTarget {
    App(AppId),
    Name(String),
}

/// A remote call a suspended upcall is waiting on.
#[derive(Clone, Debug, PartialEq)]
pub struct CallRequest {
    pub key: Id,
    /// `peerlet.at(node)`: sent straight to this node, not routed to the
    /// root of `key` (which is then the node's id).
    pub node: Option<NodeRef>,
    /// `peerlet.at(node, app, {timeout = secs})`: less time than the
    /// node's call timeout, so a caller can try the next replica sooner.
    pub timeout: Option<std::time::Duration>,
    pub app: CallTarget,
    pub method: String,
    /// The arguments, a CBOR array.
    pub args: Vec<u8>,
}

/// A remote method call served here: where its reply goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Served {
    pub from: NodeRef,
    pub call: u64,
}
