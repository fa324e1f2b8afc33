//! The small per-peerlet key-value store behind Lua's `store.*`.
//!
//! Each peerlet gets one file in the node's data directory,
//! `DATA/store/<app id>.cbor`: a CBOR map from string keys to CBOR-encoded
//! values. Every change is written to a temporary file and renamed over the
//! old one, so a crash leaves either the old or the new contents, never half
//! of each. A quota bounds the bytes of keys plus values; a `put` that would
//! exceed it is refused and changes nothing.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_bytes::ByteBuf;

/// Default quota per peerlet: 1 MiB of keys and values.
pub const DEFAULT_QUOTA: usize = 1 << 20;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store quota of {quota} bytes exceeded ({needed} needed)")]
    Quota { quota: usize, needed: usize },
    #[error("store file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("store file {path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

/// One peerlet's persistent key-value store.
#[derive(Debug)]
pub struct Store {
    /// `None`: kept in memory only (a node without a data directory).
    path: Option<PathBuf>,
    quota: usize,
    entries: BTreeMap<String, ByteBuf>,
    used: usize,
}

impl Store {
    /// Opens (or starts) the store at `path`.
    pub fn open(path: impl Into<PathBuf>, quota: usize) -> Result<Store, StoreError> {
        let path = path.into();
        let entries: BTreeMap<String, ByteBuf> = match std::fs::read(&path) {
            Ok(bytes) => {
                ciborium::from_reader(bytes.as_slice()).map_err(|e| StoreError::Corrupt {
                    path: path.clone(),
                    reason: e.to_string(),
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => return Err(StoreError::Io { path, source }),
        };
        let used = entries.iter().map(|(k, v)| k.len() + v.len()).sum();
        Ok(Store {
            path: Some(path),
            quota,
            entries,
            used,
        })
    }

    /// A store that lives only as long as the peerlet (no data directory).
    pub fn in_memory(quota: usize) -> Store {
        Store {
            path: None,
            quota,
            entries: BTreeMap::new(),
            used: 0,
        }
    }

    /// The store file of app `app_hex` under data directory `data`.
    pub fn path_for(data: &Path, app_hex: &str) -> PathBuf {
        data.join("store").join(format!("{app_hex}.cbor"))
    }

    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.entries.get(key).map(|v| v.as_slice())
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(|k| k.as_str())
    }

    /// Bytes of keys and values held.
    pub fn used(&self) -> usize {
        self.used
    }

    pub fn put(&mut self, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
        let old = self.entries.get(key).map_or(0, |v| key.len() + v.len());
        let needed = self.used - old + key.len() + value.len();
        if needed > self.quota {
            return Err(StoreError::Quota {
                quota: self.quota,
                needed,
            });
        }
        let previous = self.entries.insert(key.to_string(), ByteBuf::from(value));
        if let Err(e) = self.save() {
            // Undo, so memory and disk agree.
            match previous {
                Some(p) => self.entries.insert(key.to_string(), p),
                None => self.entries.remove(key),
            };
            return Err(e);
        }
        self.used = needed;
        Ok(())
    }

    pub fn remove(&mut self, key: &str) -> Result<bool, StoreError> {
        let Some(old) = self.entries.remove(key) else {
            return Ok(false);
        };
        if let Err(e) = self.save() {
            self.entries.insert(key.to_string(), old);
            return Err(e);
        }
        self.used -= key.len() + old.len();
        Ok(true)
    }

    fn save(&self) -> Result<(), StoreError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let io = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let tmp = path.with_extension("cbor.tmp");
        let mut bytes = Vec::with_capacity(self.used + 64);
        ciborium::into_writer(&self.entries, &mut bytes)
            .map_err(|e| io(std::io::Error::other(e.to_string())))?;
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("peerlet-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("s.cbor")
    }

    #[test]
    fn survives_reopen() {
        let path = temp("reopen");
        let mut s = Store::open(&path, 1000).unwrap();
        s.put("a", vec![1, 2]).unwrap();
        s.put("b", vec![3]).unwrap();
        assert!(s.remove("b").unwrap());
        drop(s);
        let s = Store::open(&path, 1000).unwrap();
        assert_eq!(s.get("a"), Some(&[1u8, 2][..]));
        assert_eq!(s.get("b"), None);
        assert_eq!(s.used(), 3);
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn quota_refuses_and_changes_nothing() {
        let path = temp("quota");
        let mut s = Store::open(&path, 10).unwrap();
        s.put("k", vec![0; 5]).unwrap();
        let err = s.put("x", vec![0; 10]).unwrap_err();
        assert!(err.to_string().contains("quota of 10 bytes"), "{err}");
        assert_eq!(s.get("x"), None);
        // Replacing a value counts only the difference.
        s.put("k", vec![0; 9]).unwrap();
        assert_eq!(s.used(), 10);
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn corrupt_file_is_a_clear_error() {
        let path = temp("corrupt");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"\xff\xff not cbor").unwrap();
        let err = Store::open(&path, 10).unwrap_err();
        assert!(err.to_string().contains("corrupt"), "{err}");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}
