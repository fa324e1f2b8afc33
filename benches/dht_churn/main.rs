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
        for stabilize in [5.0, 30.0] {
            let soak = dht_churn::Soak {
                nodes: 1000,
                churn: 16.5,
                duration: 1800.0,
                keys: 10_000,
                seed: 14,
                stabilize,
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
    }
}
