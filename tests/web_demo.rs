//! `peerlet demo` serves its web view by default and prints the URL under
//! its banner; the page shows every node of the demo, `.spawn`ed ones too.
//! The demo's console wants a terminal: it runs in tmux (which CI
//! installs; without it this test fails and says so).

#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmux server of our own (its own socket name), killed when dropped.
struct Tmux {
    server: String,
}

impl Tmux {
    fn start(command: &str) -> Tmux {
        let server = format!("peerlet-web-demo-{}", std::process::id());
        let started = Command::new("tmux")
            .args([
                "-L",
                &server,
                "new-session",
                "-d",
                "-s",
                "demo",
                "-x",
                "200",
                "-y",
                "60",
            ])
            .arg(command)
            .status()
            .unwrap_or_else(|e| panic!("this test needs tmux (apt-get install -y tmux): {e}"));
        assert!(started.success(), "tmux new-session failed");
        Tmux { server }
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.server])
            .args(args)
            .output()
            .expect("run tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn line(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "demo", "-l", text]);
        self.tmux(&["send-keys", "-t", "demo", "Enter"]);
    }

    /// The first line on the screen for which `want` gives something.
    fn wait_for<T>(&self, what: &str, want: impl Fn(&str) -> Option<T>) -> T {
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            let screen = self.tmux(&["capture-pane", "-p", "-t", "demo", "-S", "-200"]);
            if let Some(found) = screen.lines().find_map(|l| want(l.trim_end())) {
                return found;
            }
            assert!(Instant::now() < end, "no {what} on the screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(100));
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

/// How many nodes `GET /api/ring` shows in full.
fn nodes_shown(addr: SocketAddr) -> usize {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "GET /api/ring HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let body = raw.split_once("\r\n\r\n").expect("an answer").1;
    let snapshot: serde_json::Value = serde_json::from_str(body).expect("JSON");
    snapshot["nodes"].as_array().expect("nodes").len()
}

#[test]
fn the_demo_prints_its_web_view_which_shows_every_node_of_the_demo() {
    let work = tempfile::tempdir().unwrap();
    let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("peerlets");
    let command = format!(
        "HOME={home} {exe} demo --nodes 3 --dir {dir} --samples {samples}; sleep 60",
        home = work.path().display(),
        exe = env!("CARGO_BIN_EXE_peerlet"),
        dir = work.path().join("demo").display(),
        samples = samples.display(),
    );
    let t = Tmux::start(&command);
    let url = t.wait_for("the web view's URL", |l| {
        l.strip_prefix("Watch the ring in a browser: ")
            .map(str::to_string)
    });
    let authority = url.trim_start_matches("http://").trim_end_matches('/');
    let addr: SocketAddr = authority.parse().expect("IP:PORT");
    assert!(addr.ip().is_loopback(), "{url}");
    assert_eq!(nodes_shown(addr), 3);
    t.wait_for("prompt", |l| l.starts_with("peerlet>").then_some(()));
    t.line(".spawn");
    t.wait_for("a new node", |l| {
        l.contains("joined the ring").then_some(())
    });
    assert_eq!(nodes_shown(addr), 4, "the spawned node is shown too");
    t.tmux(&["send-keys", "-t", "demo", "C-d"]);
    let end = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(addr).is_ok() {
        assert!(Instant::now() < end, "the web view outlived the demo");
        std::thread::sleep(Duration::from_millis(100));
    }
}
