//! peerlets/dht.lua as tests drive it: its source with other settings, the
//! console line that calls it, and the copies nodes hold.

use peerlet::id::AppId;

use super::samples::{source, SampleRing};

/// dht.lua with some settings changed: each `(old, new)` replaces a line
/// of its settings block, which must be there as given.
pub fn dht_with(changes: &[(&str, &str)]) -> String {
    let mut src = source("dht");
    for (old, new) in changes {
        assert!(src.contains(old), "dht.lua has no `{old}`");
        src = src.replacen(old, new, 1);
    }
    src
}

/// A handle on `app` at the root of `item`, as a console line starts it.
pub fn at_root(app: AppId, item: &str) -> String {
    format!("peerlet.lookup(kbr.key({item:?}), {:?})", app.to_string())
}

/// A handle on `app` at the node whose console runs the line.
pub fn here(app: AppId) -> String {
    format!("peerlet.at(kbr.id(), {:?})", app.to_string())
}

/// Node `i`'s copy of `item`: its version and its value (None: a tombstone).
pub fn copy(r: &SampleRing, i: usize, item: &str) -> Option<(i128, Option<String>)> {
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
        ciborium::Value::Bytes(b) => String::from_utf8(b).unwrap(),
        ciborium::Value::Text(t) => t,
        other => format!("{other:?}"),
    });
    Some((ver, value))
}

/// The live nodes that hold a copy of `item`, in node order.
pub fn holders(r: &SampleRing, item: &str) -> Vec<usize> {
    r.net
        .live()
        .into_iter()
        .filter(|&i| copy(r, i, item).is_some())
        .collect()
}

/// The `n` live nodes that should hold `item`, sorted.
pub fn want_holders(r: &SampleRing, item: &str, n: usize) -> Vec<usize> {
    let mut set = r.replica_set(&peerlet::id::Id::key(item), n);
    set.sort();
    set
}
