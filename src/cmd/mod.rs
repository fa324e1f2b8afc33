//! The subcommands of the `peerlet` binary, one file each: each has the
//! subcommand's clap `Args` and a `run(args)` that `main` calls. `fleet`
//! is the nodes `demo` and `testnet` run in one process, with their
//! consoles' fault commands.

pub mod demo;
pub mod fleet;
pub mod keygen;
mod log_file;
pub mod node;
pub mod repl;
pub mod seeds;
pub mod sign;
pub mod sim;
pub mod testnet;
pub mod verify;
pub mod web_args;

use std::path::Path;
use std::sync::mpsc::Receiver;
use std::time::Duration;

use log_file::{RotatingFile, MAX_LOG_BYTES};

fn filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
}

/// Logs to stderr with tracing and, given a file, to that file too (rotated
/// at 8 MiB, one previous file kept: see `log_file.rs`); `RUST_LOG` filters
/// (default `info`). The control socket's log tap rides along, with its own
/// level (`.log LEVEL`, see [`crate::control::log_tap`]).
pub fn init_logging(file: Option<&Path>) -> std::io::Result<()> {
    use std::io::IsTerminal;
    use tracing_subscriber::layer::{Layer, SubscriberExt};
    use tracing_subscriber::util::SubscriberInitExt;
    let stderr = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_filter(filter());
    let file = match file {
        Some(path) => Some(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(RotatingFile::open(
                    path,
                    MAX_LOG_BYTES,
                )?))
                .with_filter(filter()),
        ),
        None => None,
    };
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .with(crate::control::log_tap::layer())
        .try_init();
    Ok(())
}

/// Logs to `path` only (rotated as above; `RUST_LOG` filters, default
/// `info`), for commands whose terminal belongs to a REPL.
pub fn init_logging_to_file(path: &Path) -> std::io::Result<()> {
    use tracing_subscriber::layer::{Layer, SubscriberExt};
    use tracing_subscriber::util::SubscriberInitExt;
    let file = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(RotatingFile::open(
            path,
            MAX_LOG_BYTES,
        )?));
    let _ = tracing_subscriber::registry()
        .with(file.with_filter(filter()))
        .with(crate::control::log_tap::layer())
        .try_init();
    Ok(())
}

/// How long a node may take to leave the ring after a stop signal before
/// the process ends anyway.
const LEAVE_LIMIT: Duration = Duration::from_millis(1500);

/// SIGINT and SIGTERM, as a channel. With `stop_peerlets`, a signal also
/// kills every running peerlet upcall at once ([`crate::sandbox::shut_down`])
/// and, should leaving still take longer than 1.5 s, ends the process: a
/// node always stops within 2 s of being told, whatever its peerlets do.
pub fn stop_signals(stop_peerlets: bool) -> Result<Receiver<()>, ctrlc::Error> {
    let (tx, rx) = std::sync::mpsc::channel();
    ctrlc::set_handler(move || {
        if stop_peerlets {
            crate::sandbox::shut_down();
            std::thread::spawn(|| {
                std::thread::sleep(LEAVE_LIMIT);
                tracing::warn!("leaving took longer than {LEAVE_LIMIT:?}: exiting now");
                std::process::exit(0);
            });
        }
        let _ = tx.send(());
    })?;
    Ok(rx)
}
