//! The decoders under test, one [`Target`] each, and the table that names
//! them. What each runs, and the allocation bound it is held to, is in its
//! doc comment.

use std::path::PathBuf;
use std::time::Duration;

use peerlet::control::{Request, Response, MAX_FRAME as CONTROL_MAX_FRAME};
use peerlet::net::FrameReader;
use peerlet::package::publisher::PublisherKey;
use peerlet::package::secret_key::{KeyPassword, SigningKey};
use peerlet::package::trust::TrustPolicy;
use peerlet::package::{policy_file, Package, DEFAULT_MAX_PACKAGE_BYTES};
use peerlet::sandbox::{decode_array, lua_to_cbor, Limits, Sandbox};
use peerlet::sim::Rng;
use peerlet::wire::{decode_body, encode_frame, frame_len, read_frame, Body, FrameError, Message};

use crate::engine::{fuzz, Failure, Stats, Target};
use crate::mutate::Form;
use crate::seeds;

/// Room for what the harness and a decoder's fixed buffers take besides
/// what the input can make it take: a `BufReader`'s 8 KiB, ciborium's
/// 4 KiB scratch, error texts, a future's state.
const SLACK: usize = 64 * 1024;

/// Runs a target: saved inputs, mutants, seed, and what to do with each
/// failing input.
pub type RunTarget = fn(&[Vec<u8>], u64, u64, &mut dyn FnMut(Failure, &[u8])) -> Stats;

/// How one target is run: the name, and a way to run it.
pub struct Entry {
    pub name: &'static str,
    /// Default inputs when `--inputs` is not given.
    pub default_inputs: u64,
    pub run: RunTarget,
}

fn entry<T: Target + Make>(name: &'static str, default_inputs: u64) -> Entry {
    Entry {
        name,
        default_inputs,
        run: |extra, inputs, seed, failed| fuzz(&mut T::make(), extra, inputs, seed, failed),
    }
}

/// A target that can be made without arguments.
pub trait Make {
    fn make() -> Self;
}

/// Every target, in the order the bench runs them.
pub fn all() -> Vec<Entry> {
    const TEN_MILLION: u64 = 10_000_000;
    vec![
        entry::<FrameTarget>("frame", TEN_MILLION),
        entry::<MessageTarget>("message", TEN_MILLION),
        entry::<CborLuaTarget>("cbor_lua", TEN_MILLION),
        entry::<PackageTarget>("package", TEN_MILLION),
        entry::<SignatureTarget>("signature", TEN_MILLION),
        entry::<PublicKeyTarget>("public_key", TEN_MILLION),
        entry::<SecretKeyTarget>("secret_key", TEN_MILLION),
        entry::<PolicyFileTarget>("policy_file", TEN_MILLION),
        entry::<ControlTarget>("control", TEN_MILLION),
        entry::<crate::handshake::HandshakeTarget>("handshake", TEN_MILLION),
    ]
}

/// The outcome of a decoder as text: what it decoded, or its error.
fn describe<T, E: std::fmt::Display>(r: &Result<T, E>, ok: impl FnOnce(&T) -> String) -> String {
    match r {
        Ok(v) => format!("ok {}", ok(v)),
        Err(e) => format!("err {e}"),
    }
}

/// Text parsers copy lines into keys, paths and error messages: linear in
/// the input, never more.
const TEXT_PER_BYTE: usize = 8;
/// A key that parses is checked by signing a probe, which takes ~64 KiB.
const TEXT_SLACK: usize = 128 * 1024;

// Text targets take the input as `&str`: the files they read are read
// with `read_to_string`, which refuses other bytes (mutations of text are
// made valid UTF-8, see `mutate`).

/// The variant name at the start of a `Debug` text.
fn variant(debug: &str) -> String {
    debug
        .split([' ', '(', '{'])
        .next()
        .unwrap_or_default()
        .into()
}

/// Sets a frame's length prefix to its body's length, three times in four.
fn fix_prefix(input: &mut [u8], rng: &mut Rng) {
    if input.len() >= 4 && rng.below(4) != 0 {
        let len = (input.len() - 4) as u32;
        input[..4].copy_from_slice(&len.to_be_bytes());
    }
}

/// Node frames as a TCP connection delivers them: `FrameReader` over the
/// bytes with a 4 KiB frame limit, reading frames until an error or the
/// end; and `frame_len` + `decode_body::<Message>` on the first frame.
/// Bound: the frame limit plus [`SLACK`], whatever the frames claim.
pub struct FrameTarget;

const SMALL_FRAME: usize = 4096;

impl Make for FrameTarget {
    fn make() -> FrameTarget {
        FrameTarget
    }
}

impl Target for FrameTarget {
    type Outcome = String;

    fn form(&self) -> Form {
        Form::Cbor { start: 4 }
    }

    fn seeds(&self) -> Vec<Vec<u8>> {
        let frames: Vec<Vec<u8>> = seeds::messages()
            .iter()
            .map(|m| encode_frame(m, SMALL_FRAME).unwrap())
            .collect();
        let mut two = frames[0].clone();
        two.extend_from_slice(&frames[1]);
        frames.into_iter().chain([two]).collect()
    }

    fn alloc_limit(&self, _input_len: usize) -> usize {
        SMALL_FRAME + SLACK
    }

    fn limit_text(&self) -> String {
        "max frame (4 KiB) + 64 KiB".into()
    }

    fn prepare(&self, input: &mut Vec<u8>, rng: &mut Rng) {
        fix_prefix(input, rng)
    }

    fn run(&mut self, input: &[u8]) -> String {
        let mut shape = String::new();
        smol::block_on(async {
            let mut reader = FrameReader::new(input, SMALL_FRAME, Duration::from_secs(1));
            loop {
                match reader.read_frame().await {
                    Ok(Some(m)) => shape.push_str(m.kind()),
                    Ok(None) => break,
                    Err(e) => {
                        shape.push_str(&e.to_string());
                        break;
                    }
                }
                shape.push(' ');
            }
        });
        if input.len() >= 4 {
            let prefix = input[..4].try_into().unwrap();
            let first =
                frame_len(prefix, SMALL_FRAME).and_then(|len| match input.get(4..4 + len) {
                    Some(body) => decode_body::<Message>(body),
                    None => Err(FrameError::Truncated {
                        got: input.len() - 4,
                        len,
                    }),
                });
            shape.push_str(&describe(&first, |m| m.kind().to_string()));
        }
        shape
    }

    fn shape(&self, outcome: &String) -> String {
        outcome.clone()
    }
}

/// `decode_body::<Message>` on bodies of any length (the node decodes
/// bodies of up to its frame limit). Bound: 16 bytes per input byte (a
/// decoded node takes ~60 bytes for its ~10 on the wire, and vectors grow
/// by doubling) plus [`SLACK`].
pub struct MessageTarget;

impl Make for MessageTarget {
    fn make() -> MessageTarget {
        MessageTarget
    }
}

impl Target for MessageTarget {
    type Outcome = Result<Message, FrameError>;

    fn form(&self) -> Form {
        Form::Cbor { start: 0 }
    }

    fn seeds(&self) -> Vec<Vec<u8>> {
        seeds::messages()
            .iter()
            .map(|m| encode_frame(m, usize::MAX).unwrap()[4..].to_vec())
            .collect()
    }

    fn alloc_limit(&self, input_len: usize) -> usize {
        16 * input_len + SLACK
    }

    fn limit_text(&self) -> String {
        "16 × input + 64 KiB".into()
    }

    fn run(&mut self, input: &[u8]) -> Self::Outcome {
        decode_body::<Message>(input)
    }

    fn shape(&self, outcome: &Self::Outcome) -> String {
        describe(outcome, |m| match m {
            Message::Route { msg, .. } => match &msg.body {
                Body::App(a) => format!(
                    "route app {} {}",
                    variant(&format!("{:?}", a.kind)),
                    a.code.is_some()
                ),
                Body::Lookup { .. } => "route lookup".into(),
            },
            other => other.kind().into(),
        })
    }
}

/// Application data into a peerlet: `decode_array` (which runs
/// `cbor_to_lua`) into one sandboxed Lua state kept across inputs, with
/// `Limits::default()`; what decodes is encoded back with `lua_to_cbor`.
/// Bound: the state's memory limit (8 MiB) plus [`SLACK`].
pub struct CborLuaTarget {
    sandbox: Sandbox,
    limits: Limits,
}

impl Make for CborLuaTarget {
    fn make() -> CborLuaTarget {
        let limits = Limits::default();
        CborLuaTarget {
            sandbox: Sandbox::new("fuzz", &limits).unwrap(),
            limits,
        }
    }
}

impl Target for CborLuaTarget {
    type Outcome = String;

    fn form(&self) -> Form {
        Form::Cbor { start: 0 }
    }

    fn seeds(&self) -> Vec<Vec<u8>> {
        seeds::lua_values()
    }

    fn alloc_limit(&self, _input_len: usize) -> usize {
        self.limits.memory_bytes + SLACK
    }

    fn limit_text(&self) -> String {
        "Lua memory limit (8 MiB) + 64 KiB".into()
    }

    fn run(&mut self, input: &[u8]) -> String {
        let lua = self.sandbox.lua();
        match decode_array(lua, input, &self.limits) {
            Ok(values) => {
                let back: Vec<_> = values
                    .iter()
                    .map(|v| lua_to_cbor(v, &self.limits).map(|b| b.len()))
                    .collect();
                let kinds: Vec<&str> = values.iter().map(|v| v.type_name()).collect();
                format!(
                    "ok {kinds:?} {}",
                    back.iter().filter(|b| b.is_err()).count()
                )
            }
            Err(e) => format!("err {e}"),
        }
    }

    fn shape(&self, outcome: &String) -> String {
        outcome.clone()
    }
}

/// Packages as fetched from the overlay: `Package::decode` with the default
/// size limit, and for what decodes, the signature check of a policy that
/// trusts the publisher. Bound: 8 bytes per input byte (the decoded form,
/// the parsed copies, the canonical re-encoding) plus [`SLACK`].
pub struct PackageTarget {
    signed: seeds::Signed,
    policy: TrustPolicy,
}

fn trusting(key: &SigningKey) -> TrustPolicy {
    let mut policy = TrustPolicy::new();
    policy.trust(key.public().clone());
    policy
}

impl Make for PackageTarget {
    fn make() -> PackageTarget {
        let signed = seeds::signed();
        PackageTarget {
            policy: trusting(&signed.key),
            signed,
        }
    }
}

impl Target for PackageTarget {
    type Outcome = String;

    fn form(&self) -> Form {
        Form::Cbor { start: 0 }
    }

    fn seeds(&self) -> Vec<Vec<u8>> {
        vec![self.signed.package.encoded().to_vec()]
    }

    fn alloc_limit(&self, input_len: usize) -> usize {
        8 * input_len + SLACK
    }

    fn limit_text(&self) -> String {
        "8 × input + 64 KiB".into()
    }

    fn run(&mut self, input: &[u8]) -> String {
        let package = Package::decode(input, DEFAULT_MAX_PACKAGE_BYTES);
        let verified = package
            .as_ref()
            .map(|p| self.policy.verify(p).map(|v| v.version()));
        match verified {
            Ok(v) => describe(&v, |n| n.to_string()),
            Err(e) => format!("err {e}"),
        }
    }

    fn shape(&self, outcome: &String) -> String {
        outcome.clone()
    }
}

/// `.minisig` text: `Package::parse` of a fixed source with the input as
/// its signature, then the signature check. Bound: [`TEXT_PER_BYTE`] per
/// input byte plus [`TEXT_SLACK`].
pub struct SignatureTarget {
    signed: seeds::Signed,
    policy: TrustPolicy,
}

impl Make for SignatureTarget {
    fn make() -> SignatureTarget {
        let signed = seeds::signed();
        SignatureTarget {
            policy: trusting(&signed.key),
            signed,
        }
    }
}

impl Target for SignatureTarget {
    type Outcome = String;

    fn form(&self) -> Form {
        Form::Text
    }

    fn seeds(&self) -> Vec<Vec<u8>> {
        vec![self.signed.signature.clone().into_bytes()]
    }

    fn alloc_limit(&self, input_len: usize) -> usize {
        TEXT_PER_BYTE * input_len + TEXT_SLACK
    }

    fn limit_text(&self) -> String {
        "8 × input + 128 KiB".into()
    }

    fn run(&mut self, input: &[u8]) -> String {
        let Ok(text) = std::str::from_utf8(input) else {
            return "not UTF-8 (read_to_string refuses it)".into();
        };
        match Package::parse(&self.signed.source, text) {
            Ok(p) => describe(&self.policy.verify(&p), |v| v.trusted_comment().into()),
            Err(e) => format!("err {e}"),
        }
    }

    fn shape(&self, outcome: &String) -> String {
        outcome.clone()
    }
}

/// `.pub` files and `key = ` lines: `PublisherKey::from_pub_text` and
/// `from_base64` on the same text. Bound: [`TEXT_PER_BYTE`] per input
/// byte plus [`TEXT_SLACK`].
pub struct PublicKeyTarget {
    text: String,
}

impl Make for PublicKeyTarget {
    fn make() -> PublicKeyTarget {
        PublicKeyTarget {
            text: seeds::signed().key.public().to_pub_text(),
        }
    }
}

impl Target for PublicKeyTarget {
    type Outcome = String;

    fn form(&self) -> Form {
        Form::Text
    }

    fn seeds(&self) -> Vec<Vec<u8>> {
        let line = self.text.lines().nth(1).unwrap().to_string();
        vec![self.text.clone().into_bytes(), line.into_bytes()]
    }

    fn alloc_limit(&self, input_len: usize) -> usize {
        TEXT_PER_BYTE * input_len + TEXT_SLACK
    }

    fn limit_text(&self) -> String {
        "8 × input + 128 KiB".into()
    }

    fn run(&mut self, input: &[u8]) -> String {
        let Ok(text) = std::str::from_utf8(input) else {
            return "not UTF-8 (read_to_string refuses it)".into();
        };
        let file = PublisherKey::from_pub_text(text);
        let line = PublisherKey::from_base64(text);
        let id = |k: &PublisherKey| k.key_id_hex();
        format!("{} / {}", describe(&file, id), describe(&line, id))
    }

    fn shape(&self, outcome: &String) -> String {
        outcome.clone()
    }
}

/// `.key` files: `SigningKey::from_key_text` with `KeyPassword::Refuse`,
/// so encrypted keys stop before scrypt (whose cost the key file itself
/// sets, up to 1 GiB: a person's own key file, not fuzzed). A key that
/// parses is checked by signing a probe, as the node does. Bound: [`TEXT_PER_BYTE`]
/// per input byte plus [`TEXT_SLACK`].
pub struct SecretKeyTarget {
    text: String,
}

impl Make for SecretKeyTarget {
    fn make() -> SecretKeyTarget {
        SecretKeyTarget {
            text: seeds::signed().key.to_key_text(),
        }
    }
}

impl Target for SecretKeyTarget {
    type Outcome = String;

    fn form(&self) -> Form {
        Form::Text
    }

    fn seeds(&self) -> Vec<Vec<u8>> {
        vec![self.text.clone().into_bytes()]
    }

    fn alloc_limit(&self, input_len: usize) -> usize {
        TEXT_PER_BYTE * input_len + TEXT_SLACK
    }

    fn limit_text(&self) -> String {
        "8 × input + 128 KiB".into()
    }

    fn run(&mut self, input: &[u8]) -> String {
        let Ok(text) = std::str::from_utf8(input) else {
            return "not UTF-8 (read_to_string refuses it)".into();
        };
        let key = SigningKey::from_key_text(text, "fuzz.key", &KeyPassword::Refuse);
        describe(&key, |k| k.public().key_id_hex())
    }

    fn shape(&self, outcome: &String) -> String {
        outcome.clone()
    }
}

/// `trust.conf`: `policy_file::parse`, with `key-file` paths relative to a
/// temporary directory holding one valid `.pub` file. Bound:
/// [`TEXT_PER_BYTE`] per input byte plus [`TEXT_SLACK`].
pub struct PolicyFileTarget {
    dir: tempfile::TempDir,
    key_line: String,
}

impl Make for PolicyFileTarget {
    fn make() -> PolicyFileTarget {
        let dir = tempfile::tempdir().unwrap();
        let public = seeds::signed().key.public().clone();
        std::fs::create_dir(dir.path().join("keys")).unwrap();
        std::fs::write(dir.path().join("keys/a.pub"), public.to_pub_text()).unwrap();
        PolicyFileTarget {
            dir,
            key_line: public.to_base64().to_string(),
        }
    }
}

impl Target for PolicyFileTarget {
    type Outcome = String;

    fn form(&self) -> Form {
        Form::Text
    }

    fn seeds(&self) -> Vec<Vec<u8>> {
        let text = format!(
            "# trust\nkey-file = keys/a.pub\nkey = {}\nper-hop = deny\nmax-package-bytes = 262144\n",
            self.key_line
        );
        vec![text.into_bytes()]
    }

    fn alloc_limit(&self, input_len: usize) -> usize {
        TEXT_PER_BYTE * input_len + TEXT_SLACK
    }

    fn limit_text(&self) -> String {
        "8 × input + 128 KiB".into()
    }

    fn run(&mut self, input: &[u8]) -> String {
        let Ok(text) = std::str::from_utf8(input) else {
            return "not UTF-8 (read_to_string refuses it)".into();
        };
        let base: PathBuf = self.dir.path().into();
        let settings = policy_file::parse(text, &base, "trust.conf");
        describe(&settings, |s| {
            format!(
                "{} {:?} {:?}",
                s.keys.len(),
                s.run_per_hop,
                s.max_package_bytes
            )
        })
    }

    fn shape(&self, outcome: &String) -> String {
        outcome.clone()
    }
}

/// The control socket: `wire::read_frame` of a `Request` (what the node
/// reads) and of a `Response` (what the console reads) from the same bytes,
/// with the control socket's 1 MiB frame limit. `read_frame` allocates the
/// declared length before reading (a local, owner-only socket). Bound: the
/// frame limit plus 16 bytes per input byte plus [`SLACK`].
pub struct ControlTarget;

impl Make for ControlTarget {
    fn make() -> ControlTarget {
        ControlTarget
    }
}

impl Target for ControlTarget {
    type Outcome = String;

    fn form(&self) -> Form {
        Form::Cbor { start: 4 }
    }

    fn seeds(&self) -> Vec<Vec<u8>> {
        let requests = seeds::requests()
            .into_iter()
            .map(|r| encode_frame(&r, CONTROL_MAX_FRAME));
        let responses = seeds::responses()
            .into_iter()
            .map(|r| encode_frame(&r, CONTROL_MAX_FRAME));
        requests.chain(responses).map(Result::unwrap).collect()
    }

    fn alloc_limit(&self, input_len: usize) -> usize {
        CONTROL_MAX_FRAME + 16 * input_len + SLACK
    }

    fn limit_text(&self) -> String {
        "max frame (1 MiB) + 16 × input + 64 KiB".into()
    }

    fn prepare(&self, input: &mut Vec<u8>, rng: &mut Rng) {
        fix_prefix(input, rng)
    }

    fn run(&mut self, input: &[u8]) -> String {
        let request = read_frame::<Request>(&mut &input[..], CONTROL_MAX_FRAME);
        let response = read_frame::<Response>(&mut &input[..], CONTROL_MAX_FRAME);
        format!(
            "{} / {}",
            describe(&request, |r| variant(&format!("{r:?}"))),
            describe(&response, |r| variant(&format!("{r:?}")))
        )
    }

    fn shape(&self, outcome: &String) -> String {
        outcome.clone()
    }
}
