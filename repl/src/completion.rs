//! What Tab offers: the meta commands, Lua's globals left in the sandbox,
//! the host API's globals and the fields of its tables as declared in
//! `lua/peerlet.d.lua` (so they stay in step with the declared API), and
//! the words the node tells: its peerlets' names and the node ids it knows.

use crate::meta::META_COMMANDS;

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

/// The candidates for Tab.
pub struct Completion {
    words: Vec<String>,
    /// Peerlet names and node ids, as the node last told them.
    node_words: Vec<String>,
}

impl Completion {
    pub fn new() -> Completion {
        Completion {
            words: fixed_words(),
            node_words: Vec::new(),
        }
    }

    /// Replaces the words the node offers (see `Request::Completions`).
    pub fn set_node_words(&mut self, words: Vec<String>) {
        self.node_words = words;
    }

    /// Where the word under the cursor at `pos` starts, and the candidates
    /// that complete it.
    pub fn complete(&self, line: &str, pos: usize) -> (usize, Vec<String>) {
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
        (start, found)
    }
}

impl Default for Completion {
    fn default() -> Completion {
        Completion::new()
    }
}

/// Meta commands, Lua globals, and every `name` and `table.field` the
/// declaration file defines as a function or field.
fn fixed_words() -> Vec<String> {
    let mut words: Vec<String> = META_COMMANDS.iter().map(|c| c.name.to_string()).collect();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_offers_kbr_fields_meta_commands_and_node_words() {
        let mut c = Completion::new();
        assert_eq!(
            c.complete("x = kbr.rou", 11),
            (4, vec!["kbr.route".to_string()])
        );
        assert_eq!(c.complete(".pe", 3), (0, vec![".peers".to_string()]));
        for meta in META_COMMANDS {
            assert!(c.words.iter().any(|w| w == meta.name), "{}", meta.name);
        }
        assert!(c.complete(".unload ec", 10).1.is_empty());
        c.set_node_words(vec!["echo".into()]);
        assert_eq!(c.complete(".unload ec", 10), (8, vec!["echo".to_string()]));
    }
}
