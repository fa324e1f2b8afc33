//! A partition of the network on one machine (`.partition 0-4 5-9` in the
//! console of `demo` or `testnet`): the nodes of one process are put in
//! groups, and a node hears nothing from, and delivers nothing to, a node
//! of another group, as when a link between two sites goes down. Frames
//! already on their way are lost, connections stay open but silent (so
//! each side finds out by its own timeouts, as on a real network), and a
//! dial across the cut fails as an unreachable address does.
//!
//! One [`Cut`] is shared by every transport of the process (it sits in
//! their [`TcpConfig`](super::tcp::TcpConfig)); `.heal` lifts it. A node
//! that no group names is in a group with every other unnamed node.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

/// The groups of a partition, or none: shared, cheap to test per frame.
#[derive(Clone, Debug, Default)]
pub struct Cut {
    groups: Arc<RwLock<Option<HashMap<SocketAddr, usize>>>>,
}

impl Cut {
    /// Puts each listed address in its group (by position); addresses
    /// not listed form one group more. Replaces any earlier partition.
    pub fn partition(&self, groups: &[Vec<SocketAddr>]) {
        let map = groups
            .iter()
            .enumerate()
            .flat_map(|(g, addrs)| addrs.iter().map(move |a| (*a, g + 1)))
            .collect();
        *self.groups.write().expect("cut lock") = Some(map);
    }

    /// Joins every group again.
    pub fn heal(&self) {
        *self.groups.write().expect("cut lock") = None;
    }

    /// Is the network partitioned now?
    pub fn is_active(&self) -> bool {
        self.groups.read().expect("cut lock").is_some()
    }

    /// Do `a` and `b` lie on two sides of the cut?
    pub fn separates(&self, a: SocketAddr, b: SocketAddr) -> bool {
        match &*self.groups.read().expect("cut lock") {
            None => false,
            Some(map) => map.get(&a).unwrap_or(&0) != map.get(&b).unwrap_or(&0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn groups_hear_only_themselves_until_healed() {
        let cut = Cut::default();
        assert!(!cut.separates(addr(1), addr(2)));
        cut.partition(&[vec![addr(1), addr(2)], vec![addr(3)]]);
        assert!(cut.is_active());
        assert!(!cut.separates(addr(1), addr(2)));
        assert!(cut.separates(addr(1), addr(3)));
        assert!(cut.separates(addr(3), addr(2)));
        // Unnamed nodes are a group of their own.
        assert!(cut.separates(addr(4), addr(1)));
        assert!(!cut.separates(addr(4), addr(5)));
        cut.heal();
        assert!(!cut.is_active());
        assert!(!cut.separates(addr(1), addr(3)));
    }
}
