//! Making keys, signing peerlets and checking signatures, on files, in the
//! formats of the stock `minisign` tool (what `peerlet keygen`, `sign` and
//! `verify` do).
//!
//! Interoperation goes both ways: keys from `minisign -G -W` sign peerlets
//! here, and what `peerlet sign` writes passes `minisign -V`.
//!
//! # Default key location
//!
//! `$PEERLET_HOME/peerlet.key` and `$PEERLET_HOME/peerlet.pub`, where
//! `PEERLET_HOME` defaults to `$HOME/.peerlet`. `keygen` creates the
//! directory if needed. The secret key file is created readable by its owner
//! only (mode 0600 on Unix), as minisign does.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::header::PeerletHeader;
use super::publisher::{PublicKeyError, PublisherKey};
use super::refusal::Refusal;
use super::secret_key::{KeyPassword, SecretKeyError, SigningKey};
use super::verified::{VerifiedPackage, TRUSTED_COMMENT_FIELD};
use super::{parse_source, Package};

/// Environment variable naming the directory of the default key pair.
pub const PEERLET_HOME_ENV: &str = "PEERLET_HOME";
/// File name of the default secret key.
pub const DEFAULT_SECRET_KEY_FILE: &str = "peerlet.key";
/// File name of the default public key.
pub const DEFAULT_PUBLIC_KEY_FILE: &str = "peerlet.pub";
/// What a detached signature's file name adds to the signed file's.
pub const SIGNATURE_SUFFIX: &str = ".minisig";

/// Why keygen, sign or verify failed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("key file {path} already exists; overwrite it with --force (-f)")]
    KeyExists { path: String },
    #[error("no place for the default keys: set PEERLET_HOME or HOME, or name the key files")]
    NoKeyDir,
    #[error(transparent)]
    SecretKey(#[from] SecretKeyError),
    #[error(transparent)]
    PublicKey(#[from] PublicKeyError),
    #[error("{path}: {source}")]
    Package {
        path: String,
        #[source]
        source: Refusal,
    },
    #[error("cannot sign {path}: {reason}")]
    Sign { path: String, reason: String },
}

/// The directory of the default key pair: `$PEERLET_HOME`, else `$HOME/.peerlet`.
pub fn default_key_dir() -> Result<PathBuf, SignError> {
    let non_empty = |v: std::ffi::OsString| (!v.is_empty()).then(|| PathBuf::from(v));
    if let Some(dir) = std::env::var_os(PEERLET_HOME_ENV).and_then(non_empty) {
        return Ok(dir);
    }
    std::env::var_os("HOME")
        .and_then(non_empty)
        .map(|h| h.join(".peerlet"))
        .ok_or(SignError::NoKeyDir)
}

/// `default_key_dir()/peerlet.key`.
pub fn default_secret_key_path() -> Result<PathBuf, SignError> {
    Ok(default_key_dir()?.join(DEFAULT_SECRET_KEY_FILE))
}

/// `default_key_dir()/peerlet.pub`.
pub fn default_public_key_path() -> Result<PathBuf, SignError> {
    Ok(default_key_dir()?.join(DEFAULT_PUBLIC_KEY_FILE))
}

/// Where the detached signature of `path` goes: `path` + `.minisig`.
pub fn signature_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(SIGNATURE_SUFFIX);
    PathBuf::from(name)
}

/// Makes an unencrypted key pair (like `minisign -G -W`) and writes it to
/// `pub_path` and `sec_path` in minisign's formats. Unless `force`, refuses
/// if either file exists, and then writes neither.
pub fn keygen(pub_path: &Path, sec_path: &Path, force: bool) -> Result<PublisherKey, SignError> {
    if !force {
        for path in [pub_path, sec_path] {
            if path.exists() {
                return Err(SignError::KeyExists {
                    path: path.display().to_string(),
                });
            }
        }
    }
    let key = SigningKey::generate()?;
    write_file(sec_path, key.to_key_text().as_bytes(), force, true)?;
    write_file(
        pub_path,
        key.public().to_pub_text().as_bytes(),
        force,
        false,
    )?;
    Ok(key.public().clone())
}

/// The trusted comment `peerlet sign` writes: minisign's own fields, then
/// the peerlet header fields (`…\thashed\tpeerlet:name=dht type=end-node version=3`).
pub fn trusted_comment(package_file_name: &str, header_fields: &str, unix_time: u64) -> String {
    let file: String = package_file_name
        .chars()
        .map(|c| if c.is_control() { '_' } else { c })
        .collect();
    format!("timestamp:{unix_time}\tfile:{file}\thashed\t{TRUSTED_COMMENT_FIELD}{header_fields}")
}

/// Signs peerlet source with `key`, as `minisign -S` would, with the
/// trusted comment of [`trusted_comment`]; returns the `.minisig` text.
/// Refuses source that is not a peerlet (see [`Package::parse`]).
pub fn sign_source(key: &SigningKey, source: &[u8], file_name: &str) -> Result<String, SignError> {
    sign_bytes(key, source, file_name, file_name).map(|(signature, _)| signature)
}

/// [`sign_source`], naming `origin` in errors; also returns the header.
fn sign_bytes(
    key: &SigningKey,
    source: &[u8],
    file_name: &str,
    origin: &str,
) -> Result<(String, PeerletHeader), SignError> {
    let package_error = |source| SignError::Package {
        path: origin.to_string(),
        source,
    };
    let (_, header) = parse_source(source).map_err(package_error)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let comment = trusted_comment(file_name, &header.fields(), now);
    let signature = key
        .sign(source, &comment)
        .map_err(|reason| SignError::Sign {
            path: origin.to_string(),
            reason,
        })?;
    // The signer checked the signature already; this checks that what we
    // wrote also parses and verifies the way nodes will check it.
    Package::parse(source, &signature)
        .and_then(|p| p.verify_with_key(key.public()))
        .map_err(package_error)?;
    Ok((signature, header))
}

/// Signs the peerlet at `path` with the unencrypted secret key at
/// `sec_path`; writes (or replaces) `path.minisig` and returns its path.
pub fn sign_file(path: &Path, sec_path: &Path) -> Result<PathBuf, SignError> {
    sign_file_with(path, sec_path, &KeyPassword::Refuse).map(|signed| signed.signature_path)
}

/// What [`sign_file_with`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedFile {
    /// Where the `.minisig` was written.
    pub signature_path: PathBuf,
    /// The header that was signed.
    pub header: PeerletHeader,
}

/// [`sign_file`], also with password-protected keys (`minisign -G`).
pub fn sign_file_with(
    path: &Path,
    sec_path: &Path,
    password: &KeyPassword,
) -> Result<SignedFile, SignError> {
    let key = SigningKey::from_file(sec_path, password)?;
    let source = read(path)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let origin = path.display().to_string();
    let (signature, header) = sign_bytes(&key, &source, &file_name, &origin)?;
    let signature_path = signature_path(path);
    write_file(&signature_path, signature.as_bytes(), true, false)?;
    Ok(SignedFile {
        signature_path,
        header,
    })
}

/// Checks the peerlet at `path` and its signature at `sig_path` against the
/// public key file `pub_path` (trusting that key; no size limit, no trust
/// policy). On success, says what was signed and by whom.
pub fn verify_file(
    path: &Path,
    sig_path: &Path,
    pub_path: &Path,
) -> Result<VerifiedPackage, SignError> {
    verify_file_with_key(path, sig_path, &PublisherKey::from_file(pub_path)?)
}

/// [`verify_file`] with the public key already at hand.
pub fn verify_file_with_key(
    path: &Path,
    sig_path: &Path,
    key: &PublisherKey,
) -> Result<VerifiedPackage, SignError> {
    let source = read(path)?;
    let signature = String::from_utf8(read(sig_path)?).map_err(|_| SignError::Package {
        path: sig_path.display().to_string(),
        source: Refusal::MalformedSignature {
            name: "?".to_string(),
            reason: "not UTF-8 text".to_string(),
        },
    })?;
    Package::parse(&source, &signature)
        .and_then(|p| p.verify_with_key(key))
        .map_err(|source| SignError::Package {
            path: path.display().to_string(),
            source,
        })
}

fn read(path: &Path) -> Result<Vec<u8>, SignError> {
    std::fs::read(path).map_err(|source| SignError::Io {
        action: "read",
        path: path.display().to_string(),
        source,
    })
}

/// Writes a whole file; `replace`: overwrite, else fail if it exists;
/// `secret`: owner-only permissions.
fn write_file(path: &Path, contents: &[u8], replace: bool, secret: bool) -> Result<(), SignError> {
    let io_err = |action, source| SignError::Io {
        action,
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| io_err("create the directory of", e))?;
    }
    let mut options = OpenOptions::new();
    options.write(true);
    if replace {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(not(unix))]
    let _ = secret;
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        if replace && path.exists() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| io_err("restrict permissions of", e))?;
        }
    }
    let mut file = options.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => SignError::KeyExists {
            path: path.display().to_string(),
        },
        _ => io_err("create", e),
    })?;
    file.write_all(contents)
        .and_then(|_| file.sync_all())
        .map_err(|e| io_err("write", e))
}
