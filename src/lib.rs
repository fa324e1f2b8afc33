//! peerlet: a programmable structured peer-to-peer overlay.
#![forbid(unsafe_code)]

pub mod chord;
pub mod cmd;
pub mod id;
pub mod kbr;
pub mod net;
pub mod node;
pub mod sim;
pub mod wire;
