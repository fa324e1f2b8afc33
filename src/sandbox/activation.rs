//! What an upcall activation is while it runs: its thread and what it has
//! spent, and the names the host uses for it.

use std::borrow::Cow;

use mlua::{MultiValue, Thread, Value};

/// Names one suspended upcall activation, for [`Sandbox::resume`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub(super) u64);

impl CallId {
    /// The number behind the id (unique within one sandbox).
    pub fn get(self) -> u64 {
        self.0
    }
}

/// How an upcall activation ended this time round.
#[derive(Debug)]
pub enum UpcallOutcome {
    /// The upcall returned these values.
    Done(MultiValue),
    /// The upcall called a suspending host function (see
    /// [`Sandbox::create_suspending_function`]); `request` is what that
    /// function's `prepare` returned. Answer with [`Sandbox::resume`] (or drop
    /// it with [`Sandbox::cancel`]).
    Suspended { call: CallId, request: Value },
}

/// How many upcall threads that finished cleanly a sandbox keeps for its
/// next activations, instead of creating a thread per upcall. Upcalls run one
/// at a time (suspended ones keep their own thread), so one is enough for a
/// stream of deliver() calls; each spare costs about 1 KB of the state.
///
/// Only threads whose activation returned normally and was never killed go
/// back: their stack is empty, no `__close` is pending, and their hook is the
/// coarse budget hook they were created with (the hook is re-armed only by a
/// kill). A thread the budget stopped, or that failed, is dropped as before.
/// A reused thread keeps the countdown to its next hook call, so an upcall
/// may be charged one [`GRAIN`](super::budget::GRAIN) early: never less.
pub(super) const SPARE_THREADS: usize = 1;

/// An upcall in progress: its thread and what it has spent so far.
pub(super) struct Activation {
    pub(super) thread: Thread,
    /// What reports call it: `deliver()`, a timer's label.
    pub(super) upcall: Cow<'static, str>,
    pub(super) used: u64,
    pub(super) ran: std::time::Duration,
}
