//! The line editor's helper: when a chunk is complete, and what Tab offers.
//!
//! Completeness is decided by compiling the input locally with Lua (no code
//! runs): a chunk is incomplete when both the expression and the statement
//! reading fail, and one of them only because the input ended early
//! (`<eof>`), as Lua's own interpreter decides. Completion
//! offers meta commands, the host API's globals, and the fields of the host
//! tables as declared in `lua/peerlet.d.lua` (so they stay in step with the
//! declared API), and the node's peerlet names and known node ids.

use mlua::Lua;
use rustyline::completion::Completer;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::Context;

use super::META_COMMANDS;

/// The declared host API, read for completion candidates.
const DECLARED_API: &str = include_str!("../../lua/peerlet.d.lua");

/// Lua's own globals left in the sandbox.
const LUA_GLOBALS: &[&str] = &[
    "assert",
    "error",
    "ipairs",
    "next",
    "pairs",
    "pcall",
    "print",
    "rawequal",
    "rawget",
    "rawlen",
    "rawset",
    "select",
    "setmetatable",
    "getmetatable",
    "tonumber",
    "tostring",
    "type",
    "xpcall",
    "coroutine",
    "math",
    "string",
    "table",
    "utf8",
];

pub struct ReplHelper {
    lua: Lua,
    words: Vec<String>,
    /// Peerlet names and node ids, as the node last told them.
    node_words: Vec<String>,
}

impl ReplHelper {
    pub fn new() -> ReplHelper {
        ReplHelper {
            lua: Lua::new(),
            words: completion_words(),
            node_words: Vec::new(),
        }
    }

    /// Replaces the words the node offers (see `Request::Completions`).
    pub fn set_node_words(&mut self, words: Vec<String>) {
        self.node_words = words;
    }

    /// Whether `input` is Lua that only lacks its end.
    pub fn is_incomplete(&self, input: &str) -> bool {
        if input.trim_start().starts_with('.') {
            return false;
        }
        // Some(true): compiles; Some(false): only lacks its end; None: wrong.
        let check = |text: &str| match self.lua.load(text).into_function() {
            Ok(_) => Some(true),
            Err(mlua::Error::SyntaxError {
                incomplete_input: true,
                ..
            }) => Some(false),
            Err(_) => None,
        };
        match (check(&format!("return {input}")), check(input)) {
            (Some(true), _) | (_, Some(true)) => false,
            (a, b) => a.is_some() || b.is_some(),
        }
    }
}

impl Default for ReplHelper {
    fn default() -> ReplHelper {
        ReplHelper::new()
    }
}

/// Meta commands, Lua globals, and every `name` and `table.field` the
/// declaration file defines as a function or field.
fn completion_words() -> Vec<String> {
    let mut words: Vec<String> = META_COMMANDS.iter().map(|s| s.to_string()).collect();
    words.extend(LUA_GLOBALS.iter().map(|s| s.to_string()));
    for line in DECLARED_API.lines() {
        let decl = match line.strip_prefix("function ") {
            Some(r) => r,
            None if !line.starts_with(' ') && !line.starts_with('-') && line.contains(" = ") => {
                line
            }
            None => continue,
        };
        let name: String = decl
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
            .collect();
        if !name.is_empty() && !words.contains(&name) {
            words.push(name);
        }
    }
    words.sort();
    words
}

impl Completer for ReplHelper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let start = line[..pos]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .map_or(0, |i| i + 1);
        let prefix = &line[start..pos];
        let found = self
            .words
            .iter()
            .chain(&self.node_words)
            .filter(|w| w.starts_with(prefix))
            .cloned()
            .collect();
        Ok((start, found))
    }
}

impl Hinter for ReplHelper {
    type Hint = String;
}

impl Highlighter for ReplHelper {}

impl Validator for ReplHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        Ok(if self.is_incomplete(ctx.input()) {
            ValidationResult::Incomplete
        } else {
            ValidationResult::Valid(None)
        })
    }
}

impl rustyline::Helper for ReplHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfinished_chunks_continue_and_finished_ones_run() {
        let h = ReplHelper::new();
        assert!(h.is_incomplete("function f()"));
        assert!(h.is_incomplete("local t = {"));
        assert!(!h.is_incomplete("function f() return 1 end"));
        assert!(h.is_incomplete("1 +"));
        assert!(!h.is_incomplete(".load x"));
        assert!(!h.is_incomplete("x = )"));
    }

    #[test]
    fn completion_offers_kbr_fields_and_meta_commands() {
        let words = completion_words();
        assert!(words.iter().any(|w| w == "kbr.route"), "{words:?}");
        assert!(words.iter().any(|w| w == ".peers"));
    }
}
