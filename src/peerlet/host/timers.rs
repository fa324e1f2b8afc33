//! The armed timers of one peerlet: what `timer.after` and `timer.every`
//! armed, and which are due.

use std::collections::BTreeMap;
use std::time::Duration;

use mlua::Function;

use crate::time::Time;

/// Shortest period of `timer.every` (and smallest delay of `timer.after`
/// that is not zero).
pub const MIN_PERIOD_SECS: f64 = 0.01;

/// Shortest delay of `timer.after`: shorter ones (0 included) count as this.
pub const MIN_DELAY_SECS: f64 = 0.001;

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

    /// Takes the timers due at `now` (earliest first) while `allow()` says
    /// yes; repeating ones are re-armed one period later, the others stay
    /// due.
    pub fn take_due(&mut self, now: Time, mut allow: impl FnMut() -> bool) -> Vec<(u64, Function)> {
        let mut due: Vec<(Time, u64)> = self
            .entries
            .iter()
            .filter(|(_, e)| e.at <= now)
            .map(|(id, e)| (e.at, *id))
            .collect();
        due.sort();
        let mut out = Vec::with_capacity(due.len());
        for (_, id) in due {
            if !allow() {
                break;
            }
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

    pub(super) fn arm(&mut self, entry: TimerEntry) -> u64 {
        self.next_id += 1;
        self.entries.insert(self.next_id, entry);
        self.next_id
    }

    pub fn cancel(&mut self, id: u64) -> bool {
        self.entries.remove(&id).is_some()
    }
}
