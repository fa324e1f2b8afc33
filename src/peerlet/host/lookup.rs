//! Lua's `peerlet` table: `peerlet.lookup(key [, app])`, the paper's
//! lookupPeerlet. It returns a handle whose method calls (`h:put(k, v)`)
//! run the named method of the peerlet at the root of `key` and look
//! blocking to the script: the upcall suspends until the reply (or a
//! timeout) while the node goes on with everything else.
//!
//! `peerlet.at(node [, app])` makes the same handle for one given node:
//! its calls go straight there (as `kbr.send` does), whoever owns which
//! key. A replica set is a list of nodes, not of keys: a DHT's root asks
//! each replica in turn, and a dead replica shows as a timeout rather than
//! as a call answered by whichever node took over its id.

use std::rc::Rc;
use std::time::Duration;

use mlua::{Function, MultiValue, Table, Value};

use super::calls::{CallRequest, CallTarget, RESERVED_METHODS};
use super::nodes::{key_from_lua, node_from_lua};
use super::state::HostState;
use crate::id::AppId;
use crate::sandbox::{encode_array, Sandbox, SandboxError};

/// Longest method name.
const METHOD_BYTES: usize = 64;

/// Builds handles in Lua, so a method call is a Lua function that can
/// suspend (a Rust function cannot yield).
const HANDLE_FACTORY: &str = r#"
local call, setmetatable, type = ...
local function handle(where, to, app, opts)
  return setmetatable({}, {
    __index = function(_, method)
      if type(method) ~= "string" then return nil end
      return function(_, ...) return call(where, to, app, opts, method, ...) end
    end,
    __metatable = false,
  })
end
return function(key, app) return handle("key", key, app) end,
       function(node, app, opts) return handle("node", node, app, opts) end
"#;

/// `opts.timeout` of `peerlet.at(node, app, opts)`, in seconds.
fn call_timeout(opts: &Value) -> mlua::Result<Option<Duration>> {
    let secs = match opts {
        Value::Nil => return Ok(None),
        Value::Table(t) => t.raw_get::<Value>("timeout")?,
        other => {
            return Err(mlua::Error::runtime(format!(
                "peerlet.at: options must be a table, got {}",
                other.type_name()
            )))
        }
    };
    match secs {
        Value::Nil => Ok(None),
        Value::Integer(n) if n > 0 => Ok(Some(Duration::from_secs(n as u64))),
        Value::Number(x) if x > 0.0 && x.is_finite() => Ok(Some(Duration::from_secs_f64(x))),
        _ => Err(mlua::Error::runtime(
            "peerlet.at: timeout must be a positive number of seconds",
        )),
    }
}

fn prepare(host: &HostState, args: MultiValue) -> mlua::Result<Value> {
    let mut args = args.into_iter();
    let by_node = matches!(&args.next(), Some(Value::String(s)) if s.as_bytes() == b"node");
    let to = args.next().unwrap_or(Value::Nil);
    let (what, key, node) = if by_node {
        let node = node_from_lua(&to, "peerlet.at")?;
        ("peerlet.at", node.id, Some(node))
    } else {
        ("peerlet.lookup", key_from_lua(&to, "peerlet.lookup")?, None)
    };
    let app = args.next().unwrap_or(Value::Nil);
    let timeout = call_timeout(&args.next().unwrap_or(Value::Nil))?;
    let app = match app {
        Value::Nil => CallTarget::App(host.app),
        Value::String(s) => {
            let s = s.to_str()?;
            match s.parse::<AppId>() {
                Ok(app) => CallTarget::App(app),
                Err(_) if !s.is_empty() && s.len() <= 64 && !s.contains(char::is_whitespace) => {
                    CallTarget::Name(s.to_string())
                }
                Err(e) => {
                    return Err(mlua::Error::runtime(format!(
                        "{what}: app must be 32 hex digits or a peerlet's name ({e})"
                    )))
                }
            }
        }
        other => {
            return Err(mlua::Error::runtime(format!(
                "{what}: app id must be a string, got {}",
                other.type_name()
            )))
        }
    };
    let method = match args.next().unwrap_or(Value::Nil) {
        Value::String(s) if s.as_bytes().len() <= METHOD_BYTES => s.to_str()?.to_string(),
        _ => return Err(mlua::Error::runtime(format!("{what}: bad method name"))),
    };
    if RESERVED_METHODS.contains(&method.as_str()) {
        return Err(mlua::Error::runtime(format!(
            "{what}: `{method}` is an upcall, not a method that can be called"
        )));
    }
    host.take_send_token(what)?;
    let rest: Vec<Value> = args.collect();
    let args = encode_array(&rest, &host.limits, "argument")
        .map_err(|e| mlua::Error::runtime(format!("{what}: {e}")))?;
    let mut requests = host.calls.borrow_mut();
    let token = host.next_token();
    requests.insert(
        token,
        CallRequest {
            key,
            node,
            timeout,
            app,
            method,
            args,
        },
    );
    Ok(Value::Integer(token as i64))
}

pub(super) fn table(sandbox: &Sandbox, host: &Rc<HostState>) -> Result<Table, SandboxError> {
    let err = |e: mlua::Error| SandboxError::Host {
        peerlet: host.name.clone(),
        message: e.to_string(),
    };
    let lua = sandbox.lua();
    let h = host.clone();
    let call = sandbox.create_suspending_function(move |_, args| prepare(&h, args))?;
    let setmetatable: Value = lua.globals().raw_get("setmetatable").map_err(err)?;
    let type_of: Value = lua.globals().raw_get("type").map_err(err)?;
    let (lookup, at): (Function, Function) = sandbox
        .host_function("=peerlet.lookup", HANDLE_FACTORY)
        .and_then(|f| f.call((call, setmetatable, type_of)))
        .map_err(err)?;
    let t = lua.create_table().map_err(err)?;
    t.raw_set("lookup", lookup).map_err(err)?;
    t.raw_set("at", at).map_err(err)?;
    t.raw_set("name", host.name.clone()).map_err(err)?;
    t.raw_set("app", host.app.to_string()).map_err(err)?;
    t.raw_set("type", host.app_type.to_string()).map_err(err)?;
    Ok(t)
}
