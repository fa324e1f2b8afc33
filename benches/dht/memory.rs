//! Memory per node: 20 `peerlet node` processes running dht.lua against 20
//! `dhtnode` processes, each measured from /proc/PID/status (VmRSS, the
//! whole resident set, and RssAnon, its private heap and stacks), idle and
//! after 500 items were put into the overlay.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{base_port, NODES, OPS, PYTHON};

/// Children killed (SIGKILL) and reaped when dropped.
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Procs {
    /// VmRSS and RssAnon of every process, in KiB.
    fn rss(&self) -> (Vec<u64>, Vec<u64>) {
        self.0
            .iter()
            .map(|c| (status_kib(c.id(), "VmRSS:"), status_kib(c.id(), "RssAnon:")))
            .unzip()
    }
}

/// A field of /proc/PID/status, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

pub fn run(opendht: bool) {
    println!();
    println!(
        "memory per node (/proc/PID/status of each process; {NODES} processes, {OPS} items put):"
    );
    let ours = peerlet_nodes();
    if opendht {
        let theirs = dhtnodes();
        if let (Some(a), Some(b)) = (ours, theirs) {
            println!(
                "ratio peerlet / dhtnode (medians after the puts): VmRSS {:.2}, RssAnon {:.2}; goal <= 0.50",
                a.0 as f64 / b.0 as f64,
                a.1 as f64 / b.1 as f64
            );
        }
    }
}

/// Median VmRSS and RssAnon after the puts, in KiB.
fn peerlet_nodes() -> Option<(u64, u64)> {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_peerlet");
    // A copy, so no signature left beside the sample (by hand, or by an
    // older demo) makes the nodes load it signed under another app id.
    let dht = dir.path().join("dht.lua");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/peerlets/dht.lua"),
        &dht,
    )
    .unwrap();
    let mut procs = Procs(Vec::new());
    let mut boot = None;
    let mut sockets = Vec::new();
    for i in 0..NODES {
        let data = dir.path().join(format!("n{i}"));
        let mut cmd = Command::new(bin);
        cmd.args(["node", "--listen", "127.0.0.1:0", "--load"])
            .arg(&dht)
            .args(["--stabilize-ms", "150", "--fix-fingers-ms", "50"])
            .arg("--data")
            .arg(&data)
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(b) = &boot {
            cmd.arg("--join").arg(b);
        }
        let mut child = cmd.spawn().expect("start peerlet node");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        // Keep draining stdout so the node never blocks on it.
        std::thread::spawn(move || for _ in lines {});
        let addr = first.split_whitespace().nth(1).unwrap_or("").to_string();
        procs.0.push(child);
        boot.get_or_insert(addr);
        sockets.push(data.join("control.sock"));
    }
    // Converged when a put through every node works.
    let end = Instant::now() + Duration::from_secs(90);
    for (i, s) in sockets.iter().enumerate() {
        while repl(s, &fill_code(i, i)).trim() != "1" {
            if Instant::now() > end {
                println!("  peerlet nodes did not converge; memory skipped");
                return None;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    std::thread::sleep(Duration::from_secs(3));
    let idle = procs.rss();
    let per = OPS / NODES;
    for (i, s) in sockets.iter().enumerate() {
        let got = repl(s, &fill_code(NODES + i * per, NODES + (i + 1) * per - 1));
        if got.trim() != per.to_string() {
            println!("  node {i}: {per} puts gave {got:?}");
        }
    }
    std::thread::sleep(Duration::from_secs(5));
    let full = procs.rss();
    report("peerlet node, dht.lua, idle", &idle);
    report(&format!("peerlet node, dht.lua, {OPS} items"), &full);
    Some((median(&full.0), median(&full.1)))
}

/// A console line that puts items `from..=to` and returns how many worked.
fn fill_code(from: usize, to: usize) -> String {
    format!(
        "local n = 0 for i = {from}, {to} do local k = 'fill-' .. i \
         if peerlet.lookup(kbr.key(k), {:?}):put(k, string.format('v%06d', i) .. string.rep('x', 57)) \
         then n = n + 1 end end return n",
        super::app().to_string()
    )
}

fn repl(socket: &Path, code: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_peerlet"))
        .arg("repl")
        .arg(socket)
        .args(["-e", code])
        .output()
        .expect("run peerlet repl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn dhtnodes() -> Option<(u64, u64)> {
    let base = base_port(1);
    let mut procs = Procs(Vec::new());
    for i in 0..NODES {
        let mut cmd = Command::new("dhtnode");
        cmd.args(["-s", "-p", &(base + i as u16).to_string()]);
        if i > 0 {
            cmd.args(["-b", &format!("127.0.0.1:{base}")]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dhtnode");
        procs.0.push(child);
    }
    std::thread::sleep(Duration::from_secs(8));
    let idle = procs.rss();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/dht/opendht_bench.py");
    let out = Command::new(PYTHON)
        .args([script, "fill", &base.to_string(), &OPS.to_string()])
        .arg((base + NODES as u16).to_string())
        .output()
        .expect("run opendht_bench.py fill");
    println!(
        "  (OpenDHT fill through one more runner: {})",
        String::from_utf8_lossy(&out.stdout).trim()
    );
    std::thread::sleep(Duration::from_secs(5));
    let full = procs.rss();
    report("dhtnode, idle", &idle);
    report(&format!("dhtnode, {OPS} values"), &full);
    Some((median(&full.0), median(&full.1)))
}

/// VmRSS (everything resident, including the binary's and libraries' pages
/// that processes of one program share) and RssAnon (the process's own heap
/// and stacks).
fn report(what: &str, (rss, anon): &(Vec<u64>, Vec<u64>)) {
    let mib = |k: u64| k as f64 / 1024.0;
    println!(
        "  {what}: VmRSS median {:.1} MiB (min {:.1} / max {:.1}); RssAnon median {:.2} MiB (min {:.2} / max {:.2})",
        mib(median(rss)),
        mib(*rss.iter().min().unwrap()),
        mib(*rss.iter().max().unwrap()),
        mib(median(anon)),
        mib(*anon.iter().min().unwrap()),
        mib(*anon.iter().max().unwrap()),
    );
}

fn median(v: &[u64]) -> u64 {
    let mut v = v.to_vec();
    v.sort();
    v[v.len() / 2]
}
