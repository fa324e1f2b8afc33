//! Signed code, with no Lua in it: a peerlet package (Lua source plus its
//! detached minisign signature, the unit that is signed, hashed, stored,
//! fetched and verified), and around it the header it starts with
//! ([`header`]), publisher and secret keys ([`publisher`], [`secret_key`]),
//! signing ([`signing`]), signature checks ([`verified`]), whose code a node
//! runs ([`trust`], [`policy_file`]) and why it refused some ([`refusal`]).
//!
//! # What is signed
//!
//! The whole source file, byte for byte, exactly as `minisign -S` signs it
//! (Ed25519 over its BLAKE2b-512, "prehashed" mode). The source starts with
//! the [`PeerletHeader`] line, so the name, app type and version are signed
//! with the code. A signature made by `peerlet sign` also repeats the header
//! fields in its trusted comment (`peerlet:name=… type=… version=…`); when
//! present they must agree with the header. Signatures made by plain
//! `minisign -S` carry no such field and rely on the header alone.
//!
//! # Transfer encoding and code hash
//!
//! On the wire and in the code store a package is one CBOR map, written with
//! the fields in this order: `{"v": 1, "source": <byte string: the .lua
//! file>, "signature": <text string: the .minisig file>}`. The **code hash**
//! used in code locators is the SHA-256 of exactly these bytes, and the
//! **size** is their length. Decoding refuses any encoding of a package other
//! than this canonical one, so a hash names one package and nothing else.
//!
//! # Examples
//! ```
//! use peerlet::package::{secret_key::SigningKey, signing, trust::TrustPolicy, Package};
//!
//! let key = SigningKey::generate()?;
//! let source = b"--@peerlet name=hello\nlocal P = {}\nreturn P\n";
//! let signature = signing::sign_source(&key, source, "hello.lua")?;
//!
//! let mut policy = TrustPolicy::new();
//! policy.trust(key.public().clone());
//! let package = Package::parse(source, &signature)?;
//! let verified = policy.admit(package.encoded(), &package.code_hash(), None)?;
//! assert_eq!((verified.name(), verified.version()), ("hello", 1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use self::header::PeerletHeader;
use self::publisher::key_id_hex;
use self::refusal::Refusal;

pub mod header;
pub mod policy_file;
pub mod publisher;
pub mod refusal;
pub mod secret_key;
pub mod signing;
pub mod trust;
pub mod verified;

#[cfg(test)]
mod verify_tests;

/// The transfer format version written in `v`.
pub const PACKAGE_FORMAT_VERSION: u32 = 1;

/// Default largest package (encoded) a node accepts: 256 KiB.
pub const DEFAULT_MAX_PACKAGE_BYTES: usize = 256 * 1024;

/// Largest signature text accepted: minisign allows trusted comments of up
/// to 8 KiB, the rest of a `.minisig` is about 300 bytes.
pub const MAX_SIGNATURE_BYTES: usize = 8 * 1024 + 512;

/// What every precompiled Lua chunk starts with; such packages are refused.
pub const LUA_BINARY_SIGNATURE: &[u8] = b"\x1bLua";

/// A parsed, not yet verified, peerlet package.
///
/// Parsing checks only the form (text source, header, signature syntax);
/// nothing in it is to be trusted before a signature check succeeds.
#[derive(Clone)]
pub struct Package {
    source: String,
    signature_text: String,
    pub(crate) signature: minisign_verify::Signature,
    key_id: [u8; 8],
    header: PeerletHeader,
    encoded: Vec<u8>,
    code_hash: [u8; 32],
}

/// The CBOR form, borrowed for encoding.
#[derive(Serialize)]
struct EncodeForm<'a> {
    v: u32,
    #[serde(with = "serde_bytes")]
    source: &'a [u8],
    signature: &'a str,
}

/// The CBOR form, owned for decoding.
#[derive(Deserialize)]
struct DecodeForm {
    v: u32,
    #[serde(with = "serde_bytes")]
    source: Vec<u8>,
    signature: String,
}

impl Package {
    /// Parses a package from the bytes of a `.lua` file and the text of its
    /// `.minisig` file. Refuses binary chunks, non-UTF-8 source, a missing or
    /// malformed header and a malformed signature; does not check the
    /// signature (see [`TrustPolicy::verify`](trust::TrustPolicy::verify)).
    pub fn parse(source: &[u8], signature: &str) -> Result<Package, Refusal> {
        let (source, header) = parse_source(source)?;
        let malformed = |reason: &str| Refusal::MalformedSignature {
            name: header.name.clone(),
            reason: reason.to_string(),
        };
        if signature.len() > MAX_SIGNATURE_BYTES {
            return Err(malformed(&format!(
                "longer than {MAX_SIGNATURE_BYTES} bytes"
            )));
        }
        let parsed =
            minisign_verify::Signature::decode(signature).map_err(|e| malformed(&e.to_string()))?;
        let key_id = signature_key_id(signature).map_err(|e| malformed(&e))?;
        let encoded = encode(source.as_bytes(), signature);
        let code_hash = Sha256::digest(&encoded).into();
        Ok(Package {
            source: source.to_string(),
            signature_text: signature.to_string(),
            signature: parsed,
            key_id,
            header,
            encoded,
            code_hash,
        })
    }

    /// Decodes the transfer encoding (see the module docs). Refuses more
    /// than `max_bytes` before decoding anything.
    pub fn decode(encoded: &[u8], max_bytes: usize) -> Result<Package, Refusal> {
        if encoded.len() > max_bytes {
            return Err(Refusal::Oversize {
                size: encoded.len(),
                max: max_bytes,
            });
        }
        let form: DecodeForm = ciborium::from_reader(encoded)
            .map_err(|e| Refusal::MalformedEncoding(e.to_string()))?;
        if form.v != PACKAGE_FORMAT_VERSION {
            return Err(Refusal::MalformedEncoding(format!(
                "format version {} is not {PACKAGE_FORMAT_VERSION}",
                form.v
            )));
        }
        let package = Package::parse(&form.source, &form.signature)?;
        if package.encoded != encoded {
            return Err(Refusal::MalformedEncoding(
                "not the canonical encoding of its contents".to_string(),
            ));
        }
        Ok(package)
    }

    /// The transfer encoding; its SHA-256 is [`Package::code_hash`].
    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }

    /// SHA-256 of [`Package::encoded`]: the hash in code locators.
    pub fn code_hash(&self) -> [u8; 32] {
        self.code_hash
    }

    /// Length of [`Package::encoded`]: the size in code locators, and what
    /// the size limit applies to.
    pub fn size(&self) -> usize {
        self.encoded.len()
    }

    /// The header as read from the (unverified) source.
    pub fn header(&self) -> &PeerletHeader {
        &self.header
    }

    /// The Lua source text (unverified until a signature check).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The `.minisig` text, as given.
    pub fn signature_text(&self) -> &str {
        &self.signature_text
    }

    /// The minisign key id the signature says it was made with.
    pub fn key_id(&self) -> [u8; 8] {
        self.key_id
    }
}

/// Checks that `source` is peerlet source text (not a binary chunk, UTF-8,
/// with a valid header) and reads its header.
pub(crate) fn parse_source(source: &[u8]) -> Result<(&str, PeerletHeader), Refusal> {
    if source.starts_with(LUA_BINARY_SIGNATURE) {
        return Err(Refusal::BinaryChunk);
    }
    let source = std::str::from_utf8(source).map_err(|e| Refusal::NotText {
        valid_up_to: e.valid_up_to(),
    })?;
    let header = PeerletHeader::parse(source)?;
    Ok((source, header))
}

fn encode(source: &[u8], signature: &str) -> Vec<u8> {
    let form = EncodeForm {
        v: PACKAGE_FORMAT_VERSION,
        source,
        signature,
    };
    let mut out = Vec::with_capacity(source.len() + signature.len() + 32);
    ciborium::into_writer(&form, &mut out).expect("writing CBOR to a Vec cannot fail");
    out
}

/// The key id named in a `.minisig` (minisign-verify keeps it private).
fn signature_key_id(signature: &str) -> Result<[u8; 8], String> {
    let sig_box = minisign::SignatureBox::from_string(signature).map_err(|e| e.to_string())?;
    sig_box
        .keynum()
        .try_into()
        .map_err(|_| "key id is not 8 bytes".to_string())
}

/// Lower-case hex, for hashes in messages.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl fmt::Debug for Package {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Package")
            .field("header", &self.header)
            .field("key_id", &key_id_hex(self.key_id))
            .field("code_hash", &hex(&self.code_hash))
            .field("size", &self.encoded.len())
            .finish()
    }
}
