//! The REPL against a real `peerlet node` process: `peerlet repl -e` in
//! scripts, the control socket's permissions (other users refused) and its
//! refusal of bad frames, `.load` then `.apps`, and a runaway console line
//! aborted while the console stays usable.

#![forbid(unsafe_code)]

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::repl::{eval, start_attached, stdout, Attached};
use common::NodeProcess;
use peerlet::control::{Client, Request, Response};
use peerlet_repl::Connection;

fn start_node() -> Attached {
    start_attached(None)
}

#[test]
fn eval_prints_values_and_exits_non_zero_on_errors() {
    let a = start_node();
    let two = eval(&a.socket, "1+1");
    assert!(two.status.success(), "{two:?}");
    assert_eq!(stdout(&two), "2");
    let addr = eval(&a.socket, "kbr.id().addr");
    assert!(addr.status.success(), "{addr:?}");
    assert_eq!(stdout(&addr), a.node.me.addr.to_string());
    let statement = eval(&a.socket, "answer = 42");
    assert!(statement.status.success());
    assert_eq!(stdout(&statement), "");
    assert_eq!(stdout(&eval(&a.socket, "answer")), "42");
    assert_eq!(
        stdout(&eval(&a.socket, "{b = 2, a = {1, 2}}")),
        "{ a = { 1, 2 }, b = 2 }"
    );
    let failed = eval(&a.socket, "error('boom')");
    assert!(!failed.status.success());
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(err.contains("console:1: boom"), "{err}");
    let syntax = eval(&a.socket, "x = = 1");
    assert!(!syntax.status.success());
    let ring = stdout(&eval(&a.socket, ".ring"));
    assert!(ring.starts_with("1 node(s) known"), "{ring}");
    let unknown = eval(&a.socket, ".nope");
    assert!(!unknown.status.success());
}

#[test]
fn control_socket_is_owner_only_and_survives_bad_frames() {
    let a = start_node();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&a.socket), 0o600);
    assert_eq!(mode(a.socket.parent().unwrap()), 0o700);
    for bad in [
        // Not CBOR of a request.
        vec![0, 0, 0, 3, 0xff, 0xff, 0xff],
        // A length beyond the limit.
        vec![0xff, 0xff, 0xff, 0xff, 1, 2, 3],
    ] {
        let mut raw = UnixStream::connect(&a.socket).expect("connect");
        raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        raw.write_all(&bad).unwrap();
        // Closed without a reply: end of stream, or a reset when the node
        // left bytes of the bad frame unread.
        let mut rest = Vec::new();
        match raw.read_to_end(&mut rest) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("a bad frame must close the connection: {other:?} {rest:?}"),
        }
    }
    let mut client = Client::connect(&a.socket).expect("still serving");
    assert_eq!(
        client
            .request(&Request::Eval { code: "1+1".into() })
            .unwrap(),
        Response::Ok("2".into())
    );
}

#[test]
fn loaded_peerlet_is_listed_by_apps_and_can_be_unloaded() {
    let a = start_node();
    let file = a.dir.path().join("greeter.lua");
    std::fs::write(
        &file,
        "--@peerlet name=greeter type=end-node version=3\n\
         local P = {}\n\
         function P.deliver(key, msg) end\n\
         return P\n",
    )
    .unwrap();
    let load = eval(&a.socket, &format!(".load {}", file.display()));
    assert!(load.status.success(), "{load:?}");
    let apps = stdout(&eval(&a.socket, ".apps"));
    let line = apps
        .lines()
        .find(|l| l.starts_with("greeter "))
        .expect(&apps);
    assert!(line.contains("end-node 3"), "{line}");
    let unload = eval(&a.socket, ".unload greeter");
    assert!(unload.status.success(), "{unload:?}");
    assert!(!stdout(&eval(&a.socket, ".apps")).contains("greeter"));
    assert!(!eval(&a.socket, ".unload greeter").status.success());
}

#[test]
fn versions_asks_the_overlay_through_the_control_socket() {
    let a = start_node();
    let out = eval(&a.socket, ".versions nosuch");
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(
        text.contains("`nosuch`: no publisher has published this name"),
        "{text}"
    );
    let out = eval(&a.socket, ".versions");
    assert!(!out.status.success(), "usage: {out:?}");
}

#[test]
fn runaway_line_is_aborted_and_the_console_stays_usable() {
    let a = start_node();
    let mut client = Client::connect(&a.socket).unwrap();
    let mut ask = |code: &str| {
        client
            .request(&Request::Eval { code: code.into() })
            .unwrap()
    };
    assert_eq!(ask("kept = 7"), Response::Ok(String::new()));
    match ask("while true do end") {
        Response::Error(e) => assert!(e.contains("instruction budget"), "{e}"),
        other => panic!("a runaway line must be aborted: {other:?}"),
    }
    assert_eq!(ask("kept"), Response::Ok("7".into()));
    // Past the strike limit the console is replaced: it answers again.
    for _ in 0..4 {
        let _ = ask("while true do end");
    }
    match ask("1+1") {
        Response::Ok(text) => assert!(text.ends_with('2'), "{text}"),
        other => panic!("the console must survive: {other:?}"),
    }
    assert!(a.node.child.id() > 0);
}

#[test]
fn console_calls_a_loaded_peerlet_and_reload_keeps_its_state() {
    let a = start_node();
    let file = a.dir.path().join("counter.lua");
    std::fs::write(
        &file,
        "--@peerlet name=counter type=end-node version=1\n\
         local P = {}\n\
         local n = 0\n\
         function P.bump(by) n = n + by return n end\n\
         function P.save() return n end\n\
         function P.restore(saved) n = saved end\n\
         return P\n",
    )
    .unwrap();
    let load = eval(&a.socket, &format!(".load {}", file.display()));
    assert!(load.status.success(), "{load:?}");
    let app = stdout(&load).rsplit(' ').next().unwrap().to_string();
    assert_eq!(app.len(), 32, "{load:?}");
    let bump = format!("peerlet.lookup(kbr.key('anything'), '{app}'):bump(5)");
    assert_eq!(stdout(&eval(&a.socket, &bump)), "5");
    let reload = eval(&a.socket, &format!(".reload counter {}", file.display()));
    assert!(reload.status.success(), "{reload:?}");
    assert_eq!(stdout(&eval(&a.socket, &bump)), "10", "state kept");
    // Without FILE: the file it was loaded from.
    let again = eval(&a.socket, ".reload counter");
    assert!(again.status.success(), "{again:?}");
    assert_eq!(stdout(&eval(&a.socket, &bump)), "15", "state kept");
    assert!(!eval(&a.socket, ".reload nobody").status.success());
    let missing = format!("peerlet.lookup(kbr.key('anything'), '{app}'):nope()");
    assert!(!eval(&a.socket, &missing).status.success());
}

/// Starts `peerlet node` with exactly `args` (after `--listen 127.0.0.1:0`)
/// and waits for its `listening` line.
fn start_with(args: &[&str]) -> NodeProcess {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_peerlet"))
        .args(["node", "--listen", "127.0.0.1:0"])
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start peerlet node");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if let Some(Ok(line)) = std::io::BufReader::new(stdout).lines().next() {
            let _ = tx.send(line);
        }
    });
    let mut node = NodeProcess {
        child,
        me: peerlet::wire::NodeRef {
            id: peerlet::id::Id::ZERO,
            addr: "0.0.0.0:0".parse().unwrap(),
        },
    };
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("a `listening ADDR id HEX` line");
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words.len(), 4, "{line}");
    node.me.addr = words[1].parse().unwrap();
    node.me.id = words[3].parse().unwrap();
    node
}

#[test]
fn interrupt_ends_a_line_waiting_on_a_frozen_node() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("a");
    // A long hop timeout: the line waits on the frozen node until interrupted.
    let flags = [
        "--stabilize-ms",
        "150",
        "--rpc-timeout-ms",
        "20000",
        "--data",
    ];
    let mut args: Vec<&str> = flags.to_vec();
    args.push(data.to_str().unwrap());
    let a = start_with(&args);
    let b = NodeProcess::start(Some(a.me.addr), &[], Stdio::null());
    let socket = data.join("control.sock");
    let end = Instant::now() + Duration::from_secs(30);
    while !stdout(&eval(&socket, ".peers")).contains(&b.me.addr.to_string()) {
        assert!(Instant::now() < end, "A never learnt of B");
        std::thread::sleep(Duration::from_millis(50));
    }
    b.freeze();
    let line = format!("peerlet.lookup('{}', '{}'):m()", b.me.id, "0".repeat(32));
    let for_line = socket.clone();
    let waiting = std::thread::spawn(move || {
        let started = Instant::now();
        (eval(&for_line, &line), started.elapsed())
    });
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        let mut client = Client::connect(&socket).unwrap();
        if client.request(&Request::Interrupt).unwrap() == Response::Ok("interrupted".into()) {
            break;
        }
        assert!(Instant::now() < end, "the line never waited");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (out, took) = waiting.join().unwrap();
    assert!(!out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted"));
    assert!(took < Duration::from_secs(15), "{took:?}");
    assert_eq!(stdout(&eval(&socket, "1+1")), "2");
    drop(a);
}

/// A command that runs a program as the unprivileged user `nobody`
/// (65534), if this system has one of the usual tools.
fn as_nobody() -> Option<std::process::Command> {
    let works = |tool: &str, args: &[&str]| {
        std::process::Command::new(tool)
            .args(args)
            .arg("true")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let setpriv = ["--reuid=65534", "--regid=65534", "--clear-groups"];
    let runuser = ["-u", "nobody", "--"];
    for (tool, args) in [("setpriv", &setpriv[..]), ("runuser", &runuser[..])] {
        if works(tool, args) {
            let mut cmd = std::process::Command::new(tool);
            cmd.args(args);
            return Some(cmd);
        }
    }
    None
}

#[test]
fn control_socket_refuses_other_users() {
    let Some(mut nobody) = as_nobody() else {
        eprintln!("neither setpriv nor runuser can switch to uid 65534: skipping");
        return;
    };
    let a = start_node();
    let attach = |cmd: &mut std::process::Command| {
        cmd.arg(env!("CARGO_BIN_EXE_peerlet"))
            .arg("repl")
            .arg(&a.socket)
            .args(["-e", "1+1"])
            .output()
            .expect("run peerlet repl as nobody")
    };
    let refused = |out: &Output| {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "another user got in: {out:?}");
        assert!(err.contains("cannot attach"), "{err}");
        assert!(err.contains("Permission denied"), "{err}");
    };
    // Let the other user reach the data directory's parent: the 0700 data
    // directory alone keeps it out.
    let public = std::fs::Permissions::from_mode(0o755);
    std::fs::set_permissions(a.dir.path(), public.clone()).unwrap();
    refused(&attach(&mut nobody));
    // Even with the data directory opened up, the 0600 socket refuses.
    let data = a.socket.parent().unwrap();
    std::fs::set_permissions(data, public).unwrap();
    refused(&attach(&mut as_nobody().unwrap()));
    // The check itself works: with the socket opened too, the other user
    // gets in, so the refusals above came from the modes.
    std::fs::set_permissions(&a.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let opened = attach(&mut as_nobody().unwrap());
    assert_eq!(stdout(&opened), "2", "{opened:?}");
    std::fs::set_permissions(&a.socket, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(data, std::fs::Permissions::from_mode(0o700)).unwrap();
    // The owner still gets in.
    assert_eq!(stdout(&eval(&a.socket, "1+1")), "2");
}
