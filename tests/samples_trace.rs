//! peerlets/trace.lua on a 20-node simulated ring: the path a trace brings
//! back is exactly the path the KBR layer routed it along (every node whose
//! forward() upcall the KBR layer made, in order, at the same virtual time),
//! from the sender to the key's root, each hop closer to the key. Nodes
//! that do not run trace pass it on and are missing from the path.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use common::samples::SampleRing;
use peerlet::id::{AppId, Id};
use peerlet::kbr::{Api, Application};
use peerlet::peerlet::ManagerApp;
use peerlet::time::Time;
use peerlet::wire::{AppKind, Body, NodeRef, RoutedMessage};

const NODES: usize = 20;

/// One forward() upcall the KBR layer made: at which node, when, for which
/// message (source, key, app).
#[derive(Clone, Debug)]
struct Upcall {
    node: usize,
    at: Time,
    source: Id,
    key: Id,
    app: AppId,
}

/// A node's manager, with every forward() upcall of an application message
/// written down before the manager sees it.
struct Recorder {
    node: usize,
    inner: ManagerApp,
    log: Rc<RefCell<Vec<Upcall>>>,
}

impl Application for Recorder {
    fn deliver(&mut self, api: &mut Api<'_>, msg: &RoutedMessage) {
        self.inner.deliver(api, msg)
    }

    fn forward(&mut self, api: &mut Api<'_>, msg: &mut RoutedMessage, next: &mut NodeRef) -> bool {
        if let Body::App(a) = &msg.body {
            if a.kind == AppKind::Message {
                self.log.borrow_mut().push(Upcall {
                    node: self.node,
                    at: api.now(),
                    source: msg.source.id,
                    key: msg.key,
                    app: a.app,
                });
            }
        }
        self.inner.forward(api, msg, next)
    }

    fn update(&mut self, api: &mut Api<'_>, node: NodeRef, joined: bool) {
        self.inner.update(api, node, joined)
    }

    fn next_deadline(&self) -> Option<Time> {
        self.inner.next_deadline()
    }

    fn on_timeout(&mut self, api: &mut Api<'_>) {
        self.inner.on_timeout(api)
    }
}

#[test]
fn trace_returns_the_exact_path_the_kbr_layer_took() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let mut r = SampleRing::wrapped(NODES, 51, |node, inner| {
        Box::new(Recorder {
            node,
            inner,
            log: log.clone(),
        })
    });
    let app = r.install(&r.all(), "trace");

    // Every node traces a key of its own, all at once.
    let keys: Vec<Id> = (0..NODES)
        .map(|i| Id::key(format!("far key {i}")))
        .collect();
    let handle = format!("peerlet.lookup(kbr.id().id, {:?})", app.to_string());
    let starts: Vec<(usize, String)> = (0..NODES)
        .map(|i| (i, format!("{handle}:trace({:?})", keys[i].to_string())))
        .collect();
    for (i, out) in r
        .eval_many(&starts, Duration::from_secs(10))
        .iter()
        .enumerate()
    {
        assert_eq!(out.as_deref(), Ok("1"), "trace from node {i}");
    }
    r.net.run_for(Duration::from_secs(2));
    let show = format!(
        "(function() local out = {{}} for i, hop in ipairs(({handle}:path(1))) do \
         out[i] = string.format('%s@%.6f', hop.node.id, hop.time) end \
         return table.concat(out, ' ') end)()"
    );
    let reads: Vec<(usize, String)> = (0..NODES).map(|i| (i, show.clone())).collect();
    let paths = r.eval_many(&reads, Duration::from_secs(10));

    let oracle = r.net.oracle();
    let mut hops_total = 0;
    for (i, path) in paths.iter().enumerate() {
        let path = path.as_deref().unwrap_or_else(|e| panic!("node {i}: {e}"));
        let me = r.net.me(i).id;
        let taken: Vec<Upcall> = log
            .borrow()
            .iter()
            .filter(|u| u.app == app && u.source == me && u.key == keys[i])
            .cloned()
            .collect();
        let want: Vec<String> = taken
            .iter()
            .map(|u| format!("{}@{:.6}", r.net.me(u.node).id, u.at.as_secs_f64()))
            .collect();
        assert_eq!(path, want.join(" "), "trace from node {i}");

        // The path runs from the sender to the key's root; until the last
        // hop (from the key's side to its root, past it), each hop lands
        // closer to the key going clockwise.
        let nodes: Vec<usize> = taken.iter().map(|u| u.node).collect();
        assert_eq!(nodes.first(), Some(&i));
        let root = r.index_of(&oracle.successor(&keys[i]).id);
        assert_eq!(nodes.last(), Some(&root), "trace from node {i}");
        for pair in nodes[..nodes.len() - 1].windows(2) {
            let d = |n: usize| r.net.me(n).id.distance_to(&keys[i]);
            assert!(d(pair[1]) < d(pair[0]), "hop {pair:?} gets closer");
        }
        hops_total += nodes.len() - 1;
    }
    assert!(
        hops_total > NODES,
        "traces of more than one hop: {hops_total}"
    );
    assert_eq!(r.reports(), Vec::<String>::new());
}

#[test]
fn trace_show_prints_the_path_and_unknown_ids_say_so() {
    let mut r = SampleRing::new(NODES, 52);
    let app = r.install(&r.all(), "trace");
    let key = Id::key("somewhere");
    let id = r.call_local(3, app, &format!("trace({:?})", key.to_string()));
    assert_eq!(id.as_deref(), Ok("1"));
    r.net.run_for(Duration::from_secs(2));
    let shown = r.call_local(3, app, "show(1)").unwrap();
    let root = r.net.oracle().successor(&key).id.to_string();
    assert!(shown.contains(" hops: "), "{shown}");
    assert!(shown.starts_with(|c: char| c.is_ascii_digit()), "{shown}");
    assert!(
        shown.contains(&r.net.me(3).id.to_string()[..8]),
        "starts at the sender: {shown}"
    );
    assert!(shown.contains(&root[..8]), "ends at the root: {shown}");
    assert_eq!(
        r.call_local(3, app, "show(2)").as_deref(),
        Ok("nil\tno trace 2")
    );
}

#[test]
fn trace_paths_leave_out_nodes_that_do_not_run_it() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let mut r = SampleRing::wrapped(NODES, 53, |node, inner| {
        Box::new(Recorder {
            node,
            inner,
            log: log.clone(),
        })
    });
    let app = r.install(&r.all(), "trace");
    let handle = format!("peerlet.lookup(kbr.id().id, {:?})", app.to_string());
    let keys: Vec<Id> = (0..10).map(|i| Id::key(format!("key {i}"))).collect();
    let trace_all = |r: &mut SampleRing| {
        for key in &keys {
            let out = r.eval(0, &format!("{handle}:trace({:?})", key.to_string()));
            assert!(out.is_ok(), "{out:?}");
        }
        r.net.run_for(Duration::from_secs(2));
    };
    // A first round shows which nodes lie between node 0 and the roots;
    // up to four of them then stop running trace.
    trace_all(&mut r);
    let oracle = r.net.oracle();
    let roots: Vec<usize> = keys
        .iter()
        .map(|k| r.index_of(&oracle.successor(k).id))
        .collect();
    let mut without: Vec<usize> = Vec::new();
    for u in log.borrow().iter().filter(|u| u.app == app) {
        let inner = u.node != 0 && !roots.contains(&u.node);
        if inner && !without.contains(&u.node) && without.len() < 4 {
            without.push(u.node);
        }
    }
    assert!(!without.is_empty(), "some paths have inner nodes");
    for &i in &without {
        r.managers[i].0.borrow_mut().unload("trace").unwrap();
    }
    log.borrow_mut().clear();

    trace_all(&mut r);
    let mut skipped = 0;
    for (n, key) in keys.iter().enumerate() {
        let id = keys.len() + n + 1;
        let show = format!(
            "(function() local out = {{}} for i, hop in ipairs(({handle}:path({id}))) do \
             out[i] = hop.node.id end return table.concat(out, ' ') end)()"
        );
        let path = r.eval(0, &show).unwrap();
        let taken: Vec<usize> = log
            .borrow()
            .iter()
            .filter(|u| u.app == app && u.key == *key)
            .map(|u| u.node)
            .collect();
        skipped += taken.iter().filter(|i| without.contains(i)).count();
        let want: Vec<String> = taken
            .iter()
            .filter(|i| !without.contains(i))
            .map(|&i| r.net.me(i).id.to_string())
            .collect();
        assert_eq!(path, want.join(" "), "trace {id}");
    }
    assert!(skipped > 0, "some traces crossed nodes without trace");
    assert_eq!(r.reports(), Vec::<String>::new());
}
