//! Peerlets on a simulated ring: end-node and per-hop upcalls, app
//! isolation, remote method calls through `peerlet.lookup`, timers, the
//! store, and reload with state.

mod common;

use common::values::{app_message, count, decode_stored};

use std::time::Duration;

use peerlet::id::{AppId, Id};
use peerlet::peerlet::{ManagerApp, ManagerConfig};
use peerlet::sim::{Rng, SimNet};
use peerlet::wire::AppType;

struct Ring {
    net: SimNet,
    managers: Vec<ManagerApp>,
    rng: Rng,
}

fn ring(n: usize, seed: u64, cfg: ManagerConfig) -> Ring {
    let (net, managers, rng) = common::sim::with_managers(n, seed, &cfg);
    Ring { net, managers, rng }
}

impl Ring {
    /// Installs `source` on the given nodes; returns its app id.
    fn install(&mut self, nodes: &[usize], name: &str, source: &str) -> AppId {
        common::sim::install_on(&mut self.net, &self.managers, nodes, name, source)
    }

    fn all(&self) -> Vec<usize> {
        (0..self.net.len()).collect()
    }

    /// Routes a Lua value (given as CBOR) to `key` from node `from`.
    fn route(
        &mut self,
        from: usize,
        key: Id,
        app: AppId,
        app_type: AppType,
        value: &ciborium::Value,
    ) {
        common::sim::route_value(&mut self.net, from, key, app, app_type, value);
    }

    /// Sends a Lua value (given as CBOR) to app `app` on node `i` itself.
    fn send_to_self(&mut self, i: usize, app: AppId, value: &ciborium::Value) {
        let me = self.net.me(i);
        let msg = app_message(app, AppType::EndNode, value);
        self.net.with_node(i, |k, now| k.api(now).send(me, msg));
    }

    /// A value in a peerlet's store on node `i`, decoded.
    fn stored(&self, i: usize, name: &str, key: &str) -> Option<ciborium::Value> {
        let m = self.managers[i].0.borrow();
        Some(decode_stored(&m.by_name(name)?.store_get(key)?))
    }

    fn stored_int(&self, i: usize, name: &str, key: &str) -> i128 {
        count(self.stored(i, name, key))
    }

    fn index_of(&self, id: &Id) -> usize {
        (0..self.net.len())
            .find(|&i| self.net.me(i).id == *id)
            .unwrap()
    }
}

fn text(s: &str) -> ciborium::Value {
    ciborium::Value::Text(s.into())
}

fn map(pairs: &[(&str, ciborium::Value)]) -> ciborium::Value {
    ciborium::Value::Map(pairs.iter().map(|(k, v)| (text(k), v.clone())).collect())
}

const COUNTER: &str = r#"
local P = {}
function P.deliver(key, msg, from)
  store.put("delivered", (store.get("delivered") or 0) + 1)
end
return P
"#;

#[test]
fn an_end_node_peerlet_runs_at_the_root_only() {
    let mut r = ring(16, 1, ManagerConfig::default());
    let all = r.all();
    let app = r.install(&all, "counter", COUNTER);
    let oracle = r.net.oracle();
    let mut want = vec![0i128; 16];
    for k in 0..40 {
        let key = r.rng.id();
        want[r.index_of(&oracle.successor(&key).id)] += 1;
        r.route(k % 16, key, app, AppType::EndNode, &text("hi"));
    }
    r.net.run_for(Duration::from_secs(3));
    let got: Vec<i128> = (0..16)
        .map(|i| r.stored_int(i, "counter", "delivered"))
        .collect();
    assert_eq!(got, want);
}

const HOPS: &str = r#"--@peerlet name=hops type=per-hop
local P = {}
function P.forward(key, msg, next_hop)
  store.put("seen", (store.get("seen") or 0) + 1)
  if msg.stop then return false end
  if msg.via and next_hop.id ~= kbr.id().id and not msg.detoured then
    msg.detoured = true
    return msg, msg.via
  end
end
function P.deliver(key, msg, from)
  store.put("delivered", (store.get("delivered") or 0) + 1)
  if msg.detoured then store.put("detoured", true) end
end
return P
"#;

#[test]
fn a_per_hop_peerlet_sees_every_hop_and_can_reroute_and_stop() {
    let mut r = ring(32, 2, ManagerConfig::default());
    let all = r.all();
    let app = r.install(&all, "hops", HOPS);
    let key = r.rng.id();
    r.route(3, key, app, AppType::PerHop, &map(&[("n", 1.into())]));
    r.net.run_for(Duration::from_secs(3));
    let seen: i128 = (0..32).map(|i| r.stored_int(i, "hops", "seen")).sum();
    let root = r.index_of(&r.net.oracle().successor(&key).id);
    assert_eq!(r.stored_int(root, "hops", "delivered"), 1);
    assert!(seen >= 2, "source and root at least: {seen}");

    // Stop: forward() at the source returns false; nothing is delivered.
    let before: i128 = (0..32).map(|i| r.stored_int(i, "hops", "delivered")).sum();
    let key = r.rng.id();
    r.route(5, key, app, AppType::PerHop, &map(&[("stop", true.into())]));
    r.net.run_for(Duration::from_secs(3));
    let after: i128 = (0..32).map(|i| r.stored_int(i, "hops", "delivered")).sum();
    assert_eq!(before, after);

    // Re-route: the source sends it via node 9 first; it still reaches the root, changed.
    let via = r.net.me(9);
    let node = map(&[
        ("id", text(&via.id.to_string())),
        ("addr", text(&via.addr.to_string())),
    ]);
    let key = r.rng.id();
    let seen9 = r.stored_int(9, "hops", "seen");
    r.route(5, key, app, AppType::PerHop, &map(&[("via", node)]));
    r.net.run_for(Duration::from_secs(3));
    assert!(
        r.stored_int(9, "hops", "seen") > seen9,
        "the detour node saw it"
    );
    let root = r.index_of(&r.net.oracle().successor(&key).id);
    assert_eq!(
        r.stored(root, "hops", "detoured"),
        Some(ciborium::Value::Bool(true))
    );
}

#[test]
fn peerlets_with_different_app_ids_never_see_each_others_messages() {
    let mut r = ring(12, 3, ManagerConfig::default());
    let all = r.all();
    let a = r.install(&all, "alpha", COUNTER);
    let b = r.install(&all, "beta", COUNTER);
    assert_ne!(a, b);
    for k in 0..10 {
        let key = r.rng.id();
        r.route(k, key, a, AppType::EndNode, &text("a"));
    }
    for k in 0..4 {
        let key = r.rng.id();
        r.route(k, key, b, AppType::EndNode, &text("b"));
    }
    r.net.run_for(Duration::from_secs(3));
    let sum = |name: &str| -> i128 { (0..12).map(|i| r.stored_int(i, name, "delivered")).sum() };
    assert_eq!(sum("alpha"), 10);
    assert_eq!(sum("beta"), 4);
}

const KV: &str = r#"
local P = {}
local data = {}
function P.put(k, v) data[k] = v return true end
function P.get(k) return data[k] end
function P.deliver(key, msg, from)
  if msg.op == "run" then
    local h = peerlet.lookup(kbr.key(msg.k))
    h:put(msg.k, msg.v)
    store.put("result", h:get(msg.k))
    local ok, err = pcall(function() return h:nosuch() end)
    store.put("missing", err)
    local other = peerlet.lookup(kbr.key(msg.k), "00000000000000000000000000000000")
    ok, err = pcall(function() return other:get("x") end)
    store.put("noapp", err)
  elseif msg.op == "timeout" then
    local ok, err = pcall(function() return peerlet.lookup(kbr.key("t")):get("x") end)
    store.put("timeout", err)
  end
end
return P
"#;

#[test]
fn lookup_handles_call_methods_on_remote_peerlets_and_fail_cleanly() {
    let mut r = ring(20, 4, ManagerConfig::default());
    let all = r.all();
    let app = r.install(&all, "kv", KV);
    let msg = map(&[
        ("op", text("run")),
        ("k", text("colour")),
        ("v", text("blue")),
    ]);
    r.send_to_self(0, app, &msg);
    r.net.run_for(Duration::from_secs(5));
    assert_eq!(r.stored(0, "kv", "result"), Some(text("blue")));
    let missing = format!("{:?}", r.stored(0, "kv", "missing"));
    assert!(missing.contains("has no method `nosuch`"), "{missing}");
    let noapp = format!("{:?}", r.stored(0, "kv", "noapp"));
    assert!(noapp.contains("no peerlet with app id"), "{noapp}");
}

#[test]
fn a_lookup_call_that_gets_no_answer_times_out() {
    let cfg = ManagerConfig {
        call_timeout: Duration::from_secs(2),
        ..ManagerConfig::default()
    };
    let mut r = ring(10, 5, cfg);
    let all = r.all();
    let app = r.install(&all, "kv", KV);
    // Every other node dies: the call's root never answers.
    let key = Id::key("t");
    assert_ne!(
        r.index_of(&r.net.oracle().successor(&key).id),
        0,
        "seed gives a remote root"
    );
    for i in 1..10 {
        r.net.crash(i);
    }
    r.send_to_self(0, app, &map(&[("op", text("timeout"))]));
    r.net.run_for(Duration::from_secs(30));
    let err = format!("{:?}", r.stored(0, "kv", "timeout"));
    assert!(err.contains("timed out after 2 s"), "{err}");
}

const TICKS: &str = r#"
local P = {}
function P.init()
  local n = 0
  local t
  t = timer.every(1, function()
    n = n + 1
    store.put("ticks", n)
    if n == 3 then timer.cancel(t) end
  end)
  timer.after(0.5, function() store.put("once", clock.now()) end)
end
function P.save() return { ticks = store.get("ticks"), note = "kept" } end
function P.restore(state) store.put("restored", state.note) end
return P
"#;

#[test]
fn timers_fire_and_reload_hands_state_over() {
    let mut r = ring(4, 6, ManagerConfig::default());
    r.install(&[0], "ticks", TICKS);
    r.net.run_for(Duration::from_secs(10));
    assert_eq!(r.stored_int(0, "ticks", "ticks"), 3);
    assert!(r.stored(0, "ticks", "once").is_some());
    let m = r.managers[0].clone();
    let newer = TICKS.replace(
        "return P\n",
        "function P.version() return 2 end\nreturn P\n",
    );
    r.net
        .with_node(0, |k, now| {
            m.0.borrow_mut()
                .reload(&mut k.api(now), "ticks", newer.as_bytes())
        })
        .unwrap();
    assert_eq!(r.stored(0, "ticks", "restored"), Some(text("kept")));
    // A broken reload leaves the old version running.
    let err = r.net.with_node(0, |k, now| {
        m.0.borrow_mut()
            .reload(&mut k.api(now), "ticks", b"this is not lua")
    });
    assert!(err.is_err());
    assert!(r.managers[0]
        .0
        .borrow()
        .by_name("ticks")
        .unwrap()
        .source()
        .starts_with(newer.as_bytes()));
}

#[test]
fn store_survives_a_restart() {
    let dir = std::env::temp_dir().join(format!("peerlet-store-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cfg = ManagerConfig {
        data_dir: Some(dir.clone()),
        ..ManagerConfig::default()
    };
    let mut r = ring(3, 7, cfg.clone());
    let app = r.install(&[0, 1, 2], "counter", COUNTER);
    let own = r.net.me(0).id;
    for _ in 0..5 {
        r.route(0, own, app, AppType::EndNode, &text("x"));
    }
    r.net.run_for(Duration::from_secs(2));
    assert_eq!(r.stored_int(0, "counter", "delivered"), 5);
    drop(r);
    // A new node process (a fresh manager) with the same data directory.
    let mut r = ring(3, 7, cfg);
    r.install(&[0], "counter", COUNTER);
    assert_eq!(r.stored_int(0, "counter", "delivered"), 5);
    std::fs::remove_dir_all(&dir).unwrap();
}
