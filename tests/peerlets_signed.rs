//! Signed peerlets on a node: only trusted publishers' code runs, the app id
//! is bound to the publisher's key and the signed name, tampering and old
//! versions are refused, and a signed peerlet's messages carry the code
//! locator other nodes will fetch its code by.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use peerlet::id::{AppId, Id};
use peerlet::kbr::{Api, Application};
use peerlet::package::secret_key::SigningKey;
use peerlet::package::signing::sign_source;
use peerlet::package::trust::TrustPolicy;
use peerlet::peerlet::ManagerConfig;
use peerlet::wire::{Body, RoutedMessage};

fn source(version: u32, kind: &str) -> String {
    format!(
        "--@peerlet name=greeter type={kind} version={version}\n\
         local P = {{}}\n\
         function P.init() kbr.route(kbr.key(\"somewhere\"), {{ v = {version} }}) end\n\
         function P.deliver(key, msg, from) store.put(\"v\", msg.v) end\n\
         return P\n"
    )
}

fn signed(key: &SigningKey, text: &str) -> String {
    sign_source(key, text.as_bytes(), "greeter.lua").unwrap()
}

/// Sees every message on a node, whatever its app (as the KBR layer's
/// default application would, on a node without the peerlet).
struct Watch(Rc<RefCell<Vec<RoutedMessage>>>);

impl Application for Watch {
    fn deliver(&mut self, _api: &mut Api<'_>, msg: &RoutedMessage) {
        self.0.borrow_mut().push(msg.clone());
    }
}

#[test]
fn only_trusted_signed_code_runs_and_its_messages_carry_the_code_locator() {
    let key = SigningKey::generate().unwrap();
    let stranger = SigningKey::generate().unwrap();
    let (mut net, managers, _) = common::sim::with_managers(6, 21, &ManagerConfig::default());
    let mut policy = TrustPolicy::new();
    policy.trust(key.public().clone());
    managers[0].0.borrow_mut().set_trust(policy);
    // Every other node only watches what arrives.
    let seen = Rc::new(RefCell::new(Vec::new()));
    for i in 1..6 {
        let w = Watch(seen.clone());
        net.with_node(i, move |k, _| k.set_default_app(Box::new(w)));
    }
    let m = managers[0].clone();
    let install = |net: &mut peerlet::sim::SimNet, text: &str, sig: &str| {
        net.with_node(0, |k, now| {
            m.0.borrow_mut()
                .install_signed(&mut k.api(now), text.as_bytes(), sig)
        })
    };

    // A stranger's signature: refused, nothing installed, the refusal counted.
    let v1 = source(1, "end-node");
    let err = install(&mut net, &v1, &signed(&stranger, &v1))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("publisher") || err.contains("trusted"),
        "{err}"
    );
    assert_eq!(managers[0].0.borrow().peerlets().count(), 0);
    assert!(managers[0].0.borrow().trust().refusals().total() >= 1);

    // Tampered code: refused.
    let tampered = v1.replace("store.put", "store.remove");
    let err = install(&mut net, &tampered, &signed(&key, &v1))
        .unwrap_err()
        .to_string();
    assert!(err.to_lowercase().contains("signature"), "{err}");

    // The real thing: installed under the publisher-bound app id.
    let app = install(&mut net, &v1, &signed(&key, &v1)).unwrap();
    assert_eq!(app, AppId::derive(key.public().ed25519(), "greeter"));
    net.run_for(Duration::from_secs(2));
    let root = net.oracle().successor(&Id::key("somewhere"));
    let m0 = managers[0].0.borrow();
    let greeter = m0.by_name("greeter").unwrap();
    let locator = greeter
        .code
        .clone()
        .expect("a signed peerlet has a code locator");
    assert_eq!(locator.origin, Some(net.me(0)));
    assert_eq!(
        m0.package(&locator.hash).map(|p| p.len() as u64),
        Some(locator.size)
    );
    drop(m0);
    assert_ne!(
        root.id,
        net.me(0).id,
        "the seed puts the key's root on another node"
    );
    {
        let seen = seen.borrow();
        let msg = seen
            .iter()
            .find(|m| m.key == Id::key("somewhere"))
            .expect("init() routed a message");
        let Body::App(a) = &msg.body else { panic!() };
        assert_eq!(
            a.code.as_ref(),
            Some(&locator),
            "the message carries the code locator"
        );
    }

    // A newer version replaces it; an older one never does.
    let v2 = source(2, "end-node");
    install(&mut net, &v2, &signed(&key, &v2)).unwrap();
    assert_eq!(
        managers[0].0.borrow().by_name("greeter").unwrap().version,
        2
    );
    let err = install(&mut net, &v1, &signed(&key, &v1))
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not replace"), "{err}");
    assert_eq!(
        managers[0].0.borrow().by_name("greeter").unwrap().version,
        2
    );

    // A node that runs no per-hop code refuses a per-hop peerlet.
    let mut strict = TrustPolicy::new();
    strict.trust(key.public().clone());
    strict.set_run_per_hop(false);
    managers[0].0.borrow_mut().set_trust(strict);
    let hop = source(3, "per-hop");
    let err = install(&mut net, &hop, &signed(&key, &hop))
        .unwrap_err()
        .to_string();
    assert!(err.contains("per-hop"), "{err}");
}

/// `peerlet node --load FILE.lua` with `FILE.lua.minisig` beside it: refused
/// (exit status 1, reason on stderr) unless `--trust` names the publisher.
#[test]
fn a_node_loads_signed_code_only_from_trusted_publishers() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let dir = std::env::temp_dir().join(format!("peerlet-signed-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let key = SigningKey::generate().unwrap();
    let text = source(1, "end-node");
    let file = dir.join("greeter.lua");
    std::fs::write(&file, &text).unwrap();
    std::fs::write(dir.join("greeter.lua.minisig"), signed(&key, &text)).unwrap();
    let pub_file = dir.join("publisher.pub");
    std::fs::write(&pub_file, key.public().to_pub_text()).unwrap();
    let bin = env!("CARGO_BIN_EXE_peerlet");

    let out = Command::new(bin)
        .args(["node", "--listen", "127.0.0.1:0", "--load"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not trusted"), "{stderr}");

    let mut child = Command::new(bin)
        .args(["node", "--listen", "127.0.0.1:0", "--trust"])
        .arg(&pub_file)
        .arg("--load")
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(line.starts_with("listening "), "{line}");
    std::fs::remove_dir_all(&dir).unwrap();
}
