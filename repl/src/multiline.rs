//! When a console chunk is complete, so that Enter runs it or continues it
//! on the next line.
//!
//! Decided by compiling the input locally with Lua (no code runs): a chunk
//! is unfinished when both the expression and the statement reading fail,
//! and one of them only because the input ended early (`<eof>`), as Lua's
//! own interpreter decides. Meta commands are one line.

use mlua::Lua;

/// A Lua state used only to compile.
pub struct ChunkCheck {
    lua: Lua,
}

impl ChunkCheck {
    pub fn new() -> ChunkCheck {
        ChunkCheck { lua: Lua::new() }
    }

    /// Whether `input` is Lua that only lacks its end.
    pub fn is_unfinished(&self, input: &str) -> bool {
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

impl Default for ChunkCheck {
    fn default() -> ChunkCheck {
        ChunkCheck::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfinished_chunks_continue_and_finished_ones_run() {
        let c = ChunkCheck::new();
        assert!(c.is_unfinished("function f()"));
        assert!(c.is_unfinished("local t = {"));
        assert!(!c.is_unfinished("function f() return 1 end"));
        assert!(c.is_unfinished("1 +"));
        assert!(!c.is_unfinished(".load x"));
        assert!(!c.is_unfinished("x = )"));
    }
}
