//! peerlets/dht.lua against bad input from its peers (issue 14): a replica
//! that sends older versions, a digest that lies, a handover that stops
//! half way. In each, the newest version wins and nothing acknowledged is
//! lost.

mod common;

use std::time::Duration;

use common::dht::{copy, dht_with, holders, want_holders};
use common::samples::SampleRing;
use peerlet::id::{AppId, Id};

const NODES: usize = 20;

/// dht.lua, but the node running it lies: every copy it gives away is an
/// old one ("old", version 1), its answers to digests claim far newer
/// versions of everything (which it never sends when asked), and its own
/// digests are noise. It stores honestly, so its acknowledgements are true.
fn liar() -> String {
    dht_with(&[(
        "\nreturn P\n",
        r#"
local honest = P.deliver
local function stale(k) return { v = "old", ver = 1 } end
function P.peek(k) return stale(k) end
function P.deliver(key, msg, from)
  if type(msg) ~= "table" then return end
  if msg.op == "digest" then
    local claims, all = {}, {}
    for k in pairs(pos) do
      claims[k] = { 1000, "ffffffffffffffffffffffffffffffffffffffff" }
      kbr.send(from, { op = "store", items = { { k = k, rec = stale(k) } } })
    end
    for b = 1, 16 do all[b] = b end
    kbr.send(from, { op = "have", after = msg.after, up_to = msg.up_to, buckets = all, items = claims })
  elseif msg.op == "want" then
    local items = {}
    for _, k in ipairs(msg.names) do items[#items + 1] = { k = k, rec = stale(k) } end
    kbr.send(from, { op = "store", items = items })
  elseif msg.op == "store" or msg.op == "past" then
    honest(key, msg, from)
  end
end
local real_digest = digest
digest = function(b) local s = real_digest(b); for i = 1, 16 do s[i] = "lie" .. i end; return s end
return P
"#,
    )])
}

/// Puts `item-0..n` twice (versions 1 and 2, values `a-i` then `b-i`),
/// each writer putting its share in turn; every put must be acknowledged.
fn put_twice(r: &mut SampleRing, app: AppId, n: usize, writers: &[usize]) {
    for (round, want) in [("a", "1"), ("b", "2")] {
        let lines: Vec<(usize, String)> = writers
            .iter()
            .enumerate()
            .map(|(w, &node)| {
                let line = format!(
                    "local out = {{}} for i = {w}, {}, {} do local k = 'item-' .. i \
                     out[#out + 1] = k .. '=' .. tostring((peerlet.lookup(kbr.key(k), {:?}):put(k, '{round}-' .. i))) end \
                     return table.concat(out, ',')",
                    n - 1,
                    writers.len(),
                    app.to_string()
                );
                (node, line)
            })
            .collect();
        for (w, out) in r
            .eval_many(&lines, Duration::from_secs(300))
            .iter()
            .enumerate()
        {
            let expect: Vec<String> = (w..n)
                .step_by(writers.len())
                .map(|i| format!("item-{i}={want}"))
                .collect();
            assert_eq!(
                out.as_deref(),
                Ok(expect.join(",").as_str()),
                "puts {round} by writer {w}"
            );
        }
    }
}

/// Every item reads back as its last acknowledged write, from every reader.
fn assert_all_read_back(r: &mut SampleRing, app: AppId, n: usize, readers: &[usize]) {
    for &reader in readers {
        let line = format!(
            "local out = {{}} for i = 0, {} do local k = 'item-' .. i \
             local v, ver = peerlet.lookup(kbr.key(k), {:?}):get(k) \
             out[#out + 1] = tostring(v) .. '/' .. tostring(ver) end \
             return table.concat(out, ',')",
            n - 1,
            app.to_string()
        );
        let want: Vec<String> = (0..n).map(|i| format!("b-{i}/2")).collect();
        let out = r.eval_many(&[(reader, line)], Duration::from_secs(120));
        assert_eq!(
            out[0].as_deref(),
            Ok(want.join(",").as_str()),
            "reads at node {reader}"
        );
    }
}

#[test]
fn dht_a_replica_sending_older_versions_and_lying_digests_changes_no_acknowledged_item() {
    const ITEMS: usize = 60;
    let mut r = SampleRing::new(NODES, 31);
    let liar_node = 7;
    let honest: Vec<usize> = (0..NODES).filter(|&i| i != liar_node).collect();
    let src = common::samples::source("dht");
    let app = common::sim::install_on(&mut r.net, &r.managers, &honest, "dht", &src);
    let lying = common::sim::install_on(&mut r.net, &r.managers, &[liar_node], "dht", &liar());
    assert_eq!(app, lying, "the liar runs under the same app id");
    put_twice(&mut r, app, ITEMS, &honest);
    let near_liar = (0..ITEMS)
        .filter(|i| want_holders(&r, &format!("item-{i}"), 3).contains(&liar_node))
        .count();
    assert!(near_liar >= 5, "the liar holds copies of {near_liar} items");

    // Several rounds of repair with the liar in them.
    r.net.run_for(Duration::from_secs(60));
    assert_eq!(r.reports(), Vec::<String>::new());
    for i in 0..ITEMS {
        let item = format!("item-{i}");
        for n in want_holders(&r, &item, 3) {
            if n != liar_node {
                assert_eq!(
                    copy(&r, n, &item),
                    Some((2, Some(format!("b-{i}")))),
                    "{item} on honest replica {n}"
                );
            }
        }
    }
    assert_all_read_back(&mut r, app, ITEMS, &[0, 12, 19]);

    // The liar's old copies, sent straight to a root, lose there too.
    let item = (0..ITEMS)
        .map(|i| format!("item-{i}"))
        .find(|it| want_holders(&r, it, 3).contains(&liar_node))
        .unwrap();
    let root = r.replica_set(&Id::key(&item), 1)[0];
    let line = format!(
        "return peerlet.at({{id = {:?}, addr = {:?}}}, {:?}):copy({item:?}, {{v = 'old', ver = 1}})",
        r.net.me(root).id.to_string(),
        r.net.me(root).addr.to_string(),
        app.to_string()
    );
    let out = r.eval(liar_node, &line).unwrap();
    assert!(
        out.starts_with("false\t"),
        "an older copy is refused: {out}"
    );
    assert_eq!(copy(&r, root, &item).map(|c| c.0), Some(2));
}

#[test]
fn dht_a_handover_that_stops_half_way_loses_nothing() {
    const ITEMS: usize = 200;
    let mut r = SampleRing::new(NODES, 32);
    // Small rounds, so that the handover takes several of them.
    let src = dht_with(&[("local SYNC_BYTES = 16384", "local SYNC_BYTES = 300")]);
    let all = r.all();
    let app = common::sim::install_on(&mut r.net, &r.managers, &all, "dht", &src);
    put_twice(&mut r, app, ITEMS, &all);
    r.net.run_for(Duration::from_secs(2));

    // The root holding the most items gets a newcomer in front of it, which
    // becomes the root of all of them but one.
    let mut by_root: Vec<Vec<Id>> = vec![Vec::new(); NODES];
    for i in 0..ITEMS {
        let key = Id::key(format!("item-{i}"));
        by_root[r.replica_set(&key, 1)[0]].push(key);
    }
    let giver = (0..NODES).max_by_key(|&n| by_root[n].len()).unwrap();
    // In ring order from the giver's predecessor: keys past zero come last.
    let giver_id = r.net.me(giver).id;
    let mut keys = by_root[giver].clone();
    keys.sort_by_key(|k| (*k <= giver_id, *k));
    assert!(
        keys.len() >= 6,
        "node {giver} is root of {} items",
        keys.len()
    );
    let newcomer_id = keys[keys.len() - 2];
    let newcomer = r.join(newcomer_id, 0, &[]);
    common::sim::install_on(&mut r.net, &r.managers, &[newcomer], "dht", &src);
    for _ in 0..100 {
        if r.net.live().contains(&newcomer) {
            break;
        }
        r.net.run_for(Duration::from_millis(20));
    }
    let moving: Vec<String> = (0..ITEMS)
        .map(|i| format!("item-{i}"))
        .filter(|it| r.replica_set(&Id::key(it), 1)[0] == newcomer)
        .collect();
    assert!(moving.len() >= 4, "the newcomer is root of {moving:?}");

    // As soon as the newcomer holds some of its items but not all, the
    // old root crashes: the handover stops half way.
    let held = |r: &SampleRing| {
        moving
            .iter()
            .filter(|it| copy(r, newcomer, it).is_some())
            .count()
    };
    let mut steps = 0;
    while held(&r) == 0 && steps < 600 {
        r.net.run_for(Duration::from_millis(100));
        steps += 1;
    }
    let got = held(&r);
    assert!(
        got > 0 && got < moving.len(),
        "half way: {got} of {}",
        moving.len()
    );
    r.net.crash(giver);

    // The rest comes from the other replicas; every item is on its three
    // replicas again and reads back as written last.
    for _ in 0..120 {
        r.net.run_for(Duration::from_secs(1));
        if moving
            .iter()
            .all(|it| holders(&r, it) == want_holders(&r, it, 3))
        {
            break;
        }
    }
    for it in &moving {
        assert_eq!(holders(&r, it), want_holders(&r, it, 3), "{it}");
    }
    assert_eq!(
        held(&r),
        moving.len(),
        "the newcomer holds all it is root of"
    );
    let readers: Vec<usize> = r.net.live().into_iter().take(2).collect();
    assert_all_read_back(&mut r, app, ITEMS, &readers);
}
