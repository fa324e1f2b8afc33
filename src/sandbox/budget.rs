//! The instruction budget: a count hook on every coroutine that ends a
//! runaway upcall, and that the script cannot catch.
//!
//! How it holds (each point measured on mlua 0.12.2; docs/design.md, "The
//! sandbox and its threat model"):
//! - The hook is set with `Lua::set_global_hook`, so every thread inherits
//!   it: the host's upcall threads and every coroutine the script creates.
//!   (`set_hook` misses script coroutines.)
//! - While under budget the hook fires every [`GRAIN`] instructions. Once the
//!   budget is spent the activation is *killed*, and every later hook call
//!   in it stops the thread it fires in:
//!   - where the thread can yield (almost always: upcall threads and script
//!     coroutines), the hook *yields* it. Nothing unwinds, so no `pcall`
//!     catches anything, no `xpcall` handler and no `__close` runs; each
//!     resumer runs at most [`GRAIN`] more instructions before its own hook
//!     yields it too, up to the host, which drops the upcall thread unresumed.
//!   - where it cannot (inside a C call such as a `table.sort` comparator or a
//!     metamethod called from C, or the host's main thread), the hook raises
//!     an error and re-arms that thread to fire on every instruction and
//!     call: a `pcall` loop catches one error, but its next instruction, or
//!     its next call to `pcall`, raises again outside the protected call.
//!     Threads stopped this way are remembered as *aborted*: Lua leaves their
//!     hooks off, so closing them later (which runs `__close` handlers) must
//!     never happen; the coroutine library refuses it. And because mlua
//!     closes the running function's to-be-closed variables while raising
//!     the hook's error, every `__close` handler is first replaced by a no-op.
//!
//! - Memory pressure: Lua answers an allocation over the memory limit with a
//!   full collection and a retry, so a script whose live data sits just under
//!   the limit makes *every* allocation a full collection (measured: minutes
//!   for one upcall of `memory_table.lua`). At each hook call, if the state is
//!   within [`pressure_margin`] of its limit even after a full collection,
//!   the activation is killed the same sticky way, as a memory abort; and a
//!   collection that does free enough is charged to the instruction budget
//!   by the bytes it scanned.
//!
//! - Time: the same hook call compares the activation's running time with a
//!   generous wall-clock limit, a backstop for work no instruction shows
//!   (collections, a long C call between two hook calls).
//!
//! The budget is per upcall activation: instructions spent before a
//! suspension and after its resume add up. The sandbox swaps the count in
//! and out around each resume.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mlua::debug::{Debug, DebugEvent};

use super::error::script_location;
use mlua::{Function, HookTriggers, Lua, Table, Thread, Value, VmState};

/// Instructions between two hook calls while under budget. A coroutine that
/// finishes before its first hook call is counted by [`Budget::charge`] at
/// its creation instead.
pub(crate) const GRAIN: u32 = 1000;

/// A full collection forced by memory pressure is charged to the budget as
/// one instruction per this many live bytes it had to scan, so a script that
/// keeps the state near its limit cannot buy unbounded collector time.
const GC_BYTES_PER_INSTRUCTION: usize = 64;

/// How close to its memory limit a state may stay after a full collection
/// before it counts as exhausted: 1/16 of the limit, at least 64 KiB.
pub(crate) fn pressure_margin(memory_limit: usize) -> usize {
    (memory_limit / 16).max(64 << 10)
}

/// Set once the process is shutting down: every running activation is
/// killed at its next hook call, whatever its budget (see [`shut_down`]).
static SHUTTING_DOWN: AtomicBool = AtomicBool::new(false);

/// Kills every peerlet activation of this process at its next hook call
/// (within [`GRAIN`] instructions), and every later one at its first: for
/// a node that was told to stop (SIGINT, SIGTERM), so no upcall delays it.
pub fn shut_down() {
    SHUTTING_DOWN.store(true, Ordering::Relaxed);
}

/// Why an activation was killed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kill {
    Instructions,
    /// The process is shutting down.
    Shutdown,
    /// Running time of the activation over its limit.
    Time,
    /// Live data this close to the memory limit after a full collection.
    Memory {
        used: usize,
    },
}

/// Shared between the sandbox and the hook closure.
pub(crate) struct Budget {
    limit: u64,
    /// Wall-clock running time an activation may use (a backstop: see
    /// [`Limits::upcall_time`](super::Limits::upcall_time)).
    time_limit: Duration,
    /// Running time of the activation before the current stretch.
    ran_before: Cell<Duration>,
    /// When the current stretch of running started.
    stretch_start: Cell<Instant>,
    /// Above this many bytes after a full collection, the activation dies.
    pressure: usize,
    used: Cell<u64>,
    total: Cell<u64>,
    killed: Cell<Option<Kill>>,
    /// `chunk:line` where the budget ran out, when known.
    at: RefCell<Option<String>>,
    /// Threads the hook raised an error in (see the module doc).
    aborted: RefCell<Vec<Thread>>,
    /// Threads asked to yield since the kill and not resumed since (the
    /// coroutine wrappers report resumes while `flags.killed` is set). A
    /// thread asked again while still on this list did not yield: mlua
    /// ignores a hook's yield where Lua cannot yield, so it gets an error.
    asked: RefCell<Vec<Thread>>,
    /// A table the Lua wrappers read cheaply: `killed` mirrors the kill.
    flags: RefCell<Option<Table>>,
    /// What `flags.killed` holds now, so it is written only when it changes.
    flags_killed: Cell<bool>,
    /// Whether the hook is armed fine (every instruction and call) since a
    /// kill; [`Budget::finish`] re-arms the coarse hook only then.
    armed_fine: Cell<bool>,
    /// Weak set of every table the script made a metatable, and a function
    /// that does nothing (see [`Budget::defuse_close_handlers`]).
    metatables: RefCell<Option<(Table, Function)>>,
}

/// What one stretch of running under the budget left behind.
pub(crate) struct Spent {
    pub used: u64,
    pub ran: Duration,
    pub killed: Option<Kill>,
    pub at: Option<String>,
}

impl Budget {
    pub(crate) fn new(limit: u64, memory_limit: usize, time_limit: Duration) -> Rc<Budget> {
        Rc::new(Budget {
            limit,
            time_limit,
            ran_before: Cell::new(Duration::ZERO),
            stretch_start: Cell::new(Instant::now()),
            pressure: memory_limit.saturating_sub(pressure_margin(memory_limit)),
            used: Cell::new(0),
            total: Cell::new(0),
            killed: Cell::new(None),
            at: RefCell::new(None),
            aborted: RefCell::new(Vec::new()),
            asked: RefCell::new(Vec::new()),
            flags: RefCell::new(None),
            flags_killed: Cell::new(false),
            armed_fine: Cell::new(false),
            metatables: RefCell::new(None),
        })
    }

    /// The weak set the `setmetatable` wrapper fills, and a no-op function.
    pub(crate) fn set_metatables(&self, set: Table, noop: Function) {
        self.metatables.replace(Some((set, noop)));
    }

    /// Replaces every `__close` handler in the script's metatables by a no-op.
    ///
    /// Why: when the hook raises an error, mlua (0.12.2) clears the running
    /// Lua function's stack with `lua_settop` from inside the hook, which
    /// closes that function's to-be-closed variables while hooks are off. A
    /// `__close` added to a metatable after `setmetatable` would then run
    /// unstoppable. Called only when an activation is killed by an error.
    fn defuse_close_handlers(&self) {
        if let Some((set, noop)) = self.metatables.borrow().as_ref() {
            let _ = set.for_each(|mt: Value, _: Value| {
                if let Value::Table(mt) = mt {
                    if !mt.raw_get::<Value>("__close")?.is_nil() {
                        mt.raw_set("__close", noop)?;
                    }
                }
                Ok(())
            });
        }
    }

    /// The table whose `killed` field the prelude's wrappers read.
    pub(crate) fn set_flags(&self, flags: Table) {
        self.flags.replace(Some(flags));
    }

    /// Called by the coroutine wrappers for each resume after a kill.
    pub(crate) fn note_resume(&self, co: &Thread) {
        self.asked.borrow_mut().retain(|t| t != co);
    }

    /// Writes `flags.killed` when it differs from what the host wrote last
    /// (only the host writes it: the script never sees `flags`).
    fn mirror_killed(&self, killed: bool) {
        if self.flags_killed.get() == killed {
            return;
        }
        if let Some(flags) = self.flags.borrow().as_ref() {
            if flags.raw_set("killed", killed).is_ok() {
                self.flags_killed.set(killed);
            }
        }
    }

    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }

    pub(crate) fn time_limit(&self) -> Duration {
        self.time_limit
    }

    /// Instructions counted since the sandbox was created.
    pub(crate) fn total(&self) -> u64 {
        self.total.get()
    }

    pub(crate) fn killed(&self) -> bool {
        self.killed.get().is_some()
    }

    /// Starts (or continues) an activation that has already used `used`.
    pub(crate) fn begin(&self, used: u64, ran: Duration) {
        self.used.set(used);
        self.ran_before.set(ran);
        self.stretch_start.set(Instant::now());
        self.killed.set(None);
        self.at.replace(None);
        self.asked.borrow_mut().clear();
        self.mirror_killed(false);
    }

    /// Ends a stretch of running: reports it and, if a kill re-armed the
    /// hook fine, re-arms the coarse hook on the host's main thread and for
    /// threads created from now on. (The script cannot touch hooks: only
    /// [`arm`] sets them, so without a kill they are still coarse.)
    pub(crate) fn finish(self: &Rc<Budget>, lua: &Lua) -> mlua::Result<Spent> {
        let spent = Spent {
            used: self.used.get(),
            ran: self.ran_before.get() + self.stretch_start.get().elapsed(),
            killed: self.killed.replace(None),
            at: self.at.replace(None),
        };
        self.asked.borrow_mut().clear();
        self.mirror_killed(false);
        if self.armed_fine.get() {
            arm(lua, self, false)?;
        }
        Ok(spent)
    }

    /// Counts `n` instructions done where the hook cannot see them, and kills
    /// the activation if that spends the budget.
    pub(crate) fn charge(self: &Rc<Budget>, lua: &Lua, n: u64) -> mlua::Result<()> {
        if self.killed() || self.add(n) {
            return self.kill(lua, Kill::Instructions, None, false).map(|_| ());
        }
        Ok(())
    }

    /// Whether the hook raised an error in `thread` (so hooks may be off in it).
    pub(crate) fn was_aborted(&self, thread: &Thread) -> bool {
        self.aborted.borrow().contains(thread)
    }

    /// Forgets aborted threads; called when the peerlet is stopped.
    pub(crate) fn forget_aborted(&self) {
        self.aborted.borrow_mut().clear();
    }

    /// Adds `n`; true when that goes over the limit.
    fn add(&self, n: u64) -> bool {
        self.total.set(self.total.get().saturating_add(n));
        let used = self.used.get().saturating_add(n);
        self.used.set(used);
        used > self.limit
    }

    /// Stops the running thread: by yielding when `can_yield` (a count event)
    /// and the thread is yieldable, else by an error (see the module doc).
    fn kill(
        self: &Rc<Budget>,
        lua: &Lua,
        why: Kill,
        at: Option<String>,
        can_yield: bool,
    ) -> mlua::Result<VmState> {
        let why = *self.killed.get().get_or_insert(why);
        self.killed.set(Some(why));
        if self.at.borrow().is_none() {
            self.at.replace(at);
        }
        self.mirror_killed(true);
        let thread = lua.current_thread();
        if can_yield && !self.asked.borrow().contains(&thread) {
            self.asked.borrow_mut().push(thread);
            return Ok(VmState::Yield);
        }
        self.defuse_close_handlers();
        {
            let mut aborted = self.aborted.borrow_mut();
            if !aborted.contains(&thread) {
                aborted.push(thread);
            }
        }
        arm(lua, self, true)?;
        Err(match why {
            Kill::Instructions => {
                mlua::Error::runtime(format!("instruction budget of {} exceeded", self.limit))
            }
            Kill::Time => mlua::Error::runtime("time limit exceeded"),
            Kill::Shutdown => mlua::Error::runtime("the node is shutting down"),
            Kill::Memory { .. } => mlua::Error::MemoryError("memory limit reached".into()),
        })
    }

    fn on_hook(self: &Rc<Budget>, lua: &Lua, debug: &Debug) -> mlua::Result<VmState> {
        let count = debug.event() == DebugEvent::Count;
        if let Some(why) = self.killed.get() {
            return self.kill(lua, why, None, count);
        }
        if !count {
            // A call event on a thread still armed from an earlier kill.
            arm(lua, self, false)?;
            return Ok(VmState::Continue);
        }
        let over_budget = self.add(GRAIN as u64);
        let mut why = over_budget.then_some(Kill::Instructions);
        if SHUTTING_DOWN.load(Ordering::Relaxed) {
            why = Some(Kill::Shutdown);
        }
        if why.is_none()
            && self.ran_before.get() + self.stretch_start.get().elapsed() > self.time_limit
        {
            why = Some(Kill::Time);
        }
        if why.is_none() && lua.used_memory() > self.pressure {
            lua.gc_collect()?;
            let used = lua.used_memory();
            if used > self.pressure {
                why = Some(Kill::Memory { used });
            } else if self.add((used / GC_BYTES_PER_INSTRUCTION) as u64) {
                why = Some(Kill::Instructions);
            }
        }
        match why {
            None => Ok(VmState::Continue),
            Some(why) => {
                let src = debug.source();
                let here = debug
                    .current_line()
                    .filter(|_| src.short_src.as_deref() != Some("[sandbox]"))
                    .map(|line| format!("{}:{line}", src.short_src.as_deref().unwrap_or("?")));
                let at = here.or_else(|| script_location(lua, 0));
                self.kill(lua, why, at, true)
            }
        }
    }
}

/// Sets the budget hook on the thread now running (the main thread when
/// called by the host) and on threads created from now on: coarse while under
/// budget, on every instruction and call once killed.
pub(crate) fn arm(lua: &Lua, budget: &Rc<Budget>, killed: bool) -> mlua::Result<()> {
    let triggers = if killed {
        HookTriggers::new().every_nth_instruction(1).on_calls()
    } else {
        HookTriggers::new().every_nth_instruction(GRAIN)
    };
    let b = Rc::clone(budget);
    lua.set_global_hook(triggers, move |lua, debug| b.on_hook(lua, debug))?;
    budget.armed_fine.set(killed);
    Ok(())
}
