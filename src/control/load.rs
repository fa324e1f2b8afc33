//! What `.load FILE` and `.reload NAME FILE` install: the file read as
//! [`PeerletFile::read`] decides, with the node's own key offered
//! (`DATA/peerlet.key`, as `peerlet keygen -s DATA/peerlet.key -p
//! DATA/peerlet.pub` writes it), so that code loaded at the console can
//! deploy itself like signed code when the node trusts that key.

use std::path::Path;

use crate::id::AppId;
use crate::node::{NodeError, NodeHandle, OwnKey, PeerletFile};

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
    let own_key = match data_dir {
        Some(dir) => OwnKey::IfTrusted {
            node,
            key: dir.join(LOCAL_KEY),
        },
        None => OwnKey::Never,
    };
    let file = PeerletFile::read(path, own_key)?;
    if signed_only && !file.is_signed() {
        return Err(format!(
            "the running peerlet is signed, and {} would not be ({}): sign it \
             (peerlet sign) or give this node a trusted key of its own",
            path.display(),
            file.how
        ));
    }
    match file.install(node) {
        Ok(installed) => Ok(Loaded {
            name: installed.name,
            app: installed.app,
            how: file.how,
        }),
        // The console answers with the reason alone: it is this node's.
        Err(NodeError::Install { reason, .. }) => Err(reason),
        Err(e) => Err(e.to_string()),
    }
}
