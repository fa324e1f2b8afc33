//! The peerlet manager as the KBR layer sees it: one [`Application`] that
//! takes the messages of every peerlet app id and turns them into upcalls
//! (`deliver`, per-hop `forward`, `update`, timers), and carries remote
//! method calls (`peerlet.lookup` handles) and their replies.

use std::cell::RefCell;
use std::rc::Rc;

use mlua::{MultiValue, Value};
use serde_bytes::ByteBuf;

use super::code_store::{CodeMsg, CODE_APP};
use super::host::{node_from_lua, node_to_lua, RESERVED_METHODS};
use super::manager::{Manager, Served, Step};
use super::names::record::NAME_APP;
use super::names::state::ParkedCall;
use crate::id::{AppId, Id};
use crate::kbr::{Api, Application};
use crate::sandbox::{cbor_to_lua, decode_array, encode_array, lua_to_cbor, CallId};
use crate::time::Time;
use crate::wire::{AppKind, AppMessage, AppType, Body, NodeRef, RoutedMessage};

/// The manager, shared between the KBR layer (as its default application)
/// and the node's driver (for install, reload, unload).
#[derive(Clone)]
pub struct ManagerApp(pub Rc<RefCell<Manager>>);

impl ManagerApp {
    pub fn new(manager: Manager) -> ManagerApp {
        ManagerApp(Rc::new(RefCell::new(manager)))
    }
}

impl Manager {
    /// Routes the remote call a suspended activation asked for.
    pub(super) fn send_call(
        &mut self,
        api: &mut Api<'_>,
        app: AppId,
        activation: CallId,
        request: Value,
        served: Option<Served>,
    ) {
        let Some(p) = self.peerlets.get_mut(&app) else {
            return;
        };
        let req = match request {
            Value::Integer(token) => p.host.calls.borrow_mut().remove(&(token as u64)),
            _ => None,
        };
        let Some(req) = req else {
            p.sandbox.cancel(activation);
            return;
        };
        p.stats.calls_out += 1;
        let parked = ParkedCall {
            app,
            activation,
            served,
            call: Manager::fresh_call_id(api),
            key: req.key,
            target: req.app,
            method: req.method,
            args: req.args,
            since: api.now(),
            node: req.node,
            // A handle may ask for less time than the node allows, never more.
            timeout: req
                .timeout
                .map_or(self.cfg.call_timeout, |t| t.min(self.cfg.call_timeout)),
        };
        // A call carries the code locator of the app it names (running
        // here, or as its name's record in the overlay says), so the key's
        // root can deploy the peerlet on the first call.
        self.send_parked(api, parked);
    }

    /// Answers a served call with the method's results.
    pub(super) fn reply(
        &mut self,
        api: &mut Api<'_>,
        app: AppId,
        to: Served,
        values: Result<&MultiValue, String>,
    ) {
        let encoded = values.and_then(|v| {
            let list: Vec<Value> = v.iter().cloned().collect();
            encode_array(&list, &self.cfg.limits, "value")
        });
        match encoded {
            Ok(data) => self.send_reply(api, app, to, true, data),
            Err(e) => self.reply_error(api, app, to, &format!("results refused: {e}")),
        }
    }

    pub(super) fn reply_error(&mut self, api: &mut Api<'_>, app: AppId, to: Served, message: &str) {
        let mut data = Vec::new();
        ciborium::into_writer(&message, &mut data).expect("a string encodes");
        self.send_reply(api, app, to, false, data);
    }

    fn send_reply(&mut self, api: &mut Api<'_>, app: AppId, to: Served, ok: bool, data: Vec<u8>) {
        let msg = AppMessage {
            app,
            app_type: AppType::EndNode,
            code: None,
            data: ByteBuf::from(data),
            kind: AppKind::Reply { call: to.call, ok },
            refused_by: Vec::new(),
        };
        api.send(to.from, msg);
    }

    /// A call of `method` arrived at this node, the root of its key.
    fn serve_call(
        &mut self,
        api: &mut Api<'_>,
        msg: &RoutedMessage,
        app_msg: &AppMessage,
        call: u64,
        method: &str,
    ) {
        let to = Served {
            from: msg.source,
            call,
        };
        let me = api.id();
        let Some(p) = self.peerlets.get_mut(&app_msg.app) else {
            let e = format!(
                "no peerlet with app id {} at node {} (the root of key {}), and the call \
                 carried no code to deploy it from: the calling node neither runs it nor \
                 knows its name's record; call it by name (peerlet.lookup(key, \"NAME\")) \
                 so the call carries its code, or install it on the calling node",
                app_msg.app,
                me.id.short(8),
                msg.key.short(8)
            );
            return self.reply_error(api, app_msg.app, to, &e);
        };
        if RESERVED_METHODS.contains(&method) || !p.sandbox.has_upcall(method) {
            let methods = p.sandbox.method_names(&RESERVED_METHODS);
            let e = format!(
                "peerlet `{}` (version {}) at node {} has no method `{method}`; its methods: {}",
                p.name,
                p.version,
                me.id.short(8),
                match methods.is_empty() {
                    true => "none".to_string(),
                    false => methods.join(", "),
                }
            );
            return self.reply_error(api, app_msg.app, to, &e);
        }
        p.stats.calls_in += 1;
        let args = match decode_array(p.sandbox.lua(), &app_msg.data, &self.cfg.limits) {
            Ok(args) => args,
            Err(e) => {
                return self.reply_error(api, app_msg.app, to, &format!("arguments refused: {e}"))
            }
        };
        self.drive(
            api,
            app_msg.app,
            Some(to),
            Step::Upcall(method.to_string().into(), args),
        );
    }

    /// A reply to one of our calls came back.
    fn take_reply(&mut self, api: &mut Api<'_>, app_msg: &AppMessage, call: u64, ok: bool) {
        let Some(out) = self.calls.remove(&call) else {
            return;
        };
        let Some(p) = self.peerlets.get(&out.app) else {
            return;
        };
        let lua = p.sandbox.lua();
        let reply = if ok {
            decode_array(lua, &app_msg.data, &self.cfg.limits)
                .map_err(|e| format!("reply refused: {e}"))
        } else {
            Err(ciborium::from_reader::<String, _>(app_msg.data.as_slice())
                .unwrap_or_else(|_| "remote call failed".into()))
        };
        let reply = reply.map_err(|e| format!("peerlet.lookup: `{}` failed: {e}", out.method));
        self.drive(
            api,
            out.app,
            out.served,
            Step::Resume(out.activation, reply),
        );
    }

    /// A plain message or a call for a peerlet that runs here (or for none).
    pub(super) fn deliver_now(&mut self, api: &mut Api<'_>, msg: &RoutedMessage) {
        let Body::App(app_msg) = &msg.body else {
            return;
        };
        match &app_msg.kind {
            AppKind::Message => self.deliver_message(api, msg, app_msg),
            AppKind::Call { call, method } => self.serve_call(api, msg, app_msg, *call, method),
            _ => {}
        }
    }

    /// The code store's messages (see `code_store.rs`).
    fn code_message(&mut self, api: &mut Api<'_>, msg: &RoutedMessage, app_msg: &AppMessage) {
        let code = match CodeMsg::from_app_message(app_msg) {
            Ok(code) => code,
            Err(e) => return self.report(format!("code store message from {:?}: {e}", msg.source)),
        };
        match code {
            CodeMsg::Put { package } => {
                let max = self.trust().max_package_bytes();
                let at_root = !msg.direct;
                if let Err(e) = self
                    .code_store
                    .on_put(api, package.into_vec(), at_root, max)
                {
                    self.report(format!(
                        "code store: package from {:?} not kept: {e}",
                        msg.source
                    ));
                }
            }
            CodeMsg::Get { hash, req } => {
                let package = self
                    .code_store
                    .get(&hash)
                    .or_else(|| self.package(&hash))
                    .map(|p| ByteBuf::from(p.to_vec()));
                let got = CodeMsg::Got { hash, req, package };
                api.send(msg.source, got.to_app_message());
            }
            CodeMsg::Got { hash, req, package } => self.got_code(api, hash, req, package),
        }
    }

    /// A message this node's peerlet sent was not delivered: report it and
    /// tell the peerlet through its `undelivered(key, msg, reason)` upcall.
    fn take_undelivered(
        &mut self,
        api: &mut Api<'_>,
        app_msg: &AppMessage,
        key: &Id,
        reason: &str,
    ) {
        self.report(format!(
            "app {}: our message to key {} was not delivered: {reason}",
            app_msg.app,
            key.short(8)
        ));
        let Some(p) = self.peerlets.get_mut(&app_msg.app) else {
            return;
        };
        p.stats.undelivered += 1;
        if !p.sandbox.has_upcall("undelivered") {
            return;
        }
        let lua = p.sandbox.lua();
        let args = (|| -> mlua::Result<MultiValue> {
            let data =
                cbor_to_lua(lua, &app_msg.data, &self.cfg.limits).map_err(mlua::Error::external)?;
            Ok(MultiValue::from_iter([
                Value::String(lua.create_string(key.to_string())?),
                data,
                Value::String(lua.create_string(reason)?),
            ]))
        })();
        if let Ok(args) = args {
            self.drive(
                api,
                app_msg.app,
                None,
                Step::Upcall("undelivered".into(), args),
            );
        }
    }

    fn deliver_message(&mut self, api: &mut Api<'_>, msg: &RoutedMessage, app_msg: &AppMessage) {
        let Some(p) = self.peerlets.get_mut(&app_msg.app) else {
            // Anyone can send these: one line each would let a peer fill
            // the log, so they pass a gate of their own.
            let line = format!("no peerlet for app {} here: message dropped", app_msg.app);
            let lines = self.strangers.admit(self.now, line);
            return lines.into_iter().for_each(|l| self.report(l));
        };
        p.stats.messages_in += 1;
        if !p.sandbox.has_upcall("deliver") {
            return;
        }
        let lua = p.sandbox.lua();
        let args = (|| -> Result<MultiValue, String> {
            let data =
                cbor_to_lua(lua, &app_msg.data, &self.cfg.limits).map_err(|e| e.to_string())?;
            let from = node_to_lua(lua, &msg.source).map_err(|e| e.to_string())?;
            Ok(MultiValue::from_iter([
                Value::String(
                    lua.create_string(msg.key.to_string())
                        .map_err(|e| e.to_string())?,
                ),
                data,
                Value::Table(from),
            ]))
        })();
        match args {
            Ok(args) => {
                self.drive(api, app_msg.app, None, Step::Upcall("deliver".into(), args));
            }
            Err(e) => {
                let line = format!("peerlet `{}`: message refused: {e}", p.name);
                self.report(line);
            }
        }
    }

    pub(super) fn forward_message(
        &mut self,
        api: &mut Api<'_>,
        msg: &mut RoutedMessage,
        next: &mut NodeRef,
    ) -> bool {
        let Body::App(app_msg) = &msg.body else {
            return true;
        };
        if app_msg.kind != AppKind::Message || app_msg.app_type != AppType::PerHop {
            return true;
        }
        let app = app_msg.app;
        if let Some(go_on) = self.hold_at_hop(api, msg, *next) {
            return go_on;
        }
        let Some(p) = self.peerlets.get(&app) else {
            return true;
        };
        if p.app_type != AppType::PerHop || !p.sandbox.has_upcall("forward") {
            return true;
        }
        if self.hold_forward(api, app, msg, *next) {
            return false;
        }
        let Some(p) = self.peerlets.get(&app) else {
            return true;
        };
        let lua = p.sandbox.lua();
        let args = (|| -> mlua::Result<MultiValue> {
            let data =
                cbor_to_lua(lua, &app_msg.data, &self.cfg.limits).map_err(mlua::Error::external)?;
            Ok(MultiValue::from_iter([
                Value::String(lua.create_string(msg.key.to_string())?),
                data,
                Value::Table(node_to_lua(lua, next)?),
            ]))
        })();
        let Ok(args) = args else { return true };
        let Some(values) = self.drive(api, app, None, Step::Upcall("forward".into(), args)) else {
            // Aborted, or it tried to wait: the message goes on unchanged.
            return true;
        };
        let mut values = values.into_iter();
        let first = values.next().unwrap_or(Value::Nil);
        let second = values.next().unwrap_or(Value::Nil);
        if first == Value::Boolean(false) {
            return false;
        }
        let name = self.peerlets[&app].name.clone();
        if first != Value::Nil {
            match lua_to_cbor(&first, &self.cfg.limits) {
                Ok(bytes) => {
                    if let Body::App(a) = &mut msg.body {
                        a.data = ByteBuf::from(bytes);
                    }
                }
                Err(e) => self.report(format!(
                    "peerlet `{name}`: forward() returned a message that was refused: {e}"
                )),
            }
        }
        if second != Value::Nil {
            match node_from_lua(&second, "forward() next hop") {
                Ok(node) => *next = node,
                Err(e) => self.report(format!("peerlet `{name}`: {e}")),
            }
        }
        true
    }

    /// When the manager wants `fire` next: a timer, a call's deadline, a
    /// fetch, or held work. A waiting peerlet's timers count from when its
    /// share (and its timer rate) lets them run, so nothing spins on them.
    fn earliest(&self) -> Option<Time> {
        let now = self.now;
        let node_at = self.node_share.ready_at(now, 0.0);
        let timers = self.peerlets.values().filter_map(|p| {
            let due = p.host.timers.borrow().next_deadline()?;
            let rate_at = p.timer_calls.ready_at(now, 1.0);
            Some(due.max(rate_at).max(p.share.ready_at(now)).max(node_at))
        });
        let calls = self.calls.values().map(|c| c.deadline);
        timers
            .chain(calls)
            .chain(self.deploy.next_deadline())
            .chain(self.names.next_deadline())
            .chain(self.backlog_deadline())
            .min()
    }

    fn fire(&mut self, api: &mut Api<'_>) {
        self.fire_fetches(api);
        self.fire_names(api);
        let now = api.now();
        self.now = self.now.max(now);
        let expired: Vec<u64> = self
            .calls
            .iter()
            .filter(|(_, c)| c.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            let out = self.calls.remove(&id).expect("listed");
            let secs = out.timeout.as_secs_f64();
            let e = out.failed.unwrap_or_else(|| {
                let hop = match out.first_hop {
                    Some(n) => format!("its first hop was node {} at {}", n.id.short(8), n.addr),
                    None => "this node is the key's root".to_string(),
                };
                format!(
                    "peerlet.lookup: call of `{}` timed out after {secs} s: no reply from \
                     the root of key {} ({hop}); the root may have failed (routing repairs \
                     itself within seconds: try again), be busy, or still be fetching the \
                     peerlet's code (its `.stats` shows deployments)",
                    out.method,
                    out.key.short(8)
                )
            });
            self.drive(
                api,
                out.app,
                out.served,
                Step::Resume(out.activation, Err(e)),
            );
        }
        self.run_backlogs(api);
        let mut apps: Vec<AppId> = self.peerlets.keys().copied().collect();
        apps.sort_by_key(|a| self.peerlets[a].share.last_ran());
        for app in apps {
            if !self.may_run(app, now) {
                continue; // its timers wait with it
            }
            let due = match self.peerlets.get_mut(&app) {
                Some(p) => {
                    let mut timers = p.host.timers.borrow_mut();
                    timers.take_due(now, || p.timer_calls.take_one(now))
                }
                None => continue,
            };
            for (_, callback) in due {
                self.drive(api, app, None, Step::Function(callback, "timer"));
            }
        }
    }
}

impl Application for ManagerApp {
    fn deliver(&mut self, api: &mut Api<'_>, msg: &RoutedMessage) {
        let Body::App(app_msg) = &msg.body else {
            return;
        };
        let mut m = self.0.borrow_mut();
        m.now = m.now.max(api.now());
        if app_msg.app == CODE_APP {
            return m.code_message(api, msg, app_msg);
        }
        if app_msg.app == NAME_APP {
            return m.name_message(api, msg, app_msg);
        }
        match &app_msg.kind {
            AppKind::Message | AppKind::Call { .. } => {
                if !m.take_for_deployment(api, msg) {
                    m.deliver_now(api, msg);
                }
            }
            AppKind::Reply { call, ok } => m.take_reply(api, app_msg, *call, *ok),
            AppKind::Undelivered { key, reason } => m.take_undelivered(api, app_msg, key, reason),
        }
    }

    fn forward(&mut self, api: &mut Api<'_>, msg: &mut RoutedMessage, next: &mut NodeRef) -> bool {
        let mut m = self.0.borrow_mut();
        m.now = m.now.max(api.now());
        m.forward_message(api, msg, next)
    }

    fn update(&mut self, api: &mut Api<'_>, node: NodeRef, joined: bool) {
        let mut m = self.0.borrow_mut();
        m.now = m.now.max(api.now());
        m.code_store.replicate(api);
        let replicas = m.cfg.deploy.replicas;
        m.names.store.replicate(api, replicas);
        let apps: Vec<AppId> = m
            .peerlets
            .iter()
            .filter(|(_, p)| p.sandbox.has_upcall("update"))
            .map(|(a, _)| *a)
            .collect();
        for app in apps {
            let Some(p) = m.peerlets.get(&app) else {
                continue;
            };
            let lua = p.sandbox.lua();
            let Ok(node) = node_to_lua(lua, &node) else {
                continue;
            };
            let args = MultiValue::from_iter([Value::Table(node), Value::Boolean(joined)]);
            m.drive(api, app, None, Step::Upcall("update".into(), args));
        }
    }

    fn next_deadline(&self) -> Option<Time> {
        self.0.borrow().earliest()
    }

    fn on_timeout(&mut self, api: &mut Api<'_>) {
        self.0.borrow_mut().fire(api);
    }
}
