//! Deployment by traffic refuses what it must: tampered code or signature,
//! unknown publishers, renamed packages, app ids claimed by another key,
//! oversize code, lying origins; refusing nodes pass end-node messages to
//! the next replica; versions only go forward; queues are bounded.

mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use ciborium::Value;
use common::deploy::{package, trusting, Liar, Overlay};
use peerlet::id::{AppId, Id};
use peerlet::package::refusal::RefusalReason;
use peerlet::package::secret_key::SigningKey;
use peerlet::package::trust::TrustPolicy;
use peerlet::peerlet::code_store::CODE_APP;
use peerlet::peerlet::ManagerConfig;
use peerlet::wire::{AppType, CodeLocator};
use sha2::{Digest, Sha256};

fn counter(name: &str, version: u32, kind: &str) -> String {
    format!(
        "--@peerlet name={name} type={kind} version={version}\n\
         local P = {{}}\n\
         function P.deliver(key, msg, from)\n\
           store.put('n', (store.get('n') or 0) + 1)\n\
           store.put('v', {version})\n\
           if msg.seq then\n\
             if msg.seq <= (store.get('last') or 0) then store.put('disorder', 1) end\n\
             store.put('last', msg.seq)\n\
           end\n\
         end\n\
         function P.undelivered(key, msg, reason)\n\
           store.put('undelivered', (store.get('undelivered') or 0) + 1)\n\
         end\n\
         function P.save() return store.get('n') end\n\
         function P.restore(n) store.put('restored', n) end\n\
         return P\n"
    )
}

fn seq(n: i64) -> Value {
    Value::Map(vec![(Value::Text("seq".into()), Value::Integer(n.into()))])
}

fn hash(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// A key whose root is none of `avoid`.
fn key_not_at(o: &Overlay, avoid: &[usize], salt: &str) -> (Id, usize) {
    let oracle = o.net.oracle();
    (0..)
        .map(|i| Id::key(format!("{salt}{i}")))
        .map(|k| (k, o.index(&oracle.successor(&k).id)))
        .find(|(_, r)| !avoid.contains(r))
        .unwrap()
}

/// Flips one base64 character of the signature line (line 2).
fn tamper_signature(sig: &str) -> String {
    let mut lines: Vec<String> = sig.lines().map(String::from).collect();
    let line = &mut lines[1];
    let c = line.as_bytes()[20];
    let swapped = if c == b'A' { "B" } else { "A" };
    line.replace_range(20..21, swapped);
    lines.join("\n") + "\n"
}

struct Case {
    what: &'static str,
    bytes: Vec<u8>,
    /// The app id the message claims.
    app: AppId,
    /// The locator's hash (that of `bytes`, unless the origin lies).
    hash: [u8; 32],
    size: u64,
    reason: RefusalReason,
    says: &'static str,
}

#[test]
fn bad_code_is_refused_with_a_reason_and_nothing_runs() {
    let mut o = Overlay::new(12, 53, &ManagerConfig::default());
    let attacker = SigningKey::generate().unwrap();
    let stranger = SigningKey::generate().unwrap();
    // The attacker is even trusted: its own code would run, under its own app id.
    for m in &o.managers {
        m.0.borrow_mut()
            .set_trust(trusting(&[&o.publisher, &attacker]));
    }
    let good = counter("counter", 1, "end-node");
    let app = o.install(0, &good);
    o.net.run_for(Duration::from_secs(1));
    let sign = |k: &SigningKey, text: &str| {
        peerlet::package::signing::sign_source(k, text.as_bytes(), "x.lua").unwrap()
    };
    let pack = |text: &str, sig: &str| {
        peerlet::package::Package::parse(text.as_bytes(), sig)
            .unwrap()
            .encoded()
            .to_vec()
    };
    let good_sig = sign(&o.publisher, &good);
    let case = |what, bytes: Vec<u8>, app, reason, says| Case {
        what,
        hash: hash(&bytes),
        size: bytes.len() as u64,
        bytes,
        app,
        reason,
        says,
    };
    let tampered = good.replace("+ 1", "+ 2");
    let renamed = good.replace("name=counter", "name=kounter");
    let retyped = good.replace("type=end-node", "type=per-hop");
    let mut cases = vec![
        case(
            "tampered code",
            pack(&tampered, &good_sig),
            app,
            RefusalReason::BadSignature,
            "signature",
        ),
        case(
            "tampered signature",
            pack(&good, &tamper_signature(&good_sig)),
            app,
            RefusalReason::BadSignature,
            "signature",
        ),
        case(
            "unknown publisher",
            package(&stranger, &good),
            AppId::derive(stranger.public().ed25519(), "counter"),
            RefusalReason::UnknownPublisher,
            "not trusted",
        ),
        case(
            "renamed package",
            pack(&renamed, &good_sig),
            AppId::derive(o.publisher.public().ed25519(), "kounter"),
            RefusalReason::BadSignature,
            "signature",
        ),
        case(
            "app type changed",
            pack(&retyped, &good_sig),
            app,
            RefusalReason::BadSignature,
            "signature",
        ),
        case(
            "app id claimed by another key",
            package(&attacker, &good),
            app,
            RefusalReason::AppIdMismatch,
            "app id",
        ),
    ];
    // A lying origin: the locator names the good code, the origin sends other bytes.
    let mut lie = case(
        "hash mismatch from a lying origin",
        package(&attacker, &counter("counter", 9, "end-node")),
        app,
        RefusalReason::HashMismatch,
        "but the code locator names",
    );
    lie.hash = hash(&package(&o.publisher, &counter("counter", 9, "end-node")));
    cases.push(lie);
    // Oversize: refused from the locator alone, nothing fetched.
    let mut big = case(
        "oversize package",
        vec![0; 16],
        app,
        RefusalReason::Oversize,
        "limit",
    );
    big.size = 10 << 20;
    cases.push(big);

    for (i, c) in cases.iter().enumerate() {
        let liar = 1 + i % 3;
        let asked = Rc::new(Cell::new(0));
        let handler = Liar {
            bytes: c.bytes.clone(),
            asked: asked.clone(),
        };
        o.net.register_app(liar, CODE_APP, Box::new(handler));
        let (key, root) = key_not_at(&o, &[0, 1, 2, 3], c.what);
        let refused_before = refusals(&o, c.reason);
        let undelivered_before = o.counter(0, "counter", "undelivered");
        let code = CodeLocator {
            hash: c.hash,
            size: c.size,
            origin: Some(o.net.me(liar)),
        };
        o.route(0, key, c.app, AppType::EndNode, &code, seq(1));
        o.net.run_for(Duration::from_secs(30));
        let what = c.what;
        assert!(
            refusals(&o, c.reason) > refused_before,
            "{what}: refusal counted as {}",
            c.reason.label()
        );
        let reports = o.reports(root);
        assert!(
            reports.to_lowercase().contains(c.says),
            "{what}: the root says why ({}):\n{reports}",
            c.says
        );
        if c.reason == RefusalReason::Oversize {
            assert_eq!(asked.get(), 0, "{what}: nothing fetched");
        }
        // Nothing of it runs anywhere; the legitimate app runs only at its origin.
        assert_eq!(o.running("counter"), vec![0], "{what}");
        assert!(o.running("kounter").is_empty(), "{what}");
        for (n, m) in o.managers.iter().enumerate() {
            let m = m.0.borrow();
            assert_eq!(m.peerlets().count(), usize::from(n == 0), "{what} at {n}");
        }
        if c.app == app {
            assert_eq!(
                o.counter(0, "counter", "undelivered"),
                undelivered_before + 1,
                "{what}: the sender learns its message went nowhere"
            );
        } else {
            assert!(o.reports(0).contains("not delivered"), "{what}");
        }
        o.net.register_app(
            liar,
            CODE_APP,
            Box::new(Liar {
                bytes: Vec::new(),
                asked,
            }),
        );
        o.net.with_node(liar, |k, _| k.unregister(&CODE_APP));
    }

    // The nodes kept serving: the real code still deploys and runs.
    let (key, root) = key_not_at(&o, &[0], "after");
    let code = o.locator(0, "counter");
    o.route(0, key, app, AppType::EndNode, &code, seq(1));
    o.net.run_for(Duration::from_secs(5));
    assert_eq!(o.counter(root, "counter", "n"), 1);
}

fn refusals(o: &Overlay, reason: RefusalReason) -> u64 {
    o.managers
        .iter()
        .map(|m| m.0.borrow().trust().refusals().get(reason))
        .sum()
}

#[test]
fn a_refusing_root_passes_end_node_messages_to_the_next_replica() {
    let mut o = Overlay::new(12, 59, &ManagerConfig::default());
    let app = o.install(0, &counter("counter", 1, "end-node"));
    let code = o.locator(0, "counter");
    o.net.run_for(Duration::from_secs(1));
    let (key, root) = key_not_at(&o, &[0], "refuse");
    let replicas: Vec<usize> = o
        .net
        .oracle()
        .successors_of(&o.net.me(root).id, 3)
        .iter()
        .map(|n| o.index(&n.id))
        .collect();
    let next = replicas[0];
    // The root trusts nobody.
    o.managers[root]
        .0
        .borrow_mut()
        .set_trust(TrustPolicy::new());
    for s in 1..=2 {
        o.route(0, key, app, AppType::EndNode, &code, seq(s));
        o.net.run_for(Duration::from_secs(5));
    }
    assert!(o.running("counter").contains(&next));
    assert!(!o.running("counter").contains(&root));
    assert_eq!(
        o.counter(next, "counter", "n"),
        2,
        "both at the next replica"
    );
    let m = o.managers[root].0.borrow();
    assert_eq!(
        m.trust().refusals().get(RefusalReason::UnknownPublisher),
        1,
        "refused once; the second message was passed on without a fetch"
    );
    drop(m);

    // When every replica refuses, the sender hears of it.
    let (key, root) = key_not_at(&o, &[0, next, root], "all refuse");
    let mut set = vec![root];
    set.extend(
        o.net
            .oracle()
            .successors_of(&o.net.me(root).id, 2)
            .iter()
            .map(|n| o.index(&n.id)),
    );
    if set.contains(&0) {
        return; // the seed makes the sender a replica; the first part still ran
    }
    for &r in &set {
        o.managers[r].0.borrow_mut().set_trust(TrustPolicy::new());
    }
    o.route(0, key, app, AppType::EndNode, &code, seq(1));
    o.net.run_for(Duration::from_secs(10));
    assert_eq!(o.counter(0, "counter", "undelivered"), 1);
    assert!(
        o.reports(0).contains("refused by 3 node(s)"),
        "all three replicas tried: {}",
        o.reports(0)
    );
    for &r in &set {
        assert!(!o.running("counter").contains(&r));
    }
}

#[test]
fn a_newer_version_replaces_the_old_one_by_traffic_an_older_never_does() {
    let mut o = Overlay::new(10, 61, &ManagerConfig::default());
    let app = o.install(0, &counter("counter", 1, "end-node"));
    let v1 = o.locator(0, "counter");
    o.net.run_for(Duration::from_secs(1));
    let (key, root) = key_not_at(&o, &[0], "update");
    o.route(0, key, app, AppType::EndNode, &v1, seq(1));
    o.net.run_for(Duration::from_secs(3));
    assert_eq!(o.counter(root, "counter", "v"), 1);

    assert_eq!(o.install(0, &counter("counter", 2, "end-node")), app);
    let v2 = o.locator(0, "counter");
    o.route(0, key, app, AppType::EndNode, &v2, seq(2));
    o.net.run_for(Duration::from_secs(3));
    let version = |o: &Overlay| {
        o.managers[root]
            .0
            .borrow()
            .by_name("counter")
            .unwrap()
            .version
    };
    assert_eq!(version(&o), 2);
    assert_eq!(o.counter(root, "counter", "v"), 2, "v2 delivered it");
    assert_eq!(
        o.counter(root, "counter", "restored"),
        1,
        "state handed over"
    );

    // A message still naming v1 runs on v2.
    o.route(0, key, app, AppType::EndNode, &v1, seq(3));
    o.net.run_for(Duration::from_secs(3));
    assert_eq!(version(&o), 2);
    assert_eq!(o.counter(root, "counter", "n"), 2);
    assert_eq!(o.counter(root, "counter", "last"), 3);
}

#[test]
fn concurrent_messages_share_one_fetch_wait_in_order_and_the_queue_is_bounded() {
    let mut cfg = ManagerConfig::default();
    cfg.deploy.queue = 4;
    let mut o = Overlay::new(10, 67, &cfg);
    let app = o.install(0, &counter("counter", 1, "end-node"));
    let code = o.locator(0, "counter");
    o.net.run_for(Duration::from_secs(1));
    // A root that keeps no copy of the package for the code store, so the
    // code takes a fetch over the network and the messages have to wait.
    let mut avoid: Vec<usize> = (0..10)
        .filter(|&i| {
            let m = o.managers[i].0.borrow();
            m.code_store().get(&code.hash).is_some()
        })
        .collect();
    assert_eq!(avoid.len(), 3, "three copies in the store");
    avoid.push(0);
    let (key, root) = key_not_at(&o, &avoid, "queue");
    for s in 1..=6 {
        o.route(0, key, app, AppType::EndNode, &code, seq(s));
    }
    o.net.run_for(Duration::from_secs(5));
    assert_eq!(o.counter(root, "counter", "n"), 4, "the queue holds 4");
    assert_eq!(o.counter(root, "counter", "disorder"), 0, "in order");
    let m = o.managers[root].0.borrow();
    assert_eq!(m.deployer().dropped(), 2);
    let d: Vec<_> = m.deployer().deployments().collect();
    assert_eq!((d.len(), d[0].attempts), (1, 1), "one fetch, one request");
    assert!(o.reports(root).contains("already wait"));
}

#[test]
fn code_that_cannot_be_fetched_is_given_up_and_the_sender_told() {
    let mut o = Overlay::new(10, 71, &ManagerConfig::default());
    let app = o.install(0, &counter("counter", 1, "end-node"));
    o.net.run_for(Duration::from_secs(1));
    let (key, root) = key_not_at(&o, &[0], "nowhere");
    let code = CodeLocator {
        hash: [7; 32],
        size: 100,
        origin: None,
    };
    o.route(0, key, app, AppType::EndNode, &code, seq(1));
    o.net.run_for(Duration::from_secs(60));
    assert!(o.running("counter") == vec![0]);
    assert!(o
        .reports(root)
        .contains("could not be fetched from the code store"));
    assert!(o.reports(root).contains(": 6 request(s)"));
    assert_eq!(o.counter(0, "counter", "undelivered"), 1);
    assert_eq!(o.managers[root].0.borrow().deployer().fetching(), 0);
}
