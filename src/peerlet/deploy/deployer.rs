//! What deployment keeps: its settings, the fetches in flight with the
//! messages held for them, what this node refused or saw superseded, and
//! the recent deployments, timed.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use crate::id::AppId;
use crate::peerlet::code_store::{DEFAULT_QUOTA, DEFAULT_REPLICAS};
use crate::time::Time;
use crate::wire::{CodeLocator, NodeRef, RoutedMessage};

/// How nodes fetch and deploy code.
#[derive(Clone, Debug)]
pub struct DeployConfig {
    /// Messages held per code hash while it is fetched.
    pub queue: usize,
    /// How long one request for code waits for its answer.
    pub fetch_timeout: Duration,
    /// Requests (store and origin together) before giving up.
    pub attempts: u32,
    /// Pause before the third attempt; doubled for each after it.
    pub backoff: Duration,
    /// Replicas of a key an end-node message may try, the root included;
    /// also the code store's number of copies.
    pub replicas: usize,
    /// Bytes of packages kept for the overlay's code store.
    pub store_quota: usize,
    /// Code hashes fetched at once; a message naming one more unknown hash
    /// is not held (a flood of fresh hashes costs nothing lasting).
    pub max_fetches: usize,
}

impl Default for DeployConfig {
    fn default() -> DeployConfig {
        DeployConfig {
            queue: 64,
            fetch_timeout: Duration::from_secs(2),
            attempts: 6,
            backoff: Duration::from_millis(250),
            replicas: DEFAULT_REPLICAS,
            store_quota: DEFAULT_QUOTA,
            max_fetches: 64,
        }
    }
}

/// One deployment by traffic, timed (for `.apps`, tests and benchmarks).
#[derive(Clone, Debug)]
pub struct Deployment {
    pub name: String,
    pub app: AppId,
    pub version: u32,
    /// "store" or "origin": who sent the code.
    pub source: &'static str,
    /// Requests it took.
    pub attempts: u32,
    /// First held message → code received.
    pub fetch: Duration,
    /// Hash, decoding, signature and policy checks.
    pub verify: Duration,
    /// New sandbox, host API, loading the chunk and `init()`.
    pub start: Duration,
    /// The first held message's upcall, once the peerlet runs.
    pub first_upcall: Duration,
}

/// A message waiting for its app's code.
pub(super) enum Held {
    /// For this node's peerlet: deliver (or serve the call) once it runs.
    Deliver(RoutedMessage),
    /// A per-hop message stopped at this hop on its way to `next`.
    Forward(RoutedMessage, NodeRef),
}

/// How held messages end.
pub(super) enum Outcome {
    Run,
    Refused(String),
    Failed(String),
}

/// Fetches in flight and what this node decided about code. Bounded: a
/// hash is remembered only while fewer than `MEMORY` are.
#[derive(Default)]
pub struct Deployer {
    pub(super) fetches: BTreeMap<[u8; 32], Fetch>,
    pub(super) reqs: BTreeMap<u64, [u8; 32]>,
    pub(super) refused: BTreeMap<[u8; 32], String>,
    pub(super) superseded: BTreeSet<[u8; 32]>,
    pub(super) deployments: VecDeque<Deployment>,
    pub(super) dropped: u64,
}

pub(super) const MEMORY: usize = 4096;

impl Deployer {
    /// Messages dropped because their queue was full or their code never came.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Messages waiting for code, over all fetches.
    pub fn held(&self) -> usize {
        self.fetches.values().map(|f| f.queue.len()).sum()
    }

    pub fn fetching(&self) -> usize {
        self.fetches.len()
    }

    pub fn deployments(&self) -> impl Iterator<Item = &Deployment> {
        self.deployments.iter()
    }

    pub(in crate::peerlet) fn next_deadline(&self) -> Option<Time> {
        self.fetches
            .values()
            .map(|f| match f.state {
                State::Asking { deadline, .. } => deadline,
                State::Waiting { until } => until,
            })
            .min()
    }
}

/// Who a request for code goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Source {
    Store,
    Origin(NodeRef),
}

/// Where a fetch stands: a request out, or a pause before the next one.
pub(super) enum State {
    Asking {
        req: u64,
        source: Source,
        deadline: Time,
    },
    Waiting {
        until: Time,
    },
}

/// One code hash being fetched, and the messages waiting for it.
pub(super) struct Fetch {
    pub(super) locator: CodeLocator,
    pub(super) app: AppId,
    pub(super) started: Time,
    pub(super) attempts: u32,
    pub(super) state: State,
    pub(super) queue: VecDeque<Held>,
    pub(super) last_error: String,
}
