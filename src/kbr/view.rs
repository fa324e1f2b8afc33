//! A read-only view of a node's routing state: what applications (the
//! peerlet host API) and people (`.peers`, `.ring`, completion) may read,
//! without naming the routing core behind it.
//!
//! One snapshot is shared by everyone who asks until the core's neighbours
//! change or it is a second old (`ViewCache` in `snapshot.rs`), so no
//! application keeps a copy of its own and none reads a view older than that.

use crate::chord::RoutingTable;
use crate::id::Id;
use crate::wire::NodeRef;

/// What a routing core's state looks like from above. Every query is
/// answered from this node's own knowledge, without sending anything.
pub trait RoutingView {
    /// This node.
    fn me(&self) -> NodeRef;

    /// The node before this one on the ring, if known.
    fn predecessor(&self) -> Option<NodeRef>;

    /// The nodes after this one, nearest first.
    fn successors(&self) -> Vec<NodeRef>;

    /// The core's other routing entries, each with a label for people
    /// (Chord: `finger 12-150`, runs of fingers at the same node).
    fn links(&self) -> Vec<(String, NodeRef)>;

    /// Every node this one knows, once each.
    fn known_nodes(&self) -> Vec<NodeRef>;

    /// Up to `n` good next hops towards `key`, best first.
    fn next_hops(&self, key: &Id, n: usize) -> Vec<NodeRef>;

    /// Up to `n` neighbours: successors first (nearest first), then the
    /// predecessor.
    fn neighbor_set(&self, n: usize) -> Vec<NodeRef>;

    /// Up to `max_rank` nodes holding the replicas of `key`, its root
    /// first; empty when `key` lies outside what this node knows.
    fn replica_set(&self, key: &Id, max_rank: usize) -> Vec<NodeRef>;

    /// The keys `(after, up_to]` for which `node` is the `rank`-th root.
    fn range(&self, node: &NodeRef, rank: usize) -> Option<(Id, Id)>;
}

/// Bits of a Chord id: the number of fingers.
const FINGERS: usize = 160;

impl RoutingView for RoutingTable {
    fn me(&self) -> NodeRef {
        RoutingTable::me(self)
    }

    fn predecessor(&self) -> Option<NodeRef> {
        RoutingTable::predecessor(self)
    }

    fn successors(&self) -> Vec<NodeRef> {
        RoutingTable::successors(self).to_vec()
    }

    fn links(&self) -> Vec<(String, NodeRef)> {
        let mut out = Vec::new();
        let (mut last, mut start) = (None, 0);
        for i in 0..=FINGERS {
            let f = if i < FINGERS { self.finger(i) } else { None };
            if i == FINGERS || f != last {
                if let Some(node) = last {
                    out.push((format!("finger {start:>3}-{:<3}", i - 1), node));
                }
                last = f;
                start = i;
            }
        }
        out
    }

    fn known_nodes(&self) -> Vec<NodeRef> {
        RoutingTable::known_nodes(self)
    }

    fn next_hops(&self, key: &Id, n: usize) -> Vec<NodeRef> {
        RoutingTable::next_hops(self, key, n)
    }

    fn neighbor_set(&self, n: usize) -> Vec<NodeRef> {
        RoutingTable::neighbor_set(self, n)
    }

    fn replica_set(&self, key: &Id, max_rank: usize) -> Vec<NodeRef> {
        RoutingTable::replica_set(self, key, max_rank)
    }

    fn range(&self, node: &NodeRef, rank: usize) -> Option<(Id, Id)> {
        RoutingTable::range(self, node, rank)
    }
}
