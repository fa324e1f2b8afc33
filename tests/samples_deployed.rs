//! The samples as people use them: signed, installed on one node, and
//! deployed by traffic alone. A directory category's root (and replica
//! set) gets the directory when the first provider registers there; Scribe builds its
//! tree and delivers to every member while a fifth of the nodes refuse to
//! run per-hop code.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::deploy::{trusting, Overlay};
use common::samples::source;
use peerlet::id::Id;
use peerlet::peerlet::ManagerConfig;

#[test]
fn registering_in_a_new_category_deploys_the_directory_at_its_root() {
    let mut o = Overlay::new(20, 83, &ManagerConfig::default());
    o.install(0, &source("directory"));
    o.net.run_for(Duration::from_secs(1));
    let oracle = o.net.oracle();
    let mut roots = BTreeSet::from([0]);
    for i in 0..10 {
        let code = format!(
            "peerlet.lookup(kbr.key('cat{i}'), 'directory'):register('cat{i}', 'provider{i}', 60)"
        );
        assert_eq!(o.eval(0, &code), Ok("true".into()), "{code}");
        // The root copies the list to the next two nodes (its replica set),
        // and those copies deploy the directory there too.
        let root = oracle.successor(&Id::key(format!("cat{i}")));
        roots.insert(o.index(&root.id));
        for next in oracle.successors_of(&root.id, 2) {
            roots.insert(o.index(&next.id));
        }
    }
    for i in 0..10 {
        let code = format!(
            "table.concat(peerlet.lookup(kbr.key('cat{i}'), 'directory'):find('cat{i}'), ',')"
        );
        assert_eq!(o.eval(0, &code), Ok(format!("provider{i}")));
    }
    let running: BTreeSet<usize> = o.running("directory").into_iter().collect();
    assert_eq!(
        running, roots,
        "at the categories' replica sets, nowhere else"
    );
}

#[test]
fn scribe_deployed_by_traffic_reaches_every_member_with_a_fifth_of_nodes_refusing() {
    let mut o = Overlay::new(20, 89, &ManagerConfig::default());
    let group_root = o.index(&o.net.oracle().successor(&Id::key("news")).id);
    let refusing: BTreeSet<usize> = (1..20).filter(|&i| i != group_root).take(4).collect();
    for &i in &refusing {
        let mut policy = trusting(&[&o.publisher]);
        policy.set_run_per_hop(false);
        o.managers[i].0.borrow_mut().set_trust(policy);
    }
    o.install(0, &source("scribe"));
    o.net.run_for(Duration::from_secs(1));
    let members: Vec<usize> = (1..20)
        .filter(|i| !refusing.contains(i) && *i != group_root)
        .step_by(2)
        .collect();
    // Node 0 asks each member to join: the call carries scribe's code
    // locator, so the member deploys scribe and then joins.
    for &m in &members {
        let id = o.net.me(m).id;
        let code = format!("peerlet.lookup('{id}', 'scribe'):join('news')");
        assert_eq!(o.eval(0, &code), Ok("true".into()), "member {m}");
    }
    o.net.run_for(Duration::from_secs(3));
    let publish = "peerlet.lookup(kbr.id().id, 'scribe'):publish('news', 'hello')";
    assert_eq!(o.eval(0, publish), Ok("true".into()));
    o.net.run_for(Duration::from_secs(3));
    for &m in &members {
        let id = o.net.me(m).id;
        let code = format!("table.concat(peerlet.lookup('{id}', 'scribe'):received('news'), ',')");
        assert_eq!(o.eval(0, &code), Ok("hello".into()), "member {m}");
    }
    let running: BTreeSet<usize> = o.running("scribe").into_iter().collect();
    assert!(
        running.is_disjoint(&refusing),
        "refusing nodes run no scribe"
    );
    assert!(
        running.contains(&group_root),
        "the group's root got it by traffic"
    );
}
