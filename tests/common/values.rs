//! Values as tests send them to peerlets and read them back from stores.

use peerlet::id::AppId;
use peerlet::wire::{AppKind, AppMessage, AppType};
use serde_bytes::ByteBuf;

/// A plain application message carrying `value` as CBOR.
pub fn app_message(app: AppId, app_type: AppType, value: &ciborium::Value) -> AppMessage {
    let mut data = Vec::new();
    ciborium::into_writer(value, &mut data).unwrap();
    AppMessage {
        app,
        app_type,
        code: None,
        data: ByteBuf::from(data),
        kind: AppKind::Message,
        refused_by: Vec::new(),
    }
}

/// A stored value, decoded. Lua strings travel as CBOR byte strings; text
/// is shown as text.
pub fn decode_stored(bytes: &[u8]) -> ciborium::Value {
    match ciborium::from_reader(bytes).unwrap() {
        ciborium::Value::Bytes(b) => match String::from_utf8(b) {
            Ok(s) => ciborium::Value::Text(s),
            Err(e) => ciborium::Value::Bytes(e.into_bytes()),
        },
        other => other,
    }
}

/// A counter a peerlet keeps in its store: absent counts as 0.
pub fn count(value: Option<ciborium::Value>) -> i128 {
    match value {
        Some(ciborium::Value::Integer(n)) => n.into(),
        None => 0,
        other => panic!("not a count: {other:?}"),
    }
}
