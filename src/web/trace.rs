//! A trace typed in the page: the console's `.trace` (a routed probe, see
//! [`crate::kbr::trace`]) from the node the user picked, as JSON the page
//! draws hop by hop.

use serde::Serialize;

use crate::id::Id;
use crate::kbr::trace::TraceReport;
use crate::node::NodeHandle;

/// Longest key text accepted: a name or 40 hex digits.
pub const MAX_KEY_LEN: usize = 256;

/// What the page draws.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TraceView {
    /// The key traced to (hashed from the text when it was a name).
    pub key: String,
    /// The node the probe started from.
    pub from: String,
    pub hops: Vec<HopView>,
    /// Why the trace ended before the root answered, if it did.
    pub incomplete: Option<String>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct HopView {
    pub hop: u32,
    pub id: String,
    pub addr: String,
    /// From the start of the trace until the source heard from this hop.
    pub ms: f64,
    pub root: bool,
}

/// The key `text` names, the way `.trace` reads it: 40 hex digits are an
/// id, anything else a name hashed like `kbr.key(name)`.
pub fn key_of(text: &str) -> Result<Id, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("give a key: a name, or 40 hex digits".into());
    }
    if text.len() > MAX_KEY_LEN {
        return Err(format!("a key of at most {MAX_KEY_LEN} bytes, please"));
    }
    Ok(text.parse::<Id>().unwrap_or_else(|_| Id::key(text)))
}

/// Traces `key` from `node` (blocking until the root answered or the
/// node's lookup timeout).
pub fn trace(node: &NodeHandle, key: Id) -> Result<TraceView, String> {
    let report = node.trace(key).map_err(|e| e.to_string())?;
    Ok(view(node, &report))
}

fn view(node: &NodeHandle, r: &TraceReport) -> TraceView {
    TraceView {
        key: r.key.to_string(),
        from: node.id().to_string(),
        hops: r
            .hops
            .iter()
            .map(|h| HopView {
                hop: h.hop,
                id: h.node.id.to_string(),
                addr: h.node.addr.to_string(),
                ms: h.after.as_secs_f64() * 1e3,
                root: h.root,
            })
            .collect(),
        incomplete: r.incomplete.clone(),
    }
}
