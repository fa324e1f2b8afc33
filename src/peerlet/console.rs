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

use mlua::chunk::ChunkMode;
use mlua::MultiValue;

use super::error::describe;
use super::manager::{InstallError, Manager};
use super::{pretty, UpcallOutcome};
use crate::id::AppId;
use crate::kbr::Api;
use crate::wire::AppType;

/// The console peerlet's name.
pub const CONSOLE: &str = "console";

/// Chunk name of console lines in error messages (`console:1: ...`).
const CHUNK: &str = "=console";

impl Manager {
    /// Runs one console line and returns what to print: the values of an
    /// expression (pretty-printed), nothing for statements, or the error
    /// naming the chunk and line.
    pub fn console_eval(&mut self, api: &mut Api<'_>, code: &str) -> Result<String, String> {
        let (app, note) = self.console(api).map_err(|e| e.to_string())?;
        self.refresh(api, app, false);
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
            Ok(UpcallOutcome::Done(values)) => Ok(pretty::values(&values)),
            Ok(UpcallOutcome::Suspended { call, request }) => {
                self.send_call(api, app, call, request, None);
                Ok("(the line waits for a remote call; it finishes in the background)".into())
            }
            Err(e) => Err(e.to_string()),
        };
        self.flush(api, app);
        match (note, result) {
            (Some(note), Ok(text)) if text.is_empty() => Ok(note),
            (Some(note), Ok(text)) => Ok(format!("{note}\n{text}")),
            (_, result) => result,
        }
    }

    /// The console peerlet, installed on first use and replaced when it was
    /// stopped; the note says when a stopped console was replaced.
    fn console(&mut self, api: &mut Api<'_>) -> Result<(AppId, Option<String>), InstallError> {
        let mut note = None;
        if let Some(p) = self.by_name(CONSOLE) {
            if !p.is_stopped() {
                return Ok((p.app, None));
            }
            note = Some(format!(
                "(the console was stopped after {} aborts: its state is reset)",
                p.aborts()
            ));
            self.unload(CONSOLE)?;
        }
        let app = AppId::derive(&self.cfg.local_publisher, CONSOLE);
        let app = self.install(
            api,
            CONSOLE,
            app,
            AppType::EndNode,
            1,
            "console.lua",
            b"return {}",
        )?;
        Ok((app, note))
    }
}
