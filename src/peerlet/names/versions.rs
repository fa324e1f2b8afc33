//! `.versions NAME`: which nodes run which version of a peerlet, as far as
//! this node knows: the name's records in the overlay, the nodes that told
//! the records' root what they run (each checks every `names.refresh`), and
//! this node itself.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::id::Id;
use crate::kbr::Api;
use crate::package::hex;
use crate::peerlet::manager::Manager;

impl Manager {
    /// The text of `.versions NAME`, from the answer just cached.
    pub(in crate::peerlet) fn versions_text(&self, api: &mut Api<'_>, name: &str) -> String {
        let mut out = String::new();
        let Some(cached) = self.names.cache.get(name) else {
            return format!("no records of `{name}` known here");
        };
        if cached.records.is_empty() {
            let _ = writeln!(out, "`{name}`: no publisher has published this name");
        }
        let me = api.id();
        for r in &cached.records {
            let trusted = match r.trusted_by(self.trust()) {
                true => "trusted here",
                false => "NOT trusted here",
            };
            let origin = r
                .code
                .origin
                .map(|o| format!("{} {}", o.id.short(8), o.addr))
                .unwrap_or_else(|| "none".into());
            let _ = writeln!(
                out,
                "`{name}` by publisher {} ({trusted}), app {}: newest version {} (code {}, origin {origin})",
                r.publisher_hex(),
                r.app,
                r.version,
                hex(&r.code.hash[..8]),
            );
            // version → nodes, newest first; this node from its own state.
            let mut by_version: BTreeMap<u32, Vec<String>> = BTreeMap::new();
            let mut seen: Vec<Id> = Vec::new();
            if let Some(p) = self.peerlets.get(&r.app) {
                by_version.entry(p.version).or_default().push(format!(
                    "{} {} (this node)",
                    me.id.short(8),
                    me.addr
                ));
                seen.push(me.id);
            }
            for (runner, ago) in cached.runners.iter().filter(|(x, _)| x.app == r.app) {
                if seen.contains(&runner.node.id) {
                    continue;
                }
                seen.push(runner.node.id);
                by_version.entry(runner.version).or_default().push(format!(
                    "{} {} ({ago} s ago)",
                    runner.node.id.short(8),
                    runner.node.addr
                ));
            }
            if by_version.is_empty() {
                let _ = writeln!(out, "  no node has said it runs it yet");
            }
            for (version, nodes) in by_version.iter().rev() {
                let old = match *version < r.version {
                    true => " (older: updates within a check)",
                    false => "",
                };
                let _ = writeln!(out, "  version {version}{old}: {}", nodes.join(", "));
            }
        }
        let refresh = self.cfg.names.refresh.as_secs();
        let _ = write!(
            out,
            "(nodes say what they run every {refresh} s; a node that stopped is forgotten after {} s)",
            self.cfg.names.runner_memory.as_secs()
        );
        out
    }
}
