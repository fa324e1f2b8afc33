//! What the manager keeps about names: the records it holds for the
//! overlay, the answers it got, the asks in flight with who waits for them,
//! and when it next checks the names running here.

use std::collections::BTreeMap;

use super::resolve::NameCache;
use super::store::NameStore;
use crate::id::{AppId, Id};
use crate::peerlet::host::{CallTarget, Served};
use crate::sandbox::CallId;
use crate::time::Time;
use crate::wire::NodeRef;

/// A remote call made by a peerlet here, before it is sent.
pub(in crate::peerlet) struct ParkedCall {
    /// The calling peerlet, and its suspended activation.
    pub(in crate::peerlet) app: AppId,
    pub(in crate::peerlet) activation: CallId,
    pub(in crate::peerlet) served: Option<Served>,
    pub(in crate::peerlet) call: u64,
    pub(in crate::peerlet) key: Id,
    pub(in crate::peerlet) target: CallTarget,
    pub(in crate::peerlet) method: String,
    pub(in crate::peerlet) args: Vec<u8>,
    /// When the peerlet made the call: its timeout counts from here.
    pub(in crate::peerlet) since: Time,
    /// `peerlet.at(node)`: sent straight to this node, not routed.
    pub(in crate::peerlet) node: Option<NodeRef>,
    /// How long the call may wait for its reply.
    pub(in crate::peerlet) timeout: std::time::Duration,
}

/// Who waits for the answer about a name.
pub(in crate::peerlet) enum Waiter {
    Call(Box<ParkedCall>),
    /// `.versions NAME`.
    Versions(Box<dyn FnOnce(Result<String, String>)>),
    /// The periodic check of a name running here.
    Check,
}

pub(in crate::peerlet) struct Ask {
    pub(in crate::peerlet) req: u64,
    pub(in crate::peerlet) deadline: Time,
    pub(in crate::peerlet) attempts: u32,
    pub(in crate::peerlet) waiters: Vec<Waiter>,
}

/// What the manager keeps about names: the records it holds for the
/// overlay, the answers it got, the asks in flight, the next check.
#[derive(Default)]
pub struct Names {
    pub store: NameStore,
    pub cache: NameCache,
    pub(in crate::peerlet) asks: BTreeMap<String, Ask>,
    pub(in crate::peerlet) next_check: Option<Time>,
}

impl Names {
    /// When names want the manager's timeout next.
    pub fn next_deadline(&self) -> Option<Time> {
        self.asks
            .values()
            .map(|a| a.deadline)
            .chain(self.next_check)
            .min()
    }

    /// Asks in flight.
    pub fn asking(&self) -> usize {
        self.asks.len()
    }
}
