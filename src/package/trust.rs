//! A node's trust policy: whose code it runs, whether it runs per-hop apps,
//! how large a package it takes, and a count of what it refused.
//!
//! A node builds its policy once at start from `--trust KEY.pub` options and
//! the policy file `trust.conf` in its data directory (format: see
//! [`super::policy_file`]); [`TrustPolicy::load`] does both. With no
//! trusted key at all a node runs no downloaded code.
//!
//! The one call a node makes for fetched code is [`TrustPolicy::admit`]: it
//! checks size, hash, encoding, signature, publisher, app type and app id,
//! in that order, and counts every refusal by reason
//! ([`TrustPolicy::refusals`]).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::policy_file::{self, PolicyFileError};
use super::publisher::{key_id_hex, PublicKeyError, PublisherKey};
use super::refusal::{Refusal, RefusalCounters, RefusalReason};
use super::verified::VerifiedPackage;
use super::{hex, Package, DEFAULT_MAX_PACKAGE_BYTES};
use crate::id::AppId;
use crate::wire::AppType;

/// File name of the policy file inside a node's data directory.
pub const POLICY_FILE_NAME: &str = "trust.conf";

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
                let settings = policy_file::read(&path)?;
                settings.keys.into_iter().for_each(|k| policy.trust(k));
                if let Some(allow) = settings.run_per_hop {
                    policy.set_run_per_hop(allow);
                }
                if let Some(max) = settings.max_package_bytes {
                    policy.set_max_package_bytes(max);
                }
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

    /// Checks a package's signature against this node's trusted publishers
    /// and then whether to run it (size limit, publisher, per-hop). Every
    /// refusal is counted.
    pub fn verify(&self, package: &Package) -> Result<VerifiedPackage, Refusal> {
        self.verify_uncounted(package)
            .inspect_err(|e| self.record_refusal(e.reason()))
    }

    fn verify_uncounted(&self, package: &Package) -> Result<VerifiedPackage, Refusal> {
        let max = self.max_package_bytes();
        if package.size() > max {
            return Err(Refusal::Oversize {
                size: package.size(),
                max,
            });
        }
        let mut last_err = None;
        for key in self.keys_with_id(package.key_id()) {
            match package.verify_with_key(key) {
                Ok(verified) => {
                    self.check(&verified)?;
                    return Ok(verified);
                }
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| Refusal::UnknownPublisher {
            name: package.header().name.clone(),
            key_id: key_id_hex(package.key_id()),
        }))
    }

    /// [`TrustPolicy::accepts`] without counting, for callers that count.
    fn check(&self, package: &VerifiedPackage) -> Result<(), Refusal> {
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
    ) -> Result<VerifiedPackage, Refusal> {
        let counted = |e: Refusal| {
            self.record_refusal(e.reason());
            e
        };
        if encoded.len() > self.max_package_bytes {
            let max = self.max_package_bytes;
            return Err(counted(Refusal::Oversize {
                size: encoded.len(),
                max,
            }));
        }
        let actual: [u8; 32] = Sha256::digest(encoded).into();
        if &actual != expected_hash {
            let (expected, actual) = (hex(expected_hash), hex(&actual));
            return Err(counted(Refusal::HashMismatch { expected, actual }));
        }
        let package = Package::decode(encoded, self.max_package_bytes).map_err(counted)?;
        let verified = self.verify(&package)?; // counts its own refusals
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

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "RWTiP5RR0LzJC6iv3ITp7+rhLrXeSLyRbwdoGdlkem3TTptOSaGInLeh";

    #[test]
    fn load_reads_the_data_dir_file_and_adds_trust_options() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("trust.conf"), "per-hop = deny\n").unwrap();
        let key_file = dir.path().join("k.pub");
        std::fs::write(&key_file, format!("untrusted comment: k\n{KEY}\n")).unwrap();
        let policy = TrustPolicy::load(Some(dir.path()), &[key_file]).unwrap();
        assert!(!policy.run_per_hop());
        assert_eq!(policy.trusted_keys().len(), 1);
        let empty = tempfile::tempdir().unwrap();
        let policy = TrustPolicy::load(Some(empty.path()), &[]).unwrap();
        assert!(policy.trusted_keys().is_empty() && policy.run_per_hop());
    }
}
