//! The peerlet runtime: installing, running and deploying peerlets on a node.
//!
//! - [`manager`] holds a node's peerlets; `install.rs` installs, reloads and
//!   unloads them; [`app`] is the KBR layer's default application, turning
//!   messages into upcalls and remote calls into replies.
//! - [`host`]: the Lua host API (`kbr`, `peerlet`, `timer`, `clock`, `log`,
//!   `store`), registered on each peerlet's [`Sandbox`](crate::sandbox::Sandbox).
//! - [`deploy`], [`code_store`], `signed.rs`: code fetched by the code
//!   locator and started on demand; the overlay's own code store; signed
//!   installs.
//! - [`names`]: peerlet names across the overlay: records published at
//!   install, resolved for `peerlet.lookup(key, "name")` on any node, new
//!   versions followed.
//! - [`store`]: a peerlet's small persistent store.
//! - [`console`], [`pretty`]: the REPL's console, a peerlet fed line by
//!   line, and how its values print.
//!
//! The sandbox itself is [`crate::sandbox`]; signed code, keys and trust are
//! [`crate::package`]. docs/design.md tells how they fit together.

pub mod app;
mod backlog;
pub mod code_store;
pub mod console;
pub mod deploy;
pub mod host;
mod install;
pub mod manager;
pub mod names;
pub mod pretty;
pub mod share;
mod signed;
pub mod store;

pub use app::ManagerApp;
pub use manager::{InstallError, Manager, ManagerConfig, Peerlet, PeerletSpec, PeerletStats};
