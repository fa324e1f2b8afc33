//! The peerlet manager: installs, runs, reloads and unloads peerlets on one
//! node, one sandbox each, and drives their upcalls.
//!
//! Every upcall goes through `Manager::drive`: set the peerlet's clock and
//! routing snapshot, run (or resume) the activation in its sandbox, then act
//! on how it ended: values back to the caller, a suspension becomes a remote
//! call on the overlay, an abort is reported (and after too many, the
//! peerlet stays stopped); finally the messages it queued are sent. The KBR
//! side (which message reaches which upcall) is in [`super::app`];
//! installing and reloading in `install.rs`, signed code in `signed.rs`,
//! deployment by traffic in [`super::deploy`].

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use mlua::MultiValue;
use serde_bytes::ByteBuf;

use super::code_store::CodeStore;
use super::deploy::{DeployConfig, Deployer};
pub(super) use super::host::Served;
use super::host::{HostState, Outgoing};
use super::names::resolve::NamesConfig;
use super::names::state::Names;
use super::share::{node_bucket, Bucket, LogGate, Share};
use super::store::{StoreError, DEFAULT_QUOTA};
use crate::id::{AppId, Id};
use crate::kbr::Api;
use crate::package::refusal::Refusal;
use crate::package::trust::TrustPolicy;
use crate::sandbox::{CallId, Limits, Sandbox, SandboxError, UpcallOutcome};
use crate::time::Time;
use crate::wire::{AppKind, AppMessage, AppType, CodeLocator, NodeRef, RoutedMessage};

/// How the manager runs peerlets.
#[derive(Clone, Debug)]
pub struct ManagerConfig {
    pub limits: Limits,
    /// Where `store` files live; `None` keeps stores in memory only.
    pub data_dir: Option<PathBuf>,
    pub store_quota: usize,
    /// How long a `peerlet.lookup` method call waits for its reply.
    pub call_timeout: Duration,
    /// The publisher key that app ids of unsigned local installs derive from.
    pub local_publisher: Vec<u8>,
    /// Fetching and deploying code by traffic; the code store.
    pub deploy: DeployConfig,
    /// The fraction of the node's thread all peerlets together may take
    /// over time (each also within its own `limits.cpu_share`); the rest
    /// is the node's own: routing, acknowledgements, maintenance, the
    /// control socket. Default: 0.5.
    pub peerlets_share: f64,
    /// Resolving peerlet names across the overlay, and following new versions.
    pub names: NamesConfig,
}

impl Default for ManagerConfig {
    fn default() -> ManagerConfig {
        ManagerConfig {
            limits: Limits::default(),
            data_dir: None,
            store_quota: DEFAULT_QUOTA,
            call_timeout: Duration::from_secs(5),
            local_publisher: b"peerlet local publisher".to_vec(),
            deploy: DeployConfig::default(),
            peerlets_share: 0.5,
            names: NamesConfig::default(),
        }
    }
}

/// Why a peerlet could not be installed (nothing of it is left behind).
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("peerlet `{name}`: {source}")]
    Store { name: String, source: StoreError },
    #[error("{chunk}: no usable `--@peerlet name=...` header and no usable file name: {reason}")]
    Header { chunk: String, reason: String },
    #[error(transparent)]
    Package(#[from] Refusal),
    #[error(
        "peerlet `{name}`: version {offered} does not replace the installed version {installed}"
    )]
    Older {
        name: String,
        offered: u32,
        installed: u32,
    },
    #[error("no peerlet named `{0}` is installed")]
    Unknown(String),
    #[error("the name `{0}` belongs to the node's console; give the peerlet another name")]
    Reserved(String),
}

/// Counters of one peerlet, for `.apps` and the node's stats.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerletStats {
    pub messages_in: u64,
    pub messages_out: u64,
    pub calls_in: u64,
    pub calls_out: u64,
    /// Messages it sent that came back undelivered.
    pub undelivered: u64,
}

/// What to install: the code and who it is.
#[derive(Clone, Debug)]
pub struct PeerletSpec<'a> {
    pub name: &'a str,
    pub app: AppId,
    pub app_type: AppType,
    pub version: u32,
    /// The name errors and tracebacks show, e.g. `dht.lua`.
    pub chunk_name: &'a str,
    pub source: &'a [u8],
    /// Signed code: where others fetch it, and the publisher's key id.
    pub signed: Option<(CodeLocator, String)>,
}

/// One installed peerlet.
pub struct Peerlet {
    pub name: String,
    pub app: AppId,
    pub app_type: AppType,
    pub version: u32,
    pub(super) source: Vec<u8>,
    pub(super) sandbox: Sandbox,
    pub(super) host: Rc<HostState>,
    pub stats: PeerletStats,
    /// Where to get the code, for signed peerlets: carried by every message
    /// the peerlet sends, so other nodes can fetch it.
    pub code: Option<CodeLocator>,
    /// The publisher's key id (hex), for signed peerlets.
    pub publisher: Option<String>,
    /// Its share of the node over time, and what it used.
    pub share: Share,
    /// Work held while it waits for its share, oldest first.
    pub(super) backlog: VecDeque<Deferred>,
    /// Timer callbacks it may still run this second.
    pub(super) timer_calls: Bucket,
}

impl Peerlet {
    pub fn memory(&self) -> usize {
        self.sandbox.memory_used()
    }

    /// The source it runs.
    pub fn source(&self) -> &[u8] {
        &self.source
    }

    /// A value from its store, as CBOR (for the REPL and tests).
    pub fn store_get(&self, key: &str) -> Option<Vec<u8>> {
        self.host
            .store
            .borrow()
            .as_ref()?
            .get(key)
            .map(|v| v.to_vec())
    }

    /// The keys of its store (for tests that follow what it holds).
    pub fn store_keys(&self) -> Vec<String> {
        let store = self.host.store.borrow();
        store
            .as_ref()
            .map(|s| s.keys().map(str::to_string).collect())
            .unwrap_or_default()
    }

    pub fn instructions(&self) -> u64 {
        self.sandbox.instructions_used()
    }

    pub fn aborts(&self) -> u32 {
        self.sandbox.aborts()
    }

    pub fn is_stopped(&self) -> bool {
        self.sandbox.is_stopped()
    }

    /// Outgoing messages refused (queue full).
    pub fn refused(&self) -> u64 {
        self.host.refused.get()
    }

    /// Log lines suppressed for going over `log_lines_per_second`.
    pub fn log_suppressed(&self) -> u64 {
        self.host.log.borrow().suppressed
    }

    /// Upcalls, messages and replies waiting for its share now.
    pub fn waiting(&self) -> usize {
        self.backlog.len()
    }
}

/// A remote call this node made, waiting for its reply.
pub(super) struct OutCall {
    pub app: AppId,
    pub activation: CallId,
    pub deadline: Time,
    /// How long the call may wait (shown when it times out).
    pub timeout: Duration,
    pub method: String,
    /// Set when the suspended activation itself serves a remote call.
    pub served: Option<Served>,
    /// The call could not be sent: resumed with this error at `deadline`.
    pub failed: Option<String>,
    /// The key the call went to, and the first node it went through (for
    /// the error when no reply comes).
    pub key: Id,
    pub first_hop: Option<NodeRef>,
}

/// What starts or continues an activation.
pub(super) enum Step {
    Upcall(Cow<'static, str>, MultiValue),
    Function(mlua::Function, &'static str),
    Resume(CallId, Result<MultiValue, String>),
}

impl Step {
    /// Steps of installing and reloading, which run whatever the share
    /// says: they are the operator's, not the peerlet's.
    fn is_install(&self) -> bool {
        matches!(self, Step::Upcall(name, _) if name == "init" || name == "restore")
    }
}

/// Work held while its peerlet waits for its share (see `backlog.rs`).
// Held work waits in a bounded queue and is rare: no boxing of the message.
#[allow(clippy::large_enum_variant)]
pub(super) enum Deferred {
    Step(Option<Served>, Step),
    /// A per-hop message stopped at this hop: its `forward()` runs later.
    Forward(RoutedMessage, NodeRef),
}

/// What the outcome of a console line is given to: the text to print, or
/// the error.
pub type Done = Box<dyn FnOnce(Result<String, String>)>;

/// A console line suspended in a remote call (see `console.rs`).
pub(super) struct ConsoleWaiting {
    /// The suspended activation: the next resume of it is the line's.
    pub(super) call: CallId,
    pub(super) done: Done,
}

/// All peerlets of one node. See the module docs.
pub struct Manager {
    pub(super) cfg: ManagerConfig,
    trust: TrustPolicy,
    /// Packages of the signed peerlets installed here, by code hash: what
    /// this node can hand to others that fetch the code.
    pub(super) packages: BTreeMap<[u8; 32], Vec<u8>>,
    /// Code fetches in flight and what this node decided about code.
    pub(super) deploy: Deployer,
    /// Packages this node keeps for the overlay.
    pub(super) code_store: CodeStore,
    /// Name records kept for the overlay, answers, asks in flight.
    pub(super) names: Names,
    pub(super) peerlets: BTreeMap<AppId, Peerlet>,
    pub(super) calls: BTreeMap<u64, OutCall>,
    reports: VecDeque<String>,
    /// The console line waiting on a remote call, if any (see `console.rs`).
    pub(super) console_waiting: Option<ConsoleWaiting>,
    /// What all peerlets together may still run (`cfg.peerlets_share`).
    pub(super) node_share: Bucket,
    /// The latest time an upcall or a timeout was handled at.
    pub(super) now: Time,
    /// Running time of all peerlets' activations, in total.
    pub(super) peerlet_time: Duration,
    /// The peerlet whose backlog is being run: its work is not held again.
    pub(super) running_backlog: Option<AppId>,
    /// Reports of messages for apps that do not run here, which any peer
    /// can cause: rate-limited like a peerlet's log.
    pub(super) strangers: LogGate,
}

/// Reports kept for the REPL and tests; older ones are dropped.
const MAX_REPORTS: usize = 1000;

impl Manager {
    pub fn new(cfg: ManagerConfig) -> Manager {
        Manager {
            trust: TrustPolicy::new(),
            packages: BTreeMap::new(),
            deploy: Deployer::default(),
            code_store: CodeStore::new(cfg.deploy.store_quota, cfg.deploy.replicas),
            names: Names::default(),
            peerlets: BTreeMap::new(),
            calls: BTreeMap::new(),
            reports: VecDeque::new(),
            console_waiting: None,
            node_share: node_bucket(cfg.peerlets_share),
            now: Time::ZERO,
            peerlet_time: Duration::ZERO,
            running_backlog: None,
            strangers: LogGate::new(&cfg.limits, "messages for apps not here".into()),
            cfg,
        }
    }

    pub fn config(&self) -> &ManagerConfig {
        &self.cfg
    }

    /// Whose code this node runs (and what it refused).
    pub fn trust(&self) -> &TrustPolicy {
        &self.trust
    }

    pub fn set_trust(&mut self, trust: TrustPolicy) {
        self.trust = trust;
    }

    /// The package with SHA-256 `hash`, if a peerlet installed here came in it.
    pub fn package(&self, hash: &[u8; 32]) -> Option<&[u8]> {
        self.packages.get(hash).map(|p| p.as_slice())
    }

    /// Deployments by traffic, fetches in flight, held and dropped messages.
    pub fn deployer(&self) -> &Deployer {
        &self.deploy
    }

    /// The packages this node keeps for the overlay's code store.
    pub fn code_store(&self) -> &CodeStore {
        &self.code_store
    }

    /// Name records kept here for the overlay, and names asked about.
    pub fn names(&self) -> &Names {
        &self.names
    }

    pub fn peerlets(&self) -> impl Iterator<Item = &Peerlet> {
        self.peerlets.values()
    }

    pub fn by_name(&self, name: &str) -> Option<&Peerlet> {
        self.peerlets.values().find(|p| p.name == name)
    }

    /// Running time of all peerlets' upcalls so far.
    pub fn peerlet_time(&self) -> Duration {
        self.peerlet_time
    }

    /// The latest time the manager saw (for shares over the last second).
    pub fn now(&self) -> Time {
        self.now
    }

    /// Remote calls made from here that wait for their reply.
    pub fn pending_calls(&self) -> usize {
        self.calls.len()
    }

    /// What went wrong lately (aborts, stops, refusals), oldest first.
    pub fn reports(&self) -> impl Iterator<Item = &String> {
        self.reports.iter()
    }

    /// Reports `line` about peerlet `app` through its log gate (cut to
    /// length, at most `limits.log_lines_per_second`), so a peerlet that
    /// fails on every message cannot flood the log; about an app that does
    /// not run here (code that could not be fetched, say), through the gate
    /// of all such apps, so messages naming fresh apps cannot either.
    pub(super) fn report_for(&mut self, app: AppId, line: String) {
        let lines = match self.peerlets.get(&app) {
            Some(p) => p.host.log.borrow_mut().admit(self.now, line),
            None => self.strangers.admit(self.now, line),
        };
        for line in lines {
            self.report(line);
        }
    }

    pub(super) fn report(&mut self, line: String) {
        tracing::warn!("{line}");
        if self.reports.len() == MAX_REPORTS {
            self.reports.pop_front();
        }
        self.reports.push_back(line);
    }

    /// Sets peerlet `app`'s clock and its routing view (the one snapshot
    /// the KBR layer shares with every peerlet) before an upcall.
    pub(super) fn refresh(&mut self, api: &mut Api<'_>, app: AppId) {
        let Some(p) = self.peerlets.get_mut(&app) else {
            return;
        };
        p.host.now.set(api.now());
        *p.host.ring.borrow_mut() = api.view();
    }

    /// Runs one step of an activation of peerlet `app` and acts on how it
    /// ended. Returns the upcall's values when it completed.
    pub(super) fn drive(
        &mut self,
        api: &mut Api<'_>,
        app: AppId,
        served: Option<Served>,
        step: Step,
    ) -> Option<MultiValue> {
        if !step.is_install() && !self.may_run(app, api.now()) {
            self.defer(api, app, Deferred::Step(served, step));
            return None;
        }
        self.run_step(api, app, served, step)
    }

    /// [`Manager::drive`] without asking the share: runs the step now and
    /// charges what it took.
    pub(super) fn run_step(
        &mut self,
        api: &mut Api<'_>,
        app: AppId,
        served: Option<Served>,
        step: Step,
    ) -> Option<MultiValue> {
        self.refresh(api, app);
        let now = api.now();
        let p = self.peerlets.get_mut(&app)?;
        let mut resumed = None;
        let (clock, before) = (Instant::now(), p.sandbox.instructions_used());
        let outcome = match step {
            Step::Upcall(name, args) => p.sandbox.start_upcall(&name, args),
            Step::Function(f, label) => p.sandbox.start_function(f, label, ()),
            Step::Resume(call, reply) => {
                resumed = Some(call);
                p.sandbox.resume(call, reply)
            }
        };
        let ran = clock.elapsed();
        let used = p.sandbox.instructions_used().saturating_sub(before);
        p.share.charge(now, ran, used);
        self.node_share.charge(now, ran.as_secs_f64());
        self.peerlet_time += ran;
        if let Some(call) = resumed {
            self.console_resumed(app, call, &outcome);
        }
        let result = match outcome {
            Ok(UpcallOutcome::Done(values)) => {
                if let Some(s) = served {
                    self.reply(api, app, s, Ok(&values));
                }
                Some(values)
            }
            Ok(UpcallOutcome::Suspended { call, request }) => {
                self.send_call(api, app, call, request, served);
                None
            }
            Err(e) => {
                if let Some(s) = served {
                    self.reply_error(api, app, s, &e.to_string());
                }
                let stopped = matches!(e, SandboxError::Stopped { .. });
                if !stopped {
                    self.report_for(app, e.to_string());
                    let p = &self.peerlets[&app];
                    if p.sandbox.is_stopped() {
                        let line = format!(
                            "peerlet `{}` stopped after {} aborts",
                            p.name,
                            p.sandbox.aborts()
                        );
                        self.report(line);
                    }
                }
                None
            }
        };
        self.flush(api, app);
        result
    }

    /// Sends what peerlet `app` queued.
    pub(super) fn flush(&mut self, api: &mut Api<'_>, app: AppId) {
        let Some(p) = self.peerlets.get_mut(&app) else {
            return;
        };
        let queued: Vec<Outgoing> = p.host.outbox.borrow_mut().drain(..).collect();
        for out in queued {
            p.stats.messages_out += 1;
            let msg = |data: Vec<u8>| AppMessage {
                app,
                app_type: p.app_type,
                code: p.code.clone(),
                data: ByteBuf::from(data),
                kind: AppKind::Message,
                refused_by: Vec::new(),
            };
            match out {
                Outgoing::Route {
                    key,
                    data,
                    first_hop,
                } => {
                    api.route(key, msg(data), first_hop);
                }
                Outgoing::Send { node, data } => {
                    api.send(node, msg(data));
                }
            }
        }
    }

    /// Call and fetch ids come from the routing core's unpredictable ids:
    /// a peer cannot forge the reply to a call it did not see.
    pub(super) fn fresh_call_id(api: &mut Api<'_>) -> u64 {
        api.fresh_id()
    }
}
