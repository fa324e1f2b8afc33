//! The subcommands of the `peerlet` binary, one file each: each has the
//! subcommand's clap `Args` and a `run(args)` that `main` calls.

pub mod demo;
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

/// Logs to `path` (appended; `RUST_LOG` filters, default `info`), for
/// commands whose terminal belongs to a REPL.
pub fn init_logging_to_file(path: &std::path::Path) -> std::io::Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init();
    Ok(())
}
