//! Choosing what a peerlet name means on this node: the overlay's records
//! of the name, kept only where a trusted key made them, together with the
//! peerlets of that name running here. One app → the call goes to it, with
//! its newest code locator; none or two → an error that says what to do.

use std::collections::BTreeMap;
use std::time::Duration;

use super::record::{NameRecord, Runner};
use crate::id::AppId;
use crate::package::trust::TrustPolicy;
use crate::time::Time;
use crate::wire::{AppType, CodeLocator};

/// How names are resolved and kept fresh.
#[derive(Clone, Debug)]
pub struct NamesConfig {
    /// How long a name's records, once asked for, are used without asking
    /// again: so a node that only calls an app learns of a new version
    /// within this time.
    pub cache_ttl: Duration,
    /// How often a node asks for the records of the signed peerlets it runs
    /// (and says which version it runs): so a node running an old version
    /// learns of a newer one within this time plus one ask, then fetches it.
    pub refresh: Duration,
    /// How long one ask waits for its answer.
    pub ask_timeout: Duration,
    /// Asks before giving up on a name.
    pub attempts: u32,
    /// How long the overlay remembers that a node runs a version after it
    /// last said so.
    pub runner_memory: Duration,
}

impl Default for NamesConfig {
    fn default() -> NamesConfig {
        NamesConfig {
            cache_ttl: Duration::from_secs(30),
            refresh: Duration::from_secs(30),
            ask_timeout: Duration::from_secs(2),
            attempts: 2,
            runner_memory: Duration::from_secs(90),
        }
    }
}

/// A name as a caller writes it: `vote`, or `KEYID/vote` for one
/// publisher's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    pub publisher: Option<String>,
    pub name: String,
}

impl Wanted {
    pub fn parse(text: &str) -> Wanted {
        match text.split_once('/') {
            Some((key, name)) if !key.is_empty() && key.chars().all(|c| c.is_ascii_hexdigit()) => {
                Wanted {
                    publisher: Some(key.to_ascii_uppercase()),
                    name: name.to_string(),
                }
            }
            _ => Wanted {
                publisher: None,
                name: text.to_string(),
            },
        }
    }
}

/// One app a name may mean.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The publisher's key id (hex); `None` for this node's own unsigned
    /// peerlet.
    pub publisher: Option<String>,
    pub app: AppId,
    pub app_type: AppType,
    pub version: u32,
    pub code: Option<CodeLocator>,
}

impl Candidate {
    pub fn from_record(r: &NameRecord) -> Candidate {
        Candidate {
            publisher: Some(r.publisher_hex()),
            app: r.app,
            app_type: r.app_type,
            version: r.version,
            code: Some(r.code.clone()),
        }
    }

    fn describe(&self) -> String {
        match &self.publisher {
            Some(key) => format!(
                "publisher {key} (app {}, version {})",
                self.app, self.version
            ),
            None => format!("this node's own unsigned peerlet (app {})", self.app),
        }
    }
}

/// What a name means here: one app, its type and the code a call carries.
pub type Target = Candidate;

/// Chooses among `records` (from the overlay) and `local` (running here) the
/// one app `wanted` names for a node trusting `trust`; else the error a
/// caller sees, naming the cause and the fix. `asked`: the overlay
/// answered (else only the local peerlets were known).
pub fn choose(
    wanted: &Wanted,
    records: &[NameRecord],
    local: &[Candidate],
    trust: &TrustPolicy,
    asked: bool,
) -> Result<Target, String> {
    let name = &wanted.name;
    let (trusted, untrusted): (Vec<&NameRecord>, Vec<&NameRecord>) =
        records.iter().partition(|r| r.trusted_by(trust));
    let mut by_app: BTreeMap<AppId, Candidate> = BTreeMap::new();
    let all = local
        .iter()
        .cloned()
        .chain(trusted.iter().map(|r| Candidate::from_record(r)));
    for c in all {
        if let Some(p) = &wanted.publisher {
            if c.publisher.as_deref() != Some(p.as_str()) {
                continue;
            }
        }
        match by_app.get(&c.app) {
            Some(old) if old.version >= c.version => {}
            _ => {
                by_app.insert(c.app, c);
            }
        }
    }
    let mut found: Vec<Candidate> = by_app.into_values().collect();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(nothing_named(wanted, &untrusted, asked)),
        _ => {
            found.sort_by(|a, b| a.publisher.cmp(&b.publisher));
            let list: Vec<String> = found.iter().map(Candidate::describe).collect();
            let example = found
                .iter()
                .find_map(|c| c.publisher.clone())
                .map(|k| format!("peerlet.lookup(key, \"{k}/{name}\")"))
                .unwrap_or_else(|| format!("peerlet.lookup(key, \"{}\")", found[0].app));
            Err(format!(
                "peerlet.lookup: the name `{name}` is ambiguous: {} peerlets this node \
                 trusts have it: {}; choose one by publisher, as in {example}, or by its \
                 app id",
                found.len(),
                list.join(" and ")
            ))
        }
    }
}

fn nothing_named(wanted: &Wanted, untrusted: &[&NameRecord], asked: bool) -> String {
    let name = &wanted.name;
    let whose = match &wanted.publisher {
        Some(key) => format!(" by publisher {key}"),
        None => String::new(),
    };
    if !untrusted.is_empty() {
        let keys: Vec<String> = untrusted.iter().map(|r| r.publisher_hex()).collect();
        return format!(
            "peerlet.lookup: no peerlet named `{name}`{whose} that this node trusts: \
             the overlay knows it only from publisher key id(s) {}, which this node \
             does not trust; to call it, trust that key on this node (`--trust \
             KEY.pub`, or a line in DATA/trust.conf) and on the nodes that will run it",
            keys.join(", ")
        );
    }
    if !asked {
        return format!(
            "peerlet.lookup: no peerlet named `{name}`{whose} on this node, and the \
             overlay did not answer for the name (its records' root was unreachable): \
             try again in a few seconds, or call it by app id"
        );
    }
    format!(
        "peerlet.lookup: no peerlet named `{name}`{whose} on this node or in the \
         overlay: no publisher has published that name; install it somewhere \
         (`.load FILE`, or `--load FILE.lua` signed) or check the spelling"
    )
}

/// A name's records as the overlay last gave them.
pub struct Cached {
    pub records: Vec<NameRecord>,
    pub runners: Vec<(Runner, u64)>,
    pub at: Time,
}

/// The records this node asked for, by name. Bounded: past `MAX_CACHED`
/// names the oldest answer is dropped.
#[derive(Default)]
pub struct NameCache {
    names: BTreeMap<String, Cached>,
}

const MAX_CACHED: usize = 1024;

impl NameCache {
    /// The records of `name` if asked for within `ttl` of `now`.
    pub fn fresh(&self, name: &str, now: Time, ttl: Duration) -> Option<&Cached> {
        self.names.get(name).filter(|c| now.since(c.at) < ttl)
    }

    pub fn get(&self, name: &str) -> Option<&Cached> {
        self.names.get(name)
    }

    pub fn insert(&mut self, name: String, cached: Cached) {
        if self.names.len() >= MAX_CACHED && !self.names.contains_key(&name) {
            let oldest = self
                .names
                .iter()
                .min_by_key(|(_, c)| c.at)
                .map(|(n, _)| n.clone());
            if let Some(n) = oldest {
                self.names.remove(&n);
            }
        }
        self.names.insert(name, cached);
    }

    /// The newest record this node knows for app `app`, from any name.
    pub fn record_of(&self, app: AppId) -> Option<&NameRecord> {
        self.names
            .values()
            .flat_map(|c| c.records.iter())
            .filter(|r| r.app == app)
            .max_by_key(|r| r.version)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.keys().map(String::as_str)
    }
}
