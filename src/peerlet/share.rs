//! A peerlet's fair share of the node over time.
//!
//! The sandbox bounds each upcall; this bounds what a peerlet does over
//! time. Each peerlet has a bucket of running time (its `cpu_share` of
//! every second, measured by the wall clock around each activation step,
//! so work no instruction shows counts too) and one of Lua instructions;
//! all peerlets together draw from one more bucket, the node's
//! `peerlets_share`. A peerlet with an empty bucket waits: the manager
//! holds its upcalls (`Manager::drive`) until the bucket has refilled. A
//! peerlet that stays over its share for `overload_time` is stopped.
//!
//! Buckets may go into debt: an activation is charged after it ran, so one
//! long step (a whole upcall budget) is paid back by waiting longer.

use std::time::Duration;

use crate::sandbox::Limits;
use crate::time::Time;

/// A token bucket: `rate` tokens a second, at most `burst` saved up; it
/// may go below zero when a charge is larger than what was left.
#[derive(Clone, Debug)]
pub struct Bucket {
    level: f64,
    last: Time,
    rate: f64,
    burst: f64,
}

impl Bucket {
    /// A full bucket.
    pub fn new(rate: f64, burst: f64) -> Bucket {
        Bucket {
            level: burst,
            last: Time::ZERO,
            rate,
            burst,
        }
    }

    /// What the bucket holds at `now` (not before its last charge).
    fn level_at(&self, now: Time) -> f64 {
        let secs = if now > self.last {
            now.since(self.last).as_secs_f64()
        } else {
            0.0
        };
        (self.level + secs * self.rate).min(self.burst)
    }

    /// Whether there is anything left to spend at `now`.
    pub fn ready(&self, now: Time) -> bool {
        self.level_at(now) > 0.0
    }

    /// Spends `amount`, going into debt if need be.
    pub fn charge(&mut self, now: Time, amount: f64) {
        self.level = self.level_at(now) - amount;
        self.last = self.last.max(now);
    }

    /// Takes one token if there is a whole one.
    pub fn take_one(&mut self, now: Time) -> bool {
        if self.level_at(now) >= 1.0 {
            self.charge(now, 1.0);
            return true;
        }
        false
    }

    /// When the bucket will hold more than `need` (`now` if it does).
    pub fn ready_at(&self, now: Time, need: f64) -> Time {
        let level = self.level_at(now);
        if level > need || self.rate <= 0.0 {
            return now;
        }
        let secs = (need - level) / self.rate;
        now + Duration::from_secs_f64(secs.min(1e6)) + Duration::from_micros(10)
    }
}

/// How long a burst of running time may be: a tenth of a second.
const BURST: f64 = 0.1;

/// One peerlet's share: its running time and instructions over time, and
/// how long it has been over them.
#[derive(Clone, Debug)]
pub struct Share {
    time: Bucket,
    instructions: Bucket,
    /// Since when the peerlet has been over its share without a break.
    over_since: Option<Time>,
    /// Since when its work has waited without a break (its backlog has
    /// not been empty since): a refill that runs some of it is no break.
    waiting_since: Option<Time>,
    /// Running time used, in total.
    pub used: Duration,
    /// Time its work waited for its share, in total.
    pub throttled: Duration,
    /// Work dropped because the backlog was full.
    pub dropped: u64,
    /// Running time in the current one-second window, and the last full
    /// window's, for "share used" in `.apps`.
    window: (Time, Duration, Duration),
}

impl Share {
    pub fn new(limits: &Limits) -> Share {
        Share {
            time: Bucket::new(limits.cpu_share, BURST.max(limits.cpu_share * BURST)),
            instructions: Bucket::new(
                limits.instructions_per_second as f64,
                limits.instructions as f64,
            ),
            over_since: None,
            waiting_since: None,
            used: Duration::ZERO,
            throttled: Duration::ZERO,
            dropped: 0,
            window: (Time::ZERO, Duration::ZERO, Duration::ZERO),
        }
    }

    /// Whether the peerlet may run now; notes when it went over.
    /// `node_ready`: whether all peerlets together are within theirs; a
    /// wait for that counts as this peerlet's wait too.
    pub fn ready(&mut self, now: Time, node_ready: bool) -> bool {
        let ready = node_ready && self.time.ready(now) && self.instructions.ready(now);
        match (ready, self.over_since) {
            (true, Some(since)) => {
                self.throttled += now.since(since);
                self.over_since = None;
            }
            (false, None) => self.over_since = Some(now),
            _ => {}
        }
        ready
    }

    /// When it last ran: the peerlet that ran least recently goes first.
    pub fn last_ran(&self) -> Time {
        self.time.last
    }

    /// When it may run again.
    pub fn ready_at(&self, now: Time) -> Time {
        let t = self.time.ready_at(now, 0.0);
        t.max(self.instructions.ready_at(now, 0.0))
    }

    /// Notes whether work of the peerlet waits for its share at `now`.
    pub fn set_waiting(&mut self, now: Time, waiting: bool) {
        match (waiting, self.waiting_since) {
            (true, None) => self.waiting_since = Some(now),
            (false, Some(_)) => self.waiting_since = None,
            _ => {}
        }
    }

    /// How long its work has waited for its share without a break.
    pub fn over_for(&self, now: Time) -> Duration {
        self.waiting_since.map_or(Duration::ZERO, |t| now.since(t))
    }

    /// Charges one activation step that ran for `ran` and executed
    /// `instructions`.
    pub fn charge(&mut self, now: Time, ran: Duration, instructions: u64) {
        self.time.charge(now, ran.as_secs_f64());
        self.instructions.charge(now, instructions as f64);
        self.used += ran;
        let (start, current, _) = &mut self.window;
        if now.since(*start) >= Duration::from_secs(1) {
            self.window = (now, ran, *current);
        } else {
            *current += ran;
        }
    }

    /// The fraction of a core it used over the last full second.
    pub fn recent(&self, now: Time) -> f64 {
        let (start, current, last) = self.window;
        let age = now.since(start);
        if age >= Duration::from_secs(2) {
            0.0
        } else if age >= Duration::from_secs(1) {
            current.as_secs_f64()
        } else {
            last.as_secs_f64()
        }
    }
}

/// The node-wide bucket all peerlets draw from together.
pub fn node_bucket(fraction: f64) -> Bucket {
    Bucket::new(fraction, BURST.max(fraction * BURST))
}

/// Bursts of log lines a peerlet may write before its rate applies.
const LOG_BURST: f64 = 100.0;

/// What a peerlet may write to the node's log: `log_lines_per_second`
/// (with bursts), each line cut at `log_line_bytes`. The lines over the
/// rate are counted and summed up in one line when the next one passes.
#[derive(Clone, Debug)]
pub struct LogGate {
    /// Who the summary names ("peerlet `dht`").
    who: String,
    bucket: Bucket,
    max_bytes: usize,
    /// Lines suppressed in total.
    pub suppressed: u64,
    /// Lines suppressed since the last summary.
    pending: u64,
}

impl LogGate {
    pub fn new(limits: &Limits, who: String) -> LogGate {
        LogGate {
            who,
            bucket: Bucket::new(limits.log_lines_per_second as f64, LOG_BURST),
            max_bytes: limits.log_line_bytes,
            suppressed: 0,
            pending: 0,
        }
    }

    /// The lines to write for `line` at `now`: none (suppressed), the line
    /// cut to length, or a summary of what was suppressed first and then
    /// the line.
    pub fn admit(&mut self, now: Time, mut line: String) -> Vec<String> {
        if !self.bucket.take_one(now) {
            self.suppressed += 1;
            self.pending += 1;
            return Vec::new();
        }
        if line.len() > self.max_bytes {
            let mut cut = self.max_bytes;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
            line.push('…');
        }
        let mut out = Vec::with_capacity(2);
        if self.pending > 0 {
            out.push(format!(
                "{}: {} log lines suppressed (over {} lines/s)",
                self.who, self.pending, self.bucket.rate
            ));
            self.pending = 0;
        }
        out.push(line);
        out
    }
}
