//! What the core task shares with the threads that drive it: the requests
//! they send it (through a [`NodeHandle`](super::NodeHandle)), and where
//! the node is in its life.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::queues::QueueDepths;
use crate::id::Id;
use crate::kbr::trace::TraceDone;
use crate::kbr::{Api, Kbr};
use crate::net::tcp::NetCounters;
use crate::peerlet::Manager;
use crate::routing::{Found, RouteError};
use crate::time::Time;

/// Where a node is in its life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeState {
    /// Looking for its place in the ring through the bootstrap node.
    Joining,
    /// Part of a ring (joined one, or created it).
    Joined,
    /// Gave up joining; the node still runs and could be told to join again.
    JoinFailed(String),
    /// Left or killed; its thread has ended.
    Stopped,
}

/// A closure run on the core task (see [`NodeHandle::call`]). What it
/// returns is run after the node acted on the calls: it sends the answer.
pub(crate) type CoreCall = Box<dyn FnOnce(&mut Kbr, Time) -> Reply + Send>;
pub(crate) type Reply = Box<dyn FnOnce() + Send>;
/// A closure run on the core task with the peerlet manager (see
/// [`NodeHandle::with_peerlets`]).
pub(crate) type PeerletCall = Box<dyn FnOnce(&mut Manager, &mut Api<'_>) -> Reply + Send>;

/// What other threads ask of the core task.
pub(crate) enum NodeRequest {
    /// Run a closure on the KBR layer (see [`NodeHandle::call`]).
    Call(CoreCall),
    /// Run a closure on the peerlet manager.
    Peerlets(PeerletCall),
    Lookup {
        key: Id,
        reply: SyncSender<Result<Found, RouteError>>,
    },
    /// Trace the route to `key` (see [`crate::kbr::trace`]).
    Trace { key: Id, done: TraceDone },
    /// How full the node's queues are.
    Queues(SyncSender<QueueDepths>),
    /// Leave gracefully, then stop.
    Leave,
    /// Stop at once, telling nobody.
    Kill,
}

/// State shared between the core task and its handles.
pub(crate) struct Shared {
    pub(crate) state: Mutex<NodeState>,
    pub(crate) changed: Condvar,
    pub(crate) counters: Arc<NetCounters>,
    /// Microseconds the core task spent working (not waiting), peerlets
    /// included.
    pub(crate) busy_us: AtomicU64,
}

impl Shared {
    pub(super) fn add_busy(&self, d: Duration) {
        self.busy_us
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    pub(super) fn set_state(&self, state: NodeState) {
        *self.state.lock().expect("node state lock") = state;
        self.changed.notify_all();
    }
}
