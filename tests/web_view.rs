//! The web view in a real browser (headless chromium over the DevTools
//! protocol): the page of a 10-node ring (successor lists of 2, so routes
//! take fingers) shows its 10 nodes and their apps, follows the ring live
//! when a node joins (server-sent events, no reload), and draws a trace
//! typed in the page with exactly the hops the console's `.trace` reports. A screenshot is kept at
//! target/tmp/web_view_ring.png.

#![forbid(unsafe_code)]

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::sync::Arc;
use std::time::Duration;

use browser::Browser;
use common::{converged_ring, fast_config};
use peerlet::control::{Client, Request, Response};
use peerlet::node::{Node, NodeHandle};
use peerlet_repl::Connection;
use serde_json::Value;

const PAGE_LIMIT: Duration = Duration::from_secs(60);

/// `(short id, address)` of each hop of a `.trace` answer, in order.
fn console_hops(text: &str) -> Vec<(String, String)> {
    text.lines()
        .skip(1)
        .filter(|l| !l.starts_with('('))
        .map(|l| {
            let mut words = l.split_whitespace().skip(1);
            let id = words.next().expect("id").to_string();
            let addr = words.next().expect("address").to_string();
            (id, addr)
        })
        .collect()
}

/// `(short id, address)` of each hop the page drew, in hop order, checked
/// against the hop table it shows beside the ring.
fn drawn_hops(page: &mut Browser) -> Vec<(String, String)> {
    let drawn = page.eval(
        "JSON.stringify([...document.querySelectorAll('#trace-layer circle.trace-hop')]
            .map(c => [Number(c.dataset.hop), c.dataset.id]))",
    );
    let mut drawn: Vec<(u32, String)> = serde_json::from_str(drawn.as_str().unwrap()).unwrap();
    drawn.sort();
    let table = page.eval(
        "JSON.stringify([...document.querySelectorAll('#trace-hops tbody tr')]
            .map(r => [r.dataset.id, r.cells[2].textContent]))",
    );
    let table: Vec<(String, String)> = serde_json::from_str(table.as_str().unwrap()).unwrap();
    assert_eq!(
        drawn.iter().map(|(_, id)| id.clone()).collect::<Vec<_>>(),
        table.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(),
        "the ring and the hop table show the same path"
    );
    let arrows = page.eval("document.querySelectorAll('#trace-layer line.trace').length");
    assert_eq!(
        arrows.as_u64(),
        Some(drawn.len().saturating_sub(1) as u64),
        "one arrow per hop"
    );
    table
        .into_iter()
        .map(|(id, addr)| (id[..8].to_string(), addr))
        .collect()
}

/// A node with a successor list of 2, so that routes across the ring take
/// fingers, hop after hop, rather than one jump from the successor list.
fn spawn_short_list(join: Option<std::net::SocketAddr>) -> NodeHandle {
    let mut cfg = fast_config(join);
    cfg.chord.successors = 2;
    Node::spawn(cfg).expect("spawn node")
}

#[test]
fn the_page_shows_the_ring_live_and_draws_the_hops_trace_reports() {
    let nodes: Vec<Arc<_>> = converged_ring(10, spawn_short_list)
        .into_iter()
        .map(Arc::new)
        .collect();
    nodes[3]
        .install_local("hello.lua", b"return {}")
        .expect("install hello");
    let data = tempfile::tempdir().unwrap();
    let socket = data.path().join("control.sock");
    let _control = peerlet::control::serve(&socket, nodes[0].clone()).expect("control socket");
    let web = peerlet::web::serve(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(nodes.clone()),
        None,
    )
    .expect("web view");
    let mut page = Browser::open(&web.url());

    // The ring: ten nodes, all of this process, drawn at their places.
    page.wait_for("document.body.dataset.nodes === '10'", PAGE_LIMIT);
    let mine = page.eval("document.querySelectorAll('#ring circle.node.mine').length");
    assert_eq!(mine.as_u64(), Some(10), "ten nodes drawn in full");
    let rows = page.eval("document.querySelectorAll('#nodes-table tbody tr').length");
    assert_eq!(rows.as_u64(), Some(10), "one row per node");
    // Node 3's app, shown once node 3 is picked.
    page.eval(&format!(
        "(() => {{ const s = document.getElementById('node-pick'); s.value = '{}';
            s.dispatchEvent(new Event('change')); }})()",
        nodes[3].id()
    ));
    let app = page.wait_for(
        "document.querySelector('#apps tbody tr td') && document.querySelector('#apps tbody tr td').textContent",
        PAGE_LIMIT,
    );
    assert_eq!(app, Value::from("hello"));
    let links = page.eval("document.querySelectorAll('#links-layer line.succ').length");
    assert!(
        links.as_u64().unwrap() >= 1,
        "the picked node's successors are drawn"
    );

    // Live: a node joins; the page shows it without being reloaded, as
    // known by id only (it is not one of the nodes served in full).
    let newcomer = spawn_short_list(Some(nodes[0].addr()));
    newcomer
        .wait_joined(Duration::from_secs(20))
        .expect("joined");
    page.wait_for("document.body.dataset.nodes === '11'", PAGE_LIMIT);
    let known = page.eval(&format!(
        "document.querySelector('#ring circle.node.known[data-id=\"{}\"]') !== null",
        newcomer.id()
    ));
    assert_eq!(
        known,
        Value::Bool(true),
        "the newcomer is drawn as known only"
    );

    // A trace typed in the page, from node 0, against `.trace` from node
    // 0's console. While fingers still move after the join, two traces may
    // differ; the ring settles within a few tries.
    page.eval(&format!(
        "(() => {{ const s = document.getElementById('node-pick'); s.value = '{}';
            s.dispatchEvent(new Event('change')); }})()",
        nodes[0].id()
    ));
    // A key whose route from node 0 takes two hops or more (fingers, then
    // the root), found with `.trace` itself.
    let mut console = Client::connect(&socket).expect("console");
    let mut console_trace = |key: &str| {
        let answer = console
            .request(&Request::Trace { key: key.into() })
            .expect(".trace");
        let Response::Ok(text) = answer else {
            panic!(".trace failed: {answer:?}")
        };
        text
    };
    let far = (0..200)
        .map(|i| format!("key-{i}"))
        .find(|k| console_hops(&console_trace(k)).len() >= 3)
        .expect("a key two hops away in a ring of 11 with successor lists of 2");
    let mut last = None;
    for attempt in 1..=5 {
        page.eval(&format!(
            "document.getElementById('trace-key').value = '{far}';
             document.getElementById('trace-go').click();"
        ));
        page.wait_for(
            &format!("document.body.dataset.traces === '{attempt}'"),
            PAGE_LIMIT,
        );
        let status = page.eval("document.getElementById('trace-status').textContent");
        let on_page = drawn_hops(&mut page);
        let text = console_trace(&far);
        let from_console = console_hops(&text);
        assert!(!from_console.is_empty(), "{text}");
        assert!(!text.contains("incomplete"), "{text}");
        if on_page == from_console {
            eprintln!("the trace took {} hops", on_page.len() - 1);
            assert!(!status.as_str().unwrap().contains("incomplete"), "{status}");
            last = None;
            break;
        }
        last = Some((on_page, from_console));
    }
    assert_eq!(
        last, None,
        "the page's path and .trace's differ on every try"
    );

    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("web_view_ring.png");
    let bytes = page.screenshot(&shot);
    assert!(
        bytes > 10_000,
        "a screenshot with something in it: {bytes} bytes"
    );
    eprintln!("screenshot: {}", shot.display());
    drop(page);
    drop(web);
}
