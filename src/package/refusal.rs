//! Why a node refused a peerlet package, and how often.
//!
//! Every refusal is a [`Refusal`], with the facts a person needs to act on
//! it; its kind is a [`RefusalReason`] (as `std::io::Error` has an
//! `ErrorKind`), and a node keeps one counter per kind so that an operator (or a test) can see what is being refused
//! without reading logs. The counters only grow.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use super::header::HeaderError;

/// Why a node refused (or a signing tool rejected) a peerlet package: the
/// one refusal type, from a broken package to a policy that says no. Its
/// kind, [`Refusal::reason`], is what the counters count.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("peerlet package of {size} bytes is over this node's limit of {max} bytes")]
    Oversize { size: usize, max: usize },
    #[error("peerlet package source is not UTF-8 text (byte {valid_up_to} is invalid)")]
    NotText { valid_up_to: usize },
    #[error("peerlet package is a precompiled Lua chunk; only source text is run")]
    BinaryChunk,
    #[error("peerlet package header: {0}")]
    Header(#[from] HeaderError),
    #[error("peerlet `{name}`: malformed signature: {reason}")]
    MalformedSignature { name: String, reason: String },
    #[error("peerlet package encoding: {0}")]
    MalformedEncoding(String),
    #[error("peerlet `{name}`: signature check failed with key id {key_id}: the code or the signature was changed after signing")]
    BadSignature { name: String, key_id: String },
    #[error("peerlet `{name}`: the signed trusted comment says `{comment}` but the header says `{header}`")]
    CommentMismatch {
        name: String,
        comment: String,
        header: String,
    },
    #[error("peerlet `{name}`: message claims app id {claimed} but the code's key and name make {actual}")]
    AppIdMismatch {
        name: String,
        claimed: String,
        actual: String,
    },
    #[error("peerlet package: SHA-256 is {actual}, but the code locator names {expected}")]
    HashMismatch { expected: String, actual: String },
    #[error("peerlet `{name}`: signed with key id {signed_with}, not with the given key {given}")]
    WrongKey {
        name: String,
        signed_with: String,
        given: String,
    },
    #[error("peerlet `{name}`: publisher key id {key_id} is not trusted by this node")]
    UnknownPublisher { name: String, key_id: String },
    #[error("peerlet `{name}`: a per-hop app, and this node runs no per-hop apps")]
    PerHopDenied { name: String },
}

impl Refusal {
    /// The counter this refusal goes to.
    pub fn reason(&self) -> RefusalReason {
        match self {
            Refusal::Oversize { .. } => RefusalReason::Oversize,
            Refusal::NotText { .. } => RefusalReason::NotText,
            Refusal::BinaryChunk => RefusalReason::BinaryChunk,
            Refusal::Header(_) => RefusalReason::BadHeader,
            Refusal::MalformedSignature { .. } => RefusalReason::MalformedSignature,
            Refusal::MalformedEncoding(_) => RefusalReason::MalformedEncoding,
            Refusal::BadSignature { .. } => RefusalReason::BadSignature,
            Refusal::CommentMismatch { .. } => RefusalReason::CommentMismatch,
            Refusal::AppIdMismatch { .. } => RefusalReason::AppIdMismatch,
            Refusal::HashMismatch { .. } => RefusalReason::HashMismatch,
            Refusal::WrongKey { .. } => RefusalReason::UnknownPublisher,
            Refusal::UnknownPublisher { .. } => RefusalReason::UnknownPublisher,
            Refusal::PerHopDenied { .. } => RefusalReason::PerHopDenied,
        }
    }
}

/// The kind of a [`Refusal`]: what a counter counts and what a caller acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RefusalReason {
    /// The package is larger than the node's limit.
    Oversize,
    /// The source is not UTF-8 text.
    NotText,
    /// The source is a precompiled Lua chunk (`\x1bLua`), never run.
    BinaryChunk,
    /// The first line is not a valid `--@peerlet` header.
    BadHeader,
    /// The signature text is not a minisign signature we accept.
    MalformedSignature,
    /// The transfer encoding does not decode, or is not canonical.
    MalformedEncoding,
    /// The signing key is not among the node's trusted publishers.
    UnknownPublisher,
    /// The signature does not match the code (code or signature altered).
    BadSignature,
    /// The signed trusted comment names other peerlet fields than the header.
    CommentMismatch,
    /// A per-hop app, and this node runs no per-hop apps.
    PerHopDenied,
    /// A message claims an app id that the code's key and name do not make.
    AppIdMismatch,
    /// The bytes received do not have the SHA-256 the code locator names.
    HashMismatch,
}

impl RefusalReason {
    /// What the person who wants the code to run can do about a refusal of
    /// this kind by a node that fetched it (for the error a caller sees).
    pub fn fix(self) -> &'static str {
        match self {
            RefusalReason::UnknownPublisher => {
                "the nodes that should run it must trust its publisher: `--trust KEY.pub` \
                 or a line in their DATA/trust.conf"
            }
            RefusalReason::PerHopDenied => {
                "those nodes' trust.conf denies per-hop apps; use nodes that allow them, \
                 or make the peerlet end-node"
            }
            RefusalReason::Oversize => {
                "make the package smaller, or raise those nodes' package limit in trust.conf"
            }
            RefusalReason::BadSignature
            | RefusalReason::CommentMismatch
            | RefusalReason::MalformedSignature => {
                "sign the code again (`peerlet sign`) and install it again"
            }
            RefusalReason::AppIdMismatch => {
                "the message names an app id its code's key and name do not make: call \
                 the peerlet by name, or by the app id `.apps` shows"
            }
            RefusalReason::HashMismatch => {
                "a node sent other bytes than the code locator names; install the code \
                 again so the code store holds the right package"
            }
            RefusalReason::NotText
            | RefusalReason::BinaryChunk
            | RefusalReason::BadHeader
            | RefusalReason::MalformedEncoding => {
                "publish the peerlet as signed Lua source with a `--@peerlet` header"
            }
        }
    }

    /// Every reason, in counter order.
    pub const ALL: [RefusalReason; 12] = [
        RefusalReason::Oversize,
        RefusalReason::NotText,
        RefusalReason::BinaryChunk,
        RefusalReason::BadHeader,
        RefusalReason::MalformedSignature,
        RefusalReason::MalformedEncoding,
        RefusalReason::UnknownPublisher,
        RefusalReason::BadSignature,
        RefusalReason::CommentMismatch,
        RefusalReason::PerHopDenied,
        RefusalReason::AppIdMismatch,
        RefusalReason::HashMismatch,
    ];

    /// A short kebab-case label for logs, metrics and the REPL.
    pub fn label(self) -> &'static str {
        match self {
            RefusalReason::Oversize => "oversize",
            RefusalReason::NotText => "not-text",
            RefusalReason::BinaryChunk => "binary-chunk",
            RefusalReason::BadHeader => "bad-header",
            RefusalReason::MalformedSignature => "malformed-signature",
            RefusalReason::MalformedEncoding => "malformed-encoding",
            RefusalReason::UnknownPublisher => "unknown-publisher",
            RefusalReason::BadSignature => "bad-signature",
            RefusalReason::CommentMismatch => "comment-mismatch",
            RefusalReason::PerHopDenied => "per-hop-denied",
            RefusalReason::AppIdMismatch => "app-id-mismatch",
            RefusalReason::HashMismatch => "hash-mismatch",
        }
    }

    fn index(self) -> usize {
        RefusalReason::ALL
            .iter()
            .position(|r| *r == self)
            .expect("listed in ALL")
    }
}

impl fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One counter per [`RefusalReason`], shared by whoever holds the policy
/// (counting takes `&self`, so the policy can sit behind an `Arc`).
#[derive(Debug, Default)]
pub struct RefusalCounters {
    counts: [AtomicU64; RefusalReason::ALL.len()],
}

impl RefusalCounters {
    /// Counts one refusal.
    pub fn record(&self, reason: RefusalReason) {
        self.counts[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Refusals so far for one reason.
    pub fn get(&self, reason: RefusalReason) -> u64 {
        self.counts[reason.index()].load(Ordering::Relaxed)
    }

    /// Refusals so far for all reasons that occurred, in [`RefusalReason::ALL`] order.
    pub fn snapshot(&self) -> Vec<(RefusalReason, u64)> {
        RefusalReason::ALL
            .iter()
            .map(|r| (*r, self.get(*r)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// Refusals so far, all reasons together.
    pub fn total(&self) -> u64 {
        RefusalReason::ALL.iter().map(|r| self.get(*r)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_reason() {
        let c = RefusalCounters::default();
        c.record(RefusalReason::BadSignature);
        c.record(RefusalReason::BadSignature);
        c.record(RefusalReason::HashMismatch);
        assert_eq!(c.get(RefusalReason::BadSignature), 2);
        assert_eq!(c.get(RefusalReason::Oversize), 0);
        assert_eq!(
            c.snapshot(),
            vec![
                (RefusalReason::BadSignature, 2),
                (RefusalReason::HashMismatch, 1)
            ]
        );
        assert_eq!(c.total(), 3);
    }

    #[test]
    fn labels_are_distinct() {
        let mut labels: Vec<_> = RefusalReason::ALL.iter().map(|r| r.label()).collect();
        labels.sort();
        labels.dedup();
        assert_eq!(labels.len(), RefusalReason::ALL.len());
    }
}
