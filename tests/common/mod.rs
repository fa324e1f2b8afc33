//! Helpers shared by the TCP tests: fast ring settings, the lookup check
//! against the oracle, and polling with a deadline.

#![allow(dead_code)] // each test binary uses its own part

pub mod answering;
pub mod attack;
pub mod deploy;
pub mod dht;
pub mod dht_churn;
pub mod dht_tcp_churn;
pub mod hostile;
pub mod netns;
pub mod repl;
pub mod samples;
pub mod sim;
pub mod values;
pub mod wire_peer;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use peerlet::id::Id;
use peerlet::node::{Node, NodeConfig, NodeHandle};
use peerlet::sim::{Oracle, Rng};
use peerlet::wire::NodeRef;

/// Periods short enough for a loopback ring to repair itself in seconds.
pub fn fast_config(join: Option<SocketAddr>) -> NodeConfig {
    let mut cfg = NodeConfig::new("127.0.0.1:0".parse().unwrap());
    cfg.join = join;
    let ms = Duration::from_millis;
    cfg.chord.stabilize_every = ms(150);
    cfg.chord.check_predecessor_every = ms(150);
    cfg.chord.fix_fingers_every = ms(50);
    cfg.chord.rpc_timeout = ms(500);
    cfg.chord.hop_timeout = ms(500);
    cfg.chord.lookup_timeout = ms(4000);
    cfg
}

/// The same settings as flags of `peerlet node`.
pub const FAST_FLAGS: [&str; 6] = [
    "--stabilize-ms",
    "150",
    "--fix-fingers-ms",
    "50",
    "--rpc-timeout-ms",
    "500",
];

pub fn spawn_fast(join: Option<SocketAddr>) -> NodeHandle {
    Node::spawn(fast_config(join)).expect("spawn node")
}

/// `n` nodes made by `spawn` (the first creates the ring, the others join
/// through it), once every lookup from them ends at the oracle's root.
pub fn converged_ring(
    n: usize,
    spawn: impl Fn(Option<SocketAddr>) -> NodeHandle,
) -> Vec<NodeHandle> {
    let first = spawn(None);
    let bootstrap = first.addr();
    let mut nodes = vec![first];
    for _ in 1..n {
        nodes.push(spawn(Some(bootstrap)));
    }
    for node in &nodes {
        node.wait_joined(Duration::from_secs(20)).expect("joined");
    }
    let live: Vec<NodeRef> = nodes.iter().map(|n| n.me()).collect();
    let from: Vec<&NodeHandle> = nodes.iter().collect();
    eventually(Duration::from_secs(60), || {
        lookups_match_oracle(&from, &live, &random_keys(1, 50), 1)?;
        neighbours_match_oracle(&from, &live)
    });
    nodes
}

/// Every node's predecessor and successor list are the oracle's: lookups
/// can already end at the right roots while a predecessor still lags a
/// join, and a peerlet that asks `replica_set` whether it is a key's root
/// would then disagree with routing.
pub fn neighbours_match_oracle(nodes: &[&NodeHandle], live: &[NodeRef]) -> Result<(), String> {
    let oracle = Oracle::new(live.to_vec());
    for node in nodes {
        let me = node.me();
        let (pred, succs) = node
            .call(|kbr, now| {
                let view = kbr.view(now);
                (view.predecessor().map(|p| p.id), view.successors())
            })
            .map_err(|e| e.to_string())?;
        let want_pred = oracle.predecessor_of(&me.id).map(|p| p.id);
        let want_succs = oracle.successors_of(&me.id, succs.len());
        let succ_ids: Vec<Id> = succs.iter().map(|s| s.id).collect();
        let want_ids: Vec<Id> = want_succs.iter().map(|s| s.id).collect();
        if pred != want_pred || succ_ids != want_ids || succs.is_empty() {
            return Err(format!("{me:?}: neighbours not yet the oracle's"));
        }
    }
    Ok(())
}

/// Polls `check` every 200 ms until it returns `Ok` or `limit` passes;
/// returns the last error then.
pub fn eventually(limit: Duration, mut check: impl FnMut() -> Result<(), String>) {
    let end = Instant::now() + limit;
    loop {
        match check() {
            Ok(()) => return,
            Err(e) if Instant::now() >= end => panic!("not true within {limit:?}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// `count` random keys (fixed by `seed`).
pub fn random_keys(seed: u64, count: usize) -> Vec<Id> {
    let mut rng = Rng::new(seed);
    (0..count).map(|_| rng.id()).collect()
}

/// Looks up every key from a random one of `from` and compares the root
/// with the oracle's successor among `live`.
pub fn lookups_match_oracle(
    from: &[&NodeHandle],
    live: &[NodeRef],
    keys: &[Id],
    seed: u64,
) -> Result<(), String> {
    let oracle = Oracle::new(live.to_vec());
    let mut rng = Rng::new(seed);
    for key in keys {
        let node = from[rng.below(from.len() as u64) as usize];
        let want = oracle.successor(key);
        match node.lookup(*key) {
            Ok(found) if found.root.id == want.id => {}
            Ok(found) => {
                return Err(format!(
                    "lookup of {key} from {:?} ended at {:?}, oracle says {want:?}",
                    node.me(),
                    found.root
                ))
            }
            Err(e) => return Err(format!("lookup of {key} from {:?}: {e}", node.me())),
        }
    }
    Ok(())
}

/// A `peerlet node` process, killed (SIGKILL) and reaped when dropped.
pub struct NodeProcess {
    pub child: std::process::Child,
    pub me: NodeRef,
}

impl NodeProcess {
    /// Starts `peerlet node` on a free loopback port with the fast settings
    /// plus `extra` flags, and waits (up to 30 s) for its `listening` line.
    pub fn start(
        join: Option<SocketAddr>,
        extra: &[&str],
        stderr: std::process::Stdio,
    ) -> NodeProcess {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_peerlet"));
        cmd.args(["node", "--listen", "127.0.0.1:0"])
            .args(FAST_FLAGS)
            .args(extra);
        if let Some(j) = join {
            cmd.arg("--join").arg(j.to_string());
        }
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "warn");
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start peerlet node");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let _ = tx.send(line);
            }
        });
        let mut guard = NodeProcess {
            child,
            me: NodeRef {
                id: Id::ZERO,
                addr: "0.0.0.0:0".parse().unwrap(),
            },
        };
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("a `listening ADDR id HEX` line");
        let words: Vec<&str> = line.split_whitespace().collect();
        assert!(
            words.len() == 4 && words[0] == "listening" && words[2] == "id",
            "unexpected first line: {line}"
        );
        guard.me = NodeRef {
            addr: words[1].parse().expect("address"),
            id: words[3].parse().expect("id"),
        };
        guard
    }

    /// Sends SIGTERM (through kill(1), keeping the tests free of unsafe).
    pub fn terminate(&self) {
        self.signal("-TERM");
    }

    /// Freezes the process (SIGSTOP): its sockets stay open but it answers
    /// nothing, so only the core's timeouts can tell it is gone.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    fn signal(&self, sig: &str) {
        let status = std::process::Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {sig} failed");
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let end = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < end,
                "{:?} did not exit within {limit:?}",
                self.me
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
