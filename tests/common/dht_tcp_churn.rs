//! The churn soak of peerlets/dht.lua over TCP (issue 14, item 4): `peerlet
//! node` processes on loopback, each with a data directory and dht.lua;
//! every few seconds one of them is killed (SIGKILL) and restarted with its
//! data, on its port, while client threads put fresh keys and get keys put
//! before, each through a node's control socket (the REPL's way in).
//!
//! A client retries a get at other nodes when the one it asked fails (it
//! was being killed, or its call timed out); a get that no node answers
//! within `GET_TRIES` nodes counts as unanswered. At the end every
//! acknowledged put must read back. Shared by tests/dht_churn_tcp.rs
//! (short) and benches/dht_churn (full).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use peerlet::control::{Client, Request, Response};
use peerlet::sim::Rng;
use peerlet_repl::Connection;

/// Nodes asked before a get counts as unanswered.
pub const GET_TRIES: usize = 5;

/// The fast repair settings of the TCP tests, as flags.
const FAST: [&str; 6] = [
    "--stabilize-ms",
    "150",
    "--fix-fingers-ms",
    "50",
    "--rpc-timeout-ms",
    "500",
];

/// What to run.
#[derive(Clone, Debug)]
pub struct TcpSoak {
    pub nodes: usize,
    pub clients: usize,
    pub kill_every: Duration,
    pub duration: Duration,
    pub seed: u64,
}

/// What came out.
#[derive(Clone, Debug, Default)]
pub struct TcpReport {
    pub kills: usize,
    /// Restarted nodes whose successor was not right 30 s later.
    pub failed_rejoins: usize,
    pub puts: usize,
    pub acked: usize,
    /// Gets answered, and how many of them needed another node.
    pub gets: usize,
    pub gets_retried: usize,
    /// Gets no node answered within `GET_TRIES` nodes.
    pub unanswered: Vec<String>,
    /// Gets during the run that did not see an acknowledged put (the
    /// reader's view of the ring disagreed with the writer's); the put
    /// counts as lost only if it does not read back at the end.
    pub stale_reads: Vec<String>,
    /// Acknowledged puts that did not read back at the end.
    pub lost: Vec<String>,
    /// How long after the last restart every successor pointer was right
    /// again (None: not within two minutes).
    pub ring_healed: Option<Duration>,
    pub put_ms_p50: f64,
    pub put_ms_p99: f64,
}

/// One `peerlet node` process with its data directory; killed on drop.
struct NodeProc {
    child: Option<Child>,
    data: PathBuf,
    addr: SocketAddr,
}

impl NodeProc {
    fn start(data: &Path, listen: &str, join: Option<SocketAddr>) -> Result<NodeProc, String> {
        let dht = concat!(env!("CARGO_MANIFEST_DIR"), "/peerlets/dht.lua");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_peerlet"));
        cmd.args(["node", "--listen", listen, "--data"])
            .arg(data)
            .args(["--load", dht])
            .args(FAST)
            .env("RUST_LOG", "error");
        if let Some(j) = join {
            cmd.arg("--join").arg(j.to_string());
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("start peerlet node: {e}"))?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let _ = tx.send(line);
            }
        });
        let mut proc = NodeProc {
            child: Some(child),
            data: data.to_path_buf(),
            addr: "0.0.0.0:0".parse().unwrap(),
        };
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| "no `listening` line (port taken?)".to_string())?;
        let words: Vec<&str> = line.split_whitespace().collect();
        proc.addr = match words.as_slice() {
            ["listening", addr, "id", _] => addr.parse().map_err(|_| line.clone())?,
            _ => return Err(format!("unexpected first line: {line}")),
        };
        Ok(proc)
    }

    fn socket(&self) -> PathBuf {
        self.data.join("control.sock")
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `code` at the console of the node behind `socket`. A console runs
/// one waiting line at a time (a newer one drops the older), so clients
/// take turns at each node (`turn`).
fn eval(socket: &Path, turn: &Mutex<()>, code: &str) -> Result<String, String> {
    let _turn = turn.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = Client::connect(socket).map_err(|e| e.to_string())?;
    match c.request(&Request::Eval {
        code: code.to_string(),
    }) {
        Ok(Response::Ok(s)) => Ok(s),
        Ok(Response::Error(e)) => Err(e),
        Ok(other) => Err(format!("{other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

/// Whether the node behind `console` has, within 30 s, the successor it
/// should have: the next of `ids` (every node's id, sorted) round the ring.
fn rejoined(console: &Console, ids: &[String]) -> bool {
    let end = Instant::now() + Duration::from_secs(30);
    while Instant::now() < end {
        if successor_is_right(console, ids) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn successor_is_right(console: &Console, ids: &[String]) -> bool {
    let code = "return kbr.id().id, (kbr.neighbor_set(1)[1] or {}).id";
    let Ok(line) = eval(&console.0, &console.1, code) else {
        return false;
    };
    let mut words = line.split('\t');
    let (me, succ) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let i = ids.iter().position(|x| x == me);
    i.is_some_and(|i| ids[(i + 1) % ids.len()] == succ)
}

/// Reads `key` at up to `GET_TRIES` nodes from `first` on: the first
/// answer, and how many nodes were asked.
fn get(sockets: &[Console], first: usize, key: &str) -> (Result<String, String>, usize) {
    let code = format!("return peerlet.lookup(kbr.key({key:?}), 'dht'):get({key:?})");
    let mut last = String::new();
    for t in 0..GET_TRIES {
        let (socket, turn) = &sockets[(first + t) % sockets.len()];
        match eval(socket, turn, &code) {
            Ok(s) => return (Ok(s), t + 1),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    (Err(last), GET_TRIES)
}

/// A node's control socket, and the turn its console gives.
type Console = (PathBuf, Mutex<()>);

#[derive(Default)]
struct Shared {
    acked: Vec<(String, String)>,
    report: TcpReport,
    put_ms: Vec<f64>,
}

/// Runs the soak; every process it started is stopped when it returns.
pub fn run(soak: &TcpSoak) -> TcpReport {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut procs: Vec<NodeProc> = Vec::new();
    for i in 0..soak.nodes {
        let join = procs.first().map(|p| p.addr);
        let data = dir.path().join(format!("n{i}"));
        procs.push(NodeProc::start(&data, "127.0.0.1:0", join).expect("node starts"));
    }
    let sockets: Arc<Vec<Console>> =
        Arc::new(procs.iter().map(|p| (p.socket(), Mutex::new(()))).collect());
    // Ready when a put and a get go through every node.
    let ready_by = Instant::now() + Duration::from_secs(60);
    for (i, (s, turn)) in sockets.iter().enumerate() {
        let k = format!("ready-{i}");
        let code = format!("return peerlet.lookup(kbr.key({k:?}), 'dht'):put({k:?}, 'x')");
        while eval(s, turn, &code).map_or(true, |v| v.starts_with("nil")) {
            assert!(Instant::now() < ready_by, "node {i} never took a put");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    let mut ids: Vec<String> = sockets
        .iter()
        .map(|(s, turn)| eval(s, turn, "return kbr.id().id").expect("an id"))
        .collect();
    ids.sort();

    let stop = Arc::new(AtomicBool::new(false));
    let shared = Arc::new(Mutex::new(Shared::default()));
    let clients: Vec<_> = (0..soak.clients)
        .map(|c| {
            let (stop, shared, sockets) = (stop.clone(), shared.clone(), sockets.clone());
            let seed = soak.seed * 1000 + c as u64;
            std::thread::spawn(move || client(c, seed, &sockets, &stop, &shared))
        })
        .collect();

    let mut rng = Rng::new(soak.seed);
    let end = Instant::now() + soak.duration;
    let mut kills = 0;
    let mut report_rejoins = 0;
    let mut restarted = vec![0; soak.nodes];
    while Instant::now() < end {
        std::thread::sleep(soak.kill_every);
        let victim = rng.below(soak.nodes as u64) as usize;
        let addr = procs[victim].addr;
        let data = procs[victim].data.clone();
        procs[victim].kill();
        kills += 1;
        // Joining through the node up longest (restarted least recently).
        let join = procs[(0..soak.nodes)
            .filter(|&i| i != victim)
            .min_by_key(|&i| restarted[i])
            .expect("another node")]
        .addr;
        restarted[victim] = kills;
        // Back on its port with its data (the port can take a moment).
        let mut tries = 0;
        procs[victim] = loop {
            match NodeProc::start(&data, &addr.to_string(), Some(join)) {
                Ok(p) => break p,
                Err(e) if tries >= 50 => panic!("node {victim} does not come back: {e}"),
                Err(_) => tries += 1,
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        // The next kill waits until it is in the ring again (its successor
        // right), up to 30 s: the soak tests dht.lua, not how fast the
        // core takes back a node it just saw die (counted).
        if !rejoined(&sockets[victim], &ids) {
            report_rejoins += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("client thread");
    }

    // Every acknowledged put, read back once the ring has healed from the
    // last restart (each node's successor is the next id round the ring).
    let t = Instant::now();
    let healed = |sockets: &[Console]| sockets.iter().all(|c| successor_is_right(c, &ids));
    while !healed(&sockets) && t.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(500));
    }
    let ring_healed = healed(&sockets).then(|| t.elapsed());
    // And a round of dht.lua's repair (every 10 s) after that.
    std::thread::sleep(Duration::from_secs(12));
    let mut shared = shared.lock().unwrap();
    let acked = std::mem::take(&mut shared.acked);
    let mut report = std::mem::take(&mut shared.report);
    for (n, (key, value)) in acked.iter().enumerate() {
        match get(&sockets, n, key) {
            (Ok(s), _) if s == *value => {}
            (Ok(s), _) => report.lost.push(format!("{key}: read {s:?} at the end")),
            (Err(e), _) => report.unanswered.push(format!("{key} at the end: {e}")),
        }
    }
    report.kills = kills;
    report.failed_rejoins = report_rejoins;
    report.ring_healed = ring_healed;
    report.acked = acked.len();
    let ms = &mut shared.put_ms;
    ms.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        ms.get(((ms.len().max(1) - 1) as f64 * p) as usize)
            .copied()
            .unwrap_or(0.0)
    };
    report.put_ms_p50 = pct(0.5);
    report.put_ms_p99 = pct(0.99);
    drop(procs);
    report
}

/// One client: put a fresh key at a random node, then get a random key it
/// put before (acknowledged), until told to stop.
fn client(c: usize, seed: u64, sockets: &[Console], stop: &AtomicBool, shared: &Mutex<Shared>) {
    let mut rng = Rng::new(seed);
    let mut mine: Vec<(String, String)> = Vec::new();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let key = format!("c{c}-{n}");
        let value = format!("v{c}-{n}");
        n += 1;
        let node = rng.below(sockets.len() as u64) as usize;
        let code =
            format!("return peerlet.lookup(kbr.key({key:?}), 'dht'):put({key:?}, {value:?})");
        let t = Instant::now();
        let put = eval(&sockets[node].0, &sockets[node].1, &code);
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        {
            let mut s = shared.lock().unwrap();
            s.report.puts += 1;
            if let Ok(Ok(ver)) = put.as_deref().map(str::parse::<u64>) {
                s.acked.push((key.clone(), format!("{value}\t{ver}")));
                s.put_ms.push(ms);
                mine.push((key, format!("{value}\t{ver}")));
            }
        }
        if mine.is_empty() {
            continue;
        }
        let (key, want) = mine[rng.below(mine.len() as u64) as usize].clone();
        let first = rng.below(sockets.len() as u64) as usize;
        let (got, asked) = get(sockets, first, &key);
        let mut s = shared.lock().unwrap();
        match got {
            Ok(v) => {
                s.report.gets += 1;
                if asked > 1 {
                    s.report.gets_retried += 1;
                }
                if v != want {
                    s.report
                        .stale_reads
                        .push(format!("{key}: read {v:?}, want {want:?}"));
                }
            }
            Err(e) => s.report.unanswered.push(format!("{key}: {e}")),
        }
    }
}
