//! The subcommands of the `peerlet` binary, one file each: each has the
//! subcommand's clap `Args` and a `run(args)` that `main` calls.

pub mod keygen;
pub mod node;
pub mod repl;
pub mod sign;
pub mod sim;
pub mod testnet;
pub mod verify;

/// Logs to stderr with tracing; `RUST_LOG` filters (default `info`). The
/// control socket's log tap rides along, with its own level (`.log LEVEL`,
/// see [`crate::control::log_tap`]).
pub fn init_logging() {
    use std::io::IsTerminal;
    use tracing_subscriber::layer::{Layer, SubscriberExt};
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let stderr = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_filter(filter);
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(crate::control::log_tap::layer())
        .try_init();
}
