//! Several hosts on one machine: network namespaces joined by a bridge,
//! each with an IPv4 and an IPv6 address and default routes, running
//! `peerlet node` processes that listen on all addresses. Needs root and
//! `ip` (iproute2); everything made here is removed on drop, the
//! processes first.
//!
//! Layout: a hub namespace holds the bridge `br0`; host `i` is namespace
//! `pl<pid>h<i>` with `eth0` = 10.77.0.(i+1)/24 and fd77::(i+1)/64, whose
//! veth peer sits on the bridge. Cutting a host off sets its bridge port
//! down: its sockets stay, its packets go nowhere.

use std::io::BufRead;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use peerlet::id::Id;
use peerlet::wire::NodeRef;

/// Why this machine cannot run the harness, if it cannot.
pub fn unavailable() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("network namespaces need root (CI runs as root)".into());
    }
    match Command::new("ip").arg("-V").output() {
        Ok(o) if o.status.success() => None,
        _ => Some("`ip` (iproute2) is not installed".into()),
    }
}

/// Runs `ip ARGS`, panicking with its error output if it fails.
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The namespaces and the bridge.
pub struct Lab {
    prefix: String,
    pub hosts: Vec<Host>,
}

pub struct Host {
    pub ns: String,
    pub v4: Ipv4Addr,
    pub v6: Ipv6Addr,
    /// The host's port on the bridge, in the hub namespace.
    port: String,
}

impl Lab {
    pub fn new(count: usize) -> Lab {
        let prefix = format!("pl{}", std::process::id());
        let hub = format!("{prefix}hub");
        let mut lab = Lab {
            prefix: prefix.clone(),
            hosts: Vec::new(),
        };
        ip(&["netns", "add", &hub]);
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &hub, "link", "set", "br0", "up"]);
        for i in 0..count {
            let ns = format!("{prefix}h{i}");
            let (inner, port) = (format!("{prefix}e{i}"), format!("{prefix}b{i}"));
            ip(&["netns", "add", &ns]);
            // Pushed now, so a failure below still removes the namespace.
            let host = Host {
                ns: ns.clone(),
                v4: Ipv4Addr::new(10, 77, 0, i as u8 + 1),
                v6: Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, i as u16 + 1),
                port: port.clone(),
            };
            let (v4, v6) = (format!("{}/24", host.v4), format!("{}/64", host.v6));
            lab.hosts.push(host);
            ip(&["link", "add", &inner, "type", "veth", "peer", "name", &port]);
            ip(&["link", "set", &inner, "netns", &ns]);
            ip(&["link", "set", &port, "netns", &hub]);
            ip(&["-n", &hub, "link", "set", &port, "master", "br0", "up"]);
            ip(&["-n", &ns, "link", "set", &inner, "name", "eth0"]);
            ip(&["-n", &ns, "addr", "add", &v4, "dev", "eth0"]);
            // nodad: usable at once, no duplicate detection to wait for.
            ip(&["-n", &ns, "addr", "add", &v6, "dev", "eth0", "nodad"]);
            ip(&["-n", &ns, "link", "set", "eth0", "up"]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            ip(&["-n", &ns, "route", "add", "default", "dev", "eth0"]);
            ip(&["-n", &ns, "-6", "route", "add", "default", "dev", "eth0"]);
        }
        lab
    }

    /// Cuts host `i` off the bridge, or puts it back.
    pub fn connect(&self, i: usize, up: bool) {
        let hub = format!("{}hub", self.prefix);
        let state = if up { "up" } else { "down" };
        ip(&["-n", &hub, "link", "set", &self.hosts[i].port, state]);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for host in &self.hosts {
            let _ = Command::new("ip").args(["netns", "del", &host.ns]).status();
        }
        let hub = format!("{}hub", self.prefix);
        let _ = Command::new("ip").args(["netns", "del", &hub]).status();
    }
}

/// A namespace with nothing but its loopback: a host with no network.
pub struct BareHost {
    pub ns: String,
}

impl BareHost {
    pub fn new() -> BareHost {
        let ns = format!("pl{}bare", std::process::id());
        ip(&["netns", "add", &ns]);
        let host = BareHost { ns };
        ip(&["-n", &host.ns, "link", "set", "lo", "up"]);
        host
    }
}

impl Drop for BareHost {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

/// A `peerlet node` in a host's namespace, with a data directory (its key
/// and its control socket) and a log file.
pub struct HostNode {
    child: Child,
    pub me: NodeRef,
    pub data: PathBuf,
    pub log: PathBuf,
}

impl HostNode {
    /// Starts `peerlet node ARGS --data DATA` in namespace `ns` and waits
    /// (up to 60 s) for its `listening ADDR id HEX` line, which comes once
    /// it is part of a ring.
    pub fn start(ns: &str, data: &Path, args: &[String]) -> HostNode {
        let log = data.with_extension("log");
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("node log");
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, env!("CARGO_BIN_EXE_peerlet"), "node"])
            .args(super::FAST_FLAGS)
            .args(args)
            .arg("--data")
            .arg(data)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .expect("start peerlet node in a namespace");
        let lines = lines_of(child.stdout.take().expect("piped stdout"));
        let mut node = HostNode {
            child,
            me: NodeRef {
                id: Id::ZERO,
                addr: "0.0.0.0:0".parse().unwrap(),
            },
            data: data.to_path_buf(),
            log,
        };
        let line = match lines.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line,
            Err(_) => panic!("no `listening` line in 60 s; log:\n{}", node.log_tail()),
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        assert!(
            words.len() == 4 && words[0] == "listening",
            "unexpected first line: {line}"
        );
        node.me = NodeRef {
            addr: words[1].parse().expect("address"),
            id: words[3].parse().expect("id"),
        };
        node
    }

    /// Runs one console line on the node (`peerlet repl DATA/control.sock
    /// -e CODE`): its output, or why it failed.
    pub fn console(&self, code: &str) -> Result<String, String> {
        let out = Command::new(env!("CARGO_BIN_EXE_peerlet"))
            .arg("repl")
            .arg(self.data.join("control.sock"))
            .args(["-e", code])
            .output()
            .map_err(|e| format!("run peerlet repl: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout).trim_end().to_string();
        match out.status.success() {
            true => Ok(text),
            false => Err(format!(
                "{code}: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            )),
        }
    }

    /// Stops the node with SIGKILL and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for HostNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `[v6]:port` or `v4:port` of a host.
pub fn addr(ip: impl Into<IpAddr>, port: u16) -> String {
    SocketAddr::new(ip.into(), port).to_string()
}

fn lines_of(stdout: std::process::ChildStdout) -> Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    rx
}
