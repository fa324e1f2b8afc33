//! Warnings an attacker can cause, rate-limited: at most a few lines a
//! window, then one line that counts what was left out.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// Lines a window may log before the rest are only counted.
const LINES_PER_WINDOW: u32 = 10;
const WINDOW: Duration = Duration::from_secs(10);

/// One gate per kind of warning; on the node's thread.
pub struct WarnGate {
    what: &'static str,
    window: Cell<Option<Instant>>,
    lines: Cell<u32>,
    suppressed: Cell<u64>,
}

impl WarnGate {
    pub const fn new(what: &'static str) -> WarnGate {
        WarnGate {
            what,
            window: Cell::new(None),
            lines: Cell::new(0),
            suppressed: Cell::new(0),
        }
    }

    /// Logs `line` (built only if it will be logged), or counts it.
    pub fn warn(&self, line: impl FnOnce() -> String) {
        let now = Instant::now();
        let fresh = self.window.get().is_none_or(|start| now - start >= WINDOW);
        if fresh {
            let left_out = self.suppressed.replace(0);
            if left_out > 0 {
                tracing::warn!(
                    "{left_out} more {} in the last {WINDOW:?} not logged",
                    self.what
                );
            }
            self.window.set(Some(now));
            self.lines.set(0);
        }
        if self.lines.get() < LINES_PER_WINDOW {
            self.lines.set(self.lines.get() + 1);
            tracing::warn!("{}", line());
        } else {
            self.suppressed.set(self.suppressed.get() + 1);
        }
    }
}
