//! Peerlets: signed Lua applications, each in its own sandboxed Lua state.
//!
//! Modules:
//! - [`manager`], `install`, [`app`]: installing, running, reloading peerlets;
//!   their upcalls and remote calls as the KBR layer's default application.
//! - [`deploy`], [`code_store`], `signed`: code fetched by the code locator and
//!   started on demand; the overlay's own code store; signed installs.
//! - [`host`]: the Lua host API (`kbr`, `peerlet`, `timer`, `clock`, `log`, `store`).
//! - [`header`]: the `--@peerlet name=… type=… version=…` first line.
//! - [`package`]: source + detached minisign signature; transfer encoding and code hash.
//! - [`verified`]: signature checks, and the [`verified::VerifiedPackage`] they yield.
//! - [`publisher`], [`secret_key`]: minisign public and secret key files.
//! - [`signing`]: keygen, sign and verify on files (the CLI's library side).
//! - [`trust`], [`policy_file`], [`refusal`]: whose code a node runs, and what it refused.
//! - [`store`]: a peerlet's small persistent store.
//! - [`console`], [`pretty`]: the REPL's console, a peerlet fed line by line,
//!   and how its values print.
//! - [`Sandbox`] and friends: one Lua 5.4 state per peerlet, holding what the
//!   script can reach and what it can spend.
//!
//! The host creates a [`Sandbox`], registers its API on [`Sandbox::lua`],
//! [`load`](Sandbox::load)s the peerlet's source, then drives upcalls with
//! [`Sandbox::start_upcall`] / [`Sandbox::resume`]. Values cross between
//! Lua and the wire through [`lua_to_cbor`] / [`cbor_to_lua`].
//!
//! Defences, one line per threat (details in each module):
//! - Host escape (files, processes, modules, debug): only `coroutine`,
//!   `table`, `string`, `utf8`, `math` are opened; `dofile`, `loadfile`,
//!   `load`, `require`, `string.dump` are removed; `collectgarbage` only
//!   counts (`stdlib.rs`).
//! - Bytecode: chunks starting with `"\x1bLua"` are refused and the compiler
//!   runs in text mode; no `load` is left to the script.
//! - Runaway loops, in any coroutine, under `pcall`/`xpcall`: a global count
//!   hook; once the budget is spent it stops each thread by yielding it (so
//!   nothing can catch it) or, where Lua cannot yield, by a sticky error
//!   re-armed on every instruction and call (`budget.rs`).
//! - Code that would run with hooks off: metatables with `__gc`, `__close`
//!   or `__mode` are refused; `xpcall` handlers are skipped once the budget
//!   is spent; `__close` handlers added later are defused before the hook
//!   raises; coroutines the hook raised in can never be closed.
//! - Work no instruction shows (collections, C calls): a wall-clock
//!   backstop per activation, checked at each hook call
//!   ([`Limits::upcall_time`]).
//! - Memory: `Lua::set_memory_limit`; a state still near its limit after a
//!   full collection is killed at the next hook call (else every allocation
//!   becomes a full collection); the collector runs after each abort; a
//!   stopped peerlet's state is dropped.
//! - C functions the hook cannot interrupt: `string.rep`, `string.format`,
//!   `table.concat` result sizes are checked before the call; pattern
//!   functions get a work bound from subject and pattern (`pattern.rs`);
//!   `table.unpack` counts are bounded; `table.insert`/`remove`/`move` run
//!   in Lua; sorting a table with `__len`/`__index` is refused.
//! - The string metatable: hidden (`getmetatable("")` is `false`); `s:find`
//!   goes through the same wrapped `string` table.
//! - Swapped globals: the wrappers captured everything they call, so a
//!   script's own `pcall` never receives a raw C function.
//! - Values to and from the host: raw access only, no metamethods run;
//!   refusals name the problem and where (`value.rs`).
//! - Suspending host calls: a private mark travels up through the script's
//!   coroutines; the script never sees it and cannot forge a reply.
//! - Reused upcall threads: only a thread whose upcall returned cleanly is
//!   kept for the next upcall (`upcall.rs`); one the budget stopped or an
//!   error ended is dropped, so no thread with hooks off runs again.
//! - Repeat offenders: every limit abort is a strike; after
//!   [`Limits::strikes`] the sandbox stops the peerlet and frees its state.
//!
//! Known gaps: a metatable may gain `__mode` after `setmetatable` (weak
//! tables are refused only at `setmetatable`; adversarial ephemeron tables
//! can make one collection slow); one C call between two checks (a `gsub`
//! with a large result) is bounded by the memory limit, not by time; and a
//! sandbox is a Lua state in the node's thread, so a bug in Lua or mlua that
//! never returns cannot be killed from outside (that needs a worker thread
//! or process).

pub mod app;
mod budget;
pub mod code_store;
pub mod console;
pub mod deploy;
mod error;
pub mod header;
pub mod host;
mod install;
mod limits;
pub mod manager;
pub mod package;
mod pattern;
pub mod policy_file;
pub mod pretty;
pub mod publisher;
pub mod refusal;
mod sandbox;
pub mod secret_key;
mod signed;
pub mod signing;
mod stdlib;
pub mod store;
pub mod trust;
mod upcall;
mod value;
pub mod verified;

#[cfg(test)]
mod verify_tests;

pub use app::ManagerApp;
pub use error::SandboxError;
pub use limits::Limits;
pub use manager::{InstallError, Manager, ManagerConfig, Peerlet, PeerletSpec, PeerletStats};
pub use sandbox::Sandbox;
pub use upcall::{CallId, UpcallOutcome};
pub use value::{cbor_to_lua, decode_array, encode_array, lua_to_cbor, ValueError, ValueErrorKind};
