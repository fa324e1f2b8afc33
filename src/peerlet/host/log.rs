//! Lua's `log` table: lines in the node's log, tagged with the peerlet,
//! at most `limits.log_lines_per_second` (see [`crate::peerlet::share::LogGate`]).

use std::rc::Rc;

use mlua::{Lua, Table, Value, Variadic};

use super::state::HostState;

/// Rendering stops past this many bytes; the log gate cuts the line to
/// `limits.log_line_bytes`.
const RENDER_BYTES: usize = 64 << 10;

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
        if line.len() > RENDER_BYTES {
            break;
        }
    }
    line
}

/// `log.debug/info/warn/error(...)`: lines in the node's log, tagged with
/// the peerlet's name.
pub(super) fn table(lua: &Lua, host: &Rc<HostState>) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    for level in ["debug", "info", "warn", "error"] {
        let h = host.clone();
        let f = lua.create_function(move |_, args: Variadic<Value>| {
            let name = &h.name;
            let lines = h.log.borrow_mut().admit(h.now.get(), render(&args));
            for line in lines {
                match level {
                    "debug" => tracing::debug!(target: "peerlet", peerlet = %name, "{line}"),
                    "info" => tracing::info!(target: "peerlet", peerlet = %name, "{line}"),
                    "warn" => tracing::warn!(target: "peerlet", peerlet = %name, "{line}"),
                    _ => tracing::error!(target: "peerlet", peerlet = %name, "{line}"),
                }
            }
            Ok(())
        })?;
        t.raw_set(level, f)?;
    }
    Ok(t)
}
