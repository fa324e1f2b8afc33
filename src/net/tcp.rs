//! The TCP transport: one persistent outgoing connection per peer, and a
//! reader task per incoming connection, all on the node's single-threaded
//! executor.
//!
//! Every connection starts with a handshake that proves both ends' keys
//! ([`super::secure`]); then its frames travel in encrypted records.
//! Connections carry messages one way. The side that opens a connection
//! sends its hello inside the handshake and then only writes; the side that
//! accepts it checks the hello and the address it names ([`super::book`])
//! and then only reads, handing every message to the core as
//! [`NetInput::Message`] from the node the handshake proved. Replies travel
//! over the replier's own outgoing connection to the sender's listen
//! address. This keeps exactly one writer per socket and no
//! connection-ownership races between two nodes that open connections to
//! each other at once.
//!
//! The incoming side is `accept_loop` ([`super::incoming`]). The
//! outgoing side is [`Transport`], owned by the core: [`Transport::send`]
//! never blocks. Each peer has a bounded queue of frames (in frames and in
//! bytes, and all queues together in bytes) drained by a writer task; when
//! a queue is full the message is dropped and counted. A frame goes only to
//! the node the core expects at an address: the writer checks the key it
//! finds there before it writes a frame. When that writer has nothing left
//! to write, `send` seals and writes the frame to the socket itself if the
//! kernel takes it at once (see `IdleSocket`): a routed hop then costs no
//! wake-up of the writer task.
//! When a connect, the handshake, a write, or the connection itself fails
//! (the peer closed it, which on loopback is how a crashed process shows),
//! the writer task reports [`NetInput::PeerFailed`] and ends; the next send
//! to that peer opens a new connection. An address that could not be
//! reached at all is not dialled again for `unreachable_backoff`: messages
//! that name it are dropped meanwhile, so a node cannot be made to dial an
//! address again and again.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_net::TcpStream;
use smol::channel::{self, Receiver, Sender, TrySendError};
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::{Async, LocalExecutor, Task, Timer};

use super::book::SharedBook;
use super::identity::NodeKey;
use super::secure::{self, HandshakeError, LinkSettings, PeerIdentity, Sealer};
use crate::id::Id;
use crate::wire::{encode_frame, Message, NodeRef, DEFAULT_MAX_FRAME};

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
    /// Once a frame's (or a record's) first byte arrived, how long the rest
    /// may take.
    pub frame_timeout: Duration,
    /// How long the handshake of a connection (with its hello) may take.
    pub hello_timeout: Duration,
    /// Frames queued per peer before further messages are dropped.
    pub queue_len: usize,
    /// Bytes queued per peer, and to all peers together, before further
    /// messages are dropped.
    pub queue_bytes: usize,
    pub total_queue_bytes: usize,
    /// Accepted connections at once: in total, and from one IP address;
    /// and handshakes in progress from one IP address.
    pub max_incoming: usize,
    pub max_incoming_per_ip: usize,
    pub max_handshakes_per_ip: usize,
    /// An accepted connection that carries no frame for this long is closed
    /// (the opener reconnects when it next has something to send).
    pub idle_timeout: Duration,
    /// How long an address that could not be reached is not dialled again.
    pub unreachable_backoff: Duration,
    /// Bytes of received messages waiting for the core, beyond which the
    /// readers stop reading until it catches up.
    pub max_in_flight: usize,
    /// What both ends of a link must agree on (`--lab`).
    pub link: LinkSettings,
    /// An emulated wide-area network (`--latency`, `--loss`); off by default.
    pub wan: Option<super::wan::Wan>,
    /// A partition of the nodes of this process (`.partition`), shared by
    /// their transports; none by default.
    pub cut: Option<super::cut::Cut>,
}

impl Default for TcpConfig {
    fn default() -> TcpConfig {
        TcpConfig {
            max_frame: DEFAULT_MAX_FRAME,
            connect_timeout: Duration::from_secs(3),
            write_timeout: Duration::from_secs(5),
            frame_timeout: Duration::from_secs(10),
            hello_timeout: Duration::from_secs(5),
            queue_len: 1024,
            queue_bytes: 8 << 20,
            total_queue_bytes: 64 << 20,
            max_incoming: 1024,
            max_incoming_per_ip: 256,
            max_handshakes_per_ip: 32,
            idle_timeout: Duration::from_secs(120),
            unreachable_backoff: Duration::from_secs(2),
            max_in_flight: 32 << 20,
            link: LinkSettings::default(),
            wan: None,
            cut: None,
        }
    }
}

/// What the transport tells the core.
// Nearly every input is a message: boxing it would cost an allocation each.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum NetInput {
    /// A message arrived from `from` (as the handshake proved it, at the
    /// address this node checked), `bytes` long on the wire.
    Message {
        from: NodeRef,
        msg: Message,
        bytes: usize,
    },
    /// The outgoing connection `generation` to `addr` failed and has ended;
    /// `reached`: its handshake had completed.
    PeerFailed {
        addr: SocketAddr,
        generation: u64,
        reached: bool,
        reason: String,
    },
    /// An incoming connection names `addr` as its listen address: dial it,
    /// so the book learns which key is there.
    Dial { addr: SocketAddr, id: Id },
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
    /// Accepted connections open now (a gauge, not a counter).
    pub connections_in: AtomicU64,
    /// Connections refused at accept (over a connection cap).
    pub refused_connections: AtomicU64,
    /// Handshakes that failed or were refused (wrong key, chosen id, the
    /// address named belongs to another key).
    pub refused_handshakes: AtomicU64,
    /// Messages not sent: to an address that just could not be reached, or
    /// where another node than the one expected answers.
    pub dropped_unreachable: AtomicU64,
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
    #[error("{0}")]
    Handshake(#[from] HandshakeError),
    #[error("handshake did not complete within {0:?}")]
    HandshakeTimeout(Duration),
    #[error("the node listening there is {found}, not the expected {expected}")]
    WrongNode { found: String, expected: String },
    #[error("write failed: {0}")]
    Write(std::io::Error),
    #[error("write blocked for {0:?}")]
    WriteTimeout(Duration),
    #[error("peer closed the connection")]
    Closed,
    /// The acceptor closed the connection for idleness and said so: not a
    /// failure of the peer.
    #[error("closed by the peer after {0:?} idle")]
    Idle(Duration),
}

/// What a peer's queue holds: frames to seal, or the sealed rest of one
/// that `send` began to write itself.
enum Out {
    Frame(Vec<u8>),
    Sealed(Vec<u8>),
}

impl Out {
    fn len(&self) -> usize {
        match self {
            Out::Frame(b) | Out::Sealed(b) => b.len(),
        }
    }
}

/// What `send` and a peer's writer task share about its connection.
#[derive(Default)]
struct Link {
    /// Set by the writer once the handshake completed.
    sealer: RefCell<Option<Sealer>>,
    /// The node this connection is for: the one expected, then the one found.
    id: Cell<Option<Id>>,
    /// Bytes in this peer's queue.
    queued: Cell<usize>,
}

struct Peer {
    queue: Sender<Out>,
    generation: u64,
    writer: Task<()>,
    /// Messages dropped on this connection's full queue so far.
    dropped: u64,
    idle: IdleSocket,
    link: Rc<Link>,
}

/// The socket of a connection whose writer task has written everything and
/// waits for the next frame: while it is here, [`Transport::send`] may write
/// a frame itself, without waking the writer task. The writer puts it here
/// before it waits, and takes it back when it wakes; `send` takes it while
/// it writes, and leaves it out if it could not write the whole frame (the
/// rest then goes through the queue, first). So at any time exactly one side
/// may write (and seal: records carry a counter), and bytes never
/// interleave. All on the node's one thread.
type IdleSocket = Rc<RefCell<Option<Arc<Async<std::net::TcpStream>>>>>;

/// One non-blocking write of `bytes` to an idle socket: how many bytes the
/// kernel took (0 if it would block). An error leaves the bytes to the
/// writer task, which meets the same error and reports the peer failed.
fn write_now(socket: &Async<std::net::TcpStream>, bytes: &[u8]) -> Option<usize> {
    let mut s: &std::net::TcpStream = socket.get_ref();
    match s.write(bytes) {
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

/// What the outgoing side needs to open connections: shared by the
/// transport and its writer tasks.
struct Opener {
    me: NodeRef,
    key: NodeKey,
    cfg: Rc<TcpConfig>,
    inputs: Sender<NetInput>,
    book: SharedBook,
    /// Bytes in all peers' queues.
    queued: Cell<usize>,
}

/// The outgoing half of the transport, owned by the core. See module docs.
pub struct Transport {
    opener: Rc<Opener>,
    executor: Weak<LocalExecutor<'static>>,
    peers: HashMap<SocketAddr, Peer>,
    counters: Arc<NetCounters>,
    next_generation: u64,
    /// Addresses that could not be reached, and since when.
    unreachable: HashMap<SocketAddr, Instant>,
}

impl Transport {
    pub fn new(
        me: NodeRef,
        key: NodeKey,
        cfg: Rc<TcpConfig>,
        executor: Weak<LocalExecutor<'static>>,
        inputs: Sender<NetInput>,
        counters: Arc<NetCounters>,
        book: SharedBook,
    ) -> Transport {
        Transport {
            opener: Rc::new(Opener {
                me,
                key,
                cfg,
                inputs,
                book,
                queued: Cell::new(0),
            }),
            executor,
            peers: HashMap::new(),
            counters,
            next_generation: 0,
            unreachable: HashMap::new(),
        }
    }

    /// Queues `msg` for the peer listening at `to`, which must be the node
    /// `id` if given, connecting if needed. Never blocks; a message that
    /// does not fit the peer's queue is dropped (counted in
    /// `dropped_queue_full`, logged).
    pub fn send(&mut self, to: SocketAddr, id: Option<Id>, msg: &Message) {
        if !self.may_send(to, id) {
            NetCounters::bump(&self.counters.dropped_unreachable);
            return;
        }
        let cfg = self.opener.cfg.clone();
        let frame = match encode_frame(msg, cfg.max_frame) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(peer = %to, "not sending {}: {e}", msg.kind());
                return;
            }
        };
        let len = frame.len() as u64;
        let mut out = Out::Frame(frame);
        if let Some(peer) = self.peers.get_mut(&to) {
            // Written here when the writer is idle: saves waking its task
            // (a hop's next frame is on the latency path).
            let idle = peer.idle.borrow_mut().take();
            if let (Some(socket), Out::Frame(frame)) = (idle, &out) {
                let sealed = match peer.link.sealer.borrow_mut().as_mut() {
                    Some(sealer) => sealer.sealed(frame),
                    None => unreachable!("a socket is idle only after its handshake"),
                };
                match write_now(&socket, &sealed) {
                    Some(n) if n == sealed.len() => {
                        *peer.idle.borrow_mut() = Some(socket);
                        NetCounters::bump(&self.counters.messages_out);
                        NetCounters::add(&self.counters.bytes_out, len);
                        return;
                    }
                    // The rest goes first through the queue; the socket
                    // stays with the writer until it has written it.
                    Some(n) => out = Out::Sealed(sealed[n..].to_vec()),
                    // The writer meets the error and reports it.
                    None => out = Out::Sealed(sealed),
                }
            }
        }
        let out = match self.peers.get_mut(&to) {
            None => out,
            Some(peer) => match enqueue(&self.opener, peer, out) {
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
                            "outgoing queue full ({} frames, {} bytes at most): dropped {} ({} dropped on this connection)",
                            cfg.queue_len,
                            cfg.queue_bytes,
                            msg.kind(),
                            peer.dropped
                        );
                    }
                    return;
                }
                Err(TrySendError::Closed(out)) => out,
            },
        };
        // No connection, or its writer ended: open a new one. (Bytes sealed
        // for the old one would not open on it: a frame whose write failed
        // is lost with its connection.)
        if matches!(out, Out::Sealed(_)) {
            return;
        }
        let Some(mut peer) = self.open(to, id) else {
            return;
        };
        if enqueue(&self.opener, &mut peer, out).is_ok() {
            NetCounters::bump(&self.counters.messages_out);
            NetCounters::add(&self.counters.bytes_out, len);
        }
        self.peers.insert(to, peer);
    }

    /// Opens a connection to `addr` (if there is none) without sending
    /// anything: so the book learns which key is there.
    pub fn dial(&mut self, addr: SocketAddr, id: Id) {
        let open = self.peers.get(&addr).is_some_and(|p| !p.queue.is_closed());
        if open || addr == self.opener.me.addr {
            return;
        }
        if !self.may_send(addr, None) {
            // Not reachable a moment ago: tell whoever waits at once.
            self.opener.book.borrow_mut().lost(addr, 0);
            return;
        }
        if let Some(peer) = self.open(addr, Some(id)) {
            self.peers.insert(addr, peer);
        }
    }

    /// May a frame for node `id` go to `to` now? Not to an address that
    /// could not be reached a moment ago, nor where the connection found
    /// another node than `id`.
    fn may_send(&mut self, to: SocketAddr, id: Option<Id>) -> bool {
        if let Some(cut) = &self.opener.cfg.cut {
            if cut.separates(self.opener.me.addr, to) {
                return false;
            }
        }
        if let Some(since) = self.unreachable.get(&to) {
            if since.elapsed() < self.opener.cfg.unreachable_backoff {
                return false;
            }
            self.unreachable.remove(&to);
        }
        let Some(peer) = self.peers.get(&to) else {
            return true;
        };
        match (id, peer.link.id.get()) {
            (Some(want), Some(have)) if want != have && !peer.queue.is_closed() => {
                tracing::debug!(peer = %to, "not sending: {to} is {}, not {}", have.short(8), want.short(8));
                // The core's entry for `to` is stale or a lie: it learns so
                // as if the peer had failed (this connection stays).
                let _ = self.opener.inputs.try_send(NetInput::PeerFailed {
                    addr: to,
                    generation: 0,
                    reached: true,
                    reason: format!("{to} is node {}, not {}", have.short(8), want.short(8)),
                });
                false
            }
            _ => true,
        }
    }

    /// Frames an outgoing connection's queue holds at most.
    pub fn queue_capacity(&self) -> usize {
        self.opener.cfg.queue_len
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
    /// next send reconnects; one that was never `reached` also makes the
    /// address unreachable for a while.
    pub fn forget(&mut self, addr: SocketAddr, generation: u64, reached: bool) {
        if self
            .peers
            .get(&addr)
            .is_some_and(|p| p.generation == generation)
        {
            self.peers.remove(&addr);
            if !reached {
                if self.unreachable.len() >= 4096 {
                    let backoff = self.opener.cfg.unreachable_backoff;
                    self.unreachable.retain(|_, t| t.elapsed() < backoff);
                }
                self.unreachable.insert(addr, Instant::now());
            }
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

    fn open(&mut self, to: SocketAddr, id: Option<Id>) -> Option<Peer> {
        let executor = self.executor.upgrade()?;
        self.next_generation += 1;
        let generation = self.next_generation;
        let (queue, frames) = channel::bounded(self.opener.cfg.queue_len);
        let opener = self.opener.clone();
        let idle = IdleSocket::default();
        let link = Rc::new(Link::default());
        link.id.set(id);
        let (writer_idle, writer_link) = (idle.clone(), link.clone());
        let writer = executor.spawn(async move {
            let mut reached = false;
            let result = write_to_peer(
                &opener,
                to,
                generation,
                &frames,
                &writer_idle,
                &writer_link,
                &mut reached,
            )
            .await;
            writer_idle.borrow_mut().take();
            // Frames never written leave the byte counts.
            frames.close();
            while let Ok(out) = frames.try_recv() {
                dequeued(&opener, &writer_link, out.len());
            }
            opener.book.borrow_mut().lost(to, generation);
            match result {
                Ok(()) | Err(ConnError::Idle(_)) => {}
                Err(e) => {
                    let _ = opener
                        .inputs
                        .send(NetInput::PeerFailed {
                            addr: to,
                            generation,
                            reached,
                            reason: e.to_string(),
                        })
                        .await;
                }
            }
        });
        Some(Peer {
            queue,
            generation,
            writer,
            dropped: 0,
            idle,
            link,
        })
    }
}

/// Puts `out` in `peer`'s queue if the frame and byte limits allow.
fn enqueue(opener: &Opener, peer: &mut Peer, out: Out) -> Result<(), TrySendError<Out>> {
    let cfg = &opener.cfg;
    let len = out.len();
    if peer.queue.is_closed() {
        return Err(TrySendError::Closed(out));
    }
    // The sealed rest of a frame half written must follow it, or the
    // stream breaks: only new frames meet the byte limits.
    let over = peer.link.queued.get() + len > cfg.queue_bytes
        || opener.queued.get() + len > cfg.total_queue_bytes;
    if over && matches!(out, Out::Frame(_)) {
        return Err(TrySendError::Full(out));
    }
    peer.queue.try_send(out)?;
    peer.link.queued.set(peer.link.queued.get() + len);
    opener.queued.set(opener.queued.get() + len);
    Ok(())
}

fn dequeued(opener: &Opener, link: &Link, len: usize) {
    link.queued.set(link.queued.get().saturating_sub(len));
    opener.queued.set(opener.queued.get().saturating_sub(len));
}

/// Takes `out` off the queue into the bytes to write next, sealing a frame.
fn take(opener: &Opener, link: &Link, out: Out, pending: &mut Vec<u8>) {
    dequeued(opener, link, out.len());
    match out {
        Out::Sealed(bytes) => pending.extend_from_slice(&bytes),
        Out::Frame(frame) => link
            .sealer
            .borrow_mut()
            .as_mut()
            .expect("the sealer is set before the first write")
            .seal(&frame, pending),
    }
}

/// Connects, runs the handshake, checks the node there is the one
/// expected, then writes queued frames until the queue closes (a clean
/// end) or the connection fails.
async fn write_to_peer(
    opener: &Opener,
    to: SocketAddr,
    generation: u64,
    frames: &Receiver<Out>,
    idle: &IdleSocket,
    link: &Link,
    reached: &mut bool,
) -> Result<(), ConnError> {
    let cfg = &opener.cfg;
    let limit = cfg.connect_timeout;
    let connect = async { TcpStream::connect(to).await.map_err(ConnError::Connect) };
    let timeout = async {
        Timer::after(limit).await;
        Err(ConnError::ConnectTimeout(limit))
    };
    let mut stream = smol::future::or(connect, timeout).await?;
    let _ = stream.set_nodelay(true);
    let limit = cfg.hello_timeout;
    let handshake = async {
        secure::initiate(&mut stream, &opener.key, opener.me, &cfg.link)
            .await
            .map_err(ConnError::from)
    };
    let timeout = async {
        Timer::after(limit).await;
        Err(ConnError::HandshakeTimeout(limit))
    };
    let (sealer, peer) = smol::future::or(handshake, timeout).await?;
    if let Some(expected) = link.id.get() {
        if peer.node.id != expected {
            return Err(ConnError::WrongNode {
                found: peer.node.id.short(8),
                expected: expected.short(8),
            });
        }
    }
    *reached = true;
    link.id.set(Some(peer.node.id));
    *link.sealer.borrow_mut() = Some(sealer);
    let found = PeerIdentity {
        key: peer.key,
        node: NodeRef {
            id: peer.node.id,
            addr: to,
        },
    };
    opener.book.borrow_mut().found(to, found, generation);
    // The peer never writes on this connection, but for one byte when it
    // closes it for idleness: a read that returns means it closed (or
    // crashed), which we learn at once instead of at the next write.
    let mut watch = stream.clone();
    let idle_limit = cfg.idle_timeout;
    let closed = async {
        let mut byte = [0u8; 1];
        match watch.read(&mut byte).await {
            Ok(1) => Err(ConnError::Idle(idle_limit)),
            _ => Err(ConnError::Closed),
        }
    };
    let socket: Arc<Async<std::net::TcpStream>> = stream.clone().into();
    let write_limit = cfg.write_timeout;
    let mut pending: Vec<u8> = Vec::new();
    let write_all = async {
        loop {
            // Coalesce what is queued into one write.
            while pending.len() < 64 * 1024 {
                match frames.try_recv() {
                    Ok(out) => take(opener, link, out, &mut pending),
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
                if pending.capacity() > 256 * 1024 {
                    pending = Vec::new();
                }
            }
            if frames.is_empty() {
                *idle.borrow_mut() = Some(socket.clone());
            }
            let next = frames.recv().await;
            idle.borrow_mut().take();
            match next {
                Ok(out) => take(opener, link, out, &mut pending),
                Err(_) => return Ok(()), // closed by flush_and_close
            }
        }
    };
    smol::future::or(write_all, closed).await
}
