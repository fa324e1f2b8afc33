//! The TCP transport: one persistent outgoing connection per peer, and a
//! reader task per incoming connection, all on the node's single-threaded
//! executor.
//!
//! Connections carry messages one way. The side that opens a connection
//! sends its [`Message::Hello`] and then only writes; the side that accepts it
//! checks the hello and then only reads, handing every message to the core as
//! [`NetInput::Message`] from the node the hello named. Replies travel over
//! the replier's own outgoing connection to the sender's listen address. This
//! keeps exactly one writer per socket and no connection-ownership races
//! between two nodes that open connections to each other at once.
//!
//! The incoming side is `accept_loop` ([`super::incoming`]). The
//! outgoing side is [`Transport`], owned by the core: [`Transport::send`]
//! never blocks. Each peer has a bounded queue of encoded frames drained by a
//! writer task; when the queue is full the message is dropped and counted.
//! When that writer has nothing left to write, `send` writes the frame to the
//! socket itself if the kernel takes it at once (see `IdleSocket`): a
//! routed hop then costs no wake-up of the writer task.
//! When a connect, a write, or the connection itself fails (the peer closed
//! it, which on loopback is how a crashed process shows), the writer task
//! reports [`NetInput::PeerFailed`] and ends; the next send to that peer opens
//! a new connection.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_net::TcpStream;
use smol::channel::{self, Receiver, Sender, TrySendError};
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::{Async, LocalExecutor, Task, Timer};

use crate::wire::{encode_frame, Message, NodeRef, DEFAULT_MAX_FRAME, PROTOCOL_VERSION};

/// Limits and patience of the transport.
#[derive(Clone, Debug)]
pub struct TcpConfig {
    /// Largest frame sent or accepted, in bytes (CBOR body, without prefix).
    pub max_frame: usize,
    /// How long a connect may take before the peer counts as failed.
    pub connect_timeout: Duration,
    /// How long a write may block (the peer not reading) before the peer
    /// counts as failed.
    pub write_timeout: Duration,
    /// Once a frame's first byte arrived, how long the rest may take.
    pub frame_timeout: Duration,
    /// How long an accepted connection may take to send its hello.
    pub hello_timeout: Duration,
    /// Frames queued per peer before further messages are dropped.
    pub queue_len: usize,
}

impl Default for TcpConfig {
    fn default() -> TcpConfig {
        TcpConfig {
            max_frame: DEFAULT_MAX_FRAME,
            connect_timeout: Duration::from_secs(3),
            write_timeout: Duration::from_secs(5),
            frame_timeout: Duration::from_secs(10),
            hello_timeout: Duration::from_secs(10),
            queue_len: 1024,
        }
    }
}

/// What the transport tells the core.
// Nearly every input is a message: boxing it would cost an allocation each.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum NetInput {
    /// A message arrived from `from` (as its hello named it).
    Message { from: NodeRef, msg: Message },
    /// The outgoing connection `generation` to `addr` failed and has ended.
    PeerFailed {
        addr: SocketAddr,
        generation: u64,
        reason: String,
    },
}

/// Counters of what crossed this node's sockets; shared with other threads.
#[derive(Debug, Default)]
pub struct NetCounters {
    pub messages_in: AtomicU64,
    pub messages_out: AtomicU64,
    /// Bytes of the frames received (after the hello), prefixes included.
    pub bytes_in: AtomicU64,
    /// Bytes of the frames queued for sending, prefixes included.
    pub bytes_out: AtomicU64,
    pub dropped_queue_full: AtomicU64,
    pub bad_frames: AtomicU64,
    pub peer_failures: AtomicU64,
}

impl NetCounters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Why an outgoing connection ended.
#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error("connect failed: {0}")]
    Connect(std::io::Error),
    #[error("connect did not complete within {0:?}")]
    ConnectTimeout(Duration),
    #[error("write failed: {0}")]
    Write(std::io::Error),
    #[error("write blocked for {0:?}")]
    WriteTimeout(Duration),
    #[error("peer closed the connection")]
    Closed,
}

struct Peer {
    queue: Sender<Vec<u8>>,
    generation: u64,
    writer: Task<()>,
    /// Messages dropped on this connection's full queue so far.
    dropped: u64,
    idle: IdleSocket,
}

/// The socket of a connection whose writer task has written everything and
/// waits for the next frame: while it is here, [`Transport::send`] may write
/// a frame itself, without waking the writer task. The writer puts it here
/// before it waits, and takes it back when it wakes; `send` takes it while
/// it writes, and leaves it out if it could not write the whole frame (the
/// rest then goes through the queue, first). So at any time exactly one side
/// may write, and bytes never interleave. All on the node's one thread.
type IdleSocket = Rc<RefCell<Option<Arc<Async<std::net::TcpStream>>>>>;

/// One non-blocking write of `frame` to an idle socket: how many bytes the
/// kernel took (0 if it would block). An error leaves the frame to the
/// writer task, which meets the same error and reports the peer failed.
fn write_now(socket: &Async<std::net::TcpStream>, frame: &[u8]) -> Option<usize> {
    let mut s: &std::net::TcpStream = socket.get_ref();
    match s.write(frame) {
        Ok(n) => Some(n),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
            ) =>
        {
            Some(0)
        }
        Err(_) => None,
    }
}

/// The outgoing half of the transport, owned by the core. See module docs.
pub struct Transport {
    me: NodeRef,
    cfg: Rc<TcpConfig>,
    executor: Weak<LocalExecutor<'static>>,
    peers: HashMap<SocketAddr, Peer>,
    inputs: Sender<NetInput>,
    counters: Arc<NetCounters>,
    next_generation: u64,
}

impl Transport {
    pub fn new(
        me: NodeRef,
        cfg: Rc<TcpConfig>,
        executor: Weak<LocalExecutor<'static>>,
        inputs: Sender<NetInput>,
        counters: Arc<NetCounters>,
    ) -> Transport {
        Transport {
            me,
            cfg,
            executor,
            peers: HashMap::new(),
            inputs,
            counters,
            next_generation: 0,
        }
    }

    /// Queues `msg` for the peer listening at `to`, connecting if needed.
    /// Never blocks; a message that does not fit the peer's queue is dropped
    /// (counted in `dropped_queue_full`, logged).
    pub fn send(&mut self, to: SocketAddr, msg: &Message) {
        let frame = match encode_frame(msg, self.cfg.max_frame) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(peer = %to, "not sending {}: {e}", msg.kind());
                return;
            }
        };
        let len = frame.len() as u64;
        let mut frame = frame;
        if let Some(peer) = self.peers.get_mut(&to) {
            // Written here when the writer is idle: saves waking its task
            // (a hop's next frame is on the latency path).
            let idle = peer.idle.borrow_mut().take();
            if let Some(socket) = idle {
                match write_now(&socket, &frame) {
                    Some(n) if n == frame.len() => {
                        *peer.idle.borrow_mut() = Some(socket);
                        NetCounters::bump(&self.counters.messages_out);
                        NetCounters::add(&self.counters.bytes_out, len);
                        return;
                    }
                    // The rest goes first through the queue; the socket
                    // stays with the writer until it has written it.
                    Some(n) => frame = frame.split_off(n),
                    None => {}
                }
            }
        }
        let frame = match self.peers.get_mut(&to) {
            None => frame,
            Some(peer) => match peer.queue.try_send(frame) {
                Ok(()) => {
                    NetCounters::bump(&self.counters.messages_out);
                    NetCounters::add(&self.counters.bytes_out, len);
                    return;
                }
                Err(TrySendError::Full(_)) => {
                    NetCounters::bump(&self.counters.dropped_queue_full);
                    peer.dropped += 1;
                    // The first drop, then every 1000th: a peer that stopped
                    // reading must not flood the log.
                    if peer.dropped % 1000 == 1 {
                        tracing::warn!(
                            peer = %to,
                            "outgoing queue full ({} frames): dropped {} ({} dropped on this connection)",
                            self.cfg.queue_len,
                            msg.kind(),
                            peer.dropped
                        );
                    }
                    return;
                }
                Err(TrySendError::Closed(frame)) => frame,
            },
        };
        // No connection, or its writer ended: open a new one.
        let Some(peer) = self.open(to) else {
            return;
        };
        if peer.queue.try_send(frame).is_ok() {
            NetCounters::bump(&self.counters.messages_out);
            NetCounters::add(&self.counters.bytes_out, len);
        }
        self.peers.insert(to, peer);
    }

    /// Frames an outgoing connection's queue holds at most.
    pub fn queue_capacity(&self) -> usize {
        self.cfg.queue_len
    }

    /// Frames waiting in each outgoing connection's queue (for `.stats`).
    pub fn queue_depths(&self) -> Vec<(SocketAddr, usize)> {
        let mut depths: Vec<(SocketAddr, usize)> = self
            .peers
            .iter()
            .map(|(a, p)| (*a, p.queue.len()))
            .collect();
        depths.sort();
        depths
    }

    /// Forgets the connection to `addr` if it is still `generation`, so the
    /// next send reconnects.
    pub fn forget(&mut self, addr: SocketAddr, generation: u64) {
        if self
            .peers
            .get(&addr)
            .is_some_and(|p| p.generation == generation)
        {
            self.peers.remove(&addr);
        }
    }

    /// Stops taking messages and waits (up to `limit`) until every frame
    /// already queued has been written: what a graceful leave needs.
    pub async fn flush_and_close(mut self, limit: Duration) {
        let writers: Vec<Task<()>> = self
            .peers
            .drain()
            .map(|(_, p)| {
                p.queue.close();
                p.writer
            })
            .collect();
        let all = async {
            for w in writers {
                w.await;
            }
        };
        let give_up = async {
            Timer::after(limit).await;
        };
        smol::future::or(all, give_up).await;
    }

    fn open(&mut self, to: SocketAddr) -> Option<Peer> {
        let executor = self.executor.upgrade()?;
        self.next_generation += 1;
        let generation = self.next_generation;
        let (queue, frames) = channel::bounded(self.cfg.queue_len);
        let (me, cfg, inputs) = (self.me, self.cfg.clone(), self.inputs.clone());
        let idle = IdleSocket::default();
        let writer_idle = idle.clone();
        let writer = executor.spawn(async move {
            let result = write_to_peer(me, to, &cfg, frames, &writer_idle).await;
            writer_idle.borrow_mut().take();
            if let Err(e) = result {
                let reason = e.to_string();
                let _ = inputs
                    .send(NetInput::PeerFailed {
                        addr: to,
                        generation,
                        reason,
                    })
                    .await;
            }
        });
        Some(Peer {
            queue,
            generation,
            writer,
            dropped: 0,
            idle,
        })
    }
}

/// Connects, says hello, then writes queued frames until the queue closes
/// (a clean end) or the connection fails.
async fn write_to_peer(
    me: NodeRef,
    to: SocketAddr,
    cfg: &TcpConfig,
    frames: Receiver<Vec<u8>>,
    idle: &IdleSocket,
) -> Result<(), ConnError> {
    let limit = cfg.connect_timeout;
    let connect = async { TcpStream::connect(to).await.map_err(ConnError::Connect) };
    let timeout = async {
        Timer::after(limit).await;
        Err(ConnError::ConnectTimeout(limit))
    };
    let stream = smol::future::or(connect, timeout).await?;
    let _ = stream.set_nodelay(true);
    let hello = Message::Hello {
        version: PROTOCOL_VERSION,
        node: me,
    };
    let mut pending = encode_frame(&hello, cfg.max_frame).expect("a hello fits any frame");
    // The peer never writes on this connection: a read that returns means
    // it closed (or crashed), which we learn at once instead of at the next
    // write.
    let mut watch = stream.clone();
    let closed = async {
        let mut byte = [0u8; 1];
        let _ = watch.read(&mut byte).await;
        Err(ConnError::Closed)
    };
    let socket: Arc<Async<std::net::TcpStream>> = stream.clone().into();
    let mut stream = stream;
    let write_limit = cfg.write_timeout;
    let write_all = async {
        loop {
            // Coalesce what is queued into one write.
            while pending.len() < 64 * 1024 {
                match frames.try_recv() {
                    Ok(f) => pending.extend_from_slice(&f),
                    Err(_) => break,
                }
            }
            if !pending.is_empty() {
                let mut write = std::pin::pin!(async {
                    stream.write_all(&pending).await.map_err(ConnError::Write)
                });
                // Arm the write timer only if the socket buffer is full
                // (arming one wakes the reactor: not on every frame).
                match smol::future::poll_once(write.as_mut()).await {
                    Some(done) => done?,
                    None => {
                        let stuck = async {
                            Timer::after(write_limit).await;
                            Err(ConnError::WriteTimeout(write_limit))
                        };
                        smol::future::or(write, stuck).await?
                    }
                }
                pending.clear();
            }
            if frames.is_empty() {
                *idle.borrow_mut() = Some(socket.clone());
            }
            let next = frames.recv().await;
            idle.borrow_mut().take();
            match next {
                Ok(f) => pending = f,
                Err(_) => return Ok(()), // closed by flush_and_close
            }
        }
    };
    smol::future::or(write_all, closed).await
}
