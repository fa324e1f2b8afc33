//! A publisher's public key: a minisign public key, as found in a `.pub` file
//! or as its one-line base64 form.
//!
//! Two numbers identify a publisher. The 32-byte Ed25519 key is what app ids
//! are derived from (`AppId::derive(ed25519, name)`), so it is the identity
//! that matters. The 8-byte minisign key id is a label: a signature names the
//! key id it was made with, which picks the key to check it against, and
//! people see it in `minisign` output. Key ids are shown as minisign shows
//! them: the little-endian number in upper-case hex, without leading zeros.

use std::fmt;
use std::path::Path;

use minisign_verify::PublicKey as Verifier;

/// Bytes in an Ed25519 public key.
pub const ED25519_KEY_BYTES: usize = 32;

/// A publisher's minisign public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublisherKey {
    key_id: [u8; 8],
    ed25519: [u8; ED25519_KEY_BYTES],
    base64: String,
}

/// Why a public key could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PublicKeyError {
    #[error("cannot read public key file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("public key {what} is not a minisign Ed25519 public key: {reason}")]
    Malformed { what: String, reason: String },
}

impl PublisherKey {
    /// Parses the base64 line of a minisign public key (what `minisign -P`
    /// takes), e.g. `RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3`.
    pub fn from_base64(line: &str) -> Result<PublisherKey, PublicKeyError> {
        let line = line.trim();
        let malformed = |reason: String| PublicKeyError::Malformed {
            what: format!("`{}`", line.chars().take(60).collect::<String>()),
            reason,
        };
        // Parsed by minisign-verify, which checks length and algorithm; the
        // raw bytes come from the minisign crate, which exposes them.
        Verifier::from_base64(line).map_err(|e| malformed(e.to_string()))?;
        let bytes = minisign::PublicKey::from_base64(line)
            .map_err(|e| malformed(e.to_string()))?
            .to_bytes();
        if bytes.len() != 2 + 8 + ED25519_KEY_BYTES || &bytes[..2] != b"Ed" {
            return Err(malformed("not an Ed25519 (`Ed`) key".to_string()));
        }
        let mut key_id = [0; 8];
        key_id.copy_from_slice(&bytes[2..10]);
        let mut ed25519 = [0; ED25519_KEY_BYTES];
        ed25519.copy_from_slice(&bytes[10..]);
        Ok(PublisherKey {
            key_id,
            ed25519,
            base64: line.to_string(),
        })
    }

    /// Parses the text of a minisign `.pub` file: an `untrusted comment:`
    /// line, then the base64 key line.
    pub fn from_pub_text(text: &str) -> Result<PublisherKey, PublicKeyError> {
        let mut lines = text.lines();
        let malformed = |reason: &str| PublicKeyError::Malformed {
            what: "file".to_string(),
            reason: reason.to_string(),
        };
        let comment = lines.next().ok_or_else(|| malformed("it is empty"))?;
        if !comment.starts_with("untrusted comment:") {
            return Err(malformed("the first line is not `untrusted comment: ...`"));
        }
        let key = lines
            .next()
            .ok_or_else(|| malformed("the key line is missing"))?;
        PublisherKey::from_base64(key)
    }

    /// Reads a minisign `.pub` file, as written by `minisign -G` or
    /// `peerlet keygen`.
    pub fn from_file(path: &Path) -> Result<PublisherKey, PublicKeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PublicKeyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        PublisherKey::from_pub_text(&text).map_err(|e| match e {
            PublicKeyError::Malformed { reason, .. } => PublicKeyError::Malformed {
                what: path.display().to_string(),
                reason,
            },
            other => other,
        })
    }

    /// The Ed25519 public key: the publisher's identity, from which app ids
    /// are derived.
    pub fn ed25519(&self) -> &[u8; ED25519_KEY_BYTES] {
        &self.ed25519
    }

    /// The minisign key id, as stored (little-endian).
    pub fn key_id(&self) -> [u8; 8] {
        self.key_id
    }

    /// The base64 line of the key, as in a `.pub` file and `minisign -P`.
    pub fn to_base64(&self) -> &str {
        &self.base64
    }

    /// The text of a `.pub` file for this key, exactly as `minisign -G` writes it.
    pub fn to_pub_text(&self) -> String {
        format!(
            "untrusted comment: minisign public key {}\n{}\n",
            self.key_id_hex(),
            self.base64
        )
    }

    /// The key id as minisign prints it.
    pub fn key_id_hex(&self) -> String {
        key_id_hex(self.key_id)
    }

    /// The key in the form minisign-verify checks signatures with.
    pub(crate) fn verifier(&self) -> Verifier {
        Verifier::from_base64(&self.base64).expect("checked when the key was parsed")
    }
}

/// A minisign key id as minisign prints it (`%llX` of the little-endian number).
pub fn key_id_hex(key_id: [u8; 8]) -> String {
    format!("{:X}", u64::from_le_bytes(key_id))
}

impl fmt::Display for PublisherKey {
    /// `key id ABCD… (base64)`, enough to find the key in a `.pub` file.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key id {} ({})", self.key_id_hex(), self.base64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key made by `minisign -G -W` (minisign 0.11).
    const PUB_FILE: &str = "untrusted comment: minisign public key BC9BCD051943FE2\n\
                            RWTiP5RR0LzJC6iv3ITp7+rhLrXeSLyRbwdoGdlkem3TTptOSaGInLeh\n";

    #[test]
    fn reads_a_minisign_pub_file_and_writes_it_back() {
        let key = PublisherKey::from_pub_text(PUB_FILE).unwrap();
        assert_eq!(key.key_id_hex(), "BC9BCD051943FE2");
        assert_eq!(key.to_pub_text(), PUB_FILE);
        // the last 32 bytes of the decoded key line
        assert_eq!(key.ed25519()[..4], [0xa8, 0xaf, 0xdc, 0x84]);
        assert_eq!(
            key.key_id(),
            [0xe2, 0x3f, 0x94, 0x51, 0xd0, 0xbc, 0xc9, 0x0b]
        );
    }

    #[test]
    fn base64_and_file_forms_agree() {
        let a = PublisherKey::from_pub_text(PUB_FILE).unwrap();
        let b = PublisherKey::from_base64(
            " RWTiP5RR0LzJC6iv3ITp7+rhLrXeSLyRbwdoGdlkem3TTptOSaGInLeh\n",
        )
        .unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        for text in [
            "",
            "RWTiP5RR0LzJC6iv3ITp7+rhLrXeSLyRbwdoGdlkem3TTptOSaGInLeh\n",
            "untrusted comment: x\n",
        ] {
            assert!(matches!(
                PublisherKey::from_pub_text(text),
                Err(PublicKeyError::Malformed { .. })
            ));
        }
        let err = PublisherKey::from_base64("RWTiP5RR0LzJ").unwrap_err();
        assert!(
            err.to_string()
                .contains("not a minisign Ed25519 public key"),
            "{err}"
        );
    }
}
