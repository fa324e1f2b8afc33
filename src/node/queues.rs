//! How full a running node's queues are, for the REPL's `.stats`: where
//! messages wait when the node or a peer falls behind. (Peerlets' own
//! outgoing messages are handed to the KBR layer at the end of every
//! upcall, so none wait between requests; queues of messages waiting for
//! fetched code belong here once code is fetched.)

use std::net::SocketAddr;

use smol::channel::Receiver;

use super::{Node, NodeRequest};
use crate::chord::Pending;
use crate::net::tcp::NetInput;

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

impl Node {
    pub(super) fn queue_depths(
        &self,
        control: &Receiver<NodeRequest>,
        net: &Receiver<NetInput>,
    ) -> QueueDepths {
        QueueDepths {
            outgoing: self.transport.queue_depths(),
            queue_capacity: self.transport.queue_capacity(),
            incoming: net.len(),
            control: control.len(),
            pending: self.kbr.chord().pending(),
            peerlet_calls: self.peerlets.0.borrow().pending_calls(),
        }
    }
}
