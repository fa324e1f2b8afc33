//! Every script of the hostile corpus (tests/hostile/) is loaded and made to
//! do its worst; each outcome is the one its header comment asks for, and
//! afterwards a benign peerlet still works, and so does the hostile sandbox
//! (unless stopped). Scripts of `PEERLET_EXTRA_HOSTILE` are held to what
//! must hold for every script (`every_hostile_script_is_contained`).

mod common;

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

use common::hostile::{self, Script};

use mlua::{Function, Value};
use peerlet::id::Id;
use peerlet::sandbox::{lua_to_cbor, Limits, Sandbox, SandboxError, UpcallOutcome};

/// Default limits, but with a wall-clock backstop far out of reach, so the
/// tests see the deterministic limits (instructions, memory) on any machine.
fn limits() -> Limits {
    Limits {
        upcall_time: std::time::Duration::from_secs(120),
        ..Limits::default()
    }
}

/// The corpus's script `name`, loaded, with a `ping` upcall added to its
/// module so the test can check that the same sandbox still runs simple
/// upcalls.
fn load(name: &str, limits: &Limits) -> Sandbox {
    let script = hostile::own(name);
    let mut sb = Sandbox::new(name, limits).unwrap();
    sb.load(&script.file_name(), &script.source).unwrap();
    add_ping(&sb);
    sb
}

fn add_ping(sb: &Sandbox) {
    let ping: Function = sb
        .lua()
        .load("return function() return 'pong' end")
        .eval()
        .unwrap();
    sb.module().unwrap().raw_set("ping", ping).unwrap();
}

/// Messages the stub `kbr.route` accepted, as CBOR.
type Queue = Rc<RefCell<Vec<Vec<u8>>>>;

/// Stub host API: `kbr.key(name)` gives the hex key, `kbr.route(key, msg)`
/// encodes `msg` through value.rs and queues it, refusing past `bound`.
fn stub_kbr(sb: &Sandbox, bound: usize) -> Queue {
    let lua = sb.lua();
    let queue: Queue = Rc::default();
    let kbr = lua.create_table().unwrap();
    let key = lua
        .create_function(|_, name: mlua::LuaString| Ok(Id::key(name.as_bytes()).to_string()))
        .unwrap();
    let limits = sb.limits().clone();
    let q = Rc::clone(&queue);
    let route = lua
        .create_function(move |_, (_key, msg): (String, Value)| {
            let bytes = lua_to_cbor(&msg, &limits).map_err(mlua::Error::external)?;
            if q.borrow().len() >= bound {
                return Err(mlua::Error::runtime(format!(
                    "kbr.route: outgoing queue full ({bound} messages)"
                )));
            }
            q.borrow_mut().push(bytes);
            Ok(())
        })
        .unwrap();
    kbr.raw_set("key", key).unwrap();
    kbr.raw_set("route", route).unwrap();
    lua.globals().raw_set("kbr", kbr).unwrap();
    queue
}

fn done(outcome: Result<UpcallOutcome, SandboxError>) -> mlua::MultiValue {
    match outcome {
        Ok(UpcallOutcome::Done(values)) => values,
        other => panic!("expected the upcall to return, got {other:?}"),
    }
}

fn still_serving(sb: &mut Sandbox) {
    let mut benign = Sandbox::new("benign", &limits()).unwrap();
    benign
        .load(
            "benign.lua",
            b"local P = {} function P.echo(x) return x end return P",
        )
        .unwrap();
    let r = done(benign.start_upcall("echo", 42));
    assert_eq!(r[0], Value::Integer(42));
    if sb.is_stopped() {
        assert!(matches!(
            sb.start_upcall("ping", ()),
            Err(SandboxError::Stopped { .. })
        ));
    } else {
        let r = done(sb.start_upcall("ping", ()));
        assert_eq!(r[0].to_string().unwrap(), "pong");
    }
}

fn budget_error(outcome: Result<UpcallOutcome, SandboxError>) -> SandboxError {
    match outcome {
        Err(e @ SandboxError::Budget { .. }) => e,
        other => panic!("expected an instruction budget abort, got {other:?}"),
    }
}

/// Where host_escape.lua tries to write.
const ESCAPE_MARKER: &str = "/tmp/peerlet-hostile-corpus-escaped";

#[test]
fn escape_reaches_nothing() {
    let marker = Path::new(ESCAPE_MARKER);
    let existed = marker.exists();
    let mut sb = load("host_escape", &limits());
    let r = done(sb.start_upcall("deliver", ()));
    assert_eq!(
        r[0],
        Value::Integer(0),
        "host_escape.lua reached {:?}",
        r[1].to_string()
    );
    assert_eq!(
        marker.exists(),
        existed,
        "host_escape.lua touched {}",
        marker.display()
    );
    still_serving(&mut sb);
}

#[test]
fn bad_values_are_all_refused_before_the_wire() {
    // The script builds a 64 MiB message on purpose: give it room, so what
    // is tested is the refusal by kbr.route, not the memory limit.
    let limits = Limits {
        instructions: 20_000_000,
        memory_bytes: 256 << 20,
        string_bytes: 128 << 20,
        ..limits()
    };
    let mut sb = load("unsendable", &limits);
    let queue = stub_kbr(&sb, 100);
    let r = done(sb.start_upcall("deliver", ()));
    assert_eq!(r[0], Value::Integer(7), "a bad value reached the wire");
    assert!(queue.borrow().is_empty());
    still_serving(&mut sb);
}

#[test]
fn bad_values_under_default_limits_hit_the_memory_limit() {
    let mut sb = load("unsendable", &limits());
    stub_kbr(&sb, 100);
    let err = sb.start_upcall("deliver", ()).unwrap_err();
    assert!(matches!(err, SandboxError::Memory { .. }), "{err}");
    assert!(err.to_string().contains("unsendable.lua:"), "{err}");
    still_serving(&mut sb);
}

/// Loads hostile script `name` expecting a refusal; checks that nothing
/// was left behind (no module, no upcalls) and returns the error.
fn refused_at_load(name: &str) -> SandboxError {
    let script = hostile::own(name);
    let mut sb = Sandbox::new(name, &limits()).unwrap();
    let err = sb.load(&script.file_name(), &script.source).unwrap_err();
    assert!(sb.module().is_none());
    assert!(matches!(
        sb.start_upcall("deliver", ()),
        Err(SandboxError::NotLoaded { .. })
    ));
    err
}

#[test]
fn bytecode_is_refused_at_load() {
    let err = refused_at_load("precompiled");
    assert!(matches!(err, SandboxError::BinaryChunk { .. }), "{err}");
    assert!(err.to_string().contains("precompiled.lua"), "{err}");
}

#[test]
fn flood_is_bounded_by_the_outgoing_queue() {
    let mut sb = load("route_flood", &limits());
    let queue = stub_kbr(&sb, 256);
    let err = sb.start_upcall("deliver", ()).unwrap_err();
    assert!(err.to_string().contains("outgoing queue full"), "{err}");
    assert_eq!(queue.borrow().len(), 256);
    still_serving(&mut sb);
}

#[test]
fn flood_without_a_queue_bound_is_stopped_by_the_budget() {
    let mut sb = load("route_flood", &limits());
    stub_kbr(&sb, usize::MAX);
    budget_error(sb.start_upcall("deliver", ()));
    // No timer API is handed in yet: init() fails on the missing global.
    let err = sb.start_upcall("init", ()).unwrap_err();
    assert!(matches!(err, SandboxError::Runtime { .. }), "{err}");
    still_serving(&mut sb);
}

#[test]
fn busy_deliver_stays_within_each_upcalls_budget() {
    // What bounds it is the share of the node over time (fair_share tests):
    // in a bare sandbox every single upcall returns, none is aborted.
    let mut sb = load("busy_deliver", &limits());
    for _ in 0..3 {
        match sb.start_upcall("deliver", ()).unwrap() {
            UpcallOutcome::Done(_) => {}
            other => panic!("deliver() did not return: {other:?}"),
        }
    }
    assert_eq!(sb.aborts(), 0);
    assert!(sb.instructions_used() > 3 * 300_000, "it does real work");
    still_serving(&mut sb);
}

#[test]
fn timer_storm_without_a_timer_api_fails_softly() {
    // In a bare sandbox there is no `timer`: init() fails on the missing
    // global, and the failing host calls stand for themselves under pcall.
    let mut sb = load("timer_storm", &limits());
    let err = sb.start_upcall("init", ()).unwrap_err();
    assert!(matches!(err, SandboxError::Runtime { .. }), "{err}");
    assert_eq!(sb.aborts(), 0);
    still_serving(&mut sb);
}

#[test]
fn hang_rpc_cannot_yield_forever_or_spin() {
    let mut sb = load("never_answers", &limits());
    let err = sb.start_upcall("stall", ()).unwrap_err();
    assert!(
        err.to_string().contains("yield from outside a coroutine"),
        "{err}"
    );
    assert_eq!(sb.pending_calls(), 0);
    budget_error(sb.start_upcall("grind", ()));
    still_serving(&mut sb);
}

#[test]
fn memory_string_is_refused_and_memory_comes_back() {
    let mut sb = load("huge_strings", &limits());
    let baseline = sb.memory_used();
    let err = sb.start_upcall("deliver", ()).unwrap_err();
    assert!(matches!(err, SandboxError::Memory { .. }), "{err}");
    assert!(
        sb.memory_used() < baseline + (64 << 10),
        "{} vs {baseline}",
        sb.memory_used()
    );
    still_serving(&mut sb);
}

#[test]
fn memory_table_is_stopped_and_its_memory_given_back() {
    let limits = Limits {
        instructions: 50_000_000,
        ..limits()
    };
    let mut sb = load("table_hoard", &limits);
    let baseline = sb.memory_used();
    let err = sb.start_upcall("deliver", ()).unwrap_err();
    assert!(matches!(err, SandboxError::Memory { .. }), "{err}");
    assert!(err.to_string().contains("deliver()"), "{err}");
    assert!(sb.memory_used() <= limits.memory_bytes);
    still_serving(&mut sb);
    // It keeps hoarding: further upcalls abort (memory or budget) until the
    // strikes run out and the peerlet is stopped, dropping its hoard.
    while !sb.is_stopped() {
        let err = sb.start_upcall("deliver", ()).unwrap_err();
        assert!(err.is_abort(), "{err}");
    }
    assert_eq!(sb.aborts(), 3);
    assert!(
        sb.memory_used() < baseline + (64 << 10),
        "{} vs {baseline}",
        sb.memory_used()
    );
    still_serving(&mut sb);
}

#[test]
fn pattern_bomb_is_refused_before_it_runs() {
    let mut sb = load("pattern_backtrack", &limits());
    let err = sb.start_upcall("deliver", ()).unwrap_err();
    assert!(matches!(err, SandboxError::Limit { .. }), "{err}");
    assert!(err.to_string().contains("pattern too complex"), "{err}");
    still_serving(&mut sb);
}

#[test]
fn spin_is_aborted_with_name_upcall_limit_and_line() {
    let mut sb = load("endless_deliver", &limits());
    let err = budget_error(sb.start_upcall("deliver", ()));
    assert_eq!(
        err.to_string(),
        "peerlet `endless_deliver`: instruction budget of 1000000 exceeded in deliver() \
         at endless_deliver.lua:9"
    );
    still_serving(&mut sb);
    budget_error(sb.start_upcall("deliver", ()));
    budget_error(sb.start_upcall("deliver", ()));
    assert!(sb.is_stopped());
    still_serving(&mut sb);
}

#[test]
fn spin_coroutine_is_covered_in_every_coroutine() {
    let mut sb = load("spin_in_coroutines", &limits());
    budget_error(sb.start_upcall("deliver", ()));
    still_serving(&mut sb);
    budget_error(sb.start_upcall("forward", ()));
    still_serving(&mut sb);
}

#[test]
fn spin_pcall_cannot_catch_the_abort() {
    let mut sb = load("catch_the_abort", &limits());
    budget_error(sb.start_upcall("deliver", ()));
    still_serving(&mut sb);
}

#[test]
fn spin_toplevel_fails_the_install_and_leaves_nothing() {
    let err = refused_at_load("endless_load");
    assert!(matches!(err, SandboxError::Budget { .. }), "{err}");
    assert!(err.to_string().contains("endless_load.lua:6"), "{err}");
}

#[test]
fn every_hostile_script_is_covered() {
    let covered = [
        "busy_deliver",
        "catch_the_abort",
        "endless_deliver",
        "endless_load",
        "host_escape",
        "huge_strings",
        "never_answers",
        "pattern_backtrack",
        "precompiled",
        "route_flood",
        "spin_in_coroutines",
        "table_hoard",
        "timer_storm",
        "unsendable",
    ];
    for script in hostile::own_all() {
        assert!(
            covered.contains(&script.name.as_str()),
            "no test for tests/hostile/{}.lua",
            script.name
        );
    }
}

/// What must hold for every script, one the tests know or not: it is refused
/// at load with nothing left behind, or each of its functions, called twice
/// with arguments shaped like an upcall's, returns or fails with an error
/// that names it; its memory stays within its limit; and afterwards a benign
/// peerlet and the hostile sandbox itself (unless stopped) still answer.
fn contained(script: &Script) {
    let name = &script.name;
    let named = format!("`{name}`");
    let limits = limits();
    let mut sb = Sandbox::new(name, &limits).unwrap();
    stub_kbr(&sb, 256);
    if let Err(err) = sb.load(&script.file_name(), &script.source) {
        assert!(err.to_string().contains(&named), "{err}");
        assert!(sb.module().is_none(), "{name}: refused, nothing kept");
        return;
    }
    let mut functions: Vec<String> = sb
        .module()
        .unwrap()
        .pairs::<Value, Value>()
        .filter_map(|kv| match kv.unwrap() {
            (Value::String(k), Value::Function(_)) => Some(k.to_string_lossy()),
            _ => None,
        })
        .collect();
    functions.sort();
    add_ping(&sb);
    for function in &functions {
        for _ in 0..2 {
            let args = upcall_args(&sb, function);
            match sb.start_upcall(function, args) {
                Ok(UpcallOutcome::Done(_)) => {}
                Ok(UpcallOutcome::Suspended { .. }) => {
                    panic!("{name}: {function}() suspended with no host call to make")
                }
                Err(err) => assert!(err.to_string().contains(&named), "{err}"),
            }
            assert!(
                sb.memory_used() <= limits.memory_bytes,
                "{name}: {} bytes after {function}()",
                sb.memory_used()
            );
        }
    }
    still_serving(&mut sb);
}

/// Arguments like the host's for the upcalls, none for other methods.
fn upcall_args(sb: &Sandbox, function: &str) -> mlua::MultiValue {
    let lua = sb.lua();
    let node = lua.create_table().unwrap();
    node.raw_set("id", Id::key("node").to_string()).unwrap();
    node.raw_set("addr", "127.0.0.1:4000").unwrap();
    let key = Value::String(lua.create_string(Id::key("key").to_string()).unwrap());
    let msg = Value::Table(lua.create_table().unwrap());
    let node = Value::Table(node);
    let args = match function {
        "deliver" | "forward" => vec![key, msg, node],
        "undelivered" => {
            let reason = lua.create_string("no node would run it").unwrap();
            vec![key, msg, Value::String(reason)]
        }
        "update" => vec![node, Value::Boolean(true)],
        "restore" => vec![msg],
        _ => vec![],
    };
    mlua::MultiValue::from_iter(args)
}

#[test]
fn every_hostile_script_is_contained() {
    let mut scripts = hostile::own_all();
    scripts.extend(hostile::extra());
    for script in &scripts {
        contained(script);
    }
}
