//! Which nodes the web view shows: every node of the process in
//! `peerlet testnet` and `peerlet demo` (whose set changes with `.spawn`
//! and `.crash`), the one node of `peerlet node`, which knows the rest of
//! the ring only by id and address.

use std::sync::Arc;

use crate::node::NodeHandle;

/// The nodes whose state the page shows in full, asked afresh for every
/// snapshot.
pub trait NodeSet: Send + Sync {
    /// The nodes now, in the order the page numbers them.
    fn nodes(&self) -> Vec<Arc<NodeHandle>>;
}

/// A fixed set: the nodes of `peerlet testnet`, or the one of `peerlet node`.
impl NodeSet for Vec<Arc<NodeHandle>> {
    fn nodes(&self) -> Vec<Arc<NodeHandle>> {
        self.clone()
    }
}
