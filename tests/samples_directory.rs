//! peerlets/directory.lua on a 20-node simulated ring: ten categories
//! registered from many nodes, found from every node, each kept at the root
//! of its key and the two nodes after it; entries whose time-to-live ran out disappear, refreshed ones stay.

mod common;

use std::time::Duration;

use common::samples::SampleRing;
use peerlet::id::{AppId, Id};

const NODES: usize = 20;
const CATEGORIES: usize = 10;

fn handle(app: AppId, category: &str) -> String {
    format!(
        "peerlet.lookup(kbr.key({category:?}), {:?})",
        app.to_string()
    )
}

/// Console code printing every category's providers: `a,b;c;...`.
fn find_all(app: AppId) -> String {
    format!(
        "(function() local out = {{}} for i = 0, {} do local c = 'cat' .. i \
         out[#out + 1] = table.concat(peerlet.lookup(kbr.key(c), {:?}):find(c), ',') end \
         return table.concat(out, ';') end)()",
        CATEGORIES - 1,
        app.to_string()
    )
}

fn provider(c: usize, p: usize) -> String {
    format!("svc{p}.cat{c}")
}

/// What find_all prints when providers 0..n of every category are listed.
fn listing(providers: usize) -> String {
    (0..CATEGORIES)
        .map(|c| {
            (0..providers)
                .map(|p| provider(c, p))
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect::<Vec<_>>()
        .join(";")
}

#[test]
fn directory_serves_ten_categories_from_every_node_and_forgets_expired_providers() {
    let mut r = SampleRing::new(NODES, 31);
    let app = r.install(&r.all(), "directory");

    // Three long-lived providers per category and one with a short TTL,
    // each registered from a different node.
    let mut lines = Vec::new();
    for c in 0..CATEGORIES {
        let h = handle(app, &format!("cat{c}"));
        for p in 0..4 {
            let ttl = if p == 3 { 5 } else { 60 };
            let node = (c * 4 + p) % NODES;
            lines.push((
                node,
                format!("{h}:register('cat{c}', '{}', {ttl})", provider(c, p)),
            ));
        }
    }
    // One console line per node at a time: two rounds of twenty.
    for round in lines.chunks(NODES) {
        for (out, (node, code)) in r
            .eval_many(round, Duration::from_secs(30))
            .iter()
            .zip(round)
        {
            assert_eq!(out.as_deref(), Ok("true"), "node {node}: {code}");
        }
    }

    let finds: Vec<(usize, String)> = (0..NODES).map(|i| (i, find_all(app))).collect();
    let want = listing(4);
    for (i, out) in r
        .eval_many(&finds, Duration::from_secs(60))
        .iter()
        .enumerate()
    {
        assert_eq!(out.as_deref(), Ok(want.as_str()), "find from node {i}");
    }

    // Each category is kept at the root of its key and the two nodes after
    // it (its replica set), and only there.
    for c in 0..CATEGORIES {
        let root = r.index_of(&r.net.oracle().successor(&Id::key(format!("cat{c}"))).id);
        let here = r.call_local(root, app, "categories()").unwrap();
        assert!(
            here.contains(&format!("\"cat{c}\"")),
            "cat{c} at its root: {here}"
        );
    }
    for c in 0..CATEGORIES {
        let mut set = r.replica_set(&Id::key(format!("cat{c}")), 3);
        set.sort();
        let holders: Vec<usize> = (0..NODES)
            .filter(|&i| {
                let here = r.call_local(i, app, "categories()").unwrap();
                here.contains(&format!("\"cat{c}\""))
            })
            .collect();
        assert_eq!(holders, set, "cat{c} on its replica set");
    }

    // svc0 of cat0 refreshes its entry with a short TTL; svc3 (TTL 5) does not.
    let h = handle(app, "cat0");
    assert_eq!(
        r.eval(0, &format!("{h}:register('cat0', 'svc0.cat0', 8)"))
            .as_deref(),
        Ok("true")
    );
    r.net.run_for(Duration::from_secs(6));
    let want_cat0 = "svc0.cat0,svc1.cat0,svc2.cat0";
    let got = r.eval(7, &format!("table.concat({h}:find('cat0'), ',')"));
    assert_eq!(got.as_deref(), Ok(want_cat0), "the TTL-5 entry is gone");
    let finds: Vec<(usize, String)> = (0..NODES).map(|i| (i, find_all(app))).collect();
    let want = listing(3);
    for (i, out) in r
        .eval_many(&finds, Duration::from_secs(60))
        .iter()
        .enumerate()
    {
        assert_eq!(out.as_deref(), Ok(want.as_str()), "find from node {i}");
    }
    // svc0.cat0's refresh gave it 8 s from then, not 60: it runs out now.
    r.net.run_for(Duration::from_secs(4));
    let got = r.eval(7, &format!("table.concat({h}:find('cat0'), ',')"));
    assert_eq!(got.as_deref(), Ok("svc1.cat0,svc2.cat0"));

    // Unregistering takes a provider off at once.
    let h = handle(app, "cat5");
    assert_eq!(
        r.eval(3, &format!("{h}:unregister('cat5', 'svc1.cat5')"))
            .as_deref(),
        Ok("true")
    );
    assert_eq!(
        r.eval(3, &format!("{h}:unregister('cat5', 'svc1.cat5')"))
            .as_deref(),
        Ok("false")
    );
    let got = r.eval(12, &format!("table.concat({h}:find('cat5'), ',')"));
    assert_eq!(got.as_deref(), Ok("svc0.cat5,svc2.cat5"));
    assert_eq!(r.reports(), Vec::<String>::new());
}
