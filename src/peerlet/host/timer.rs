//! Lua's `timer` table and the per-peerlet set of armed timers.
//!
//! `timer.after(secs, fn)` and `timer.every(secs, fn)` return a timer id;
//! `timer.cancel(id)` disarms it. A peerlet may hold `Limits::timers` armed
//! at once; periods under [`MIN_PERIOD_SECS`] are refused, so a repeating
//! timer cannot keep the node busy. Callbacks run as upcalls, each under its
//! own budget.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use mlua::{Function, Lua, Table, Value};

use super::HostState;
use crate::chord::Time;

/// Shortest period of `timer.every` (and smallest delay of `timer.after`
/// that is not zero).
pub const MIN_PERIOD_SECS: f64 = 0.01;

/// One armed timer.
#[derive(Clone, Debug)]
pub struct TimerEntry {
    pub at: Time,
    pub every: Option<Duration>,
    pub callback: Function,
}

/// The armed timers of one peerlet.
#[derive(Default, Debug)]
pub struct TimerSet {
    entries: BTreeMap<u64, TimerEntry>,
    next_id: u64,
}

impl TimerSet {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn next_deadline(&self) -> Option<Time> {
        self.entries.values().map(|e| e.at).min()
    }

    /// Takes the timers due at `now` (earliest first); repeating ones are
    /// re-armed one period later.
    pub fn take_due(&mut self, now: Time) -> Vec<(u64, Function)> {
        let mut due: Vec<(Time, u64)> = self
            .entries
            .iter()
            .filter(|(_, e)| e.at <= now)
            .map(|(id, e)| (e.at, *id))
            .collect();
        due.sort();
        let mut out = Vec::with_capacity(due.len());
        for (_, id) in due {
            let entry = self.entries.get_mut(&id).expect("listed");
            out.push((id, entry.callback.clone()));
            match entry.every {
                Some(period) => entry.at = now + period,
                None => {
                    self.entries.remove(&id);
                }
            }
        }
        out
    }

    fn arm(&mut self, entry: TimerEntry) -> u64 {
        self.next_id += 1;
        self.entries.insert(self.next_id, entry);
        self.next_id
    }

    pub fn cancel(&mut self, id: u64) -> bool {
        self.entries.remove(&id).is_some()
    }
}

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
    let period = delay(&secs, what, min)?;
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
