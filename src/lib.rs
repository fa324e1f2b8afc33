//! peerlet: a programmable structured peer-to-peer overlay.
//!
//! A Chord node offers key-based routing (the common KBR API of Dabek et al.);
//! applications on top of it are *peerlets*, small signed Lua scripts run in
//! sandboxes. The crate follows the layers of docs/design.md (each module
//! imports only its own layer and those below; tests/layout.rs checks it):
//!
//! | module | owns |
//! |---|---|
//! | [`id`] | 160-bit ring ids and keys, 128-bit app ids, ring arithmetic |
//! | [`time`] | time as the sans-IO core takes it (virtual in the simulator) |
//! | [`wire`] | every message nodes exchange, and its framing (length + CBOR) |
//! | [`routing`] | what any routing core reports upwards: transmits, lookup results, liveness |
//! | [`chord`] | the Chord protocol as a sans-IO state machine: ring state, maintenance, routing decisions, per-hop acks |
//! | [`kbr`] | the common API over the core: `route`, `forward`/`deliver`/`update` upcalls, `replica_set`, `range`, ...; `kbr::view`, the read-only routing view everything above reads; `kbr::trace`, the route tracer behind `.trace` |
//! | [`net`] | the TCP transport: framed connections, per-peer bounded writer queues |
//! | [`node`] | a running node: transport + KBR + peerlets on one thread, reached through a `NodeHandle`; `node::load`, reading a peerlet file and how it is signed (`--load`, `.load`) |
//! | [`package`] | signed code, with no Lua: the package and its header, publisher keys, signing, signature checks, the trust policy, refusals |
//! | [`sandbox`] | the Lua sandbox: one state per peerlet, the stripped library, the instruction budget, memory limits, upcall threads, values to and from CBOR |
//! | [`peerlet`] | the runtime: the manager, the host API, deployment by traffic, the code store, peerlet names across the overlay, the console, the per-peerlet store, each peerlet's share of the node |
//! | [`sim`] | an in-memory network in virtual time driving the same core; `peerlet sim` |
//! | [`control`] | the control socket: a local Unix socket taking the console's requests (eval Lua in the console, peers, apps, load, trace, ...) in the nodes' frames; `control::client`, the console's transport to it; `control::log_tap`, the tracing layer that streams the log to consoles |
//! | `web` | (feature `web`, on with `cli`) the web view (`--http ADDR`): a page showing the ring, each node's apps, queues and traffic, and traced paths, live (hyper on smol, server-sent events); read-only, guarded by Host and Origin checks |
//! | `cmd` | (feature `cli`) the subcommands of the `peerlet` binary, one file each |
//!
//! The console itself (protocol, meta commands, completion, line editor) is
//! the crate `peerlet-repl` in `repl/`, below this one: the node depends on
//! it for the protocol types, and builds without its line editor when the
//! `cli` feature is off.
//!
//! How a routed message flows: a driver (the simulator or the TCP node)
//! hands an incoming `Route` frame to [`kbr::Kbr::handle_message`]; the Chord
//! core acknowledges the hop and reports it; the KBR layer asks the core for
//! the next hop, lets the message's application see it (`forward`), then
//! either delivers it here (`deliver`) or gives it back to the core to send
//! one hop further, which the driver then puts on the wire.
#![forbid(unsafe_code)]

pub mod chord;
#[cfg(feature = "cli")]
pub mod cmd;
pub mod control;
pub mod id;
pub mod kbr;
pub mod net;
pub mod node;
pub mod package;
pub mod peerlet;
pub mod routing;
pub mod sandbox;
pub mod sim;
pub mod time;
#[cfg(feature = "web")]
pub mod web;
pub mod wire;
