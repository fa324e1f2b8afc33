//! The live feed: server-sent events carrying a fresh [`RingSnapshot`]
//! whenever it changed (checked every [`EVERY`]), so the page never polls.
//!
//! Each open page has its own stream; a stream takes its snapshots on the
//! blocking pool (asking a node blocks until its thread answers), and
//! stops when the page goes away (hyper drops the body when a write
//! fails). At most [`MAX_STREAMS`] are open at once.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::{Bytes, Frame};

use super::nodes::NodeSet;
use super::snapshot::RingSnapshot;

/// How often a stream looks for a change.
pub const EVERY: Duration = Duration::from_millis(1000);

/// An unchanged snapshot is sent again after this long, so a page knows
/// the server is there and a closed page is noticed.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Event streams open at once (pages, tabs).
pub const MAX_STREAMS: usize = 8;

/// One frame of the stream.
pub type EventFrame = Result<Frame<Bytes>, Infallible>;

/// Counts a stream as open while it lives.
pub struct StreamSlot(Arc<AtomicUsize>);

impl StreamSlot {
    /// A slot among `open`, or `None` when [`MAX_STREAMS`] are taken.
    pub fn take(open: &Arc<AtomicUsize>) -> Option<StreamSlot> {
        if open.fetch_add(1, Ordering::SeqCst) >= MAX_STREAMS {
            open.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(StreamSlot(open.clone()))
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

struct Feed {
    nodes: Arc<dyn NodeSet>,
    last: Option<(String, Instant)>,
    _slot: StreamSlot,
}

/// The event stream for one page: a `ring` event with the snapshot as
/// JSON at once, then on every change.
pub fn ring_events(
    nodes: Arc<dyn NodeSet>,
    slot: StreamSlot,
) -> impl smol::stream::Stream<Item = EventFrame> + Send {
    let feed = Feed {
        nodes,
        last: None,
        _slot: slot,
    };
    smol::stream::unfold(feed, |mut feed| async move {
        loop {
            if feed.last.is_some() {
                smol::Timer::after(EVERY).await;
            }
            let nodes = feed.nodes.nodes();
            let json = smol::unblock(move || {
                serde_json::to_string(&RingSnapshot::take(&nodes)).expect("snapshot as JSON")
            })
            .await;
            let due = match &feed.last {
                Some((last, at)) => *last != json || at.elapsed() >= KEEP_ALIVE,
                None => true,
            };
            if due {
                let retry = if feed.last.is_none() {
                    "retry: 1000\n"
                } else {
                    ""
                };
                let event = format!("{retry}event: ring\ndata: {json}\n\n");
                feed.last = Some((json, Instant::now()));
                return Some((Ok(Frame::data(Bytes::from(event))), feed));
            }
        }
    })
}
