//! Helpers of the REPL tests: a `peerlet node` with a data directory (so a
//! control socket), and `peerlet repl SOCKET -e CODE` runs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use super::NodeProcess;

/// A node with a data directory, and its control socket.
pub struct Attached {
    pub node: NodeProcess,
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
}

/// Starts a node (joining `join`, if given) with the fast settings and a
/// data directory of its own.
pub fn start_attached(join: Option<SocketAddr>) -> Attached {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("node");
    let node = NodeProcess::start(join, &["--data", data.to_str().unwrap()], Stdio::null());
    // The socket listens before the `listening` line is printed.
    let socket = data.join("control.sock");
    assert!(socket.exists(), "no control socket at {}", socket.display());
    Attached { node, dir, socket }
}

/// Runs `peerlet repl SOCKET -e CODE`.
pub fn eval(socket: &Path, code: &str) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_peerlet"))
        .arg("repl")
        .arg(socket)
        .args(["-e", code])
        .output()
        .expect("run peerlet repl")
}

/// What a run printed on stdout, without the final newline.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}
