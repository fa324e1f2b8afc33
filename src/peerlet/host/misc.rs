//! Lua's `clock`, `log` and `store` tables.

use std::rc::Rc;

use mlua::{Lua, Table, Value, Variadic};

use super::HostState;
use crate::peerlet::{cbor_to_lua, lua_to_cbor};

/// Longest log line kept; the rest is cut.
const LOG_LINE_BYTES: usize = 2048;
/// Longest store key.
const STORE_KEY_BYTES: usize = 256;

/// `clock.now()`: seconds since the node started (monotonic, float).
pub(super) fn clock(lua: &Lua, host: &Rc<HostState>) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let h = host.clone();
    t.raw_set(
        "now",
        lua.create_function(move |_, ()| Ok(h.now.get().as_secs_f64()))?,
    )?;
    Ok(t)
}

/// Renders log arguments without running any script code (no `__tostring`,
/// no `__name`): strings as they are, numbers, booleans, nil, and the type
/// name of anything else.
fn render(args: &Variadic<Value>) -> String {
    let mut line = String::new();
    for (i, v) in args.iter().enumerate() {
        if i > 0 {
            line.push(' ');
        }
        match v {
            Value::String(s) => line.push_str(&String::from_utf8_lossy(&s.as_bytes())),
            Value::Integer(n) => line.push_str(&n.to_string()),
            Value::Number(f) => line.push_str(&f.to_string()),
            Value::Boolean(b) => line.push_str(if *b { "true" } else { "false" }),
            Value::Nil => line.push_str("nil"),
            other => line.push_str(&format!("<{}>", other.type_name())),
        }
        if line.len() > LOG_LINE_BYTES {
            let mut cut = LOG_LINE_BYTES;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
            line.push('…');
            break;
        }
    }
    line
}

/// `log.debug/info/warn/error(...)`: lines in the node's log, tagged with
/// the peerlet's name.
pub(super) fn log(lua: &Lua, host: &Rc<HostState>) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    for level in ["debug", "info", "warn", "error"] {
        let h = host.clone();
        let f = lua.create_function(move |_, args: Variadic<Value>| {
            let line = render(&args);
            let name = &h.name;
            match level {
                "debug" => tracing::debug!(target: "peerlet", peerlet = %name, "{line}"),
                "info" => tracing::info!(target: "peerlet", peerlet = %name, "{line}"),
                "warn" => tracing::warn!(target: "peerlet", peerlet = %name, "{line}"),
                _ => tracing::error!(target: "peerlet", peerlet = %name, "{line}"),
            }
            Ok(())
        })?;
        t.raw_set(level, f)?;
    }
    Ok(t)
}

fn store_key(v: &Value, what: &str) -> mlua::Result<String> {
    match v {
        Value::String(s) if s.as_bytes().len() <= STORE_KEY_BYTES => Ok(s.to_str()?.to_string()),
        Value::String(_) => Err(mlua::Error::runtime(format!(
            "{what}: key longer than {STORE_KEY_BYTES} bytes"
        ))),
        other => Err(mlua::Error::runtime(format!(
            "{what}: key must be a string, got {}",
            other.type_name()
        ))),
    }
}

fn no_store(what: &str) -> mlua::Error {
    mlua::Error::runtime(format!("{what}: this node has no store for peerlets"))
}

/// `store.get/put/remove/keys`: the peerlet's persistent store.
pub(super) fn store(lua: &Lua, host: &Rc<HostState>) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let h = host.clone();
    t.raw_set(
        "get",
        lua.create_function(move |lua, k: Value| {
            let key = store_key(&k, "store.get")?;
            let store = h.store.borrow();
            let store = store.as_ref().ok_or_else(|| no_store("store.get"))?;
            match store.get(&key) {
                Some(bytes) => cbor_to_lua(lua, bytes, &h.limits)
                    .map_err(|e| mlua::Error::runtime(format!("store.get: {e}"))),
                None => Ok(Value::Nil),
            }
        })?,
    )?;
    let h = host.clone();
    t.raw_set(
        "put",
        lua.create_function(move |_, (k, v): (Value, Value)| {
            let key = store_key(&k, "store.put")?;
            let bytes = lua_to_cbor(&v, &h.limits)
                .map_err(|e| mlua::Error::runtime(format!("store.put: {e}")))?;
            let mut store = h.store.borrow_mut();
            let store = store.as_mut().ok_or_else(|| no_store("store.put"))?;
            store
                .put(&key, bytes)
                .map_err(|e| mlua::Error::runtime(format!("store.put: {e}")))
        })?,
    )?;
    let h = host.clone();
    t.raw_set(
        "remove",
        lua.create_function(move |_, k: Value| {
            let key = store_key(&k, "store.remove")?;
            let mut store = h.store.borrow_mut();
            let store = store.as_mut().ok_or_else(|| no_store("store.remove"))?;
            store
                .remove(&key)
                .map_err(|e| mlua::Error::runtime(format!("store.remove: {e}")))
        })?,
    )?;
    let h = host.clone();
    t.raw_set(
        "keys",
        lua.create_function(move |lua, ()| {
            let store = h.store.borrow();
            let store = store.as_ref().ok_or_else(|| no_store("store.keys"))?;
            let t = lua.create_table()?;
            for (i, k) in store.keys().enumerate() {
                t.raw_set(i + 1, k)?;
            }
            Ok(t)
        })?,
    )?;
    Ok(t)
}
