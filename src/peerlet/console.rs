//! The console: Lua typed at a REPL, run on the node in a peerlet of its own.
//!
//! The console is an ordinary peerlet named [`CONSOLE`] (so it has exactly
//! the host API and the budgets of any peerlet, and shows in `.apps`); only
//! its code arrives line by line. Each line is compiled into the console's
//! Lua state first as an expression (`return LINE`: its values are printed),
//! else as statements (nothing is printed), and runs as one activation under
//! a full instruction budget. A runaway line is aborted like any upcall; a
//! console stopped after too many aborts is replaced by a fresh one, so the
//! console always stays usable.
//!
//! A line that calls a remote peerlet (`peerlet.lookup(key):method()`)
//! waits like any upcall; its outcome is handed to the caller's `done`
//! when the activation finishes (or fails, or times out). One console line
//! waits at a time: a newer waiting line drops the older one's `done`.

use mlua::chunk::ChunkMode;
use mlua::MultiValue;

use super::manager::{ConsoleWaiting, Done, InstallError, Manager, PeerletSpec};
use super::pretty;
use crate::id::AppId;
use crate::kbr::Api;
use crate::sandbox::{describe, CallId, SandboxError, UpcallOutcome};
use crate::wire::AppType;

/// The console peerlet's name.
pub const CONSOLE: &str = "console";

/// Chunk name of console lines in error messages (`console:1: ...`).
const CHUNK: &str = "=console";

/// How a console line's first step ended, when it did not fail.
enum Started {
    Done(String),
    Waiting(CallId),
}

impl Manager {
    /// Runs one console line and gives `done` what to print: the values of
    /// an expression (pretty-printed), nothing for statements, or the error
    /// naming the chunk and line. `done` runs before this returns, unless
    /// the line waits on a remote call: then when that call is answered.
    /// If the console is replaced meanwhile, `done` is dropped unrun.
    pub fn console_eval(&mut self, api: &mut Api<'_>, code: &str, done: Done) {
        match self.console_start(api, code) {
            Ok(Started::Waiting(call)) => {
                self.console_waiting = Some(ConsoleWaiting { call, done })
            }
            Ok(Started::Done(text)) => done(Ok(text)),
            Err(e) => done(Err(e)),
        }
    }

    /// Interrupts the console line waiting on a remote call (Ctrl-C): its
    /// `done` gets an error now, and the call's reply will be ignored.
    /// Returns whether a line was waiting.
    pub fn console_interrupt(&mut self) -> bool {
        let Some(waiting) = self.console_waiting.take() else {
            return false;
        };
        if let Some(app) = self.peerlets.get(&self.console_app()).map(|p| p.app) {
            if let Some(p) = self.peerlets.get_mut(&app) {
                p.sandbox.cancel(waiting.call);
            }
            self.calls
                .retain(|_, c| !(c.app == app && c.activation == waiting.call));
        }
        (waiting.done)(Err("the console line was interrupted".into()));
        true
    }

    /// Called for every resumed activation of peerlet `app`: hands the
    /// outcome of the waiting console line to its `done`. Call ids are
    /// numbered per sandbox, so the app must be the console's too: a
    /// peerlet method the line waits on may resume under the same number.
    pub(super) fn console_resumed(
        &mut self,
        app: AppId,
        call: CallId,
        outcome: &Result<UpcallOutcome, SandboxError>,
    ) {
        if self.console_waiting.as_ref().is_none_or(|w| w.call != call) || self.console_app() != app
        {
            return;
        }
        let waiting = self.console_waiting.take().expect("checked");
        match outcome {
            Ok(UpcallOutcome::Done(values)) => (waiting.done)(Ok(pretty::values(values))),
            Ok(UpcallOutcome::Suspended { call, .. }) => {
                self.console_waiting = Some(ConsoleWaiting {
                    call: *call,
                    done: waiting.done,
                })
            }
            Err(e) => (waiting.done)(Err(e.to_string())),
        }
    }

    /// Starts a console line: done at once, or waiting on a remote call.
    fn console_start(&mut self, api: &mut Api<'_>, code: &str) -> Result<Started, String> {
        let (app, note) = self.console(api).map_err(|e| e.to_string())?;
        self.refresh(api, app);
        let p = self.peerlets.get_mut(&app).expect("console just installed");
        let lua = p.sandbox.lua();
        let compile = |text: &str| {
            lua.load(text)
                .set_name(CHUNK)
                .set_mode(ChunkMode::Text)
                .into_function()
        };
        let f = match compile(&format!("return {code}")) {
            Ok(f) => f,
            Err(_) => compile(code).map_err(|e| describe(&e))?,
        };
        let outcome = p
            .sandbox
            .start_function(f, "the console line", MultiValue::new());
        let result = match outcome {
            Ok(UpcallOutcome::Done(values)) => Ok(Started::Done(pretty::values(&values))),
            Ok(UpcallOutcome::Suspended { call, request }) => {
                self.send_call(api, app, call, request, None);
                Ok(Started::Waiting(call))
            }
            Err(e) => Err(e.to_string()),
        };
        self.flush(api, app);
        match (note, result) {
            (Some(note), Ok(Started::Done(text))) if text.is_empty() => Ok(Started::Done(note)),
            (Some(note), Ok(Started::Done(text))) => Ok(Started::Done(format!("{note}\n{text}"))),
            (_, result) => result,
        }
    }

    /// The console's app id: no other peerlet may take the name.
    pub(super) fn console_app(&self) -> AppId {
        AppId::derive(&self.cfg.local_publisher, CONSOLE)
    }

    /// The console peerlet, installed on first use and replaced when it was
    /// stopped; the note says when a stopped console was replaced.
    fn console(&mut self, api: &mut Api<'_>) -> Result<(AppId, Option<String>), InstallError> {
        let mut note = None;
        if let Some(p) = self.peerlets.get(&self.console_app()) {
            if !p.is_stopped() {
                return Ok((p.app, None));
            }
            note = Some(format!(
                "(the console was stopped after {} aborts: its state is reset)",
                p.aborts()
            ));
            self.unload(CONSOLE)?;
            // Its waiting line, if any, will never be answered.
            self.console_waiting = None;
        }
        let app = self.console_app();
        let spec = PeerletSpec {
            name: CONSOLE,
            app,
            app_type: AppType::EndNode,
            version: 1,
            chunk_name: "console.lua",
            source: b"return {}",
            signed: None,
        };
        let app = self.install(api, &spec)?;
        Ok((app, note))
    }
}
