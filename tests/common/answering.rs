//! Helpers of the tests that hold a node to answering while its peerlets
//! do their worst (tests/fair_share.rs): a ring of `peerlet node`
//! processes with control sockets, console lines and route traces that
//! must answer within a deadline, a loop of both, and the stop signal.

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{eventually, NodeProcess};

/// One node of the ring: its process, data directory and control socket.
pub struct Member {
    pub node: NodeProcess,
    pub data: PathBuf,
    pub socket: PathBuf,
}

/// `peerlet node` processes in one temporary directory.
pub struct Ring {
    pub dir: tempfile::TempDir,
    pub members: Vec<Member>,
    extra: Vec<String>,
}

impl Ring {
    /// `n` nodes started with the fast settings and `extra` flags, each with
    /// a data directory (so a control socket and DIR/node.log), joined
    /// through the first; returns once every node's id is routed to that
    /// node from every node.
    pub fn start(n: usize, extra: &[&str]) -> Ring {
        let mut ring = Ring {
            dir: tempfile::tempdir().expect("tempdir"),
            members: Vec::new(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        for i in 0..n {
            let join = ring.members.first().map(|m| m.node.me.addr);
            let member = ring.start_member(&format!("node{i}"), join);
            ring.members.push(member);
        }
        eventually(Duration::from_secs(60), || {
            for from in &ring.members {
                for to in &ring.members {
                    let text = line(&from.socket, &format!(".trace {}", to.node.me.id), LIMIT)?;
                    let root = root_of(&text).ok_or(&text)?;
                    if root != to.node.me.addr.to_string() {
                        return Err(format!("not converged yet: {text}"));
                    }
                }
            }
            Ok(())
        });
        ring
    }

    /// Starts one more node, `name`, joining `join`, with the ring's flags.
    pub fn start_member(&self, name: &str, join: Option<SocketAddr>) -> Member {
        let data = self.dir.path().join(name);
        let mut flags = vec!["--data", data.to_str().expect("utf-8 path")];
        flags.extend(self.extra.iter().map(String::as_str));
        let node = NodeProcess::start(join, &flags, Stdio::null());
        let socket = data.join("control.sock");
        assert!(socket.exists(), "no control socket at {}", socket.display());
        Member { node, data, socket }
    }

    /// Every member's `.peers`, for a failure's message.
    pub fn peers(&self) -> String {
        let mut out = String::new();
        for m in &self.members {
            let peers = line(&m.socket, ".peers", LIMIT).unwrap_or_else(|e| e);
            out.push_str(&format!("{:?}: {peers}\n", m.node.me));
        }
        out
    }

    /// Writes `source` to a file and installs it on member `i` with `.load`
    /// (unsigned: that node's own); returns the answer.
    pub fn load(&self, i: usize, file_name: &str, source: &str) -> String {
        let file = self.dir.path().join(file_name);
        std::fs::write(&file, source).expect("write peerlet file");
        let text = line(
            &self.members[i].socket,
            &format!(".load {}", file.display()),
            Duration::from_secs(20),
        )
        .unwrap_or_else(|e| panic!("loading {file_name}: {e}"));
        assert!(text.contains("installed"), "{text}");
        text
    }
}

/// How long one console line or trace may take while peerlets misbehave:
/// generous for a loaded machine (before peerlets had a share of the node,
/// such lines took more than 10 s or never came back).
pub const LIMIT: Duration = Duration::from_secs(3);

/// Runs `peerlet repl SOCKET -e CODE`, killing it when it has not ended
/// within `limit`: its output, or why not.
pub fn line(socket: &Path, code: &str, limit: Duration) -> Result<String, String> {
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_peerlet"))
        .arg("repl")
        .arg(socket)
        .args(["-e", code])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run peerlet repl");
    // Bounded: the child is killed at the deadline.
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("`{code}` got no answer within {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let (mut out, mut err) = (String::new(), String::new());
    let _ = child.stdout.take().expect("piped").read_to_string(&mut out);
    let _ = child.stderr.take().expect("piped").read_to_string(&mut err);
    match status.success() {
        true => Ok(out.trim_end().to_string()),
        false => Err(format!("`{code}` failed ({status}): {out}{err}")),
    }
}

/// The address of the hop a `.trace` answer marks as the root.
pub fn root_of(trace: &str) -> Option<String> {
    trace
        .lines()
        .find(|l| l.trim_end().ends_with("root"))
        .and_then(|l| l.split_whitespace().nth(2))
        .map(str::to_string)
}

/// What the node did while it was watched.
#[derive(Debug, Default)]
pub struct Answered {
    pub rounds: usize,
    /// The slowest console line, trace from the node, trace to it.
    pub slowest: [Duration; 3],
}

/// For `span`, round after round: a console line on member `busy`
/// (`return 6 * 7`), a route traced from it to a fresh key, and one
/// traced from member `observer` to `busy`'s own id, which must end at
/// `busy`. Each must answer within [`LIMIT`]; panics naming the first that
/// does not.
pub fn keeps_answering(ring: &Ring, busy: usize, observer: usize, span: Duration) -> Answered {
    let node = &ring.members[busy];
    let from = &ring.members[observer];
    let mut answered = Answered::default();
    let end = Instant::now() + span;
    // Each round takes at least a process start; 1,000 is far beyond any span used.
    while Instant::now() < end && answered.rounds < 1000 {
        answered.rounds += 1;
        let round = answered.rounds;
        let timed = |socket: &Path, code: &str| -> (String, Duration) {
            let start = Instant::now();
            let text = line(socket, code, LIMIT)
                .unwrap_or_else(|e| panic!("round {round}, on {:?}: {e}", socket.parent()));
            (text, start.elapsed())
        };
        let (text, took) = timed(&node.socket, "return 6 * 7");
        assert_eq!(text, "42", "round {round}: the console line's answer");
        answered.slowest[0] = answered.slowest[0].max(took);
        let (text, took) = timed(&node.socket, &format!(".trace probe-{round}"));
        assert!(
            root_of(&text).is_some(),
            "round {round}: a trace from the busy node reaches a root: {text}"
        );
        answered.slowest[1] = answered.slowest[1].max(took);
        let (text, took) = timed(&from.socket, &format!(".trace {}", node.node.me.id));
        if root_of(&text) != Some(node.node.me.addr.to_string()) {
            panic!(
                "round {round}: a trace to the busy node's id ends there: {text}\n{}",
                ring.peers()
            );
        }
        answered.slowest[2] = answered.slowest[2].max(took);
    }
    assert!(
        answered.rounds >= 2,
        "only {} round(s) in {span:?}",
        answered.rounds
    );
    answered
}

/// Sends SIGTERM to `member` and asserts that the process exits, with
/// status 0, within `limit` of the signal.
pub fn stops_within(member: &mut Member, limit: Duration) -> Duration {
    member.node.terminate();
    let signalled = Instant::now();
    let status = member.node.wait_exit(limit);
    let took = signalled.elapsed();
    assert!(
        status.success(),
        "{:?} exited with {status}",
        member.node.me
    );
    assert!(took <= limit, "exited {took:?} after SIGTERM");
    took
}

/// The node's `.stats` figure for the time peerlets ran on its thread.
pub fn peerlet_seconds(member: &Member) -> f64 {
    let stats = line(&member.socket, ".stats", Duration::from_secs(10))
        .unwrap_or_else(|e| panic!(".stats: {e}"));
    let word = "peerlets' ";
    let at = stats
        .find(word)
        .unwrap_or_else(|| panic!("no `{word}` in {stats}"));
    let rest = &stats[at + word.len()..];
    let number: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    number
        .parse()
        .unwrap_or_else(|_| panic!("no number in {stats}"))
}

/// The `.apps` row of peerlet `name` on `member`, as named columns.
pub fn app_row(member: &Member, name: &str) -> AppRow {
    let apps = line(&member.socket, ".apps", Duration::from_secs(10))
        .unwrap_or_else(|e| panic!(".apps: {e}"));
    let mut lines = apps.lines();
    let header: Vec<&str> = lines.next().expect("a header").split_whitespace().collect();
    let row = lines
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no `{name}` in {apps}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    let cell = |column: &str| -> String {
        let i = header.iter().position(|h| *h == column).expect(column);
        cells.get(i).map(|c| c.to_string()).unwrap_or_default()
    };
    AppRow {
        text: row.to_string(),
        instructions: cell("instructions").parse().expect("instructions"),
        messages_in: cell("in").parse().expect("in"),
        aborts: cell("aborts").parse().expect("aborts"),
        throttled: cell("throttled")
            .trim_end_matches('s')
            .parse()
            .expect("throttled"),
        waiting: cell("waiting").parse().expect("waiting"),
        suppressed: cell("suppressed").parse().expect("suppressed"),
        stopped: row.ends_with("(stopped)"),
    }
}

/// Some columns of one `.apps` row.
#[derive(Debug)]
pub struct AppRow {
    pub text: String,
    pub instructions: u64,
    /// Messages delivered to it.
    pub messages_in: u64,
    pub aborts: u32,
    /// Seconds its work waited for its share, in total.
    pub throttled: f64,
    pub waiting: usize,
    pub suppressed: u64,
    pub stopped: bool,
}
