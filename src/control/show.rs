//! The text the control socket answers `.peers`, `.apps` and `.stats` with.

use std::fmt::Write;

use crate::chord::RoutingTable;
use crate::node::NodeStats;
use crate::peerlet::Manager;

/// Bits of a ring id: the number of fingers.
const FINGERS: usize = 160;

/// This node, its predecessor, successor list and distinct fingers.
pub fn peers(table: &RoutingTable) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "me           {:?}", table.me());
    match table.predecessor() {
        Some(p) => writeln!(out, "predecessor  {p:?}"),
        None => writeln!(out, "predecessor  (none)"),
    }
    .unwrap_or(());
    for (i, s) in table.successors().iter().enumerate() {
        let _ = writeln!(out, "successor {i:<2} {s:?}");
    }
    // Runs of fingers pointing at the same node print once, with the range.
    let mut last = None;
    let mut start = 0;
    for i in 0..=FINGERS {
        let f = if i < FINGERS { table.finger(i) } else { None };
        if i == FINGERS || f != last {
            if let Some(node) = last {
                let _ = writeln!(out, "finger {start:>3}-{:<3} {node:?}", i - 1);
            }
            last = f;
            start = i;
        }
    }
    out.pop();
    out
}

/// The ring as this node knows it: every known node clockwise from this
/// one, with its place on the ring (per mille of the id space), the arc
/// to the next known node, and its role here.
pub fn ring(table: &RoutingTable) -> String {
    let me = table.me();
    let mut nodes = vec![me];
    nodes.extend(table.known_nodes().into_iter().filter(|n| n.id != me.id));
    let place = |n: &crate::wire::NodeRef| n.id.high_u64() as f64 / u64::MAX as f64 * 1000.0;
    let mut out = format!("{} node(s) known, clockwise from this one:", nodes.len());
    for (i, n) in nodes.iter().enumerate() {
        let next = &nodes[(i + 1) % nodes.len()];
        let arc = (place(next) - place(n)).rem_euclid(1000.0);
        let arc = if nodes.len() == 1 { 1000.0 } else { arc };
        let mut roles = Vec::new();
        if n.id == me.id {
            roles.push("me".to_string());
        }
        if table.predecessor().is_some_and(|p| p.id == n.id) {
            roles.push("predecessor".into());
        }
        if let Some(k) = table.successors().iter().position(|s| s.id == n.id) {
            roles.push(format!("successor {k}"));
        }
        let _ = write!(
            out,
            "\n  @{:>5.1}‰ {:?}  ──{:>5.1}‰──▶  {}",
            place(n),
            n,
            arc,
            roles.join(", ")
        );
    }
    out
}

/// One line per installed peerlet, with its counters.
pub fn apps(m: &Manager) -> String {
    let mut out = String::from(
        "name         app                              type      ver  memory     instructions  in    out   aborts refused",
    );
    for p in m.peerlets() {
        let _ = write!(
            out,
            "\n{:<12} {} {:<9} {:<4} {:<10} {:<13} {:<5} {:<5} {:<6} {}{}",
            p.name,
            p.app,
            p.app_type,
            p.version,
            p.memory(),
            p.instructions(),
            p.stats.messages_in,
            p.stats.messages_out,
            p.aborts(),
            p.refused(),
            if p.is_stopped() { " (stopped)" } else { "" }
        );
    }
    out
}

/// Transport counters and the last few peerlet reports.
pub fn stats(s: &NodeStats, m: &Manager) -> String {
    let mut out = format!(
        "messages in {}, out {}; dropped (queue full) {}; bad frames {}; peer failures {}",
        s.messages_in, s.messages_out, s.dropped_queue_full, s.bad_frames, s.peer_failures
    );
    out.push('\n');
    out.push_str(&code(m));
    let reports: Vec<&String> = m.reports().collect();
    let recent = &reports[reports.len().saturating_sub(10)..];
    if !recent.is_empty() {
        out.push_str("\nrecent peerlet reports:");
        for r in recent {
            let _ = write!(out, "\n  {r}");
        }
    }
    out
}

/// Deployment by traffic, the code store and refusals, in two lines.
pub fn code(m: &Manager) -> String {
    let d = m.deployer();
    let (packages, bytes) = m.code_store().usage();
    let mut out = format!(
        "code: {} deployed by traffic, {} fetching ({} messages held), {} dropped; \
         code store keeps {packages} package(s), {bytes} bytes",
        d.deployments().count(),
        d.fetching(),
        d.held(),
        d.dropped()
    );
    if let Some(last) = d.deployments().last() {
        let ms = |t: std::time::Duration| t.as_secs_f64() * 1e3;
        let _ = write!(
            out,
            "\nlast deployed: {} v{} from the {} (fetch {:.2} ms, verify {:.2} ms, start {:.2} ms)",
            last.name,
            last.version,
            last.source,
            ms(last.fetch),
            ms(last.verify),
            ms(last.start)
        );
    }
    let refusals = m.trust().refusals().snapshot();
    if !refusals.is_empty() {
        let list: Vec<String> = refusals
            .iter()
            .map(|(r, n)| format!("{} {n}", r.label()))
            .collect();
        let _ = write!(out, "\ncode refused: {}", list.join(", "));
    }
    out
}
