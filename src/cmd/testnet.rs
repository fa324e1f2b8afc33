//! `peerlet testnet N`: a ring of N nodes in this process on 127.0.0.1, for
//! trying things out. The first node creates the ring and the others join
//! through it; each is printed as `ADDR ID` once all are joined (then,
//! with `--http ADDR`, `web view URL`: the page shows every node). Each
//! node has a console at `DIR/nodes/N/control.sock` (`peerlet repl` it),
//! with the fault commands of [`super::fleet`]. Ctrl-C (or SIGTERM) makes
//! every node leave gracefully.

use std::net::SocketAddr;
use std::time::Duration;

use std::sync::Arc;

use super::fleet::LocalFleet;
use crate::net::cut::Cut;
use crate::node::{Node, NodeConfig, NodeHandle};

/// Start a local ring of N nodes.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Number of nodes.
    pub nodes: usize,
    /// Port of the first node; the others take the following ports.
    /// Default: any free ports.
    #[arg(long)]
    pub base_port: Option<u16>,
    /// Install this peerlet on every node once the ring is up: signed when
    /// FILE.lua.minisig exists (its publisher must be trusted), else as each
    /// node's own, unsigned. Repeatable.
    #[arg(long, value_name = "FILE.lua")]
    pub load: Vec<std::path::PathBuf>,
    /// Run peerlets signed by this publisher key (a minisign .pub file). Repeatable.
    #[arg(long, value_name = "KEY.pub")]
    pub trust: Vec<std::path::PathBuf>,
    /// Where the nodes' consoles listen (DIR/nodes/N/control.sock; wiped
    /// at start). Default: $PEERLET_HOME/testnet.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub wan: WanArgs,
    #[command(flatten)]
    pub web: super::web_args::WebArgs,
    #[command(flatten)]
    pub tuning: super::node::Tuning,
}

/// A wide-area network emulated on this machine (`testnet`, `demo`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct WanArgs {
    /// One-way latency between two nodes, fixed per pair within the range
    /// (e.g. 20ms, 5-50ms): `.trace` then shows wide-area times.
    #[arg(long, value_name = "RANGE", value_parser = crate::net::wan::parse_latency)]
    pub latency: Option<(Duration, Duration)>,
    /// Share of frames lost between two nodes (0 to 1).
    #[arg(long, value_name = "P", value_parser = crate::net::wan::parse_loss)]
    pub loss: Option<f64>,
}

impl WanArgs {
    /// Turns the emulation on in `cfg` if a latency or loss was given.
    pub fn apply(&self, cfg: &mut NodeConfig) {
        if self.latency.is_none() && self.loss.is_none() {
            return;
        }
        let latency = self.latency.unwrap_or_default();
        cfg.tcp.wan = Some(crate::net::wan::Wan {
            latency,
            loss: self.loss.unwrap_or(0.0),
            seed: 1,
        });
        // Upkeep and hops must outlast a round trip of the slowest pair.
        let round_trip = latency.1 * 2;
        let at_least = |d: &mut Duration| *d = (*d).max(round_trip * 4);
        at_least(&mut cfg.chord.rpc_timeout);
        at_least(&mut cfg.chord.hop_timeout);
    }
}

pub fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    super::init_logging(None)?;
    if args.nodes == 0 {
        return Err("N must be at least 1".into());
    }
    if let Some(p) = args.base_port {
        if p.checked_add(args.nodes as u16 - 1).is_none() {
            return Err(format!("--base-port {p} leaves no room for {} nodes", args.nodes).into());
        }
    }
    crate::package::trust::TrustPolicy::load(None, &args.trust)?;
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => crate::package::signing::default_key_dir()?.join("testnet"),
    };
    super::node::create_private_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let consoles = dir.join("nodes");
    if consoles.exists() {
        std::fs::remove_dir_all(&consoles).map_err(|e| format!("{}: {e}", consoles.display()))?;
    }
    let stop = super::stop_signals(true)?;
    let cut = Cut::default();
    let args = Arc::new(args);
    let start = {
        let (args, cut) = (args.clone(), cut.clone());
        Box::new(move |i: usize, join| start_node(&args, &cut, i, join))
    };
    let fleet = LocalFleet::start(args.nodes, &dir, cut, start)?;
    let nodes = fleet.all();
    let web = args.web.start(None, fleet.clone())?;
    for node in &nodes {
        println!("{} {}", node.addr(), node.id());
    }
    let handles: Vec<&NodeHandle> = nodes.iter().map(|n| n.as_ref()).collect();
    super::node::load_peerlets(&handles, &args.load)?;
    if let Some(web) = &web {
        println!("web view {}", web.url());
    }
    tracing::info!(
        "{} nodes running; consoles: peerlet repl {}/N/control.sock; Ctrl-C to stop",
        nodes.len(),
        consoles.display()
    );
    let _ = stop.recv();
    tracing::info!("leaving");
    drop(web);
    fleet.stop();
    Ok(())
}

/// Node `i` of the testnet, on the port after the base port's `i`th (or
/// any free port), joining `join`.
fn start_node(
    args: &Args,
    cut: &Cut,
    i: usize,
    join: Option<SocketAddr>,
) -> Result<NodeHandle, String> {
    let port = match args.base_port {
        Some(p) => p
            .checked_add(i as u16)
            .ok_or_else(|| format!("--base-port {p} leaves no room for node {i}"))?,
        None => 0,
    };
    let listen = SocketAddr::from(([127, 0, 0, 1], port));
    let mut cfg = NodeConfig::new(listen);
    cfg.join = join;
    // Lab mode, so a node started by hand with --id --lab may join.
    cfg.tcp.link.lab = true;
    args.tuning.apply(&mut cfg);
    args.wan.apply(&mut cfg);
    cfg.tcp.cut = Some(cut.clone());
    cfg.trust_files = args.trust.clone();
    Node::spawn(cfg).map_err(|e| format!("node {i}: cannot listen on {listen}: {e}"))
}
