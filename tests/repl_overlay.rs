//! The REPL's views of the overlay against a small ring of real `peerlet
//! node` processes: `.trace` lists the hops to a key's root, `.peers` says
//! how alive each neighbour and finger is, `.stats` counts bytes and shows
//! queue depths.

#![forbid(unsafe_code)]

mod common;

use std::time::Duration;

use common::eventually;
use common::repl::{eval, start_attached, stdout, Attached};
use peerlet::id::Id;
use peerlet::sim::Oracle;
use peerlet::wire::NodeRef;

/// `n` nodes, each with a control socket, all joined through the first;
/// returns once the first node's successor is the right one.
fn ring(n: usize) -> Vec<Attached> {
    let first = start_attached(None);
    let addr = first.node.me.addr;
    let mut nodes = vec![first];
    for _ in 1..n {
        nodes.push(start_attached(Some(addr)));
    }
    let oracle = oracle(&nodes);
    let want = oracle.successors_of(&nodes[0].node.me.id, 1)[0];
    eventually(Duration::from_secs(30), || {
        let peers = stdout(&eval(&nodes[0].socket, ".peers"));
        let line = peers.lines().find(|l| l.starts_with("successor 0"));
        match line {
            Some(l) if l.contains(&want.addr.to_string()) => Ok(()),
            _ => Err(peers),
        }
    });
    nodes
}

fn oracle(nodes: &[Attached]) -> Oracle {
    Oracle::new(nodes.iter().map(|a| a.node.me).collect::<Vec<NodeRef>>())
}

/// The hops of a `.trace` answer: (hop, short id, addr, root?).
fn hops(text: &str) -> Vec<(u32, String, String, bool)> {
    text.lines()
        .skip(1)
        .filter(|l| l.contains(" ms"))
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (
                w[0].parse().expect(l),
                w[1].to_string(),
                w[2].to_string(),
                l.ends_with("root"),
            )
        })
        .collect()
}

#[test]
fn trace_lists_every_hop_and_ends_at_the_keys_root() {
    let nodes = ring(5);
    let oracle = oracle(&nodes);
    let me = nodes[0].node.me;
    for key_text in ["hello", "some other name"] {
        let key = Id::key(key_text);
        let root = oracle.successor(&key);
        // Fingers settle after the successors: retry until the route
        // ends where the oracle says.
        eventually(Duration::from_secs(30), || {
            let out = eval(&nodes[0].socket, &format!(".trace {key_text}"));
            let text = stdout(&out);
            if !out.status.success() {
                return Err(format!("{out:?}"));
            }
            assert!(text.starts_with(&format!("trace to {key}")), "{text}");
            let hops = hops(&text);
            let (first, last) = (hops.first().ok_or(&text)?, hops.last().ok_or(&text)?);
            assert_eq!(first.0, 0, "{text}");
            assert_eq!(first.2, me.addr.to_string(), "the source is hop 0: {text}");
            assert!(
                hops.windows(2).all(|w| w[0].0 < w[1].0),
                "hops in order: {text}"
            );
            assert!(hops.iter().filter(|h| h.3).count() <= 1, "one root: {text}");
            if last.3 && last.2 == root.addr.to_string() && last.1 == root.id.short(8) {
                Ok(())
            } else {
                Err(format!("expected root {root:?}: {text}"))
            }
        });
    }
    // A key given as 40 hex digits is that id: the node's own id is its root.
    let own = stdout(&eval(&nodes[0].socket, &format!(".trace {}", me.id)));
    let hops = hops(&own);
    assert_eq!(hops.len(), 1, "{own}");
    assert!(hops[0].3, "{own}");
}

#[test]
fn peers_show_liveness_and_stats_show_bytes_and_queues() {
    let nodes = ring(3);
    let peers = stdout(&eval(&nodes[0].socket, ".peers"));
    for line in peers.lines().skip(1) {
        assert!(
            line.contains("alive (heard")
                || line.contains("unknown (")
                || line.contains("suspected ("),
            "a liveness on every peer line: {line}"
        );
    }
    let succ = peers
        .lines()
        .find(|l| l.starts_with("successor 0"))
        .unwrap();
    assert!(succ.contains("alive (heard"), "{peers}");
    let stats = stdout(&eval(&nodes[0].socket, ".stats"));
    let number_after = |word: &str| -> u64 {
        let rest = &stats[stats.find(word).expect(word) + word.len()..];
        let digits: String = rest
            .trim_start()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().expect(word)
    };
    assert!(number_after("bytes in") > 0, "{stats}");
    assert!(number_after(", out") > 0, "{stats}");
    assert!(stats.contains("\nqueues: incoming "), "{stats}");
    assert!(stats.contains("waiting for an answer: hops "), "{stats}");
    assert!(number_after("outgoing connections:") >= 1, "{stats}");
    let succ_addr = stdout(&eval(&nodes[0].socket, "kbr.neighbor_set(1)[1].addr"));
    assert!(
        stats
            .lines()
            .any(|l| l.trim_start().starts_with(&succ_addr)),
        "the successor's queue is listed: {stats}"
    );
}
