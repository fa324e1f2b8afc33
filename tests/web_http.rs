//! The web view over plain HTTP on loopback: another site's Origin and a
//! name that is not this server's (DNS rebinding) get no data; the JSON
//! snapshot and the event stream carry the ring; a trace request with bad
//! input gets a clear error and the server keeps serving; the plots of a
//! simulator run are listed and served read-only; a lone node's page and
//! deployments by traffic.

#![forbid(unsafe_code)]

mod common;
#[path = "common/http_client.rs"]
mod http_client;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{converged_ring, spawn_fast};
use http_client::request;
use peerlet::node::NodeHandle;
use peerlet::web::WebServer;

fn host(web: &WebServer) -> String {
    format!("Host: {}", web.addr())
}

fn ring(n: usize) -> Vec<Arc<NodeHandle>> {
    converged_ring(n, spawn_fast)
        .into_iter()
        .map(Arc::new)
        .collect()
}

/// A node alone in its ring.
fn lone_node() -> Vec<Arc<NodeHandle>> {
    let node = spawn_fast(None);
    node.wait_joined(Duration::from_secs(20))
        .expect("a ring of one");
    vec![Arc::new(node)]
}

fn serve(nodes: &[Arc<NodeHandle>], runs: Option<std::path::PathBuf>) -> WebServer {
    peerlet::web::serve(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(nodes.to_vec()),
        runs,
    )
    .unwrap()
}

#[test]
fn another_origin_and_a_rebound_name_get_no_data() {
    let nodes = ring(3);
    let web = serve(&nodes, None);
    let addr = web.addr();
    let ok = request(addr, "GET /api/ring", &[&host(&web)], "");
    assert_eq!(ok.status, 200);
    assert!(ok.body.contains(&nodes[1].id().to_string()), "{}", ok.body);

    for path in ["/api/ring", "/events", "/", "/app.js"] {
        let foreign = request(
            addr,
            &format!("GET {path}"),
            &[&host(&web), "Origin: http://evil.example"],
            "",
        );
        assert_eq!(foreign.status, 403, "{path}");
        assert!(
            foreign.body.contains("Origin `http://evil.example`"),
            "{}",
            foreign.body
        );
        for n in &nodes {
            assert!(
                !foreign.body.contains(&n.id().to_string()[..8]),
                "no data: {}",
                foreign.body
            );
        }
        assert_eq!(foreign.header("access-control-allow-origin"), None);
    }
    let port = addr.port();
    let rebound = request(
        addr,
        "GET /api/ring",
        &[&format!("Host: attacker.example:{port}")],
        "",
    );
    assert_eq!(rebound.status, 403);
    assert!(rebound.body.contains("DNS rebinding"), "{}", rebound.body);
    assert!(!rebound.body.contains(&nodes[0].id().to_string()[..8]));
    let trace = request(
        addr,
        "POST /api/trace",
        &[&format!("Host: attacker.example:{port}")],
        r#"{"key": "colour"}"#,
    );
    assert_eq!(trace.status, 403);
    // Its own origin, by address or as localhost, is served.
    let same = request(
        addr,
        "GET /api/ring",
        &[
            &format!("Host: localhost:{port}"),
            &format!("Origin: http://localhost:{port}"),
        ],
        "",
    );
    assert_eq!(same.status, 200);
    assert_eq!(ok.header("x-frame-options"), None);
    assert!(ok
        .header("content-security-policy")
        .unwrap()
        .contains("frame-ancestors 'none'"));
}

#[test]
fn the_event_stream_pushes_the_ring_without_being_asked() {
    let nodes = ring(3);
    let web = serve(&nodes, None);
    let mut s = TcpStream::connect(web.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(s, "GET /events HTTP/1.1\r\n{}\r\n\r\n", host(&web)).unwrap();
    let mut reader = BufReader::new(s);
    let (mut events, mut content_type) = (Vec::new(), String::new());
    let end = Instant::now() + Duration::from_secs(60);
    // Two events, the second pushed by the server on a change (the
    // counters of a live ring always move).
    while events.len() < 2 && Instant::now() < end {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if line.to_ascii_lowercase().starts_with("content-type:") {
            content_type = line.clone();
        }
        if let Some(data) = line.trim_end().strip_prefix("data: ") {
            events.push(serde_json::from_str::<serde_json::Value>(data).expect("JSON event"));
        }
    }
    assert!(content_type.contains("text/event-stream"), "{content_type}");
    assert_eq!(events.len(), 2, "two ring events");
    for e in &events {
        assert_eq!(e["nodes"].as_array().unwrap().len(), 3);
        assert_eq!(e["known"].as_array().unwrap().len(), 3);
        let first = &e["nodes"][0];
        assert_eq!(first["id"], nodes[0].id().to_string());
        assert!(
            first["successors"]
                .as_array()
                .is_some_and(|s| !s.is_empty()),
            "{first}"
        );
    }
    assert_ne!(events[0], events[1], "only a change is pushed");
}

#[test]
fn a_bad_trace_request_gets_a_clear_error_and_the_server_keeps_serving() {
    let nodes = ring(3);
    let web = serve(&nodes, None);
    let (addr, h) = (web.addr(), host(&web));
    let long_key = format!(r#"{{"key": "{}"}}"#, "k".repeat(300));
    let from_elsewhere = format!(r#"{{"key": "x", "from": "{}"}}"#, "ab".repeat(20));
    for (body, says) in [
        ("not json", "trace request: want"),
        (r#"{"key": ""}"#, "give a key"),
        (long_key.as_str(), "at most 256 bytes"),
        (from_elsewhere.as_str(), "not one of this process's"),
    ] {
        let a = request(addr, "POST /api/trace", &[&h], body);
        assert_eq!(a.status, 400, "{body}");
        assert!(a.body.contains(says), "{body}: {}", a.body);
    }
    let big = "x".repeat(10_000);
    assert_eq!(request(addr, "POST /api/trace", &[&h], &big).status, 400);
    // Bytes that are not HTTP: that connection is answered 400 or closed.
    let mut junk = TcpStream::connect(addr).unwrap();
    junk.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    junk.write_all(b"\x16\x03\x01 not http at all\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = std::io::Read::read_to_end(&mut junk, &mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
        "{answer}"
    );
    let wrong_method = request(addr, "DELETE /api/ring", &[&h], "");
    assert_eq!(wrong_method.status, 405);

    let from = nodes[2].id().to_string();
    let ok = request(
        addr,
        "POST /api/trace",
        &[&h],
        &format!(r#"{{"key": "colour", "from": "{from}"}}"#),
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    let trace: serde_json::Value = serde_json::from_str(&ok.body).unwrap();
    assert_eq!(trace["from"], from.as_str());
    assert_eq!(trace["key"], peerlet::id::Id::key("colour").to_string());
    let hops = trace["hops"].as_array().unwrap();
    assert_eq!(hops[0]["id"], from.as_str(), "hop 0 is the source");
    assert_eq!(hops.last().unwrap()["root"], true);
}

#[test]
fn simulator_plots_are_listed_and_served_read_only() {
    let nodes = lone_node();
    let runs = tempfile::tempdir().unwrap();
    std::fs::create_dir(runs.path().join("run-1")).unwrap();
    let hops = r#"<svg xmlns="http://www.w3.org/2000/svg"><text>path lengths</text></svg>"#;
    std::fs::write(runs.path().join("hops.svg"), hops).unwrap();
    std::fs::write(
        runs.path().join("run-1/load.svg"),
        "<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
    )
    .unwrap();
    std::fs::write(runs.path().join("secret.txt"), "SECRET-CONTENT").unwrap();
    let web = serve(&nodes, Some(runs.path().to_path_buf()));
    let (addr, h) = (web.addr(), host(&web));
    let list = request(addr, "GET /api/runs", &[&h], "");
    assert_eq!(list.status, 200);
    let list: serde_json::Value = serde_json::from_str(&list.body).unwrap();
    assert_eq!(
        list["plots"],
        serde_json::json!(["hops.svg", "run-1/load.svg"])
    );
    let plot = request(addr, "GET /runs/hops.svg", &[&h], "");
    assert_eq!(plot.status, 200);
    assert_eq!(plot.body, hops);
    assert_eq!(plot.header("content-type"), Some("image/svg+xml"));
    assert!(plot
        .header("content-security-policy")
        .unwrap()
        .contains("sandbox"));
    assert_eq!(
        request(addr, "GET /runs/run-1/load.svg", &[&h], "").status,
        200
    );
    for refused in [
        "/runs/secret.txt",
        "/runs/../hops.svg",
        "/runs/%2e%2e/x.svg",
    ] {
        let a = request(addr, &format!("GET {refused}"), &[&h], "");
        assert!(
            a.status == 403 || a.status == 404,
            "{refused}: {}",
            a.status
        );
        assert!(!a.body.contains("SECRET-CONTENT"), "{refused}");
    }
    assert_eq!(request(addr, "PUT /runs/hops.svg", &[&h], "").status, 404);
    // Without a run directory there is no list.
    let plain = serve(&nodes, None);
    let none = request(plain.addr(), "GET /api/runs", &[&host(&plain)], "");
    assert_eq!(none.body.trim(), r#"{"plots":null}"#);
}

#[test]
fn a_lone_nodes_page_shows_the_ring_as_that_node_knows_it() {
    let nodes = ring(3);
    let web = serve(&nodes[1..2], None);
    let a = request(web.addr(), "GET /api/ring", &[&host(&web)], "");
    assert_eq!(a.status, 200);
    let snapshot: serde_json::Value = serde_json::from_str(&a.body).unwrap();
    let shown = snapshot["nodes"].as_array().unwrap();
    assert_eq!(shown.len(), 1, "only this node in full");
    assert_eq!(shown[0]["id"], nodes[1].id().to_string());
    let mut known: Vec<String> = snapshot["known"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_string())
        .collect();
    known.sort();
    let mut want: Vec<String> = nodes.iter().map(|n| n.id().to_string()).collect();
    want.sort();
    assert_eq!(known, want, "the others at their places, by id");
    let places = snapshot["known"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["place"].as_f64().unwrap());
    assert!(places.clone().all(|p| (0.0..1.0).contains(&p)));
    assert!(
        places.collect::<Vec<_>>().windows(2).all(|w| w[0] < w[1]),
        "clockwise from id 0"
    );
}

const COUNTER: &str = "--@peerlet name=counter type=end-node version=1\n\
    local P = {}\n\
    function P.deliver(key, msg, from) end\n\
    return P\n";

#[test]
fn deployments_by_traffic_show_in_the_snapshot() {
    use peerlet::package::secret_key::SigningKey;
    use peerlet::package::signing::sign_source;
    let dir = tempfile::tempdir().unwrap();
    let publisher = SigningKey::generate().unwrap();
    let pub_file = dir.path().join("publisher.pub");
    std::fs::write(&pub_file, publisher.public().to_pub_text()).unwrap();
    let spawn = |join| {
        let mut cfg = common::fast_config(join);
        cfg.trust_files = vec![pub_file.clone()];
        peerlet::node::Node::spawn(cfg).expect("spawn node")
    };
    let nodes: Vec<Arc<NodeHandle>> = converged_ring(4, spawn).into_iter().map(Arc::new).collect();
    let sig = sign_source(&publisher, COUNTER.as_bytes(), "counter.lua").unwrap();
    let app = nodes[0].install_signed(COUNTER.as_bytes(), &sig).unwrap();
    let code = nodes[0]
        .with_peerlets(|m, _| m.by_name("counter").unwrap().code.clone().unwrap())
        .unwrap();
    // A message to each other node's own id: each is that key's root.
    for target in &nodes[1..] {
        let mut msg = common::values::app_message(
            app,
            peerlet::wire::AppType::EndNode,
            &ciborium::Value::Null,
        );
        msg.code = Some(code.clone());
        let key = target.id();
        nodes[0]
            .call(move |kbr, now| kbr.api(now).route(key, msg, None))
            .unwrap();
    }
    let web = serve(&nodes, None);
    common::eventually(Duration::from_secs(30), || {
        let a = request(web.addr(), "GET /api/ring", &[&host(&web)], "");
        let snapshot: serde_json::Value =
            serde_json::from_str(&a.body).map_err(|e| e.to_string())?;
        for n in &snapshot["nodes"].as_array().unwrap()[1..] {
            let deployed = n["deployments"].as_array().unwrap();
            let counter = deployed.iter().find(|d| d["name"] == "counter");
            let Some(d) = counter else {
                return Err(format!("not yet deployed at {}", n["id"]));
            };
            assert!(d["source"] == "store" || d["source"] == "origin", "{d}");
            assert!(d["fetch_ms"].as_f64().unwrap() >= 0.0);
            let apps = n["apps"].as_array().unwrap();
            let shown = apps
                .iter()
                .find(|a| a["name"] == "counter")
                .expect("the app runs");
            assert_eq!(shown["app"], app.to_string());
            assert_eq!(shown["publisher"].as_str().map(str::is_empty), Some(false));
        }
        Ok(())
    });
}
