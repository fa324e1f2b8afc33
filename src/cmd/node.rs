//! `peerlet node`: run one node until SIGINT or SIGTERM, then leave the ring
//! gracefully.
//!
//! When the node is part of a ring it prints exactly one line to stdout,
//! `listening ADDR id HEX40`, and flushes it: scripts and tests wait for that
//! line to learn the real address (with `--listen 127.0.0.1:0`) and the id.
//! Logs go to stderr (`RUST_LOG`, default `info`).

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::id::Id;
use crate::kbr::core::CoreKind;

/// The node's log file in its data directory (beside stderr), rotated
/// at 8 MiB with one previous file kept.
pub const LOG_FILE: &str = "node.log";
use crate::node::{Node, NodeConfig, NodeHandle, OwnKey, PeerletFile};

/// Run a node.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on (port 0: any free port).
    #[arg(long)]
    pub listen: SocketAddr,
    /// A node of the ring to join, as HOST:PORT (a name, an IPv4 address,
    /// or [IPv6]:PORT). Repeatable: seeds are tried in turn, and again with
    /// backoff until one answers. Without it, start a new ring.
    #[arg(long, value_name = "HOST:PORT")]
    pub join: Vec<String>,
    /// The address others reach this node at (HOST:PORT), if not the listen
    /// address: behind NAT or in a container. A node listening on 0.0.0.0
    /// or [::] without it advertises the address of the interface it uses
    /// to reach its first seed, with the listen port.
    #[arg(long, value_name = "HOST:PORT")]
    pub advertise: Option<String>,
    /// The node's directory, created owner-only if missing; the node's
    /// control socket (for `peerlet repl`) is DIR/control.sock.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// The node's ring id (40 hex digits), chosen by hand: needs --lab
    /// here and at its peers. Default: the id its key gives (the key is
    /// kept in DATA/node.key, or fresh each start without --data).
    #[arg(long, requires = "lab")]
    pub id: Option<Id>,
    /// Lab mode, for teaching and tests: accept peers whose ids are chosen
    /// (--id) rather than given by their keys. Links stay encrypted and
    /// addresses are still checked. `demo` and `testnet` run in lab mode.
    #[arg(long)]
    pub lab: bool,
    /// The routing core this node runs (all nodes of a ring run the same).
    #[arg(long, default_value = "chord", value_name = "NAME")]
    pub core: CoreKind,
    /// Install this peerlet once the node is part of a ring. Signed when
    /// FILE.lua.minisig exists (then its publisher must be trusted), else
    /// as this node's own, unsigned. Repeatable.
    #[arg(long, value_name = "FILE.lua")]
    pub load: Vec<PathBuf>,
    /// Run peerlets signed by this publisher key (a minisign .pub file).
    /// Repeatable; adds to DATA/trust.conf.
    #[arg(long, value_name = "KEY.pub")]
    pub trust: Vec<PathBuf>,
    /// Attach a REPL to the node on this terminal (needs --data); leaving
    /// it (Ctrl-D) makes the node leave the ring.
    #[arg(long, requires = "data")]
    pub repl: bool,
    #[command(flatten)]
    pub web: super::web_args::WebArgs,
    #[command(flatten)]
    pub tuning: Tuning,
}

/// Hidden knobs, mostly for tests that need a ring to repair itself in
/// seconds rather than minutes.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Tuning {
    /// Stabilize and predecessor-check period, in milliseconds.
    #[arg(long, hide = true)]
    pub stabilize_ms: Option<u64>,
    /// fix_fingers period, in milliseconds.
    #[arg(long, hide = true)]
    pub fix_fingers_ms: Option<u64>,
    /// Request and hop acknowledgement timeout, in milliseconds.
    #[arg(long, hide = true)]
    pub rpc_timeout_ms: Option<u64>,
    /// How long a frame may take once begun, in milliseconds.
    #[arg(long, hide = true)]
    pub frame_timeout_ms: Option<u64>,
    /// Largest frame accepted or sent, in bytes.
    #[arg(long, hide = true)]
    pub max_frame: Option<usize>,
    #[command(flatten)]
    pub limits: PeerletLimits,
}

/// What each peerlet on the node may use (defaults: `peerlet::sandbox::Limits`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct PeerletLimits {
    /// Lua instructions one upcall may run [default: 1000000].
    #[arg(long)]
    pub max_instructions: Option<u64>,
    /// Bytes one peerlet's Lua state may hold [default: 8388608].
    #[arg(long)]
    pub max_memory: Option<usize>,
    /// Largest message a peerlet may send or receive, in bytes of CBOR [default: 65536].
    #[arg(long)]
    pub max_message: Option<usize>,
    /// Timers one peerlet may have armed [default: 64].
    #[arg(long)]
    pub max_timers: Option<usize>,
    /// Remote calls one peerlet may have waiting [default: 32].
    #[arg(long)]
    pub max_pending_calls: Option<usize>,
    /// Messages per second one peerlet may send [default: 1000].
    #[arg(long)]
    pub max_send_rate: Option<u32>,
    /// Fraction of each second one peerlet's upcalls may run, over time [default: 0.25].
    #[arg(long)]
    pub cpu_share: Option<f64>,
    /// Fraction of the node's thread all peerlets together may take [default: 0.5].
    #[arg(long)]
    pub peerlets_share: Option<f64>,
    /// Bytes of keys and values each peerlet's store may hold [default: 1048576].
    #[arg(long)]
    pub store_quota: Option<usize>,
}

impl Tuning {
    /// Applies the knobs that were given to `cfg`.
    pub fn apply(&self, cfg: &mut NodeConfig) {
        let ms = Duration::from_millis;
        if let Some(s) = self.stabilize_ms {
            cfg.chord.stabilize_every = ms(s);
            cfg.chord.check_predecessor_every = ms(s);
        }
        if let Some(f) = self.fix_fingers_ms {
            cfg.chord.fix_fingers_every = ms(f);
        }
        if let Some(t) = self.rpc_timeout_ms {
            cfg.chord.rpc_timeout = ms(t);
            cfg.chord.hop_timeout = ms(t);
            cfg.chord.lookup_timeout = cfg.chord.lookup_timeout.min(ms(t * 8));
        }
        if let Some(t) = self.frame_timeout_ms {
            cfg.tcp.frame_timeout = ms(t);
        }
        if let Some(m) = self.max_frame {
            cfg.tcp.max_frame = m;
        }
        let (l, given) = (&mut cfg.limits, &self.limits);
        if let Some(v) = given.max_instructions {
            l.instructions = v;
        }
        if let Some(v) = given.max_memory {
            l.memory_bytes = v;
        }
        if let Some(v) = given.max_message {
            l.message_bytes = v;
        }
        if let Some(v) = given.max_timers {
            l.timers = v;
        }
        if let Some(v) = given.max_pending_calls {
            l.pending_calls = v;
        }
        if let Some(v) = given.max_send_rate {
            l.messages_per_second = v;
        }
        if let Some(v) = given.cpu_share {
            l.cpu_share = v;
        }
        if let Some(v) = given.peerlets_share {
            cfg.peerlets_share = v;
        }
        if let Some(v) = given.store_quota {
            cfg.store_quota = v;
        }
    }
}

pub fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(dir) = &args.data {
        create_private_dir(dir).map_err(|e| format!("data directory {}: {e}", dir.display()))?;
    }
    let log_file = args.data.as_ref().map(|d| d.join(LOG_FILE));
    super::init_logging(log_file.as_deref()).map_err(|e| {
        format!(
            "log file in {}: {e}",
            args.data.as_deref().unwrap_or(Path::new(".")).display()
        )
    })?;
    // Names are resolved here, never on the node's thread.
    let seeds = args
        .join
        .iter()
        .map(|s| super::seeds::resolve("--join", s))
        .collect::<Result<Vec<_>, _>>()?;
    let seeds = super::seeds::routable(seeds)?;
    let mut cfg = NodeConfig::new(args.listen);
    cfg.join = seeds.first().copied();
    cfg.advertise = match &args.advertise {
        Some(a) => Some(super::seeds::resolve("--advertise", a)?),
        None if args.listen.ip().is_unspecified() => {
            let (advertised, seen_by) =
                super::seeds::seen_or_guessed(args.listen, &seeds, args.lab);
            let how = match seen_by {
                Some(seed) => format!("the address seed {seed} sees"),
                None => "the address of the interface towards the seeds".into(),
            };
            tracing::info!(
                "listening on {}: advertising {advertised}, {how} (give --advertise to choose)",
                args.listen
            );
            Some(advertised)
        }
        None => None,
    };
    cfg.id = args.id;
    cfg.tcp.link.lab = args.lab;
    cfg.core = args.core;
    cfg.data_dir = args.data.clone();
    // Fail here, with the reason, rather than in the node thread.
    crate::package::trust::TrustPolicy::load(args.data.as_deref(), &args.trust)?;
    cfg.trust_files = args.trust.clone();
    args.tuning.apply(&mut cfg);
    // With the console on this terminal, Ctrl-C interrupts its line instead.
    let stop = super::stop_signals(!args.repl)?;
    let node =
        Node::spawn(cfg).map_err(|e| format!("cannot start a node on {}: {e}", args.listen))?;
    let node = std::sync::Arc::new(node);
    // Served from the start, so the page shows the node joining too: it
    // shows this node in full, the rest of the ring as it knows it.
    let web = args
        .web
        .start(None, std::sync::Arc::new(vec![node.clone()]))?;
    if let Some(web) = &web {
        tracing::info!("web view: {}", web.url());
    }
    // Each seed is tried (join_attempts times), then the next, and every
    // round again after a pause; a signal meanwhile stops the node at once.
    if !super::seeds::join_until_one_answers(&node, &seeds, &stop)? {
        tracing::info!("signal received before joining: stopping");
        node.kill();
        return Ok(());
    }
    load_peerlets(&[&node], &args.load)?;
    let control = match &args.data {
        Some(dir) => {
            let path = dir.join(crate::control::SOCKET_NAME);
            match crate::control::serve(&path, node.clone()) {
                Ok(server) => Some(server),
                // The node is useful without a console (a data path too
                // long for a Unix socket, say), unless one was asked for.
                Err(e) if !args.repl => {
                    tracing::warn!("no control socket at {}: {e}", path.display());
                    None
                }
                Err(e) => return Err(format!("control socket {}: {e}", path.display()).into()),
            }
        }
        None => None,
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening {} id {}", node.addr(), node.id())?;
    out.flush()?;
    drop(out);
    match &control {
        Some(server) if args.repl => {
            // With the console on this terminal, Ctrl-C interrupts the
            // running line; Ctrl-D leaves.
            let socket = server.path().to_path_buf();
            std::thread::spawn(move || {
                while stop.recv().is_ok() {
                    super::repl::interrupt(&socket);
                }
            });
            super::repl::attach(server.path())?;
            tracing::info!("console closed: leaving the ring");
        }
        _ => {
            let _ = stop.recv();
            tracing::info!("signal received: leaving the ring");
        }
    }
    drop(web);
    node.leave();
    drop(control);
    Ok(())
}

/// Installs each file on every node: signed when `FILE.minisig` exists
/// (its publisher must be trusted), else as the node's own, unsigned.
pub fn load_peerlets(
    nodes: &[&NodeHandle],
    files: &[PathBuf],
) -> Result<(), Box<dyn std::error::Error>> {
    for path in files {
        let file = PeerletFile::read(path, OwnKey::Never)?;
        // Signed code deploys itself where its messages go: one origin is
        // enough. Unsigned code runs only where it is installed.
        let targets = match file.is_signed() {
            true => &nodes[..nodes.len().min(1)],
            false => nodes,
        };
        for node in targets {
            let installed = file.install(node)?;
            tracing::debug!(
                "{}: installed {} as app {}",
                node.addr(),
                path.display(),
                installed.app
            );
        }
        let how = if file.is_signed() {
            "signed; it deploys itself by traffic"
        } else {
            "unsigned"
        };
        tracing::info!(
            "{} ({how}) installed on {} node(s)",
            path.display(),
            targets.len()
        );
    }
    Ok(())
}

/// Creates `dir` (and its parents) readable by its owner only.
pub(super) fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::sandbox::Limits;

    /// The `[default: N]` in the flags' help must match `Limits::default()`.
    #[test]
    fn documented_limit_defaults_are_the_real_ones() {
        let l = Limits::default();
        let src = include_str!("node.rs");
        for (flag, value) in [
            ("upcall may run", l.instructions.to_string()),
            ("Lua state may hold", l.memory_bytes.to_string()),
            ("bytes of CBOR", l.message_bytes.to_string()),
            ("may have armed", l.timers.to_string()),
            ("may have waiting", l.pending_calls.to_string()),
            ("may send [", l.messages_per_second.to_string()),
            ("run, over time", l.cpu_share.to_string()),
            (
                "store may hold",
                crate::peerlet::store::DEFAULT_QUOTA.to_string(),
            ),
            (
                "together may take",
                crate::peerlet::ManagerConfig::default()
                    .peerlets_share
                    .to_string(),
            ),
        ] {
            let line = src.lines().find(|line| line.contains(flag)).expect(flag);
            assert!(line.contains(&format!("[default: {value}]")), "{line}");
        }
    }
}
