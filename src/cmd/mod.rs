//! The subcommands of the `peerlet` binary, one file each: each has the
//! subcommand's clap `Args` and a `run(args)` that `main` calls.

pub mod keygen;
pub mod sign;
pub mod sim;
pub mod verify;
