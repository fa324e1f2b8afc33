//! `.load` against real `peerlet node` processes: a peerlet loaded on one
//! node is reached from another node's console, and a node with a trusted
//! key of its own signs what it loads.

#![forbid(unsafe_code)]

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::eventually;
use common::repl::{eval, start_attached, stdout};
use common::NodeProcess;

const GREETER: &str = "--@peerlet name=greeter type=end-node version=1
local P = {}
local greeted = 0

function P.greet(who)
  greeted = greeted + 1
  return 'hello ' .. who .. ' from ' .. kbr.id().addr
end

function P.greeted()
  return greeted
end

return P
";

/// `.load FILE` on the node behind `socket`; returns the answer's text.
fn load(socket: &Path, file: &Path) -> String {
    let out = eval(socket, &format!(".load {}", file.display()));
    assert!(out.status.success(), "{out:?}");
    stdout(&out)
}

#[test]
fn peerlet_loaded_on_one_node_is_called_from_another() {
    let a = start_attached(None);
    let b = start_attached(Some(a.node.me.addr));
    let file = a.dir.path().join("greeter.lua");
    std::fs::write(&file, GREETER).unwrap();
    let loaded = load(&a.socket, &file);
    assert!(loaded.contains("(unsigned, this node's own)"), "{loaded}");
    let app = loaded.rsplit(' ').next().unwrap().to_string();
    // From B's console, routed to the root of A's id: A itself.
    let call = format!("peerlet.lookup('{}', '{app}'):greet('b')", a.node.me.id);
    let want = format!("hello b from {}", a.node.me.addr);
    eventually(Duration::from_secs(30), || {
        let out = eval(&b.socket, &call);
        match stdout(&out) {
            got if got == want => Ok(()),
            _ => Err(format!("{out:?}")),
        }
    });
    let count = format!("peerlet.lookup(kbr.id().id, '{app}'):greeted()");
    let greeted: u32 = stdout(&eval(&a.socket, &count)).parse().unwrap();
    assert!(greeted >= 1, "the call was delivered on A");
    // B has no such peerlet: the call went over the overlay.
    assert!(!stdout(&eval(&b.socket, ".apps")).contains("greeter"));
}

/// Makes a key pair in `dir` with `peerlet keygen`.
fn keygen(dir: &Path) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_peerlet"))
        .arg("keygen")
        .arg("-s")
        .arg(dir.join("peerlet.key"))
        .arg("-p")
        .arg(dir.join("peerlet.pub"))
        .output()
        .expect("run peerlet keygen");
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn load_signs_with_the_nodes_trusted_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    std::fs::create_dir(&data).unwrap();
    keygen(&data);
    let public = data.join("peerlet.pub");
    let node = NodeProcess::start(
        None,
        &[
            "--data",
            data.to_str().unwrap(),
            "--trust",
            public.to_str().unwrap(),
        ],
        Stdio::null(),
    );
    let socket = data.join("control.sock");
    let file = dir.path().join("greeter.lua");
    std::fs::write(&file, GREETER).unwrap();
    let loaded = load(&socket, &file);
    assert!(loaded.contains("signed here with"), "{loaded}");
    assert!(
        !file.with_extension("lua.minisig").exists(),
        "signed in memory only"
    );
    let apps = stdout(&eval(&socket, ".apps"));
    let line = apps.lines().find(|l| l.starts_with("greeter ")).unwrap();
    assert!(!line.contains("local (unsigned)"), "{apps}");
    // .reload of a signed peerlet signs the new code too: same app id,
    // still signed (so its messages carry the new code's locator).
    let reloaded = stdout(&eval(&socket, ".reload greeter"));
    assert!(reloaded.contains("signed here with"), "{reloaded}");
    let app = line.split_whitespace().nth(1).unwrap();
    assert!(reloaded.contains(app), "same app id: {reloaded}");
    let apps = stdout(&eval(&socket, ".apps"));
    let line = apps.lines().find(|l| l.starts_with("greeter ")).unwrap();
    assert!(!line.contains("local (unsigned)"), "{apps}");
    // Without a usable key, a signed peerlet is not swapped for unsigned code.
    std::fs::remove_file(data.join("peerlet.key")).unwrap();
    let refused = eval(&socket, ".reload greeter");
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("the running peerlet is signed"), "{err}");
    drop(node);

    // The same key, not trusted: the node installs the file as its own
    // and says why.
    let untrusting = start_attached(None);
    let untrusted_data = untrusting.socket.parent().unwrap();
    keygen(untrusted_data);
    let loaded = load(&untrusting.socket, &file);
    assert!(loaded.contains("does not trust the key"), "{loaded}");
    let apps = stdout(&eval(&untrusting.socket, ".apps"));
    assert!(apps.contains("local (unsigned)"), "{apps}");
}
