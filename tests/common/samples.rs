//! The sample peerlets of `peerlets/` on a simulated ring, driven the way a
//! person drives them: Lua lines typed at a node's console (which call the
//! samples through `peerlet.lookup` handles), answered in virtual time.

use std::time::Duration;

use peerlet::id::{AppId, Id};
use peerlet::kbr::Application;
use peerlet::peerlet::{Manager, ManagerApp, ManagerConfig};
use peerlet::sim::{Rng, SimNet};

use super::values::decode_stored;

/// The source of `peerlets/NAME.lua`.
pub fn source(name: &str) -> String {
    let path = format!("{}/peerlets/{name}.lua", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// What a console line came to: its printed values, or its error.
pub type Outcome = Result<String, String>;

/// A converged simulated ring with a peerlet manager on every node.
pub struct SampleRing {
    pub net: SimNet,
    pub managers: Vec<ManagerApp>,
    pub rng: Rng,
}

impl SampleRing {
    pub fn new(n: usize, seed: u64) -> SampleRing {
        let (net, managers, rng) = super::sim::with_managers(n, seed, &ManagerConfig::default());
        SampleRing { net, managers, rng }
    }

    /// Like [`SampleRing::new`], but each node's manager is wrapped by
    /// `wrap(node, manager)` before it becomes the node's default
    /// application (to watch the upcalls the KBR layer makes).
    pub fn wrapped(
        n: usize,
        seed: u64,
        wrap: impl Fn(usize, ManagerApp) -> Box<dyn Application>,
    ) -> SampleRing {
        let (mut net, rng) = super::sim::converged(n, seed);
        let mut managers = Vec::new();
        for i in 0..n {
            let m = ManagerApp::new(Manager::new(ManagerConfig::default()));
            let app = wrap(i, m.clone());
            net.with_node(i, move |k, _| k.set_default_app(app));
            managers.push(m);
        }
        SampleRing { net, managers, rng }
    }

    /// A new node with id `id`, a peerlet manager and `peerlets` installed,
    /// joining the ring through node `via`.
    pub fn join(&mut self, id: Id, via: usize, peerlets: &[&str]) -> usize {
        let i = self.net.add_node(id);
        let m = ManagerApp::new(Manager::new(ManagerConfig::default()));
        let app = m.clone();
        self.net
            .with_node(i, move |k, _| k.set_default_app(Box::new(app)));
        self.managers.push(m);
        for name in peerlets {
            self.install(&[i], name);
        }
        self.net.join(i, via);
        i
    }

    pub fn all(&self) -> Vec<usize> {
        (0..self.net.len()).collect()
    }

    /// Installs `peerlets/NAME.lua` on `nodes` (unsigned, as each node's own).
    pub fn install(&mut self, nodes: &[usize], name: &str) -> AppId {
        let source = source(name);
        let chunk = format!("{name}.lua");
        let mut app = None;
        for &i in nodes {
            let m = self.managers[i].clone();
            let id = self.net.with_node(i, |k, now| {
                m.0.borrow_mut()
                    .install_local(&mut k.api(now), &chunk, source.as_bytes())
            });
            app = Some(id.unwrap_or_else(|e| panic!("{name} on node {i}: {e}")));
        }
        app.expect("at least one node")
    }

    /// Types `code` at the console of each node given (at most one line per
    /// node), all at once, and runs the network until every line finished
    /// or `limit` of virtual time passed. Outcomes in input order; a line
    /// still waiting at the limit comes back as an error saying so.
    pub fn eval_many(&mut self, lines: &[(usize, String)], limit: Duration) -> Vec<Outcome> {
        super::sim::eval_many(&mut self.net, &self.managers, lines, limit)
    }

    /// Types one line at node `i`'s console; waits up to 30 s of virtual time.
    pub fn eval(&mut self, i: usize, code: &str) -> Outcome {
        self.eval_many(&[(i, code.to_string())], Duration::from_secs(30))
            .remove(0)
    }

    /// Calls `method(args)` of peerlet `app` on node `i` itself (through a
    /// handle on node `i`'s own id, whose root is node `i`).
    pub fn call_local(&mut self, i: usize, app: AppId, call: &str) -> Outcome {
        self.eval(
            i,
            &format!("peerlet.lookup(kbr.id().id, {:?}):{call}", app.to_string()),
        )
    }

    /// A value in peerlet `name`'s store on node `i`, decoded.
    pub fn stored(&self, i: usize, name: &str, key: &str) -> Option<ciborium::Value> {
        let m = self.managers[i].0.borrow();
        Some(decode_stored(&m.by_name(name)?.store_get(key)?))
    }

    pub fn index_of(&self, id: &Id) -> usize {
        (0..self.net.len())
            .find(|&i| self.net.me(i).id == *id)
            .expect("a node of this ring")
    }

    /// The `n` live nodes that should hold the replicas of `key`, root first.
    pub fn replica_set(&self, key: &Id, n: usize) -> Vec<usize> {
        let oracle = self.net.oracle();
        let root = oracle.successor(key);
        let mut out = vec![self.index_of(&root.id)];
        for s in oracle.successors_of(&root.id, n.saturating_sub(1)) {
            out.push(self.index_of(&s.id));
        }
        out
    }

    /// Problems reported by the peerlet managers (aborts, refusals), with
    /// the node they happened on.
    pub fn reports(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (i, m) in self.managers.iter().enumerate() {
            for r in m.0.borrow().reports() {
                out.push(format!("node {i}: {r}"));
            }
        }
        out
    }
}

/// Types `code` at the console of a node running over TCP and waits (up to
/// `limit`) for what it prints.
pub fn console_tcp(node: &peerlet::node::NodeHandle, code: &str, limit: Duration) -> Outcome {
    let rx = node.console_start(code).map_err(|e| e.to_string())?;
    rx.recv_timeout(limit)
        .map_err(|_| format!("no answer within {limit:?}"))?
}

/// The same line typed at the consoles of all `nodes` at once; outcomes
/// in node order.
pub fn console_tcp_all(
    nodes: &[&peerlet::node::NodeHandle],
    code: impl Fn(usize) -> String,
    limit: Duration,
) -> Vec<Outcome> {
    let waiting: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(i, node)| node.console_start(&code(i)))
        .collect();
    let end = std::time::Instant::now() + limit;
    waiting
        .into_iter()
        .map(|started| {
            let rx = started.map_err(|e| e.to_string())?;
            let left = end.saturating_duration_since(std::time::Instant::now());
            rx.recv_timeout(left)
                .map_err(|_| format!("no answer within {limit:?}"))?
        })
        .collect()
}
