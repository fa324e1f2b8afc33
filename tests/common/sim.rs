//! Simulated rings for tests: converged from the start, optionally with a
//! peerlet manager on every node.

use peerlet::chord::Config;
use peerlet::peerlet::{Manager, ManagerApp, ManagerConfig};
use peerlet::sim::{Rng, SimConfig, SimNet};

/// A converged ring of `n` nodes with random ids and successor lists of 4.
pub fn converged(n: usize, seed: u64) -> (SimNet, Rng) {
    let mut rng = Rng::new(seed);
    let chord = Config {
        successors: 4,
        ..Config::default()
    };
    let mut net = SimNet::new(SimConfig {
        seed,
        chord,
        ..SimConfig::default()
    });
    for _ in 0..n {
        net.add_node(rng.id());
    }
    net.install_converged();
    (net, rng)
}

/// A converged ring with a peerlet manager (configured by `cfg`) as every
/// node's default application; the managers in node order.
pub fn with_managers(n: usize, seed: u64, cfg: &ManagerConfig) -> (SimNet, Vec<ManagerApp>, Rng) {
    let (mut net, rng) = converged(n, seed);
    let mut managers = Vec::new();
    for i in 0..n {
        let m = ManagerApp::new(Manager::new(cfg.clone()));
        let app = m.clone();
        net.with_node(i, move |k, _| k.set_default_app(Box::new(app)));
        managers.push(m);
    }
    (net, managers, rng)
}

/// Installs `source` as the unsigned peerlet `name` on each node of
/// `nodes`; its app id (the same on every node).
pub fn install_on(
    net: &mut SimNet,
    managers: &[ManagerApp],
    nodes: &[usize],
    name: &str,
    source: &str,
) -> peerlet::id::AppId {
    let mut app = None;
    for &i in nodes {
        let m = managers[i].clone();
        let chunk = format!("{name}.lua");
        let id = net.with_node(i, |k, now| {
            m.0.borrow_mut()
                .install_local(&mut k.api(now), &chunk, source.as_bytes())
        });
        app = Some(id.unwrap_or_else(|e| panic!("{name} installs: {e}")));
    }
    app.expect("at least one node")
}

/// Routes a Lua value (given as CBOR) for `app` from node `from` to `key`.
pub fn route_value(
    net: &mut SimNet,
    from: usize,
    key: peerlet::id::Id,
    app: peerlet::id::AppId,
    app_type: peerlet::wire::AppType,
    value: &ciborium::Value,
) {
    let msg = super::values::app_message(app, app_type, value);
    net.with_node(from, |k, now| k.api(now).route(key, msg, None));
}

/// A benign peerlet: counts what it is delivered in its store, answers
/// `ping` with `pong`.
pub const BENIGN: &str = r#"
local P = {}
function P.deliver(key, msg, from)
  store.put("delivered", (store.get("delivered") or 0) + 1)
end
function P.ping() return "pong" end
return P
"#;

/// Types each `(node, line)` at that node's console (all at the same
/// instant) and runs the ring until every line has its outcome or `limit`
/// of virtual time passed. Outcomes in input order; a line still waiting at
/// the limit comes back as an error saying so.
pub fn eval_many(
    net: &mut SimNet,
    managers: &[ManagerApp],
    lines: &[(usize, String)],
    limit: std::time::Duration,
) -> Vec<Result<String, String>> {
    use std::cell::RefCell;
    use std::rc::Rc;
    type Slot = Rc<RefCell<Option<Result<String, String>>>>;
    let slots: Vec<Slot> = lines
        .iter()
        .map(|(i, code)| {
            let slot = Rc::new(RefCell::new(None));
            let out = slot.clone();
            let m = managers[*i].clone();
            net.with_node(*i, |k, now| {
                m.0.borrow_mut().console_eval(
                    &mut k.api(now),
                    code,
                    Box::new(move |r| *out.borrow_mut() = Some(r)),
                )
            });
            slot
        })
        .collect();
    net.run_while_not(limit, std::time::Duration::from_millis(50), |_| {
        slots.iter().all(|s| s.borrow().is_some())
    });
    slots
        .iter()
        .zip(lines)
        .map(|(s, (i, code))| {
            s.borrow_mut()
                .take()
                .unwrap_or_else(|| Err(format!("node {i}: `{code}` still waiting")))
        })
        .collect()
}
