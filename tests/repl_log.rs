//! `.log [LEVEL]` against a real `peerlet node` process: followers at
//! different levels each get exactly their lines, whatever the node's own
//! stderr level.

#![forbid(unsafe_code)]

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::repl::{eval, start_attached, stdout};

/// `peerlet repl SOCKET -e '.log LEVEL'`: streams the node's log lines on
/// stdout until killed (killed and reaped when dropped).
struct LogFollower {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl LogFollower {
    fn start(socket: &Path, level: &str) -> LogFollower {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_peerlet"))
            .arg("repl")
            .arg(socket)
            .args(["-e", &format!(".log {level}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run peerlet repl");
        // The node's answer ("streaming ...") comes on stderr once the tap
        // is in place: only then are lines sure to be caught.
        let mut note = String::new();
        let stderr = child.stderr.take().unwrap();
        std::io::BufReader::new(stderr)
            .read_line(&mut note)
            .unwrap();
        assert!(note.starts_with("streaming the node's log"), "{note}");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        LogFollower { child, lines }
    }

    /// Lines up to and including the first that contains `marker`.
    fn until(&self, marker: &str) -> Vec<String> {
        let end = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let done = line.contains(marker);
                    seen.push(line);
                    if done {
                        return seen;
                    }
                }
                Err(_) => panic!("no log line with {marker} within 20 s: {seen:?}"),
            }
        }
    }
}

impl Drop for LogFollower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn log_streams_the_nodes_log_at_the_chosen_level() {
    let a = start_attached(None);
    let debug = LogFollower::start(&a.socket, "debug");
    let info = LogFollower::start(&a.socket, "info");
    let said = eval(
        &a.socket,
        "log.debug('fine-marker') log.info('coarse-marker')",
    );
    assert!(said.status.success(), "{said:?}");
    // The node's stderr is at warn: the stream has its own level.
    let fine = debug.until("coarse-marker");
    assert!(
        fine.iter()
            .any(|l| l.contains("DEBUG") && l.contains("fine-marker")),
        "{fine:?}"
    );
    let coarse = info.until("coarse-marker");
    assert!(coarse.last().unwrap().contains("INFO"), "{coarse:?}");
    assert!(
        !coarse.iter().any(|l| l.contains("fine-marker")),
        "{coarse:?}"
    );
    let bad = eval(&a.socket, ".log loud");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown log level"));
    // Followers that left free their place: the node still answers.
    drop(debug);
    drop(info);
    assert_eq!(stdout(&eval(&a.socket, "1+1")), "2");
}
