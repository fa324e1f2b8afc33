//! Peerlet runtime costs, each beside its baseline in the same run:
//!
//! 1. deliver() of a 3-field message, from the decoded message in to the Lua
//!    function's return, against a bare mlua call of the same function with
//!    a hand-built table of the same fields;
//! 2. starting a peerlet (fresh state, stripped library, host API, a 50-line
//!    script, init()) and the memory of the idle peerlet;
//! 3. lookups through a node running hostile peerlets of tests/hostile/
//!    (route_flood and endless_deliver, or those named by `HOSTILE=a,b`),
//!    against the same node without them (simulated ring, wall time per
//!    lookup including the hostile upcalls it triggers); and, when
//!    `PEERLET_EXTRA_HOSTILE=DIR` is set, through a node running every
//!    script of DIR that installs.
//!
//! `cargo bench --bench peerlet_upcall [-- deliver|start|hostile ...]`

#[path = "../tests/common/hostile.rs"]
mod hostile;

use std::time::{Duration, Instant};

use peerlet::chord::{Chord, Config};
use peerlet::id::{AppId, Id};
use peerlet::kbr::{Application, Kbr};
use peerlet::peerlet::{Manager, ManagerApp, ManagerConfig};
use peerlet::sim::{Rng, SimConfig, SimNet};
use peerlet::time::Time;
use peerlet::wire::{AppKind, AppMessage, AppType, Body, NodeRef, RoutedMessage};
use serde_bytes::ByteBuf;

const DELIVER: &str =
    "local P = {}\nlocal n = 0\nfunction P.deliver(key, msg, from) n = n + msg.a end\nreturn P\n";

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}

/// Median over batches of the mean time per call, in nanoseconds.
fn per_call(batches: usize, per_batch: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..per_batch {
        f();
    }
    let mut out = Vec::new();
    for _ in 0..batches {
        let t = Instant::now();
        for _ in 0..per_batch {
            f();
        }
        out.push(t.elapsed().as_nanos() as f64 / per_batch as f64);
    }
    median(out)
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

/// Like [`per_call`] for two functions whose batches alternate, so both see
/// the same load on a shared machine: (median ns of `a`, median ns of `b`,
/// median of the per-round ratios a/b).
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
    let mut kbr = Kbr::new(Chord::new(me, Config::default()));
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
    let mut kbr = Kbr::new(Chord::new(me, Config::default()));
    kbr.chord_mut().create(Time::ZERO);
    let app = ManagerApp::new(Manager::new(ManagerConfig::default()));
    let mut n = 0u64;
    let start_us = per_call(15, 200, || {
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
    }) / 1000.0;
    let m = app.0.borrow();
    let mem: Vec<usize> = m.peerlets().map(|p| p.memory()).collect();
    let bare = mlua::Lua::new();
    bare.load(source.as_str()).exec().unwrap();
    println!("peerlet start (fresh state, stripped stdlib, host API, 50-line script, init)");
    println!("  start:                 {start_us:>8.1} µs");
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

/// Wall time per lookup through node 0 of a simulated 16-node ring while
/// every script of `scripts` runs there and is sent a message before each
/// lookup; scripts the node refuses are left out and named.
fn lookup_through(scripts: &[hostile::Script]) -> f64 {
    let mut rng = Rng::new(9);
    let mut net = SimNet::new(SimConfig {
        seed: 9,
        chord: Config {
            successors: 4,
            ..Config::default()
        },
        ..SimConfig::default()
    });
    for _ in 0..16 {
        net.add_node(rng.id());
    }
    net.install_converged();
    let m = ManagerApp::new(Manager::new(ManagerConfig::default()));
    let a = m.clone();
    net.with_node(0, move |k, _| k.set_default_app(Box::new(a)));
    let mut apps: Vec<AppId> = Vec::new();
    for script in scripts {
        let installed = net.with_node(0, |k, now| {
            m.0.borrow_mut()
                .install_local(&mut k.api(now), &script.file_name(), &script.source)
        });
        match installed {
            Ok(id) => apps.push(id),
            Err(e) => println!("  ({} refused at install: {e})", script.name),
        }
    }
    let me = net.me(0);
    let t = Instant::now();
    let rounds = 200;
    for r in 0..rounds {
        for &app in &apps {
            let msg = AppMessage {
                app,
                app_type: AppType::EndNode,
                code: None,
                data: ByteBuf::from(vec![0xf6]),
                kind: AppKind::Message,
                refused_by: Vec::new(),
            };
            net.with_node(0, |k, now| k.api(now).send(me, msg));
        }
        let key = Id::key(format!("lookup-{r}"));
        net.lookups(&[(0, key)]).remove(0).expect("lookup");
        net.run_for(Duration::from_millis(1));
    }
    t.elapsed().as_secs_f64() * 1e6 / rounds as f64
}

fn hostile_neighbours() {
    let names = std::env::var("HOSTILE").unwrap_or("route_flood,endless_deliver".into());
    let chosen: Vec<hostile::Script> = names.split(',').map(hostile::own).collect();
    let quiet = lookup_through(&[]);
    let busy = lookup_through(&chosen);
    println!("lookup through a node (wall time per lookup, simulated 16-node ring)");
    println!("  without hostile peerlets:              {quiet:>10.1} µs");
    println!(
        "  with {names} triggered each time: {busy:>10.1} µs  ({:.1}x)",
        busy / quiet
    );
    let extra = hostile::extra();
    if !extra.is_empty() {
        let all = lookup_through(&extra);
        println!(
            "  with the {} scripts of ${} triggered each time: {all:>10.1} µs  ({:.1}x)",
            extra.len(),
            hostile::EXTRA_VAR,
            all / quiet
        );
    }
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
