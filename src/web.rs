//! The web view (`--http ADDR`): a page that shows the ring, each node's
//! apps, queues and traffic, and traced message paths, live.
//!
//! One thread runs a small smol executor with hyper's HTTP/1 server
//! (`server.rs`). Every request first passes the Host and Origin checks
//! (`guard.rs`); then `routes.rs` answers it: the embedded page
//! (`assets.rs`), one snapshot of the nodes (`snapshot.rs`, made from the
//! same routing view, peerlet counters and queue depths the console's
//! `.ring`, `.apps` and `.stats` read), a stream of them as server-sent
//! events (`events.rs`), a trace (the console's `.trace`, `trace.rs`), and the SVG plots
//! of simulator runs (`sim_runs.rs`). Which nodes it shows is a
//! [`NodeSet`] (`nodes.rs`): every node of the process in `testnet` and
//! `demo`, the one node in `peerlet node`. It is read-only: it runs no
//! Lua and changes nothing (a trace routes a probe, as `.trace` does).
//! docs/design.md §"The web view" tells how updates flow.

mod assets;
mod events;
mod guard;
mod nodes;
mod routes;
mod server;
mod sim_runs;
mod snapshot;
mod trace;

pub use guard::Guard;
pub use nodes::NodeSet;
pub use server::{serve, WebServer};
pub use snapshot::RingSnapshot;
pub use trace::TraceView;
