//! Peerlets: signed Lua applications, each in its own sandboxed Lua state.
//!
//! - [`header`]: the `--@peerlet name=… type=… version=…` first line.
//! - [`package`]: source + detached minisign signature; transfer encoding and code hash.
//! - [`verified`]: signature checks, and the [`verified::VerifiedPackage`] they yield.
//! - [`publisher`], [`secret_key`]: minisign public and secret key files.
//! - [`signing`]: keygen, sign and verify on files (the CLI's library side).
//! - [`trust`], [`policy_file`], [`refusal`]: whose code a node runs, and what it refused.
//! - [`store`]: a peerlet's small persistent store.

pub mod header;
pub mod package;
pub mod policy_file;
pub mod publisher;
pub mod refusal;
pub mod secret_key;
pub mod signing;
pub mod store;
pub mod trust;
pub mod verified;

#[cfg(test)]
mod verify_tests;
