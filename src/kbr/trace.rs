//! The route tracer behind the REPL's `.trace KEY`: a small built-in KBR
//! application, registered on every node under the reserved [`TRACE_APP`].
//!
//! The source routes a probe to the key like any message. Every node that
//! routes it (the source first, at hop 0) tells the source straight away,
//! with a direct `send`, that the probe passed here; the root says so from
//! `deliver`. The source stamps each report with its own clock when it
//! arrives, so a hop's latency is the time from the start of the trace
//! until the source heard from that hop (the way there plus the way back,
//! which may include opening a connection): no clocks need agree.
//!
//! Reports come back on different paths, so the root's may overtake an
//! earlier hop's: the trace waits for every hop up to the root (at most as
//! long again as the root took).
//!
//! It is bounded: a probe id the source chose (reports for unknown probes
//! are ignored), the message's TTL (and at most [`MAX_HOPS`] reports), a
//! deadline after which the trace ends with what it has, and at most
//! [`MAX_PROBES`] traces at once. Like the rest of [`crate::kbr`] it is
//! sans-IO: time comes from the [`Api`].

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use super::{Api, Application};
use crate::id::{AppId, Id};
use crate::time::Time;
use crate::wire::{AppKind, AppMessage, AppType, Body, NodeRef, RoutedMessage};

/// The tracer's reserved app id. Peerlets' app ids are SHA-256 prefixes,
/// so none of them is this one.
pub const TRACE_APP: AppId = AppId(*b"peerlet/trace\0\0\0");

/// Reports kept per trace.
pub const MAX_HOPS: usize = 128;

/// Traces running at once on one node.
pub const MAX_PROBES: usize = 16;

/// What the tracer's messages carry.
#[derive(Debug, Serialize, Deserialize)]
enum TraceData {
    /// The probe itself, on its way to the key's root.
    Probe { probe: u64 },
    /// "Probe `probe` passed `node` after `hop` hops"; `root` when `node`
    /// delivered it.
    Passed {
        probe: u64,
        hop: u32,
        node: NodeRef,
        root: bool,
    },
}

/// One node the probe passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceHop {
    /// Hops the probe had taken when it reached `node` (the source is 0).
    pub hop: u32,
    pub node: NodeRef,
    /// From the start of the trace until the source heard from `node`.
    pub after: Duration,
    /// `node` is the key's root: it delivered the probe.
    pub root: bool,
}

/// What a trace found: the hops heard from, ordered by hop number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceReport {
    pub key: Id,
    pub hops: Vec<TraceHop>,
    /// `None` when the root and every hop before it reported; else why
    /// the trace ended without them.
    pub incomplete: Option<String>,
}

/// Given the report when the trace ends.
pub type TraceDone = Box<dyn FnOnce(TraceReport) + Send>;

struct Probe {
    key: Id,
    started: Time,
    deadline: Time,
    hops: Vec<TraceHop>,
    done: TraceDone,
}

/// The tracer. Clones share one state: the node keeps one to start traces,
/// the KBR layer another to run the upcalls.
#[derive(Clone, Default)]
pub struct Tracer(Rc<RefCell<TracerState>>);

#[derive(Default)]
struct TracerState {
    probes: BTreeMap<u64, Probe>,
    next_probe: u64,
}

impl Tracer {
    pub fn new() -> Tracer {
        Tracer::default()
    }

    /// Routes a probe towards `key`; `done` gets the report once the root
    /// answered or `timeout` passed. Refused (`done` runs at once) when
    /// [`MAX_PROBES`] traces are running.
    pub fn start(&self, api: &mut Api<'_>, key: Id, timeout: Duration, done: TraceDone) {
        let mut state = self.0.borrow_mut();
        if state.probes.len() >= MAX_PROBES {
            drop(state);
            done(TraceReport {
                key,
                hops: Vec::new(),
                incomplete: Some(format!("{MAX_PROBES} traces are running already")),
            });
            return;
        }
        state.next_probe += 1;
        let probe = state.next_probe;
        api.route(key, message(&TraceData::Probe { probe }), None);
        state.probes.insert(
            probe,
            Probe {
                key,
                started: api.now(),
                deadline: api.now() + timeout,
                hops: Vec::new(),
                done,
            },
        );
    }

    /// Records a report. Reports travel back on different paths, so the
    /// root's may overtake an earlier hop's: the trace ends once every hop
    /// up to the root has reported, or after waiting as long again as the
    /// root took (within the deadline).
    fn passed(&self, now: Time, probe: u64, hop: u32, node: NodeRef, root: bool) {
        let mut state = self.0.borrow_mut();
        let Some(p) = state.probes.get_mut(&probe) else {
            return;
        };
        if p.hops.len() < MAX_HOPS && !p.hops.iter().any(|h| h.hop == hop && h.node == node) {
            p.hops.push(TraceHop {
                hop,
                node,
                after: now.since(p.started),
                root,
            });
        }
        if root {
            p.deadline = p.deadline.min(now + now.since(p.started));
        }
        if p.missing().is_some_and(|m| m.is_empty()) {
            let p = state.probes.remove(&probe).expect("just seen");
            drop(state);
            finish(p, None);
        }
    }
}

impl Probe {
    /// Once the root reported: the hops before it that did not.
    fn missing(&self) -> Option<Vec<u32>> {
        let root = self.hops.iter().find(|h| h.root)?;
        Some(
            (0..root.hop)
                .filter(|i| !self.hops.iter().any(|h| h.hop == *i))
                .collect(),
        )
    }
}

fn finish(mut p: Probe, incomplete: Option<String>) {
    p.hops.sort_by_key(|h| (h.hop, h.after));
    (p.done)(TraceReport {
        key: p.key,
        hops: p.hops,
        incomplete,
    });
}

fn message(data: &TraceData) -> AppMessage {
    let mut bytes = Vec::new();
    ciborium::into_writer(data, &mut bytes).expect("encoding to memory");
    AppMessage {
        app: TRACE_APP,
        app_type: AppType::PerHop,
        code: None,
        data: ByteBuf::from(bytes),
        kind: AppKind::Message,
        refused_by: Vec::new(),
    }
}

fn decode(msg: &RoutedMessage) -> Option<TraceData> {
    let Body::App(app) = &msg.body else {
        return None;
    };
    ciborium::from_reader(&app.data[..]).ok()
}

impl Application for Tracer {
    fn forward(&mut self, api: &mut Api<'_>, msg: &mut RoutedMessage, next: &mut NodeRef) -> bool {
        // At the root `next` is this node and deliver reports it.
        if let Some(TraceData::Probe { probe }) = decode(msg) {
            if next.id != api.id().id {
                let passed = TraceData::Passed {
                    probe,
                    hop: msg.hops,
                    node: api.id(),
                    root: false,
                };
                api.send(msg.source, message(&passed));
            }
        }
        true
    }

    fn deliver(&mut self, api: &mut Api<'_>, msg: &RoutedMessage) {
        match decode(msg) {
            Some(TraceData::Probe { probe }) => {
                let passed = TraceData::Passed {
                    probe,
                    hop: msg.hops,
                    node: api.id(),
                    root: true,
                };
                api.send(msg.source, message(&passed));
            }
            Some(TraceData::Passed {
                probe,
                hop,
                node,
                root,
            }) if msg.source.id == node.id => self.passed(api.now(), probe, hop, node, root),
            // A report must come from the node it names.
            Some(TraceData::Passed { .. }) | None => {}
        }
    }

    fn next_deadline(&self) -> Option<Time> {
        self.0.borrow().probes.values().map(|p| p.deadline).min()
    }

    fn on_timeout(&mut self, api: &mut Api<'_>) {
        let now = api.now();
        let expired: Vec<Probe> = {
            let mut state = self.0.borrow_mut();
            let ids: Vec<u64> = state
                .probes
                .iter()
                .filter(|(_, p)| p.deadline <= now)
                .map(|(id, _)| *id)
                .collect();
            ids.iter()
                .filter_map(|id| state.probes.remove(id))
                .collect()
        };
        for p in expired {
            let waited = now.since(p.started);
            finish(
                p,
                Some(format!("no answer from the root within {waited:?}")),
            );
        }
    }
}
