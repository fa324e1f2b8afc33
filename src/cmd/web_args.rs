//! The web view's options, shared by `node`, `testnet` and `demo`
//! (`--http ADDR`, `--sim-runs DIR`), and starting it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::web::{NodeSet, WebServer};

/// Serve the web view (see README: "Watching the ring in a browser").
#[derive(clap::Args, Debug, Clone, Default)]
pub struct WebArgs {
    /// Serve a live web view of the ring at ADDR (IP:PORT, or a PORT alone
    /// for 127.0.0.1:PORT; port 0: any free port). Read-only; it answers
    /// only requests naming it by IP address or localhost.
    #[arg(long, value_name = "ADDR", value_parser = parse_http_addr)]
    pub http: Option<SocketAddr>,
    /// Also show the SVG plots of this simulator run directory (read-only).
    #[arg(long, value_name = "DIR", requires = "http")]
    pub sim_runs: Option<PathBuf>,
}

impl WebArgs {
    /// Starts the web view of `nodes` if `--http` was given (or `default`,
    /// for the demo, which always serves it).
    pub fn start(
        &self,
        default: Option<SocketAddr>,
        nodes: Arc<dyn NodeSet>,
    ) -> Result<Option<WebServer>, String> {
        let Some(addr) = self.http.or(default) else {
            return Ok(None);
        };
        if let Some(dir) = &self.sim_runs {
            if !dir.is_dir() {
                return Err(format!("--sim-runs {}: not a directory", dir.display()));
            }
        }
        let server = crate::web::serve(addr, nodes, self.sim_runs.clone())
            .map_err(|e| format!("--http {addr}: cannot listen: {e}"))?;
        if !addr.ip().is_loopback() {
            tracing::warn!(
                "the web view listens on {addr}, beyond this machine: anyone who reaches it can watch the ring"
            );
        }
        Ok(Some(server))
    }
}

/// `IP:PORT`, or a port alone for 127.0.0.1.
fn parse_http_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse().map_err(|_| {
        format!("`{s}`: want IP:PORT (127.0.0.1:8080, [::1]:8080, 0.0.0.0:8080) or a port")
    })
}
