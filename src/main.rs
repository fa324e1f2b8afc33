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
    /// Run a node of the overlay.
    Node(cmd::node::Args),
    /// Start N nodes on loopback in this process.
    Testnet(cmd::testnet::Args),
    /// Simulate a ring of many nodes over a virtual network.
    Sim(cmd::sim::Args),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Node(args) => cmd::node::run(args),
        Command::Testnet(args) => cmd::testnet::run(args),
        Command::Sim(args) => cmd::sim::run(args),
    };
    if let Err(e) = result {
        eprintln!("peerlet: {e}");
        std::process::exit(1);
    }
}
