//! Installing, reloading and unloading peerlets on the manager: a fresh
//! sandbox with the host API for each, `init()`, and the `save()` /
//! `restore(state)` handover when code is replaced.

use std::collections::VecDeque;

use mlua::MultiValue;

use super::console::CONSOLE;
use super::host::{self, HostState};
use super::manager::{InstallError, Manager, Peerlet, PeerletSpec, PeerletStats, Step};
use super::share::{Bucket, Share};
use super::store::Store;
use crate::id::AppId;
use crate::kbr::Api;
use crate::package::header::PeerletHeader;
use crate::sandbox::{cbor_to_lua, lua_to_cbor, Sandbox, UpcallOutcome};
use crate::time::Time;

impl Manager {
    /// Installs an unsigned peerlet from source, as this node's own: its name
    /// and type come from the `--@peerlet` header if there is one, else the
    /// name from `chunk_name` (without `.lua`) and type end-node.
    pub fn install_local(
        &mut self,
        api: &mut Api<'_>,
        chunk_name: &str,
        source: &[u8],
    ) -> Result<AppId, InstallError> {
        let text = String::from_utf8_lossy(source);
        let header = match PeerletHeader::parse(&text) {
            Ok(h) => h,
            Err(_) => {
                let stem = chunk_name.rsplit('/').next().unwrap_or(chunk_name);
                PeerletHeader::new(stem.trim_end_matches(".lua")).map_err(|e| {
                    InstallError::Header {
                        chunk: chunk_name.to_string(),
                        reason: e.to_string(),
                    }
                })?
            }
        };
        if header.name == CONSOLE {
            return Err(InstallError::Reserved(header.name));
        }
        let spec = PeerletSpec {
            name: &header.name,
            app: AppId::derive(&self.cfg.local_publisher, &header.name),
            app_type: header.app_type,
            version: header.version,
            chunk_name,
            source,
            signed: None,
        };
        self.install(api, &spec)
    }

    /// Installs a peerlet under `app` and runs its `init()`. A failing
    /// install (syntax error, runaway top level, a precompiled chunk) leaves
    /// nothing behind. Installing an app id that is already present replaces
    /// it, as [`Manager::reload`] does.
    pub fn install(
        &mut self,
        api: &mut Api<'_>,
        spec: &PeerletSpec<'_>,
    ) -> Result<AppId, InstallError> {
        let app = spec.app;
        let fresh = self.build(api, spec)?;
        let old = self.peerlets.insert(app, fresh);
        let state = old.and_then(|mut old| self.save_state(api.now(), &mut old));
        self.refresh(api, app);
        if self.peerlets[&app].sandbox.has_upcall("init") {
            self.drive(
                api,
                app,
                None,
                Step::Upcall("init".into(), MultiValue::new()),
            );
        }
        if let Some(state) = state {
            self.restore_state(api, app, &state);
        }
        Ok(app)
    }

    /// Swaps the code of peerlet `name` on the live node. If the old version
    /// defines `save()` and the new one `restore(state)`, the state is handed
    /// over as a CBOR value. A failing reload leaves the old version running.
    pub fn reload(
        &mut self,
        api: &mut Api<'_>,
        name: &str,
        source: &[u8],
    ) -> Result<AppId, InstallError> {
        let old = self
            .by_name(name)
            .ok_or_else(|| InstallError::Unknown(name.to_string()))?;
        let chunk_name = format!("{name}.lua");
        let spec = PeerletSpec {
            name,
            app: old.app,
            app_type: old.app_type,
            version: old.version,
            chunk_name: &chunk_name,
            source,
            signed: None,
        };
        self.install(api, &spec)
    }

    /// Removes peerlet `name`; its pending calls are dropped.
    pub fn unload(&mut self, name: &str) -> Result<AppId, InstallError> {
        let app = self
            .by_name(name)
            .ok_or_else(|| InstallError::Unknown(name.to_string()))?
            .app;
        self.peerlets.remove(&app);
        self.calls.retain(|_, c| c.app != app);
        Ok(app)
    }

    fn build(
        &mut self,
        api: &mut Api<'_>,
        spec: &PeerletSpec<'_>,
    ) -> Result<Peerlet, InstallError> {
        let PeerletSpec {
            name,
            app,
            app_type,
            version,
            chunk_name,
            source,
            ..
        } = spec.clone();
        let store = match &self.cfg.data_dir {
            Some(dir) => Some(Store::open(
                Store::path_for(dir, &app.to_string()),
                self.cfg.store_quota,
            )),
            None => Some(Ok(Store::in_memory(self.cfg.store_quota))),
        }
        .transpose()
        .map_err(|source| InstallError::Store {
            name: name.to_string(),
            source,
        })?;
        let mut sandbox = Sandbox::new(name, &self.cfg.limits)?;
        let host = HostState::new(name, app, app_type, &self.cfg.limits, api.view(), store);
        host.now.set(api.now());
        host::install(&mut sandbox, &host)?;
        sandbox.load(chunk_name, source)?;
        // Whatever the chunk queued at load time is dropped: a peerlet acts
        // from init() on.
        host.outbox.borrow_mut().clear();
        Ok(Peerlet {
            name: name.to_string(),
            app,
            app_type,
            version,
            source: source.to_vec(),
            sandbox,
            host,
            stats: PeerletStats::default(),
            code: spec.signed.as_ref().map(|(c, _)| c.clone()),
            publisher: spec.signed.as_ref().map(|(_, p)| p.clone()),
            share: Share::new(&self.cfg.limits),
            backlog: VecDeque::new(),
            timer_calls: Bucket::new(
                self.cfg.limits.timer_callbacks_per_second as f64,
                self.cfg.limits.timers.max(1) as f64,
            ),
        })
    }

    fn save_state(&mut self, now: Time, old: &mut Peerlet) -> Option<Vec<u8>> {
        if !old.sandbox.has_upcall("save") {
            return None;
        }
        old.host.now.set(now);
        match old.sandbox.start_upcall("save", ()) {
            Ok(UpcallOutcome::Done(values)) => {
                let v = values.into_iter().next().unwrap_or(mlua::Value::Nil);
                match lua_to_cbor(&v, &self.cfg.limits) {
                    Ok(bytes) => Some(bytes),
                    Err(e) => {
                        self.report(format!("peerlet `{}`: save() state refused: {e}", old.name));
                        None
                    }
                }
            }
            Ok(UpcallOutcome::Suspended { call, .. }) => {
                old.sandbox.cancel(call);
                self.report(format!(
                    "peerlet `{}`: save() may not wait on remote calls",
                    old.name
                ));
                None
            }
            Err(e) => {
                self.report(e.to_string());
                None
            }
        }
    }

    fn restore_state(&mut self, api: &mut Api<'_>, app: AppId, state: &[u8]) {
        let p = &self.peerlets[&app];
        if !p.sandbox.has_upcall("restore") {
            return;
        }
        match cbor_to_lua(p.sandbox.lua(), state, &self.cfg.limits) {
            Ok(v) => {
                let args = MultiValue::from_iter([v]);
                self.drive(api, app, None, Step::Upcall("restore".into(), args));
            }
            Err(e) => {
                let name = p.name.clone();
                self.report(format!("peerlet `{name}`: restore() state refused: {e}"));
            }
        }
    }
}
