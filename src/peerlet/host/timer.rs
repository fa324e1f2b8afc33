//! Lua's `timer` table (the armed timers themselves are in `timers.rs`).
//!
//! `timer.after(secs, fn)` and `timer.every(secs, fn)` return a timer id;
//! `timer.cancel(id)` disarms it. A peerlet may hold `Limits::timers` armed
//! at once; periods under [`MIN_PERIOD_SECS`] are refused and delays under
//! [`MIN_DELAY_SECS`] count as that much, so a repeating
//! timer cannot keep the node busy. Callbacks run as upcalls, each under its
//! own budget.

use std::rc::Rc;
use std::time::Duration;

use mlua::{Lua, Table, Value};

use super::state::HostState;
use super::timers::{TimerEntry, MIN_DELAY_SECS, MIN_PERIOD_SECS};

fn delay(v: &Value, what: &str, min: f64) -> mlua::Result<Duration> {
    let secs = match v {
        Value::Integer(n) => *n as f64,
        Value::Number(f) => *f,
        other => {
            return Err(mlua::Error::runtime(format!(
                "{what}: seconds must be a number, got {}",
                other.type_name()
            )))
        }
    };
    if !secs.is_finite() || secs < min || secs > 1e9 {
        return Err(mlua::Error::runtime(format!(
            "{what}: seconds must be between {min} and 1e9, got {secs}"
        )));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn arm(host: &HostState, what: &str, secs: Value, f: Value, repeat: bool) -> mlua::Result<u64> {
    let min = if repeat { MIN_PERIOD_SECS } else { 0.0 };
    // A zero delay would make a timer that re-arms itself due again at
    // once: the node's loop would never wait. Shorter delays count as
    // MIN_DELAY_SECS.
    let period = delay(&secs, what, min)?.max(Duration::from_secs_f64(MIN_DELAY_SECS));
    let Value::Function(callback) = f else {
        return Err(mlua::Error::runtime(format!(
            "{what}: expected a function, got {}",
            f.type_name()
        )));
    };
    let mut timers = host.timers.borrow_mut();
    if timers.len() >= host.limits.timers {
        return Err(mlua::Error::runtime(format!(
            "{what}: too many timers armed (limit {})",
            host.limits.timers
        )));
    }
    let at = host.now.get() + period;
    Ok(timers.arm(TimerEntry {
        at,
        every: repeat.then_some(period),
        callback,
    }))
}

pub(super) fn table(lua: &Lua, host: &Rc<HostState>) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let h = host.clone();
    t.raw_set(
        "after",
        lua.create_function(move |_, (secs, f): (Value, Value)| {
            arm(&h, "timer.after", secs, f, false)
        })?,
    )?;
    let h = host.clone();
    t.raw_set(
        "every",
        lua.create_function(move |_, (secs, f): (Value, Value)| {
            arm(&h, "timer.every", secs, f, true)
        })?,
    )?;
    let h = host.clone();
    t.raw_set(
        "cancel",
        lua.create_function(move |_, id: Value| match id {
            Value::Integer(id) if id > 0 => Ok(h.timers.borrow_mut().cancel(id as u64)),
            _ => Ok(false),
        })?,
    )?;
    Ok(t)
}
