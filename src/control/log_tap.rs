//! The node's log, tapped for consoles: `.log [LEVEL]` streams it.
//!
//! [`layer`] is a tracing layer that the `peerlet` binary installs beside
//! its stderr output. It formats nothing until a console subscribes; then
//! every event at or above the subscriber's level becomes one line in that
//! subscriber's bounded queue. A queue that is full (the console reads too
//! slowly) drops the line and counts it, so a slow console never slows the
//! node, and the console is told how many lines it missed.
//!
//! Which levels reach the tap is decided per call site and cached by
//! tracing; subscribing or leaving rebuilds that cache, so with no console
//! attached a `debug!` the stderr filter hides costs what it cost before.

use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Filter, Layer};

/// Lines one subscriber may have waiting before further lines are dropped.
pub const QUEUE_LINES: usize = 1000;

/// Subscribers at once (each is one console connection, itself bounded).
const MAX_SUBSCRIBERS: usize = 16;

struct Sub {
    id: u64,
    level: Level,
    lines: SyncSender<String>,
    dropped: Arc<AtomicU64>,
}

struct Tap {
    subs: Mutex<Vec<Sub>>,
    /// The most verbose level any subscriber wants, as `LevelFilter`'s
    /// index (0 = off … 5 = trace); read on every event.
    max: AtomicUsize,
    next_id: AtomicU64,
    installed: AtomicBool,
}

static TAP: Tap = Tap {
    subs: Mutex::new(Vec::new()),
    max: AtomicUsize::new(0),
    next_id: AtomicU64::new(0),
    installed: AtomicBool::new(false),
};

fn rank(level: &Level) -> usize {
    match *level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

/// The layer to install (with its filter) in the process's subscriber.
pub fn layer<S>() -> impl Layer<S>
where
    S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    TAP.installed.store(true, Ordering::SeqCst);
    TapLayer.with_filter(TapFilter)
}

/// Parses `error`, `warn`, `info`, `debug` or `trace`.
pub fn parse_level(text: &str) -> Result<Level, String> {
    text.parse::<Level>().map_err(|_| {
        format!("unknown log level `{text}` (expected error, warn, info, debug, trace or off)")
    })
}

/// A console's share of the log: lines at or above its level, as they
/// come. Dropping it unsubscribes.
pub struct LogStream {
    id: u64,
    lines: Receiver<String>,
    dropped: Arc<AtomicU64>,
}

/// Starts tapping the log at `level`; `Err` when this process has no tap
/// installed or too many consoles are tapping it.
pub fn subscribe(level: Level) -> Result<LogStream, String> {
    if !TAP.installed.load(Ordering::SeqCst) {
        return Err("this process does not tap its log (only `peerlet node` does)".into());
    }
    let (tx, rx) = mpsc::sync_channel(QUEUE_LINES);
    let dropped = Arc::new(AtomicU64::new(0));
    let id = TAP.next_id.fetch_add(1, Ordering::Relaxed);
    {
        let mut subs = TAP.subs.lock().expect("log tap lock");
        if subs.len() >= MAX_SUBSCRIBERS {
            return Err(format!(
                "{MAX_SUBSCRIBERS} consoles are streaming the log already"
            ));
        }
        subs.push(Sub {
            id,
            level,
            lines: tx,
            dropped: dropped.clone(),
        });
        update_max(&subs);
    }
    Ok(LogStream {
        id,
        lines: rx,
        dropped,
    })
}

fn update_max(subs: &[Sub]) {
    let max = subs.iter().map(|s| rank(&s.level)).max().unwrap_or(0);
    if TAP.max.swap(max, Ordering::SeqCst) != max {
        tracing::callsite::rebuild_interest_cache();
    }
}

impl LogStream {
    /// Waits up to `limit` for lines; returns those waiting (at most
    /// `most`) and how many were dropped since the last call.
    pub fn next_batch(&self, limit: Duration, most: usize) -> (Vec<String>, u64) {
        let mut lines = Vec::new();
        match self.lines.recv_timeout(limit) {
            Ok(line) => lines.push(line),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
        }
        while lines.len() < most {
            match self.lines.try_recv() {
                Ok(line) => lines.push(line),
                Err(_) => break,
            }
        }
        (lines, self.dropped.swap(0, Ordering::Relaxed))
    }
}

impl Drop for LogStream {
    fn drop(&mut self) {
        let mut subs = TAP.subs.lock().expect("log tap lock");
        subs.retain(|s| s.id != self.id);
        update_max(&subs);
    }
}

struct TapFilter;

impl<S> Filter<S> for TapFilter {
    fn enabled(&self, meta: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        rank(meta.level()) <= TAP.max.load(Ordering::Relaxed)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        // Cached per call site; `update_max` rebuilds the cache.
        if rank(meta.level()) <= TAP.max.load(Ordering::Relaxed) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(match TAP.max.load(Ordering::Relaxed) {
            0 => LevelFilter::OFF,
            1 => LevelFilter::ERROR,
            2 => LevelFilter::WARN,
            3 => LevelFilter::INFO,
            4 => LevelFilter::DEBUG,
            _ => LevelFilter::TRACE,
        })
    }
}

struct TapLayer;

impl<S: Subscriber> Layer<S> for TapLayer {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        let mut line = format!("{:>5} {}:", meta.level(), meta.target());
        event.record(&mut LineVisitor(&mut line));
        let subs = TAP.subs.lock().expect("log tap lock");
        for s in subs.iter().filter(|s| meta.level() <= &s.level) {
            if let Err(TrySendError::Full(_)) = s.lines.try_send(line.clone()) {
                s.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Writes the message, then the other fields as `name=value`.
struct LineVisitor<'a>(&'a mut String);

impl Visit for LineVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn subscribers_get_their_levels_and_a_full_queue_counts_drops() {
        let subscriber = tracing_subscriber::registry().with(layer());
        tracing::subscriber::with_default(subscriber, || {
            let info = subscribe(Level::INFO).unwrap();
            let debug = subscribe(Level::DEBUG).unwrap();
            tracing::debug!(target: "t", "fine {}", 1);
            tracing::info!(target: "t", peer = "x", "coarse");
            let (lines, dropped) = info.next_batch(Duration::ZERO, 10);
            assert_eq!(lines, vec![" INFO t: coarse peer=\"x\"".to_string()]);
            assert_eq!(dropped, 0);
            let (lines, _) = debug.next_batch(Duration::ZERO, 10);
            assert_eq!(lines.len(), 2, "{lines:?}");
            assert_eq!(lines[0], "DEBUG t: fine 1");
            drop(debug);
            for i in 0..QUEUE_LINES + 5 {
                tracing::info!(target: "t", "line {i}");
            }
            let (lines, dropped) = info.next_batch(Duration::ZERO, QUEUE_LINES * 2);
            assert_eq!(lines.len(), QUEUE_LINES);
            assert_eq!(dropped, 5);
        });
    }
}
