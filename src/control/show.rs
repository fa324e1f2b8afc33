//! The text the control socket answers `.peers`, `.apps`, `.stats` and
//! `.trace` with.

use std::fmt::Write;

use crate::kbr::trace::TraceReport;
use crate::kbr::view::RoutingView;
use crate::kbr::Kbr;
use crate::node::{NodeStats, QueueDepths};
use crate::peerlet::Manager;
use crate::time::Time;
use crate::wire::NodeRef;

/// This node, its predecessor, successors and other routing entries
/// (Chord: runs of fingers), each with what this node believes of its
/// liveness (see [`crate::routing::Liveness`]).
pub fn peers(kbr: &mut Kbr, now: Time) -> String {
    let view = kbr.view(now);
    let alive = |n: &NodeRef| kbr.liveness(now, n.addr);
    let mut out = String::new();
    let _ = writeln!(out, "me           {:?}", view.me());
    match view.predecessor() {
        Some(p) => writeln!(out, "predecessor  {p:?}  {}", alive(&p)),
        None => writeln!(out, "predecessor  (none)"),
    }
    .unwrap_or(());
    for (i, s) in view.successors().iter().enumerate() {
        let _ = writeln!(out, "successor {i:<2} {s:?}  {}", alive(s));
    }
    for (label, node) in view.links() {
        let _ = writeln!(out, "{label} {node:?}  {}", alive(&node));
    }
    out.pop();
    out
}

/// The ring as this node knows it: every known node clockwise from this
/// one, with its place on the ring (per mille of the id space), the arc
/// to the next known node, and its role here.
pub fn ring(table: &dyn RoutingView) -> String {
    let me = table.me();
    let mut nodes = vec![me];
    nodes.extend(table.known_nodes().into_iter().filter(|n| n.id != me.id));
    let place = |n: &NodeRef| n.id.high_u64() as f64 / u64::MAX as f64 * 1000.0;
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
        "name         app                              type      ver  memory     instructions  in    out   aborts refused share throttled waiting suppressed publisher",
    );
    let now = m.now();
    for p in m.peerlets() {
        let _ = write!(
            out,
            "\n{:<12} {} {:<9} {:<4} {:<10} {:<13} {:<5} {:<5} {:<6} {:<7} {:<5} {:<9} {:<7} {:<10} {}{}",
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
            format!("{:.0}%", p.share.recent(now) * 100.0),
            format!("{:.1}s", p.share.throttled.as_secs_f64()),
            p.waiting(),
            p.log_suppressed(),
            p.publisher.as_deref().unwrap_or("local (unsigned)"),
            if p.is_stopped() { " (stopped)" } else { "" }
        );
    }
    out
}

/// Transport counters, queue depths, and the last few peerlet reports.
pub fn stats(s: &NodeStats, q: &QueueDepths, m: &Manager) -> String {
    let mut out = format!(
        "messages in {}, out {}; bytes in {}, out {}; dropped (queue full) {}; bad frames {}; peer failures {}\n\
         connections refused {}; handshakes refused {}; dropped (unreachable or not the node expected) {}",
        s.messages_in,
        s.messages_out,
        s.bytes_in,
        s.bytes_out,
        s.dropped_queue_full,
        s.bad_frames,
        s.peer_failures,
        s.refused_connections,
        s.refused_handshakes,
        s.dropped_unreachable
    );
    let peerlets = m.peerlet_time();
    let _ = write!(
        out,
        "\ntime on the node's thread: {:.3} s working, of which the node's own {:.3} s and peerlets' {:.3} s",
        s.busy.as_secs_f64(),
        s.busy.saturating_sub(peerlets).as_secs_f64(),
        peerlets.as_secs_f64()
    );
    let p = &q.pending;
    let _ = write!(
        out,
        "\nqueues: incoming {}, control {}; waiting for an answer: hops {}, lookups {}, stabilize {}, pings {}, peerlet calls {}",
        q.incoming, q.control, p.hops, p.lookups, p.stabilize, p.pings, q.peerlet_calls
    );
    let _ = write!(
        out,
        "\noutgoing connections: {} (frames queued, of {} each)",
        q.outgoing.len(),
        q.queue_capacity
    );
    for (addr, depth) in &q.outgoing {
        let _ = write!(out, "\n  {addr:<21} {depth}");
    }
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

/// One line per hop: number, node id (short), address, milliseconds until
/// the source heard from it; the root marked.
pub fn trace(t: &TraceReport) -> String {
    let mut out = format!("trace to {}", t.key);
    for h in &t.hops {
        let _ = write!(
            out,
            "\n{:>3}  {}  {:<21} {:>8.2} ms{}",
            h.hop,
            h.node.id.short(8),
            h.node.addr.to_string(),
            h.after.as_secs_f64() * 1000.0,
            if h.root { "  root" } else { "" }
        );
    }
    if let Some(why) = &t.incomplete {
        let _ = write!(out, "\n(incomplete: {why})");
    }
    out
}
