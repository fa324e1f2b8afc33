//! The subcommands of the `peerlet` binary, one file each.

pub mod sim;
