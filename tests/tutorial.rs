//! docs/tutorial.md, run: its `lua file=NAME` blocks are written to a
//! working directory, its `sh` commands are checked to exist, and its
//! `console` blocks are typed into a real `peerlet demo` (through `peerlet
//! repl SOCKET -e LINE`, one line at a time, as a person would), each answer
//! compared with the one printed in the tutorial (`...` matches anything).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_peerlet");

struct Block {
    info: String,
    lines: Vec<String>,
}

fn blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut current: Option<Block> = None;
    for line in text.lines() {
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(info)) => {
                current = Some(Block {
                    info: info.trim().to_string(),
                    lines: Vec::new(),
                })
            }
            (Some(_), Some(_)) => out.push(current.take().unwrap()),
            (Some(b), None) => b.lines.push(line.to_string()),
            (None, None) => {}
        }
    }
    assert!(current.is_none(), "an unclosed code block");
    out
}

/// `expected` with `...` standing for any text.
fn matches(expected: &str, actual: &str) -> bool {
    let parts: Vec<&str> = expected.split("...").collect();
    if parts.len() == 1 {
        return expected == actual;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !actual.starts_with(first) || !actual[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &actual[first.len()..actual.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

fn eval(socket: &Path, dir: &Path, line: &str) -> (bool, String) {
    let out = Command::new(BIN)
        .args(["repl"])
        .arg(socket)
        .args(["-e", line])
        .current_dir(dir)
        .output()
        .unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).trim_end().to_string();
    if !out.status.success() {
        text.push_str(String::from_utf8_lossy(&out.stderr).trim_end());
    }
    (out.status.success(), text)
}

/// Kills and reaps the demo if the test fails half way.
struct Demo(std::process::Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_tutorial_runs_as_written() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(repo.join("docs/tutorial.md")).unwrap();
    let blocks = blocks(&text);
    let work = tempfile::tempdir().unwrap();
    let (mut consoles, mut files) = (0, 0);
    for b in &blocks {
        if let Some(name) = b.info.strip_prefix("lua file=") {
            std::fs::write(work.path().join(name), b.lines.join("\n") + "\n").unwrap();
            files += 1;
        }
        if b.info == "sh" {
            for line in &b.lines {
                let words: Vec<&str> = line.split_whitespace().collect();
                let sub = match words.as_slice() {
                    ["cargo", "run", "--release", "--", sub, ..] => sub,
                    ["peerlet", sub, ..] => sub,
                    _ => panic!("a command the test does not know: {line}"),
                };
                let ok = Command::new(BIN).args([sub, "--help"]).output().unwrap();
                assert!(ok.status.success(), "`peerlet {sub}` exists");
            }
        }
    }
    assert!(files >= 3, "the tutorial writes its peerlets");

    // The demo, as the tutorial starts it, with a private directory; it
    // signs copies of the repository's samples there.
    let demo_dir = work.path().join("demo");
    let mut child = Command::new(BIN)
        .args(["demo", "--dir"])
        .arg(&demo_dir)
        .arg("--samples")
        .arg(repo.join("peerlets"))
        .current_dir(work.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let mut demo = Demo(child);
    let socket = demo_dir.join("nodes/0/control.sock");
    let end = Instant::now() + Duration::from_secs(90);
    while !(socket.exists() && eval(&socket, work.path(), "1").0) {
        assert!(Instant::now() < end, "the demo did not come up in 90 s");
        std::thread::sleep(Duration::from_millis(200));
    }

    // The signed copies pass `peerlet verify` with the demo key's public
    // half, where the README says they are.
    let verify = Command::new(BIN)
        .arg("verify")
        .arg(demo_dir.join("peerlets/dht.lua"))
        .arg("-P")
        .arg(demo_dir.join("demo.pub"))
        .output()
        .unwrap();
    assert!(verify.status.success(), "{verify:?}");

    for b in blocks.iter().filter(|b| b.info == "console") {
        consoles += 1;
        let mut lines = b.lines.iter().peekable();
        while let Some(line) = lines.next() {
            let input = line
                .strip_prefix("peerlet> ")
                .unwrap_or_else(|| panic!("console blocks start with the prompt: {line}"));
            let mut expected = Vec::new();
            while let Some(l) = lines.next_if(|l| !l.starts_with("peerlet> ")) {
                expected.push(l.as_str());
            }
            let expected = expected.join("\n");
            // A line that fails, or answers what it will not answer a
            // moment later, may be waiting on deployment or on the ring
            // noticing a crash: ask again, as the tutorial tells the
            // reader to.
            let end = Instant::now() + Duration::from_secs(30);
            loop {
                let (_, actual) = eval(&socket, work.path(), input);
                if matches(&expected, &actual) {
                    break;
                }
                assert!(
                    Instant::now() < end,
                    "`{input}` answered\n{actual}\nbut the tutorial says\n{expected}"
                );
                std::thread::sleep(Duration::from_millis(250));
            }
        }
    }
    assert!(consoles >= 7);

    // Ctrl-D (end of input) stops the demo and every node it started.
    drop(stdin);
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = demo.0.try_wait().unwrap() {
            assert!(status.success(), "the demo exits cleanly: {status}");
            break;
        }
        assert!(
            Instant::now() < end,
            "the demo did not stop on end of input"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = std::io::stdout().flush();
}

#[test]
fn wildcards_match_what_they_should() {
    assert!(matches("a...c", "abbbc"));
    assert!(matches("trace to ...\n...root", "trace to x\n 1 y root"));
    assert!(!matches("a...c", "abd"));
    assert!(matches("true", "true"));
    assert!(!matches("true", "false"));
}
