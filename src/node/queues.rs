//! How full a running node's queues are, for the REPL's `.stats`: where
//! messages wait when the node or a peer falls behind. (Peerlets' own
//! outgoing messages are handed to the KBR layer at the end of every
//! upcall, so none wait between requests; queues of messages waiting for
//! fetched code belong here once code is fetched.)

use std::net::SocketAddr;

use crate::kbr::Kbr;
use crate::net::tcp::Transport;
use crate::peerlet::Manager;
use crate::routing::Pending;

/// A snapshot of the node's queues, taken on its core task.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueDepths {
    /// Frames waiting to be written, per outgoing connection (each queue
    /// holds at most `queue_capacity`; beyond that messages are dropped).
    pub outgoing: Vec<(SocketAddr, usize)>,
    pub queue_capacity: usize,
    /// Messages received and not yet handled by the core.
    pub incoming: usize,
    /// Requests from other threads (control socket, handles) not yet run.
    pub control: usize,
    /// The core's requests waiting for an answer.
    pub pending: Pending,
    /// Remote peerlet calls made from here waiting for their reply.
    pub peerlet_calls: usize,
}

/// The depths now: the transport's outgoing queues, `incoming` messages
/// and `requests` from other threads not yet handled, what the core and
/// the peerlets wait on.
pub(super) fn depths(
    transport: &Transport,
    kbr: &Kbr,
    peerlets: &Manager,
    requests: usize,
    incoming: usize,
) -> QueueDepths {
    QueueDepths {
        outgoing: transport.queue_depths(),
        queue_capacity: transport.queue_capacity(),
        incoming,
        control: requests,
        pending: kbr.pending(),
        peerlet_calls: peerlets.pending_calls(),
    }
}
