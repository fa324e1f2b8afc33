//! What nodes say to each other, and how it is framed on a TCP stream.
//!
//! Every connection starts with a [`Message::Hello`] from the side that
//! opened it; after that each frame is a 4-byte big-endian length followed by
//! one CBOR value (a [`Message`]). The control socket frames its requests
//! and replies with the same codec ([`write_frame`], [`read_frame`]). Routed messages carry the fields of PROST's
//! figure 3 (destination key, app id, app type, code locator, data) plus what
//! routing needs (source, hop count, TTL, message id). Application data is one
//! CBOR value in a byte string: routing never decodes it.

use std::io::{Read, Write};
use std::net::SocketAddr;

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::id::{AppId, Id};

/// Bumped whenever a node of one version can no longer talk to another.
pub const PROTOCOL_VERSION: u32 = 2;

/// Default largest frame accepted or sent: 1 MiB.
pub const DEFAULT_MAX_FRAME: usize = 1 << 20;

/// A node as others know it: its ring id and where it listens.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeRef {
    pub id: Id,
    pub addr: SocketAddr,
}

impl std::fmt::Debug for NodeRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.id.short(8), self.addr)
    }
}

/// Where a message's application runs: only at the key's root, or at every hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AppType {
    #[serde(rename = "end-node")]
    EndNode,
    #[serde(rename = "per-hop")]
    PerHop,
}

impl std::fmt::Display for AppType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AppType::EndNode => "end-node",
            AppType::PerHop => "per-hop",
        })
    }
}

impl std::str::FromStr for AppType {
    type Err = String;

    fn from_str(s: &str) -> Result<AppType, String> {
        match s {
            "end-node" => Ok(AppType::EndNode),
            "per-hop" => Ok(AppType::PerHop),
            other => Err(format!(
                "unknown app type `{other}` (expected end-node or per-hop)"
            )),
        }
    }
}

/// Names a peerlet's code and says where to fetch it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeLocator {
    /// SHA-256 of the code package.
    #[serde(with = "serde_bytes")]
    pub hash: [u8; 32],
    /// Size of the package in bytes, checked before fetching.
    pub size: u64,
    /// The node that first installed the code, if known.
    pub origin: Option<NodeRef>,
}

/// The application part of a routed message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppMessage {
    pub app: AppId,
    pub app_type: AppType,
    pub code: Option<CodeLocator>,
    /// One CBOR value (a Lua value for peerlets).
    pub data: ByteBuf,
    /// A plain message, or one leg of a remote method call.
    #[serde(default)]
    pub kind: AppKind,
    /// Replicas of the key that refused to run this app, in order: a
    /// refusing root passes the message on to the next replica (see
    /// `peerlet::deploy`). Empty on the way to the root.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "grown_vec"
    )]
    pub refused_by: Vec<Id>,
}

/// What an application message is: the common API's plain message, or a
/// call of a named method on the peerlet at the key's root (PROST's
/// lookupPeerlet handles) and its reply.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppKind {
    #[default]
    Message,
    /// Call `method` with the arguments in `data` (a CBOR array); answer
    /// the source with a [`AppKind::Reply`] carrying the same `call`.
    Call { call: u64, method: String },
    /// The outcome of call `call`: `data` holds the results (a CBOR array)
    /// when `ok`, else the error message (a CBOR text).
    Reply { call: u64, ok: bool },
    /// Sent back to the source of a message to `key` that no node would
    /// run (every replica refused the code, or it could not be fetched);
    /// `data` is the message's own data.
    Undelivered { key: Id, reason: String },
}

/// What a routed message is for.
// Application messages are what travels; boxing them would cost an
// allocation per hop to shrink the rare lookups.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Body {
    /// An application's message, handed to its forward/deliver upcalls.
    App(AppMessage),
    /// Chord's own lookup: the root answers the source with [`Message::FoundRoot`].
    /// `user`: asked for by a user or application, not by ring upkeep
    /// (join, fingers); only counted apart, routed the same.
    Lookup { req: u64, user: bool },
}

/// A message travelling hop by hop towards the root of `key`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoutedMessage {
    pub id: u64,
    pub key: Id,
    pub source: NodeRef,
    /// Hops taken so far.
    pub hops: u32,
    /// Hops allowed before the message is dropped.
    pub ttl: u32,
    /// Sent to one node with `send(node, msg)`: delivered there, whoever owns `key`.
    pub direct: bool,
    pub body: Body,
}

/// Every frame on the wire.
// Routed messages are most frames; see `Body`.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Message {
    /// First frame from the side that opened a connection (and, inside
    /// the handshake, the acceptor's answer).
    Hello {
        version: u32,
        node: NodeRef,
        /// In the acceptor's hello: the address it saw the connection come
        /// from, so a node on `0.0.0.0` learns the address others see
        /// (behind NAT, its public one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seen: Option<SocketAddr>,
    },
    /// One hop of a routed message. `to_root`: the sender believes the
    /// receiver is the key's root. The receiver acks `hop` at once.
    Route {
        hop: u64,
        to_root: bool,
        msg: RoutedMessage,
    },
    /// The receiver of hop `hop` has taken responsibility for the message.
    RouteAck {
        hop: u64,
    },
    /// Answer to a routed [`Body::Lookup`], sent straight to its source.
    FoundRoot {
        req: u64,
        root: NodeRef,
        hops: u32,
        user: bool,
    },
    /// Stabilize: asks for the receiver's predecessor and successor list.
    GetNeighbors {
        req: u64,
    },
    Neighbors {
        req: u64,
        predecessor: Option<NodeRef>,
        #[serde(deserialize_with = "grown_vec")]
        successors: Vec<NodeRef>,
    },
    /// "I might be your predecessor."
    Notify,
    Ping {
        req: u64,
    },
    Pong {
        req: u64,
    },
    /// Graceful leave: the sender goes away; here is what it knew of its
    /// neighbourhood so the ring can close the gap at once.
    Leaving {
        predecessor: Option<NodeRef>,
        #[serde(deserialize_with = "grown_vec")]
        successors: Vec<NodeRef>,
    },
}

impl Message {
    /// A short name of the message's kind, for logs and counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Hello { .. } => "hello",
            Message::Route { .. } => "route",
            Message::RouteAck { .. } => "route-ack",
            Message::FoundRoot { .. } => "found-root",
            Message::GetNeighbors { .. } => "get-neighbors",
            Message::Neighbors { .. } => "neighbors",
            Message::Notify => "notify",
            Message::Ping { .. } => "ping",
            Message::Pong { .. } => "pong",
            Message::Leaving { .. } => "leaving",
        }
    }

    /// Is this Chord's own upkeep (as opposed to routed traffic and its acks)?
    pub fn is_maintenance(&self) -> bool {
        match self {
            Message::Route { msg, .. } => matches!(msg.body, Body::Lookup { user: false, .. }),
            Message::FoundRoot { user, .. } => !user,
            Message::RouteAck { .. } | Message::Hello { .. } => false,
            _ => true,
        }
    }
}

/// Decodes an array element by element, growing the vector with what
/// arrives: serde would reserve room for the length the array declares (up
/// to 1 MiB), so a 57-byte frame declaring 2^32 neighbours took a megabyte.
fn grown_vec<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Grown<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Grown<T> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an array")
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::new();
            while let Some(item) = seq.next_element()? {
                out.push(item);
            }
            Ok(out)
        }
    }
    d.deserialize_seq(Grown(std::marker::PhantomData))
}

/// Why bytes on a connection are not a frame we accept.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("frame does not decode as a message: {0}")]
    Decode(String),
    #[error("frame ended early: got {got} of {len} bytes")]
    Truncated { got: usize, len: usize },
    #[error("expected hello first, got {0}")]
    NotHello(&'static str),
    #[error("peer speaks protocol version {theirs}, we speak {ours}")]
    Version { theirs: u32, ours: u32 },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Encodes one value (a [`Message`], a control request or reply) as a
/// frame: length prefix + CBOR, at most `max` bytes after the prefix.
pub fn encode_frame<T: Serialize + ?Sized>(value: &T, max: usize) -> Result<Vec<u8>, FrameError> {
    let mut out = vec![0u8; 4];
    ciborium::into_writer(value, &mut out).map_err(|e| FrameError::Decode(e.to_string()))?;
    let len = out.len() - 4;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    out[..4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(out)
}

/// Reads the length prefix of a frame and checks it against `max`.
pub fn frame_len(prefix: [u8; 4], max: usize) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(prefix) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    Ok(len)
}

/// Decodes the body of one frame (without its length prefix).
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    ciborium::from_reader(body).map_err(|e| FrameError::Decode(e.to_string()))
}

/// Writes one frame to a blocking stream and flushes it.
pub fn write_frame<T: Serialize + ?Sized>(
    w: &mut impl Write,
    value: &T,
    max: usize,
) -> Result<(), FrameError> {
    w.write_all(&encode_frame(value, max)?)?;
    w.flush()?;
    Ok(())
}

/// Reads one frame from a blocking stream; `None` when the peer closed the
/// stream between two frames. (The TCP transport reads frames with a
/// deadline instead: `net::connection`.)
pub fn read_frame<T: DeserializeOwned>(
    r: &mut impl Read,
    max: usize,
) -> Result<Option<T>, FrameError> {
    let mut prefix = [0u8; 4];
    match r.read_exact(&mut prefix) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let mut body = vec![0u8; frame_len(prefix, max)?];
    r.read_exact(&mut body)?;
    decode_body(&body).map(Some)
}

/// Checks that the first message of a connection is a hello of our version.
pub fn check_hello(msg: Message) -> Result<NodeRef, FrameError> {
    match msg {
        Message::Hello { version, node, .. } if version == PROTOCOL_VERSION => Ok(node),
        Message::Hello { version, .. } => Err(FrameError::Version {
            theirs: version,
            ours: PROTOCOL_VERSION,
        }),
        other => Err(FrameError::NotHello(other.kind())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(n: u64) -> NodeRef {
        NodeRef {
            id: Id::from_u64(n),
            addr: format!("127.0.0.1:{}", 4000 + n).parse().unwrap(),
        }
    }

    #[test]
    fn frames_round_trip() {
        let msg = Message::Route {
            hop: 7,
            to_root: false,
            msg: RoutedMessage {
                id: 1,
                key: Id::key("k"),
                source: node(1),
                hops: 2,
                ttl: 64,
                direct: false,
                body: Body::App(AppMessage {
                    app: AppId::derive(b"pk", "x"),
                    app_type: AppType::PerHop,
                    code: Some(CodeLocator {
                        hash: [9; 32],
                        size: 10,
                        origin: Some(node(2)),
                    }),
                    data: ByteBuf::from(vec![0xa0]),
                    kind: AppKind::Call {
                        call: 3,
                        method: "put".into(),
                    },
                    refused_by: vec![Id::key("r")],
                }),
            },
        };
        let frame = encode_frame(&msg, DEFAULT_MAX_FRAME).unwrap();
        let len = frame_len(frame[..4].try_into().unwrap(), DEFAULT_MAX_FRAME).unwrap();
        assert_eq!(len, frame.len() - 4);
        assert_eq!(decode_body::<Message>(&frame[4..]).unwrap(), msg);
    }

    #[test]
    fn blocking_streams_carry_frames_of_any_value() {
        let mut stream = Vec::new();
        write_frame(&mut stream, &Message::Ping { req: 5 }, DEFAULT_MAX_FRAME).unwrap();
        write_frame(&mut stream, "a control reply", DEFAULT_MAX_FRAME).unwrap();
        let mut r = stream.as_slice();
        let ping: Option<Message> = read_frame(&mut r, DEFAULT_MAX_FRAME).unwrap();
        assert_eq!(ping, Some(Message::Ping { req: 5 }));
        let text: Option<String> = read_frame(&mut r, DEFAULT_MAX_FRAME).unwrap();
        assert_eq!(text.as_deref(), Some("a control reply"));
        assert!(read_frame::<String>(&mut r, DEFAULT_MAX_FRAME)
            .unwrap()
            .is_none());
        // A frame cut short is an error, not a clean end.
        let first = encode_frame(&Message::Ping { req: 5 }, DEFAULT_MAX_FRAME).unwrap();
        let mut cut = &stream[first.len()..stream.len() - 1];
        assert!(read_frame::<String>(&mut cut, DEFAULT_MAX_FRAME).is_err());
        assert!(matches!(
            read_frame::<String>(&mut &stream[..], 4),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn oversize_and_garbage_are_typed_errors() {
        assert!(matches!(
            frame_len((2u32 << 20).to_be_bytes(), DEFAULT_MAX_FRAME),
            Err(FrameError::TooLarge { .. })
        ));
        assert!(matches!(
            decode_body::<Message>(b"\xff\x00garbage"),
            Err(FrameError::Decode(_))
        ));
        let big = Message::Neighbors {
            req: 1,
            predecessor: None,
            successors: vec![node(1); 100],
        };
        assert!(matches!(
            encode_frame(&big, 64),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn ids_travel_as_byte_strings() {
        let mut out = Vec::new();
        ciborium::into_writer(&Id::key("x"), &mut out).unwrap();
        assert_eq!(out.len(), 21);
        assert_eq!(out[0], 0x54, "a 20-byte CBOR byte string");
        let back: Id = ciborium::from_reader(out.as_slice()).unwrap();
        assert_eq!(back, Id::key("x"));
    }

    #[test]
    fn hello_checks_version_and_kind() {
        let ok = Message::Hello {
            version: PROTOCOL_VERSION,
            node: node(3),
            seen: None,
        };
        assert_eq!(check_hello(ok).unwrap(), node(3));
        let old = Message::Hello {
            version: 0,
            node: node(3),
            seen: None,
        };
        let err = check_hello(old).unwrap_err().to_string();
        assert!(err.contains("version 0"), "{err}");
        assert!(matches!(
            check_hello(Message::Notify),
            Err(FrameError::NotHello("notify"))
        ));
    }
}
