//! Several Lua values as one CBOR array: the arguments and results of a
//! remote method call (`peerlet.lookup` handles).

use mlua::{MultiValue, Value};

use super::decode::cbor_to_lua;
use super::encode::lua_to_cbor;
use crate::sandbox::limits::Limits;

/// Encodes `values` as one CBOR array, each value raw-read and bounded like
/// any message, the whole at most `limits.message_bytes`. Errors name the
/// values as `noun` ("argument 2: …", "more than 255 arguments").
pub fn encode_array(values: &[Value], limits: &Limits, noun: &str) -> Result<Vec<u8>, String> {
    let n = values.len();
    let mut out = Vec::new();
    match n {
        0..=23 => out.push(0x80 | n as u8),
        24..=255 => out.extend([0x98, n as u8]),
        _ => return Err(format!("more than 255 {noun}s")),
    }
    for (i, v) in values.iter().enumerate() {
        out.extend(lua_to_cbor(v, limits).map_err(|e| format!("{noun} {}: {e}", i + 1))?);
        if out.len() > limits.message_bytes {
            return Err(format!("{noun}s exceed {} bytes", limits.message_bytes));
        }
    }
    Ok(out)
}

/// Decodes what [`encode_array`] made back into values; a single non-array
/// value is taken as one value, nil as none.
pub fn decode_array(lua: &mlua::Lua, data: &[u8], limits: &Limits) -> Result<MultiValue, String> {
    match cbor_to_lua(lua, data, limits).map_err(|e| e.to_string())? {
        Value::Table(t) => {
            let mut out = MultiValue::new();
            for i in 1..=t.raw_len() {
                out.push_back(t.raw_get::<Value>(i).map_err(|e| e.to_string())?);
            }
            Ok(out)
        }
        Value::Nil => Ok(MultiValue::new()),
        other => Ok(MultiValue::from_iter([other])),
    }
}
