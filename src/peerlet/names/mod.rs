//! Peerlet names across the overlay: installing signed code publishes a
//! [`NameRecord`] (publisher, name → app id, newest version, code locator)
//! under the name's key, kept and replicated like code; any node resolves
//! `peerlet.lookup(key, "vote")` among the publishers it trusts, and the
//! call carries the code locator, so the key's root deploys the code if it
//! lacks it. Nodes running signed code ask about its name every
//! `refresh` and upgrade when a newer version is published.
//!
//! Here: `record.rs`, the record and the messages ([`NAME_APP`]);
//! `store.rs`, the records kept for the overlay; `resolve.rs`, what a name
//! means to this node and the errors when it means nothing or too much;
//! `state.rs`, what the manager keeps; `ask.rs`, asking and parking calls;
//! `follow.rs`, following new versions; `versions.rs`,
//! `.versions`. docs/design.md §6a tells the whole story.

mod ask;
mod follow;
pub mod record;
pub mod resolve;
pub mod state;
pub mod store;
mod versions;

pub use record::{name_key, NameMsg, NameRecord, Runner, NAME_APP};
pub use resolve::{choose, Candidate, NamesConfig, Wanted};
pub use state::Names;
pub use store::NameStore;
