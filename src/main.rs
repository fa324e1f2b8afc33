//! The `peerlet` command line.

use clap::{Parser, Subcommand};
use peerlet::cmd;

/// peerlet: a programmable structured peer-to-peer overlay.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start a local overlay with the sample peerlets and a REPL on node 0.
    Demo(cmd::demo::Args),
    /// Run a node of the overlay.
    Node(cmd::node::Args),
    /// Attach an interactive Lua console to a running node.
    Repl(cmd::repl::Args),
    /// Start N nodes on loopback in this process.
    Testnet(cmd::testnet::Args),
    /// Simulate a ring of many nodes over a virtual network.
    Sim(cmd::sim::Args),
    /// Make a publisher key pair (minisign format, unencrypted).
    Keygen(cmd::keygen::Args),
    /// Sign a peerlet: writes FILE.lua.minisig, as `minisign -S` would.
    Sign(cmd::sign::Args),
    /// Check a peerlet's signature and header; prints its app id.
    Verify(cmd::verify::Args),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => cmd::demo::run(args),
        Command::Node(args) => cmd::node::run(args),
        Command::Repl(args) => cmd::repl::run(args),
        Command::Testnet(args) => cmd::testnet::run(args),
        Command::Sim(args) => cmd::sim::run(args),
        Command::Keygen(args) => cmd::keygen::run(args),
        Command::Sign(args) => cmd::sign::run(args),
        Command::Verify(args) => cmd::verify::run(args),
    };
    if let Err(e) = result {
        eprintln!("peerlet: {e}");
        std::process::exit(1);
    }
}
