//! CBOR bytes back into Lua values, with the same limits as encoding.

use mlua::{Lua, LuaString, Value};

use super::error::{ValueError, ValueErrorKind};
use crate::sandbox::limits::Limits;

/// Decodes one CBOR item into a Lua value in `lua`, refusing malformed,
/// oversized or over-deep input.
///
/// The new tables and strings count against the state's memory limit; a
/// refusal leaves only garbage behind. Tags, indefinite lengths, integers
/// outside i64 and trailing bytes are refused.
pub fn cbor_to_lua(lua: &Lua, bytes: &[u8], limits: &Limits) -> Result<Value, ValueError> {
    if bytes.len() > limits.message_bytes {
        return Err(ValueErrorKind::TooLarge {
            limit: limits.message_bytes,
        }
        .into());
    }
    let mut dec = Decoder {
        lua,
        bytes,
        pos: 0,
        limits,
    };
    let v = dec.value(0)?;
    if dec.pos != bytes.len() {
        return Err(ValueErrorKind::Malformed("trailing bytes after the value").into());
    }
    Ok(v)
}

struct Decoder<'a> {
    lua: &'a Lua,
    bytes: &'a [u8],
    pos: usize,
    limits: &'a Limits,
}

fn lua_err(e: mlua::Error) -> ValueError {
    ValueErrorKind::Lua(e.to_string()).into()
}

impl Decoder<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], ValueError> {
        if self.bytes.len() - self.pos < n {
            return Err(ValueErrorKind::Malformed("value ends early").into());
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn remaining(&self) -> u64 {
        (self.bytes.len() - self.pos) as u64
    }

    /// Reads an item head: (major type, additional info, argument).
    fn head(&mut self) -> Result<(u8, u8, u64), ValueError> {
        let b = self.take(1)?[0];
        let (major, info) = (b >> 5, b & 0x1f);
        let arg = match info {
            0..=23 => info as u64,
            24 => self.take(1)?[0] as u64,
            25 => u16::from_be_bytes(self.take(2)?.try_into().unwrap()) as u64,
            26 => u32::from_be_bytes(self.take(4)?.try_into().unwrap()) as u64,
            27 => u64::from_be_bytes(self.take(8)?.try_into().unwrap()),
            31 => {
                return Err(ValueErrorKind::Malformed("indefinite lengths are not accepted").into())
            }
            _ => return Err(ValueErrorKind::Malformed("reserved additional information").into()),
        };
        Ok((major, info, arg))
    }

    fn value(&mut self, depth: usize) -> Result<Value, ValueError> {
        let (major, info, arg) = self.head()?;
        match major {
            0 => i64::try_from(arg)
                .map(Value::Integer)
                .map_err(|_| ValueErrorKind::Malformed("integer out of range").into()),
            1 => i64::try_from(arg)
                .map(|n| Value::Integer(-1 - n))
                .map_err(|_| ValueErrorKind::Malformed("integer out of range").into()),
            2 | 3 => {
                if arg > self.remaining() {
                    return Err(ValueErrorKind::Malformed("string longer than the input").into());
                }
                let lua = self.lua;
                let s = self.take(arg as usize)?;
                lua.create_string(s).map(Value::String).map_err(lua_err)
            }
            4 | 5 => self.table(major == 4, arg, depth + 1),
            6 => Err(ValueErrorKind::Malformed("tags are not accepted").into()),
            _ => match (info, arg) {
                (20, _) => Ok(Value::Boolean(false)),
                (21, _) => Ok(Value::Boolean(true)),
                (22, _) | (23, _) => Ok(Value::Nil),
                (25, a) => Ok(Value::Number(f16_to_f64(a as u16))),
                (26, a) => Ok(Value::Number(f32::from_bits(a as u32) as f64)),
                (27, a) => Ok(Value::Number(f64::from_bits(a))),
                _ => Err(ValueErrorKind::Malformed("unknown simple value").into()),
            },
        }
    }

    /// A map key: like [`value`](Self::value), but short strings come from
    /// the state's [`KeyCache`].
    fn key(&mut self, depth: usize) -> Result<Value, ValueError> {
        let start = self.pos;
        let (major, _, arg) = self.head()?;
        if (major == 2 || major == 3) && arg <= KEY_CACHE_BYTES as u64 && arg <= self.remaining() {
            let lua = self.lua;
            let s = self.take(arg as usize)?;
            return key_string(lua, s).map(Value::String).map_err(lua_err);
        }
        self.pos = start;
        self.value(depth)
    }

    fn table(&mut self, array: bool, n: u64, depth: usize) -> Result<Value, ValueError> {
        let limit = self.limits.nesting_depth;
        if depth > limit {
            return Err(ValueErrorKind::TooDeep { limit }.into());
        }
        // Every element takes at least one byte: a count beyond the input is a lie.
        let per_entry = if array { 1 } else { 2 };
        if n > self.remaining() / per_entry {
            return Err(ValueErrorKind::Malformed("more entries than the input holds").into());
        }
        let (narr, nrec) = if array {
            (n as usize, 0)
        } else {
            (0, n as usize)
        };
        let t = self
            .lua
            .create_table_with_capacity(narr, nrec)
            .map_err(lua_err)?;
        for i in 1..=n as i64 {
            let key = if array {
                Value::Integer(i)
            } else {
                let k = self.key(depth)?;
                match &k {
                    Value::Nil => return Err(ValueErrorKind::BadKey("nil").into()),
                    Value::Table(_) => return Err(ValueErrorKind::BadKey("table").into()),
                    Value::Number(f) if f.is_nan() => {
                        return Err(ValueErrorKind::BadKey("NaN").into())
                    }
                    _ => k,
                }
            };
            let v = self.value(depth).map_err(|e| e.inside(&key))?;
            t.raw_set(key, v).map_err(lua_err)?;
        }
        Ok(Value::Table(t))
    }
}

/// Map keys decoded lately, as Lua strings, kept in the state's app data.
/// The messages of one peerlet use the same few field names, and under a
/// memory limit mlua makes every new string in a protected call. Lua
/// strings are immutable (and short ones interned by Lua anyway), so handing
/// out the same one is invisible to the script. Bounded: [`KEY_CACHE`]
/// strings of at most [`KEY_CACHE_BYTES`] bytes.
#[derive(Default)]
struct KeyCache {
    keys: Vec<(Vec<u8>, LuaString)>,
    next: usize,
}

const KEY_CACHE: usize = 16;
const KEY_CACHE_BYTES: usize = 32;

/// Drops the cached keys (when a peerlet is stopped).
pub(crate) fn forget_keys(lua: &Lua) {
    let _ = lua.try_app_data_mut::<KeyCache>().map(|c| {
        if let Some(mut c) = c {
            c.keys.clear();
        }
    });
}

fn key_string(lua: &Lua, bytes: &[u8]) -> mlua::Result<LuaString> {
    let hit = match lua.try_app_data_ref::<KeyCache>() {
        Ok(Some(cache)) => cache
            .keys
            .iter()
            .find(|(k, _)| k == bytes)
            .map(|(_, s)| s.clone()),
        _ => None,
    };
    if let Some(s) = hit {
        return Ok(s);
    }
    let s = lua.create_string(bytes)?;
    // Only a cache: if the app data is busy, go without.
    if lua
        .try_app_data_ref::<KeyCache>()
        .is_ok_and(|c| c.is_none())
    {
        let _ = lua.try_set_app_data(KeyCache::default());
    }
    if let Ok(Some(mut cache)) = lua.try_app_data_mut::<KeyCache>() {
        let entry = (bytes.to_vec(), s.clone());
        if cache.keys.len() < KEY_CACHE {
            cache.keys.push(entry);
        } else {
            let i = cache.next;
            cache.keys[i] = entry;
            cache.next = (i + 1) % KEY_CACHE;
        }
    }
    Ok(s)
}

/// IEEE 754 half precision to f64 (CBOR allows it; we never write it).
fn f16_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let frac = (h & 0x3ff) as f64;
    let mag = match exp {
        0 => frac * 2f64.powi(-24),
        31 if frac == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        _ => (1.0 + frac / 1024.0) * 2f64.powi(exp - 15),
    };
    sign * mag
}
