//! Peerlet names across the overlay, in the simulator: a call by name from
//! any node, ambiguous and untrusted names, new versions reaching callers
//! and the nodes that run old ones, `.versions`.

#![forbid(unsafe_code)]

mod common;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::Duration;

use common::deploy::{trusting, Overlay};
use peerlet::id::Id;
use peerlet::package::secret_key::SigningKey;
use peerlet::package::signing::sign_source;
use peerlet::peerlet::ManagerConfig;

/// A key-value peerlet that says its version and keeps its data across an
/// upgrade (save/restore).
fn kv(version: u32) -> String {
    format!(
        "--@peerlet name=kv type=end-node version={version}\n\
         local P = {{}}\n\
         local data = {{}}\n\
         function P.put(k, v) data[k] = v return true end\n\
         function P.get(k) return data[k] end\n\
         function P.version() return {version} end\n\
         function P.save() return data end\n\
         function P.restore(state) data = state end\n\
         return P\n"
    )
}

/// A key whose root is none of `avoid`, and that root.
fn key_rooted_elsewhere(o: &Overlay, avoid: &[usize]) -> (String, usize) {
    for i in 0..1000 {
        let name = format!("item{i}");
        let root = o.index(&o.net.oracle().successor(&Id::key(&name)).id);
        if !avoid.contains(&root) {
            return (name, root);
        }
    }
    panic!("no key rooted outside {avoid:?}");
}

/// Signs `text` with `key` and installs it on `node`.
fn install_by(o: &mut Overlay, key: &SigningKey, node: usize, text: &str) {
    let sig = sign_source(key, text.as_bytes(), "x.lua").unwrap();
    let m = o.managers[node].clone();
    o.net
        .with_node(node, |k, now| {
            m.0.borrow_mut()
                .install_signed(&mut k.api(now), text.as_bytes(), &sig)
        })
        .unwrap();
}

fn version_at(o: &Overlay, node: usize) -> Option<u32> {
    let m = o.managers[node].0.borrow();
    m.by_name("kv").map(|p| p.version)
}

#[test]
fn a_call_by_name_from_a_node_that_never_ran_the_app_deploys_it_at_a_root_that_did_not_either() {
    let mut o = Overlay::new(12, 61, &ManagerConfig::default());
    o.install(0, &kv(1));
    o.net.run_for(Duration::from_secs(1));
    let caller = 5;
    let (item, root) = key_rooted_elsewhere(&o, &[0, caller]);
    assert_eq!(
        o.running("kv"),
        vec![0],
        "only the publisher's node runs it"
    );
    let put = o.eval(
        caller,
        &format!("peerlet.lookup(kbr.key('{item}'), 'kv'):put('colour', 'blue')"),
    );
    assert_eq!(put, Ok("true".to_string()));
    let running: BTreeSet<usize> = o.running("kv").into_iter().collect();
    assert_eq!(
        running,
        BTreeSet::from([0, root]),
        "deployed at the root by the call"
    );
    let get = o.eval(
        caller,
        &format!("peerlet.lookup(kbr.key('{item}'), 'kv'):get('colour')"),
    );
    assert_eq!(get, Ok("blue".to_string()));
    assert!(
        !o.running("kv").contains(&caller),
        "calling by name does not install the app on the caller"
    );
}

#[test]
fn an_ambiguous_name_names_both_publishers_and_how_to_choose() {
    let mut o = Overlay::new(10, 63, &ManagerConfig::default());
    let other = SigningKey::generate().unwrap();
    for m in &o.managers {
        m.0.borrow_mut()
            .set_trust(trusting(&[&o.publisher, &other]));
    }
    let first = o.publisher.clone();
    install_by(&mut o, &first, 0, &kv(1));
    install_by(&mut o, &other, 1, &kv(3));
    o.net.run_for(Duration::from_secs(1));
    let (a, b) = (first.public().key_id_hex(), other.public().key_id_hex());
    let err = o
        .eval(7, "peerlet.lookup(kbr.key('x'), 'kv'):get('x')")
        .unwrap_err();
    assert!(err.contains("ambiguous"), "{err}");
    assert!(err.contains(&a) && err.contains(&b), "names both: {err}");
    assert!(err.contains("/kv\")"), "says how to choose: {err}");
    let chosen = o.eval(
        7,
        &format!("peerlet.lookup(kbr.key('x'), '{b}/kv'):version()"),
    );
    assert_eq!(chosen, Ok("3".to_string()), "KEYID/name picks one");
    let chosen = o.eval(
        7,
        &format!("peerlet.lookup(kbr.key('x'), '{a}/kv'):version()"),
    );
    assert_eq!(chosen, Ok("1".to_string()));
}

#[test]
fn a_name_published_only_by_an_untrusted_key_says_which_key_to_trust() {
    let mut o = Overlay::new(8, 65, &ManagerConfig::default());
    o.install(0, &kv(1));
    o.net.run_for(Duration::from_secs(1));
    let caller = 4;
    o.managers[caller].0.borrow_mut().set_trust(trusting(&[]));
    let err = o
        .eval(caller, "peerlet.lookup(kbr.key('x'), 'kv'):get('x')")
        .unwrap_err();
    assert!(err.contains(&o.publisher.public().key_id_hex()), "{err}");
    assert!(
        err.contains("does not trust") && err.contains("--trust"),
        "{err}"
    );
    let err = o
        .eval(caller, "peerlet.lookup(kbr.key('x'), 'nothing'):get('x')")
        .unwrap_err();
    assert!(err.contains("no peerlet named `nothing`"), "{err}");
}

#[test]
fn a_missing_method_is_named_with_the_methods_there_are() {
    let mut o = Overlay::new(8, 67, &ManagerConfig::default());
    o.install(0, &kv(1));
    o.net.run_for(Duration::from_secs(1));
    let err = o
        .eval(3, "peerlet.lookup(kbr.key('x'), 'kv'):gte('x')")
        .unwrap_err();
    assert!(err.contains("no method `gte`"), "{err}");
    assert!(
        err.contains("get, put, version"),
        "lists the methods: {err}"
    );
}

#[test]
fn a_new_version_reaches_a_node_that_only_calls_the_old_one() {
    let cfg = ManagerConfig::default();
    let ttl = cfg.names.cache_ttl;
    let mut o = Overlay::new(12, 69, &cfg);
    o.install(0, &kv(1));
    o.net.run_for(Duration::from_secs(1));
    let caller = 6;
    let (item, root) = key_rooted_elsewhere(&o, &[0, caller]);
    let call = |m: &str| format!("peerlet.lookup(kbr.key('{item}'), 'kv'):{m}");
    assert_eq!(o.eval(caller, &call("put('k', 'kept')")), Ok("true".into()));
    assert_eq!(o.eval(caller, &call("version()")), Ok("1".into()));
    assert_eq!(version_at(&o, root), Some(1));

    o.install(0, &kv(2));
    o.net.run_for(ttl);
    assert_eq!(
        o.eval(caller, &call("version()")),
        Ok("2".into()),
        "the caller's call carries the new version within the cache's {ttl:?}"
    );
    assert_eq!(version_at(&o, root), Some(2), "the root upgraded");
    assert_eq!(
        o.eval(caller, &call("get('k')")),
        Ok("kept".into()),
        "with save/restore"
    );
    assert!(!o.running("kv").contains(&caller));
}

#[test]
fn a_node_running_an_old_version_upgrades_within_the_refresh_period() {
    let cfg = ManagerConfig::default();
    let bound =
        cfg.names.refresh + cfg.names.ask_timeout * cfg.names.attempts + Duration::from_secs(15);
    let mut o = Overlay::new(10, 71, &cfg);
    o.install(0, &kv(1));
    o.net.run_for(Duration::from_secs(1));
    let (item, root) = key_rooted_elsewhere(&o, &[0]);
    let put = format!("peerlet.lookup(kbr.key('{item}'), 'kv'):put('k', 'kept')");
    assert_eq!(o.eval(3, &put), Ok("true".into()));
    assert_eq!(version_at(&o, root), Some(1));

    // Version 2 on the publisher's node; nobody calls kv any more.
    o.install(0, &kv(2));
    let step = Duration::from_millis(500);
    let mut waited = Duration::ZERO;
    while version_at(&o, root) != Some(2) && waited < bound {
        o.net.run_for(step);
        waited += step;
    }
    assert_eq!(version_at(&o, root), Some(2), "upgraded within {bound:?}");
    let reports = o.reports(root);
    assert!(
        !reports.contains("restore"),
        "restore ran cleanly: {reports}"
    );
    let get = format!("peerlet.lookup(kbr.key('{item}'), 'kv'):get('k')");
    assert_eq!(o.eval(3, &get), Ok("kept".into()), "state kept");
}

#[test]
fn versions_shows_which_nodes_run_which_version() {
    let cfg = ManagerConfig::default();
    let mut o = Overlay::new(10, 73, &cfg);
    o.install(0, &kv(1));
    o.net.run_for(Duration::from_secs(1));
    let (item, root) = key_rooted_elsewhere(&o, &[0]);
    let put = format!("peerlet.lookup(kbr.key('{item}'), 'kv'):put('k', 1)");
    assert_eq!(o.eval(3, &put), Ok("true".into()));
    // Every node running kv says so within a check.
    o.net.run_for(cfg.names.refresh + Duration::from_secs(5));
    let text: Rc<RefCell<Option<Result<String, String>>>> = Rc::default();
    let out = text.clone();
    let m = o.managers[7].clone();
    o.net.with_node(7, |k, now| {
        m.0.borrow_mut().versions(
            &mut k.api(now),
            "kv",
            Box::new(move |r| *out.borrow_mut() = Some(r)),
        )
    });
    o.net
        .run_while_not(Duration::from_secs(10), Duration::from_millis(50), |_| {
            text.borrow().is_some()
        });
    let shown = text.borrow_mut().take().expect("answered").unwrap();
    assert!(shown.contains("newest version 1"), "{shown}");
    for node in [0, root] {
        let id = o.net.me(node).id.short(8);
        assert!(shown.contains(&id), "node {node} ({id}) listed: {shown}");
    }
    assert!(shown.contains("version 1:"), "{shown}");
}

#[test]
fn a_root_that_does_not_trust_the_publisher_says_who_must_trust_whom() {
    let mut o = Overlay::new(10, 75, &ManagerConfig::default());
    o.install(0, &kv(1));
    o.net.run_for(Duration::from_secs(1));
    let caller = 4;
    for (i, m) in o.managers.iter().enumerate() {
        if i != 0 && i != caller {
            m.0.borrow_mut().set_trust(trusting(&[]));
        }
    }
    // A key none of whose 3 replicas trusts the publisher.
    let trusting_nodes = [o.net.me(0).id, o.net.me(caller).id];
    let item = (0..1000)
        .map(|i| format!("item{i}"))
        .find(|item| {
            let key = Id::key(item);
            let root = o.index(&o.net.oracle().successor(&key).id);
            let set = o
                .net
                .with_node(root, |k, now| k.api(now).replica_set(&key, 3));
            set.len() == 3 && set.iter().all(|n| !trusting_nodes.contains(&n.id))
        })
        .expect("such a key");
    let err = o
        .eval(
            caller,
            &format!("peerlet.lookup(kbr.key('{item}'), 'kv'):get('k')"),
        )
        .unwrap_err();
    assert!(err.contains("refused by 3"), "every replica refused: {err}");
    assert!(err.contains("is not trusted"), "the cause: {err}");
    assert!(err.contains("--trust KEY.pub"), "the fix: {err}");
}

#[test]
fn code_that_cannot_be_fetched_is_reported_to_the_caller_with_where_it_was_sought() {
    let mut o = Overlay::new(14, 77, &ManagerConfig::default());
    o.install(0, &kv(1));
    o.net.run_for(Duration::from_secs(5));
    let code = o.locator(0, "kv");
    let code_holders: Vec<usize> = (0..14)
        .filter(|&i| {
            o.managers[i]
                .0
                .borrow()
                .code_store()
                .get(&code.hash)
                .is_some()
        })
        .collect();
    let name_holders: Vec<usize> = (0..14)
        .filter(|&i| {
            !o.managers[i]
                .0
                .borrow()
                .names()
                .store
                .records("kv")
                .is_empty()
        })
        .collect();
    let mut gone = code_holders.clone();
    gone.push(0);
    assert!(
        name_holders.iter().any(|n| !gone.contains(n)),
        "the seed keeps a name holder apart from the code's: {code_holders:?} {name_holders:?}"
    );
    for &i in &gone {
        o.net.crash(i);
    }
    o.net.run_for(Duration::from_secs(20));
    let live = o.net.live();
    let caller = *live.iter().find(|i| !gone.contains(i)).unwrap();
    let mut avoid = gone.clone();
    avoid.push(caller);
    let (item, _) = key_rooted_elsewhere(&o, &avoid);
    let err = o
        .eval(
            caller,
            &format!("peerlet.lookup(kbr.key('{item}'), 'kv'):get('k')"),
        )
        .unwrap_err();
    assert!(err.contains("could not be fetched"), "the cause: {err}");
    assert!(
        err.contains("code store") && err.contains("origin node"),
        "from where: {err}"
    );
    assert!(err.contains("install the peerlet again"), "the fix: {err}");
}
