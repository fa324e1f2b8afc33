//! A running node: the TCP transport and the KBR layer, driven by one task.
//!
//! [`Node::spawn`] binds the listening socket (so a bad address fails at
//! once, and port 0 gets its real port), then starts a thread running a
//! single-threaded smol executor. On it, one task owns the [`Kbr`] — which
//! need not be `Send`: later it holds Lua states — and is its only driver,
//! with the discipline of every driver of the sans-IO core: call one
//! `handle_*`, then send every `poll_transmit`, act on every `poll_event`,
//! and sleep until the next message, control request or `poll_timeout`.
//! Beside it run the accept loop, one reader task per incoming connection
//! and one writer task per outgoing connection ([`crate::net::tcp`]).
//!
//! Other threads reach the node through its [`NodeHandle`] (`Send + Sync`),
//! whose requests travel over a channel to the core task.

mod handle;
mod load;
mod queues;
mod shared;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use async_net::TcpListener;
use smol::channel::{self, Receiver};
use smol::{LocalExecutor, Timer};

pub use handle::{NodeError, NodeHandle, NodeStats};
pub use load::{Installed, OwnKey, PeerletFile};
pub use queues::QueueDepths;
pub use shared::NodeState;
use shared::{NodeRequest, Shared};

use crate::chord::Config;
use crate::id::Id;
use crate::kbr::core::{CoreKind, RoutingCore};
use crate::kbr::trace::{Tracer, TRACE_APP};
use crate::kbr::{Kbr, KbrEvent};
use crate::net::book::SharedBook;
use crate::net::incoming::{accept_loop, Incoming};
use crate::net::tcp::{NetCounters, NetInput, TcpConfig, Transport};
use crate::net::NodeKey;
use crate::package::trust::TrustPolicy;
use crate::peerlet::names::NamesConfig;
use crate::peerlet::{Manager, ManagerApp, ManagerConfig};
use crate::routing::{Found, RouteError};
use crate::sandbox::Limits;
use crate::time::Time;
use crate::wire::{Message, NodeRef};

/// Everything a node needs to start.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Where to listen; port 0 picks a free port (see [`NodeHandle::addr`]).
    pub listen: SocketAddr,
    /// The address other nodes reach this one at, if not `listen` (behind
    /// NAT, in a container, or listening on all addresses); port 0 there
    /// means the port the listener got.
    pub advertise: Option<SocketAddr>,
    /// A node of the ring to join; `None` starts a new ring.
    pub join: Option<SocketAddr>,
    /// The node's key pair; by default the one kept in `data_dir` (made on
    /// first start), or a fresh one without `data_dir`.
    pub key: Option<NodeKey>,
    /// A ring id chosen by hand (`--id`), instead of the one the key gives;
    /// needs `tcp.link.lab` here and at every peer.
    pub id: Option<Id>,
    /// Which routing core the node runs (`--core`), and the Chord core's
    /// periods and timeouts (a core reads the ones it has).
    pub core: CoreKind,
    pub chord: Config,
    pub tcp: TcpConfig,
    /// The node's own directory: peerlet stores live in `DATA/store/`.
    /// `None` keeps stores in memory.
    pub data_dir: Option<PathBuf>,
    /// What each peerlet may use.
    pub limits: Limits,
    /// Public keys (minisign `.pub` files) of the publishers whose signed
    /// peerlets this node runs, on top of `DATA/trust.conf`.
    pub trust_files: Vec<PathBuf>,
    /// The fraction of the node's thread all peerlets together may take.
    pub peerlets_share: f64,
    /// Bytes of keys and values each peerlet's store may hold.
    pub store_quota: usize,
    /// How peerlet names are resolved and new versions followed.
    pub names: NamesConfig,
}

impl NodeConfig {
    /// Defaults for a node listening at `listen` that starts a new ring.
    pub fn new(listen: SocketAddr) -> NodeConfig {
        NodeConfig {
            listen,
            advertise: None,
            join: None,
            key: None,
            id: None,
            core: CoreKind::default(),
            chord: Config::default(),
            tcp: TcpConfig::default(),
            data_dir: None,
            limits: Limits::default(),
            trust_files: Vec::new(),
            peerlets_share: ManagerConfig::default().peerlets_share,
            store_quota: ManagerConfig::default().store_quota,
            names: NamesConfig::default(),
        }
    }
}

/// The core task's state: the KBR layer and the transport it drives.
pub struct Node {
    kbr: Kbr,
    peerlets: ManagerApp,
    tracer: Tracer,
    transport: Transport,
    epoch: Instant,
    lookups: HashMap<u64, SyncSender<Result<Found, RouteError>>>,
    /// Bytes of received messages not yet taken (see `TcpConfig::max_in_flight`).
    in_flight: Rc<std::cell::Cell<usize>>,
    shared: Arc<Shared>,
    leave_limit: Duration,
}

/// Requests and messages served between two timeouts that are due at
/// once, so the node's own work goes on while peerlets have work due.
const SERVED_BETWEEN_TIMEOUTS: usize = 64;

/// How the core task ends.
enum Stop {
    /// Tell the neighbours, then stop.
    Leave,
    /// Stop at once.
    Kill,
}

// Short-lived, one at a time: no boxing (see `NetInput`).
#[allow(clippy::large_enum_variant)]
enum Wake {
    Request(Option<NodeRequest>),
    Net(NetInput),
    Timer,
}

impl Node {
    /// Starts a node on its own thread. Returns once the node listens; it
    /// then joins (or creates) the ring in the background: see
    /// [`NodeHandle::wait_joined`].
    ///
    /// # Examples
    /// ```no_run
    /// use peerlet::node::{Node, NodeConfig};
    /// let first = Node::spawn(NodeConfig::new("127.0.0.1:0".parse().unwrap())).unwrap();
    /// let mut cfg = NodeConfig::new("127.0.0.1:0".parse().unwrap());
    /// cfg.join = Some(first.addr());
    /// let second = Node::spawn(cfg).unwrap();
    /// second.wait_joined(std::time::Duration::from_secs(5)).unwrap();
    /// let found = second.lookup(peerlet::id::Id::key("hello")).unwrap();
    /// println!("root {:?} after {} hops", found.root, found.hops);
    /// second.leave();
    /// ```
    pub fn spawn(mut config: NodeConfig) -> io::Result<NodeHandle> {
        let key = match (config.key.take(), &config.data_dir) {
            (Some(key), _) => key,
            (None, Some(dir)) => NodeKey::load_or_create(dir).map_err(io::Error::other)?,
            (None, None) => NodeKey::generate().map_err(io::Error::other)?,
        };
        let id = match config.id {
            Some(chosen) if chosen != key.id() && !config.tcp.link.lab => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "id {chosen} is not the one this node's key gives ({}): a chosen id needs the lab option (--lab), here and at its peers",
                        key.id()
                    ),
                ))
            }
            Some(chosen) => chosen,
            None => key.id(),
        };
        config.key = Some(key);
        let listener = std::net::TcpListener::bind(config.listen)?;
        let local = listener.local_addr()?;
        let addr = match config.advertise {
            // Port 0 there too: the port the listener got.
            Some(a) if a.port() == 0 => SocketAddr::new(a.ip(), local.port()),
            Some(a) => a,
            None => local,
        };
        let me = NodeRef { id, addr };
        let (requests, requests_rx) = channel::unbounded();
        let shared = Arc::new(Shared {
            state: Mutex::new(NodeState::Joining),
            busy_us: std::sync::atomic::AtomicU64::new(0),
            changed: Condvar::new(),
            counters: Arc::new(NetCounters::default()),
        });
        let lookup_limit = config.chord.lookup_timeout + Duration::from_secs(2);
        let for_thread = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("peerlet-node-{}", addr.port()))
            .spawn(move || run_thread(me, config, listener, requests_rx, for_thread))?;
        Ok(NodeHandle::new(me, requests, shared, thread, lookup_limit))
    }

    fn now(&self) -> Time {
        Time(self.epoch.elapsed().as_micros() as u64)
    }

    async fn run(
        mut self,
        requests: Receiver<NodeRequest>,
        net: Receiver<NetInput>,
        join: Option<SocketAddr>,
    ) {
        let now = self.now();
        match join {
            None => {
                self.kbr.create(now);
                self.shared.set_state(NodeState::Joined);
                tracing::info!("{:?}: started a new ring", self.kbr.me());
            }
            Some(bootstrap) => self.kbr.join(now, bootstrap),
        }
        self.drain();
        // One timer for the whole loop, moved only when the core's deadline
        // moves: arming a timer wakes the reactor, so not on every message.
        let mut timer = Timer::never();
        let mut armed: Option<Time> = None;
        loop {
            let deadline = self.kbr.poll_timeout();
            let now = self.now();
            if deadline.is_some_and(|d| d <= now) {
                // Checked first so a busy network cannot starve the timers.
                let busy = Instant::now();
                self.kbr.handle_timeout(now);
                self.drain();
                self.shared.add_busy(busy.elapsed());
                // However much work is due (peerlets with timers and held
                // work), the node's own comes first: let the transport's
                // tasks run, then serve what arrived before the next timeout.
                smol::future::yield_now().await;
                for _ in 0..SERVED_BETWEEN_TIMEOUTS {
                    // One at a time: a message taken from `net` beside a
                    // request would be lost.
                    let wake = if let Ok(r) = requests.try_recv() {
                        Wake::Request(Some(r))
                    } else if let Ok(input) = net.try_recv() {
                        Wake::Net(input)
                    } else {
                        break;
                    };
                    if let Some(stop) = self.on_wake(wake, &requests, &net) {
                        return self.stop(stop).await;
                    }
                }
                continue;
            }
            if deadline != armed {
                armed = deadline;
                match deadline {
                    Some(d) => timer.set_at(self.epoch + Duration::from_micros(d.0)),
                    None => timer = Timer::never(),
                }
            }
            let wake = smol::future::or(
                async { Wake::Request(requests.recv().await.ok()) },
                smol::future::or(
                    async {
                        // The transport holds a sender, so this never closes.
                        net.recv().await.map_or(Wake::Timer, Wake::Net)
                    },
                    async {
                        (&mut timer).await;
                        Wake::Timer
                    },
                ),
            )
            .await;
            if let Some(stop) = self.on_wake(wake, &requests, &net) {
                return self.stop(stop).await;
            }
        }
    }

    /// Acts on one thing that woke the core task; `Some` when the node is
    /// to stop.
    fn on_wake(
        &mut self,
        wake: Wake,
        requests: &Receiver<NodeRequest>,
        net: &Receiver<NetInput>,
    ) -> Option<Stop> {
        let busy = Instant::now();
        let now = self.now();
        match wake {
            Wake::Request(Some(NodeRequest::Call(f))) => {
                let reply = f(&mut self.kbr, now);
                self.drain();
                reply();
            }
            Wake::Request(Some(NodeRequest::Peerlets(f))) => {
                let manager = self.peerlets.clone();
                let reply = f(&mut manager.0.borrow_mut(), &mut self.kbr.api(now));
                self.drain();
                reply();
            }
            Wake::Request(Some(NodeRequest::Lookup { key, reply })) => {
                let req = self.kbr.lookup(now, key);
                self.lookups.insert(req, reply);
            }
            Wake::Request(Some(NodeRequest::Trace { key, done })) => {
                let timeout = self.kbr.lookup_timeout();
                self.tracer
                    .start(&mut self.kbr.api(now), key, timeout, done);
            }
            Wake::Request(Some(NodeRequest::Queues(reply))) => {
                let depths = queues::depths(
                    &self.transport,
                    &self.kbr,
                    &self.peerlets.0.borrow(),
                    requests.len(),
                    net.len(),
                );
                let _ = reply.try_send(depths);
            }
            Wake::Request(Some(NodeRequest::Leave)) => return Some(Stop::Leave),
            Wake::Request(Some(NodeRequest::Kill) | None) => return Some(Stop::Kill),
            Wake::Net(NetInput::Message { from, msg, bytes }) => {
                self.in_flight
                    .set(self.in_flight.get().saturating_sub(bytes));
                NetCounters::bump(&self.shared.counters.messages_in);
                self.kbr.handle_message(now, from, msg);
            }
            Wake::Net(NetInput::PeerFailed {
                addr,
                generation,
                reached,
                reason,
            }) => {
                tracing::info!("lost connection to peer {addr}: {reason}");
                NetCounters::bump(&self.shared.counters.peer_failures);
                self.transport.forget(addr, generation, reached);
                self.kbr.handle_peer_failed(now, addr);
            }
            Wake::Net(NetInput::Dial { addr, id }) => self.transport.dial(addr, id),
            Wake::Timer => self.kbr.handle_timeout(now),
        }
        self.drain();
        self.shared.add_busy(busy.elapsed());
        None
    }

    async fn stop(self, stop: Stop) {
        match stop {
            Stop::Leave => self.leave().await,
            Stop::Kill => {}
        }
    }

    /// Sends what the core wants sent and acts on what it reports.
    fn drain(&mut self) {
        // Acks go last: the next hop of a routed message is on its
        // latency path, the ack to the previous hop is not.
        let mut acks = Vec::new();
        while let Some(t) = self.kbr.poll_transmit() {
            match t.msg {
                Message::RouteAck { .. } => acks.push(t),
                _ => self.transport.send(t.to, t.id, &t.msg),
            }
        }
        for t in acks {
            self.transport.send(t.to, t.id, &t.msg);
        }
        while let Some(ev) = self.kbr.poll_event() {
            match ev {
                KbrEvent::Joined { successor } => {
                    tracing::info!(
                        "{:?}: joined the ring, successor {successor:?}",
                        self.kbr.me()
                    );
                    self.shared.set_state(NodeState::Joined);
                }
                KbrEvent::JoinFailed { reason } => {
                    tracing::warn!("join failed: {reason}");
                    self.shared.set_state(NodeState::JoinFailed(reason));
                }
                KbrEvent::LookupDone { req, result, .. } => {
                    if let Some(reply) = self.lookups.remove(&req) {
                        let _ = reply.try_send(result);
                    }
                }
                KbrEvent::Dropped { msg, reason } => {
                    tracing::debug!("dropped message {} for {}: {reason}", msg.id, msg.key);
                }
            }
        }
    }

    /// Tells the neighbours, and waits until that is written.
    async fn leave(mut self) {
        let now = self.now();
        self.kbr.leave(now);
        self.drain();
        tracing::info!("{:?}: left the ring", self.kbr.me());
        self.transport.flush_and_close(self.leave_limit).await;
    }
}

/// The node thread: an executor with the core task, the accept loop and the
/// connection tasks. When the core task returns, dropping the executor
/// cancels every other task, which closes every socket.
fn run_thread(
    me: NodeRef,
    config: NodeConfig,
    listener: std::net::TcpListener,
    requests: Receiver<NodeRequest>,
    shared: Arc<Shared>,
) {
    let executor = Rc::new(LocalExecutor::new());
    let weak = Rc::downgrade(&executor);
    let core = async {
        let listener = match TcpListener::try_from(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("cannot listen on {}: {e}", me.addr);
                return;
            }
        };
        let tcp = Rc::new(config.tcp.clone());
        let counters = shared.counters.clone();
        let (inputs, net) = channel::bounded(1024);
        let key = config.key.clone().expect("spawn sets the key");
        let book = SharedBook::default();
        let in_flight = Rc::new(std::cell::Cell::new(0));
        let incoming = Incoming::new(
            weak.clone(),
            me,
            key.clone(),
            tcp.clone(),
            inputs.clone(),
            counters.clone(),
            book.clone(),
            in_flight.clone(),
        );
        executor
            .spawn(accept_loop(listener, Rc::new(incoming)))
            .detach();
        let leave_limit = tcp.connect_timeout + tcp.write_timeout;
        let peerlets = ManagerApp::new(Manager::new(ManagerConfig {
            limits: config.limits.clone(),
            data_dir: config.data_dir.clone(),
            peerlets_share: config.peerlets_share,
            store_quota: config.store_quota,
            names: config.names.clone(),
            ..ManagerConfig::default()
        }));
        match TrustPolicy::load(config.data_dir.as_deref(), &config.trust_files) {
            Ok(policy) => peerlets.0.borrow_mut().set_trust(policy),
            Err(e) => tracing::error!("trust policy: {e}; this node runs no signed peerlets"),
        }
        let mut secret = [0u8; 32];
        if let Err(e) = getrandom::fill(&mut secret) {
            tracing::error!("no randomness from the operating system: {e}");
            return;
        }
        let mut kbr = Kbr::new(RoutingCore::new(config.core, me, &config.chord, secret));
        kbr.set_default_app(Box::new(peerlets.clone()));
        let tracer = Tracer::new();
        kbr.register(TRACE_APP, Box::new(tracer.clone()));
        let node = Node {
            kbr,
            peerlets,
            tracer,
            transport: Transport::new(me, key, tcp, weak, inputs, counters, book),
            epoch: Instant::now(),
            lookups: HashMap::new(),
            in_flight,
            shared: shared.clone(),
            leave_limit,
        };
        node.run(requests, net, config.join).await;
    };
    smol::block_on(executor.run(core));
    drop(executor);
    shared.set_state(NodeState::Stopped);
}
