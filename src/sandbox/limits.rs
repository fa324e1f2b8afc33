//! What one peerlet may use: the numbers every sandbox defence is measured
//! against.
//!
//! Limits are configuration: a node reads them once and hands the same
//! [`Limits`] to every sandbox it creates. The defaults suit small teaching
//! peerlets on a laptop; each field says what breaking it costs the peerlet.

use std::time::Duration;

/// Resource bounds for one peerlet (one Lua state).
///
/// Breaking the instruction, memory or C-function bounds aborts the running
/// upcall with a [`SandboxError`](super::SandboxError) and counts one strike;
/// after [`strikes`](Limits::strikes) of them the peerlet is stopped. The
/// timer, outgoing-queue and pending-call bounds are refusals: the host call
/// that would exceed them fails with a Lua error the peerlet can handle.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Lua VM instructions one upcall activation may execute, counted across
    /// every coroutine it runs and across all its suspensions and resumes.
    /// Default: 1 000 000 (a few milliseconds of Lua).
    pub instructions: u64,
    /// Wall-clock time one upcall activation may run (summed over its
    /// resumes), checked at each instruction-hook call. A backstop for work
    /// the instruction count does not see (garbage collection near the memory
    /// limit, C calls); generous, so a slow machine does not stop honest
    /// peerlets. Default: 1 s.
    pub upcall_time: Duration,
    /// Bytes the peerlet's Lua state may hold (its heap, stacks and strings).
    /// A state still within 1/16 of this (at least 64 KiB) after a full
    /// collection counts as exhausted: near its limit every allocation
    /// would cost a full collection. Default: 8 MiB.
    pub memory_bytes: usize,
    /// Largest application value, encoded as CBOR, a peerlet may send or
    /// receive. Default: 64 KiB.
    pub message_bytes: usize,
    /// Deepest nesting of tables in a value sent or received. Default: 32.
    pub nesting_depth: usize,
    /// Timers one peerlet may have armed at once. Default: 64.
    pub timers: usize,
    /// Host calls (such as `peerlet.lookup` handle calls) one peerlet may have
    /// waiting for a reply at once. Default: 32.
    pub pending_calls: usize,
    /// Outgoing messages one peerlet may have queued in the node at once.
    /// Default: 256.
    pub outgoing_queue: usize,
    /// Messages per second one peerlet may send on average (`kbr.route`,
    /// `kbr.send`, remote calls), with bursts up to `outgoing_queue`. Without
    /// it a peerlet whose deliver() sends messages that land on the same node
    /// again would multiply them without end. Default: 1000.
    pub messages_per_second: u32,
    /// Largest string a single C library call may build (`string.rep`,
    /// `string.format`, `table.concat`), checked before the call. Default: 1 MiB.
    pub string_bytes: usize,
    /// Bound on the backtracking work of one pattern call (`string.find`,
    /// `match`, `gmatch`, `gsub`), estimated before the call from the subject
    /// length and the pattern's repetition items. The instruction hook never
    /// fires inside these C functions, so this is what bounds their time.
    /// Default: 10 000 000 (measured: the worst pattern under it, `a*b` on
    /// 3 000 `a`s, runs ~60 ms; linear patterns stay allowed on subjects up to
    /// 10 MB, beyond the default memory limit).
    pub pattern_work: u64,
    /// Most values one `table.unpack` call may return. Default: 10 000.
    pub unpack_results: usize,
    /// Limit aborts (instructions, memory, C-function bounds) a peerlet may
    /// cause before it is stopped for good. Default: 3.
    pub strikes: u32,
    /// The peerlet's share of the node's thread over time: the fraction of
    /// each second its upcalls may run, measured by the wall clock, with
    /// bursts of a tenth of a second. A peerlet over its share waits: its
    /// messages, calls, replies and timers are held (up to `backlog`) until
    /// its share has refilled. Default: 0.25 (a quarter of a core).
    pub cpu_share: f64,
    /// Lua instructions per second the peerlet may execute over time, all
    /// upcalls together, with bursts of `instructions` (one upcall's
    /// worth); over it, it waits as for `cpu_share`. Default: 50 000 000.
    pub instructions_per_second: u64,
    /// Upcalls, messages and replies held while the peerlet waits for its
    /// share; more are dropped and counted. Default: 256.
    pub backlog: usize,
    /// How long a peerlet may stay over its share, without a break, before
    /// it is stopped and reported: a peerlet that always has more work than
    /// its share is a peerlet that keeps the node busy for good. Default: 30 s.
    pub overload_time: Duration,
    /// Timer callbacks per second, with bursts of `timers`; due timers wait
    /// beyond it. Default: 200.
    pub timer_callbacks_per_second: u32,
    /// Log lines per second (`log.*` and the node's reports about the
    /// peerlet), with bursts of 100; the rest are counted and summed up in
    /// one "suppressed N lines" line. Default: 20.
    pub log_lines_per_second: u32,
    /// Longest log line kept, in bytes; the rest is cut. Default: 1024.
    pub log_line_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            instructions: 1_000_000,
            upcall_time: Duration::from_secs(1),
            memory_bytes: 8 << 20,
            message_bytes: 64 << 10,
            nesting_depth: 32,
            timers: 64,
            pending_calls: 32,
            outgoing_queue: 256,
            messages_per_second: 1000,
            string_bytes: 1 << 20,
            pattern_work: 10_000_000,
            unpack_results: 10_000,
            strikes: 3,
            cpu_share: 0.25,
            instructions_per_second: 50_000_000,
            backlog: 256,
            overload_time: Duration::from_secs(30),
            timer_callbacks_per_second: 200,
            log_lines_per_second: 20,
            log_line_bytes: 1024,
        }
    }
}
