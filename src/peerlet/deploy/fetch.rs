//! Fetching code: the store first, then the origin, turn and turn about,
//! with a growing pause; each request waits `fetch_timeout` for its answer.

use std::time::Duration;

use serde_bytes::ByteBuf;

use super::deployer::{Held, Outcome, Source, State};
use crate::kbr::Api;
use crate::package::hex;
use crate::peerlet::code_store::{code_key, CodeMsg};
use crate::peerlet::manager::Manager;
use crate::wire::{AppKind, Body, RoutedMessage};

impl Manager {
    /// Sends the next request for code `hash`: the store on even attempts
    /// (and always, if there is no origin), the origin on odd ones.
    pub(in crate::peerlet) fn ask(&mut self, api: &mut Api<'_>, hash: [u8; 32]) {
        let req = Manager::fresh_call_id(api);
        let timeout = self.cfg.deploy.fetch_timeout;
        let me = api.id().id;
        let Some(f) = self.deploy.fetches.get_mut(&hash) else {
            return;
        };
        let origin = f.locator.origin.filter(|o| o.id != me);
        let source = match origin {
            Some(o) if f.attempts % 2 == 1 => Source::Origin(o),
            _ => Source::Store,
        };
        let get = CodeMsg::Get { hash, req }.to_app_message();
        match source {
            Source::Store => {
                api.route(code_key(&hash), get, None);
            }
            Source::Origin(node) => {
                api.send(node, get);
            }
        }
        f.attempts += 1;
        f.state = State::Asking {
            req,
            source,
            deadline: api.now() + timeout,
        };
        self.deploy.reqs.insert(req, hash);
    }

    /// A `Got` answer to one of our requests.
    pub(in crate::peerlet) fn got_code(
        &mut self,
        api: &mut Api<'_>,
        hash: [u8; 32],
        req: u64,
        package: Option<ByteBuf>,
    ) {
        if self.deploy.reqs.get(&req) != Some(&hash) {
            return;
        }
        self.deploy.reqs.remove(&req);
        let Some(f) = self.deploy.fetches.get(&hash) else {
            return;
        };
        let source = match f.state {
            State::Asking { req: r, source, .. } if r == req => source,
            _ => return,
        };
        let from = match source {
            Source::Store => "the code store".to_string(),
            Source::Origin(o) => format!("origin {o:?}"),
        };
        match package {
            None => self.attempt_failed(api, hash, format!("{from} does not have it")),
            Some(bytes) => self.admit_fetched(api, hash, bytes.into_vec(), source, &from),
        }
    }

    pub(in crate::peerlet) fn attempt_failed(
        &mut self,
        api: &mut Api<'_>,
        hash: [u8; 32],
        why: String,
    ) {
        let (max, backoff) = (self.cfg.deploy.attempts, self.cfg.deploy.backoff);
        let Some(f) = self.deploy.fetches.get_mut(&hash) else {
            return;
        };
        f.last_error = why;
        let origin = match f.locator.origin {
            Some(o) => format!("its origin node {} at {}", o.id.short(8), o.addr),
            None => "no origin node (the locator names none)".to_string(),
        };
        let reason = format!(
            "code {} could not be fetched from the code store (the root of code key {}) \
             nor from {origin}: {} request(s), last: {}; to fix: install the peerlet again \
             on a live node, which puts its code in the store again",
            hex(&hash[..8]),
            code_key(&hash).short(8),
            f.attempts,
            f.last_error
        );
        if f.attempts >= max {
            let line = format!("app {}: {reason}", f.app);
            self.report(line);
            return self.finish(api, hash, Outcome::Failed(reason), None);
        }
        // Both sources failed once: calls held for this code are answered
        // now, while their callers still wait (their timeout is shorter than
        // all the attempts); messages stay held for the attempts left.
        if f.attempts >= 2 {
            let (calls, rest): (Vec<Held>, Vec<Held>) = f
                .queue
                .drain(..)
                .partition(|h| matches!(h, Held::Deliver(m) if is_call(m)));
            f.queue.extend(rest);
            for held in calls {
                if let Held::Deliver(msg) = held {
                    self.deploy.dropped += 1;
                    self.undelivered(api, &msg, &reason);
                }
            }
        }
        let Some(f) = self.deploy.fetches.get_mut(&hash) else {
            return;
        };
        // The first miss goes straight to the other source; then pause.
        let pause = match f.attempts {
            0 | 1 => Duration::ZERO,
            n => backoff * 2u32.saturating_pow(n - 2),
        };
        if pause.is_zero() {
            self.ask(api, hash);
        } else {
            f.state = State::Waiting {
                until: api.now() + pause,
            };
        }
    }

    /// Requests whose answer is overdue fail; pauses that are over ask again.
    pub(in crate::peerlet) fn fire_fetches(&mut self, api: &mut Api<'_>) {
        let now = api.now();
        let due: Vec<([u8; 32], bool)> = self
            .deploy
            .fetches
            .iter()
            .filter_map(|(h, f)| match f.state {
                State::Asking { deadline, .. } if deadline <= now => Some((*h, true)),
                State::Waiting { until } if until <= now => Some((*h, false)),
                _ => None,
            })
            .collect();
        for (hash, overdue) in due {
            if overdue {
                let secs = self.cfg.deploy.fetch_timeout.as_secs_f64();
                self.attempt_failed(api, hash, format!("no answer in {secs} s"));
            } else {
                self.ask(api, hash);
            }
        }
    }
}

fn is_call(msg: &RoutedMessage) -> bool {
    matches!(&msg.body, Body::App(a) if matches!(a.kind, AppKind::Call { .. }))
}
