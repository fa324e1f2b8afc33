//! Admission, holding, checking and starting: what a node does with a
//! message for code it does not run (the steps are in `mod.rs`).

use std::time::{Duration, Instant};

use std::collections::VecDeque;

use super::deployer::{Deployment, Fetch, Held, Outcome, Source, State, MEMORY};
use crate::id::AppId;
use crate::kbr::Api;
use crate::package::hex;
use crate::package::refusal::{Refusal, RefusalReason};
use crate::peerlet::manager::Manager;

use crate::wire::{AppMessage, AppType, Body, CodeLocator, NodeRef, RoutedMessage};

/// What to do with a message for an app, given its code locator.
enum Admission {
    Run,
    Fetch(CodeLocator),
    Refused(String),
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
                Refusal::Oversize {
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
    pub(in crate::peerlet) fn take_for_deployment(
        &mut self,
        api: &mut Api<'_>,
        msg: &RoutedMessage,
    ) -> bool {
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
    pub(in crate::peerlet) fn hold_at_hop(
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

    /// Fetches code `loc` of app `app` with no message waiting for it (a
    /// newer version the app's name record announced): it replaces the
    /// running version once checked, as a message naming it would.
    pub(in crate::peerlet) fn fetch_code(
        &mut self,
        api: &mut Api<'_>,
        loc: CodeLocator,
        app: AppId,
    ) {
        let d = &self.deploy;
        if d.fetches.contains_key(&loc.hash)
            || d.refused.contains_key(&loc.hash)
            || d.superseded.contains(&loc.hash)
            || d.fetches.len() >= self.cfg.deploy.max_fetches
        {
            return;
        }
        self.deploy.fetches.insert(
            loc.hash,
            Fetch {
                locator: loc.clone(),
                app,
                started: api.now(),
                attempts: 0,
                state: State::Waiting { until: api.now() },
                queue: VecDeque::new(),
                last_error: String::new(),
            },
        );
        self.ask(api, loc.hash);
    }

    fn hold(&mut self, api: &mut Api<'_>, loc: CodeLocator, app: AppId, held: Held) {
        let hash = loc.hash;
        let fresh = !self.deploy.fetches.contains_key(&hash);
        let queue_max = self.cfg.deploy.queue;
        let fetches_max = self.cfg.deploy.max_fetches;
        if fresh && self.deploy.fetches.len() >= fetches_max {
            self.deploy.dropped += 1;
            // The first, then every 1000th: a flood must not flood the log.
            if self.deploy.dropped % 1000 == 1 {
                let line = format!(
                    "app {app}: {fetches_max} code fetches already under way; a message naming code {} dropped ({} dropped so far)",
                    hex(&hash[..8]),
                    self.deploy.dropped
                );
                self.report(line);
            }
            if let Held::Forward(msg, _) = held {
                api.resume_route(msg, None);
            }
            return;
        }
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

    pub(super) fn admit_fetched(
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
            Err(e @ (Refusal::HashMismatch { .. } | Refusal::Oversize { .. })) => {
                self.report(format!("code for app {app} from {from} refused: {e}"));
                return self.attempt_failed(api, hash, format!("{from} sent bad code: {e}"));
            }
            Err(e) => {
                let why = format!("code refused: {e}; to fix: {}", e.reason().fix());
                return self.refuse_code(api, hash, why);
            }
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
    pub(super) fn finish(
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
