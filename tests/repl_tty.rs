//! `peerlet node --repl` in a real pseudo-terminal (tmux): a multi-line
//! function, Tab completion of `kbr.` and of peerlet names, `.peers`,
//! shortened ids, `.log` above the prompt, `.load`, `.unload`, a runaway line
//! aborted with the console still usable, and Ctrl-D leaving. Skipped (with
//! a note) where tmux is not installed.

#![forbid(unsafe_code)]

use std::process::Command;
use std::time::{Duration, Instant};

/// A tmux server of our own (its own socket name), killed when dropped.
struct Tmux {
    server: String,
}

impl Tmux {
    fn start(command: &str) -> Option<Tmux> {
        let server = format!("peerlet-repl-test-{}", std::process::id());
        let started = Command::new("tmux")
            .args([
                "-L",
                &server,
                "new-session",
                "-d",
                "-s",
                "repl",
                "-x",
                "160",
                "-y",
                "50",
            ])
            .arg(command)
            .status()
            .ok()?;
        assert!(started.success(), "tmux new-session failed");
        Some(Tmux { server })
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.server])
            .args(args)
            .output()
            .expect("run tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types `text` literally (no key names), then Enter.
    fn line(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "repl", "-l", text]);
        self.tmux(&["send-keys", "-t", "repl", "Enter"]);
    }

    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "repl", "-S", "-200"])
    }

    /// Waits until the screen has a line for which `want` holds.
    fn wait_for(&self, what: &str, want: impl Fn(&str) -> bool) {
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.screen();
            if screen.lines().any(|l| want(l.trim_end())) {
                return;
            }
            assert!(Instant::now() < end, "no {what} on the screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.server, "kill-server"])
            .status();
    }
}

#[test]
fn console_in_a_terminal_edits_completes_loads_and_leaves() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("tmux is not installed: skipping the terminal test");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let peerlet_file = dir.path().join("echo.lua");
    std::fs::write(
        &peerlet_file,
        "--@peerlet name=echo type=end-node version=1\nreturn { deliver = function() end }\n",
    )
    .unwrap();
    let command = format!(
        "RUST_LOG=warn {} node --listen 127.0.0.1:0 --data {} --repl; echo EXITED $?; sleep 60",
        env!("CARGO_BIN_EXE_peerlet"),
        data.display()
    );
    let Some(t) = Tmux::start(&command) else {
        eprintln!("tmux did not start: skipping the terminal test");
        return;
    };
    t.wait_for("prompt", |l| l.starts_with("peerlet>"));
    t.line("function twice(a)");
    t.line("  return a * 2");
    t.line("end");
    t.line("twice(21)");
    t.wait_for("42", |l| l == "42");
    t.tmux(&["send-keys", "-t", "repl", "-l", "kbr.neighb"]);
    t.tmux(&["send-keys", "-t", "repl", "Tab"]);
    t.wait_for("completion", |l| l.ends_with("kbr.neighbor_set"));
    t.line("(2)");
    t.wait_for("empty neighbour set", |l| l == "{}");
    t.line(".peers");
    t.wait_for(".peers", |l| l.starts_with("predecessor"));
    // Ids inside tables are shortened (and marked so); whole on request.
    t.line("kbr.id()");
    t.wait_for("a short id", |l| {
        l.trim_start().starts_with("id = ")
            && l.split("id = ").nth(1).is_some_and(|id| {
                let hex: String = id.chars().take_while(char::is_ascii_hexdigit).collect();
                hex.len() >= 8 && hex.len() < 40 && id[hex.len()..].starts_with('…')
            })
    });
    t.line("#kbr.id().id");
    t.wait_for("a whole id", |l| l == "40");
    // The log streams above the prompt until .log off.
    t.line(".log debug");
    t.wait_for(".log", |l| {
        l.starts_with("streaming the node's log at debug")
    });
    t.line("log.debug('tty-marker')");
    t.wait_for("a log line", |l| l.contains("DEBUG peerlet: tty-marker"));
    t.line(".log off");
    t.wait_for(".log off", |l| l == "log stream stopped");
    t.line(&format!(".load {}", peerlet_file.display()));
    t.wait_for(".load", |l| l.starts_with("installed echo.lua"));
    // Peerlet names complete too (the node tells them after each line).
    t.tmux(&["send-keys", "-t", "repl", "-l", ".unload ec"]);
    t.tmux(&["send-keys", "-t", "repl", "Tab"]);
    t.wait_for("name completion", |l| l.ends_with(".unload echo"));
    t.tmux(&["send-keys", "-t", "repl", "Enter"]);
    t.wait_for(".unload", |l| l.starts_with("unloaded `echo`"));
    t.line("while true do end");
    t.wait_for("budget abort", |l| l.contains("instruction budget"));
    t.line("twice(50)");
    t.wait_for("100", |l| l == "100");
    t.tmux(&["send-keys", "-t", "repl", "C-d"]);
    t.wait_for("exit", |l| l == "EXITED 0");
    assert!(data.join("repl_history").exists(), "history saved");
}
