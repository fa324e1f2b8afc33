//! The host API a peerlet sees, and nothing else: `kbr`, `peerlet`, `timer`,
//! `clock`, `log`, `store` (declared once, for editors, in
//! `lua/peerlet.d.lua`).
//!
//! Host functions never call into the KBR layer directly: an upcall runs
//! while the KBR layer is busy with the message that caused it. They read a
//! view of the node's routing state shared by every peerlet
//! ([`HostState::ring`], a [`RoutingView`](crate::kbr::view::RoutingView)
//! the KBR layer refreshes) and queue what they want done
//! ([`HostState::outbox`]); the manager carries the queue out when the
//! upcall returns. Every value that leaves the script goes through
//! [`lua_to_cbor`](crate::sandbox::lua_to_cbor) (raw access, no metamethods, bounded).

mod calls;
mod clock;
mod kbr;
mod log;
mod lookup;
mod nodes;
mod state;
mod store;
mod timer;
mod timers;

use std::rc::Rc;

use crate::sandbox::{Sandbox, SandboxError};

pub use calls::{CallRequest, CallTarget, Served, RESERVED_METHODS};
pub use nodes::{key_from_lua, node_from_lua, node_to_lua};
pub use state::{HostState, Outgoing};
pub use timers::{TimerEntry, TimerSet, MIN_PERIOD_SECS};

/// Installs the host API into a fresh sandbox, before its chunk is loaded.
pub fn install(sandbox: &mut Sandbox, host: &Rc<HostState>) -> Result<(), SandboxError> {
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
    g.raw_set("clock", clock::table(lua, host).map_err(err)?)
        .map_err(err)?;
    g.raw_set("log", log::table(lua, host).map_err(err)?)
        .map_err(err)?;
    g.raw_set("store", store::table(lua, host).map_err(err)?)
        .map_err(err)?;
    g.raw_set("peerlet", lookup::table(sandbox, host)?)
        .map_err(err)?;
    sandbox.on_stop(nodes::forget_node_strings);
    Ok(())
}
