//! Deployment on demand: a message for an app this node does not run, but
//! whose code locator names signed code, makes the node fetch that code,
//! check it and start it, at the root for end-node apps and at every hop
//! for per-hop apps (PROST's central promise).
//!
//! - **Fetch**: first from the overlay's code store (a `Get` routed to
//!   [`code_key`](crate::peerlet::code_store::code_key)), then from the origin node the locator names, turn and
//!   turn about, `attempts` times in all with a growing pause; a source that
//!   sends bytes of another hash (or too many) counts as a failed attempt.
//!   Concurrent messages for the same code share one fetch.
//! - **Hold**: meanwhile the messages wait in one bounded queue per code
//!   hash, in arrival order. A per-hop message is held at the hop: its
//!   `forward` upcall runs once the code does, then it routes on.
//! - **Check**: [`TrustPolicy::admit`](crate::package::trust::TrustPolicy::admit) (size, hash, encoding, signature by
//!   a trusted publisher, app type allowed, app id = key ‖ name), before
//!   anything of the code runs.
//! - **Refuse**: a node that will not run the code remembers that (by hash)
//!   and never fetches it again. A per-hop message then goes on unchanged
//!   (graceful degradation); an end-node message or call goes on to the
//!   next member of the key's replica set, and when every one of them
//!   refuses, its sender gets an [`AppKind::Undelivered`](crate::wire::AppKind::Undelivered) (a call: an error
//!   reply).
//! - **Update**: a message whose locator names other code than the running
//!   version's is held while that code is fetched; if it is a newer version
//!   of the same app it replaces the running one (with `save`/`restore`),
//!   an older one is remembered as superseded and never fetched again.
//! - **Give up**: after the last attempt the held messages are dropped with
//!   a report (per-hop ones go on unchanged), and senders are told.
//!
//! Here: `admit.rs`, admission, holding, checking and starting;
//! `deployer.rs`, what deployment keeps; `fetch.rs`, the requests for code;
//! `refuse.rs`, passing refused messages on.

mod admit;
mod deployer;
mod fetch;
mod refuse;

pub use deployer::{DeployConfig, Deployer, Deployment};
