//! A publisher's secret key, in minisign's `.key` file format.
//!
//! Keys are made unencrypted, like `minisign -G -W`: peerlet is a teaching
//! and prototyping tool, and a password prompt on every `peerlet sign` gets
//! in the way. Password-protected keys made by plain `minisign -G` can still
//! be used: give the password, or let minisign prompt for it on the terminal.
//!
//! minisign 0.11 writes unencrypted keys with an all-zero checksum field
//! (and the comment "minisign encrypted secret key"); the minisign crate
//! refuses those as corrupted. We accept them, and instead check every loaded
//! key by signing a probe and verifying it with the key's own public half,
//! which catches a damaged key whatever wrote it.

use std::path::Path;

use minisign::{PublicKey, SecretKey, SecretKeyBox};

use super::publisher::PublisherKey;

/// The untrusted comment of secret key files we write.
pub const SECRET_KEY_COMMENT: &str = "minisign unencrypted secret key";

/// Decoded length of a minisign secret key line.
const SECRET_KEY_BYTES: usize = 158;
/// Where the KDF algorithm (`\0\0` = unencrypted, `Sc` = scrypt) sits.
const KDF_ALG: std::ops::Range<usize> = 2..4;
/// Where the BLAKE2b checksum sits.
const CHECKSUM: std::ops::Range<usize> = 126..158;

/// How to get the password of an encrypted secret key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyPassword {
    /// Refuse encrypted keys ([`SecretKeyError::Encrypted`]).
    Refuse,
    /// Use this password.
    Given(String),
    /// Ask on the terminal (minisign's own prompt).
    Prompt,
}

/// Why a secret key could not be made, read or written.
#[derive(Debug, thiserror::Error)]
pub enum SecretKeyError {
    #[error("secret key {path}: {reason}")]
    Malformed { path: String, reason: String },
    #[error("secret key {path} is password-protected; peerlet keygen makes unencrypted keys, or give its password")]
    Encrypted { path: String },
    #[error("secret key {path}: {reason}")]
    Unusable { path: String, reason: String },
    #[error("cannot generate a key pair: {0}")]
    Generate(String),
}

/// A key that can sign peerlets: the minisign secret key and its public half.
#[derive(Clone)]
pub struct SigningKey {
    secret: SecretKey,
    public: PublisherKey,
}

impl SigningKey {
    /// A fresh random key pair, with a random key id.
    pub fn generate() -> Result<SigningKey, SecretKeyError> {
        let pair = minisign::KeyPair::generate_unencrypted_keypair()
            .map_err(|e| SecretKeyError::Generate(e.to_string()))?;
        SigningKey::from_secret(pair.sk, "a new key")
            .map_err(|e| SecretKeyError::Generate(e.to_string()))
    }

    /// Parses the text of a minisign `.key` file; `origin` names it in errors.
    pub fn from_key_text(
        text: &str,
        origin: &str,
        password: &KeyPassword,
    ) -> Result<SigningKey, SecretKeyError> {
        let malformed = |reason: &str| SecretKeyError::Malformed {
            path: origin.to_string(),
            reason: reason.to_string(),
        };
        let mut lines = text.lines();
        let comment = lines.next().ok_or_else(|| malformed("the file is empty"))?;
        if !comment.starts_with("untrusted comment:") {
            return Err(malformed("the first line is not `untrusted comment: ...`"));
        }
        let line = lines
            .next()
            .ok_or_else(|| malformed("the key line is missing"))?
            .trim();
        let bytes = decode_base64(line).ok_or_else(|| malformed("the key line is not base64"))?;
        if bytes.len() != SECRET_KEY_BYTES || &bytes[..2] != b"Ed" {
            return Err(malformed("not a minisign Ed25519 secret key"));
        }
        let sk_box = SecretKeyBox::from_string(text).expect("infallible");
        let secret = if bytes[KDF_ALG] != [0, 0] {
            let password = match password {
                KeyPassword::Refuse => {
                    return Err(SecretKeyError::Encrypted {
                        path: origin.to_string(),
                    })
                }
                KeyPassword::Given(p) => Some(p.clone()),
                KeyPassword::Prompt => None,
            };
            SecretKey::from_box(sk_box, password).map_err(|e| malformed(&e.to_string()))?
        } else {
            match SecretKey::from_unencrypted_box(sk_box) {
                Ok(sk) => sk,
                // minisign -G -W leaves the checksum zero; the probe below checks the key.
                Err(_) if bytes[CHECKSUM].iter().all(|b| *b == 0) => {
                    SecretKey::from_bytes(&bytes).map_err(|e| malformed(&e.to_string()))?
                }
                Err(e) => return Err(malformed(&e.to_string())),
            }
        };
        SigningKey::from_secret(secret, origin)
    }

    /// Reads a minisign `.key` file, as written by `minisign -G [-W]` or
    /// `peerlet keygen`.
    pub fn from_file(path: &Path, password: &KeyPassword) -> Result<SigningKey, SecretKeyError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| SecretKeyError::Unusable {
            path: origin.clone(),
            reason: format!("cannot read it: {e}"),
        })?;
        SigningKey::from_key_text(&text, &origin, password)
    }

    fn from_secret(secret: SecretKey, origin: &str) -> Result<SigningKey, SecretKeyError> {
        let unusable = |reason: String| SecretKeyError::Unusable {
            path: origin.to_string(),
            reason,
        };
        let public = PublicKey::from_secret_key(&secret).map_err(|e| unusable(e.to_string()))?;
        let public =
            PublisherKey::from_base64(&public.to_base64()).map_err(|e| unusable(e.to_string()))?;
        let key = SigningKey { secret, public };
        key.sign(b"probe", "probe").map_err(|e| {
            unusable(format!(
                "it cannot make a valid signature ({e}); the key is damaged"
            ))
        })?;
        Ok(key)
    }

    /// The public half: what verifiers trust.
    pub fn public(&self) -> &PublisherKey {
        &self.public
    }

    /// The text of a `.key` file for this key (unencrypted).
    pub fn to_key_text(&self) -> String {
        self.secret
            .to_box(Some(SECRET_KEY_COMMENT))
            .expect("formatting cannot fail")
            .into_string()
    }

    /// Signs `data` as `minisign -S` does (prehashed), with the given
    /// trusted comment; returns the `.minisig` text. The signature is
    /// checked against the public key before it is returned.
    pub fn sign(&self, data: &[u8], trusted_comment: &str) -> Result<String, String> {
        let pk = PublicKey::from_base64(self.public.to_base64()).map_err(|e| e.to_string())?;
        let sig = minisign::sign(
            Some(&pk),
            &self.secret,
            data,
            Some(trusted_comment),
            Some("signature from minisign secret key"),
        )
        .map_err(|e| e.to_string())?;
        Ok(sig.into_string())
    }
}

impl std::fmt::Debug for SigningKey {
    /// Shows the public half only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// Standard base64 with padding, as minisign writes it; `None` if malformed.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let bytes = text.as_bytes();
    if bytes.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (i, quad) in bytes.chunks(4).enumerate() {
        let last = i + 1 == bytes.len() / 4;
        let pad = quad.iter().rev().take_while(|c| **c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for c in &quad[..4 - pad] {
            n = n << 6 | value(*c)?;
        }
        n <<= 6 * pad as u32;
        out.extend_from_slice(&n.to_be_bytes()[1..4 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made by `minisign -G -W` (minisign 0.11): note the zero checksum.
    const C_SECRET: &str = "untrusted comment: minisign encrypted secret key\n\
        RWQAAEIyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA4j+UUdC8yQsdKn51J0opbjcoS+e4f4jW8AR9zfitlLS7FnExTMMby6iv3ITp7+rhLrXeSLyRbwdoGdlkem3TTptOSaGInLehAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
    const C_PUBLIC: &str = "RWTiP5RR0LzJC6iv3ITp7+rhLrXeSLyRbwdoGdlkem3TTptOSaGInLeh";

    #[test]
    fn reads_a_key_made_by_minisign_w() {
        let key = SigningKey::from_key_text(C_SECRET, "k.key", &KeyPassword::Refuse).unwrap();
        assert_eq!(key.public().to_base64(), C_PUBLIC);
    }

    #[test]
    fn written_keys_read_back() {
        let key = SigningKey::generate().unwrap();
        let text = key.to_key_text();
        assert!(text.starts_with("untrusted comment: minisign unencrypted secret key\n"));
        let again = SigningKey::from_key_text(&text, "k.key", &KeyPassword::Refuse).unwrap();
        assert_eq!(again.public(), key.public());
    }

    #[test]
    fn a_damaged_key_is_refused() {
        // Flip one bit of the seed: the checksum (zero here) cannot catch it, the probe must.
        let mut text = C_SECRET.to_string();
        let at = text.find("4j+U").unwrap() + 12;
        let c = if &text[at..at + 1] == "A" { "B" } else { "A" };
        text.replace_range(at..at + 1, c);
        let err = SigningKey::from_key_text(&text, "k.key", &KeyPassword::Refuse).unwrap_err();
        assert!(err.to_string().contains("k.key"), "{err}");
    }

    #[test]
    fn encrypted_keys_need_a_password() {
        let mut text = C_SECRET.to_string();
        text = text.replace("RWQAAEIy", "RWRTY0Iy"); // kdf "Sc"
        let err = SigningKey::from_key_text(&text, "k.key", &KeyPassword::Refuse).unwrap_err();
        assert!(matches!(err, SecretKeyError::Encrypted { .. }), "{err}");
    }

    #[test]
    fn garbage_is_refused() {
        for text in [
            "",
            "untrusted comment: x\n",
            "untrusted comment: x\nnot base64!\n",
            "x\ny\n",
        ] {
            let err = SigningKey::from_key_text(text, "k.key", &KeyPassword::Refuse).unwrap_err();
            assert!(
                matches!(err, SecretKeyError::Malformed { .. }),
                "{text:?}: {err}"
            );
        }
    }

    #[test]
    fn base64_decodes() {
        assert_eq!(decode_base64("").unwrap(), b"");
        assert_eq!(decode_base64("Zg==").unwrap(), b"f");
        assert_eq!(decode_base64("Zm8=").unwrap(), b"fo");
        assert_eq!(decode_base64("Zm9v").unwrap(), b"foo");
        assert_eq!(decode_base64("Zm9vYmFy").unwrap(), b"foobar");
        assert!(decode_base64("Zm9").is_none());
        assert!(decode_base64("Zg==Zm9v").is_none());
        assert!(decode_base64("Z===").is_none());
        assert!(decode_base64("Zm9*").is_none());
    }
}
