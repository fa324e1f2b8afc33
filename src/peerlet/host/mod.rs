//! The host API a peerlet sees, and nothing else: `kbr`, `peerlet`, `timer`,
//! `clock`, `log`, `store` (declared once, for editors, in
//! `lua/peerlet.d.lua`).
//!
//! Host functions never call into the KBR layer directly: an upcall runs
//! while the KBR layer is busy with the message that caused it. They read a
//! snapshot of the node's routing state ([`HostState::ring`], refreshed by
//! the manager before upcalls) and queue what they want done
//! ([`HostState::outbox`]); the manager carries the queue out when the
//! upcall returns. Every value that leaves the script goes through
//! [`lua_to_cbor`](super::lua_to_cbor) (raw access, no metamethods, bounded).

mod kbr;
mod lookup;
mod misc;
mod timer;

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use mlua::{Lua, LuaString, Table, Value};

pub use lookup::{CallRequest, CallTarget, RESERVED_METHODS};
pub use timer::{TimerEntry, TimerSet};

use super::store::Store;
use super::{Limits, Sandbox, SandboxError};
use crate::chord::{RoutingTable, Time};
use crate::id::{AppId, Id};
use crate::wire::{AppType, NodeRef};

/// Something a peerlet asked the node to send.
#[derive(Clone, Debug, PartialEq)]
pub enum Outgoing {
    /// `kbr.route(key, msg, {first_hop = node})`.
    Route {
        key: Id,
        data: Vec<u8>,
        first_hop: Option<NodeRef>,
    },
    /// `kbr.send(node, msg)`.
    Send { node: NodeRef, data: Vec<u8> },
}

/// What the host functions of one peerlet share with the manager.
pub struct HostState {
    pub name: String,
    pub app: AppId,
    pub app_type: AppType,
    pub limits: Limits,
    pub now: Cell<Time>,
    /// The node's routing state as of the last refresh.
    pub ring: RefCell<RoutingTable>,
    pub outbox: RefCell<VecDeque<Outgoing>>,
    pub timers: RefCell<TimerSet>,
    pub store: RefCell<Option<Store>>,
    /// Outgoing messages refused because the queue was full.
    pub refused: Cell<u64>,
    /// Remote calls made by suspended upcalls, by token, until the manager
    /// sends them.
    pub calls: RefCell<HashMap<u64, CallRequest>>,
    next_token: Cell<u64>,
    /// Token bucket of `limits.messages_per_second`: (tokens, last refill).
    send_tokens: Cell<(f64, Time)>,
}

impl HostState {
    pub fn new(
        name: &str,
        app: AppId,
        app_type: AppType,
        limits: &Limits,
        ring: RoutingTable,
        store: Option<Store>,
    ) -> Rc<HostState> {
        Rc::new(HostState {
            name: name.to_string(),
            app,
            app_type,
            limits: limits.clone(),
            now: Cell::new(Time::ZERO),
            ring: RefCell::new(ring),
            outbox: RefCell::new(VecDeque::new()),
            timers: RefCell::new(TimerSet::default()),
            store: RefCell::new(store),
            refused: Cell::new(0),
            calls: RefCell::new(HashMap::new()),
            next_token: Cell::new(0),
            send_tokens: Cell::new((limits.outgoing_queue as f64, Time::ZERO)),
        })
    }

    pub fn me(&self) -> NodeRef {
        self.ring.borrow().me()
    }

    fn next_token(&self) -> u64 {
        self.next_token.set(self.next_token.get() + 1);
        self.next_token.get()
    }

    /// Takes one message from the send-rate bucket, or says why not.
    pub fn take_send_token(&self, what: &str) -> mlua::Result<()> {
        let now = self.now.get();
        let (tokens, last) = self.send_tokens.get();
        let rate = self.limits.messages_per_second as f64;
        let burst = self.limits.outgoing_queue.max(1) as f64;
        let tokens = (tokens + now.since(last).as_secs_f64() * rate).min(burst);
        if tokens < 1.0 {
            self.send_tokens.set((tokens, now));
            self.refused.set(self.refused.get() + 1);
            return Err(mlua::Error::runtime(format!(
                "{what}: send rate limit of {} messages/s exceeded",
                self.limits.messages_per_second
            )));
        }
        self.send_tokens.set((tokens - 1.0, now));
        Ok(())
    }

    /// Queues an outgoing message, or refuses it when the queue is full or
    /// the peerlet sends faster than its rate limit.
    fn queue(&self, what: &str, out: Outgoing) -> mlua::Result<()> {
        self.take_send_token(what)?;
        let mut outbox = self.outbox.borrow_mut();
        if outbox.len() >= self.limits.outgoing_queue {
            self.refused.set(self.refused.get() + 1);
            return Err(mlua::Error::runtime(format!(
                "{what}: outgoing queue full ({} messages waiting)",
                self.limits.outgoing_queue
            )));
        }
        outbox.push_back(out);
        Ok(())
    }
}

/// Installs the host API into a fresh sandbox, before its chunk is loaded.
pub fn install(sandbox: &Sandbox, host: &Rc<HostState>) -> Result<(), SandboxError> {
    let err = |e: mlua::Error| SandboxError::Host {
        peerlet: host.name.clone(),
        message: e.to_string(),
    };
    let lua = sandbox.lua();
    let g = lua.globals();
    g.raw_set("kbr", kbr::table(lua, host).map_err(err)?)
        .map_err(err)?;
    g.raw_set("timer", timer::table(lua, host).map_err(err)?)
        .map_err(err)?;
    g.raw_set("clock", misc::clock(lua, host).map_err(err)?)
        .map_err(err)?;
    g.raw_set("log", misc::log(lua, host).map_err(err)?)
        .map_err(err)?;
    g.raw_set("store", misc::store(lua, host).map_err(err)?)
        .map_err(err)?;
    g.raw_set("peerlet", lookup::table(sandbox, host)?)
        .map_err(err)?;
    Ok(())
}

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
pub(crate) fn forget_node_strings(lua: &Lua) {
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
fn nodes_to_lua(lua: &Lua, nodes: &[NodeRef]) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(nodes.len(), 0)?;
    for (i, n) in nodes.iter().enumerate() {
        t.raw_set(i + 1, node_to_lua(lua, n)?)?;
    }
    Ok(t)
}

/// A count argument: a non-negative integer, at most `max`.
fn count_arg(v: &Value, what: &str, default: usize, max: usize) -> mlua::Result<usize> {
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
