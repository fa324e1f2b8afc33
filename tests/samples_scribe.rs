//! peerlets/scribe.lua on a 20-node simulated ring: joins build a tree in
//! forward(), a publication reaches every member once and nobody else,
//! also when a fifth of the nodes do not run the per-hop peerlet (they pass
//! joins on unchanged), and after an inner node of the tree crashed.

mod common;

use std::time::Duration;

use common::samples::SampleRing;
use peerlet::id::{AppId, Id};

const NODES: usize = 20;
const GROUP: &str = "news";

struct Scribe {
    r: SampleRing,
    app: AppId,
}

impl Scribe {
    fn new(seed: u64, except: impl Fn(&SampleRing, usize) -> bool) -> Scribe {
        let mut r = SampleRing::new(NODES, seed);
        let nodes: Vec<usize> = r.all().into_iter().filter(|&i| !except(&r, i)).collect();
        let app = r.install(&nodes, "scribe");
        Scribe { r, app }
    }

    fn call(&mut self, i: usize, call: &str) -> String {
        self.r
            .call_local(i, self.app, call)
            .unwrap_or_else(|e| panic!("node {i}: {call}: {e}"))
    }

    fn join(&mut self, members: &[usize]) {
        for &m in members {
            assert_eq!(self.call(m, &format!("join({GROUP:?})")), "true");
        }
        self.r.net.run_for(Duration::from_secs(2));
    }

    fn publish(&mut self, from: usize, text: &str) {
        assert_eq!(
            self.call(from, &format!("publish({GROUP:?}, {text:?})")),
            "true"
        );
        self.r.net.run_for(Duration::from_secs(2));
    }

    /// What node `i` received in the group, comma-separated.
    fn received(&mut self, i: usize) -> String {
        let code = format!(
            "table.concat(peerlet.lookup(kbr.id().id, {:?}):received({GROUP:?}), ',')",
            self.app.to_string()
        );
        self.r.eval(i, &code).unwrap()
    }

    fn children(&mut self, i: usize) -> usize {
        self.call(i, &format!("children({GROUP:?})"))
            .parse()
            .unwrap()
    }

    fn root(&self) -> usize {
        self.r
            .index_of(&self.r.net.oracle().successor(&Id::key(GROUP)).id)
    }

    /// Every live node with the peerlet: members got `want`, others nothing.
    fn check(&mut self, members: &[usize], want: &str, installed: &[usize]) {
        for i in self.r.net.live() {
            if !installed.contains(&i) {
                continue;
            }
            let expect = if members.contains(&i) { want } else { "" };
            assert_eq!(self.received(i), expect, "node {i}");
        }
    }
}

#[test]
fn scribe_publish_reaches_every_member_through_a_tree_built_by_joins() {
    let mut s = Scribe::new(41, |_, _| false);
    let all = s.r.all();
    let root = s.root();
    let members: Vec<usize> = (0..NODES).filter(|i| i % 2 == 1 && *i != root).collect();
    s.join(&members);

    // A real tree: the root does not adopt every member itself, and the
    // edges are one per tree node below the root.
    let edges: usize = (0..NODES).map(|i| s.children(i)).sum();
    let root_children = s.children(root);
    assert!(
        root_children < members.len(),
        "root has {root_children} children"
    );
    let tree_nodes = (0..NODES).filter(|&i| i != root && s.children(i) > 0);
    let below_root: std::collections::BTreeSet<usize> =
        members.iter().copied().chain(tree_nodes).collect();
    assert_eq!(
        edges,
        below_root.len(),
        "one parent per node below the root"
    );

    s.publish(0, "first");
    s.publish(members[3], "second");
    s.check(&members, "first,second", &all);

    // A member leaves: its branch withers and it gets nothing more.
    let gone = members[0];
    assert_eq!(s.call(gone, &format!("leave({GROUP:?})")), "true");
    s.publish(4, "third");
    let rest: Vec<usize> = members.iter().copied().filter(|&m| m != gone).collect();
    for &m in &rest {
        assert_eq!(s.received(m), "first,second,third", "node {m}");
    }
    assert_eq!(s.received(gone), "first,second", "nothing after leaving");
    assert_eq!(s.r.reports(), Vec::<String>::new());
}

#[test]
fn scribe_tree_forms_around_the_fifth_of_nodes_without_the_peerlet() {
    // The four nodes before the group's root do not run scribe: nearly
    // every join's last hop is the root's predecessor, so joins must pass
    // through nodes that forward them unchanged.
    let key = Id::key(GROUP);
    let refusing = |r: &SampleRing| -> Vec<usize> {
        let oracle = r.net.oracle();
        let mut out = Vec::new();
        let mut at = oracle.successor(&key);
        for _ in 0..NODES / 5 {
            at = oracle.predecessor_of(&at.id).unwrap();
            out.push(r.index_of(&at.id));
        }
        out
    };
    let mut s = Scribe::new(42, |r, i| refusing(r).contains(&i));
    let without = refusing(&s.r);
    assert_eq!(without.len(), 4);
    let installed: Vec<usize> =
        s.r.all()
            .into_iter()
            .filter(|i| !without.contains(i))
            .collect();
    let root = s.root();
    assert!(installed.contains(&root));
    let members: Vec<usize> = installed
        .iter()
        .copied()
        .filter(|&i| i != root)
        .step_by(2)
        .collect();

    let forwarded = |s: &Scribe| -> u64 {
        without
            .iter()
            .map(|&i| s.r.net.node(i).kbr.stats().forwarded)
            .sum()
    };
    let before = forwarded(&s);
    s.join(&members);
    assert!(
        forwarded(&s) > before,
        "joins went through nodes without scribe"
    );

    let outsider = installed
        .iter()
        .copied()
        .find(|i| !members.contains(i))
        .unwrap();
    s.publish(outsider, "from outside");
    s.publish(members[1], "from a member");
    s.check(&members, "from outside,from a member", &installed);
    assert_eq!(s.r.reports(), Vec::<String>::new());
}

/// Builds a tree, takes its busiest inner node out with `drop_out`, waits
/// for the refreshes, and checks a publication reaches every other member.
fn subtree_rejoins_after(seed: u64, drop_out: impl FnOnce(&mut SampleRing, usize)) {
    let mut s = Scribe::new(seed, |_, _| false);
    let all = s.r.all();
    let root = s.root();
    let members: Vec<usize> = (0..NODES).filter(|i| i % 3 != 0 && *i != root).collect();
    s.join(&members);
    s.publish(0, "before");
    s.check(&members, "before", &all);

    // An inner node of the tree (not the root) with the most children.
    let inner = (0..NODES)
        .filter(|&i| i != root)
        .max_by_key(|&i| s.children(i))
        .unwrap();
    assert!(s.children(inner) >= 2, "an inner node with a subtree");
    drop_out(&mut s.r, inner);
    let members: Vec<usize> = members.into_iter().filter(|&m| m != inner).collect();
    let installed: Vec<usize> = all.into_iter().filter(|&i| i != inner).collect();
    // Its children's refreshes (every 5 s) find a new way to the root.
    s.r.net.run_for(Duration::from_secs(12));
    let from = members[members.len() - 1];
    s.publish(from, "after");
    s.check(&members, "before,after", &installed);
}

#[test]
fn scribe_subtree_rejoins_around_a_crashed_inner_node() {
    subtree_rejoins_after(43, |r, inner| r.net.crash(inner));
}

#[test]
fn scribe_subtree_rejoins_around_an_inner_node_that_drops_the_peerlet() {
    // The node stays in the ring but no longer runs scribe: it now passes
    // joins on unchanged, like a node that refuses per-hop code.
    subtree_rejoins_after(44, |r, inner| {
        let m = r.managers[inner].clone();
        m.0.borrow_mut().unload("scribe").unwrap();
    });
}
