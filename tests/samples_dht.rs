//! peerlets/dht.lua on a 20-node simulated ring: put and get from every
//! node, copies on exactly the replica set, versioned writes, and a value
//! that outlives two of its three replicas crashing at once.

mod common;

use std::time::Duration;

use common::samples::SampleRing;
use peerlet::id::{AppId, Id};

const NODES: usize = 20;

fn lookup(app: AppId, item: &str) -> String {
    format!("peerlet.lookup(kbr.key({item:?}), {:?})", app.to_string())
}

/// The version of node `i`'s copy of `item`, and whether it is removed.
fn copy(r: &SampleRing, i: usize, item: &str) -> Option<(i128, Option<ciborium::Value>)> {
    let ciborium::Value::Map(fields) = r.stored(i, "dht", item)? else {
        panic!("node {i}: copy of {item} is not a map");
    };
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k.as_bytes().map(|b| b.as_slice()) == Some(name.as_bytes()))
            .map(|(_, v)| v.clone())
    };
    let ver = match field("ver") {
        Some(ciborium::Value::Integer(n)) => n.into(),
        other => panic!("node {i}: version of {item} is {other:?}"),
    };
    let value = field("v").map(|v| match v {
        ciborium::Value::Bytes(b) => ciborium::Value::Text(String::from_utf8(b).unwrap()),
        other => other,
    });
    Some((ver, value))
}

/// The live nodes that hold a copy of `item`, sorted.
fn holders(r: &SampleRing, item: &str) -> Vec<usize> {
    r.net
        .live()
        .into_iter()
        .filter(|&i| copy(r, i, item).is_some())
        .collect()
}

fn sorted(mut v: Vec<usize>) -> Vec<usize> {
    v.sort();
    v
}

#[test]
fn dht_put_and_get_from_every_node_keep_three_copies_and_versions() {
    let mut r = SampleRing::new(NODES, 11);
    let app = r.install(&r.all(), "dht");

    // Every node writes an item of its own, all at once.
    let puts: Vec<(usize, String)> = (0..NODES)
        .map(|i| {
            let h = lookup(app, &format!("item-{i}"));
            (i, format!("{h}:put(\"item-{i}\", \"value-{i}\")"))
        })
        .collect();
    for (i, out) in r
        .eval_many(&puts, Duration::from_secs(30))
        .iter()
        .enumerate()
    {
        assert_eq!(out.as_deref(), Ok("1"), "put from node {i}");
    }

    // Every node reads every item.
    let read_all = format!(
        "local out = {{}} for i = 0, {} do local k = \"item-\" .. i \
         out[#out + 1] = tostring((peerlet.lookup(kbr.key(k), {:?}):get(k))) end \
         return table.concat(out, \",\")",
        NODES - 1,
        app.to_string()
    );
    let want: Vec<String> = (0..NODES).map(|i| format!("value-{i}")).collect();
    let gets: Vec<(usize, String)> = (0..NODES).map(|i| (i, read_all.clone())).collect();
    for (i, out) in r
        .eval_many(&gets, Duration::from_secs(60))
        .iter()
        .enumerate()
    {
        assert_eq!(
            out.as_deref(),
            Ok(want.join(",").as_str()),
            "gets from node {i}"
        );
    }

    // Each item has exactly three copies: on its root and the next two nodes.
    for i in 0..NODES {
        let item = format!("item-{i}");
        let set = r.replica_set(&Id::key(&item), 3);
        assert_eq!(holders(&r, &item), sorted(set.clone()), "{item}");
        for n in set {
            assert_eq!(copy(&r, n, &item).unwrap().0, 1, "{item} on node {n}");
        }
    }

    // Versioned writes: the higher version wins, whatever arrives last.
    let h = lookup(app, "colour");
    assert_eq!(
        r.eval(3, &format!("{h}:put('colour', 'red', 7)"))
            .as_deref(),
        Ok("7")
    );
    assert_eq!(
        r.eval(9, &format!("{h}:put('colour', 'old', 3)"))
            .as_deref(),
        Ok("nil\tstale version 3 (have 7)")
    );
    assert_eq!(
        r.eval(5, &format!("{h}:put('colour', 'blue')")).as_deref(),
        Ok("8")
    );
    assert_eq!(
        r.eval(14, &format!("{h}:get('colour')")).as_deref(),
        Ok("blue\t8")
    );
    r.net.run_for(Duration::from_secs(1));
    for n in r.replica_set(&Id::key("colour"), 3) {
        let (ver, value) = copy(&r, n, "colour").expect("a copy");
        assert_eq!(
            (ver, value),
            (8, Some(ciborium::Value::Text("blue".into())))
        );
    }

    // A removal is a newer version too: replicas keep it as a tombstone.
    let h = lookup(app, "item-4");
    assert_eq!(
        r.eval(0, &format!("{h}:remove('item-4')")).as_deref(),
        Ok("true")
    );
    assert_eq!(
        r.eval(1, &format!("{h}:get('item-4')")).as_deref(),
        Ok("nil\t2")
    );
    assert_eq!(
        r.eval(2, &format!("{h}:remove('item-4')")).as_deref(),
        Ok("false")
    );
    r.net.run_for(Duration::from_secs(1));
    for n in r.replica_set(&Id::key("item-4"), 3) {
        assert_eq!(
            copy(&r, n, "item-4"),
            Some((2, None)),
            "tombstone on node {n}"
        );
    }
    assert_eq!(r.reports(), Vec::<String>::new());
}

#[test]
fn dht_value_survives_two_of_three_replicas_crashing_and_is_copied_back_to_three() {
    let mut r = SampleRing::new(NODES, 12);
    let app = r.install(&r.all(), "dht");
    let item = "precious";
    let key = Id::key(item);
    let h = lookup(app, item);
    assert_eq!(
        r.eval(0, &format!("{h}:put('{item}', 'gold')")).as_deref(),
        Ok("1")
    );
    r.net.run_for(Duration::from_secs(1));
    let set = r.replica_set(&key, 3);
    assert_eq!(holders(&r, item), sorted(set.clone()));

    // The root and the first replica fail together.
    r.net.crash(set[0]);
    r.net.crash(set[1]);
    let reader = (0..NODES).find(|i| !set.contains(i)).unwrap();
    let mut read = Err(String::new());
    for _ in 0..10 {
        read = r.eval(reader, &format!("{h}:get('{item}')"));
        if read.as_deref() == Ok("gold\t1") {
            break;
        }
    }
    assert_eq!(
        read.as_deref(),
        Ok("gold\t1"),
        "readable with one copy left"
    );

    // Repair brings it back to three copies, on the new replica set.
    let want = r.replica_set(&key, 3);
    for _ in 0..60 {
        if holders(&r, item) == sorted(want.clone()) {
            break;
        }
        r.net.run_for(Duration::from_secs(1));
    }
    assert_eq!(holders(&r, item), sorted(want.clone()));
    for n in want {
        assert_eq!(
            copy(&r, n, item),
            Some((1, Some(ciborium::Value::Text("gold".into())))),
            "copy on node {n}"
        );
    }
}

#[test]
fn dht_hands_items_over_to_a_node_that_joins_as_their_root() {
    let mut r = SampleRing::new(NODES, 13);
    let app = r.install(&r.all(), "dht");
    let item = "moving";
    let key = Id::key(item);
    let h = lookup(app, item);
    assert_eq!(
        r.eval(2, &format!("{h}:put('{item}', 'box')")).as_deref(),
        Ok("1")
    );
    r.net.run_for(Duration::from_secs(1));
    let before = r.replica_set(&key, 3);
    assert_eq!(holders(&r, item), sorted(before.clone()));

    // A node whose id is the key itself joins: it is the item's root now,
    // the old root and its successor are the other replicas, and the old
    // third replica is one too many.
    let newcomer = r.join(key, 0, &["dht"]);
    let want = vec![newcomer, before[0], before[1]];
    for _ in 0..60 {
        if r.net.is_converged() && holders(&r, item) == sorted(want.clone()) {
            break;
        }
        r.net.run_for(Duration::from_secs(1));
    }
    assert_eq!(r.replica_set(&key, 3), want);
    assert_eq!(holders(&r, item), sorted(want));
    assert_eq!(
        r.eval(7, &format!("{h}:get('{item}')")).as_deref(),
        Ok("box\t1"),
        "read from the new root"
    );
    assert_eq!(copy(&r, newcomer, item).map(|c| c.0), Some(1));
}

#[test]
fn dht_works_on_a_ring_of_one_node() {
    // Alone, a node's replica set is empty (it knows no stretch of ring);
    // dht.lua then takes every key as its own.
    let mut r = SampleRing::new(1, 14);
    let app = r.install(&[0], "dht");
    let h = lookup(app, "solo");
    assert_eq!(
        r.eval(0, &format!("{h}:put('solo', 'yes')")).as_deref(),
        Ok("1")
    );
    assert_eq!(
        r.eval(0, &format!("{h}:get('solo')")).as_deref(),
        Ok("yes\t1")
    );
}
