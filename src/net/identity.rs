//! A node's identity: an X25519 key pair, and the ring id derived from it.
//!
//! The id of a node is the first 160 bits of SHA-256 of its public key
//! ([`derive_id`]): a peer proves it holds the key in the handshake of every
//! connection ([`super::secure`]), so it cannot stand at an id it chose.
//! (`--id` with `--lab` is the one exception, for teaching and tests.)
//!
//! A node with `--data DIR` keeps its secret key in `DIR/node.key`, made on
//! first start, readable by its owner only, so it keeps its id across
//! restarts; a node without `--data` makes a fresh key each start.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use x25519_dalek::{PublicKey, StaticSecret};

use crate::id::Id;

/// Bytes in a public or secret key.
pub const KEY_BYTES: usize = 32;

/// The file in a node's data directory that holds its secret key.
pub const KEY_FILE: &str = "node.key";

/// The first line of a key file: what it is, so nobody mistakes it.
const HEADER: &str = "peerlet node key (X25519 secret, hex); keep it private";

/// A node's long-term key pair.
#[derive(Clone)]
pub struct NodeKey {
    secret: [u8; KEY_BYTES],
    public: [u8; KEY_BYTES],
}

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a peerlet node key ({why})")]
    Format { path: PathBuf, why: &'static str },
    #[error("{path}: readable by others (mode {mode:o}); run `chmod 600 {path}`")]
    Exposed { path: PathBuf, mode: u32 },
    #[error("no randomness from the operating system: {0}")]
    Random(String),
}

impl NodeKey {
    /// A fresh key pair from the operating system's randomness.
    pub fn generate() -> Result<NodeKey, KeyFileError> {
        let mut secret = [0u8; KEY_BYTES];
        getrandom::fill(&mut secret).map_err(|e| KeyFileError::Random(e.to_string()))?;
        Ok(NodeKey::from_secret(secret))
    }

    /// The key pair of a secret key.
    pub fn from_secret(secret: [u8; KEY_BYTES]) -> NodeKey {
        let public = PublicKey::from(&StaticSecret::from(secret)).to_bytes();
        NodeKey { secret, public }
    }

    /// The key kept in `dir/node.key`, made (owner-only) if there is none.
    pub fn load_or_create(dir: &Path) -> Result<NodeKey, KeyFileError> {
        let path = dir.join(KEY_FILE);
        let io = |source| KeyFileError::Io {
            path: path.clone(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                check_private(&path)?;
                parse(&text).map_err(|why| KeyFileError::Format {
                    path: path.clone(),
                    why,
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir).map_err(io)?;
                let key = NodeKey::generate()?;
                let mut file = create_private(&path).map_err(io)?;
                writeln!(file, "{HEADER}\n{}", crate::package::hex(&key.secret)).map_err(io)?;
                file.sync_all().map_err(io)?;
                Ok(key)
            }
            Err(e) => Err(io(e)),
        }
    }

    pub fn secret(&self) -> &[u8; KEY_BYTES] {
        &self.secret
    }

    pub fn public(&self) -> &[u8; KEY_BYTES] {
        &self.public
    }

    /// The ring id this key gives: see [`derive_id`].
    pub fn id(&self) -> Id {
        derive_id(&self.public)
    }
}

impl fmt::Debug for NodeKey {
    // Never print the secret half.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeKey({})", crate::package::hex(&self.public[..8]))
    }
}

/// The ring id of a public key: the first 160 bits of SHA-256 of its 32
/// bytes (the same function as the key of a name, [`Id::key`]).
pub fn derive_id(public: &[u8]) -> Id {
    Id::key(public)
}

fn parse(text: &str) -> Result<NodeKey, &'static str> {
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err("first line is not the key file header");
    }
    let hex = lines.next().ok_or("no key line")?.trim();
    if hex.len() != 2 * KEY_BYTES {
        return Err("the key line is not 64 hex digits");
    }
    let mut secret = [0u8; KEY_BYTES];
    for (i, byte) in secret.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| "not hex")?;
    }
    Ok(NodeKey::from_secret(secret))
}

#[cfg(unix)]
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), KeyFileError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|source| KeyFileError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Exposed {
            path: path.to_path_buf(),
            mode: mode & 0o777,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &Path) -> Result<(), KeyFileError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_directory_keeps_its_key_and_id() {
        let dir = tempfile::tempdir().unwrap();
        let first = NodeKey::load_or_create(dir.path()).unwrap();
        let again = NodeKey::load_or_create(dir.path()).unwrap();
        assert_eq!(first.public(), again.public());
        assert_eq!(first.id(), derive_id(again.public()));
        assert_ne!(first.id(), NodeKey::generate().unwrap().id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let path = dir.path().join(KEY_FILE);
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = NodeKey::load_or_create(dir.path()).unwrap_err().to_string();
            assert!(err.contains("chmod 600"), "{err}");
        }
    }

    #[test]
    fn a_damaged_key_file_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(KEY_FILE), "not a key\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let p = dir.path().join(KEY_FILE);
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let err = NodeKey::load_or_create(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a peerlet node key"), "{err}");
    }
}
