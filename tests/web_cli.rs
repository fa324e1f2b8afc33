//! The web view from the command line: `peerlet testnet --http` prints the
//! page's address and serves every node; `peerlet node --http PORT` logs it
//! and binds 127.0.0.1; bad `--http` and `--sim-runs` values are refused
//! with the reason.

#![forbid(unsafe_code)]

#[path = "common/http_client.rs"]
mod http_client;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use http_client::request;

#[test]
fn testnet_prints_the_web_view_and_serves_it() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_peerlet"))
        .args([
            "testnet",
            "3",
            "--http",
            "127.0.0.1:0",
            "--stabilize-ms",
            "100",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut url = None;
    let mut line = String::new();
    for _ in 0..10 {
        line.clear();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if let Some(u) = line.trim().strip_prefix("web view ") {
            url = Some(u.to_string());
            break;
        }
    }
    let url = url.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("testnet printed no `web view URL` line");
    });
    let authority = url.trim_start_matches("http://").trim_end_matches('/');
    let addr: SocketAddr = authority.parse().expect("an IP address and port");
    assert!(addr.ip().is_loopback(), "binds 127.0.0.1 by default: {url}");
    let page = request(addr, "GET /", &[&format!("Host: {authority}")], "");
    let snapshot = request(addr, "GET /api/ring", &[&format!("Host: {authority}")], "");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<svg id=\"ring\""));
    let snapshot: serde_json::Value = serde_json::from_str(&snapshot.body).unwrap();
    assert_eq!(
        snapshot["nodes"].as_array().unwrap().len(),
        3,
        "every node of the testnet"
    );
}

#[test]
fn a_node_logs_its_web_view_and_bad_options_are_refused_with_the_reason() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_peerlet"))
        .args(["node", "--listen", "127.0.0.1:0", "--http", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = BufReader::new(child.stderr.take().unwrap());
    let url = err.lines().map_while(Result::ok).take(50).find_map(|l| {
        l.split_once("web view: ")
            .map(|(_, u)| u.trim().to_string())
    });
    let Some(url) = url else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the node logged no `web view: URL`");
    };
    let authority = url.trim_start_matches("http://").trim_end_matches('/');
    let addr: SocketAddr = authority.parse().expect("IP:PORT");
    let a = request(addr, "GET /api/ring", &[&format!("Host: {authority}")], "");
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        addr.ip().is_loopback(),
        "a port alone means 127.0.0.1: {url}"
    );
    let snapshot: serde_json::Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(snapshot["nodes"].as_array().unwrap().len(), 1);

    for (args, says) in [
        (&["--http", "somewhere"][..], "want IP:PORT"),
        (
            &["--http", "0", "--sim-runs", "/nonexistent/runs"][..],
            "not a directory",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_peerlet"))
            .args(["testnet", "1"])
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
