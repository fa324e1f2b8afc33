//! A node's trust policy: whose code it runs, whether it runs per-hop apps,
//! how large a package it takes, and a count of what it refused.
//!
//! A node builds its policy once at start from `--trust KEY.pub` options and
//! the policy file `trust.conf` in its data directory (format: see
//! [`crate::peerlet::policy_file`]); [`TrustPolicy::load`] does both. With no
//! trusted key at all a node runs no downloaded code.
//!
//! The one call a node makes for fetched code is [`TrustPolicy::admit`]: it
//! checks size, hash, encoding, signature, publisher, app type and app id,
//! in that order, and counts every refusal by reason
//! ([`TrustPolicy::refusals`]).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::id::AppId;
use crate::peerlet::package::{hex, Package, PackageError, DEFAULT_MAX_PACKAGE_BYTES};
use crate::peerlet::policy_file::{self, PolicyFileError};
use crate::peerlet::publisher::{PublicKeyError, PublisherKey};
use crate::peerlet::refusal::{RefusalCounters, RefusalReason};
use crate::peerlet::verified::VerifiedPackage;
use crate::wire::AppType;

/// File name of the policy file inside a node's data directory.
pub const POLICY_FILE_NAME: &str = "trust.conf";

/// A refusal by the policy itself (rather than by a broken package).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("peerlet `{name}`: publisher key id {key_id} is not trusted by this node")]
    UnknownPublisher { name: String, key_id: String },
    #[error("peerlet `{name}`: a per-hop app, and this node runs no per-hop apps")]
    PerHopDenied { name: String },
}

impl Refusal {
    /// The counter this refusal goes to.
    pub fn reason(&self) -> RefusalReason {
        match self {
            Refusal::UnknownPublisher { .. } => RefusalReason::UnknownPublisher,
            Refusal::PerHopDenied { .. } => RefusalReason::PerHopDenied,
        }
    }
}

/// Why a trust policy could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("trusted key: {0}")]
    Key(#[from] PublicKeyError),
    #[error(transparent)]
    PolicyFile(#[from] PolicyFileError),
}

/// Whose code this node runs, and what it refused so far.
#[derive(Debug)]
pub struct TrustPolicy {
    keys: Vec<PublisherKey>,
    run_per_hop: bool,
    max_package_bytes: usize,
    refusals: RefusalCounters,
}

impl Default for TrustPolicy {
    /// Trusts nobody; runs per-hop apps (of trusted publishers); packages up
    /// to [`DEFAULT_MAX_PACKAGE_BYTES`].
    fn default() -> TrustPolicy {
        TrustPolicy {
            keys: Vec::new(),
            run_per_hop: true,
            max_package_bytes: DEFAULT_MAX_PACKAGE_BYTES,
            refusals: RefusalCounters::default(),
        }
    }
}

impl TrustPolicy {
    /// A policy that trusts nobody (see [`TrustPolicy::default`]).
    pub fn new() -> TrustPolicy {
        TrustPolicy::default()
    }

    /// The policy of a node: `data_dir/trust.conf` if it exists, plus every
    /// `--trust` key file. The command line adds keys; it never removes any.
    pub fn load(
        data_dir: Option<&Path>,
        trust_files: &[PathBuf],
    ) -> Result<TrustPolicy, TrustError> {
        let mut policy = TrustPolicy::new();
        if let Some(dir) = data_dir {
            let path = dir.join(POLICY_FILE_NAME);
            if path.exists() {
                policy_file::apply(&path, &mut policy)?;
            }
        }
        for file in trust_files {
            policy.trust(PublisherKey::from_file(file)?);
        }
        Ok(policy)
    }

    /// Trusts code signed by `key` (again trusting a key changes nothing).
    pub fn trust(&mut self, key: PublisherKey) {
        if !self.keys.contains(&key) {
            self.keys.push(key);
        }
    }

    /// Whether per-hop apps run here at all. A node that refuses them still
    /// forwards their messages.
    pub fn set_run_per_hop(&mut self, allow: bool) {
        self.run_per_hop = allow;
    }

    /// See [`TrustPolicy::set_run_per_hop`].
    pub fn run_per_hop(&self) -> bool {
        self.run_per_hop
    }

    /// Largest package (transfer encoding, in bytes) this node takes.
    pub fn set_max_package_bytes(&mut self, max: usize) {
        self.max_package_bytes = max;
    }

    /// See [`TrustPolicy::set_max_package_bytes`].
    pub fn max_package_bytes(&self) -> usize {
        self.max_package_bytes
    }

    /// The trusted publisher keys, in the order they were added.
    pub fn trusted_keys(&self) -> &[PublisherKey] {
        &self.keys
    }

    /// Is code signed by `key` run here?
    pub fn is_trusted(&self, key: &PublisherKey) -> bool {
        self.keys.contains(key)
    }

    /// Trusted keys with this minisign key id (normally at most one).
    pub fn keys_with_id(&self, key_id: [u8; 8]) -> impl Iterator<Item = &PublisherKey> {
        self.keys.iter().filter(move |k| k.key_id() == key_id)
    }

    /// Would this node run this verified package? Counts a refusal.
    pub fn accepts(&self, package: &VerifiedPackage) -> Result<(), Refusal> {
        self.check(package)
            .inspect_err(|r| self.record_refusal(r.reason()))
    }

    /// [`TrustPolicy::accepts`] without counting, for callers that count.
    pub(crate) fn check(&self, package: &VerifiedPackage) -> Result<(), Refusal> {
        if !self.is_trusted(package.publisher()) {
            return Err(Refusal::UnknownPublisher {
                name: package.name().to_string(),
                key_id: package.publisher().key_id_hex(),
            });
        }
        if package.app_type() == AppType::PerHop && !self.run_per_hop {
            return Err(Refusal::PerHopDenied {
                name: package.name().to_string(),
            });
        }
        Ok(())
    }

    /// Admits fetched code: `encoded` must be at most the size limit, have
    /// SHA-256 `expected_hash` (the code locator's), decode canonically,
    /// carry a good signature by a trusted publisher, be of an app type this
    /// node runs, and, if the message claims an app id, make that app id.
    /// Every refusal is counted.
    pub fn admit(
        &self,
        encoded: &[u8],
        expected_hash: &[u8; 32],
        claimed_app: Option<AppId>,
    ) -> Result<VerifiedPackage, PackageError> {
        let counted = |e: PackageError| {
            self.record_refusal(e.reason());
            e
        };
        if encoded.len() > self.max_package_bytes {
            let max = self.max_package_bytes;
            return Err(counted(PackageError::Oversize {
                size: encoded.len(),
                max,
            }));
        }
        let actual: [u8; 32] = Sha256::digest(encoded).into();
        if &actual != expected_hash {
            let (expected, actual) = (hex(expected_hash), hex(&actual));
            return Err(counted(PackageError::HashMismatch { expected, actual }));
        }
        let package = Package::decode(encoded, self.max_package_bytes).map_err(counted)?;
        let verified = package.verify(self)?; // counts its own refusals
        if let Some(claimed) = claimed_app {
            verified.check_app_id(claimed).map_err(counted)?;
        }
        Ok(verified)
    }

    /// Counts a refusal made elsewhere (e.g. by the code fetcher).
    pub fn record_refusal(&self, reason: RefusalReason) {
        self.refusals.record(reason);
    }

    /// The refusal counters, per reason.
    pub fn refusals(&self) -> &RefusalCounters {
        &self.refusals
    }
}
