//! Faults from the consoles of `demo` and `testnet`: `.crash N`,
//! `.leave N`, `.spawn`, `.partition`, `.heal` and `.nodes`. (What a
//! partition does to the ring is tested in tests/partition.rs.)

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn the_demo_console_crashes_stops_and_starts_nodes() {
    let work = tempfile::tempdir().unwrap();
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("peerlets");
    let out = Command::new(env!("CARGO_BIN_EXE_peerlet"))
        .args(["demo", "--nodes", "4", "--dir"])
        .arg(work.path().join("demo"))
        .arg("--samples")
        .arg(&samples)
        .args([
            "-e", ".crash 2", "-e", ".leave 3", "-e", ".spawn", "-e", ".nodes",
        ])
        .env("HOME", work.path())
        .output()
        .expect("run peerlet demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains("node 2 (") && stdout.contains("crashed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("node 3 (") && stdout.contains("left the ring"),
        "{stdout}"
    );
    assert!(
        stdout.contains("node 4 (") && stdout.contains("joined the ring"),
        "{stdout}"
    );
    let table: Vec<&str> = stdout
        .lines()
        .filter(|l| {
            l.trim_start().starts_with(|c: char| c.is_ascii_digit()) && l.contains("127.0.0.1:")
        })
        .collect();
    assert_eq!(table.len(), 5, "{stdout}");
    let state = |i: usize| table[i].split_whitespace().last().unwrap().to_string();
    assert_eq!(
        (0..5).map(state).collect::<Vec<_>>(),
        ["up", "up", "stopped", "stopped", "up"],
        "{stdout}"
    );

    // Node 0 runs the console; a lone node has no fleet.
    let out = Command::new(env!("CARGO_BIN_EXE_peerlet"))
        .args(["demo", "--nodes", "2", "--dir"])
        .arg(work.path().join("demo"))
        .arg("--samples")
        .arg(&samples)
        .args(["-e", ".crash 0"])
        .env("HOME", work.path())
        .output()
        .expect("run peerlet demo");
    assert!(!out.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("node 0 is the seed"), "{all}");
}

/// Kills the testnet when the test ends, passed or not.
struct Testnet(std::process::Child);

impl Drop for Testnet {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn every_testnet_node_has_a_console_with_the_fault_commands() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("testnet");
    let mut testnet = Testnet(
        Command::new(env!("CARGO_BIN_EXE_peerlet"))
            .args(["testnet", "4", "--dir"])
            .arg(&dir)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run peerlet testnet"),
    );
    // One `ADDR ID` line per node once the ring is up.
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = testnet.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    for _ in 0..4 {
        rx.recv_timeout(Duration::from_secs(90))
            .expect("a line per testnet node");
    }
    let console = |n: usize, code: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_peerlet"))
            .arg("repl")
            .arg(dir.join("nodes").join(n.to_string()).join("control.sock"))
            .args(["-e", code])
            .output()
            .expect("run peerlet repl");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    let (ok, text) = console(2, ".partition 0-1 2-3");
    assert!(
        ok && text.contains("group 1: 0-1") && text.contains("group 2: 2-3"),
        "{text}"
    );
    let (ok, text) = console(1, ".nodes");
    assert!(ok, "{text}");
    let groups: Vec<&str> = text
        .lines()
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    assert_eq!(groups, ["1)", "1)", "2)", "2)"], "{text}");
    let (ok, text) = console(0, ".partition 0 0");
    assert!(!ok && text.contains("node 0 is in two groups"), "{text}");
    let (ok, text) = console(3, ".heal");
    assert!(ok && text.contains("healed"), "{text}");
    let (ok, text) = console(3, ".heal");
    assert!(!ok && text.contains("not partitioned"), "{text}");
    let (ok, text) = console(1, ".crash 3");
    assert!(ok && text.contains("crashed"), "{text}");
    let (ok, text) = console(0, ".nodes");
    assert!(
        ok && text.lines().nth(3).unwrap().ends_with("stopped"),
        "{text}"
    );

    // SIGTERM: every node leaves and the testnet exits.
    let status = Command::new("kill")
        .args(["-TERM", &testnet.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let end = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = testnet.0.try_wait().unwrap() {
            assert!(status.success(), "testnet exited with {status}");
            break;
        }
        assert!(std::time::Instant::now() < end, "testnet did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}
