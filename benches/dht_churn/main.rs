//! Churn soaks of peerlets/dht.lua (issue 14, item 4), in full
//! (`cargo bench --bench dht_churn [-- sim|tcp]`; prints figures, asserts
//! nothing; docs/benchmarks.md has the numbers):
//!
//! 1. sim: 1,000 simulated nodes at Bamboo's churn (16.5 joins plus
//!    crashes per second: a median session of about 1.4 minutes) for 30
//!    minutes of virtual time, 10,000 keys put through dht.lua, then read
//!    back (tests/common/dht_churn.rs).
//! 2. tcp: 20 `peerlet node` processes on loopback, one killed with SIGKILL
//!    and restarted with its data every 5 s for 5 minutes while clients put
//!    and get (tests/common/dht_tcp_churn.rs).

#![forbid(unsafe_code)]

#[path = "../../tests/common/dht_churn.rs"]
mod dht_churn;
#[path = "../../tests/common/dht_tcp_churn.rs"]
mod dht_tcp_churn;

use std::time::Duration;

fn source() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/peerlets/dht.lua");
    std::fs::read_to_string(path).expect("peerlets/dht.lua")
}

fn main() {
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |part: &str| which.is_empty() || which.iter().any(|w| w == part);
    if wants("sim") {
        let soak = dht_churn::Soak {
            nodes: 1000,
            churn: 16.5,
            duration: 1800.0,
            keys: 10_000,
            seed: 14,
            stabilize: 5.0,
            progress: true,
        };
        println!("sim soak: {soak:?}");
        let r = dht_churn::run(&soak, &source());
        println!(
            "  joins {} crashes {}; puts acknowledged {} refused {} unanswered {}; \
             acknowledged keys lost to churn (all copies failed between repairs) {}; \
             other acknowledged keys lost {}; failed gets {}; {:.0} s virtual in {:.0} s wall",
            r.joins,
            r.crashes,
            r.acked,
            r.refused,
            r.unanswered,
            r.lost_to_churn,
            r.lost.len(),
            r.get_errors,
            r.virtual_s,
            r.wall_s
        );
        if !r.lost.is_empty() {
            println!("  lost: {:?}", &r.lost[..r.lost.len().min(20)]);
        }
    }
    if wants("tcp") {
        let soak = dht_tcp_churn::TcpSoak {
            nodes: 20,
            clients: 4,
            kill_every: Duration::from_secs(5),
            duration: Duration::from_secs(300),
            seed: 14,
        };
        println!("tcp soak: {soak:?}");
        let r = dht_tcp_churn::run(&soak);
        println!(
            "  kills {} (restarts not back in the ring 30 s later: {}); puts {} acknowledged {}; \
             gets answered {} ({} by a second node or later, {} missed an acknowledged put), unanswered {}; \
             acknowledged puts lost {}; ring healed {:?} after the last restart; \
             acknowledged put latency p50 {:.1} ms p99 {:.1} ms",
            r.kills,
            r.failed_rejoins,
            r.puts,
            r.acked,
            r.gets,
            r.gets_retried,
            r.stale_reads.len(),
            r.unanswered.len(),
            r.lost.len(),
            r.ring_healed,
            r.put_ms_p50,
            r.put_ms_p99
        );
        for line in r.unanswered.iter().chain(&r.lost).take(20) {
            println!("  {line}");
        }
    }
}
