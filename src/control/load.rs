//! What `.load FILE` installs, and how it is signed.
//!
//! In order:
//! 1. `FILE.minisig` beside the file: the file is signed already; it is
//!    installed signed, and runs only if the node trusts its publisher
//!    (like `peerlet node --load`).
//! 2. The node's own key, `DATA/peerlet.key` (an unencrypted minisign key,
//!    as `peerlet keygen -s DATA/peerlet.key -p DATA/peerlet.pub` writes),
//!    whose public half the node trusts (`--trust DATA/peerlet.pub` or
//!    `DATA/trust.conf`): the file is signed with it in memory (no
//!    `.minisig` is written) and installed signed, so its messages carry a
//!    code locator and other nodes trusting that key can run it.
//! 3. Otherwise the file is installed as the node's own, unsigned, and the
//!    answer says why a present key was not used.
//!
//! The key is read at each `.load`, so a key made while the node runs is
//! used at once; trust is never widened here: only the node's trust
//! policy decides which keys count.

use std::path::{Path, PathBuf};

use crate::id::AppId;
use crate::node::NodeHandle;
use crate::package::secret_key::{KeyPassword, SigningKey};
use crate::package::signing;

/// The node's own signing key, in its data directory.
pub const LOCAL_KEY: &str = "peerlet.key";

/// A peerlet installed by `.load`: its name, app id and how it was signed.
pub struct Loaded {
    pub name: String,
    pub app: AppId,
    pub how: String,
}

/// Installs the peerlet at `path` on `node`; `data_dir` is where the
/// node's own key may be.
pub fn load(node: &NodeHandle, data_dir: Option<&Path>, path: &Path) -> Result<Loaded, String> {
    load_as(node, data_dir, path, false)
}

/// [`load`] for `.reload` of a signed peerlet: the new code must be signed
/// too (a `.minisig` or the node's trusted key), so that it keeps its app
/// id and its messages carry the new code's locator. It replaces the
/// running version here (with `save`/`restore`) unless it is older; other
/// nodes take it up by traffic only if its `version=` is higher.
pub fn reload_signed(
    node: &NodeHandle,
    data_dir: Option<&Path>,
    path: &Path,
) -> Result<Loaded, String> {
    load_as(node, data_dir, path, true)
}

fn load_as(
    node: &NodeHandle,
    data_dir: Option<&Path>,
    path: &Path,
    signed_only: bool,
) -> Result<Loaded, String> {
    let source = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let chunk = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("peerlet.lua")
        .to_string();
    let sig_path = signing::signature_path(path);
    let (signature, how) = match std::fs::read_to_string(&sig_path) {
        Ok(sig) => (Some(sig), format!("signed, {}", sig_path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match local_key(data_dir) {
            Ok(None) => (None, "unsigned, this node's own".to_string()),
            Ok(Some((key, key_path))) => {
                let public = key.public().clone();
                let trusted = node
                    .with_peerlets(move |m, _| m.trust().is_trusted(&public))
                    .map_err(|e| e.to_string())?;
                if trusted {
                    let sig =
                        signing::sign_source(&key, &source, &chunk).map_err(|e| e.to_string())?;
                    let how = format!(
                        "signed here with {}, key {}",
                        key_path.display(),
                        key.public().key_id_hex()
                    );
                    (Some(sig), how)
                } else {
                    let how = format!(
                        "unsigned, this node's own: it does not trust the key {} \
                             (start it with --trust on its public half)",
                        key_path.display()
                    );
                    (None, how)
                }
            }
            Err(e) => (None, format!("unsigned, this node's own: {e}")),
        },
        Err(e) => return Err(format!("{}: {e}", sig_path.display())),
    };
    if signed_only && signature.is_none() {
        return Err(format!(
            "the running peerlet is signed, and {} would not be ({how}): sign it \
             (peerlet sign) or give this node a trusted key of its own",
            path.display()
        ));
    }
    let installed = node.with_peerlets(move |m, api| {
        let app = match &signature {
            Some(sig) => m.install_signed(api, &source, sig),
            None => m.install_local(api, &chunk, &source),
        }
        .map_err(|e| e.to_string())?;
        let name = m.peerlets().find(|p| p.app == app).map(|p| p.name.clone());
        Ok::<_, String>((name.unwrap_or_default(), app))
    });
    let (name, app) = installed.map_err(|e| e.to_string())??;
    Ok(Loaded { name, app, how })
}

/// The node's own key, if there is one; `Err` when it is there but
/// cannot be used (password-protected, damaged).
fn local_key(data_dir: Option<&Path>) -> Result<Option<(SigningKey, PathBuf)>, String> {
    let Some(path) = data_dir.map(|d| d.join(LOCAL_KEY)) else {
        return Ok(None);
    };
    if !path.exists() {
        return Ok(None);
    }
    SigningKey::from_file(&path, &KeyPassword::Refuse)
        .map(|key| Some((key, path)))
        .map_err(|e| e.to_string())
}
