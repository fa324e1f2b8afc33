//! `peerlet demo`: the first thing to run. A local overlay of N nodes on
//! 127.0.0.1 with the sample peerlets signed and installed on the first
//! node only (from there they deploy themselves where their messages go),
//! and a REPL attached to that node on this terminal. Leaving the REPL
//! (Ctrl-D) stops every node the demo started.
//!
//! The demo directory (default `$PEERLET_HOME/demo`, i.e. `~/.peerlet/demo`)
//! holds the demo publisher key, made on the first run and never part of
//! the repository (`demo.key`, `demo.pub`); one data directory per node
//! (`nodes/I`, with its control socket, wiped on every start; node 0's
//! holds a copy of the demo key, so `.load FILE` there signs with it); and
//! the nodes' log (`demo.log`), so log lines never interleave with the
//! prompt; and signed copies of the samples (`peerlets/NAME.lua` with
//! `NAME.lua.minisig`), made again on every start so edited samples just
//! work, and usable outside the demo with `--trust DIR/demo.pub`. The
//! samples themselves are only read: the source tree stays as checked out,
//! and two users of one clone, each with their own demo directory, never
//! touch each other's files.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::fleet::LocalFleet;
use crate::net::cut::Cut;
use crate::node::{Node, NodeConfig, NodeHandle};
use crate::package::signing;

/// Start a local overlay with the sample peerlets and a REPL.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Number of nodes.
    #[arg(long, default_value_t = 10)]
    pub nodes: usize,
    /// The demo directory (key, signed samples, node data, log).
    /// Default: $PEERLET_HOME/demo.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Where the sample peerlets are: every NAME.lua there is copied to the
    /// demo directory, signed there and loaded (the samples are only read).
    #[arg(long, value_name = "DIR", default_value = "peerlets")]
    pub samples: PathBuf,
    /// Evaluate this console line on the first node and print the answer
    /// instead of attaching a REPL (repeatable, in order; for scripts).
    /// The exit status is non-zero if a line fails.
    #[arg(short = 'e', value_name = "CODE")]
    pub eval: Vec<String>,
    #[command(flatten)]
    pub wan: super::testnet::WanArgs,
    /// The demo serves its web view on 127.0.0.1 at a free port unless
    /// --http chooses the address.
    #[command(flatten)]
    pub web: super::web_args::WebArgs,
    /// Serve no web view.
    #[arg(long, conflicts_with = "http")]
    pub no_http: bool,
    #[command(flatten)]
    pub tuning: super::node::Tuning,
}

pub fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if args.nodes == 0 {
        return Err("--nodes must be at least 1".into());
    }
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => signing::default_key_dir()?.join("demo"),
    };
    super::node::create_private_dir(&dir)
        .map_err(|e| format!("demo directory {}: {e}", dir.display()))?;
    super::init_logging_to_file(&dir.join("demo.log"))?;
    let (pub_key, samples) = prepare_samples(&dir, &args.samples)?;
    let data = dir.join("nodes");
    if data.exists() {
        std::fs::remove_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
    }
    let cut = Cut::default();
    let start = {
        let (args, dir, pub_key, cut) = (args.clone(), dir.clone(), pub_key.clone(), cut.clone());
        Box::new(move |i, join| {
            start_node(&args, &dir, &pub_key, &cut, i, join).map_err(|e| e.to_string())
        })
    };
    let fleet = LocalFleet::start(args.nodes, &dir, cut, start)?;
    let nodes = fleet.all();
    let handles: Vec<&NodeHandle> = nodes.iter().map(|n| n.as_ref()).collect();
    super::node::load_peerlets(&handles[..1], &samples)?;
    // The page shows every node of the demo, `.spawn`ed ones too.
    let default_http = (!args.no_http).then(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let web = args.web.start(default_http, fleet.clone())?;
    if let Some(web) = &web {
        tracing::info!("web view: {}", web.url());
    }
    let console = fleet.socket(0);
    let result = if args.eval.is_empty() {
        println!("{}", banner(&nodes, &dir, &samples));
        if let Some(web) = &web {
            println!("Watch the ring in a browser: {}", web.url());
        }
        attach(&console)
    } else {
        args.eval
            .iter()
            .try_for_each(|code| super::repl::eval_once(&console, code))
    };
    tracing::info!("demo over: every node leaves");
    drop(web);
    fleet.stop();
    result
}

/// The demo key (made on the first run) and signed copies of the samples
/// in `dir/peerlets/`, in the samples' order.
fn prepare_samples(
    dir: &Path,
    samples: &Path,
) -> Result<(PathBuf, Vec<PathBuf>), Box<dyn std::error::Error>> {
    let (pub_key, sec_key) = (dir.join("demo.pub"), dir.join("demo.key"));
    if !sec_key.exists() || !pub_key.exists() {
        signing::keygen(&pub_key, &sec_key, true)?;
        tracing::info!("made the demo publisher key {}", pub_key.display());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(samples)
        .map_err(|e| {
            format!(
                "samples {}: {e} (run the demo from the repository)",
                samples.display()
            )
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "lua"))
        .collect();
    files.sort();
    let signed_dir = dir.join("peerlets");
    std::fs::create_dir_all(&signed_dir).map_err(|e| format!("{}: {e}", signed_dir.display()))?;
    // `--samples DIR/peerlets` names the copies themselves: copying a file
    // onto itself would empty it, so those are signed where they are.
    let real = |p: &Path| {
        p.canonicalize()
            .map_err(|e| format!("{}: {e}", p.display()))
    };
    let copying = real(samples)? != real(&signed_dir)?;
    let mut signed = Vec::new();
    for file in files {
        let copy = signed_dir.join(file.file_name().expect("a file"));
        if copying {
            // Replaced, not overwritten: copies keep the samples' mode, and
            // a read-only sample makes a copy the next start cannot open.
            match std::fs::remove_file(&copy) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(format!("{}: {e}", copy.display()).into())
                }
                _ => {}
            }
            std::fs::copy(&file, &copy).map_err(|e| format!("{}: {e}", file.display()))?;
        }
        signing::sign_file(&copy, &sec_key).map_err(|e| format!("{}: {e}", copy.display()))?;
        signed.push(copy);
    }
    Ok((pub_key, signed))
}

/// Node `i` of the demo, in `dir/nodes/I`, joining the node at `join`.
fn start_node(
    args: &Args,
    dir: &Path,
    pub_key: &Path,
    cut: &Cut,
    i: usize,
    join: Option<SocketAddr>,
) -> Result<NodeHandle, Box<dyn std::error::Error>> {
    let node_dir = dir.join("nodes").join(i.to_string());
    super::node::create_private_dir(&node_dir)?;
    if i == 0 {
        // `.load FILE` on the console signs with the node's own key:
        // the demo key, which every node trusts, so loaded code deploys
        // itself like the samples.
        let key = node_dir.join(crate::control::LOCAL_KEY);
        std::fs::copy(dir.join("demo.key"), &key)?;
    }
    let mut cfg = NodeConfig::new("127.0.0.1:0".parse().expect("an address"));
    cfg.join = join;
    // Lab mode, so a node started by hand with --id --lab may join.
    cfg.tcp.link.lab = true;
    cfg.data_dir = Some(node_dir);
    cfg.trust_files = vec![pub_key.to_path_buf()];
    args.tuning.apply(&mut cfg);
    args.wan.apply(&mut cfg);
    cfg.tcp.cut = Some(cut.clone());
    Ok(Node::spawn(cfg).map_err(|e| format!("node {i}: {e}"))?)
}

/// The REPL on this terminal: Ctrl-C interrupts the running line.
fn attach(socket: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let (stop_tx, stop) = std::sync::mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop_tx.send(());
    })?;
    let s = socket.to_path_buf();
    std::thread::spawn(move || {
        while stop.recv().is_ok() {
            super::repl::interrupt(&s);
        }
    });
    super::repl::attach(socket)
}

fn banner(nodes: &[Arc<NodeHandle>], dir: &Path, samples: &[PathBuf]) -> String {
    let names: Vec<String> = samples
        .iter()
        .filter_map(|p| p.file_stem()?.to_str().map(str::to_string))
        .collect();
    let me = &nodes[0];
    format!(
        "peerlet demo: {n} nodes on 127.0.0.1; this console runs on node 0 ({addr}, id {id}).\n\
         Signed with the demo key and installed here only, these peerlets deploy\n\
         themselves on the nodes their messages reach: {names}.\n\
         \n\
         Try:\n\
         \x20 .apps                                                    what runs here\n\
         \x20 dht = peerlet.lookup(kbr.key(\"colour\"), \"dht\")\n\
         \x20 dht:put(\"colour\", \"blue\")                                the root of the key deploys dht\n\
         \x20 dht:get(\"colour\")\n\
         \x20 t = peerlet.lookup(kbr.id().id, \"trace\")\n\
         \x20 id = t:trace(kbr.key(\"somewhere\"))                      then, a moment later:\n\
         \x20 t:show(id)                                               each hop on the way\n\
         \x20 .trace colour                                            the route to a key, hop by hop\n\
         \x20 .ring   .peers   .stats   .log   .help\n\
         \n\
         Signed copies of the samples: {dir}/peerlets (publisher key {dir}/demo.pub).\n\
         Other nodes' consoles: peerlet repl {dir}/nodes/N/control.sock\n\
         Node log: {dir}/demo.log.  Ctrl-D stops all {n} nodes.",
        n = nodes.len(),
        addr = me.addr(),
        id = me.id().short(8),
        names = names.join(", "),
        dir = dir.display(),
    )
}
