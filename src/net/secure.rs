//! Secure links: every connection starts with a Noise XX handshake (X25519,
//! ChaCha20-Poly1305, BLAKE2s, from the `snow` crate), then carries its
//! frames in encrypted, authenticated records.
//!
//! ```text
//! opener (initiator)                         acceptor (responder)
//!   -> e                                       (2-byte length + message)
//!   <- e, ee, s, es   + acceptor's hello       (encrypted payload)
//!   -> s, se          + opener's hello
//!   -> records: 2-byte length + ciphertext of up to 65,519 plaintext bytes
//! ```
//!
//! Each side learns the other's static public key from the handshake: a
//! peer's id is [`derive_id`] of that key, never what its hello claims
//! (a hello may claim another id only where the lab option allows it,
//! [`check_claim`]). The hello still names the peer's listen address, which
//! the acceptor checks by dialling it (see [`super::book`]).
//!
//! As every connection of the transport, a link carries frames one way,
//! from opener to acceptor ([`super::tcp`]): the opener gets a [`Sealer`],
//! the acceptor a [`SecureReader`] that the frame reader reads through.
//! A record that fails authentication (a byte changed on the way, a record
//! replayed or dropped) ends the connection.
//!
//! `plaintext` (a bench-only setting, never the default, part of the
//! prologue so both sides must agree) keeps the handshake and the record
//! framing but skips record encryption: `benches/tcp_hops` measures what
//! encryption costs per hop with it.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use smol::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use smol::Timer;

use super::identity::{derive_id, NodeKey, KEY_BYTES};
use crate::wire::{check_hello, decode_body, FrameError, Message, NodeRef, PROTOCOL_VERSION};

/// The Noise protocol every link speaks.
pub const NOISE_PARAMS: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";

/// Largest handshake message accepted (ours are under 200 bytes).
pub const MAX_HANDSHAKE_MESSAGE: usize = 1024;

/// Largest record on the wire (Noise's limit), and the plaintext it holds.
pub const MAX_RECORD: usize = 65535;
const TAG: usize = 16;
pub const MAX_RECORD_PLAINTEXT: usize = MAX_RECORD - TAG;

/// What a link's two ends agree on before the handshake.
#[derive(Clone, Copy, Debug, Default)]
pub struct LinkSettings {
    /// Accept a hello whose id is not derived from the peer's key (`--lab`).
    pub lab: bool,
    /// Records unencrypted (benches only; see the module docs).
    pub plaintext: bool,
}

impl LinkSettings {
    fn prologue(&self) -> Vec<u8> {
        let mode = if self.plaintext {
            "plaintext"
        } else {
            "sealed"
        };
        format!("peerlet link v{PROTOCOL_VERSION} {mode}").into_bytes()
    }
}

/// The other end of a link, as the handshake proved and its hello claimed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The peer's static public key, proven in the handshake.
    pub key: [u8; KEY_BYTES],
    /// The id it goes by (derived from `key` unless a lab allowed a claim)
    /// and the address it says it listens on.
    pub node: NodeRef,
}

/// Why a handshake failed. Every variant closes the connection.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("handshake: {0}")]
    Io(#[from] io::Error),
    #[error("handshake message of {0} bytes is too large")]
    TooLarge(usize),
    #[error(
        "handshake failed ({0:?}): not a peerlet node of this protocol, or a tampered message"
    )]
    Noise(snow::Error),
    #[error("handshake hello: {0}")]
    Hello(FrameError),
    #[error("{0}")]
    Refused(String),
    /// The opener closed after the acceptor's hello: it only asked which
    /// address it comes from ([`ask_seen_address`]).
    #[error("the opener only asked which address it comes from")]
    AddressOnly,
}

impl From<snow::Error> for HandshakeError {
    fn from(e: snow::Error) -> HandshakeError {
        HandshakeError::Noise(e)
    }
}

fn builder<'a>(key: &'a NodeKey, prologue: &'a [u8]) -> Result<snow::Builder<'a>, snow::Error> {
    let params = NOISE_PARAMS.parse().expect("a valid Noise pattern");
    snow::Builder::new(params)
        .local_private_key(key.secret())?
        .prologue(prologue)
}

/// The hello a node sends inside the handshake: CBOR of [`Message::Hello`].
pub fn hello_payload(me: NodeRef) -> Vec<u8> {
    acceptor_hello(me, None)
}

/// The acceptor's hello, telling the opener the address its connection
/// came from, if known.
fn acceptor_hello(me: NodeRef, seen: Option<SocketAddr>) -> Vec<u8> {
    let mut out = Vec::new();
    let hello = Message::Hello {
        version: PROTOCOL_VERSION,
        node: me,
        seen,
    };
    ciborium::into_writer(&hello, &mut out).expect("a hello encodes");
    out
}

/// Checks the hello the handshake carried against the key it proved.
pub fn check_claim(
    key: &[u8],
    payload: &[u8],
    settings: &LinkSettings,
) -> Result<PeerIdentity, HandshakeError> {
    let hello: Message = decode_body(payload).map_err(HandshakeError::Hello)?;
    let node = check_hello(hello).map_err(HandshakeError::Hello)?;
    let key: [u8; KEY_BYTES] = key
        .try_into()
        .map_err(|_| HandshakeError::Refused("peer key of the wrong size".into()))?;
    let derived = derive_id(&key);
    if node.id != derived && !settings.lab {
        return Err(HandshakeError::Refused(format!(
            "peer claims id {} but its key gives {}: chosen ids need --lab on both sides",
            node.id.short(8),
            derived.short(8)
        )));
    }
    Ok(PeerIdentity { key, node })
}

async fn write_message<S: AsyncWrite + Unpin>(stream: &mut S, msg: &[u8]) -> io::Result<()> {
    let mut out = Vec::with_capacity(2 + msg.len());
    out.extend_from_slice(&(msg.len() as u16).to_be_bytes());
    out.extend_from_slice(msg);
    stream.write_all(&out).await?;
    stream.flush().await
}

async fn read_message<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Vec<u8>, HandshakeError> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await?;
    let len = u16::from_be_bytes(len) as usize;
    if len > MAX_HANDSHAKE_MESSAGE {
        return Err(HandshakeError::TooLarge(len));
    }
    let mut msg = vec![0u8; len];
    stream.read_exact(&mut msg).await?;
    Ok(msg)
}

/// The opener's side: runs the handshake on a fresh connection and returns
/// who answered and the sealer for the frames to send.
pub async fn initiate<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    key: &NodeKey,
    me: NodeRef,
    settings: &LinkSettings,
) -> Result<(Sealer, PeerIdentity), HandshakeError> {
    initiate_with(stream, key, &hello_payload(me), settings).await
}

/// The opener's first two handshake messages: sends `e`, reads the
/// acceptor's answer and checks the hello in it. Returns the handshake to
/// go on with, who answered, and the acceptor's hello as it came.
async fn opener_first_half<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    key: &NodeKey,
    settings: &LinkSettings,
) -> Result<(snow::HandshakeState, PeerIdentity, Vec<u8>), HandshakeError> {
    let prologue = settings.prologue();
    let mut hs = builder(key, &prologue)?.build_initiator()?;
    let mut buf = vec![0u8; MAX_HANDSHAKE_MESSAGE];
    let n = hs.write_message(&[], &mut buf)?;
    write_message(stream, &buf[..n]).await?;
    let msg = read_message(stream).await?;
    let mut payload = vec![0u8; MAX_HANDSHAKE_MESSAGE];
    let n = hs.read_message(&msg, &mut payload)?;
    let remote = hs.get_remote_static().unwrap_or_default().to_vec();
    let peer = check_claim(&remote, &payload[..n], settings)?;
    payload.truncate(n);
    Ok((hs, peer, payload))
}

/// [`initiate`] with any bytes in place of the hello: for tests and the
/// fuzzer, which play peers that lie.
pub async fn initiate_with<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    key: &NodeKey,
    hello: &[u8],
    settings: &LinkSettings,
) -> Result<(Sealer, PeerIdentity), HandshakeError> {
    let (mut hs, peer, _) = opener_first_half(stream, key, settings).await?;
    let mut buf = vec![0u8; MAX_HANDSHAKE_MESSAGE];
    let n = hs.write_message(hello, &mut buf)?;
    write_message(stream, &buf[..n]).await?;
    let state = hs.into_transport_mode()?;
    let sealer = Sealer {
        state: (!settings.plaintext).then_some(state),
    };
    Ok((sealer, peer))
}

/// Asks the node at the other end of a fresh connection which address it
/// sees this connection come from, then ends the connection: the first two
/// messages of the handshake, with a throwaway or real key. `None` when
/// the acceptor's hello does not say.
pub async fn ask_seen_address<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    key: &NodeKey,
    settings: &LinkSettings,
) -> Result<Option<SocketAddr>, HandshakeError> {
    let (_, _, payload) = opener_first_half(stream, key, settings).await?;
    match decode_body(&payload).map_err(HandshakeError::Hello)? {
        Message::Hello { seen, .. } => {
            Ok(seen.map(|a| SocketAddr::new(a.ip().to_canonical(), a.port())))
        }
        _ => Ok(None),
    }
}

/// The acceptor's side: answers the handshake of a connection it accepted
/// and returns who opened it and the reader of its frames.
pub async fn respond<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    key: &NodeKey,
    me: NodeRef,
    settings: &LinkSettings,
    record_timeout: Duration,
) -> Result<(SecureReader<S>, PeerIdentity), HandshakeError> {
    respond_seen(stream, key, me, settings, record_timeout, None).await
}

/// [`respond`], telling the opener (in the acceptor's hello) the address
/// `seen` its connection came from. An opener that only asked that
/// ([`ask_seen_address`]) ends with [`HandshakeError::AddressOnly`].
pub async fn respond_seen<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    key: &NodeKey,
    me: NodeRef,
    settings: &LinkSettings,
    record_timeout: Duration,
    seen: Option<SocketAddr>,
) -> Result<(SecureReader<S>, PeerIdentity), HandshakeError> {
    let prologue = settings.prologue();
    let mut hs = builder(key, &prologue)?.build_responder()?;
    let mut buf = vec![0u8; MAX_HANDSHAKE_MESSAGE];
    let msg = read_message(&mut stream).await?;
    hs.read_message(&msg, &mut buf)?;
    let n = hs.write_message(&acceptor_hello(me, seen), &mut buf)?;
    write_message(&mut stream, &buf[..n]).await?;
    let msg = match read_message(&mut stream).await {
        Err(HandshakeError::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
            return Err(HandshakeError::AddressOnly)
        }
        other => other?,
    };
    let n = hs.read_message(&msg, &mut buf)?;
    let remote = hs.get_remote_static().unwrap_or_default().to_vec();
    let peer = check_claim(&remote, &buf[..n], settings)?;
    let state = hs.into_transport_mode()?;
    let reader = SecureReader {
        inner: stream,
        state: (!settings.plaintext).then_some(state),
        record: Vec::new(),
        plain: Vec::new(),
        pos: 0,
        record_timeout,
        deadline: None,
    };
    Ok((reader, peer))
}

/// The sending half of a link: turns frames into records.
pub struct Sealer {
    state: Option<snow::TransportState>,
}

impl Sealer {
    /// Appends to `out` the records that carry `frame`.
    pub fn seal(&mut self, frame: &[u8], out: &mut Vec<u8>) {
        for chunk in frame.chunks(MAX_RECORD_PLAINTEXT) {
            let at = out.len();
            match &mut self.state {
                None => {
                    out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
                    out.extend_from_slice(chunk);
                }
                Some(state) => {
                    out.resize(at + 2 + chunk.len() + TAG, 0);
                    let n = state
                        .write_message(chunk, &mut out[at + 2..])
                        .expect("a chunk within the record limit encrypts");
                    out.truncate(at + 2 + n);
                    out[at..at + 2].copy_from_slice(&(n as u16).to_be_bytes());
                }
            }
        }
    }

    /// `frame` as records, in a new buffer.
    pub fn sealed(&mut self, frame: &[u8]) -> Vec<u8> {
        let records = frame.len().div_ceil(MAX_RECORD_PLAINTEXT).max(1);
        let mut out = Vec::with_capacity(frame.len() + records * (2 + TAG));
        self.seal(frame, &mut out);
        out
    }
}

/// The receiving half of a link: reads records off `inner` and yields their
/// plaintext. A record, once its first byte arrived, must be complete within
/// the record timeout; its buffer grows with the bytes that arrive.
pub struct SecureReader<S> {
    inner: S,
    state: Option<snow::TransportState>,
    /// The record being gathered: its 2-byte length, then its body.
    record: Vec<u8>,
    /// Plaintext of the last record, and how much of it was read.
    plain: Vec<u8>,
    pos: usize,
    record_timeout: Duration,
    deadline: Option<Timer>,
}

/// How much a record's buffer grows at a time while it arrives.
const GROWTH: usize = 16 * 1024;

impl<S> SecureReader<S> {
    fn wanted(&self) -> usize {
        if self.record.len() < 2 {
            2
        } else {
            2 + u16::from_be_bytes([self.record[0], self.record[1]]) as usize
        }
    }

    fn open_record(&mut self) -> io::Result<()> {
        self.plain.clear();
        self.pos = 0;
        let body = &self.record[2..];
        match &mut self.state {
            None => self.plain.extend_from_slice(body),
            Some(state) => {
                self.plain.resize(body.len(), 0);
                let n = state.read_message(body, &mut self.plain).map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        "a record failed authentication (altered, replayed or out of order)",
                    )
                })?;
                self.plain.truncate(n);
            }
        }
        self.record.clear();
        if self.record.capacity() > GROWTH {
            self.record = Vec::new();
        }
        self.deadline = None;
        Ok(())
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for SecureReader<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            if this.pos < this.plain.len() {
                let n = buf.len().min(this.plain.len() - this.pos);
                buf[..n].copy_from_slice(&this.plain[this.pos..this.pos + n]);
                this.pos += n;
                if this.pos == this.plain.len() && this.plain.capacity() > GROWTH {
                    this.plain = Vec::new();
                    this.pos = 0;
                }
                return Poll::Ready(Ok(n));
            }
            let want = this.wanted();
            let got = this.record.len();
            if got == want && want > 2 {
                this.open_record()?;
                continue;
            }
            if got == want {
                // An empty record: nothing to read, take the next one.
                this.record.clear();
                continue;
            }
            this.record.resize(want.min(got + GROWTH), 0);
            let read = Pin::new(&mut this.inner).poll_read(cx, &mut this.record[got..]);
            match read {
                Poll::Ready(Ok(n)) => {
                    this.record.truncate(got + n);
                    if n == 0 {
                        if got == 0 {
                            return Poll::Ready(Ok(0));
                        }
                        return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
                    }
                }
                Poll::Ready(Err(e)) => {
                    this.record.truncate(got);
                    return Poll::Ready(Err(e));
                }
                Poll::Pending => {
                    this.record.truncate(got);
                    if got == 0 {
                        return Poll::Pending;
                    }
                    // Part of a record is here and the rest is not: from
                    // now on it has the record timeout to arrive.
                    let limit = this.record_timeout;
                    let deadline = this.deadline.get_or_insert_with(|| Timer::after(limit));
                    if Pin::new(deadline).poll(cx).is_ready() {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("record not complete {limit:?} after its first byte"),
                        )));
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::Id;

    fn me(key: &NodeKey, port: u16) -> NodeRef {
        NodeRef {
            id: key.id(),
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
        }
    }

    /// A connected pair of loopback sockets.
    fn pair() -> (async_net::TcpStream, async_net::TcpStream) {
        smol::block_on(async {
            let l = async_net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let a = async_net::TcpStream::connect(l.local_addr().unwrap());
            let (a, b) = smol::future::zip(a, l.accept()).await;
            (a.unwrap(), b.unwrap().0)
        })
    }

    type Opened = Result<(Sealer, PeerIdentity), HandshakeError>;
    type Accepted = Result<(SecureReader<async_net::TcpStream>, PeerIdentity), HandshakeError>;

    /// Both ends of a handshake over loopback, and the opener's stream.
    fn link(
        a_key: &NodeKey,
        a_node: NodeRef,
        b_key: &NodeKey,
        b_node: NodeRef,
        settings: LinkSettings,
    ) -> (Opened, Accepted, async_net::TcpStream) {
        let (mut a, b) = pair();
        let keep = a.clone();
        smol::block_on(async {
            let (x, y) = smol::future::zip(
                initiate(&mut a, a_key, a_node, &settings),
                respond(b, b_key, b_node, &settings, Duration::from_secs(5)),
            )
            .await;
            (x, y, keep)
        })
    }

    #[test]
    fn both_ends_learn_the_proven_key_and_frames_arrive_intact() {
        let (ka, kb) = (NodeKey::generate().unwrap(), NodeKey::generate().unwrap());
        let (na, nb) = (me(&ka, 1), me(&kb, 2));
        for plaintext in [false, true] {
            let settings = LinkSettings {
                lab: false,
                plaintext,
            };
            let (a, b, mut stream) = link(&ka, na, &kb, nb, settings);
            let (mut sealer, seen_by_a) = a.unwrap();
            let (mut reader, seen_by_b) = b.unwrap();
            assert_eq!(seen_by_a.key, *kb.public());
            assert_eq!(seen_by_a.node, nb);
            assert_eq!(seen_by_b.key, *ka.public());
            assert_eq!(seen_by_b.node, na);
            // A frame larger than one record, then a small one.
            let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
            let records = sealer.sealed(&big);
            assert!(records.len() > big.len());
            assert_eq!(plaintext, records.windows(4).any(|w| w == &big[1000..1004]));
            let small = sealer.sealed(b"hello");
            smol::block_on(async {
                stream.write_all(&records).await.unwrap();
                stream.write_all(&small).await.unwrap();
                let mut got = vec![0u8; big.len() + 5];
                reader.read_exact(&mut got).await.unwrap();
                assert_eq!(&got[..big.len()], &big[..]);
                assert_eq!(&got[big.len()..], b"hello");
            });
        }
    }

    #[test]
    fn a_changed_byte_ends_the_link() {
        let (ka, kb) = (NodeKey::generate().unwrap(), NodeKey::generate().unwrap());
        let (a, b, mut stream) = link(&ka, me(&ka, 1), &kb, me(&kb, 2), LinkSettings::default());
        let (mut sealer, _) = a.unwrap();
        let (mut reader, _) = b.unwrap();
        let mut records = sealer.sealed(b"pay the bearer");
        let last = records.len() - 1;
        records[last - 20] ^= 1;
        smol::block_on(async {
            stream.write_all(&records).await.unwrap();
            let mut got = [0u8; 14];
            let err = reader.read_exact(&mut got).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        });
    }

    #[test]
    fn an_opener_learns_the_address_the_acceptor_sees_and_leaves() {
        let (ka, kb) = (NodeKey::generate().unwrap(), NodeKey::generate().unwrap());
        let (mut a, b) = pair();
        let seen: SocketAddr = "[::ffff:198.51.100.7]:40000".parse().unwrap();
        let settings = LinkSettings::default();
        let (asked, answered) = smol::block_on(smol::future::zip(
            async {
                let r = ask_seen_address(&mut a, &ka, &settings).await;
                drop(a);
                r
            },
            respond_seen(
                b,
                &kb,
                me(&kb, 2),
                &settings,
                Duration::from_secs(5),
                Some(seen),
            ),
        ));
        // A v4-mapped address comes back as the IPv4 address it is.
        assert_eq!(asked.unwrap(), Some("198.51.100.7:40000".parse().unwrap()));
        assert!(matches!(answered, Err(HandshakeError::AddressOnly)));
    }

    #[test]
    fn a_claimed_id_needs_the_lab_option() {
        let (ka, kb) = (NodeKey::generate().unwrap(), NodeKey::generate().unwrap());
        let mut liar = me(&ka, 1);
        liar.id = Id::key("a key I want to own");
        let (_, b, _) = link(&ka, liar, &kb, me(&kb, 2), LinkSettings::default());
        let err = b.err().expect("refused").to_string();
        assert!(err.contains("--lab"), "{err}");
        let lab = LinkSettings {
            lab: true,
            plaintext: false,
        };
        let (_, b, _) = link(&ka, liar, &kb, me(&kb, 2), lab);
        assert_eq!(b.unwrap().1.node, liar);
    }

    #[test]
    fn garbage_and_mismatched_settings_fail_the_handshake() {
        let kb = NodeKey::generate().unwrap();
        let (mut a, b) = pair();
        smol::block_on(async {
            let settings = LinkSettings::default();
            let accept = respond(b, &kb, me(&kb, 2), &settings, Duration::from_secs(5));
            let junk = async {
                a.write_all(&[0, 32]).await.unwrap();
                a.write_all(&[7u8; 32]).await.unwrap();
                let mut answer = [0u8; 2];
                let _ = a.read_exact(&mut answer).await;
                a.write_all(&[0xff, 0xff]).await.unwrap();
            };
            let (r, ()) = smol::future::zip(accept, junk).await;
            assert!(r.is_err());
        });
        let ka = NodeKey::generate().unwrap();
        let (mut a, b) = pair();
        smol::block_on(async {
            let plain = LinkSettings {
                lab: false,
                plaintext: true,
            };
            let opener = async move {
                let r = initiate(&mut a, &ka, me(&ka, 1), &plain).await;
                drop(a);
                r
            };
            let (x, y) = smol::future::zip(
                opener,
                respond(
                    b,
                    &kb,
                    me(&kb, 2),
                    &LinkSettings::default(),
                    Duration::from_secs(5),
                ),
            )
            .await;
            assert!(x.is_err() && y.is_err());
        });
    }
}
