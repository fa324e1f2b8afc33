//! Deployment on demand: a message for an app this node does not run, but
//! whose code locator names signed code, makes the node fetch that code,
//! check it and start it, at the root for end-node apps and at every hop
//! for per-hop apps (PROST's central promise).
//!
//! - **Fetch**: first from the overlay's code store (a `Get` routed to
//!   [`code_key`](crate::peerlet::code_store::code_key)), then from the origin node the locator names, turn and
//!   turn about, `attempts` times in all with a growing pause; a source that
//!   sends bytes of another hash (or too many) counts as a failed attempt.
//!   Concurrent messages for the same code share one fetch.
//! - **Hold**: meanwhile the messages wait in one bounded queue per code
//!   hash, in arrival order. A per-hop message is held at the hop: its
//!   `forward` upcall runs once the code does, then it routes on.
//! - **Check**: [`TrustPolicy::admit`](crate::peerlet::trust::TrustPolicy::admit) (size, hash, encoding, signature by
//!   a trusted publisher, app type allowed, app id = key ‖ name), before
//!   anything of the code runs.
//! - **Refuse**: a node that will not run the code remembers that (by hash)
//!   and never fetches it again. A per-hop message then goes on unchanged
//!   (graceful degradation); an end-node message or call goes on to the
//!   next member of the key's replica set, and when every one of them
//!   refuses, its sender gets an [`AppKind::Undelivered`](crate::wire::AppKind::Undelivered) (a call: an error
//!   reply).
//! - **Update**: a message whose locator names other code than the running
//!   version's is held while that code is fetched; if it is a newer version
//!   of the same app it replaces the running one (with `save`/`restore`),
//!   an older one is remembered as superseded and never fetched again.
//! - **Give up**: after the last attempt the held messages are dropped with
//!   a report (per-hop ones go on unchanged), and senders are told.
//!
//! Here: admission, holding, checking and starting; `fetch.rs`: the
//! requests for code; `refuse.rs`: passing refused messages on.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use super::manager::Manager;
use super::package::{hex, PackageError};
use super::refusal::RefusalReason;
use crate::chord::Time;
use crate::id::AppId;
use crate::kbr::Api;
use crate::wire::{AppMessage, AppType, Body, CodeLocator, NodeRef, RoutedMessage};
use fetch::{Fetch, Source, State};

mod fetch;
mod refuse;

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
}

impl Default for DeployConfig {
    fn default() -> DeployConfig {
        DeployConfig {
            queue: 64,
            fetch_timeout: Duration::from_secs(2),
            attempts: 6,
            backoff: Duration::from_millis(250),
            replicas: super::code_store::DEFAULT_REPLICAS,
            store_quota: super::code_store::DEFAULT_QUOTA,
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
enum Outcome {
    Run,
    Refused(String),
    Failed(String),
}

/// What to do with a message for an app, given its code locator.
enum Admission {
    Run,
    Fetch(CodeLocator),
    Refused(String),
}

/// Fetches in flight and what this node decided about code. Bounded: a
/// hash is remembered only while fewer than `MEMORY` are.
#[derive(Default)]
pub struct Deployer {
    fetches: BTreeMap<[u8; 32], Fetch>,
    reqs: BTreeMap<u64, [u8; 32]>,
    refused: BTreeMap<[u8; 32], String>,
    superseded: BTreeSet<[u8; 32]>,
    deployments: VecDeque<Deployment>,
    dropped: u64,
}

const MEMORY: usize = 4096;

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

    pub(super) fn next_deadline(&self) -> Option<Time> {
        self.fetches
            .values()
            .map(|f| match f.state {
                State::Asking { deadline, .. } => deadline,
                State::Waiting { until } => until,
            })
            .min()
    }
}

impl Manager {
    fn admission(&self, app_msg: &AppMessage) -> Admission {
        let Some(loc) = &app_msg.code else {
            return Admission::Run;
        };
        let d = &self.deploy;
        if let Some(p) = self.peerlets.get(&app_msg.app) {
            let current = p.code.as_ref().is_none_or(|c| c.hash == loc.hash);
            if current || d.superseded.contains(&loc.hash) || d.refused.contains_key(&loc.hash) {
                return Admission::Run;
            }
            return Admission::Fetch(loc.clone());
        }
        if let Some(reason) = d.refused.get(&loc.hash) {
            return Admission::Refused(reason.clone());
        }
        if app_msg.app_type == AppType::PerHop && !self.trust().run_per_hop() {
            self.trust().record_refusal(RefusalReason::PerHopDenied);
            return Admission::Refused("this node runs no per-hop apps".into());
        }
        let max = self.trust().max_package_bytes();
        if loc.size > max as u64 {
            self.trust().record_refusal(RefusalReason::Oversize);
            return Admission::Refused(
                PackageError::Oversize {
                    size: loc.size as usize,
                    max,
                }
                .to_string(),
            );
        }
        Admission::Fetch(loc.clone())
    }

    /// A message or call reached this node for its app: returns `true` if
    /// deployment took it (held while the code comes, or refused), `false`
    /// if it is for a peerlet that runs here (or for none, with no code).
    pub(super) fn take_for_deployment(&mut self, api: &mut Api<'_>, msg: &RoutedMessage) -> bool {
        let Body::App(app_msg) = &msg.body else {
            return false;
        };
        match self.admission(app_msg) {
            Admission::Run => false,
            Admission::Refused(reason) => {
                self.refuse(api, msg, &reason);
                true
            }
            Admission::Fetch(loc) => {
                self.hold(api, loc, app_msg.app, Held::Deliver(msg.clone()));
                true
            }
        }
    }

    /// A per-hop message passes this hop: returns `None` if its peerlet
    /// runs here (call `forward`), else whether the message goes on
    /// unchanged (`Some(true)`: refused here) or waits (`Some(false)`).
    pub(super) fn hold_at_hop(
        &mut self,
        api: &mut Api<'_>,
        msg: &RoutedMessage,
        next: NodeRef,
    ) -> Option<bool> {
        let Body::App(app_msg) = &msg.body else {
            return Some(true);
        };
        match self.admission(app_msg) {
            Admission::Run => None,
            Admission::Refused(_) => Some(true),
            Admission::Fetch(loc) => {
                self.hold(api, loc, app_msg.app, Held::Forward(msg.clone(), next));
                Some(false)
            }
        }
    }

    fn hold(&mut self, api: &mut Api<'_>, loc: CodeLocator, app: AppId, held: Held) {
        let hash = loc.hash;
        let fresh = !self.deploy.fetches.contains_key(&hash);
        let queue_max = self.cfg.deploy.queue;
        let fetch = self.deploy.fetches.entry(hash).or_insert_with(|| Fetch {
            locator: loc,
            app,
            started: api.now(),
            attempts: 0,
            state: State::Waiting { until: api.now() },
            queue: VecDeque::new(),
            last_error: String::new(),
        });
        if fetch.queue.len() >= queue_max {
            self.deploy.dropped += 1;
            let line = format!(
                "app {app}: {queue_max} messages already wait for code {}; one more dropped",
                hex(&hash[..8])
            );
            self.report(line);
            if let Held::Forward(msg, _) = held {
                api.resume_route(msg, None);
            }
            return;
        }
        fetch.queue.push_back(held);
        if fresh {
            self.ask(api, hash);
        }
    }

    fn admit_fetched(
        &mut self,
        api: &mut Api<'_>,
        hash: [u8; 32],
        bytes: Vec<u8>,
        source: Source,
        from: &str,
    ) {
        let f = &self.deploy.fetches[&hash];
        let (app, fetch) = (f.app, api.now().since(f.started));
        let attempts = f.attempts;
        let clock = Instant::now();
        let verified = match self.trust().admit(&bytes, &hash, Some(app)) {
            Ok(v) => v,
            // The source sent other bytes than the locator names: try another.
            Err(e @ (PackageError::HashMismatch { .. } | PackageError::Oversize { .. })) => {
                self.report(format!("code for app {app} from {from} refused: {e}"));
                return self.attempt_failed(api, hash, format!("{from} sent bad code: {e}"));
            }
            Err(e) => return self.refuse_code(api, hash, format!("code refused: {e}")),
        };
        let verify = clock.elapsed();
        if let Some(p) = self.peerlets.get(&app) {
            if p.version >= verified.version() {
                self.deploy.superseded.insert(hash);
                return self.finish(api, hash, Outcome::Run, None);
            }
        }
        let clock = Instant::now();
        let mut locator = self.deploy.fetches[&hash].locator.clone();
        locator.size = bytes.len() as u64;
        match self.install_verified(api, &verified, bytes, locator) {
            Ok(_) => {
                let deployment = Deployment {
                    name: verified.name().to_string(),
                    app,
                    version: verified.version(),
                    source: match source {
                        Source::Store => "store",
                        Source::Origin(_) => "origin",
                    },
                    attempts,
                    fetch,
                    verify,
                    start: clock.elapsed(),
                    first_upcall: Duration::ZERO,
                };
                tracing::info!(
                    "deployed `{}` v{} from the {} ({attempts} request(s))",
                    deployment.name,
                    deployment.version,
                    deployment.source
                );
                self.finish(api, hash, Outcome::Run, Some(deployment));
            }
            Err(e) => self.refuse_code(api, hash, format!("code did not start: {e}")),
        }
    }

    fn refuse_code(&mut self, api: &mut Api<'_>, hash: [u8; 32], reason: String) {
        let app = self.deploy.fetches[&hash].app;
        self.report(format!("app {app}: {reason}"));
        if self.deploy.refused.len() < MEMORY {
            self.deploy.refused.insert(hash, reason.clone());
        }
        self.finish(api, hash, Outcome::Refused(reason), None);
    }

    /// Ends fetch `hash`: its held messages run, go on, or are dropped.
    fn finish(
        &mut self,
        api: &mut Api<'_>,
        hash: [u8; 32],
        outcome: Outcome,
        mut deployment: Option<Deployment>,
    ) {
        let Some(f) = self.deploy.fetches.remove(&hash) else {
            return;
        };
        self.deploy.reqs.retain(|_, h| *h != hash);
        let clock = Instant::now();
        for held in f.queue {
            match (&outcome, held) {
                (Outcome::Run, Held::Deliver(msg)) => self.deliver_now(api, &msg),
                (Outcome::Run, Held::Forward(msg, next)) => self.forward_held(api, msg, next),
                (Outcome::Refused(reason), Held::Deliver(msg)) => self.refuse(api, &msg, reason),
                (Outcome::Failed(reason), Held::Deliver(msg)) => {
                    self.deploy.dropped += 1;
                    self.undelivered(api, &msg, reason);
                }
                (_, Held::Forward(msg, _)) => api.resume_route(msg, None),
            }
            if let Some(mut d) = deployment.take() {
                d.first_upcall = clock.elapsed();
                if self.deploy.deployments.len() == MEMORY {
                    self.deploy.deployments.pop_front();
                }
                self.deploy.deployments.push_back(d);
            }
        }
    }

    /// Runs a held per-hop message's `forward` now that its peerlet runs,
    /// then routes it on (unless the peerlet stopped it).
    fn forward_held(&mut self, api: &mut Api<'_>, mut msg: RoutedMessage, next: NodeRef) {
        let mut chosen = next;
        if self.forward_message(api, &mut msg, &mut chosen) {
            api.resume_route(msg, (chosen.id != next.id).then_some(chosen));
        }
    }
}
