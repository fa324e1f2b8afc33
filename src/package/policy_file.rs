//! The trust policy file, `trust.conf` in a node's data directory.
//!
//! A plain text file, one `setting = value` per line:
//!
//! ```text
//! # Publishers whose peerlets this node runs, and what else it allows.
//! key-file = keys/alice.pub
//! key = RWTiP5RR0LzJC6iv3ITp7+rhLrXeSLyRbwdoGdlkem3TTptOSaGInLeh
//! per-hop = deny
//! max-package-bytes = 262144
//! ```
//!
//! - `key-file = PATH`: trust the minisign public key in that `.pub` file; a
//!   relative path is relative to the directory of `trust.conf`. Repeatable.
//! - `key = BASE64`: trust this key, given as the base64 line of a `.pub`
//!   file (what `minisign -P` takes). Repeatable.
//! - `per-hop = allow | deny`: whether per-hop apps run on this node at all
//!   (default `allow`; a node that denies them still forwards their messages).
//! - `max-package-bytes = N`: largest package this node takes (default 262144).
//!
//! Lines whose first non-blank character is `#` are comments; blank lines
//! are ignored. Spaces around `=` and at the ends of lines do not matter.
//! An unknown setting or a bad value is an error naming the file and line,
//! so a typo never silently weakens (or widens) the policy.

use std::path::Path;

use super::publisher::PublisherKey;

/// What a policy file says; [`TrustPolicy::load`](super::trust::TrustPolicy::load)
/// applies it.
#[derive(Debug, Default)]
pub struct PolicySettings {
    /// Keys to trust, in file order.
    pub keys: Vec<PublisherKey>,
    /// `per-hop = allow | deny`, if given (the last one wins).
    pub run_per_hop: Option<bool>,
    /// `max-package-bytes = N`, if given (the last one wins).
    pub max_package_bytes: Option<usize>,
}

/// Why the policy file could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum PolicyFileError {
    #[error("cannot read trust policy {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("trust policy {path}, line {line}: {reason}")]
    Line {
        path: String,
        line: usize,
        reason: String,
    },
}

/// Reads the policy file at `path`.
pub fn read(path: &Path) -> Result<PolicySettings, PolicyFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| PolicyFileError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let base_dir = path.parent().unwrap_or(Path::new("."));
    parse(&text, base_dir, &path.display().to_string())
}

/// Reads policy text; `base_dir` resolves relative `key-file` paths and
/// `origin` names the text in errors.
pub fn parse(text: &str, base_dir: &Path, origin: &str) -> Result<PolicySettings, PolicyFileError> {
    let mut policy = PolicySettings::default();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        parse_line(line, base_dir, &mut policy).map_err(|reason| PolicyFileError::Line {
            path: origin.to_string(),
            line: index + 1,
            reason,
        })?;
    }
    Ok(policy)
}

fn parse_line(line: &str, base_dir: &Path, policy: &mut PolicySettings) -> Result<(), String> {
    let (setting, value) = line
        .split_once('=')
        .ok_or_else(|| format!("`{line}` is not `setting = value`"))?;
    let (setting, value) = (setting.trim(), value.trim());
    match setting {
        "key-file" => {
            let key = PublisherKey::from_file(&base_dir.join(value)).map_err(|e| e.to_string())?;
            policy.keys.push(key);
        }
        "key" => policy
            .keys
            .push(PublisherKey::from_base64(value).map_err(|e| e.to_string())?),
        "per-hop" => match value {
            "allow" => policy.run_per_hop = Some(true),
            "deny" => policy.run_per_hop = Some(false),
            _ => return Err(format!("per-hop must be `allow` or `deny`, not `{value}`")),
        },
        "max-package-bytes" => {
            let max = value
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    format!("max-package-bytes must be a positive integer, not `{value}`")
                })?;
            policy.max_package_bytes = Some(max);
        }
        _ => {
            return Err(format!(
                "unknown setting `{setting}` (known: key-file, key, per-hop, max-package-bytes)"
            ))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "RWTiP5RR0LzJC6iv3ITp7+rhLrXeSLyRbwdoGdlkem3TTptOSaGInLeh";

    fn apply_str(text: &str, dir: &Path) -> Result<PolicySettings, PolicyFileError> {
        parse(text, dir, "trust.conf")
    }

    #[test]
    fn reads_every_setting() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("keys")).unwrap();
        let other = "untrusted comment: minisign public key 1\n\
                     RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3\n";
        std::fs::write(dir.path().join("keys/other.pub"), other).unwrap();
        let text = format!(
            "# a comment\n\n  key = {KEY}  \nkey-file=keys/other.pub\nper-hop = deny\nmax-package-bytes = 1000\n"
        );
        let policy = apply_str(&text, dir.path()).unwrap();
        assert_eq!(policy.keys.len(), 2);
        assert_eq!(policy.keys[0].to_base64(), KEY);
        assert_eq!(policy.run_per_hop, Some(false));
        assert_eq!(policy.max_package_bytes, Some(1000));
    }

    #[test]
    fn mistakes_name_the_line() {
        let dir = Path::new(".");
        for (text, needle) in [
            ("per-hop = maybe", "per-hop must be"),
            ("\nkey = nope", "not a minisign Ed25519 public key"),
            ("perhop = deny", "unknown setting `perhop`"),
            ("trust everything", "not `setting = value`"),
            ("max-package-bytes = 0", "positive integer"),
            (
                "key-file = /nonexistent/k.pub",
                "cannot read public key file",
            ),
        ] {
            let err = apply_str(text, dir).unwrap_err().to_string();
            assert!(err.starts_with("trust policy trust.conf, line "), "{err}");
            assert!(err.contains(needle), "{err}");
        }
        let err = apply_str("\n\nkey = x", dir).unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
    }
}
