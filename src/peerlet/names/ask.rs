//! The manager's side of names: asking the overlay for a name's records,
//! parking the calls that wait for the answer, acting on answers (calls go
//! out, `.versions` is told, and `follow.rs` upgrades older code here or
//! publishes lost records again), and asks that go unanswered.

use serde_bytes::ByteBuf;

use super::record::{name_key, NameMsg, NameRecord, Runner};
use super::resolve::{choose, Cached, Candidate, Target, Wanted};
use super::state::{Ask, ParkedCall, Waiter};
use crate::id::AppId;
use crate::kbr::Api;
use crate::peerlet::host::CallTarget;
use crate::peerlet::manager::{Done, Manager, OutCall};
use crate::wire::{AppKind, AppMessage, AppType, RoutedMessage};

impl Manager {
    /// Sends `parked` once its target is known: at once for an app id or a
    /// name answered lately, else after asking the overlay.
    pub(in crate::peerlet) fn send_parked(&mut self, api: &mut Api<'_>, parked: ParkedCall) {
        let wanted = match &parked.target {
            CallTarget::App(app) => {
                let target = self.target_of_app(*app);
                return self.dispatch(api, parked, Ok(target));
            }
            CallTarget::Name(text) => Wanted::parse(text),
        };
        let ttl = self.cfg.names.cache_ttl;
        if let Some(c) = self.names.cache.fresh(&wanted.name, api.now(), ttl) {
            let local = self.local_candidates(&wanted.name);
            let chosen = choose(&wanted, &c.records, &local, self.trust(), true);
            return self.dispatch(api, parked, chosen);
        }
        self.ask_name(api, &wanted.name, Waiter::Call(Box::new(parked)));
    }

    /// What a call of app id `app` carries: the type and code of the peerlet
    /// running here, else of the newest record this node saw for it.
    fn target_of_app(&self, app: AppId) -> Target {
        if let Some(p) = self.peerlets.get(&app) {
            return Candidate {
                publisher: p.publisher.clone(),
                app,
                app_type: p.app_type,
                version: p.version,
                code: p.code.clone(),
            };
        }
        match self.names.cache.record_of(app) {
            Some(r) => Candidate::from_record(r),
            None => Candidate {
                publisher: None,
                app,
                app_type: AppType::EndNode,
                version: 0,
                code: None,
            },
        }
    }

    /// The peerlets named `name` running here, as candidates.
    fn local_candidates(&self, name: &str) -> Vec<Candidate> {
        self.peerlets
            .values()
            .filter(|p| p.name == name)
            .map(|p| Candidate {
                publisher: p.publisher.clone(),
                app: p.app,
                app_type: p.app_type,
                version: p.version,
                code: p.code.clone(),
            })
            .collect()
    }

    /// Routes the call, or resumes its activation with the error.
    fn dispatch(&mut self, api: &mut Api<'_>, parked: ParkedCall, target: Result<Target, String>) {
        let deadline = parked.since + parked.timeout;
        let mut out = OutCall {
            app: parked.app,
            activation: parked.activation,
            deadline,
            timeout: parked.timeout,
            method: parked.method.clone(),
            served: parked.served,
            failed: None,
            key: parked.key,
            first_hop: None,
        };
        match target {
            Ok(t) => {
                let msg = AppMessage {
                    app: t.app,
                    app_type: t.app_type,
                    code: t.code,
                    data: ByteBuf::from(parked.args),
                    kind: AppKind::Call {
                        call: parked.call,
                        method: parked.method,
                    },
                    refused_by: Vec::new(),
                };
                match parked.node {
                    Some(node) => {
                        out.first_hop = Some(node);
                        api.send(node, msg);
                    }
                    None => {
                        out.first_hop = api.local_lookup(&parked.key, 1, false).first().copied();
                        api.route(parked.key, msg, None);
                    }
                }
            }
            // Answered at the next timeout, outside any activation.
            Err(e) => {
                out.deadline = api.now();
                out.failed = Some(e);
            }
        }
        self.calls.insert(parked.call, out);
    }

    /// Adds `waiter` to the ask for `name`, sending one if none is out.
    pub(super) fn ask_name(&mut self, api: &mut Api<'_>, name: &str, waiter: Waiter) {
        if let Some(ask) = self.names.asks.get_mut(name) {
            ask.waiters.push(waiter);
            return;
        }
        let ask = Ask {
            req: 0,
            deadline: api.now(),
            attempts: 0,
            waiters: vec![waiter],
        };
        self.names.asks.insert(name.to_string(), ask);
        self.send_ask(api, name);
    }

    /// Routes an `Ask` for `name` to its key, saying which of its versions
    /// run here.
    fn send_ask(&mut self, api: &mut Api<'_>, name: &str) {
        let req = Manager::fresh_call_id(api);
        let me = api.id();
        let running = self
            .peerlets
            .values()
            .filter(|p| p.name == name && p.code.is_some())
            .map(|p| Runner {
                node: me,
                app: p.app,
                version: p.version,
            })
            .collect();
        let timeout = self.cfg.names.ask_timeout;
        let Some(ask) = self.names.asks.get_mut(name) else {
            return;
        };
        ask.req = req;
        ask.attempts += 1;
        ask.deadline = api.now() + timeout;
        let msg = NameMsg::Ask {
            name: name.to_string(),
            req,
            running,
        };
        api.route(name_key(name), msg.to_app_message(), None);
    }

    /// Publishes `record` in the overlay (routed to its name key).
    pub(in crate::peerlet) fn publish_name(&mut self, api: &mut Api<'_>, record: NameRecord) {
        let key = name_key(&record.name);
        let msg = NameMsg::Publish { record };
        api.route(key, msg.to_app_message(), None);
    }

    /// Name messages (see `record.rs`).
    pub(in crate::peerlet) fn name_message(
        &mut self,
        api: &mut Api<'_>,
        msg: &RoutedMessage,
        app_msg: &AppMessage,
    ) {
        let m = match NameMsg::from_app_message(app_msg) {
            Ok(m) => m,
            Err(e) => {
                let line = format!("name message from {:?}: {e}", msg.source);
                return self
                    .strangers
                    .admit(self.now, line)
                    .into_iter()
                    .for_each(|l| self.report(l));
            }
        };
        let replicas = self.cfg.deploy.replicas;
        match m {
            NameMsg::Publish { record } => {
                if let Err(e) = self
                    .names
                    .store
                    .on_publish(api, record, !msg.direct, replicas)
                {
                    let line = format!("name record from {:?} not kept: {e}", msg.source);
                    let lines = self.strangers.admit(self.now, line);
                    lines.into_iter().for_each(|l| self.report(l));
                }
            }
            NameMsg::Ask { name, req, running } => {
                let now = api.now();
                // Only the asker may say what the asker runs.
                let running = running
                    .into_iter()
                    .filter(|r| r.node.id == msg.source.id)
                    .take(16)
                    .collect();
                self.names.store.note_runners(now, running);
                let records = self.names.store.records(&name);
                let apps: Vec<AppId> = records.iter().map(|r| r.app).collect();
                let memory = self.cfg.names.runner_memory;
                let runners = self.names.store.runners(now, memory, &apps);
                let answer = NameMsg::Answer {
                    req,
                    records,
                    runners,
                };
                api.send(msg.source, answer.to_app_message());
            }
            NameMsg::Answer {
                req,
                records,
                runners,
            } => self.take_answer(api, req, records, runners),
        }
    }

    fn take_answer(
        &mut self,
        api: &mut Api<'_>,
        req: u64,
        records: Vec<NameRecord>,
        runners: Vec<(Runner, u64)>,
    ) {
        let Some(name) = self
            .names
            .asks
            .iter()
            .find(|(_, a)| a.req == req)
            .map(|(n, _)| n.clone())
        else {
            return;
        };
        let ask = self.names.asks.remove(&name).expect("found");
        // Only records of the name asked for, as an answer may be forged.
        let records: Vec<NameRecord> = records.into_iter().filter(|r| r.name == name).collect();
        self.follow_records(api, &name, &records);
        let at = api.now();
        self.names.cache.insert(
            name.clone(),
            Cached {
                records,
                runners,
                at,
            },
        );
        self.settle(api, &name, ask.waiters, true);
    }

    /// Gives every waiter for `name` its outcome. `asked`: the overlay
    /// answered (its records are in the cache).
    fn settle(&mut self, api: &mut Api<'_>, name: &str, waiters: Vec<Waiter>, asked: bool) {
        let records = match asked {
            true => self.names.cache.get(name).map(|c| c.records.clone()),
            false => None,
        }
        .unwrap_or_default();
        for waiter in waiters {
            match waiter {
                Waiter::Call(parked) => {
                    let CallTarget::Name(text) = &parked.target else {
                        continue;
                    };
                    let wanted = Wanted::parse(text);
                    let local = self.local_candidates(&wanted.name);
                    let chosen = choose(&wanted, &records, &local, self.trust(), asked);
                    self.dispatch(api, *parked, chosen);
                }
                Waiter::Versions(done) => match asked {
                    true => done(Ok(self.versions_text(api, name))),
                    false => done(Err(format!(
                        "no answer for `{name}` from the root of its name key {} after {} \
                         asks; the ring may be repairing itself: try again in a few seconds",
                        name_key(name).short(8),
                        self.cfg.names.attempts
                    ))),
                },
                Waiter::Check => {}
            }
        }
    }

    /// Asks that went unanswered are sent again or given up; the periodic
    /// check of the names running here (`follow.rs`).
    pub(in crate::peerlet) fn fire_names(&mut self, api: &mut Api<'_>) {
        let now = api.now();
        let overdue: Vec<String> = self
            .names
            .asks
            .iter()
            .filter(|(_, a)| a.deadline <= now)
            .map(|(n, _)| n.clone())
            .collect();
        for name in overdue {
            let attempts = self.names.asks[&name].attempts;
            if attempts < self.cfg.names.attempts {
                self.send_ask(api, &name);
            } else {
                let ask = self.names.asks.remove(&name).expect("listed");
                self.settle(api, &name, ask.waiters, false);
            }
        }
        self.check_names_running_here(api);
    }

    /// Asks the overlay about `name` and tells `done` which nodes run which
    /// version of it (`.versions`).
    pub fn versions(&mut self, api: &mut Api<'_>, name: &str, done: Done) {
        self.ask_name(api, name, Waiter::Versions(done));
    }

    /// Peerlet names this node knows: running here, kept here for the
    /// overlay, or asked for lately (for the REPL's completion).
    pub fn known_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .peerlets
            .values()
            .map(|p| p.name.clone())
            .chain(self.names.store.names().map(str::to_string))
            .chain(self.names.cache.names().map(str::to_string))
            .collect();
        names.sort();
        names.dedup();
        names
    }
}
