//! A peerlet file read for installing, and how it is signed: the one
//! reading behind `peerlet node --load`, `peerlet testnet --load` and the
//! console's `.load` / `.reload`, so they agree on when code is signed.
//!
//! In order:
//! 1. `FILE.minisig` beside the file: the file is signed already; it is
//!    installed signed, and runs only if the node trusts its publisher.
//! 2. Only where the caller offers the node's own key ([`OwnKey::IfTrusted`],
//!    the console's `.load`), and only if the node trusts its public half:
//!    the file is signed with it in memory (no `.minisig` is written) and
//!    installed signed. Trust is never widened here: only the node's trust
//!    policy decides which keys count.
//! 3. Otherwise the file is installed as the node's own, unsigned, and
//!    [`PeerletFile::how`] says why a key that is there was not used.

use std::path::{Path, PathBuf};

use super::handle::{NodeError, NodeHandle};
use crate::id::AppId;
use crate::package::secret_key::{KeyPassword, SigningKey};
use crate::package::signing;

/// Whether a file without a `.minisig` may be signed with the node's own key.
pub enum OwnKey<'a> {
    /// No (`--load`): such a file is installed unsigned.
    Never,
    /// With the unencrypted minisign key at `key`, if it is there and
    /// `node` trusts its public half (the console's `.load`). The key is
    /// read at each call, so a key made while the node runs is used at once.
    IfTrusted { node: &'a NodeHandle, key: PathBuf },
}

/// A peerlet's code as read from its file, with the signature it will be
/// installed with.
pub struct PeerletFile {
    /// The chunk name Lua's messages give: the file's name.
    pub chunk: String,
    pub source: Vec<u8>,
    /// `None`: installed unsigned, as the node's own.
    pub signature: Option<String>,
    /// How it is signed, for people: "signed, FILE.minisig", "signed here
    /// with KEY, key ID", "unsigned, this node's own[: why]".
    pub how: String,
}

/// What an install made: the peerlet's name (from its header) and app id.
pub struct Installed {
    pub name: String,
    pub app: AppId,
}

impl PeerletFile {
    /// Reads `path` and decides how it is signed (see the module docs).
    /// Errors name the file that cannot be read.
    pub fn read(path: &Path, own_key: OwnKey<'_>) -> Result<PeerletFile, String> {
        let source = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let chunk = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("peerlet.lua")
            .to_string();
        let sig_path = signing::signature_path(path);
        let (signature, how) = match std::fs::read_to_string(&sig_path) {
            Ok(sig) => (Some(sig), format!("signed, {}", sig_path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match own_key {
                OwnKey::Never => (None, "unsigned, this node's own".to_string()),
                OwnKey::IfTrusted { node, key } => sign_with_own_key(node, &key, &source, &chunk)?,
            },
            Err(e) => return Err(format!("{}: {e}", sig_path.display())),
        };
        Ok(PeerletFile {
            chunk,
            source,
            signature,
            how,
        })
    }

    pub fn is_signed(&self) -> bool {
        self.signature.is_some()
    }

    /// Installs the code on `node`: signed, or as the node's own.
    pub fn install(&self, node: &NodeHandle) -> Result<Installed, NodeError> {
        let (source, chunk) = (self.source.clone(), self.chunk.clone());
        let signature = self.signature.clone();
        node.with_peerlets(move |m, api| {
            let app = match &signature {
                Some(sig) => m.install_signed(api, &source, sig),
                None => m.install_local(api, &chunk, &source),
            }
            .map_err(|e| e.to_string())?;
            let name = m.peerlets().find(|p| p.app == app).map(|p| p.name.clone());
            Ok(Installed {
                name: name.unwrap_or_default(),
                app,
            })
        })?
        .map_err(|reason| NodeError::Install {
            node: node.addr(),
            reason,
        })
    }
}

/// Step 2 of the module docs: the signature made with the node's own key,
/// or none and why not.
fn sign_with_own_key(
    node: &NodeHandle,
    key_path: &Path,
    source: &[u8],
    chunk: &str,
) -> Result<(Option<String>, String), String> {
    if !key_path.exists() {
        return Ok((None, "unsigned, this node's own".into()));
    }
    let key = match SigningKey::from_file(key_path, &KeyPassword::Refuse) {
        Ok(key) => key,
        // There but unusable (password-protected, damaged): said, not fatal.
        Err(e) => return Ok((None, format!("unsigned, this node's own: {e}"))),
    };
    let public = key.public().clone();
    let trusted = node
        .with_peerlets(move |m, _| m.trust().is_trusted(&public))
        .map_err(|e| e.to_string())?;
    if !trusted {
        let how = format!(
            "unsigned, this node's own: it does not trust the key {} \
             (start it with --trust on its public half)",
            key_path.display()
        );
        return Ok((None, how));
    }
    let sig = signing::sign_source(&key, source, chunk).map_err(|e| e.to_string())?;
    let how = format!(
        "signed here with {}, key {}",
        key_path.display(),
        key.public().key_id_hex()
    );
    Ok((Some(sig), how))
}
