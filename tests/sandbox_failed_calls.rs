//! A failed host call costs the same whatever the script holds in its
//! globals. Every error a host function raises makes mlua build a
//! traceback, and Lua names each function on it by searching the tables of
//! the loaded modules (`_LOADED`, which held `_G`): with a script's
//! hundreds of thousands of globals, each failed call walked them all,
//! and a `pcall` loop of failing calls held the node's thread for minutes.
//! The sandbox empties `_LOADED` (nothing loads modules: no `require`, no
//! `package`), so the search finds nothing to walk.

use std::time::Duration;

use mlua::{Table, Value};
use peerlet::sandbox::{Limits, Sandbox, SandboxError, UpcallOutcome};

/// Room for 300,000 globals; the instruction budget for making them in
/// one chunk. The wall-clock backstop stays the default (1 s).
fn roomy() -> Limits {
    Limits {
        memory_bytes: 256 << 20,
        instructions: 50_000_000,
        ..Limits::default()
    }
}

fn loaded_entries(sb: &Sandbox) -> usize {
    let loaded: Table = sb
        .lua()
        .named_registry_value("_LOADED")
        .expect("the registry keeps a _LOADED table");
    loaded.pairs::<Value, Value>().count()
}

/// A host function that always fails, as `kbr.send(nil)` does.
fn with_failing_host_function(sb: &Sandbox) {
    let lua = sb.lua();
    let fail = lua
        .create_function(|_, _: mlua::MultiValue| -> mlua::Result<()> {
            Err(mlua::Error::runtime("refused: no such node"))
        })
        .unwrap();
    lua.globals().raw_set("host_fail", fail).unwrap();
}

fn go(sb: &mut Sandbox) -> Result<Vec<Value>, SandboxError> {
    match sb.start_upcall("go", ())? {
        UpcallOutcome::Done(v) => Ok(v.into_iter().collect()),
        UpcallOutcome::Suspended { .. } => panic!("unexpected suspension"),
    }
}

#[test]
fn no_loaded_modules_are_searched_when_a_host_call_fails() {
    let sb = Sandbox::new("fresh", &Limits::default()).unwrap();
    assert_eq!(loaded_entries(&sb), 0, "a fresh sandbox's _LOADED is empty");

    let mut sb = Sandbox::new("globals", &roomy()).unwrap();
    with_failing_host_function(&sb);
    let script = r#"
for i = 1, 300000 do _G["global_" .. i] = i end
local P = {}
function P.go()
  local failed = 0
  for i = 1, 300 do
    if not pcall(host_fail, nil, i) then failed = failed + 1 end
  end
  return failed, package, require, debug, rawget(_G, "package")
end
return P
"#;
    sb.load("globals.lua", script.as_bytes()).unwrap();
    assert_eq!(
        loaded_entries(&sb),
        0,
        "a script with 300,000 globals adds nothing to _LOADED"
    );
    // Were the globals walked on every failure, these 300 calls would take
    // seconds and the upcall would be aborted by its 1 s backstop.
    assert_eq!(sb.limits().upcall_time, Duration::from_secs(1));
    let values = go(&mut sb).unwrap_or_else(|e| panic!("300 failed calls: {e}"));
    assert_eq!(
        values[0],
        Value::Integer(300),
        "every call failed, under pcall"
    );
    for (i, what) in ["package", "require", "debug", "_G.package"]
        .iter()
        .enumerate()
    {
        assert_eq!(
            values.get(i + 1),
            Some(&Value::Nil),
            "`{what}` is out of reach"
        );
    }
    assert_eq!(loaded_entries(&sb), 0, "still empty after the failures");
    assert_eq!(sb.aborts(), 0);
}

#[test]
fn a_failed_host_call_still_tells_the_script_why() {
    let mut sb = Sandbox::new("why", &Limits::default()).unwrap();
    with_failing_host_function(&sb);
    let script = r#"
local P = {}
function P.go()
  local ok, err = pcall(host_fail, nil)
  return ok, tostring(err)
end
return P
"#;
    sb.load("why.lua", script.as_bytes()).unwrap();
    let values = go(&mut sb).unwrap();
    assert_eq!(values[0], Value::Boolean(false));
    let Value::String(err) = &values[1] else {
        panic!("an error message, got {:?}", values[1]);
    };
    assert!(
        err.to_string_lossy().contains("refused: no such node"),
        "{}",
        err.to_string_lossy()
    );
}
