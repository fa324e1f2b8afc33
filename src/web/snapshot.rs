//! One picture of the nodes the page shows, as JSON: taken on each node's
//! own thread from the same sources as the console's `.ring`, `.peers`,
//! `.apps` and `.stats` (the shared routing view, the peerlet manager's
//! counters, the transport's counters and queue depths), so the page and
//! the console never disagree about what they show.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::id::Id;
use crate::node::{NodeHandle, NodeStats, QueueDepths};
use crate::peerlet::Manager;
use crate::wire::NodeRef;

/// What the page draws: every node any shown node knows (its place on the
/// ring), and the shown ones in full.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct RingSnapshot {
    /// Every node known, by id, clockwise from id 0.
    pub known: Vec<Place>,
    /// The nodes of this process (or the one node), in the set's order.
    pub nodes: Vec<NodeView>,
}

/// A node at its place on the ring.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Place {
    pub id: String,
    pub addr: String,
    /// Where on the ring, from 0 (id 0) to 1 (id 2^160), clockwise.
    pub place: f64,
}

/// One node of this process, in full; `error` alone when it did not
/// answer (it stopped, or crashed in the demo).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct NodeView {
    pub id: String,
    pub addr: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub state: Option<NodeState>,
}

/// What a node that answered knows and does.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct NodeState {
    pub predecessor: Option<String>,
    pub successors: Vec<String>,
    /// Chord's fingers, in runs pointing at one node (`finger 12-150`).
    pub fingers: Vec<Finger>,
    pub apps: Vec<AppView>,
    pub deployments: Vec<DeploymentView>,
    pub traffic: Traffic,
    pub queues: Queues,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Finger {
    pub label: String,
    pub id: String,
}

/// A peerlet installed on the node, with the counters of `.apps`.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct AppView {
    pub name: String,
    pub app: String,
    #[serde(rename = "type")]
    pub app_type: String,
    pub version: u32,
    /// The publisher's key, or "local (unsigned)".
    pub publisher: String,
    pub memory: usize,
    pub instructions: u64,
    pub messages_in: u64,
    pub messages_out: u64,
    pub aborts: u32,
    pub stopped: bool,
}

/// A peerlet this node received by traffic (deployment), oldest first.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct DeploymentView {
    pub name: String,
    pub version: u32,
    /// "store" or "origin": who sent the code.
    pub source: String,
    pub fetch_ms: f64,
    pub verify_ms: f64,
    pub start_ms: f64,
}

/// The transport's counters since the node started.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Traffic {
    pub messages_in: u64,
    pub messages_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub dropped: u64,
}

/// Where work waits now (the queues of `.stats`).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Queues {
    pub incoming: usize,
    pub control: usize,
    pub hops: usize,
    pub lookups: usize,
    pub peerlet_calls: usize,
    /// Frames waiting per outgoing connection, of `capacity` each.
    pub outgoing: Vec<(String, usize)>,
    pub capacity: usize,
}

/// Where `id` sits on the ring, in [0, 1).
pub fn place(id: &Id) -> f64 {
    id.high_u64() as f64 / (u64::MAX as f64 + 1.0)
}

impl RingSnapshot {
    /// Asks every node of `nodes` for its state, one after the other
    /// (blocking: run it off the web server's executor).
    pub fn take(nodes: &[Arc<NodeHandle>]) -> RingSnapshot {
        let mut known = BTreeMap::new();
        let mut views = Vec::with_capacity(nodes.len());
        for node in nodes {
            let me = node.me();
            known.insert(me.id, me);
            let view = match state_of(node) {
                Ok((state, seen)) => {
                    for n in seen {
                        known.insert(n.id, n);
                    }
                    NodeView {
                        id: me.id.to_string(),
                        addr: me.addr.to_string(),
                        error: None,
                        state: Some(state),
                    }
                }
                Err(e) => NodeView {
                    id: me.id.to_string(),
                    addr: me.addr.to_string(),
                    error: Some(e),
                    state: None,
                },
            };
            views.push(view);
        }
        let known = known
            .values()
            .map(|n| Place {
                id: n.id.to_string(),
                addr: n.addr.to_string(),
                place: place(&n.id),
            })
            .collect();
        RingSnapshot {
            known,
            nodes: views,
        }
    }
}

/// One node's state and every node it knows.
fn state_of(node: &NodeHandle) -> Result<(NodeState, Vec<NodeRef>), String> {
    let queues = node.queue_depths().map_err(|e| e.to_string())?;
    let traffic = traffic(&node.stats());
    node.with_peerlets(move |m, api| {
        let view = api.view();
        let id = |n: &NodeRef| n.id.to_string();
        let state = NodeState {
            predecessor: view.predecessor().as_ref().map(id),
            successors: view.successors().iter().map(id).collect(),
            fingers: view
                .links()
                .into_iter()
                .map(|(label, n)| Finger {
                    label: label.split_whitespace().collect::<Vec<_>>().join(" "),
                    id: id(&n),
                })
                .collect(),
            apps: apps(m),
            deployments: deployments(m),
            traffic,
            queues: queues_of(&queues),
        };
        (state, view.known_nodes())
    })
    .map_err(|e| e.to_string())
}

fn apps(m: &Manager) -> Vec<AppView> {
    m.peerlets()
        .map(|p| AppView {
            name: p.name.clone(),
            app: p.app.to_string(),
            app_type: p.app_type.to_string(),
            version: p.version,
            publisher: p
                .publisher
                .clone()
                .unwrap_or_else(|| "local (unsigned)".into()),
            memory: p.memory(),
            instructions: p.instructions(),
            messages_in: p.stats.messages_in,
            messages_out: p.stats.messages_out,
            aborts: p.aborts(),
            stopped: p.is_stopped(),
        })
        .collect()
}

fn deployments(m: &Manager) -> Vec<DeploymentView> {
    let ms = |t: std::time::Duration| t.as_secs_f64() * 1e3;
    m.deployer()
        .deployments()
        .map(|d| DeploymentView {
            name: d.name.clone(),
            version: d.version,
            source: d.source.to_string(),
            fetch_ms: ms(d.fetch),
            verify_ms: ms(d.verify),
            start_ms: ms(d.start),
        })
        .collect()
}

fn traffic(s: &NodeStats) -> Traffic {
    Traffic {
        messages_in: s.messages_in,
        messages_out: s.messages_out,
        bytes_in: s.bytes_in,
        bytes_out: s.bytes_out,
        dropped: s.dropped_queue_full + s.dropped_unreachable,
    }
}

fn queues_of(q: &QueueDepths) -> Queues {
    Queues {
        incoming: q.incoming,
        control: q.control,
        hops: q.pending.hops,
        lookups: q.pending.lookups,
        peerlet_calls: q.peerlet_calls,
        outgoing: q
            .outgoing
            .iter()
            .map(|(a, d)| (a.to_string(), *d))
            .collect(),
        capacity: q.queue_capacity,
    }
}
