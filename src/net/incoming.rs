//! The incoming side of the TCP transport: accepting connections and
//! reading their frames (see [`super::tcp`] for the whole design).
//!
//! A connection is accepted only under the caps (in total, from one IP
//! address, and handshakes in progress from one IP address). Its reader
//! task answers the handshake within the hello timeout, which proves the
//! opener's key and carries its hello; then checks the address the hello
//! names: this node dials it, and hears the opener only if the same key
//! answers there ([`super::book`]). After that the connection may idle up
//! to the idle timeout between frames (then this node says so with one byte
//! and closes it), but a frame once begun must complete within the frame
//! timeout. Bad input of any kind (a failed handshake, oversize,
//! undecodable, truncated, a record that fails authentication, too slow)
//! closes that connection with a warning naming the peer and the reason,
//! rate-limited ([`super::warn`]); the node and its other connections go on.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::Duration;

use async_net::{TcpListener, TcpStream};
use smol::channel::Sender;
use smol::io::AsyncWriteExt;
use smol::{LocalExecutor, Timer};

use super::book::SharedBook;
use super::connection::{FrameReader, ReadError};
use super::identity::NodeKey;
use super::secure::{self, HandshakeError, PeerIdentity};
use super::tcp::{NetCounters, NetInput, TcpConfig};
use super::wan::Line;
use super::warn::WarnGate;
use crate::wire::{FrameError, NodeRef};

/// What the accept loop and its reader tasks share.
pub struct Incoming {
    pub executor: Weak<LocalExecutor<'static>>,
    pub me: NodeRef,
    pub key: NodeKey,
    pub cfg: Rc<TcpConfig>,
    pub inputs: Sender<NetInput>,
    pub counters: Arc<NetCounters>,
    pub book: SharedBook,
    /// Bytes of messages handed to the core and not yet taken by it.
    pub in_flight: Rc<Cell<usize>>,
    conns: RefCell<Conns>,
    refused: WarnGate,
    closed: WarnGate,
}

/// Connections accepted now.
#[derive(Default)]
struct Conns {
    total: usize,
    /// Per IP address: connections, and those still in their handshake.
    per_ip: HashMap<IpAddr, (usize, usize)>,
}

impl Incoming {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        executor: Weak<LocalExecutor<'static>>,
        me: NodeRef,
        key: NodeKey,
        cfg: Rc<TcpConfig>,
        inputs: Sender<NetInput>,
        counters: Arc<NetCounters>,
        book: SharedBook,
        in_flight: Rc<Cell<usize>>,
    ) -> Incoming {
        Incoming {
            executor,
            me,
            key,
            cfg,
            inputs,
            counters,
            book,
            in_flight,
            conns: RefCell::default(),
            refused: WarnGate::new("connections refused"),
            closed: WarnGate::new("connections closed for bad input"),
        }
    }

    /// Takes a place for a connection from `ip`, or says which cap is full.
    fn admit(self: &Rc<Self>, ip: IpAddr) -> Result<Slot, &'static str> {
        let mut conns = self.conns.borrow_mut();
        let cfg = &self.cfg;
        let (n, handshakes) = conns.per_ip.get(&ip).copied().unwrap_or((0, 0));
        if conns.total >= cfg.max_incoming {
            return Err("the node has as many connections as it takes");
        }
        if n >= cfg.max_incoming_per_ip {
            return Err("too many connections from this address");
        }
        if handshakes >= cfg.max_handshakes_per_ip {
            return Err("too many handshakes in progress from this address");
        }
        conns.total += 1;
        conns.per_ip.insert(ip, (n + 1, handshakes + 1));
        NetCounters::bump(&self.counters.connections_in);
        Ok(Slot {
            incoming: self.clone(),
            ip,
            in_handshake: true,
        })
    }
}

/// A connection's place under the caps; given back when it drops.
struct Slot {
    incoming: Rc<Incoming>,
    ip: IpAddr,
    in_handshake: bool,
}

impl Slot {
    fn handshake_done(&mut self) {
        if std::mem::replace(&mut self.in_handshake, false) {
            let mut conns = self.incoming.conns.borrow_mut();
            if let Some(e) = conns.per_ip.get_mut(&self.ip) {
                e.1 -= 1;
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.handshake_done();
        let mut conns = self.incoming.conns.borrow_mut();
        conns.total -= 1;
        let open = &self.incoming.counters.connections_in;
        open.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(e) = conns.per_ip.get_mut(&self.ip) {
            e.0 -= 1;
            if e.0 == 0 {
                conns.per_ip.remove(&self.ip);
            }
        }
    }
}

/// Accepts connections for as long as the node runs, one reader task each.
pub async fn accept_loop(listener: TcpListener, incoming: Rc<Incoming>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                Timer::after(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(executor) = incoming.executor.upgrade() else {
            return;
        };
        let slot = match incoming.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(why) => {
                NetCounters::bump(&incoming.counters.refused_connections);
                incoming
                    .refused
                    .warn(|| format!("refusing connection from {peer}: {why}"));
                continue; // dropping the stream closes it
            }
        };
        executor
            .spawn(read_from_peer(stream, peer, incoming.clone(), slot))
            .detach();
    }
}

/// Why an incoming connection was closed before its first frame.
#[derive(Debug, thiserror::Error)]
enum Refused {
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    #[error("no handshake within {0:?}")]
    Slow(Duration),
    #[error("it names {claimed} as its address, but {why}")]
    Address { claimed: SocketAddr, why: String },
}

/// Answers the handshake and checks the address it names, then hands every
/// message to the core. Any bad input closes this connection.
async fn read_from_peer(
    stream: TcpStream,
    peer: SocketAddr,
    incoming: Rc<Incoming>,
    mut slot: Slot,
) {
    let cfg = incoming.cfg.clone();
    let _ = stream.set_nodelay(true);
    let keep = stream.clone();
    let limit = cfg.hello_timeout;
    let handshake = async {
        let r = secure::respond_seen(
            stream,
            &incoming.key,
            incoming.me,
            &cfg.link,
            cfg.frame_timeout,
            Some(peer),
        );
        r.await.map_err(Refused::from)
    };
    let slow = async {
        Timer::after(limit).await;
        Err(Refused::Slow(limit))
    };
    let accepted = match smol::future::or(handshake, slow).await {
        Ok((reader, who)) => check_address(&incoming, who).await.map(|()| (reader, who)),
        Err(e) => Err(e),
    };
    slot.handshake_done();
    let (reader, who) = match accepted {
        Ok(a) => a,
        Err(Refused::Handshake(HandshakeError::AddressOnly)) => {
            tracing::debug!("{peer} asked which address it comes from");
            return;
        }
        Err(e) => {
            NetCounters::bump(&incoming.counters.refused_handshakes);
            incoming
                .closed
                .warn(|| format!("closing connection from {peer}: {e}"));
            return;
        }
    };
    let from = who.node;
    tracing::debug!("connection from {peer}: {from:?}");
    let mut reader = FrameReader::new(reader, cfg.max_frame, cfg.frame_timeout);
    // An emulated wide-area network holds frames back (and drops some).
    let mut line = match (&cfg.wan, incoming.executor.upgrade()) {
        (Some(wan), Some(executor)) => Some(Line::start(
            wan,
            from.addr,
            incoming.me.addr,
            &executor,
            incoming.inputs.clone(),
        )),
        _ => None,
    };
    let mut idle = Timer::after(cfg.idle_timeout);
    let mut frames_this_period = 0u64;
    loop {
        let next = {
            let mut frame = std::pin::pin!(reader.read_frame());
            loop {
                // The idle timer is armed once a period, not once a frame.
                let timed = smol::future::or(async { Some(frame.as_mut().await) }, async {
                    (&mut idle).await;
                    None
                });
                match timed.await {
                    Some(next) => break Some(next),
                    None if frames_this_period == 0 => break None,
                    None => {
                        frames_this_period = 0;
                        idle.set_after(cfg.idle_timeout);
                    }
                }
            }
        };
        let Some(next) = next else {
            // Idle for a whole period: say so with one byte, then close.
            let mut keep = keep;
            let _ = keep.write_all(&[0]).await;
            tracing::debug!("closing idle connection from {peer} ({from:?})");
            return;
        };
        frames_this_period += 1;
        match next {
            Ok(Some(msg)) => {
                let bytes = reader.last_frame_len();
                if let Some(cut) = &cfg.cut {
                    if cut.separates(from.addr, incoming.me.addr) {
                        continue; // lost in the partition
                    }
                }
                NetCounters::add(&incoming.counters.bytes_in, bytes as u64);
                // Past the limit of bytes waiting for the core, stop reading
                // (the sender's queue fills, then its drops) until it
                // catches up.
                while incoming.in_flight.get() > cfg.max_in_flight {
                    Timer::after(Duration::from_millis(1)).await;
                }
                let input = NetInput::Message { from, msg, bytes };
                match &mut line {
                    None => {
                        incoming.in_flight.set(incoming.in_flight.get() + bytes);
                        if incoming.inputs.send(input).await.is_err() {
                            return; // the node stopped
                        }
                    }
                    Some(line) => {
                        if line.pass(input) {
                            incoming.in_flight.set(incoming.in_flight.get() + bytes);
                        }
                    }
                }
            }
            Ok(None) => {
                tracing::debug!("connection from {peer} ({from:?}) closed");
                return;
            }
            Err(ReadError::Frame(FrameError::Io(e)))
                if e.kind() != std::io::ErrorKind::InvalidData
                    && e.kind() != std::io::ErrorKind::TimedOut =>
            {
                // Not bad input: the peer went away (e.g. crashed).
                tracing::info!("connection from {peer} ({from:?}) lost: {e}");
                return;
            }
            Err(e) => {
                NetCounters::bump(&incoming.counters.bad_frames);
                incoming
                    .closed
                    .warn(|| format!("closing connection from {peer} ({from:?}): {e}"));
                return;
            }
        }
    }
}

/// Hears `who` only if this node, dialling the address its hello names,
/// finds the same key there.
async fn check_address(incoming: &Incoming, who: PeerIdentity) -> Result<(), Refused> {
    let claimed = who.node.addr;
    let refuse = |why: String| Refused::Address { claimed, why };
    if claimed == incoming.me.addr {
        return Err(refuse("that is this node's own address".into()));
    }
    let answer = incoming.book.borrow_mut().wait(claimed);
    if answer.is_empty() {
        let dial = NetInput::Dial {
            addr: claimed,
            id: who.node.id,
        };
        if incoming.inputs.send(dial).await.is_err() {
            return Err(refuse("the node is stopping".into()));
        }
    }
    let limit = incoming.cfg.connect_timeout + incoming.cfg.hello_timeout;
    let found = async { answer.recv().await.ok().flatten() };
    let late = async {
        Timer::after(limit).await;
        None
    };
    let found = smol::future::or(found, late).await;
    drop(answer);
    incoming.book.borrow_mut().prune();
    match found {
        Some(there) if there.key == who.key => Ok(()),
        Some(there) => Err(refuse(format!(
            "another key answers there (node {})",
            there.node.id.short(8)
        ))),
        None => Err(refuse("this node could not reach it to check".into())),
    }
}
