//! The name records this node keeps for the overlay, as the root of their
//! name key or one of its replicas, and the nodes that said they run them.
//!
//! Records are placed as code is ([`crate::peerlet::code_store`]): a
//! `Publish` routed to the name key is kept by its root, which sends a copy
//! to the rest of the key's replica set; when the neighbour set changes,
//! holders give copies to members that lack one. A newer version's record
//! replaces the older one of the same publisher and name, wherever it
//! lands. Who runs what (`Runner`) is soft state: nodes say it with every
//! periodic check, and it is forgotten when they stop saying it.

use std::collections::BTreeMap;

use super::record::{name_key, NameMsg, NameRecord, Runner, NAME_BYTES};
use crate::id::{AppId, Id};
use crate::kbr::Api;
use crate::time::Time;
use crate::wire::NodeRef;
use std::time::Duration;

/// Names one node keeps at most; past it, records of new names are refused.
pub const MAX_NAMES: usize = 4096;
/// Publishers of one name kept at most.
const MAX_PUBLISHERS: usize = 16;
/// Runners of one app remembered at most.
const MAX_RUNNERS: usize = 256;

struct Held {
    /// By publisher key id.
    records: BTreeMap<[u8; 8], NameRecord>,
    /// The replica set as it was when copies were last placed.
    placed: Vec<Id>,
    /// The records were routed on to their key, which left this node's
    /// stretch of ring (a node that kept them alone, before the ring grew).
    handed_on: bool,
}

/// See the module docs.
#[derive(Default)]
pub struct NameStore {
    held: BTreeMap<String, Held>,
    /// Per app: node id → (runner, when it last said so).
    runners: BTreeMap<AppId, BTreeMap<Id, (Runner, Time)>>,
}

impl NameStore {
    /// Names with records here.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.held.keys().map(String::as_str)
    }

    /// The records of `name` kept here.
    pub fn records(&self, name: &str) -> Vec<NameRecord> {
        self.held
            .get(name)
            .map(|h| h.records.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Keeps `record` unless an equal or newer version of the same
    /// publisher's name is kept already; returns whether it changed
    /// anything.
    pub fn keep(&mut self, record: NameRecord) -> Result<bool, String> {
        if record.name.is_empty() || record.name.len() > NAME_BYTES {
            return Err(format!("name of {} bytes refused", record.name.len()));
        }
        if !self.held.contains_key(&record.name) && self.held.len() >= MAX_NAMES {
            return Err(format!(
                "{MAX_NAMES} names kept already: `{}` refused",
                record.name
            ));
        }
        let held = self
            .held
            .entry(record.name.clone())
            .or_insert_with(|| Held {
                records: BTreeMap::new(),
                placed: Vec::new(),
                handed_on: false,
            });
        match held.records.get(&record.publisher) {
            Some(old) if !record.supersedes(old) => return Ok(false),
            None if held.records.len() >= MAX_PUBLISHERS => {
                return Err(format!(
                    "{MAX_PUBLISHERS} publishers of `{}` kept already",
                    record.name
                ))
            }
            _ => {}
        }
        held.records.insert(record.publisher, record);
        held.placed.clear();
        held.handed_on = false;
        Ok(true)
    }

    /// A `Publish` arrived. `at_root`: routed to the name key, so copies go
    /// to the rest of the replica set.
    pub fn on_publish(
        &mut self,
        api: &mut Api<'_>,
        record: NameRecord,
        at_root: bool,
        replicas: usize,
    ) -> Result<(), String> {
        let name = record.name.clone();
        let changed = self.keep(record)?;
        if at_root && changed {
            self.place(api, &name, replicas);
        } else if let Some(held) = self.held.get_mut(&name).filter(|_| changed) {
            // A copy from the root, which placed the others.
            let set = api.replica_set(&name_key(&name), replicas);
            held.placed = set.iter().map(|n| n.id).collect();
        }
        Ok(())
    }

    /// Notes what `runners` say they run, at `now`.
    pub fn note_runners(&mut self, now: Time, runners: Vec<Runner>) {
        for r in runners {
            let apps = self.runners.len();
            let Some(of_app) = (match self.runners.get_mut(&r.app) {
                Some(m) => Some(m),
                None if apps < MAX_NAMES => Some(self.runners.entry(r.app).or_default()),
                None => None,
            }) else {
                continue;
            };
            if of_app.len() < MAX_RUNNERS || of_app.contains_key(&r.node.id) {
                of_app.insert(r.node.id, (r, now));
            }
        }
    }

    /// The nodes that said within `memory` that they run one of `apps`,
    /// with how many seconds ago.
    pub fn runners(&mut self, now: Time, memory: Duration, apps: &[AppId]) -> Vec<(Runner, u64)> {
        let mut out = Vec::new();
        for app in apps {
            let Some(of_app) = self.runners.get_mut(app) else {
                continue;
            };
            of_app.retain(|_, (_, seen)| now.since(*seen) <= memory);
            out.extend(
                of_app
                    .values()
                    .map(|(r, seen)| (r.clone(), now.since(*seen).as_secs())),
            );
        }
        out
    }

    /// The neighbour set changed: give copies to replica-set members that
    /// have not had them from this node.
    pub fn replicate(&mut self, api: &mut Api<'_>, replicas: usize) {
        let names: Vec<String> = self.held.keys().cloned().collect();
        for name in names {
            self.place(api, &name, replicas);
        }
    }

    /// Sends the records of `name` to each member of its replica set not in
    /// the last placement (never to this node).
    fn place(&mut self, api: &mut Api<'_>, name: &str, replicas: usize) {
        let set: Vec<NodeRef> = api.replica_set(&name_key(name), replicas);
        let Some(held) = self.held.get_mut(name) else {
            return;
        };
        if set.is_empty() {
            if !held.handed_on && !api.view().successors().is_empty() {
                held.handed_on = true;
                for record in held.records.values() {
                    let publish = NameMsg::Publish {
                        record: record.clone(),
                    };
                    api.route(name_key(name), publish.to_app_message(), None);
                }
            }
            return;
        }
        if set.iter().map(|n| n.id).eq(held.placed.iter().copied()) {
            return;
        }
        let me = api.id().id;
        for node in &set {
            if node.id != me && !held.placed.contains(&node.id) {
                for record in held.records.values() {
                    let publish = NameMsg::Publish {
                        record: record.clone(),
                    };
                    api.send(*node, publish.to_app_message());
                }
            }
        }
        held.placed = set.iter().map(|n| n.id).collect();
    }
}
