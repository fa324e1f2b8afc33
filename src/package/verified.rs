//! Checking a package's signature, and what a checked package vouches for.
//!
//! A [`VerifiedPackage`] can only be made here, by a signature check that
//! passed, so holding one means: this source, with this header, was signed by
//! this publisher key. Whether the node *runs* it is the trust policy's call.

use super::header::{parse_fields, PeerletHeader};
use super::publisher::{key_id_hex, PublisherKey};
use super::refusal::Refusal;
use super::{hex, Package};
use crate::id::AppId;
use crate::wire::AppType;

/// The trusted-comment field in which `peerlet sign` repeats the header.
pub const TRUSTED_COMMENT_FIELD: &str = "peerlet:";

/// A package whose signature checked out against a publisher key.
#[derive(Clone, Debug)]
pub struct VerifiedPackage {
    package: Package,
    publisher: PublisherKey,
    app_id: AppId,
}

impl VerifiedPackage {
    /// The peerlet name from the signed header.
    pub fn name(&self) -> &str {
        &self.package.header().name
    }

    /// The app type from the signed header.
    pub fn app_type(&self) -> AppType {
        self.package.header().app_type
    }

    /// The version from the signed header.
    pub fn version(&self) -> u32 {
        self.package.header().version
    }

    /// The whole signed header.
    pub fn header(&self) -> &PeerletHeader {
        self.package.header()
    }

    /// The key that signed it (Ed25519 key and minisign key id).
    pub fn publisher(&self) -> &PublisherKey {
        &self.publisher
    }

    /// `AppId::derive(publisher Ed25519 key, name)`: the only app id this
    /// code may run under.
    pub fn app_id(&self) -> AppId {
        self.app_id
    }

    /// SHA-256 of the package's transfer encoding: the code locator's hash.
    pub fn code_hash(&self) -> [u8; 32] {
        self.package.code_hash()
    }

    /// The verified Lua source text.
    pub fn source(&self) -> &str {
        self.package.source()
    }

    /// The signed trusted comment (minisign's `timestamp:…\tfile:…` etc.).
    pub fn trusted_comment(&self) -> &str {
        self.package.signature.trusted_comment()
    }

    /// The package itself, e.g. to store or send its encoding.
    pub fn package(&self) -> &Package {
        &self.package
    }

    /// Refuses a message's app id unless it is the one this code's key and
    /// name make; so nobody can run code under another publisher's app id.
    pub fn check_app_id(&self, claimed: AppId) -> Result<(), Refusal> {
        if claimed == self.app_id {
            return Ok(());
        }
        Err(Refusal::AppIdMismatch {
            name: self.name().to_string(),
            claimed: claimed.to_string(),
            actual: self.app_id.to_string(),
        })
    }
}

impl Package {
    /// Checks the signature against one given key, trusting it; no size
    /// limit, no policy, nothing counted. For `peerlet verify FILE -P KEY`.
    pub fn verify_with_key(&self, key: &PublisherKey) -> Result<VerifiedPackage, Refusal> {
        let name = &self.header().name;
        if key.key_id() != self.key_id() {
            return Err(Refusal::WrongKey {
                name: name.clone(),
                signed_with: key_id_hex(self.key_id()),
                given: key.key_id_hex(),
            });
        }
        let result = key
            .verifier()
            .verify(self.source().as_bytes(), &self.signature, false);
        match result {
            Ok(()) => {}
            Err(minisign_verify::Error::UnexpectedAlgorithm) => {
                return Err(Refusal::MalformedSignature {
                    name: name.clone(),
                    reason:
                        "a legacy (not prehashed) signature; sign again with minisign 0.8 or later"
                            .to_string(),
                })
            }
            Err(_) => {
                return Err(Refusal::BadSignature {
                    name: name.clone(),
                    key_id: key.key_id_hex(),
                })
            }
        }
        self.check_trusted_comment()?;
        Ok(VerifiedPackage {
            app_id: AppId::derive(key.ed25519(), name),
            publisher: key.clone(),
            package: self.clone(),
        })
    }

    /// A signed `peerlet:` field in the trusted comment must repeat the
    /// header; a comment without one (plain `minisign -S`) is fine.
    fn check_trusted_comment(&self) -> Result<(), Refusal> {
        let comment = self.signature.trusted_comment();
        for field in comment.split('\t') {
            if let Some(fields) = field.strip_prefix(TRUSTED_COMMENT_FIELD) {
                if parse_fields(fields).as_ref() != Ok(self.header()) {
                    return Err(Refusal::CommentMismatch {
                        name: self.header().name.clone(),
                        comment: fields.to_string(),
                        header: self.header().fields(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Refuses the package unless its code hash is `expected`.
    pub fn check_hash(&self, expected: &[u8; 32]) -> Result<(), Refusal> {
        if &self.code_hash() == expected {
            return Ok(());
        }
        Err(Refusal::HashMismatch {
            expected: hex(expected),
            actual: hex(&self.code_hash()),
        })
    }
}
