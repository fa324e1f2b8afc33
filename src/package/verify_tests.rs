//! Every way a package is refused, and what a verified one vouches for.

use sha2::{Digest, Sha256};

use super::header::HeaderError;
use super::refusal::{Refusal, RefusalReason};
use super::secret_key::SigningKey;
use super::signing::sign_source;
use super::trust::TrustPolicy;
use super::Package;
use crate::id::AppId;
use crate::wire::AppType;

const DHT: &str = "--@peerlet name=dht type=end-node version=3\nlocal P = {}\nreturn P\n";

fn signed(key: &SigningKey, source: &str) -> (Vec<u8>, String) {
    let sig = sign_source(key, source.as_bytes(), "dht.lua").unwrap();
    (source.as_bytes().to_vec(), sig)
}

fn trusting(key: &SigningKey) -> TrustPolicy {
    let mut policy = TrustPolicy::new();
    policy.trust(key.public().clone());
    policy
}

/// Parses and verifies; returns the error's reason and checks it was counted once.
fn refusal(policy: &TrustPolicy, source: &[u8], sig: &str) -> Refusal {
    let before = policy.refusals().total();
    let err = Package::parse(source, sig)
        .and_then(|p| policy.verify(&p).map(|_| ()))
        .unwrap_err();
    let counted = policy.refusals().total() - before;
    // Parse errors happen before the policy sees anything.
    let expected = if matches!(
        err.reason(),
        RefusalReason::BadHeader
            | RefusalReason::BinaryChunk
            | RefusalReason::NotText
            | RefusalReason::MalformedSignature
    ) {
        0
    } else {
        1
    };
    assert_eq!(counted, expected, "{err}");
    err
}

#[test]
fn a_good_package_says_what_was_signed_and_by_whom() {
    let key = SigningKey::generate().unwrap();
    let (source, sig) = signed(&key, DHT);
    let package = Package::parse(&source, &sig).unwrap();
    let v = trusting(&key).verify(&package).unwrap();
    assert_eq!(
        (v.name(), v.app_type(), v.version()),
        ("dht", AppType::EndNode, 3)
    );
    assert_eq!(v.publisher(), key.public());
    assert_eq!(v.app_id(), AppId::derive(key.public().ed25519(), "dht"));
    assert_eq!(
        v.code_hash(),
        <[u8; 32]>::from(Sha256::digest(package.encoded()))
    );
    assert_eq!(v.source(), DHT);
    assert!(v
        .trusted_comment()
        .ends_with("\tpeerlet:name=dht type=end-node version=3"));
    assert!(v.check_app_id(v.app_id()).is_ok());
}

#[test]
fn tampered_code_is_refused() {
    let key = SigningKey::generate().unwrap();
    let (mut source, sig) = signed(&key, DHT);
    *source.last_mut().unwrap() = b' ';
    let err = refusal(&trusting(&key), &source, &sig);
    assert_eq!(err.reason(), RefusalReason::BadSignature, "{err}");
    assert!(err.to_string().contains("changed after signing"), "{err}");
}

#[test]
fn a_changed_name_type_or_version_breaks_the_signature() {
    let key = SigningKey::generate().unwrap();
    let (_, sig) = signed(&key, DHT);
    let policy = trusting(&key);
    for changed in [
        DHT.replace("name=dht", "name=dhx"),
        DHT.replace("end-node", "per-hop"),
        DHT.replace("version=3", "version=4"),
    ] {
        let err = refusal(&policy, changed.as_bytes(), &sig);
        assert_eq!(
            err.reason(),
            RefusalReason::BadSignature,
            "{changed}: {err}"
        );
    }
}

#[test]
fn tampered_signatures_are_refused() {
    let key = SigningKey::generate().unwrap();
    let (source, sig) = signed(&key, DHT);
    let policy = trusting(&key);
    let lines: Vec<&str> = sig.lines().collect();

    // One character of the signature itself (past the algorithm and key id).
    let mut bad_sig: Vec<char> = lines[1].chars().collect();
    bad_sig[40] = if bad_sig[40] == 'A' { 'B' } else { 'A' };
    let bad_sig: String = bad_sig.into_iter().collect();
    let text = format!("{}\n{bad_sig}\n{}\n{}\n", lines[0], lines[2], lines[3]);
    assert_eq!(
        refusal(&policy, &source, &text).reason(),
        RefusalReason::BadSignature
    );

    // The trusted comment (covered by the global signature).
    let text = sig.replace("version=3", "version=9");
    assert_eq!(
        refusal(&policy, &source, &text).reason(),
        RefusalReason::BadSignature
    );

    // Not a signature at all.
    for text in [
        "",
        "untrusted comment: x\n",
        &sig[..sig.len() / 2],
        &sig.replace("RU", "!!"),
    ] {
        let err = refusal(&policy, &source, text);
        assert_eq!(
            err.reason(),
            RefusalReason::MalformedSignature,
            "{text:?}: {err}"
        );
    }
}

#[test]
fn an_unknown_publisher_is_refused() {
    let key = SigningKey::generate().unwrap();
    let stranger = SigningKey::generate().unwrap();
    let (source, sig) = signed(&stranger, DHT);
    let policy = trusting(&key);
    let err = refusal(&policy, &source, &sig);
    assert!(matches!(err, Refusal::UnknownPublisher { .. }), "{err}");
    assert!(
        err.to_string().contains(&stranger.public().key_id_hex()),
        "{err}"
    );
    assert_eq!(policy.refusals().get(RefusalReason::UnknownPublisher), 1);
    // Verified against the stranger's own key it is fine, but the policy still says no.
    let v = Package::parse(&source, &sig)
        .unwrap()
        .verify_with_key(stranger.public())
        .unwrap();
    assert!(matches!(
        policy.accepts(&v),
        Err(Refusal::UnknownPublisher { .. })
    ));
    assert_eq!(policy.refusals().get(RefusalReason::UnknownPublisher), 2);
}

#[test]
fn missing_or_malformed_headers_are_refused() {
    let key = SigningKey::generate().unwrap();
    let (_, sig) = signed(&key, DHT);
    let policy = trusting(&key);
    let cases = [
        ("local P = {}\nreturn P\n", HeaderError::Missing),
        ("--@peerlet type=per-hop\n", HeaderError::MissingName),
        ("--@peerlet name=DHT\n", HeaderError::BadName("DHT".into())),
    ];
    for (source, expected) in cases {
        let err = refusal(&policy, source.as_bytes(), &sig);
        assert_eq!(err, Refusal::Header(expected));
        assert!(
            sign_source(&key, source.as_bytes(), "x.lua").is_err(),
            "signing {source:?}"
        );
    }
}

#[test]
fn binary_chunks_and_non_text_are_refused() {
    let key = SigningKey::generate().unwrap();
    let (_, sig) = signed(&key, DHT);
    let policy = trusting(&key);
    let chunk = b"\x1bLuaT\x00\x19\x93\r\n\x1a\n";
    assert_eq!(refusal(&policy, chunk, &sig), Refusal::BinaryChunk);
    assert!(sign_source(&key, chunk, "x.luac").is_err());
    let latin1 = b"--@peerlet name=x\n-- caf\xe9\n";
    assert_eq!(
        refusal(&policy, latin1, &sig),
        Refusal::NotText { valid_up_to: 24 }
    );
}

#[test]
fn oversize_packages_are_refused() {
    let key = SigningKey::generate().unwrap();
    let (source, sig) = signed(&key, DHT);
    let mut policy = trusting(&key);
    let size = Package::parse(&source, &sig).unwrap().size();
    policy.set_max_package_bytes(size - 1);
    let err = refusal(&policy, &source, &sig);
    assert_eq!(
        err,
        Refusal::Oversize {
            size,
            max: size - 1
        }
    );
    let encoded = Package::parse(&source, &sig).unwrap().encoded().to_vec();
    assert_eq!(
        Package::decode(&encoded, size - 1).unwrap_err().reason(),
        RefusalReason::Oversize
    );
}

#[test]
fn per_hop_apps_are_refused_where_denied() {
    let key = SigningKey::generate().unwrap();
    let (source, sig) = signed(&key, &DHT.replace("end-node", "per-hop"));
    let mut policy = trusting(&key);
    assert!(policy
        .verify(&Package::parse(&source, &sig).unwrap())
        .is_ok());
    policy.set_run_per_hop(false);
    let err = refusal(&policy, &source, &sig);
    assert_eq!(err, Refusal::PerHopDenied { name: "dht".into() });
}

#[test]
fn an_app_id_claimed_by_another_key_is_refused() {
    let key = SigningKey::generate().unwrap();
    let other = SigningKey::generate().unwrap();
    let (source, sig) = signed(&key, DHT);
    let v = trusting(&key)
        .verify(&Package::parse(&source, &sig).unwrap())
        .unwrap();
    let theirs = AppId::derive(other.public().ed25519(), "dht");
    let err = v.check_app_id(theirs).unwrap_err();
    assert_eq!(err.reason(), RefusalReason::AppIdMismatch);
    assert!(err.to_string().contains(&theirs.to_string()), "{err}");
    assert!(v
        .check_app_id(AppId::derive(key.public().ed25519(), "dhx"))
        .is_err());
}

#[test]
fn a_trusted_comment_disagreeing_with_the_header_is_refused() {
    let key = SigningKey::generate().unwrap();
    let sig = key
        .sign(
            DHT.as_bytes(),
            "timestamp:1\tpeerlet:name=dht type=per-hop version=3",
        )
        .unwrap();
    let err = refusal(&trusting(&key), DHT.as_bytes(), &sig);
    assert_eq!(err.reason(), RefusalReason::CommentMismatch, "{err}");
    // A plain minisign comment, without peerlet fields, is fine.
    let sig = key
        .sign(DHT.as_bytes(), "timestamp:1\tfile:dht.lua\thashed")
        .unwrap();
    let package = Package::parse(DHT.as_bytes(), &sig).unwrap();
    assert!(trusting(&key).verify(&package).is_ok());
}

#[test]
fn the_transfer_encoding_round_trips_and_is_canonical() {
    let key = SigningKey::generate().unwrap();
    let (source, sig) = signed(&key, DHT);
    let package = Package::parse(&source, &sig).unwrap();
    let decoded = Package::decode(package.encoded(), usize::MAX).unwrap();
    assert_eq!(decoded.code_hash(), package.code_hash());
    assert_eq!(
        (decoded.source(), decoded.signature_text()),
        (DHT, sig.as_str())
    );

    let mut trailing = package.encoded().to_vec();
    trailing.push(0);
    // {"v": 1, ...}: the byte after the key "v" (0x61 0x76) is the value 0x01.
    let mut wrong_version = package.encoded().to_vec();
    let at = wrong_version
        .windows(2)
        .position(|w| w == [0x61, b'v'])
        .unwrap()
        + 2;
    wrong_version[at] = 0x02;
    for bad in [trailing, wrong_version, b"not cbor".to_vec(), vec![]] {
        let err = Package::decode(&bad, usize::MAX).unwrap_err();
        assert_eq!(err.reason(), RefusalReason::MalformedEncoding, "{err}");
    }
}

#[test]
fn admit_checks_everything_and_counts_refusals() {
    let key = SigningKey::generate().unwrap();
    let (source, sig) = signed(&key, DHT);
    let package = Package::parse(&source, &sig).unwrap();
    let policy = trusting(&key);
    let app = AppId::derive(key.public().ed25519(), "dht");
    let hash = package.code_hash();
    let v = policy.admit(package.encoded(), &hash, Some(app)).unwrap();
    assert_eq!(v.app_id(), app);

    let mut lying = package.encoded().to_vec();
    *lying.last_mut().unwrap() ^= 1;
    let err = policy.admit(&lying, &hash, Some(app)).unwrap_err();
    assert_eq!(err.reason(), RefusalReason::HashMismatch);
    let wrong_app = AppId::derive(b"someone else", "dht");
    let err = policy
        .admit(package.encoded(), &hash, Some(wrong_app))
        .unwrap_err();
    assert_eq!(err.reason(), RefusalReason::AppIdMismatch);
    let err = TrustPolicy::new()
        .admit(package.encoded(), &hash, None)
        .unwrap_err();
    assert_eq!(err.reason(), RefusalReason::UnknownPublisher);

    assert_eq!(policy.refusals().get(RefusalReason::HashMismatch), 1);
    assert_eq!(policy.refusals().get(RefusalReason::AppIdMismatch), 1);
    assert_eq!(policy.refusals().total(), 2);
}
