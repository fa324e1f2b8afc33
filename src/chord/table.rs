//! What a node knows of the ring: predecessor, successor list and fingers,
//! and the routing decision made from them.

use std::net::SocketAddr;

use crate::id::{Id, ID_BITS};
use crate::routing::NextHop;
use crate::wire::NodeRef;

/// The ring state of one node. Holds no peer twice in the successor list and
/// never itself anywhere.
#[derive(Clone, Debug)]
pub struct RoutingTable {
    me: NodeRef,
    r: usize,
    predecessor: Option<NodeRef>,
    successors: Vec<NodeRef>,
    fingers: Box<[Option<NodeRef>; ID_BITS]>,
    /// Bumped whenever the predecessor or the successor list changes, so the
    /// core can tell neighbour changes without comparing lists.
    neighbors_version: u64,
}

impl RoutingTable {
    pub fn new(me: NodeRef, r: usize) -> RoutingTable {
        RoutingTable {
            me,
            r: r.max(1),
            predecessor: None,
            successors: Vec::new(),
            fingers: Box::new([None; ID_BITS]),
            neighbors_version: 0,
        }
    }

    pub fn me(&self) -> NodeRef {
        self.me
    }

    pub fn predecessor(&self) -> Option<NodeRef> {
        self.predecessor
    }

    pub fn successors(&self) -> &[NodeRef] {
        &self.successors
    }

    /// The first successor, or this node when it knows no other.
    pub fn successor(&self) -> NodeRef {
        self.successors.first().copied().unwrap_or(self.me)
    }

    pub fn finger(&self, i: usize) -> Option<NodeRef> {
        self.fingers[i]
    }

    pub fn set_finger(&mut self, i: usize, node: Option<NodeRef>) {
        self.fingers[i] = node.filter(|n| n.id != self.me.id);
    }

    pub fn set_predecessor(&mut self, node: Option<NodeRef>) {
        let node = node.filter(|n| n.id != self.me.id);
        if node != self.predecessor {
            self.predecessor = node;
            self.neighbors_version += 1;
        }
    }

    /// Changes whenever the predecessor or the successor list changes.
    pub fn neighbors_version(&self) -> u64 {
        self.neighbors_version
    }

    /// Replaces the successor list by `head` followed by `tail`, dropping this
    /// node, duplicates and anything `skip` says is dead; keeps at most r.
    pub fn set_successors(
        &mut self,
        head: impl IntoIterator<Item = NodeRef>,
        tail: &[NodeRef],
        skip: impl Fn(&NodeRef) -> bool,
    ) {
        let mut list: Vec<NodeRef> = Vec::with_capacity(self.r);
        for n in head.into_iter().chain(tail.iter().copied()) {
            if list.len() == self.r {
                break;
            }
            if n.id == self.me.id || skip(&n) || list.iter().any(|m| m.id == n.id) {
                continue;
            }
            list.push(n);
        }
        // Keep the list in ring order from here: a stale peer's list may not be.
        list.sort_by_key(|n| self.me.id.distance_to(&n.id));
        if list != self.successors {
            self.successors = list;
            self.neighbors_version += 1;
        }
    }

    /// Forgets every entry with address `addr`. Returns whether anything went.
    pub fn remove(&mut self, addr: SocketAddr) -> bool {
        let mut removed = false;
        if self.predecessor.is_some_and(|p| p.addr == addr) {
            self.predecessor = None;
            removed = true;
        }
        let before = self.successors.len();
        self.successors.retain(|n| n.addr != addr);
        removed |= self.successors.len() != before;
        if removed {
            self.neighbors_version += 1;
        }
        for f in self.fingers.iter_mut() {
            if f.is_some_and(|n| n.addr == addr) {
                *f = None;
                removed = true;
            }
        }
        removed
    }

    /// Distinct nodes known: successors, predecessor and fingers.
    pub fn known_nodes(&self) -> Vec<NodeRef> {
        let mut out: Vec<NodeRef> = self.successors.clone();
        out.extend(self.predecessor);
        out.extend(self.fingers.iter().flatten().copied());
        out.sort_by_key(|n| self.me.id.distance_to(&n.id));
        out.dedup_by_key(|n| n.id);
        out
    }

    /// The next hop towards `key`'s root.
    ///
    /// `claimed_root` is set when the previous hop (`from`) believed this node
    /// is the root. If a node joined between `from` and us since, our
    /// predecessor is the better root and the message walks back to it.
    pub fn next_hop(&self, key: &Id, claimed_root: bool, from: Option<&NodeRef>) -> NextHop {
        let me = &self.me.id;
        if let Some(p) = &self.predecessor {
            if key.in_open_closed(&p.id, me) {
                return NextHop::Local;
            }
            if claimed_root && from.is_some_and(|f| key.in_open_closed(&f.id, &p.id)) {
                return NextHop::Forward {
                    node: *p,
                    to_root: true,
                };
            }
        } else if claimed_root || self.successors.is_empty() {
            return NextHop::Local;
        }
        if key == me {
            return NextHop::Local;
        }
        let Some(first) = self.successors.first() else {
            return NextHop::Local;
        };
        // Inside the stretch the successor list covers: jump straight to the root.
        let mut prev = me;
        for s in &self.successors {
            if key.in_open_closed(prev, &s.id) {
                return NextHop::Forward {
                    node: *s,
                    to_root: true,
                };
            }
            prev = &s.id;
        }
        match self.closest_preceding(key) {
            Some(node) => NextHop::Forward {
                node,
                to_root: false,
            },
            None => NextHop::Forward {
                node: *first,
                to_root: false,
            },
        }
    }

    /// The known node that most closely precedes `key` (the Chord paper's
    /// closest_preceding_node over fingers and successors).
    pub fn closest_preceding(&self, key: &Id) -> Option<NodeRef> {
        let me = &self.me.id;
        // Fingers grow in distance from here with their index: the first one
        // (from the top) that precedes the key is the closest among them.
        let mut best: Option<NodeRef> = self
            .fingers
            .iter()
            .rev()
            .flatten()
            .find(|f| f.id.in_open(me, key))
            .copied();
        for s in &self.successors {
            if s.id.in_open(me, key)
                && best.is_none_or(|b| me.distance_to(&s.id) > me.distance_to(&b.id))
            {
                best = Some(*s);
            }
        }
        best
    }

    /// Up to `n` candidates for the next hop towards `key`, best first: the
    /// common API's local_lookup.
    pub fn next_hops(&self, key: &Id, n: usize) -> Vec<NodeRef> {
        if let NextHop::Forward {
            node,
            to_root: true,
        } = self.next_hop(key, false, None)
        {
            let mut out = vec![node];
            out.extend(self.successors.iter().copied().filter(|s| s.id != node.id));
            out.truncate(n);
            return out;
        }
        if self.next_hop(key, false, None) == NextHop::Local {
            let mut out = vec![self.me];
            out.truncate(n);
            return out;
        }
        let me = &self.me.id;
        let mut cands: Vec<NodeRef> = self
            .known_nodes()
            .into_iter()
            .filter(|c| c.id.in_open(me, key))
            .collect();
        // Closest to the key first.
        cands.sort_by_key(|c| c.id.distance_to(key));
        cands.truncate(n);
        cands
    }

    /// Up to `num` neighbours: successors first (nearest first), then the
    /// predecessor. See `kbr::Api::neighbor_set`.
    pub fn neighbor_set(&self, num: usize) -> Vec<NodeRef> {
        let mut out: Vec<NodeRef> = self.successors.clone();
        if let Some(p) = self.predecessor {
            if !out.iter().any(|n| n.id == p.id) {
                out.push(p);
            }
        }
        out.truncate(num);
        out
    }

    /// The root of `key` and its successors, up to `max_rank` nodes, when
    /// `key` lies in the stretch this node knows. See `kbr::Api::replica_set`.
    pub fn replica_set(&self, key: &Id, max_rank: usize) -> Vec<NodeRef> {
        let chain = self.chain();
        for i in 1..chain.len() {
            if key.in_open_closed(&chain[i - 1].id, &chain[i].id) {
                return chain[i..].iter().take(max_rank).copied().collect();
            }
        }
        Vec::new()
    }

    /// The keys `(after, up_to]` for which `node` is the `rank`-th root.
    /// See `kbr::Api::range`.
    pub fn range(&self, node: &NodeRef, rank: usize) -> Option<(Id, Id)> {
        let chain = self.chain();
        let i = chain.iter().position(|n| n.id == node.id)?;
        let hi = i.checked_sub(rank)?;
        let lo = hi.checked_sub(1)?;
        Some((chain[lo].id, chain[hi].id))
    }

    /// Predecessor, this node, successors: consecutive nodes on the ring.
    fn chain(&self) -> Vec<NodeRef> {
        let pred = self.predecessor;
        let mut chain: Vec<NodeRef> = pred.into_iter().collect();
        chain.push(self.me);
        chain.extend(
            self.successors
                .iter()
                .filter(|s| Some(s.id) != pred.map(|p| p.id)),
        );
        chain
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(n: u64) -> NodeRef {
        NodeRef {
            id: Id::from_u64(n),
            addr: SocketAddr::from(([127, 0, 0, 1], n as u16)),
        }
    }

    fn ring_table(me: u64, ring: &[u64]) -> RoutingTable {
        let mut t = RoutingTable::new(node(me), 4);
        let mut sorted = ring.to_vec();
        sorted.sort();
        let pos = sorted.iter().position(|&x| x == me).unwrap();
        let succ: Vec<NodeRef> = (1..sorted.len())
            .map(|k| node(sorted[(pos + k) % sorted.len()]))
            .collect();
        t.set_successors(succ.clone(), &[], |_| false);
        t.set_predecessor(Some(node(sorted[(pos + sorted.len() - 1) % sorted.len()])));
        t
    }

    #[test]
    fn local_when_key_is_between_predecessor_and_me() {
        let t = ring_table(100, &[10, 100, 200, 300]);
        assert_eq!(t.next_hop(&Id::from_u64(50), false, None), NextHop::Local);
        assert_eq!(t.next_hop(&Id::from_u64(100), false, None), NextHop::Local);
        assert_eq!(
            t.next_hop(&Id::from_u64(150), false, None),
            NextHop::Forward {
                node: node(200),
                to_root: true
            }
        );
        assert_eq!(
            t.next_hop(&Id::from_u64(250), false, None),
            NextHop::Forward {
                node: node(300),
                to_root: true
            }
        );
    }

    #[test]
    fn successor_list_is_kept_in_ring_order_without_self_or_dead() {
        let mut t = RoutingTable::new(node(100), 3);
        t.set_successors(
            [node(300)],
            &[node(100), node(50), node(200), node(250)],
            |n| n.id == Id::from_u64(250),
        );
        let ids: Vec<_> = t.successors().iter().map(|n| n.id).collect();
        assert_eq!(
            ids,
            vec![Id::from_u64(200), Id::from_u64(300), Id::from_u64(50)]
        );
    }

    #[test]
    fn removal_clears_every_role() {
        let mut t = ring_table(100, &[10, 100, 200, 300]);
        t.set_finger(3, Some(node(300)));
        assert!(t.remove(node(300).addr));
        assert!(t.remove(node(10).addr));
        assert_eq!(t.predecessor(), None);
        assert_eq!(t.finger(3), None);
        assert_eq!(t.successors(), &[node(200)]);
    }
}
