//! Peerlets: signed Lua applications, each in its own sandboxed Lua state.
//!
//! Modules:
//! - [`header`]: the `--@peerlet name=… type=… version=…` first line.
//! - [`package`]: source + detached minisign signature; transfer encoding and code hash.
//! - [`verified`]: signature checks, and the [`verified::VerifiedPackage`] they yield.
//! - [`publisher`], [`secret_key`]: minisign public and secret key files.
//! - [`signing`]: keygen, sign and verify on files (the CLI's library side).
//! - [`trust`], [`policy_file`], [`refusal`]: whose code a node runs, and what it refused.
//! - [`store`]: a peerlet's small persistent store.
//! - [`Sandbox`] and friends: one Lua 5.4 state per peerlet, holding what the
//!   script can reach and what it can spend.
//!
//! Defences, one line per threat (details in each module):
//! - Host escape (files, processes, modules, debug): only `coroutine`,
//!   `table`, `string`, `utf8`, `math` are opened; `dofile`, `loadfile`,
//!   `load`, `require`, `string.dump` are removed; `collectgarbage` only
//!   counts ([`stdlib`]).
//! - Bytecode: chunks starting with `"\x1bLua"` are refused and the compiler
//!   runs in text mode; no `load` is left to the script.
//! - Runaway loops, in any coroutine, under `pcall`/`xpcall`: a global count
//!   hook, sticky once the budget is spent and re-armed on every
//!   instruction and call ([`budget`]).
//! - Code that runs with hooks off: metatables with `__gc` (finalizers) are
//!   refused; `xpcall` handlers are skipped once the budget is spent;
//!   coroutines aborted by the hook can never be closed (their `__close`
//!   handlers would run unhooked); `__close` and `__mode` are refused in
//!   `setmetatable`.
//! - Memory: `Lua::set_memory_limit`; after an abort the collector runs; a
//!   stopped peerlet's state is dropped.
//! - C functions the hook cannot interrupt: `string.rep`, `string.format`,
//!   `table.concat` sizes are checked before the call; pattern functions get
//!   a work bound from the subject and pattern ([`pattern`]); `table.unpack`
//!   counts are bounded; `table.insert`/`remove`/`move` are done in Lua; sorting
//!   a table with `__len`/`__index` is refused.
//! - The string metatable: hidden (`getmetatable("")` is `false`), and
//!   `s:find` goes through the same wrapped `string` table.
//! - Values to and from the host: raw access only, no metamethods; refusals
//!   name the problem ([`value`]).
//! - Suspending host calls: a private mark travels up through the script's
//!   coroutines; the script never sees it and cannot forge a reply.
//! - Repeat offenders: every abort is a strike; after `Limits::strikes` the
//!   sandbox stops the peerlet.
//!
//! Known gaps: a metatable may gain `__mode`/`__close` *after*
//! `setmetatable` (only the worst `__close` case is closed off, see
//! [`budget`]); a single C call between two checks (e.g. a `gsub` with a
//! large result) is bounded by the memory limit rather than by time.

pub mod app;
mod budget;
mod error;
pub mod header;
pub mod host;
mod limits;
pub mod manager;
pub mod package;
mod pattern;
pub mod policy_file;
pub mod publisher;
pub mod refusal;
mod sandbox;
pub mod secret_key;
pub mod signing;
mod stdlib;
pub mod store;
pub mod trust;
mod value;
pub mod verified;

#[cfg(test)]
mod verify_tests;

pub use app::ManagerApp;
pub use error::SandboxError;
pub use limits::Limits;
pub use manager::{InstallError, Manager, ManagerConfig, Peerlet, PeerletStats};
pub use sandbox::{CallId, Sandbox, UpcallOutcome};
pub use value::{cbor_to_lua, lua_to_cbor, ValueError, ValueErrorKind};
