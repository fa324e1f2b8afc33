//! `peerlet sim`: run the Chord core over a virtual network and print what
//! routing did.

use crate::chord::Config;
use crate::sim::experiment::{self, Experiment};

/// Simulate a ring of many nodes in virtual time.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Nodes in the ring at the start.
    #[arg(long, default_value_t = 1000)]
    pub nodes: usize,
    /// Lookups from random live nodes for random keys.
    #[arg(long, default_value_t = 10_000)]
    pub lookups: usize,
    /// Fraction of nodes that crash at once at time zero.
    #[arg(long, default_value_t = 0.0)]
    pub fail: f64,
    /// Joins plus crashes per second of virtual time.
    #[arg(long, default_value_t = 0.0)]
    pub churn: f64,
    /// Seconds of virtual time over which the lookups are spread.
    #[arg(long, default_value_t = 60.0)]
    pub duration: f64,
    /// Seconds of virtual time between the failures and the first lookup
    /// (0: lookups start right away; 60+: after stabilization).
    #[arg(long, default_value_t = 0.0)]
    pub settle: f64,
    /// Seed of every random choice: same seed, same result.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Probability that any one message is lost (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub loss: f64,
    /// Successor list length r.
    #[arg(long)]
    pub successors: Option<usize>,
    /// Stabilize period in seconds: refreshing the successor list (default 15).
    #[arg(long)]
    pub stabilize: Option<f64>,
    /// Neighbour check period in seconds: pinging predecessor and successor,
    /// which is how failures are seen (default 2).
    #[arg(long)]
    pub check: Option<f64>,
    /// Partition probe period in seconds: each node asks one lost peer to
    /// look up its id, so rings formed apart merge (default 30; 0: off).
    #[arg(long)]
    pub probe: Option<f64>,
    /// Print exactly one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if !(0.0..1.0).contains(&args.fail) {
        return Err(format!("--fail {} must be in [0, 1)", args.fail).into());
    }
    if !(0.0..=1.0).contains(&args.loss) {
        return Err(format!("--loss {} must be in [0, 1]", args.loss).into());
    }
    if args.nodes == 0 {
        return Err("--nodes must be at least 1".into());
    }
    let mut chord = Config::simulation();
    if let Some(r) = args.successors {
        chord.successors = r.max(1);
    }
    for (flag, value, period) in [
        ("--stabilize", args.stabilize, &mut chord.stabilize_every),
        ("--check", args.check, &mut chord.check_predecessor_every),
    ] {
        if let Some(s) = value {
            if !(s.is_finite() && s > 0.0) {
                return Err(format!("{flag} {s} must be a positive number of seconds").into());
            }
            *period = std::time::Duration::from_secs_f64(s);
        }
    }
    match args.probe {
        Some(0.0) => chord.remembered = 0,
        Some(s) if s.is_finite() && s > 0.0 => {
            chord.probe_every = std::time::Duration::from_secs_f64(s)
        }
        Some(s) => {
            return Err(format!("--probe {s} must be 0 (off) or a number of seconds").into())
        }
        None => {}
    }
    let exp = Experiment {
        nodes: args.nodes,
        lookups: args.lookups,
        fail: args.fail,
        churn: args.churn,
        duration: args.duration,
        settle: args.settle,
        seed: args.seed,
        loss: args.loss,
        chord,
    };
    let report = experiment::run(&exp);
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    let half_log = 0.5 * (args.nodes as f64).log2();
    println!("nodes              {}", report.nodes);
    println!("lookups            {}", report.lookups);
    println!(
        "hops mean          {:.3}   (Chord paper: ½·log2 N = {half_log:.3})",
        report.mean_hops
    );
    println!(
        "hops p1/p50/p99    {} / {} / {}",
        report.p1_hops, report.p50_hops, report.p99_hops
    );
    println!("failed lookups     {}", report.failed);
    println!(
        "abandoned          {}   (their source crashed before the answer)",
        report.abandoned
    );
    println!("wrong root         {}", report.wrong);
    println!(
        "maintenance        {:.3} msgs/node/s",
        report.maint_msgs_per_node_s
    );
    println!(
        "upkeep             {:.1} bytes/node/s (frames as on TCP)",
        report.maint_bytes_per_node_s
    );
    println!("wall               {:.3} s", report.wall_s);
    println!(
        "peak RSS           {:.1} MiB ({:.1} KiB per node)",
        report.peak_rss_kb as f64 / 1024.0,
        report.peak_rss_kb as f64 / args.nodes as f64
    );
    Ok(())
}
