//! Valid inputs, made with the crate's own encoders: every wire message,
//! every control request and reply, a signed package, key files, a trust
//! policy, Lua values as CBOR. Mutations start from these, so most inputs
//! are near-valid and reach past the first check.

use peerlet::control::{Request, Response};
use peerlet::id::{AppId, Id};
use peerlet::package::secret_key::SigningKey;
use peerlet::package::{signing, Package};
use peerlet::wire::{
    AppKind, AppMessage, AppType, Body, CodeLocator, Message, NodeRef, RoutedMessage,
    PROTOCOL_VERSION,
};
use serde_bytes::ByteBuf;

fn node(n: u64) -> NodeRef {
    let addr = if n % 2 == 0 {
        format!("127.0.0.1:{}", 4000 + n)
    } else {
        format!("[::1]:{}", 4000 + n)
    };
    NodeRef {
        id: Id::from_u64(n),
        addr: addr.parse().unwrap(),
    }
}

fn routed(body: Body) -> RoutedMessage {
    RoutedMessage {
        id: 1 << 40,
        key: Id::key("k"),
        source: node(1),
        hops: 3,
        ttl: 64,
        direct: false,
        body,
    }
}

fn app(kind: AppKind, code: bool) -> Body {
    Body::App(AppMessage {
        app: AppId::derive(&[7; 32], "dht"),
        app_type: if code {
            AppType::PerHop
        } else {
            AppType::EndNode
        },
        code: code.then(|| CodeLocator {
            hash: [9; 32],
            size: 1234,
            origin: Some(node(2)),
        }),
        // {"op": "put", "v": [1, 2.5, h'00']}
        data: ByteBuf::from(
            b"\xa2\x62op\x63put\x61v\x83\x01\xfb\x40\x04\0\0\0\0\0\0\x41\x00".to_vec(),
        ),
        kind,
        refused_by: if code { vec![Id::key("r")] } else { vec![] },
    })
}

/// Every variant of [`Message`], and of what a route carries.
pub fn messages() -> Vec<Message> {
    let route = |body, to_root| Message::Route {
        hop: 7,
        to_root,
        msg: routed(body),
    };
    vec![
        Message::Hello {
            version: PROTOCOL_VERSION,
            node: node(1),
            seen: None,
        },
        route(app(AppKind::Message, false), false),
        route(
            app(
                AppKind::Call {
                    call: 3,
                    method: "get".into(),
                },
                true,
            ),
            true,
        ),
        route(app(AppKind::Reply { call: 3, ok: true }, false), false),
        route(
            app(
                AppKind::Undelivered {
                    key: Id::key("u"),
                    reason: "refused".into(),
                },
                false,
            ),
            false,
        ),
        route(Body::Lookup { req: 9, user: true }, false),
        Message::RouteAck { hop: 7 },
        Message::FoundRoot {
            req: 9,
            root: node(3),
            hops: 4,
            user: false,
        },
        Message::GetNeighbors { req: 1 },
        Message::Neighbors {
            req: 1,
            predecessor: Some(node(4)),
            successors: vec![node(5), node(6), node(7)],
        },
        Message::Notify,
        Message::Ping { req: 2 },
        Message::Pong { req: 2 },
        Message::Leaving {
            predecessor: None,
            successors: vec![node(8)],
        },
    ]
}

pub fn requests() -> Vec<Request> {
    vec![
        Request::Eval {
            code: "return kbr.id()".into(),
        },
        Request::Peers,
        Request::Ring,
        Request::Apps,
        Request::Load {
            path: "peerlets/dht.lua".into(),
        },
        Request::Reload {
            name: "dht".into(),
            path: Some("dht.lua".into()),
        },
        Request::Unload { name: "dht".into() },
        Request::Stats,
        Request::Trace { key: "k".into() },
        Request::Interrupt,
        Request::Log {
            level: "debug".into(),
        },
        Request::Completions,
    ]
}

pub fn responses() -> Vec<Response> {
    vec![
        Response::Ok("ok".into()),
        Response::Error("no such peerlet".into()),
        Response::Log {
            lines: vec!["a".into(), "b".into()],
            dropped: 3,
        },
    ]
}

/// A publisher and what it made: a signed peerlet and its key files.
pub struct Signed {
    pub key: SigningKey,
    pub source: Vec<u8>,
    pub signature: String,
    pub package: Package,
}

pub const SOURCE: &[u8] =
    b"--@peerlet name=dht type=end-node version=3\nlocal P = {}\nfunction P.deliver(key, msg) end\nreturn P\n";

pub fn signed() -> Signed {
    let key = SigningKey::generate().expect("a key");
    let signature = signing::sign_source(&key, SOURCE, "dht.lua").expect("a signature");
    let package = Package::parse(SOURCE, &signature).expect("a package");
    Signed {
        key,
        source: SOURCE.to_vec(),
        signature,
        package,
    }
}

/// Lua values as CBOR, as peerlets send them (and some only other
/// encoders write: text strings, half floats, negative integers, float and
/// boolean keys, nil array elements).
pub fn lua_values() -> Vec<Vec<u8>> {
    let lua = mlua::Lua::new();
    let limits = peerlet::sandbox::Limits::default();
    let chunks = [
        "return nil",
        "return {}",
        "return {op = 'put', key = ('k'):rep(40), value = {1, 2.5, -3, true, false}}",
        "return {[1.5] = 'x', [true] = {}, [-7] = {{{{}}}}}",
        "return {1, 2, 3, {a = {b = {c = 'deep'}}}}",
        "return math.maxinteger",
        "return ('\\0\\255'):rep(100)",
    ];
    let mut out: Vec<Vec<u8>> = chunks
        .iter()
        .map(|c| {
            let v: mlua::Value = lua.load(*c).eval().unwrap();
            peerlet::sandbox::lua_to_cbor(&v, &limits).unwrap()
        })
        .collect();
    let args: Vec<mlua::Value> = lua
        .load("return 1, 'two', {3}")
        .eval::<mlua::MultiValue>()
        .unwrap()
        .into_iter()
        .collect();
    out.push(peerlet::sandbox::encode_array(&args, &limits, "argument").unwrap());
    out.extend([
        b"\x63abc".to_vec(),
        b"\xf9\x3c\x00".to_vec(),
        b"\xfa\x7f\x80\x00\x00".to_vec(),
        b"\x3b\x7f\xff\xff\xff\xff\xff\xff\xff".to_vec(),
        b"\x83\xf6\x01\xf7".to_vec(),
        b"\xa2\xf5\x01\xfb\x3f\xf8\0\0\0\0\0\0\x02".to_vec(),
    ]);
    out
}
