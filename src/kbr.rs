//! The common API for structured overlays (Dabek, Zhao, Druschel, Kubiatowicz,
//! Stoica: "Towards a Common API for Structured Peer-to-Peer Overlays", IPTPS
//! 2003), over the Chord core.
//!
//! [`Kbr`] is still sans-IO: it wraps [`Chord`] and adds applications, each
//! registered under its 128-bit [`AppId`] and seeing only its own messages
//! through the upcalls of [`Application`]. Drivers call `handle_*` and drain
//! `poll_transmit`, `poll_event`, `poll_timeout` exactly as for [`Chord`];
//! each `poll_*` first carries out what applications and the driver queued
//! through an [`Api`], so no driver has to remember to. Everything above
//! this layer reads routing state through [`view::RoutingView`], never the
//! core's own types.
//! Applications act on the overlay through [`Api`]: `route`, `send`,
//! `local_lookup`, `neighbor_set`, `replica_set`, `range`. Calls made from
//! inside an upcall are queued and run after it returns, so an upcall never
//! re-enters another.

pub mod core;
mod snapshot;
pub mod trace;
pub mod view;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::rc::Rc;

use self::core::RoutingCore;
use self::snapshot::ViewCache;
use self::view::RoutingView;
use crate::chord::Chord;
use crate::id::{AppId, Id};
use crate::routing::{Event, Found, Liveness, NextHop, Pending, RouteError, Transmit};
use crate::time::Time;
use crate::wire::{AppMessage, Body, Message, NodeRef, RoutedMessage};

/// An application on the overlay. Every upcall gets an [`Api`] to act with.
pub trait Application {
    /// `msg` reached the root of its key, or was sent here directly.
    fn deliver(&mut self, api: &mut Api<'_>, msg: &RoutedMessage);

    /// Called at every node that routes `msg`, the source and the root
    /// included (at the root, `next` is this node and deliver follows).
    /// May change `msg` and `next`; returning `false` stops the message here.
    fn forward(
        &mut self,
        _api: &mut Api<'_>,
        _msg: &mut RoutedMessage,
        _next: &mut NodeRef,
    ) -> bool {
        true
    }

    /// `node` joined or left this node's neighbour set.
    fn update(&mut self, _api: &mut Api<'_>, _node: NodeRef, _joined: bool) {}

    /// A message this application sent from here was given up.
    fn undeliverable(&mut self, _api: &mut Api<'_>, _msg: &RoutedMessage, _error: &RouteError) {}

    /// When this application wants `on_timeout` (its own timers); the
    /// driver's next wake-up is the earliest of these and the core's.
    fn next_deadline(&self) -> Option<Time> {
        None
    }

    /// Time has reached (or passed) what `next_deadline` announced.
    fn on_timeout(&mut self, _api: &mut Api<'_>) {}
}

/// What the driver hears about from the KBR layer.
#[derive(Clone, Debug, PartialEq)]
// The dropped message is the large variant; events are rare and short-lived.
#[allow(clippy::large_enum_variant)]
pub enum KbrEvent {
    Joined {
        successor: NodeRef,
    },
    JoinFailed {
        reason: String,
    },
    LookupDone {
        req: u64,
        key: Id,
        result: Result<Found, RouteError>,
    },
    /// A message with no application here to take it (or given up, for an
    /// application that is not registered here).
    Dropped {
        msg: RoutedMessage,
        reason: String,
    },
}

/// Counters of what this node did with application messages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KbrStats {
    pub delivered: u64,
    pub forwarded: u64,
    pub stopped: u64,
    pub dropped: u64,
}

enum Work {
    Route {
        msg: RoutedMessage,
        to_root: bool,
        from: Option<NodeRef>,
        hint: Option<NodeRef>,
        rerouted: bool,
    },
    Update {
        node: NodeRef,
        joined: bool,
    },
    Undeliverable {
        msg: RoutedMessage,
        error: RouteError,
    },
}

/// A Chord node with applications on top. See the module docs.
pub struct Kbr {
    core: RoutingCore,
    apps: BTreeMap<AppId, Box<dyn Application>>,
    default_app: Option<Box<dyn Application>>,
    work: VecDeque<Work>,
    events: VecDeque<KbrEvent>,
    stats: KbrStats,
    view: ViewCache,
    /// The time of the latest `handle_*` or [`Kbr::api`] call: what queued
    /// work runs at when a `poll_*` carries it out.
    now: Time,
}

impl Kbr {
    /// A KBR layer over `core` (a `Chord` converts into one).
    pub fn new(core: impl Into<RoutingCore>) -> Kbr {
        let core = core.into();
        Kbr {
            view: ViewCache::new(&core),
            core,
            apps: BTreeMap::new(),
            default_app: None,
            work: VecDeque::new(),
            events: VecDeque::new(),
            stats: KbrStats::default(),
            now: Time::ZERO,
        }
    }

    /// The Chord core, for the simulator and tests that look inside it
    /// (panics on a node running another core).
    pub fn chord(&self) -> &Chord {
        self.core.as_chord().expect("a node running Chord")
    }

    /// See [`Kbr::chord`]: for the simulator's converged start.
    pub fn chord_mut(&mut self) -> &mut Chord {
        self.core.as_chord_mut().expect("a node running Chord")
    }

    pub fn stats(&self) -> &KbrStats {
        &self.stats
    }

    /// Registers `app` for the messages of `id` (replacing any earlier one).
    pub fn register(&mut self, id: AppId, app: Box<dyn Application>) {
        self.apps.insert(id, app);
    }

    pub fn unregister(&mut self, id: &AppId) -> Option<Box<dyn Application>> {
        self.apps.remove(id)
    }

    /// Takes the messages of every app id with no registered application:
    /// the hook through which code is deployed on demand.
    pub fn set_default_app(&mut self, app: Box<dyn Application>) {
        self.default_app = Some(app);
    }

    /// This node.
    pub fn me(&self) -> NodeRef {
        self.core.me()
    }

    /// Starts a new ring of one.
    pub fn create(&mut self, now: Time) {
        self.now = self.now.max(now);
        self.core.create(now);
    }

    /// Joins the ring through the node at `bootstrap`; [`KbrEvent::Joined`]
    /// or [`KbrEvent::JoinFailed`] tells how it went.
    pub fn join(&mut self, now: Time, bootstrap: SocketAddr) {
        self.now = self.now.max(now);
        self.core.join(now, bootstrap);
    }

    /// Tells the neighbours this node is leaving.
    pub fn leave(&mut self, now: Time) {
        self.now = self.now.max(now);
        self.core.leave(now);
    }

    /// Looks up the root of `key`; [`KbrEvent::LookupDone`] with the
    /// returned request number answers.
    pub fn lookup(&mut self, now: Time, key: Id) -> u64 {
        self.now = self.now.max(now);
        self.core.lookup(now, key)
    }

    /// Whether this node is part of a ring.
    pub fn is_joined(&self) -> bool {
        self.core.is_joined()
    }

    /// How long a lookup waits for its answer.
    pub fn lookup_timeout(&self) -> std::time::Duration {
        self.core.lookup_timeout()
    }

    /// The shared read-only view of the routing state (see [`view`]).
    pub fn view(&mut self, now: Time) -> Rc<dyn RoutingView> {
        self.view.get(now, &self.core)
    }

    /// What this node believes of the peer at `addr`, from what it saw.
    pub fn liveness(&self, now: Time, addr: SocketAddr) -> Liveness {
        self.core.liveness(now, addr)
    }

    /// The core's requests waiting for an answer.
    pub fn pending(&self) -> Pending {
        self.core.pending()
    }

    /// The API, as an application would see it, for the driver's own use.
    /// What it queues runs at the next `handle_*` or `poll_*` call.
    pub fn api(&mut self, now: Time) -> Api<'_> {
        self.now = self.now.max(now);
        Api {
            now,
            core: &mut self.core,
            work: &mut self.work,
            view: &mut self.view,
        }
    }

    pub fn handle_message(&mut self, now: Time, from: NodeRef, msg: Message) {
        self.now = self.now.max(now);
        self.core.handle_message(now, from, msg);
        self.pump(now);
    }

    pub fn handle_timeout(&mut self, now: Time) {
        self.now = self.now.max(now);
        self.core.handle_timeout(now);
        self.for_each_app(now, |app, api| {
            if app.next_deadline().is_some_and(|d| d <= now) {
                app.on_timeout(api);
            }
        });
        self.pump(now);
    }

    /// Runs `f` on every application (the default one last).
    fn for_each_app(&mut self, now: Time, mut f: impl FnMut(&mut dyn Application, &mut Api<'_>)) {
        let mut apps = std::mem::take(&mut self.apps);
        let mut api = Api {
            now,
            core: &mut self.core,
            work: &mut self.work,
            view: &mut self.view,
        };
        for app in apps.values_mut().chain(self.default_app.as_mut()) {
            f(app.as_mut(), &mut api);
        }
        self.apps.append(&mut apps);
    }

    pub fn handle_peer_failed(&mut self, now: Time, addr: SocketAddr) {
        self.now = self.now.max(now);
        self.core.handle_peer_failed(now, addr);
        self.pump(now);
    }

    /// Carries out what was queued through [`Kbr::api`] (or by the core for
    /// the applications) since the last call, at the latest time seen.
    fn pump_pending(&mut self) {
        self.pump(self.now);
    }

    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.pump_pending();
        self.core.poll_transmit()
    }

    #[must_use]
    pub fn poll_event(&mut self) -> Option<KbrEvent> {
        self.pump_pending();
        self.events.pop_front()
    }

    /// The earliest of the core's deadline and the applications' own.
    #[must_use]
    pub fn poll_timeout(&mut self) -> Option<Time> {
        self.pump_pending();
        self.apps
            .values()
            .chain(self.default_app.as_ref())
            .filter_map(|a| a.next_deadline())
            .chain(self.core.poll_timeout())
            .min()
    }

    fn pump(&mut self, now: Time) {
        loop {
            while let Some(ev) = self.core.poll_event() {
                self.on_core_event(ev);
            }
            let Some(work) = self.work.pop_front() else {
                break;
            };
            match work {
                Work::Route {
                    msg,
                    to_root,
                    from,
                    hint,
                    rerouted,
                } => self.route_here(now, msg, to_root, from, hint, rerouted),
                Work::Update { node, joined } => {
                    self.for_each_app(now, |app, api| app.update(api, node, joined))
                }
                Work::Undeliverable { msg, error } => self.undeliverable(now, msg, error),
            }
        }
    }

    /// A message was given up: tell its application if it was sent from
    /// here, otherwise report it to the driver.
    fn undeliverable(&mut self, now: Time, msg: RoutedMessage, error: RouteError) {
        let Body::App(app_msg) = &msg.body else {
            return;
        };
        let app_id = app_msg.app;
        let from_default = !self.apps.contains_key(&app_id);
        let app = if msg.source.id == self.core.me().id {
            self.take_app(&app_id)
        } else {
            None
        };
        match app {
            Some(mut app) => {
                let mut api = Api {
                    now,
                    core: &mut self.core,
                    work: &mut self.work,
                    view: &mut self.view,
                };
                app.undeliverable(&mut api, &msg, &error);
                self.restore_app(app_id, from_default, app);
            }
            None => {
                self.stats.dropped += 1;
                let reason = error.to_string();
                self.events.push_back(KbrEvent::Dropped { msg, reason });
            }
        }
    }

    fn on_core_event(&mut self, ev: Event) {
        match ev {
            Event::Joined { successor } => self.events.push_back(KbrEvent::Joined { successor }),
            Event::JoinFailed { reason } => self.events.push_back(KbrEvent::JoinFailed { reason }),
            Event::LookupDone { req, key, result } => {
                self.events
                    .push_back(KbrEvent::LookupDone { req, key, result })
            }
            Event::Neighbor { node, joined } => self.work.push_back(Work::Update { node, joined }),
            Event::Routed { from, to_root, msg } => self.work.push_back(Work::Route {
                msg,
                to_root,
                from: Some(from),
                hint: None,
                rerouted: false,
            }),
            Event::Reroute { msg } => self.work.push_back(Work::Route {
                msg,
                to_root: false,
                from: None,
                hint: None,
                rerouted: true,
            }),
            Event::Undeliverable { msg, error } => {
                self.work.push_back(Work::Undeliverable { msg, error })
            }
        }
    }

    fn take_app(&mut self, id: &AppId) -> Option<Box<dyn Application>> {
        self.apps.remove(id).or_else(|| self.default_app.take())
    }

    /// One routing step at this node: decide the next hop, let the
    /// application see it (forward), then deliver here or send on.
    fn route_here(
        &mut self,
        now: Time,
        mut msg: RoutedMessage,
        to_root: bool,
        from: Option<NodeRef>,
        hint: Option<NodeRef>,
        rerouted: bool,
    ) {
        let me = self.core.me();
        let (mut next, mut next_is_root) = if msg.direct {
            (me, true)
        } else if let Some(h) = hint {
            (h, false)
        } else {
            match self.core.next_hop(&msg.key, to_root, from.as_ref()) {
                NextHop::Local => (me, true),
                NextHop::Forward { node, to_root } => (node, to_root),
            }
        };
        let Body::App(app_msg) = &msg.body else {
            return;
        };
        let app_id = app_msg.app;
        let from_default = !self.apps.contains_key(&app_id);
        let mut app = self.take_app(&app_id);
        let chosen = next;
        let go_on = match app.as_mut() {
            Some(app) if !rerouted => {
                let mut api = Api {
                    now,
                    core: &mut self.core,
                    work: &mut self.work,
                    view: &mut self.view,
                };
                app.forward(&mut api, &mut msg, &mut next)
            }
            _ => true,
        };
        if !go_on {
            self.stats.stopped += 1;
            if let Some(app) = app {
                self.restore_app(app_id, from_default, app);
            }
            return;
        }
        if next.id != chosen.id {
            next_is_root = next.id == me.id;
        }
        if next.id == me.id {
            match app.as_mut() {
                Some(app) => {
                    self.stats.delivered += 1;
                    let mut api = Api {
                        now,
                        core: &mut self.core,
                        work: &mut self.work,
                        view: &mut self.view,
                    };
                    app.deliver(&mut api, &msg);
                }
                None => {
                    self.stats.dropped += 1;
                    let reason = format!("no application {app_id} on this node");
                    self.events.push_back(KbrEvent::Dropped { msg, reason });
                }
            }
        } else {
            self.stats.forwarded += 1;
            self.core.send_routed(now, msg, next, next_is_root);
        }
        if let Some(app) = app {
            self.restore_app(app_id, from_default, app);
        }
    }

    fn restore_app(&mut self, id: AppId, from_default: bool, app: Box<dyn Application>) {
        if from_default {
            self.default_app = Some(app);
        } else {
            self.apps.insert(id, app);
        }
    }
}

/// What an application (or the driver) can do on the overlay.
pub struct Api<'a> {
    now: Time,
    core: &'a mut RoutingCore,
    work: &'a mut VecDeque<Work>,
    view: &'a mut ViewCache,
}

impl Api<'_> {
    pub fn now(&self) -> Time {
        self.now
    }

    /// This node.
    pub fn id(&self) -> NodeRef {
        self.core.me()
    }

    /// The node's routing state, read only: one snapshot shared by every
    /// application (see [`view`]).
    pub fn view(&mut self) -> Rc<dyn RoutingView> {
        self.view.get(self.now, self.core)
    }

    /// Routes `msg` towards the root of `key`; `hint`, if given, is used as
    /// the first hop. Returns the message id.
    pub fn route(&mut self, key: Id, msg: AppMessage, hint: Option<NodeRef>) -> u64 {
        let routed = self.message(key, msg, false);
        let id = routed.id;
        self.work.push_back(Work::Route {
            msg: routed,
            to_root: false,
            from: None,
            hint,
            rerouted: false,
        });
        id
    }

    /// Sends `msg` straight to `node`, delivered there whoever owns the key
    /// (the common API's route with a null key and a hint).
    pub fn send(&mut self, node: NodeRef, msg: AppMessage) -> u64 {
        let routed = self.message(node.id, msg, true);
        let id = routed.id;
        if node.id == self.core.me().id {
            self.work.push_back(Work::Route {
                msg: routed,
                to_root: true,
                from: None,
                hint: None,
                rerouted: false,
            });
        } else {
            self.core.send_routed(self.now, routed, node, true);
        }
        id
    }

    /// Routes on a message this node held back (its `forward` upcall
    /// returned `false` while, say, the app's code was being fetched), as
    /// if it had just arrived: same source, id and hop count. Forward
    /// upcalls do not run again here; `next`, if given, is the next hop.
    pub fn resume_route(&mut self, msg: RoutedMessage, next: Option<NodeRef>) {
        self.work.push_back(Work::Route {
            msg,
            to_root: false,
            from: None,
            hint: next,
            rerouted: true,
        });
    }

    /// Hands a message that reached this node on to `node`, to be
    /// delivered there (same source and id): how a root that will not run
    /// an app passes its message to the next replica.
    pub fn pass_on(&mut self, mut msg: RoutedMessage, node: NodeRef) {
        msg.direct = true;
        if node.id == self.core.me().id {
            self.resume_route(msg, None);
        } else {
            self.core.send_routed(self.now, msg, node, true);
        }
    }

    /// A fresh id nobody can guess (from the core's request ids): for call
    /// and fetch ids, which answers must name.
    pub fn fresh_id(&mut self) -> u64 {
        self.core.new_message_id()
    }

    fn message(&mut self, key: Id, msg: AppMessage, direct: bool) -> RoutedMessage {
        RoutedMessage {
            id: self.core.new_message_id(),
            key,
            source: self.core.me(),
            hops: 0,
            ttl: self.core.ttl(),
            direct,
            body: Body::App(msg),
        }
    }

    /// Up to `num` nodes that are good next hops towards `key`, best first.
    /// `safe` asks for nodes chosen so that an adversary cannot bias them;
    /// this overlay keeps no such table, so it returns the same nodes.
    pub fn local_lookup(&self, key: &Id, num: usize, _safe: bool) -> Vec<NodeRef> {
        self.core.view().next_hops(key, num)
    }

    /// Up to `num` neighbours: successors first (nearest first), then the
    /// predecessor.
    pub fn neighbor_set(&self, num: usize) -> Vec<NodeRef> {
        self.core.view().neighbor_set(num)
    }

    /// Up to `max_rank` nodes that hold the replicas of `key`, its root first
    /// (in Chord: the root and its successors). Empty when `key` lies outside
    /// the stretch of ring this node knows (predecessor to last successor):
    /// ask a node near the key instead.
    pub fn replica_set(&self, key: &Id, max_rank: usize) -> Vec<NodeRef> {
        self.core.view().replica_set(key, max_rank)
    }

    /// The keys for which `node` is the `rank`-th root (rank 0: the keys it
    /// owns), as `(after, up_to)`: the interval (after, up_to]. `None` when
    /// this node does not know enough of the ring around `node`.
    pub fn range(&self, node: &NodeRef, rank: usize) -> Option<(Id, Id)> {
        self.core.view().range(node, rank)
    }
}
