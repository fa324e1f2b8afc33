//! peerlet: a programmable structured peer-to-peer overlay.
#![forbid(unsafe_code)]

pub mod id;
pub mod peerlet;
pub mod wire;
