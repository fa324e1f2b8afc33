//! The nodes that `peerlet demo` and `peerlet testnet` run in one process,
//! and what their consoles may do to them: `.nodes`, `.crash N`,
//! `.leave N`, `.spawn`, `.partition GROUPS…` and `.heal`
//! ([`crate::control::Fleet`]). Every node has a control socket at
//! `DIR/nodes/N/control.sock`; node 0 is the seed and the demo's console,
//! and stays.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crate::control::ControlServer;
use crate::net::cut::Cut;
use crate::node::{NodeHandle, NodeState};

/// Starts node number `i` of the fleet, joining the node at `join`.
pub type StartNode = dyn Fn(usize, Option<SocketAddr>) -> Result<NodeHandle, String> + Send + Sync;

/// The nodes of this process.
pub struct LocalFleet {
    nodes: Mutex<Vec<Arc<NodeHandle>>>,
    servers: Mutex<Vec<ControlServer>>,
    start: Box<StartNode>,
    dir: PathBuf,
    /// The partition every node's transport obeys (its `TcpConfig::cut`).
    cut: Cut,
    /// The groups of the partition in force, as typed, for `.nodes`.
    groups: Mutex<Vec<Vec<usize>>>,
    /// This fleet, for the consoles of the nodes `.spawn` starts.
    me: Weak<LocalFleet>,
}

impl LocalFleet {
    /// Starts `count` nodes with `start` (the first creates the ring, the
    /// others join it), waits until they form one ring, and serves a
    /// console on each at `dir/nodes/N/control.sock`. `start` must give
    /// each node `cut` as its `tcp.cut`.
    pub fn start(
        count: usize,
        dir: &Path,
        cut: Cut,
        start: Box<StartNode>,
    ) -> Result<Arc<LocalFleet>, Box<dyn std::error::Error>> {
        let mut nodes: Vec<Arc<NodeHandle>> = Vec::with_capacity(count);
        for i in 0..count {
            let join = nodes.first().map(|n| n.addr());
            nodes.push(Arc::new(start(i, join)?));
        }
        for node in &nodes {
            node.wait_joined(Duration::from_secs(60))?;
        }
        wait_for_ring(&nodes)?;
        let fleet = Arc::new_cyclic(|me| LocalFleet {
            nodes: Mutex::new(nodes.clone()),
            servers: Mutex::new(Vec::new()),
            start,
            dir: dir.to_path_buf(),
            cut,
            groups: Mutex::new(Vec::new()),
            me: me.clone(),
        });
        for (i, node) in nodes.iter().enumerate() {
            fleet.serve(i, node.clone())?;
        }
        Ok(fleet)
    }

    /// The control socket of node `i`.
    pub fn socket(&self, i: usize) -> PathBuf {
        self.dir
            .join("nodes")
            .join(i.to_string())
            .join(crate::control::SOCKET_NAME)
    }

    /// Every node ever started, stopped ones included.
    pub fn all(&self) -> Vec<Arc<NodeHandle>> {
        self.nodes.lock().expect("nodes lock").clone()
    }

    /// Makes every node still running leave, in parallel, and closes the
    /// consoles.
    pub fn stop(&self) {
        let all = self.all();
        std::thread::scope(|s| {
            for node in &all {
                s.spawn(|| node.leave());
            }
        });
        self.servers.lock().expect("servers lock").clear();
    }

    fn serve(&self, i: usize, node: Arc<NodeHandle>) -> Result<(), String> {
        let path = self.socket(i);
        if let Some(parent) = path.parent() {
            super::node::create_private_dir(parent)
                .map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        let fleet: Arc<dyn crate::control::Fleet> =
            self.me.upgrade().ok_or("the fleet is stopping")?;
        let server = crate::control::serve_with_fleet(&path, node, fleet)
            .map_err(|e| format!("control socket {}: {e}", path.display()))?;
        self.servers.lock().expect("servers lock").push(server);
        Ok(())
    }

    fn node(&self, i: usize) -> Result<Arc<NodeHandle>, String> {
        if i == 0 {
            return Err(
                "node 0 is the seed (and the demo's console): pick another (see .nodes)".into(),
            );
        }
        let nodes = self.nodes.lock().expect("nodes lock");
        nodes.get(i).cloned().ok_or_else(|| {
            format!(
                "no node {i}: this process has nodes 0 to {}",
                nodes.len() - 1
            )
        })
    }

    fn group_of(&self, i: usize) -> Option<usize> {
        let groups = self.groups.lock().expect("groups lock");
        if groups.is_empty() {
            return None;
        }
        Some(
            groups
                .iter()
                .position(|g| g.contains(&i))
                .map_or(0, |g| g + 1),
        )
    }
}

/// The web view shows every node of the process, `.spawn`ed ones too.
impl crate::web::NodeSet for LocalFleet {
    fn nodes(&self) -> Vec<Arc<NodeHandle>> {
        self.all()
    }
}

impl crate::control::Fleet for LocalFleet {
    fn nodes(&self) -> String {
        let mut out = String::new();
        for (i, n) in self.all().iter().enumerate() {
            let state = match n.state() {
                NodeState::Joined => "up".to_string(),
                NodeState::Joining => "joining".to_string(),
                NodeState::JoinFailed(why) => format!("join failed: {why}"),
                NodeState::Stopped => "stopped".to_string(),
            };
            let group = self
                .group_of(i)
                .map_or(String::new(), |g| format!("  (group {g})"));
            out.push_str(&format!(
                "{i:>3}  {:<21} {}  {state}{group}\n",
                n.addr().to_string(),
                n.id().short(8)
            ));
        }
        out.pop();
        out
    }

    fn number_of(&self, addr: SocketAddr) -> Option<usize> {
        self.all().iter().position(|n| n.addr() == addr)
    }

    fn crash(&self, i: usize) -> Result<String, String> {
        let node = self.node(i)?;
        if !node.is_running() {
            return Err(format!("node {i} is already stopped"));
        }
        node.kill();
        Ok(format!(
            "node {i} ({:?}) crashed: it told nobody; its neighbours will notice",
            node.me()
        ))
    }

    fn leave(&self, i: usize) -> Result<String, String> {
        let node = self.node(i)?;
        if !node.is_running() {
            return Err(format!("node {i} is already stopped"));
        }
        node.leave();
        Ok(format!("node {i} ({:?}) left the ring", node.me()))
    }

    fn spawn(&self) -> Result<String, String> {
        let nodes = self.all();
        let join = nodes
            .iter()
            .find(|n| n.state() == NodeState::Joined)
            .map(|n| n.addr())
            .ok_or("no node of this process is up to join through")?;
        let i = nodes.len();
        let node = (self.start)(i, Some(join))?;
        node.wait_joined(Duration::from_secs(30))
            .map_err(|e| e.to_string())?;
        let node = Arc::new(node);
        let me = node.me();
        self.nodes.lock().expect("nodes lock").push(node.clone());
        self.serve(i, node)?;
        Ok(format!("node {i} ({me:?}) joined the ring"))
    }

    fn partition(&self, groups: &[Vec<usize>]) -> Result<String, String> {
        let nodes = self.all();
        let mut seen = vec![false; nodes.len()];
        let mut addrs = Vec::new();
        for group in groups {
            let mut these = Vec::new();
            for &i in group {
                let node = nodes.get(i).ok_or_else(|| {
                    format!(
                        "no node {i}: this process has nodes 0 to {}",
                        nodes.len() - 1
                    )
                })?;
                if std::mem::replace(&mut seen[i], true) {
                    return Err(format!("node {i} is in two groups"));
                }
                these.push(node.addr());
            }
            addrs.push(these);
        }
        self.cut.partition(&addrs);
        *self.groups.lock().expect("groups lock") = groups.to_vec();
        let mut text = String::from("partitioned: nodes of one group no longer hear the others\n");
        for (g, group) in groups.iter().enumerate() {
            text.push_str(&format!("  group {}: {}\n", g + 1, list(group)));
        }
        let rest: Vec<usize> = (0..nodes.len()).filter(|i| !seen[*i]).collect();
        if !rest.is_empty() {
            text.push_str(&format!("  group 0 (the rest): {}\n", list(&rest)));
        }
        text.push_str(
            "each group finds out by its own timeouts and routes within itself; .heal joins them",
        );
        Ok(text)
    }

    fn heal(&self) -> Result<String, String> {
        if !self.cut.is_active() {
            return Err("the network is not partitioned (see .partition)".into());
        }
        self.cut.heal();
        self.groups.lock().expect("groups lock").clear();
        Ok(
            "healed: every node hears every other again; the rings merge as their \
            nodes probe the nodes they remember (see .ring)"
                .into(),
        )
    }
}

/// `0 1 2 5` as `0-2 5`.
fn list(nodes: &[usize]) -> String {
    let mut sorted = nodes.to_vec();
    sorted.sort_unstable();
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j + 1 < sorted.len() && sorted[j + 1] == sorted[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            sorted[i].to_string()
        } else {
            format!("{}-{}", sorted[i], sorted[j])
        });
        i = j + 1;
    }
    parts.join(" ")
}

/// Waits (60 s at most) until every node's successor and predecessor are
/// its neighbours on the ring, so the first keys typed land at their roots.
fn wait_for_ring(nodes: &[Arc<NodeHandle>]) -> Result<(), Box<dyn std::error::Error>> {
    let mut ids: Vec<crate::id::Id> = nodes.iter().map(|n| n.id()).collect();
    ids.sort();
    let end = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut settled = true;
        for node in nodes {
            let (succ, pred) = node.call(|kbr, now| {
                let t = kbr.view(now);
                (
                    t.successors().first().map(|s| s.id),
                    t.predecessor().map(|p| p.id),
                )
            })?;
            let at = ids.iter().position(|i| *i == node.id()).expect("listed");
            let want_succ = ids[(at + 1) % ids.len()];
            let want_pred = ids[(at + ids.len() - 1) % ids.len()];
            let alone = ids.len() == 1;
            settled &= alone || (succ == Some(want_succ) && pred == Some(want_pred));
        }
        if settled {
            return Ok(());
        }
        if std::time::Instant::now() > end {
            return Err("the ring did not settle within 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn lists_runs_as_ranges() {
        assert_eq!(super::list(&[5, 0, 1, 2, 7, 8]), "0-2 5 7-8");
        assert_eq!(super::list(&[3]), "3");
    }
}
