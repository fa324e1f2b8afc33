//! Faults from the demo's console: `.crash N`, `.leave N`, `.spawn` and
//! `.nodes`, and what the ring does about them.

use std::path::Path;
use std::process::Command;

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
    assert!(all.contains("node 0 runs this console"), "{all}");
}
