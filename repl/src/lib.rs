//! peerlet-repl: the console of a peerlet node, `peerlet repl`.
//!
//! The lowest layer of the console: it knows the control protocol and the
//! person at the terminal, and nothing of the node. The node crate
//! (`peerlet`) depends on it for the protocol and implements its
//! [`Transport`] for the node's Unix control socket with the node's own frame
//! codec; the `peerlet` binary runs the editor.
//!
//! | module | owns |
//! |---|---|
//! | [`protocol`] | what a console asks ([`Request`]) and a node answers ([`Response`]) |
//! | [`transport`] | [`Transport`] and [`Connection`]: how the console reaches a node, implemented by the node crate |
//! | [`meta`] | the meta commands (`.peers`, `.load FILE`, ...) as one table: `.help`, completion and parsing read it |
//! | [`client`] | the console without the editor: `peerlet repl -e`, Ctrl-C's interrupt |
//! | [`log`] | following the node's log on a second connection (`.log`) |
//! | [`short_ids`] | node ids in printed tables, cut to their shortest unambiguous prefix |
//! | [`completion`] | what Tab offers |
//! | `multiline` | (feature `editor`) when a Lua chunk is complete, by compiling it |
//! | `input` | (feature `editor`) rustyline's helper: multi-line input and completion |
//! | `editor` | (feature `editor`) the interactive loop, [`run`] |
//!
//! A line flows: the editor reads it (continuing while `multiline` says the
//! chunk is unfinished), [`meta::parse`] makes it a [`Request`] (or `.help`),
//! the [`Connection`] carries it to the node and back, and the answer is
//! printed, ids shortened.
#![forbid(unsafe_code)]

pub mod client;
pub mod completion;
pub mod log;
pub mod meta;
pub mod protocol;
pub mod short_ids;
pub mod transport;

#[cfg(feature = "editor")]
mod editor;
#[cfg(feature = "editor")]
mod input;
#[cfg(feature = "editor")]
mod multiline;

pub use client::{eval_once, interrupt};
#[cfg(feature = "editor")]
pub use editor::run;
pub use protocol::{NodeChoice, Request, Response};
pub use transport::{Connection, Transport};
