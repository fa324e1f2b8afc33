//! Lua's `store` table: a peerlet's small persistent store
//! ([`crate::peerlet::store`]).

use std::rc::Rc;

use mlua::{Lua, Table, Value};

use super::state::HostState;
use crate::sandbox::{cbor_to_lua, lua_to_cbor};

/// Longest store key.
const STORE_KEY_BYTES: usize = 256;

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
pub(super) fn table(lua: &Lua, host: &Rc<HostState>) -> mlua::Result<Table> {
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
