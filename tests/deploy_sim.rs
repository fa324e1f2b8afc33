//! Deployment by traffic on a simulated overlay: signed code installed on
//! one node reaches exactly the nodes that need it, through the code
//! locator its messages carry and the overlay's own code store.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use ciborium::Value;
use common::deploy::Overlay;
use peerlet::id::Id;
use peerlet::peerlet::ManagerConfig;
use peerlet::sim::Rng;
use peerlet::wire::AppType;

const COUNTER: &str = "--@peerlet name=counter type=end-node version=1\n\
    local P = {}\n\
    function P.deliver(key, msg, from)\n\
      store.put('n', (store.get('n') or 0) + 1)\n\
      if msg.seq then\n\
        if msg.seq <= (store.get('last') or 0) then store.put('disorder', 1) end\n\
        store.put('last', msg.seq)\n\
      end\n\
    end\n\
    function P.undelivered(key, msg, reason) store.put('undelivered', (store.get('undelivered') or 0) + 1) end\n\
    function P.save() return store.get('n') end\n\
    function P.restore(n) store.put('restored', n or 0) end\n\
    return P\n";

const HOPS: &str = "--@peerlet name=hops type=per-hop version=1\n\
    local P = {}\n\
    function P.forward(key, msg, next)\n\
      store.put('seen', (store.get('seen') or 0) + 1)\n\
      msg.path[#msg.path + 1] = kbr.id().id\n\
      return msg\n\
    end\n\
    function P.deliver(key, msg, from)\n\
      store.put('path ' .. msg.seq, table.concat(msg.path, ' '))\n\
    end\n\
    return P\n";

fn seq(n: i64) -> Value {
    Value::Map(vec![(Value::Text("seq".into()), Value::Integer(n.into()))])
}

fn random_keys(n: usize, seed: u64) -> Vec<Id> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| rng.id()).collect()
}

#[test]
fn end_node_code_runs_at_every_root_that_got_a_message_and_nowhere_else() {
    let mut o = Overlay::new(20, 41, &ManagerConfig::default());
    let app = o.install(0, COUNTER);
    let code = o.locator(0, "counter");
    o.net.run_for(Duration::from_secs(1));
    let keys = random_keys(50, 7);
    for (i, key) in keys.iter().enumerate() {
        o.route(0, *key, app, AppType::EndNode, &code, seq(i as i64 + 1));
    }
    o.net.run_for(Duration::from_secs(10));

    let oracle = o.net.oracle();
    let mut roots = BTreeSet::from([0]);
    let mut expected = vec![0i128; 20];
    for key in &keys {
        let r = o.index(&oracle.successor(key).id);
        roots.insert(r);
        expected[r] += 1;
    }
    let running: BTreeSet<usize> = o.running("counter").into_iter().collect();
    assert_eq!(
        running, roots,
        "deployed exactly at the roots (and the origin)"
    );
    assert!(roots.len() > 5, "the keys spread over the ring");
    for (r, want) in expected.iter().enumerate() {
        assert_eq!(
            o.counter(r, "counter", "n"),
            *want,
            "deliveries at node {r}"
        );
        assert_eq!(o.counter(r, "counter", "disorder"), 0, "in order at {r}");
    }
    // The code came from the overlay's store, one fetch per root.
    for &r in roots.iter().filter(|&&r| r != 0) {
        let m = o.managers[r].0.borrow();
        let d: Vec<_> = m.deployer().deployments().collect();
        assert_eq!(d.len(), 1, "one deployment at node {r}");
        assert_eq!((d[0].name.as_str(), d[0].source), ("counter", "store"));
        assert_eq!(m.deployer().held(), 0);
    }
    // r = 3 copies of the package in the overlay's store.
    let copies = (0..20)
        .filter(|&i| {
            o.managers[i]
                .0
                .borrow()
                .code_store()
                .get(&code.hash)
                .is_some()
        })
        .count();
    assert_eq!(copies, 3);
}

#[test]
fn per_hop_code_reaches_every_node_on_the_paths() {
    let mut o = Overlay::new(20, 43, &ManagerConfig::default());
    let app = o.install(0, HOPS);
    let code = o.locator(0, "hops");
    o.net.run_for(Duration::from_secs(1));
    let keys = random_keys(50, 9);
    // Sent from a node that does not run the app: it deploys there too.
    for (i, key) in keys.iter().enumerate() {
        let path = Value::Array(Vec::new());
        let msg = Value::Map(vec![
            (Value::Text("seq".into()), Value::Integer((i as i64).into())),
            (Value::Text("path".into()), path),
        ]);
        o.route(5, *key, app, AppType::PerHop, &code, msg);
    }
    o.net.run_for(Duration::from_secs(10));

    let oracle = o.net.oracle();
    let mut on_paths = BTreeSet::from([0]);
    for (i, key) in keys.iter().enumerate() {
        let root = o.index(&oracle.successor(key).id);
        let m = o.managers[root].0.borrow();
        let stored = m.by_name("hops").unwrap().store_get(&format!("path {i}"));
        let path = match stored.map(|b| common::values::decode_stored(&b)) {
            Some(Value::Text(t)) => t,
            other => panic!("no path for key {i} at its root: {other:?}"),
        };
        let hops: Vec<usize> = path
            .split(' ')
            .map(|h| o.index(&h.parse().unwrap()))
            .collect();
        assert_eq!(hops[0], 5, "the path starts at the source");
        assert_eq!(*hops.last().unwrap(), root, "and ends at the root");
        on_paths.extend(hops);
    }
    let running: BTreeSet<usize> = o.running("hops").into_iter().collect();
    assert_eq!(running, on_paths, "deployed at every hop, nowhere else");
}

#[test]
fn later_nodes_get_the_code_from_the_store_after_the_origin_died() {
    let mut o = Overlay::new(20, 47, &ManagerConfig::default());
    let app = o.install(0, COUNTER);
    let code = o.locator(0, "counter");
    o.net.run_for(Duration::from_secs(1));
    let keys = random_keys(50, 11);
    for key in &keys[..10] {
        o.route(0, *key, app, AppType::EndNode, &code, seq(0));
    }
    o.net.run_for(Duration::from_secs(5));
    let before: BTreeSet<usize> = o.running("counter").into_iter().collect();
    o.net.crash(0);
    o.net.run_for(Duration::from_secs(60));
    // From a node the code reached: its messages name the dead origin.
    let from = *before.iter().find(|&&i| i != 0).unwrap();
    for key in &keys[10..] {
        o.route(from, *key, app, AppType::EndNode, &code, seq(0));
    }
    o.net.run_for(Duration::from_secs(20));
    let oracle = o.net.oracle();
    for key in &keys[10..] {
        let r = o.index(&oracle.successor(key).id);
        assert!(o.counter(r, "counter", "n") >= 1, "key {key:?} delivered");
    }
    let fresh: Vec<usize> = o
        .running("counter")
        .into_iter()
        .filter(|i| !before.contains(i))
        .collect();
    assert!(!fresh.is_empty(), "some roots got the code after the crash");
    for r in fresh {
        let m = o.managers[r].0.borrow();
        let d = m.deployer().deployments().next().unwrap();
        assert_eq!(d.source, "store", "node {r} got it from the store");
    }
}

#[test]
fn nodes_that_refuse_per_hop_code_pass_its_messages_on_unchanged() {
    let mut o = Overlay::new(20, 45, &ManagerConfig::default());
    let refusing: BTreeSet<usize> = (2..20).step_by(3).collect();
    for &i in &refusing {
        let mut policy = common::deploy::trusting(&[&o.publisher]);
        policy.set_run_per_hop(false);
        o.managers[i].0.borrow_mut().set_trust(policy);
    }
    let app = o.install(0, HOPS);
    let code = o.locator(0, "hops");
    o.net.run_for(Duration::from_secs(1));
    let keys = random_keys(40, 13);
    for (i, key) in keys.iter().enumerate() {
        let msg = Value::Map(vec![
            (Value::Text("seq".into()), Value::Integer((i as i64).into())),
            (Value::Text("path".into()), Value::Array(Vec::new())),
        ]);
        o.route(1, *key, app, AppType::PerHop, &code, msg);
    }
    o.net.run_for(Duration::from_secs(10));
    let running: BTreeSet<usize> = o.running("hops").into_iter().collect();
    assert!(running.is_disjoint(&refusing), "refusing nodes run nothing");
    let oracle = o.net.oracle();
    let (mut through_refusing, mut undelivered) = (0, 0);
    for (i, key) in keys.iter().enumerate() {
        let at: Vec<(usize, String)> = running
            .iter()
            .filter_map(|&n| {
                let m = o.managers[n].0.borrow();
                let bytes = m.by_name("hops")?.store_get(&format!("path {i}"))?;
                match common::values::decode_stored(&bytes) {
                    Value::Text(t) => Some((n, t)),
                    _ => None,
                }
            })
            .collect();
        // The first of the key's 3 replicas that runs per-hop code takes it.
        let root = o.index(&oracle.successor(key).id);
        let mut replicas = vec![root];
        replicas.extend(
            oracle
                .successors_of(&o.net.me(root).id, 2)
                .iter()
                .map(|n| o.index(&n.id)),
        );
        let Some(&taker) = replicas.iter().find(|r| !refusing.contains(r)) else {
            assert!(at.is_empty(), "message {i}: every replica refuses");
            undelivered += 1;
            continue;
        };
        assert_eq!(at.len(), 1, "message {i} delivered exactly once: {at:?}");
        let (node, path) = &at[0];
        assert_eq!(
            *node, taker,
            "message {i} ends at the first accepting replica"
        );
        if taker != root {
            through_refusing += 1;
        }
        for hop in path.split(' ') {
            assert!(!refusing.contains(&o.index(&hop.parse().unwrap())));
        }
    }
    let told = o.reports(1).matches("was not delivered").count();
    assert_eq!(
        told, undelivered,
        "the sender hears of each message no replica took"
    );
    assert!(through_refusing > 0, "the seed has refusing roots");
    let refused: u64 = refusing
        .iter()
        .map(|&i| {
            let m = o.managers[i].0.borrow();
            m.trust()
                .refusals()
                .get(peerlet::package::refusal::RefusalReason::PerHopDenied)
        })
        .sum();
    assert!(refused > 0, "refusals are counted");
}

#[test]
fn code_installed_before_joining_reaches_the_store_and_outlives_its_origin() {
    use peerlet::peerlet::{Manager, ManagerApp};
    use peerlet::sim::{SimConfig, SimNet};
    let chord = peerlet::chord::Config {
        successors: 4,
        ..peerlet::chord::Config::default()
    };
    let mut net = SimNet::new(SimConfig {
        seed: 3,
        chord,
        ..SimConfig::default()
    });
    let mut rng = Rng::new(3);
    let mut o = Overlay::new(1, 1, &ManagerConfig::default());
    let publisher = o.publisher;
    let mut managers = Vec::new();
    for i in 0..12 {
        net.add_node(rng.id());
        let m = ManagerApp::new(Manager::new(ManagerConfig::default()));
        m.0.borrow_mut()
            .set_trust(common::deploy::trusting(&[&publisher]));
        let app = m.clone();
        net.with_node(i, move |k, _| k.set_default_app(Box::new(app)));
        managers.push(m);
    }
    net.create(1);
    for i in 2..12 {
        net.join(i, 1);
        net.run_for(Duration::from_secs(5));
    }
    net.run_for(Duration::from_secs(60));
    o = Overlay {
        net,
        managers,
        publisher,
    };
    // Installed on node 0 before it joins (as `peerlet node --join --load`
    // does): it keeps the only copy, and its code key lies elsewhere.
    let app = o.install(0, COUNTER);
    let code = o.locator(0, "counter");
    o.net.join(0, 1);
    o.net.run_for(Duration::from_secs(120));
    let holders: Vec<usize> = (1..12)
        .filter(|&i| {
            let m = o.managers[i].0.borrow();
            m.code_store().get(&code.hash).is_some()
        })
        .collect();
    assert!(holders.len() >= 2, "copies on other nodes: {holders:?}");
    o.net.crash(0);
    o.net.run_for(Duration::from_secs(60));
    let oracle = o.net.oracle();
    let keys = random_keys(10, 17);
    for key in &keys {
        o.route(1, *key, app, AppType::EndNode, &code, seq(1));
    }
    o.net.run_for(Duration::from_secs(20));
    for key in &keys {
        let r = o.index(&oracle.successor(key).id);
        assert!(o.counter(r, "counter", "n") >= 1, "delivered at node {r}");
    }
}

const KV: &str = "--@peerlet name=kv type=end-node version=1\n\
    local P = {}\n\
    local data = {}\n\
    function P.put(k, v) data[k] = v return true end\n\
    function P.get(k) return data[k] end\n\
    return P\n";

#[test]
fn a_console_call_by_peerlet_name_deploys_the_peerlet_at_the_keys_root() {
    let mut o = Overlay::new(12, 49, &ManagerConfig::default());
    o.install(0, KV);
    o.net.run_for(Duration::from_secs(1));
    let key = Id::key("colour");
    let root = o.index(&o.net.oracle().successor(&key).id);
    assert_ne!(root, 0, "the seed puts the key's root elsewhere");
    let put = o.eval(
        0,
        "peerlet.lookup(kbr.key('colour'), 'kv'):put('colour', 'blue')",
    );
    assert_eq!(put, Ok("true".to_string()));
    let running: BTreeSet<usize> = o.running("kv").into_iter().collect();
    assert_eq!(running, BTreeSet::from([0, root]), "deployed by the call");
    let get = o.eval(0, "peerlet.lookup(kbr.key('colour'), 'kv'):get('colour')");
    assert_eq!(get, Ok("blue".to_string()));
    let unknown = o.eval(0, "peerlet.lookup(kbr.key('colour'), 'nope'):get('colour')");
    let err = unknown.unwrap_err();
    assert!(err.contains("no peerlet named `nope`"), "{err}");
}

#[test]
fn no_peerlet_can_take_the_consoles_name() {
    let mut o = Overlay::new(3, 51, &ManagerConfig::default());
    assert_eq!(o.eval(0, "1 + 1"), Ok("2".into()));
    let impostor = "--@peerlet name=console type=end-node version=1\nreturn {}\n";
    let sig =
        peerlet::package::signing::sign_source(&o.publisher, impostor.as_bytes(), "c.lua").unwrap();
    let m = o.managers[0].clone();
    let err = o
        .net
        .with_node(0, |k, now| {
            m.0.borrow_mut()
                .install_signed(&mut k.api(now), impostor.as_bytes(), &sig)
        })
        .unwrap_err();
    assert!(
        err.to_string().contains("belongs to the node's console"),
        "{err}"
    );
    let local = o.net.with_node(0, |k, now| {
        m.0.borrow_mut()
            .install_local(&mut k.api(now), "console.lua", b"return {}")
    });
    assert!(local.is_err(), "not even as the node's own");
    assert_eq!(o.eval(0, "x = 40"), Ok(String::new()));
    assert_eq!(
        o.eval(0, "x + 2"),
        Ok("42".into()),
        "the console still works"
    );
}

#[test]
fn each_peerlet_sees_a_fresh_routing_snapshot_after_a_neighbour_change() {
    // Node 0 runs a peerlet with an update() upcall, which refreshes its own
    // copy of the routing state when a neighbour goes; the console (another
    // peerlet) must not be left with the old copy because of it.
    let mut o = Overlay::new(8, 57, &ManagerConfig::default());
    let watcher = "--@peerlet name=watcher type=end-node version=1\n\
        local P = {}\n\
        function P.update(node, joined) store.put('updates', (store.get('updates') or 0) + 1) end\n\
        return P\n";
    o.install(0, watcher);
    let first = o.eval(0, "kbr.neighbor_set(1)[1].id").unwrap();
    let succ = o.index(&first.parse().unwrap());
    o.net.crash(succ);
    let step = Duration::from_millis(20);
    for _ in 0..3000 {
        o.net.run_for(step);
        let now_succ = o
            .net
            .with_node(0, |k, _| k.chord().table().successors()[0].id);
        if now_succ.to_string() != first {
            break;
        }
    }
    assert!(
        o.counter(0, "watcher", "updates") >= 1,
        "the watcher saw the change"
    );
    let table_succ = o
        .net
        .with_node(0, |k, _| k.chord().table().successors()[0].id);
    assert_ne!(
        table_succ.to_string(),
        first,
        "node 0 dropped its dead successor"
    );
    // At the same instant, the console reads the routing state.
    let seen = o.eval(0, "kbr.neighbor_set(1)[1].id").unwrap();
    assert_eq!(seen, table_succ.to_string(), "not the dead successor");
}
