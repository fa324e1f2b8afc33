//! A headless chromium driven over the DevTools protocol (a WebSocket),
//! for the web view's tests: open a page, evaluate JavaScript in it, wait
//! for a condition, take a screenshot. No npm, no driver binary.
//!
//! The browser is Debian's `chromium` (`PEERLET_CHROMIUM` names another).
//! Without it the test fails and says how to install it: CI installs it
//! (.ci/run), so a missing browser must not pass silently.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

/// How long one DevTools answer may take on a loaded machine.
const ANSWER_LIMIT: Duration = Duration::from_secs(60);

pub struct Browser {
    child: Child,
    ws: WebSocket<TcpStream>,
    session: String,
    next_id: u64,
    _profile: tempfile::TempDir,
}

fn executable() -> String {
    if let Ok(exe) = std::env::var("PEERLET_CHROMIUM") {
        return exe;
    }
    for exe in ["chromium", "chromium-browser"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {exe}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if found {
            return exe.to_string();
        }
    }
    panic!(
        "the web view's browser test needs Debian's chromium: `apt-get install -y chromium` \
         (.ci/run installs it), or set PEERLET_CHROMIUM to a chromium binary"
    );
}

impl Browser {
    /// Starts a headless chromium with a fresh profile and opens `url` in
    /// a tab of it.
    pub fn open(url: &str) -> Browser {
        let exe = executable();
        let profile = tempfile::tempdir().expect("profile directory");
        let child = Command::new(&exe)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1400,1100",
                "--remote-debugging-port=0",
                "--remote-debugging-address=127.0.0.1",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {exe}: {e}"));
        let mut browser_guard = ChildGuard(Some(child));
        let (port, path) = devtools_port(profile.path());
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("DevTools port");
        stream.set_read_timeout(Some(ANSWER_LIMIT)).unwrap();
        let (ws, _) = tungstenite::client(format!("ws://127.0.0.1:{port}{path}"), stream)
            .expect("DevTools WebSocket");
        let mut browser = Browser {
            child: browser_guard.0.take().unwrap(),
            ws,
            session: String::new(),
            next_id: 0,
            _profile: profile,
        };
        let target = browser.call("Target.createTarget", json!({ "url": url }));
        let target_id = target["targetId"].as_str().expect("targetId").to_string();
        let attached = browser.call(
            "Target.attachToTarget",
            json!({ "targetId": target_id, "flatten": true }),
        );
        browser.session = attached["sessionId"].as_str().expect("sessionId").into();
        browser
    }

    /// Sends one DevTools command (to the tab once attached) and waits for
    /// its answer, skipping events.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if !self.session.is_empty() {
            msg["sessionId"] = json!(self.session);
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .expect("DevTools send");
        let end = Instant::now() + ANSWER_LIMIT;
        loop {
            assert!(Instant::now() < end, "no DevTools answer to {method}");
            let frame = self.ws.read().expect("DevTools answer");
            let Message::Text(text) = frame else { continue };
            let answer: Value = serde_json::from_str(text.as_str()).expect("DevTools JSON");
            if answer["id"].as_u64() != Some(id) {
                continue;
            }
            if let Some(e) = answer.get("error") {
                panic!("DevTools {method}: {e}");
            }
            return answer["result"].clone();
        }
    }

    /// The value of a JavaScript expression in the page (promises awaited).
    pub fn eval(&mut self, expression: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("JavaScript `{expression}` threw: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Waits until `expression` is truthy in the page; its value. While
    /// the page loads, an expression that throws counts as false.
    pub fn wait_for(&mut self, expression: &str, limit: Duration) -> Value {
        let end = Instant::now() + limit;
        let tried = format!(
            "(() => {{ try {{ return ({expression}); }} catch (e) {{ return null; }} }})()"
        );
        loop {
            let v = self.eval(&tried);
            let truthy = !(v.is_null() || v == json!(false) || v == json!(0) || v == json!(""));
            if truthy {
                return v;
            }
            assert!(
                Instant::now() < end,
                "not true in the page within {limit:?}: {expression}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Saves a PNG of the tab to `path`; its size in bytes.
    pub fn screenshot(&mut self, path: &Path) -> usize {
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png" }));
        let data = shot["data"].as_str().expect("screenshot data");
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("base64 PNG");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, &png).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        png.len()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.ws.close(None);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Kills the browser if opening it fails half-way.
struct ChildGuard(Option<Child>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The DevTools port and browser path chromium writes to its profile.
fn devtools_port(profile: &Path) -> (u16, String) {
    let file = profile.join("DevToolsActivePort");
    let end = Instant::now() + ANSWER_LIMIT;
    loop {
        if let Ok(text) = std::fs::read_to_string(&file) {
            let mut lines = text.lines();
            if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                if let Ok(port) = port.trim().parse() {
                    return (port, path.trim().to_string());
                }
            }
        }
        assert!(
            Instant::now() < end,
            "chromium did not open its DevTools port"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
