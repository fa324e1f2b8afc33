//! Nodes and keys as Lua sees them: `{id = "40 hex digits", addr =
//! "ip:port"}` tables and 40-hex-digit key strings, read with raw access.

use mlua::{Lua, LuaString, Table, Value};

use crate::id::Id;
use crate::wire::NodeRef;

/// The Lua strings of the last node [`node_to_lua`] made, and of its two
/// field names, kept in the state's app data. deliver() builds a `from` table
/// for every message, usually from a few senders; under a memory limit every
/// string mlua makes costs a protected call, and formatting the address
/// costs more. Lua strings are immutable, so sharing them is invisible to
/// the script (the table itself is new each time).
struct NodeStrings {
    id_key: LuaString,
    addr_key: LuaString,
    last: Option<(NodeRef, LuaString, LuaString)>,
}

/// Drops the cached node strings (when a peerlet is stopped).
pub fn forget_node_strings(lua: &Lua) {
    let _ = lua.try_app_data_mut::<NodeStrings>().map(|c| {
        if let Some(mut c) = c {
            c.last = None;
        }
    });
}

/// A node as Lua sees it: `{id = "40 hex digits", addr = "ip:port"}`, a new
/// table on each call.
pub fn node_to_lua(lua: &Lua, node: &NodeRef) -> mlua::Result<Table> {
    let cached = lua
        .try_app_data_ref::<NodeStrings>()
        .ok()
        .flatten()
        .map(|c| {
            let hit = c
                .last
                .as_ref()
                .filter(|(n, _, _)| n == node)
                .map(|(_, id, addr)| (id.clone(), addr.clone()));
            (c.id_key.clone(), c.addr_key.clone(), hit)
        });
    let (id_key, addr_key, hit) = match cached {
        Some(c) => c,
        None => (lua.create_string("id")?, lua.create_string("addr")?, None),
    };
    let (id, addr) = match hit {
        Some(strings) => strings,
        None => {
            let id = lua.create_string(node.id.to_string())?;
            let addr = lua.create_string(node.addr.to_string())?;
            // Only a cache: if the app data is busy, go without.
            let _ = lua.try_set_app_data(NodeStrings {
                id_key: id_key.clone(),
                addr_key: addr_key.clone(),
                last: Some((*node, id.clone(), addr.clone())),
            });
            (id, addr)
        }
    };
    let t = lua.create_table_with_capacity(0, 2)?;
    t.raw_set(&id_key, id)?;
    t.raw_set(&addr_key, addr)?;
    Ok(t)
}

/// Reads a node table (raw access only).
pub fn node_from_lua(v: &Value, what: &str) -> mlua::Result<NodeRef> {
    let Value::Table(t) = v else {
        return Err(mlua::Error::runtime(format!(
            "{what}: expected a node {{id = ..., addr = ...}}, got {}",
            v.type_name()
        )));
    };
    let id = key_from_lua(&t.raw_get::<Value>("id")?, what)?;
    let addr = match t.raw_get::<Value>("addr")? {
        Value::String(s) => s
            .to_str()?
            .parse()
            .map_err(|_| mlua::Error::runtime(format!("{what}: node addr must be \"ip:port\"")))?,
        _ => return Err(mlua::Error::runtime(format!("{what}: node has no addr"))),
    };
    Ok(NodeRef { id, addr })
}

/// Reads a key: 40 hex digits.
pub fn key_from_lua(v: &Value, what: &str) -> mlua::Result<Id> {
    match v {
        Value::String(s) => s.to_str()?.parse().map_err(|e| {
            mlua::Error::runtime(format!(
                "{what}: key must be 40 hex digits ({e}); use kbr.key(name)"
            ))
        }),
        other => Err(mlua::Error::runtime(format!(
            "{what}: key must be 40 hex digits, got {}",
            other.type_name()
        ))),
    }
}

/// A list of nodes as a Lua array.
pub(super) fn nodes_to_lua(lua: &Lua, nodes: &[NodeRef]) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(nodes.len(), 0)?;
    for (i, n) in nodes.iter().enumerate() {
        t.raw_set(i + 1, node_to_lua(lua, n)?)?;
    }
    Ok(t)
}

/// A count argument: a non-negative integer, at most `max`.
pub(super) fn count_arg(v: &Value, what: &str, default: usize, max: usize) -> mlua::Result<usize> {
    match v {
        Value::Nil => Ok(default.min(max)),
        Value::Integer(n) if *n >= 0 => Ok((*n as usize).min(max)),
        Value::Number(f) if *f >= 0.0 && f.fract() == 0.0 => Ok((*f as usize).min(max)),
        other => Err(mlua::Error::runtime(format!(
            "{what}: expected a non-negative integer, got {}",
            other.type_name()
        ))),
    }
}
