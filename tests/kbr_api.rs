//! The common KBR API over the simulated ring: deliver at the root only,
//! forward at every hop (change, re-route, stop), update, replica_set, range,
//! local_lookup, direct send, and apps that never see each other's messages.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use peerlet::id::{AppId, Id};
use peerlet::kbr::{Api, Application};
use peerlet::sim::{Rng, SimNet};
use peerlet::wire::{AppKind, AppMessage, AppType, Body, NodeRef, RoutedMessage};
use serde_bytes::ByteBuf;

#[derive(Default)]
struct Seen {
    delivered: Vec<(Id, RoutedMessage)>,
    forwarded: Vec<(Id, RoutedMessage)>,
    updates: Vec<(Id, NodeRef, bool)>,
}

type Shared = Rc<RefCell<Seen>>;

/// What a test's forward() does: may change the message and next hop.
type ForwardRule = Rc<dyn Fn(&Id, &mut RoutedMessage, &mut NodeRef) -> bool>;

/// Records every upcall; optionally acts in forward().
struct Recorder {
    me: Id,
    seen: Shared,
    on_forward: Option<ForwardRule>,
}

impl Application for Recorder {
    fn deliver(&mut self, _api: &mut Api<'_>, msg: &RoutedMessage) {
        self.seen
            .borrow_mut()
            .delivered
            .push((self.me, msg.clone()));
    }

    fn forward(&mut self, _api: &mut Api<'_>, msg: &mut RoutedMessage, next: &mut NodeRef) -> bool {
        self.seen
            .borrow_mut()
            .forwarded
            .push((self.me, msg.clone()));
        match &self.on_forward {
            Some(f) => f(&self.me, msg, next),
            None => true,
        }
    }

    fn update(&mut self, _api: &mut Api<'_>, node: NodeRef, joined: bool) {
        self.seen.borrow_mut().updates.push((self.me, node, joined));
    }
}

fn app_id(name: &str) -> AppId {
    AppId::derive(b"test publisher", name)
}

fn message(app: AppId, data: &[u8]) -> AppMessage {
    AppMessage {
        app,
        app_type: AppType::PerHop,
        code: None,
        data: ByteBuf::from(data.to_vec()),
        kind: AppKind::Message,
        refused_by: Vec::new(),
    }
}

/// A converged ring of `n` nodes with a recording app `app` on each.
fn ring(n: usize, seed: u64, app: AppId) -> (SimNet, Shared, Rng) {
    let (mut net, rng) = common::sim::converged(n, seed);
    let seen = Shared::default();
    add_app(&mut net, app, &seen, None);
    (net, seen, rng)
}

fn add_app(net: &mut SimNet, app: AppId, seen: &Shared, on_forward: Option<ForwardRule>) {
    for i in 0..net.len() {
        let me = net.me(i).id;
        let rec = Recorder {
            me,
            seen: seen.clone(),
            on_forward: on_forward.clone(),
        };
        net.register_app(i, app, Box::new(rec));
    }
}

fn route(net: &mut SimNet, from: usize, key: Id, msg: AppMessage) {
    net.with_node(from, |k, now| k.api(now).route(key, msg, None));
    net.run_for(Duration::from_secs(2));
}

#[test]
fn end_node_messages_are_delivered_once_at_the_root_only() {
    let app = app_id("end");
    let (mut net, seen, mut rng) = ring(40, 1, app);
    let oracle = net.oracle();
    for k in 0..60 {
        let key = rng.id();
        route(&mut net, k % 40, key, message(app, &[k as u8]));
        let s = seen.borrow();
        let here: Vec<_> = s.delivered.iter().filter(|(_, m)| m.key == key).collect();
        assert_eq!(here.len(), 1, "delivered once");
        assert_eq!(here[0].0, oracle.successor(&key).id, "at the root");
    }
}

#[test]
fn forward_sees_every_hop_from_source_to_root() {
    let app = app_id("hops");
    let (mut net, seen, mut rng) = ring(64, 2, app);
    let key = rng.id();
    route(&mut net, 5, key, message(app, b"x"));
    let s = seen.borrow();
    let delivered = &s
        .delivered
        .iter()
        .find(|(_, m)| m.key == key)
        .expect("delivered")
        .1;
    let hops: Vec<Id> = s
        .forwarded
        .iter()
        .filter(|(_, m)| m.key == key)
        .map(|(n, _)| *n)
        .collect();
    // Source, every intermediate node, and the root (before deliver).
    assert_eq!(hops.len() as u32, delivered.hops + 1);
    assert_eq!(hops.first(), Some(&net.me(5).id));
    assert_eq!(hops.last(), Some(&net.oracle().successor(&key).id));
}

#[test]
fn forward_can_change_the_message_reroute_it_and_stop_it() {
    let app = app_id("steer");
    let (mut net, seen, mut rng) = ring(32, 3, app);
    let detour = net.me(7);
    let rule: ForwardRule = Rc::new(move |_me, msg, next| {
        let Body::App(a) = &mut msg.body else {
            return true;
        };
        match a.data.as_slice() {
            b"stop" => false,
            b"detour" => {
                a.data = ByteBuf::from(b"detoured".to_vec());
                *next = detour;
                true
            }
            _ => true,
        }
    });
    let steer = app_id("steer2");
    add_app(&mut net, steer, &seen, Some(rule));

    let key = rng.id();
    route(&mut net, 0, key, message(steer, b"stop"));
    assert!(
        seen.borrow().delivered.iter().all(|(_, m)| m.key != key),
        "stopped at the source"
    );
    assert_eq!(
        seen.borrow()
            .forwarded
            .iter()
            .filter(|(_, m)| m.key == key)
            .count(),
        1
    );

    let key = rng.id();
    route(&mut net, 0, key, message(steer, b"detour"));
    let s = seen.borrow();
    let visited: Vec<Id> = s
        .forwarded
        .iter()
        .filter(|(_, m)| m.key == key)
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(
        visited.get(1),
        Some(&detour.id),
        "second hop is the chosen node"
    );
    let (at, m) = s
        .delivered
        .iter()
        .find(|(_, m)| m.key == key)
        .expect("still delivered");
    assert_eq!(*at, net.oracle().successor(&key).id);
    let Body::App(a) = &m.body else { panic!() };
    assert_eq!(a.data.as_slice(), b"detoured");
}

#[test]
fn applications_never_see_each_others_messages() {
    let a = app_id("a");
    let (mut net, seen_a, mut rng) = ring(30, 4, a);
    let b = app_id("b");
    let seen_b = Shared::default();
    add_app(&mut net, b, &seen_b, None);
    for k in 0..20 {
        let app = if k % 2 == 0 { a } else { b };
        route(&mut net, k, rng.id(), message(app, b"m"));
    }
    let only = |seen: &Shared, app: AppId| {
        let s = seen.borrow();
        let mine = |m: &RoutedMessage| matches!(&m.body, Body::App(x) if x.app == app);
        assert_eq!(s.delivered.len(), 10);
        assert!(s.delivered.iter().all(|(_, m)| mine(m)));
        assert!(s.forwarded.iter().all(|(_, m)| mine(m)));
    };
    only(&seen_a, a);
    only(&seen_b, b);
}

#[test]
fn a_message_whose_root_crashed_reaches_the_next_live_replica() {
    let app = app_id("replica");
    let (mut net, seen, mut rng) = ring(30, 5, app);
    let key = rng.id();
    let root = net.oracle().successor(&key);
    let root_index = (0..net.len()).find(|&i| net.me(i).id == root.id).unwrap();
    net.crash(root_index);
    let source = (root_index + 10) % 30;
    route(&mut net, source, key, message(app, b"r"));
    net.run_for(Duration::from_secs(5));
    let s = seen.borrow();
    let (at, _) = s
        .delivered
        .iter()
        .find(|(_, m)| m.key == key)
        .expect("delivered despite the crash");
    assert_eq!(
        *at,
        net.oracle().successor(&key).id,
        "the next live replica took it"
    );
}

#[test]
fn replica_set_and_range_follow_the_ring() {
    let app = app_id("rs");
    let (mut net, _seen, mut rng) = ring(20, 6, app);
    let oracle = net.oracle();
    let key = rng.id();
    let root = oracle.successor(&key);
    let i = (0..net.len()).find(|&i| net.me(i).id == root.id).unwrap();
    let (replicas, range0, range1) = net.with_node(i, |k, now| {
        let api = k.api(now);
        (
            api.replica_set(&key, 3),
            api.range(&root, 0),
            api.range(&oracle.successors_of(&root.id, 1)[0], 1),
        )
    });
    let mut want = vec![root];
    want.extend(oracle.successors_of(&root.id, 2));
    assert_eq!(replicas, want);
    let pred = oracle.predecessor_of(&root.id).unwrap();
    assert_eq!(
        range0,
        Some((pred.id, root.id)),
        "rank 0: (predecessor, node]"
    );
    assert_eq!(
        range1,
        Some((pred.id, root.id)),
        "the successor is rank 1 for the same keys"
    );
    assert!(key.in_open_closed(&pred.id, &root.id));
}

#[test]
fn local_lookup_and_neighbor_set_come_from_the_routing_table() {
    let app = app_id("ll");
    let (mut net, _seen, mut rng) = ring(50, 7, app);
    let oracle = net.oracle();
    let key = rng.id();
    let (hops, neighbours, me) = net.with_node(0, |k, now| {
        let api = k.api(now);
        (
            api.local_lookup(&key, 3, false),
            api.neighbor_set(10),
            api.id(),
        )
    });
    assert!(!hops.is_empty() && hops.len() <= 3);
    // The best next hop makes progress: it lies between us and the key.
    let best = hops[0];
    assert!(best.id == oracle.successor(&key).id || best.id.in_open(&me.id, &key));
    let mut want = oracle.successors_of(&me.id, 4);
    want.push(oracle.predecessor_of(&me.id).unwrap());
    assert_eq!(neighbours, want);
}

#[test]
fn send_delivers_directly_to_a_node_whoever_owns_the_key() {
    let app = app_id("direct");
    let (mut net, seen, _rng) = ring(20, 8, app);
    let target = net.me(13);
    net.with_node(2, |k, now| k.api(now).send(target, message(app, b"hi")));
    net.run_for(Duration::from_secs(1));
    let s = seen.borrow();
    assert_eq!(s.delivered.len(), 1);
    assert_eq!(s.delivered[0].0, target.id);
    assert!(s.delivered[0].1.direct);
}

#[test]
fn update_tells_applications_when_a_neighbour_leaves_and_joins() {
    let app = app_id("upd");
    let (mut net, seen, mut rng) = ring(20, 9, app);
    let leaver = net.me(4);
    net.leave(4);
    net.run_for(Duration::from_secs(1));
    assert!(seen
        .borrow()
        .updates
        .iter()
        .any(|(_, n, joined)| n.id == leaver.id && !joined));
    let newcomer = net.add_node(rng.id());
    let seen_new = seen.clone();
    let me = net.me(newcomer).id;
    net.register_app(
        newcomer,
        app,
        Box::new(Recorder {
            me,
            seen: seen_new,
            on_forward: None,
        }),
    );
    net.join(newcomer, 0);
    net.run_for(Duration::from_secs(5));
    let new_id = net.me(newcomer).id;
    assert!(seen
        .borrow()
        .updates
        .iter()
        .any(|(at, n, joined)| n.id == new_id && *joined && *at != new_id));
}

/// An application with its own timer: fires three times, a second apart.
struct Ticker {
    next: Option<peerlet::time::Time>,
    fired: Rc<RefCell<Vec<peerlet::time::Time>>>,
}

impl Application for Ticker {
    fn deliver(&mut self, _api: &mut Api<'_>, _msg: &RoutedMessage) {}

    fn next_deadline(&self) -> Option<peerlet::time::Time> {
        self.next
    }

    fn on_timeout(&mut self, api: &mut Api<'_>) {
        let mut fired = self.fired.borrow_mut();
        fired.push(api.now());
        self.next = (fired.len() < 3).then(|| api.now() + Duration::from_secs(1));
    }
}

#[test]
fn applications_get_their_own_timeouts_from_the_driver() {
    let app = app_id("tick");
    let (mut net, _seen, _rng) = ring(5, 10, app);
    let fired = Rc::new(RefCell::new(Vec::new()));
    let start = net.now() + Duration::from_millis(1500);
    net.register_app(
        2,
        app_id("ticker"),
        Box::new(Ticker {
            next: Some(start),
            fired: fired.clone(),
        }),
    );
    // The timer must wake the node even though it was armed from outside.
    net.with_node(2, |_, _| ());
    net.run_for(Duration::from_secs(10));
    let fired = fired.borrow();
    assert_eq!(fired.len(), 3);
    assert!(fired[0] >= start);
    assert_eq!(fired[1].since(fired[0]), Duration::from_secs(1));
}
