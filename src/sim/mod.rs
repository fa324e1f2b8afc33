//! The simulator: the same Chord core over an in-memory network in virtual
//! time, for tests and for `peerlet sim` at up to 100,000 nodes.

pub mod experiment;
pub mod net;
pub mod oracle;
pub mod rng;

pub use experiment::{Experiment, Report};
pub use net::{SimConfig, SimNet};
pub use oracle::Oracle;
pub use rng::Rng;
