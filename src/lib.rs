//! peerlet: a programmable structured peer-to-peer overlay.
#![forbid(unsafe_code)]
