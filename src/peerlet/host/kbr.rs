//! Lua's `kbr` table: the common KBR API as a peerlet calls it.

use std::rc::Rc;

use mlua::{Lua, Table, Value, Variadic};

use super::nodes::{count_arg, key_from_lua, node_from_lua, node_to_lua, nodes_to_lua};
use super::state::{HostState, Outgoing};
use crate::id::Id;
use crate::sandbox::lua_to_cbor;

/// Most nodes a query returns, whatever the script asks for.
const MAX_NODES: usize = 256;

fn arg(args: &Variadic<Value>, i: usize) -> Value {
    args.get(i).cloned().unwrap_or(Value::Nil)
}

fn encode(host: &HostState, v: &Value, what: &str) -> mlua::Result<Vec<u8>> {
    lua_to_cbor(v, &host.limits).map_err(|e| mlua::Error::runtime(format!("{what}: {e}")))
}

pub(super) fn table(lua: &Lua, host: &Rc<HostState>) -> mlua::Result<Table> {
    let t = lua.create_table()?;

    let h = host.clone();
    t.raw_set(
        "route",
        lua.create_function(move |_, args: Variadic<Value>| {
            let key = key_from_lua(&arg(&args, 0), "kbr.route")?;
            let data = encode(&h, &arg(&args, 1), "kbr.route")?;
            let first_hop = match arg(&args, 2) {
                Value::Nil => None,
                Value::Table(opts) => match opts.raw_get::<Value>("first_hop")? {
                    Value::Nil => None,
                    node => Some(node_from_lua(&node, "kbr.route first_hop")?),
                },
                other => {
                    return Err(mlua::Error::runtime(format!(
                        "kbr.route: options must be a table, got {}",
                        other.type_name()
                    )))
                }
            };
            h.queue(
                "kbr.route",
                Outgoing::Route {
                    key,
                    data,
                    first_hop,
                },
            )
        })?,
    )?;

    let h = host.clone();
    t.raw_set(
        "send",
        lua.create_function(move |_, args: Variadic<Value>| {
            let node = node_from_lua(&arg(&args, 0), "kbr.send")?;
            let data = encode(&h, &arg(&args, 1), "kbr.send")?;
            h.queue("kbr.send", Outgoing::Send { node, data })
        })?,
    )?;

    let h = host.clone();
    t.raw_set(
        "local_lookup",
        lua.create_function(move |lua, args: Variadic<Value>| {
            let key = key_from_lua(&arg(&args, 0), "kbr.local_lookup")?;
            let n = count_arg(&arg(&args, 1), "kbr.local_lookup", 1, MAX_NODES)?;
            nodes_to_lua(lua, &h.ring.borrow().next_hops(&key, n))
        })?,
    )?;

    let h = host.clone();
    t.raw_set(
        "neighbor_set",
        lua.create_function(move |lua, args: Variadic<Value>| {
            let n = count_arg(&arg(&args, 0), "kbr.neighbor_set", MAX_NODES, MAX_NODES)?;
            nodes_to_lua(lua, &h.ring.borrow().neighbor_set(n))
        })?,
    )?;

    let h = host.clone();
    t.raw_set(
        "replica_set",
        lua.create_function(move |lua, args: Variadic<Value>| {
            let key = key_from_lua(&arg(&args, 0), "kbr.replica_set")?;
            let n = count_arg(&arg(&args, 1), "kbr.replica_set", 3, MAX_NODES)?;
            nodes_to_lua(lua, &h.ring.borrow().replica_set(&key, n))
        })?,
    )?;

    let h = host.clone();
    t.raw_set(
        "range",
        lua.create_function(move |_, args: Variadic<Value>| {
            let node = node_from_lua(&arg(&args, 0), "kbr.range")?;
            let rank = count_arg(&arg(&args, 1), "kbr.range", 0, MAX_NODES)?;
            Ok(match h.ring.borrow().range(&node, rank) {
                Some((after, up_to)) => (Some(after.to_string()), Some(up_to.to_string())),
                None => (None, None),
            })
        })?,
    )?;

    let h = host.clone();
    t.raw_set(
        "id",
        lua.create_function(move |lua, ()| node_to_lua(lua, &h.me()))?,
    )?;

    t.raw_set(
        "key",
        lua.create_function(|_, name: Value| match name {
            Value::String(s) => Ok(Id::key(s.as_bytes()).to_string()),
            Value::Integer(_) | Value::Number(_) => Ok(Id::key(name.to_string()?).to_string()),
            other => Err(mlua::Error::runtime(format!(
                "kbr.key: expected a string, got {}",
                other.type_name()
            ))),
        })?,
    )?;
    Ok(t)
}
