//! Following new versions: every `names.refresh` a node asks about the
//! names of the signed peerlets it runs (saying which version it runs);
//! an answer with a newer trusted version makes it fetch and install that
//! version (with save/restore), one missing this node's record makes it
//! publish the record again.

use super::record::NameRecord;
use super::state::Waiter;
use crate::id::AppId;
use crate::kbr::Api;
use crate::peerlet::manager::Manager;
use crate::time::Time;
use crate::wire::CodeLocator;

impl Manager {
    /// The periodic check, when it is due: one ask per name running here.
    pub(in crate::peerlet) fn check_names_running_here(&mut self, api: &mut Api<'_>) {
        let now = api.now();
        if self.names.next_check.is_some_and(|t| t <= now) {
            self.names.next_check = None;
            let mut names: Vec<String> = self
                .peerlets
                .values()
                .filter(|p| p.code.is_some())
                .map(|p| p.name.clone())
                .collect();
            names.dedup();
            for name in &names {
                self.ask_name(api, name, Waiter::Check);
            }
            if !names.is_empty() {
                self.names.next_check = Some(now + self.cfg.names.refresh);
            }
        }
    }

    /// A signed peerlet now runs here: its name is checked within
    /// `names.refresh` from now.
    pub(in crate::peerlet) fn schedule_name_check(&mut self, now: Time) {
        if self.names.next_check.is_none() {
            self.names.next_check = Some(now + self.cfg.names.refresh);
        }
    }

    /// Acts on a name's records: a newer version of an app running here is
    /// fetched (it then replaces the running one, with save/restore); a
    /// signed app running here whose record is missing or older is
    /// published again (records lost with their holders come back).
    pub(super) fn follow_records(&mut self, api: &mut Api<'_>, name: &str, records: &[NameRecord]) {
        let mut fetch = Vec::new();
        let mut publish = Vec::new();
        for p in self.peerlets.values().filter(|p| p.name == name) {
            let Some(code) = &p.code else {
                continue;
            };
            let newest = records
                .iter()
                .filter(|r| r.app == p.app && r.trusted_by(self.trust()))
                .max_by_key(|r| r.version);
            match newest {
                Some(r) if r.version > p.version => fetch.push(r.clone()),
                Some(r) if r.version == p.version => {}
                _ => publish.extend(self.record_of_running(p.app, code)),
            }
        }
        for r in fetch {
            self.fetch_code(api, r.code, r.app);
        }
        for r in publish {
            self.publish_name(api, r);
        }
    }

    /// The name record of signed peerlet `app` running here.
    pub(in crate::peerlet) fn record_of_running(
        &self,
        app: AppId,
        code: &CodeLocator,
    ) -> Option<NameRecord> {
        let p = self.peerlets.get(&app)?;
        let key_id = self
            .trust()
            .trusted_keys()
            .iter()
            .find(|k| AppId::derive(k.ed25519(), &p.name) == app)?
            .key_id();
        Some(NameRecord {
            publisher: key_id,
            name: p.name.clone(),
            app,
            app_type: p.app_type,
            version: p.version,
            code: code.clone(),
        })
    }
}
