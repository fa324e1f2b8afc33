//! Lua's `clock` table.

use std::rc::Rc;

use mlua::{Lua, Table};

use super::state::HostState;

/// `clock.now()`: seconds since the node started (monotonic, float).
pub(super) fn table(lua: &Lua, host: &Rc<HostState>) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let h = host.clone();
    t.raw_set(
        "now",
        lua.create_function(move |_, ()| Ok(h.now.get().as_secs_f64()))?,
    )?;
    Ok(t)
}
