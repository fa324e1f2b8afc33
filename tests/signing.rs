//! Interoperation with the stock `minisign` CLI, both ways, on real files.
//!
//! These tests need `minisign` on PATH (Debian: `apt-get install minisign`;
//! .ci/run installs it). Without it they fail, saying so: skipping would
//! hide that interop was never checked.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use peerlet::id::AppId;
use peerlet::package::publisher::PublisherKey;
use peerlet::package::refusal::{Refusal, RefusalReason};
use peerlet::package::secret_key::{KeyPassword, SecretKeyError};
use peerlet::package::signing::{self, SignError};
use peerlet::wire::AppType;

const DHT: &str = "--@peerlet name=dht type=per-hop version=7\n\
                   local P = {}\n\
                   function P.deliver(key, msg, from) log.info(msg.text) end\n\
                   return P\n";

/// Runs the stock minisign CLI; panics with instructions if it is missing.
fn minisign(args: &[&str], dir: &Path, stdin: &str) -> Output {
    let mut child = Command::new("minisign")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run the stock `minisign` CLI ({e}). These interop tests need it on \
                 PATH: install it with `apt-get install minisign` (Debian/Ubuntu)."
            )
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn minisign_ok(args: &[&str], dir: &Path) -> String {
    let out = minisign(args, dir, "");
    assert!(
        out.status.success(),
        "minisign {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn minisign_fails(args: &[&str], dir: &Path) {
    let out = minisign(args, dir, "");
    assert!(
        !out.status.success(),
        "minisign {args:?} accepted what it should refuse"
    );
}

/// A temp dir with `dht.lua` in it; removed when dropped.
fn workspace() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let lua = dir.path().join("dht.lua");
    std::fs::write(&lua, DHT).unwrap();
    (dir, lua)
}

fn assert_is_dht(v: &peerlet::package::verified::VerifiedPackage, pub_file: &Path) {
    let key = PublisherKey::from_file(pub_file).unwrap();
    assert_eq!(
        (v.name(), v.app_type(), v.version()),
        ("dht", AppType::PerHop, 7)
    );
    assert_eq!(v.publisher(), &key);
    assert_eq!(v.app_id(), AppId::derive(key.ed25519(), "dht"));
}

#[test]
fn minisign_keys_sign_with_peerlet_and_verify_with_minisign() {
    let (dir, lua) = workspace();
    let d = dir.path();
    minisign_ok(&["-G", "-W", "-p", "k.pub", "-s", "k.key"], d);
    let sig = signing::sign_file(&lua, &d.join("k.key")).unwrap();
    assert_eq!(sig, d.join("dht.lua.minisig"));
    let said = minisign_ok(&["-V", "-p", "k.pub", "-m", "dht.lua"], d);
    assert!(
        said.contains("\tpeerlet:name=dht type=per-hop version=7"),
        "{said}"
    );
    let v = signing::verify_file(&lua, &sig, &d.join("k.pub")).unwrap();
    assert_is_dht(&v, &d.join("k.pub"));
}

#[test]
fn minisign_signed_peerlets_verify_with_peerlet() {
    let (dir, lua) = workspace();
    let d = dir.path();
    minisign_ok(&["-G", "-W", "-p", "k.pub", "-s", "k.key"], d);
    minisign_ok(&["-S", "-s", "k.key", "-m", "dht.lua"], d);
    let v = signing::verify_file(&lua, &d.join("dht.lua.minisig"), &d.join("k.pub")).unwrap();
    assert_is_dht(&v, &d.join("k.pub"));
    assert!(
        v.trusted_comment().contains("file:dht.lua"),
        "{}",
        v.trusted_comment()
    );
}

#[test]
fn peerlet_keys_work_with_minisign() {
    let (dir, lua) = workspace();
    let d = dir.path();
    let key = signing::keygen(&d.join("p.pub"), &d.join("p.key"), false).unwrap();
    // minisign signs with our secret key and checks with our public key ...
    minisign_ok(&["-S", "-s", "p.key", "-m", "dht.lua"], d);
    minisign_ok(&["-V", "-p", "p.pub", "-m", "dht.lua"], d);
    minisign_ok(&["-V", "-P", key.to_base64(), "-m", "dht.lua"], d);
    let v = signing::verify_file(&lua, &d.join("dht.lua.minisig"), &d.join("p.pub")).unwrap();
    assert_is_dht(&v, &d.join("p.pub"));
    // ... and checks what peerlet signs with it.
    signing::sign_file(&lua, &d.join("p.key")).unwrap();
    minisign_ok(&["-V", "-p", "p.pub", "-m", "dht.lua"], d);
}

#[test]
fn tampered_files_and_signatures_are_refused_by_both() {
    let (dir, lua) = workspace();
    let d = dir.path();
    let sig = d.join("dht.lua.minisig");
    signing::keygen(&d.join("p.pub"), &d.join("p.key"), false).unwrap();
    signing::sign_file(&lua, &d.join("p.key")).unwrap();
    let good_sig = std::fs::read_to_string(&sig).unwrap();

    // The code: one changed app type.
    std::fs::write(&lua, DHT.replace("per-hop", "end-node")).unwrap();
    minisign_fails(&["-V", "-p", "p.pub", "-m", "dht.lua"], d);
    let err = signing::verify_file(&lua, &sig, &d.join("p.pub")).unwrap_err();
    assert_reason(&err, RefusalReason::BadSignature);

    // The signature: a changed trusted comment.
    std::fs::write(&lua, DHT).unwrap();
    std::fs::write(&sig, good_sig.replace("version=7", "version=8")).unwrap();
    minisign_fails(&["-V", "-p", "p.pub", "-m", "dht.lua"], d);
    let err = signing::verify_file(&lua, &sig, &d.join("p.pub")).unwrap_err();
    assert_reason(&err, RefusalReason::BadSignature);

    // Another publisher's key.
    std::fs::write(&sig, &good_sig).unwrap();
    minisign_ok(&["-G", "-W", "-p", "other.pub", "-s", "other.key"], d);
    minisign_fails(&["-V", "-p", "other.pub", "-m", "dht.lua"], d);
    let err = signing::verify_file(&lua, &sig, &d.join("other.pub")).unwrap_err();
    assert_reason(&err, RefusalReason::UnknownPublisher);
    assert!(signing::verify_file(&lua, &sig, &d.join("p.pub")).is_ok());
}

fn assert_reason(err: &SignError, reason: RefusalReason) {
    match err {
        SignError::Package { source, .. } => assert_eq!(source.reason(), reason, "{err}"),
        other => panic!("expected a {reason} refusal, got: {other}"),
    }
}

#[test]
fn password_protected_minisign_keys_sign_with_the_password() {
    let (dir, lua) = workspace();
    let d = dir.path();
    let out = minisign(&["-G", "-p", "e.pub", "-s", "e.key"], d, "secret\nsecret\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let e_key = d.join("e.key");
    let err = signing::sign_file(&lua, &e_key).unwrap_err();
    assert!(
        matches!(err, SignError::SecretKey(SecretKeyError::Encrypted { .. })),
        "{err}"
    );
    // (No wrong-password attempt: each try costs minisign's 1 GiB scrypt.)
    signing::sign_file_with(&lua, &e_key, &KeyPassword::Given("secret".into())).unwrap();
    minisign_ok(&["-V", "-p", "e.pub", "-m", "dht.lua"], d);
}

#[test]
fn keygen_never_overwrites_keys_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let (p, s) = (dir.path().join("keys/a.pub"), dir.path().join("keys/a.key"));
    let first = signing::keygen(&p, &s, false).unwrap();
    for (pp, ss) in [
        (&p, &dir.path().join("b.key")),
        (&dir.path().join("b.pub"), &s),
    ] {
        let err = signing::keygen(pp, ss, false).unwrap_err();
        assert!(matches!(err, SignError::KeyExists { .. }), "{err}");
    }
    assert!(!dir.path().join("b.pub").exists() && !dir.path().join("b.key").exists());
    assert_eq!(PublisherKey::from_file(&p).unwrap(), first);
    let second = signing::keygen(&p, &s, true).unwrap();
    assert_ne!(second, first);
    assert_eq!(PublisherKey::from_file(&p).unwrap(), second);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&s).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "secret key mode {mode:o}");
    }
}

#[test]
fn signing_refuses_files_that_are_not_peerlets() {
    let (dir, lua) = workspace();
    let d = dir.path();
    signing::keygen(&d.join("p.pub"), &d.join("p.key"), false).unwrap();
    std::fs::write(&lua, "print('no header')\n").unwrap();
    let err = signing::sign_file(&lua, &d.join("p.key")).unwrap_err();
    assert!(
        err.to_string().contains("dht.lua") && err.to_string().contains("missing header"),
        "{err}"
    );
    assert!(!d.join("dht.lua.minisig").exists());
    // minisign itself signs anything, but peerlet then refuses to verify it as a peerlet.
    minisign_ok(&["-S", "-s", "p.key", "-m", "dht.lua"], d);
    let err = signing::verify_file(&lua, &d.join("dht.lua.minisig"), &d.join("p.pub")).unwrap_err();
    assert!(
        matches!(
            err,
            SignError::Package {
                source: Refusal::Header(_),
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn cli_entry_points_sign_and_verify() {
    use peerlet::cmd::{keygen, sign, verify};
    let (dir, lua) = workspace();
    let d = dir.path();
    let (p, s) = (d.join("c.pub"), d.join("c.key"));
    keygen::run(keygen::Args {
        public_key: Some(p.clone()),
        secret_key: Some(s.clone()),
        force: false,
    })
    .unwrap();
    sign::run(sign::Args {
        file: lua.clone(),
        secret_key: Some(s),
    })
    .unwrap();
    let args = |key: &str| verify::Args {
        file: lua.clone(),
        public_key: Some(key.into()),
        signature: None,
    };
    verify::run(args(p.to_str().unwrap())).unwrap();
    let b64 = PublisherKey::from_file(&p).unwrap().to_base64().to_string();
    verify::run(args(&b64)).unwrap();
    minisign_ok(&["-G", "-W", "-p", "o.pub", "-s", "o.key"], d);
    let err = verify::run(args(d.join("o.pub").to_str().unwrap())).unwrap_err();
    assert!(err.to_string().contains("not with the given key"), "{err}");
}
