//! Peerlets: signed Lua applications, each in its own sandboxed Lua state.

pub mod store;
