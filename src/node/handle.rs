//! [`NodeHandle`]: how other threads (the CLI, tests, later the control
//! socket) talk to a running node.
//!
//! Every request goes over a channel to the node's core task and the calling
//! thread blocks for the answer. Never call a handle's blocking methods from
//! inside a [`NodeHandle::call`] closure: that closure runs on the core task,
//! which would wait for itself.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use smol::channel::Sender;

use super::queues::QueueDepths;
use super::shared::{NodeRequest, NodeState, Shared};
use crate::id::AppId;
use crate::id::Id;
use crate::kbr::trace::TraceReport;
use crate::kbr::{Api, Kbr};
use crate::peerlet::Manager;
use crate::routing::{Found, RouteError};
use crate::time::Time;
use crate::wire::NodeRef;

/// Why a request to a node did not get its answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    #[error("node {0} has stopped")]
    Stopped(SocketAddr),
    #[error("node {node}: no answer within {limit:?}")]
    Timeout { node: SocketAddr, limit: Duration },
    #[error("node {node}: lookup of {key} failed: {error}")]
    Lookup {
        node: SocketAddr,
        key: Id,
        error: RouteError,
    },
    #[error("node {node}: join failed: {reason}")]
    JoinFailed { node: SocketAddr, reason: String },
    #[error("node {node}: {reason}")]
    Install { node: SocketAddr, reason: String },
}

/// A snapshot of a node's transport counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Messages received (after the hello).
    pub messages_in: u64,
    /// Messages queued for sending.
    pub messages_out: u64,
    /// Bytes received in frames after the hello (length prefixes included).
    pub bytes_in: u64,
    /// Bytes queued for sending (length prefixes included).
    pub bytes_out: u64,
    /// Messages dropped because a peer's outgoing queue was full.
    pub dropped_queue_full: u64,
    /// Incoming connections closed for bad input.
    pub bad_frames: u64,
    /// Outgoing connections that failed (each reported to the core).
    pub peer_failures: u64,
    /// Accepted connections open now.
    pub connections_in: u64,
    /// Connections refused at accept, over a cap.
    pub refused_connections: u64,
    /// Handshakes that failed or were refused (bad handshake, a chosen id
    /// without lab mode, an address that belongs to another key).
    pub refused_handshakes: u64,
    /// Messages not sent: to an address that could not be reached a moment
    /// ago, or where another node than the one expected answers.
    pub dropped_unreachable: u64,
    /// Time the node's thread spent working, peerlets included.
    pub busy: Duration,
}

/// A running node, from any thread. Dropping the handle kills the node
/// (like [`NodeHandle::kill`]); call [`NodeHandle::leave`] first to leave
/// gracefully.
pub struct NodeHandle {
    me: NodeRef,
    requests: Sender<NodeRequest>,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    lookup_limit: Duration,
}

impl NodeHandle {
    pub(super) fn new(
        me: NodeRef,
        requests: Sender<NodeRequest>,
        shared: Arc<Shared>,
        thread: JoinHandle<()>,
        lookup_limit: Duration,
    ) -> NodeHandle {
        NodeHandle {
            me,
            requests,
            shared,
            thread: Mutex::new(Some(thread)),
            lookup_limit,
        }
    }

    /// The address the node listens on (with the real port if it was 0).
    pub fn addr(&self) -> SocketAddr {
        self.me.addr
    }

    pub fn id(&self) -> Id {
        self.me.id
    }

    /// The node as others know it.
    pub fn me(&self) -> NodeRef {
        self.me
    }

    pub fn state(&self) -> NodeState {
        self.shared.state.lock().expect("node state lock").clone()
    }

    /// Joins (again) the ring that the node at `bootstrap` is part of: after
    /// a join failed, to try another seed. The state is `Joining` until it
    /// succeeds or fails.
    pub fn join(&self, bootstrap: SocketAddr) -> Result<(), NodeError> {
        self.shared.set_state(NodeState::Joining);
        self.call(move |kbr, now| kbr.join(now, bootstrap))
    }

    /// Blocks until the node is part of a ring, its join failed, or
    /// `timeout` passed.
    pub fn wait_joined(&self, timeout: Duration) -> Result<(), NodeError> {
        let end = Instant::now() + timeout;
        let mut state = self.shared.state.lock().expect("node state lock");
        loop {
            match &*state {
                NodeState::Joined => return Ok(()),
                NodeState::JoinFailed(reason) => {
                    return Err(NodeError::JoinFailed {
                        node: self.me.addr,
                        reason: reason.clone(),
                    })
                }
                NodeState::Stopped => return Err(NodeError::Stopped(self.me.addr)),
                NodeState::Joining => {}
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(NodeError::Timeout {
                    node: self.me.addr,
                    limit: timeout,
                });
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, left)
                .expect("node state lock")
                .0;
        }
    }

    /// Finds the root of `key` by routing a lookup from this node. Blocks
    /// until the answer, or the core's lookup timeout (plus a margin).
    pub fn lookup(&self, key: Id) -> Result<Found, NodeError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.request(NodeRequest::Lookup { key, reply })?;
        match answer.recv_timeout(self.lookup_limit) {
            Ok(Ok(found)) => Ok(found),
            Ok(Err(error)) => Err(NodeError::Lookup {
                node: self.me.addr,
                key,
                error,
            }),
            Err(RecvTimeoutError::Timeout) => Err(NodeError::Timeout {
                node: self.me.addr,
                limit: self.lookup_limit,
            }),
            Err(RecvTimeoutError::Disconnected) => Err(NodeError::Stopped(self.me.addr)),
        }
    }

    /// Routes a probe to `key` and reports every node it passed, with the
    /// time until each answered (see [`crate::kbr::trace`]). Blocks until
    /// the root answered or the lookup timeout passed.
    pub fn trace(&self, key: Id) -> Result<TraceReport, NodeError> {
        let (reply, answer) = mpsc::sync_channel(1);
        let done = Box::new(move |report| {
            let _ = reply.send(report);
        });
        self.request(NodeRequest::Trace { key, done })?;
        match answer.recv_timeout(self.lookup_limit) {
            Ok(report) => Ok(report),
            Err(RecvTimeoutError::Timeout) => Err(NodeError::Timeout {
                node: self.me.addr,
                limit: self.lookup_limit,
            }),
            Err(RecvTimeoutError::Disconnected) => Err(NodeError::Stopped(self.me.addr)),
        }
    }

    /// How full the node's queues are now.
    pub fn queue_depths(&self) -> Result<QueueDepths, NodeError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.request(NodeRequest::Queues(reply))?;
        answer.recv().map_err(|_| NodeError::Stopped(self.me.addr))
    }

    /// Runs `f` on the node's core task with its KBR layer and the current
    /// time, lets the node act on what `f` queued (routes, sends: handed to
    /// the transport by the time this returns), and returns what `f`
    /// returned. This is how applications are registered and messages
    /// routed from outside:
    ///
    /// ```no_run
    /// # let node = peerlet::node::Node::spawn(
    /// #     peerlet::node::NodeConfig::new("127.0.0.1:0".parse().unwrap())).unwrap();
    /// let successors = node.call(|kbr, now| kbr.api(now).neighbor_set(4)).unwrap();
    /// ```
    pub fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Kbr, Time) -> R + Send + 'static,
    ) -> Result<R, NodeError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.request(NodeRequest::Call(Box::new(move |kbr, now| {
            let out = f(kbr, now);
            Box::new(move || {
                let _ = reply.send(out);
            })
        })))?;
        answer.recv().map_err(|_| NodeError::Stopped(self.me.addr))
    }

    /// Runs `f` on the node's thread with its peerlet manager and the KBR
    /// API (install, reload, unload, inspect), then lets the node act on
    /// what it queued; returns what `f` returned.
    pub fn with_peerlets<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Manager, &mut Api<'_>) -> R + Send + 'static,
    ) -> Result<R, NodeError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.request(NodeRequest::Peerlets(Box::new(move |manager, api| {
            let out = f(manager, api);
            Box::new(move || {
                let _ = reply.send(out);
            })
        })))?;
        answer.recv().map_err(|_| NodeError::Stopped(self.me.addr))
    }

    /// Starts a line on the node's console (see [`Manager::console_eval`]);
    /// its outcome (the printed values, or the error) arrives on the
    /// returned channel, later if the line waits on remote calls. The
    /// channel closes unanswered if the line is dropped (a newer line
    /// waited, the console was replaced, or the node stopped).
    pub fn console_start(
        &self,
        code: &str,
    ) -> Result<mpsc::Receiver<Result<String, String>>, NodeError> {
        let (tx, rx) = mpsc::sync_channel(1);
        let code = code.to_string();
        self.with_peerlets(move |m, api| {
            let done = move |r| {
                let _ = tx.send(r);
            };
            m.console_eval(api, &code, Box::new(done))
        })?;
        Ok(rx)
    }

    /// Installs an unsigned peerlet from source as this node's own (see
    /// [`Manager::install_local`]); the error names the reason.
    pub fn install_local(&self, chunk_name: &str, source: &[u8]) -> Result<AppId, NodeError> {
        let chunk = chunk_name.to_string();
        let source = source.to_vec();
        self.with_peerlets(move |m, api| {
            m.install_local(api, &chunk, &source)
                .map_err(|e| e.to_string())
        })?
        .map_err(|reason| NodeError::Install {
            node: self.me.addr,
            reason,
        })
    }

    /// Installs a signed peerlet (see [`Manager::install_signed`]).
    pub fn install_signed(&self, source: &[u8], signature: &str) -> Result<AppId, NodeError> {
        let (source, signature) = (source.to_vec(), signature.to_string());
        self.with_peerlets(move |m, api| {
            m.install_signed(api, &source, &signature)
                .map_err(|e| e.to_string())
        })?
        .map_err(|reason| NodeError::Install {
            node: self.me.addr,
            reason,
        })
    }

    /// Leaves the ring gracefully: the neighbours are told (the messages are
    /// written before this returns), then the node stops.
    pub fn leave(&self) {
        let _ = self.requests.try_send(NodeRequest::Leave);
        self.join_thread();
    }

    /// Stops the node at once, like a crash: it tells nobody, and its
    /// sockets close when this returns.
    pub fn kill(&self) {
        let _ = self.requests.try_send(NodeRequest::Kill);
        self.join_thread();
    }

    /// Is the node's thread still running?
    pub fn is_running(&self) -> bool {
        self.state() != NodeState::Stopped
    }

    pub fn stats(&self) -> NodeStats {
        let c = &self.shared.counters;
        NodeStats {
            messages_in: c.messages_in.load(Ordering::Relaxed),
            messages_out: c.messages_out.load(Ordering::Relaxed),
            bytes_in: c.bytes_in.load(Ordering::Relaxed),
            bytes_out: c.bytes_out.load(Ordering::Relaxed),
            dropped_queue_full: c.dropped_queue_full.load(Ordering::Relaxed),
            bad_frames: c.bad_frames.load(Ordering::Relaxed),
            peer_failures: c.peer_failures.load(Ordering::Relaxed),
            connections_in: c.connections_in.load(Ordering::Relaxed),
            refused_connections: c.refused_connections.load(Ordering::Relaxed),
            refused_handshakes: c.refused_handshakes.load(Ordering::Relaxed),
            dropped_unreachable: c.dropped_unreachable.load(Ordering::Relaxed),
            busy: Duration::from_micros(self.shared.busy_us.load(Ordering::Relaxed)),
        }
    }

    fn request(&self, c: NodeRequest) -> Result<(), NodeError> {
        self.requests
            .try_send(c)
            .map_err(|_| NodeError::Stopped(self.me.addr))
    }

    fn join_thread(&self) {
        let thread = self.thread.lock().expect("node thread lock").take();
        if let Some(t) = thread {
            if t.join().is_err() {
                tracing::error!("node {}: its thread panicked", self.me.addr);
            }
        }
    }
}

impl Drop for NodeHandle {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<NodeHandle>();
    }
}
