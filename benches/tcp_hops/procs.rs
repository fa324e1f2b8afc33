//! The parts of the benchmark that run in child processes: the bare echo
//! server and the ring of node processes (this binary, started again with
//! `TCP_HOPS_ROLE`). Children exit when their stdin closes, so none outlives
//! the benchmark; the parent also kills them when it is done.

use std::io::{BufRead, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use async_net::{TcpListener, TcpStream};
use peerlet::id::AppId;
use peerlet::kbr::{Api, Application};
use peerlet::node::{Node, NodeConfig, NodeHandle};
use peerlet::sim::Rng;
use peerlet::wire::{AppMessage, AppType, NodeRef, RoutedMessage};
use smol::io::{AsyncReadExt, AsyncWriteExt};

use super::{payload, wait_converged_from, MESSAGES, NODES};

fn app() -> AppId {
    AppId::derive(b"bench", "hop-echo")
}

/// A child process, killed and reaped when dropped.
pub(super) struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts this binary as `role` and reads the address it prints.
pub(super) fn start(role: &str, join: Option<SocketAddr>) -> (ChildGuard, SocketAddr) {
    let (child, line) = spawn_child(role, join);
    // Nodes print their id after their address.
    let addr = line
        .split_whitespace()
        .next()
        .and_then(|a| a.parse().ok())
        .expect("an address");
    (child, addr)
}

/// Starts this binary as `role` and reads the first line it prints.
fn spawn_child(role: &str, join: Option<SocketAddr>) -> (ChildGuard, String) {
    let mut cmd = Command::new(std::env::current_exe().expect("own path"));
    cmd.env("TCP_HOPS_ROLE", role);
    if let Some(j) = join {
        cmd.env("TCP_HOPS_JOIN", j.to_string());
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start child");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("first line");
    (ChildGuard(child), line)
}

/// Blocks until the parent closes our stdin (or dies).
pub(super) fn until_parent_goes() {
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
}

/// Child: echoes 64-byte blocks on one connection.
pub fn serve_echo() {
    let listener = smol::block_on(TcpListener::bind("127.0.0.1:0")).expect("bind");
    println!("{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        smol::block_on(async {
            let (mut s, _) = listener.accept().await.expect("accept");
            s.set_nodelay(true).unwrap();
            let mut buf = [0u8; 64];
            while s.read_exact(&mut buf).await.is_ok() {
                if s.write_all(&buf).await.is_err() {
                    return;
                }
            }
        })
    });
    until_parent_goes();
}

/// A persistent connection to an echo server in another process.
pub struct Echo {
    stream: TcpStream,
    _server: ChildGuard,
}

impl Echo {
    /// Starts the server, connects, and warms the connection up.
    pub fn start() -> Echo {
        let (server, addr) = start("echo", None);
        let stream = smol::block_on(TcpStream::connect(addr)).expect("connect");
        stream.set_nodelay(true).unwrap();
        let mut echo = Echo {
            stream,
            _server: server,
        };
        for _ in 0..500 {
            echo.round_trip();
        }
        echo
    }

    /// One round trip of 64 bytes.
    pub fn round_trip(&mut self) -> Duration {
        smol::block_on(async {
            let out = [7u8; 64];
            let mut back = [0u8; 64];
            let t = Instant::now();
            self.stream.write_all(&out).await.unwrap();
            self.stream.read_exact(&mut back).await.unwrap();
            t.elapsed()
        })
    }
}

/// At a root: sends the hop count straight back to the source. At the
/// source: reports the answer and when it came.
struct HopEcho {
    answers: Option<mpsc::Sender<(u32, Instant)>>,
}

impl Application for HopEcho {
    fn deliver(&mut self, api: &mut Api<'_>, msg: &RoutedMessage) {
        if msg.direct {
            let at = Instant::now();
            let peerlet::wire::Body::App(m) = &msg.body else {
                return;
            };
            let hops = u32::from_be_bytes(m.data[1..5].try_into().expect("4 bytes"));
            if let Some(a) = &self.answers {
                let _ = a.send((hops, at));
            }
            return;
        }
        let mut data = vec![0x44]; // CBOR byte string of 4 bytes
        data.extend(msg.hops.to_be_bytes());
        let answer = AppMessage {
            app: app(),
            app_type: AppType::EndNode,
            code: None,
            data: serde_bytes::ByteBuf::from(data),
            kind: peerlet::wire::AppKind::Message,
            refused_by: Vec::new(),
        };
        api.send(msg.source, answer);
    }
}

/// Child: a node with the [`HopEcho`] app, printing its address.
pub fn serve_node() {
    let mut cfg = NodeConfig::new("127.0.0.1:0".parse().unwrap());
    cfg.join = std::env::var("TCP_HOPS_JOIN")
        .ok()
        .map(|j| j.parse().expect("address"));
    let node = Node::spawn(cfg).expect("spawn");
    node.wait_joined(Duration::from_secs(30)).expect("joined");
    node.call(|kbr, _| kbr.register(app(), Box::new(HopEcho { answers: None })))
        .expect("register");
    println!("{} {}", node.addr(), node.id());
    until_parent_goes();
    node.kill();
}

/// Per-hop latency through a ring of node processes, measured from an
/// in-process node by round trips; also the mean hops there, and echo
/// round trips taken between the messages.
pub fn routed_per_hop(echo: &mut Echo) -> (Vec<Duration>, f64, Vec<Duration>) {
    let (first, boot) = start_node(None);
    let mut children = vec![first];
    let mut ring = Vec::new();
    for _ in 1..NODES {
        let (c, node) = start_node(Some(boot.addr));
        children.push(c);
        ring.push(node);
    }
    let boot_ref = boot;
    let boot = boot.addr;
    let mut cfg = NodeConfig::new("127.0.0.1:0".parse().unwrap());
    cfg.join = Some(boot);
    let me: NodeHandle = Node::spawn(cfg).expect("spawn");
    me.wait_joined(Duration::from_secs(30)).expect("joined");
    let (tx, answers) = mpsc::channel();
    me.call(move |kbr, _| kbr.register(app(), Box::new(HopEcho { answers: Some(tx) })))
        .expect("register");
    let mut nodes: Vec<NodeRef> = ring.iter().copied().chain([boot_ref]).collect();
    nodes.push(me.me());
    wait_converged_from(&[&me], &nodes);
    let mut rss: Vec<u64> = children.iter().map(|c| rss_kib(c.0.id())).collect();
    rss.sort();
    println!(
        "idle node process (secure links to its peers, no peerlets), VmRSS: median {} KiB (min {}, max {}) over {}",
        rss[rss.len() / 2],
        rss[0],
        rss[rss.len() - 1],
        rss.len()
    );
    let mut rng = Rng::new(43);
    let (mut per_hop, mut hops_total, mut rtts) = (Vec::new(), 0u64, Vec::new());
    for _ in 0..MESSAGES {
        rtts.push(echo.round_trip());
        let key = rng.id();
        let msg = AppMessage {
            app: app(),
            app_type: AppType::EndNode,
            code: None,
            data: payload(),
            kind: peerlet::wire::AppKind::Message,
            refused_by: Vec::new(),
        };
        let sent = me
            .call(move |kbr, now| {
                let sent = Instant::now();
                kbr.api(now).route(key, msg, None);
                sent
            })
            .expect("route");
        let (hops, at) = answers
            .recv_timeout(Duration::from_secs(10))
            .expect("answered");
        if hops > 0 {
            hops_total += hops as u64;
            per_hop.push((at - sent) / (hops + 1));
        }
    }
    me.kill();
    drop(children);
    let mean_hops = hops_total as f64 / per_hop.len() as f64;
    (per_hop, mean_hops, rtts)
}

/// Starts a node child and reads its address and id.
fn start_node(join: Option<SocketAddr>) -> (ChildGuard, NodeRef) {
    let (child, line) = spawn_child("node", join);
    let mut words = line.split_whitespace();
    let addr = words
        .next()
        .and_then(|a| a.parse().ok())
        .expect("an address");
    let id = words.next().and_then(|i| i.parse().ok()).expect("an id");
    (child, NodeRef { id, addr })
}

/// Resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}
