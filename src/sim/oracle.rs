//! The ring as an all-knowing observer sees it: which live node is the
//! successor of a key. Simulations and tests check routing against it.

use crate::id::Id;
use crate::wire::NodeRef;

/// The live nodes sorted by id.
#[derive(Clone, Debug, Default)]
pub struct Oracle {
    sorted: Vec<NodeRef>,
}

impl Oracle {
    pub fn new(mut nodes: Vec<NodeRef>) -> Oracle {
        nodes.sort_by_key(|n| n.id);
        nodes.dedup_by_key(|n| n.id);
        Oracle { sorted: nodes }
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    pub fn nodes(&self) -> &[NodeRef] {
        &self.sorted
    }

    fn index_of_successor(&self, key: &Id) -> usize {
        match self.sorted.binary_search_by_key(key, |n| n.id) {
            Ok(i) => i,
            Err(i) if i == self.sorted.len() => 0,
            Err(i) => i,
        }
    }

    /// The first live node at or after `key` going clockwise: its root.
    pub fn successor(&self, key: &Id) -> NodeRef {
        self.sorted[self.index_of_successor(key)]
    }

    /// The `k` nodes following `node` (not including it).
    pub fn successors_of(&self, node: &Id, k: usize) -> Vec<NodeRef> {
        let n = self.sorted.len();
        let i = self.index_of_successor(node);
        (1..n.min(k + 1))
            .map(|d| self.sorted[(i + d) % n])
            .collect()
    }

    /// The live node just before `node`.
    pub fn predecessor_of(&self, node: &Id) -> Option<NodeRef> {
        let n = self.sorted.len();
        if n < 2 {
            return None;
        }
        let i = self.index_of_successor(node);
        Some(self.sorted[(i + n - 1) % n])
    }
}
