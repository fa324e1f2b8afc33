//! The core's periodic timers: one closed enum, one table of deadlines.

use crate::time::Time;

/// Every periodic duty of a Chord node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    Stabilize = 0,
    CheckPredecessor = 1,
    FixFingers = 2,
    /// Probe a remembered peer outside the view (partitions heal).
    Probe = 3,
}

impl Timer {
    pub const ALL: [Timer; 4] = [
        Timer::Stabilize,
        Timer::CheckPredecessor,
        Timer::FixFingers,
        Timer::Probe,
    ];
}

/// When each [`Timer`] fires next; `None` when it is not armed.
#[derive(Clone, Debug, Default)]
pub struct TimerTable {
    deadlines: [Option<Time>; Timer::ALL.len()],
}

impl TimerTable {
    pub fn set(&mut self, timer: Timer, at: Time) {
        self.deadlines[timer as usize] = Some(at);
    }

    /// The earliest armed deadline.
    pub fn next(&self) -> Option<Time> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Disarms and returns the timers due at `now`.
    pub fn expire(&mut self, now: Time) -> Vec<Timer> {
        let mut due = Vec::new();
        for t in Timer::ALL {
            if self.deadlines[t as usize].is_some_and(|d| d <= now) {
                self.deadlines[t as usize] = None;
                due.push(t);
            }
        }
        due
    }
}
