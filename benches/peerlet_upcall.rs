//! Peerlet runtime costs, each beside its baseline in the same run:
//!
//! 1. deliver() of a 3-field message, from the decoded message in to the Lua
//!    function's return, against a bare mlua call of the same function with
//!    a hand-built table of the same fields;
//! 2. starting a peerlet (fresh state, stripped library, host API, a 50-line
//!    script, init()) and the memory of the idle peerlet;
//! 3. lookups from a node of a loopback ring (node threads) while hostile
//!    peerlets of tests/hostile/ run there and are sent a message every
//!    millisecond (route_flood, endless_deliver, busy_deliver and
//!    timer_storm, or those named by
//!    `HOSTILE=a,b`), against the same node before they were installed, in
//!    the same run; and, when `PEERLET_EXTRA_HOSTILE=DIR` is set, with every
//!    script of DIR that installs running too.
//!
//! `cargo bench --bench peerlet_upcall [-- deliver|start|hostile ...]`

#[path = "common/ring.rs"]
mod common;
#[path = "../tests/common/hostile.rs"]
mod hostile;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use peerlet::chord::{Chord, Config};
use peerlet::id::{AppId, Id};
use peerlet::kbr::{Application, Kbr};
use peerlet::node::NodeHandle;
use peerlet::peerlet::{Manager, ManagerApp, ManagerConfig};
use peerlet::sim::{Oracle, Rng};
use peerlet::time::Time;
use peerlet::wire::{AppKind, AppMessage, AppType, Body, NodeRef, RoutedMessage};
use serde_bytes::ByteBuf;

const DELIVER: &str =
    "local P = {}\nlocal n = 0\nfunction P.deliver(key, msg, from) n = n + msg.a end\nreturn P\n";

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}

fn three_fields() -> Vec<u8> {
    let v = ciborium::Value::Map(vec![
        (ciborium::Value::Text("a".into()), 1.into()),
        (
            ciborium::Value::Text("b".into()),
            ciborium::Value::Bytes(b"text".to_vec()),
        ),
        (ciborium::Value::Text("c".into()), true.into()),
    ]);
    let mut data = Vec::new();
    ciborium::into_writer(&v, &mut data).unwrap();
    data
}

/// Two functions timed in alternating batches, so both see the same load on
/// a shared machine: (median over rounds of the mean ns per call of `a`, the
/// same of `b`, median of the per-round ratios a/b).
fn per_call_pair(
    rounds: usize,
    per_batch: usize,
    mut a: impl FnMut(),
    mut b: impl FnMut(),
) -> (f64, f64, f64) {
    for _ in 0..per_batch {
        a();
        b();
    }
    let (mut ta, mut tb, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        for _ in 0..per_batch {
            a();
        }
        let na = t.elapsed().as_nanos() as f64 / per_batch as f64;
        let t = Instant::now();
        for _ in 0..per_batch {
            b();
        }
        let nb = t.elapsed().as_nanos() as f64 / per_batch as f64;
        ta.push(na);
        tb.push(nb);
        ratios.push(na / nb);
    }
    (median(ta), median(tb), median(ratios))
}

fn deliver_cost() {
    let me = NodeRef {
        id: Id::key("me"),
        addr: "127.0.0.1:1".parse().unwrap(),
    };
    let mut kbr = Kbr::new(Chord::new(me, Config::default(), [7; 32]));
    kbr.chord_mut().create(Time::ZERO);
    let mut app = ManagerApp::new(Manager::new(ManagerConfig::default()));
    let id = app
        .0
        .borrow_mut()
        .install_local(&mut kbr.api(Time::ZERO), "bench.lua", DELIVER.as_bytes())
        .unwrap();
    let msg = RoutedMessage {
        id: 1,
        key: Id::key("k"),
        source: me,
        hops: 1,
        ttl: 64,
        direct: false,
        body: Body::App(AppMessage {
            app: id,
            app_type: AppType::EndNode,
            code: None,
            data: ByteBuf::from(three_fields()),
            kind: AppKind::Message,
            refused_by: Vec::new(),
        }),
    };
    let lua = mlua::Lua::new();
    let module: mlua::Table = lua.load(DELIVER).eval().unwrap();
    let f: mlua::Function = module.get("deliver").unwrap();
    let key = Id::key("k").to_string();
    let peerlet = || app.deliver(&mut kbr.api(Time::ZERO), &msg);
    let bare = || {
        let t = lua.create_table().unwrap();
        t.raw_set("a", 1).unwrap();
        t.raw_set("b", "text").unwrap();
        t.raw_set("c", true).unwrap();
        let from = lua.create_table().unwrap();
        from.raw_set("id", me.id.to_string()).unwrap();
        from.raw_set("addr", me.addr.to_string()).unwrap();
        f.call::<()>((key.as_str(), t, from)).unwrap();
    };
    let (peerlet_ns, bare_ns, ratio) = per_call_pair(60, 10_000, peerlet, bare);
    println!("deliver() of a 3-field message (batches of both alternate)");
    println!("  peerlet (CBOR decode, sandbox, upcall thread): {peerlet_ns:>8.0} ns");
    println!("  bare mlua call, hand-built tables:              {bare_ns:>8.0} ns");
    println!("  ratio (median of per-round ratios):             {ratio:>8.2}x");
}

fn fifty_lines() -> String {
    let mut s = String::from("local P = {}\nlocal state = {}\n");
    for i in 0..23 {
        s.push_str(&format!(
            "function P.m{i}(x)\n  state[{i}] = (state[{i}] or 0) + x\nend\n"
        ));
    }
    s.push_str("function P.init() state.ready = true end\nreturn P\n");
    s
}

fn start_cost() {
    let source = fifty_lines();
    assert!(source.lines().count() >= 50);
    let me = NodeRef {
        id: Id::key("me"),
        addr: "127.0.0.1:1".parse().unwrap(),
    };
    let mut kbr = Kbr::new(Chord::new(me, Config::default(), [7; 32]));
    kbr.chord_mut().create(Time::ZERO);
    let app = ManagerApp::new(Manager::new(ManagerConfig::default()));
    let mut n = 0u64;
    // Baseline, alternated with the start in the same run: a fresh state
    // with the same libraries opened and the same script, no sandbox.
    let bare_start = || {
        let lua = mlua::Lua::new_with(
            mlua::StdLib::COROUTINE
                | mlua::StdLib::TABLE
                | mlua::StdLib::STRING
                | mlua::StdLib::UTF8
                | mlua::StdLib::MATH,
            mlua::LuaOptions::default(),
        )
        .unwrap();
        let p: mlua::Table = lua.load(source.as_str()).eval().unwrap();
        p.get::<mlua::Function>("init")
            .unwrap()
            .call::<()>(())
            .unwrap();
    };
    let start = || {
        n += 1;
        let name = format!("p{}", n % 50);
        app.0
            .borrow_mut()
            .install_local(
                &mut kbr.api(Time::ZERO),
                &format!("{name}.lua"),
                source.as_bytes(),
            )
            .unwrap();
    };
    let (start_ns, bare_ns, ratio) = per_call_pair(30, 50, start, bare_start);
    let (start_us, bare_us) = (start_ns / 1000.0, bare_ns / 1000.0);
    let m = app.0.borrow();
    let mem: Vec<usize> = m.peerlets().map(|p| p.memory()).collect();
    let bare = mlua::Lua::new();
    bare.load(source.as_str()).exec().unwrap();
    println!("peerlet start (fresh state, stripped stdlib, host API, 50-line script, init)");
    println!("  start:                 {start_us:>8.1} µs");
    println!("  bare state + script:   {bare_us:>8.1} µs (same run, alternated)");
    println!("  ratio (median of per-round ratios): {ratio:>6.2}x");
    println!(
        "  idle peerlet memory:   {:>8} bytes (median of {})",
        median(mem.iter().map(|&m| m as f64).collect()) as usize,
        mem.len()
    );
    println!(
        "  bare Lua::new() + same script: {:>8} bytes",
        bare.used_memory()
    );
}

/// Lookups made through node 0 of a loopback ring of 4 node threads: the
/// median round trip of up to `LOOKUPS` lookups for random keys (for at most
/// a minute), while a trigger thread sends each of `apps` on node 0 a
/// message every millisecond (none when `apps` is empty). A lookup that
/// failed or timed out counts as the lookup time limit. Returns the median,
/// the 90th percentile, how many failed and how many were made.
fn lookups_while_busy(
    nodes: &[Arc<NodeHandle>],
    apps: &[AppId],
) -> (Duration, Duration, usize, usize) {
    const LOOKUPS: usize = 300;
    let stop = Arc::new(AtomicBool::new(false));
    let trigger = {
        let (stop, apps) = (stop.clone(), apps.to_vec());
        let node0 = nodes[0].clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) && !apps.is_empty() {
                let apps = apps.clone();
                let _ = node0.with_peerlets(move |_, api| {
                    let me = api.id();
                    for app in apps {
                        let msg = AppMessage {
                            app,
                            app_type: AppType::EndNode,
                            code: None,
                            data: ByteBuf::from(vec![0xf6]),
                            kind: AppKind::Message,
                            refused_by: Vec::new(),
                        };
                        api.send(me, msg);
                    }
                });
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    // Let the hostile peerlets get going first.
    std::thread::sleep(Duration::from_millis(500));
    let mut rng = Rng::new(11);
    let oracle = Oracle::new(nodes.iter().map(|n| n.me()).collect::<Vec<NodeRef>>());
    let mut times = Vec::with_capacity(LOOKUPS);
    let mut failed = 0;
    let end = Instant::now() + Duration::from_secs(60);
    while times.len() < LOOKUPS && Instant::now() < end {
        // Keys rooted at another node: the lookup leaves node 0 and comes back.
        let key: Id = rng.id();
        if oracle.successor(&key).id == nodes[0].id() {
            continue;
        }
        let t = Instant::now();
        match nodes[0].lookup(key) {
            Ok(_) => times.push(t.elapsed()),
            Err(_) => {
                failed += 1;
                times.push(t.elapsed().max(Duration::from_secs(5)));
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    // Not joined: on a node that never answers (a starved one), the
    // trigger's last request would wait for good.
    drop(trigger);
    let p = |q| common::percentile(&times, q);
    (p(0.5), p(0.9), failed, times.len())
}

/// Installs `scripts` on node 0 (those it refuses are named and left out).
fn install(nodes: &[Arc<NodeHandle>], scripts: &[hostile::Script]) -> Vec<AppId> {
    let mut apps = Vec::new();
    for script in scripts {
        match nodes[0].install_local(&script.file_name(), &script.source) {
            Ok(id) => apps.push(id),
            Err(e) => println!("  ({} refused at install: {e})", script.name),
        }
    }
    apps
}

fn hostile_neighbours() {
    let names = std::env::var("HOSTILE")
        .unwrap_or("route_flood,endless_deliver,busy_deliver,timer_storm".into());
    let chosen: Vec<hostile::Script> = names.split(',').map(hostile::own).collect();
    let nodes: Vec<Arc<NodeHandle>> = common::ring(4, |_| {}).into_iter().map(Arc::new).collect();
    let (quiet, quiet90, _, _) = lookups_while_busy(&nodes, &[]);
    let apps = install(&nodes, &chosen);
    let (busy, busy90, failed, made) = lookups_while_busy(&nodes, &apps);
    let ratio = busy.as_secs_f64() / quiet.as_secs_f64();
    println!("lookups from node 0 of a loopback ring of 4 node threads (median, p90 round trip)");
    println!("  without hostile peerlets: {quiet:>10.1?} {quiet90:>10.1?}");
    println!(
        "  with {names} triggered every ms: {busy:>10.1?} {busy90:>10.1?}  (median {ratio:.2}x, p90 {:.2}x; {failed} of {made} failed or timed out)",
        busy90.as_secs_f64() / quiet90.as_secs_f64()
    );
    let extra = hostile::extra();
    if !extra.is_empty() {
        let apps = install(&nodes, &extra);
        let (all, _, failed, made) = lookups_while_busy(&nodes, &apps);
        println!(
            "  with the {} scripts of ${} too, triggered every ms: {all:>10.1?}  ({:.2}x; {failed} of {made} failed or timed out)",
            extra.len(),
            hostile::EXTRA_VAR,
            all.as_secs_f64() / quiet.as_secs_f64()
        );
    }
    // The nodes end with the process: killing a starved node would wait
    // for an answer that never comes.
    std::mem::forget(nodes);
}

/// `cargo bench --bench peerlet_upcall [-- deliver|start|hostile ...]`:
/// all three parts, or only those named.
fn main() {
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let run = |part: &str| only.is_empty() || only.iter().any(|o| o == part);
    if run("deliver") {
        deliver_cost();
    }
    if run("start") {
        start_cost();
    }
    if run("hostile") {
        hostile_neighbours();
    }
}
