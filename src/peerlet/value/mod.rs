//! Lua values to and from CBOR: what a peerlet's messages are made of.
//!
//! What can travel: `nil`, booleans, integers, floats, strings and tables of
//! those. Strings become CBOR byte strings, so any bytes round-trip; CBOR text
//! strings are accepted too and become Lua strings. A table whose keys are
//! exactly `1..n` (n ≥ 1) is a CBOR array; an empty table is an empty array;
//! any other table is a CBOR map whose keys must be strings, integers,
//! non-integral floats or booleans. Integers stay integers and floats stay
//! floats. An array element that is `nil` in CBOR leaves a hole in the Lua
//! table (Lua cannot store `nil`).
//!
//! What is refused, with a [`ValueError`] that names the problem and where it
//! is (`value.a[3]`): functions, coroutines, userdata, tables that contain
//! themselves, tables as keys, nesting deeper than [`Limits::nesting_depth`],
//! and anything over [`Limits::message_bytes`] once encoded. Encoding stops as
//! soon as the output passes the limit.
//!
//! Reading a table never runs script code: only raw access is used, so
//! `__index`, `__pairs`, `__len` and friends are ignored.

use std::collections::HashSet;
use std::ffi::c_void;
use std::fmt;

use mlua::{Table, Value};

use super::Limits;

/// Why a value cannot be sent or received.
#[derive(Clone, Debug, PartialEq)]
pub struct ValueError {
    /// What is wrong.
    pub kind: ValueErrorKind,
    /// Where in the value, as Lua would write it after `value` (`.a[3]`);
    /// empty for the value itself.
    pub path: String,
}

/// The kinds of [`ValueError`].
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ValueErrorKind {
    #[error("a {0} cannot be sent")]
    Unsendable(&'static str),
    #[error("a table that contains itself cannot be sent")]
    Cycle,
    #[error("a {0} cannot be a table key")]
    BadKey(&'static str),
    #[error("tables nested deeper than {limit} levels")]
    TooDeep { limit: usize },
    #[error("the value is larger than {limit} bytes encoded")]
    TooLarge { limit: usize },
    #[error("malformed CBOR: {0}")]
    Malformed(&'static str),
    #[error("Lua could not build the value: {0}")]
    Lua(String),
}

impl std::error::Error for ValueError {}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.kind)
        } else {
            write!(f, "{} (at value{})", self.kind, self.path)
        }
    }
}

impl From<ValueErrorKind> for ValueError {
    fn from(kind: ValueErrorKind) -> ValueError {
        ValueError {
            kind,
            path: String::new(),
        }
    }
}

impl ValueError {
    fn inside(mut self, segment: &Value) -> ValueError {
        let seg = match segment {
            Value::Integer(i) => format!("[{i}]"),
            Value::Number(n) => format!("[{n}]"),
            Value::Boolean(b) => format!("[{b}]"),
            Value::String(s) => {
                let b = s.as_bytes();
                let ident = !b.is_empty()
                    && b.len() <= 40
                    && !b[0].is_ascii_digit()
                    && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_');
                if ident {
                    format!(".{}", String::from_utf8_lossy(&b))
                } else {
                    "[?]".to_string()
                }
            }
            _ => "[?]".to_string(),
        };
        self.path.insert_str(0, &seg);
        self
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Function(_) => "function",
        Value::Thread(_) => "coroutine",
        Value::LightUserData(_) => "light userdata",
        Value::Table(_) => "table",
        Value::Nil => "nil",
        _ => "userdata",
    }
}

/// Encodes a Lua value as one CBOR item, refusing what cannot travel.
///
/// Never calls a metamethod; stops as soon as the encoding passes
/// `limits.message_bytes`, so a 64 MiB string costs nothing to refuse.
///
/// # Examples
/// ```
/// use peerlet::peerlet::{lua_to_cbor, cbor_to_lua, Limits};
/// let lua = mlua::Lua::new();
/// let v: mlua::Value = lua.load("return {text = 'hi', n = 3, [1.5] = true}").eval().unwrap();
/// let bytes = lua_to_cbor(&v, &Limits::default()).unwrap();
/// let back = cbor_to_lua(&lua, &bytes, &Limits::default()).unwrap();
/// assert_eq!(back.as_table().unwrap().get::<String>("text").unwrap(), "hi");
/// ```
pub fn lua_to_cbor(v: &Value, limits: &Limits) -> Result<Vec<u8>, ValueError> {
    let mut enc = Encoder {
        out: Vec::new(),
        limits,
        path: HashSet::new(),
    };
    enc.value(v, 0)?;
    Ok(enc.out)
}

struct Encoder<'a> {
    out: Vec<u8>,
    limits: &'a Limits,
    /// Tables on the path from the root to the one being encoded.
    path: HashSet<*const c_void>,
}

impl Encoder<'_> {
    fn room(&self, more: usize) -> Result<(), ValueError> {
        if self.out.len().saturating_add(more) > self.limits.message_bytes {
            return Err(ValueErrorKind::TooLarge {
                limit: self.limits.message_bytes,
            }
            .into());
        }
        Ok(())
    }

    fn head(&mut self, major: u8, n: u64) -> Result<(), ValueError> {
        self.room(9)?;
        let m = major << 5;
        match n {
            0..=23 => self.out.push(m | n as u8),
            24..=0xff => self.out.extend_from_slice(&[m | 24, n as u8]),
            0x100..=0xffff => {
                self.out.push(m | 25);
                self.out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                self.out.push(m | 26);
                self.out.extend_from_slice(&(n as u32).to_be_bytes());
            }
            _ => {
                self.out.push(m | 27);
                self.out.extend_from_slice(&n.to_be_bytes());
            }
        }
        Ok(())
    }

    fn scalar(&mut self, v: &Value) -> Result<(), ValueError> {
        match v {
            Value::Nil => self.head(7, 22),
            Value::Boolean(b) => self.head(7, if *b { 21 } else { 20 }),
            Value::Integer(i) if *i >= 0 => self.head(0, *i as u64),
            Value::Integer(i) => self.head(1, !*i as u64),
            Value::Number(n) => {
                self.room(9)?;
                self.out.push(0xfb);
                self.out.extend_from_slice(&n.to_be_bytes());
                Ok(())
            }
            Value::String(s) => {
                let b = s.as_bytes();
                self.room(b.len() + 9)?;
                self.head(2, b.len() as u64)?;
                self.out.extend_from_slice(&b);
                Ok(())
            }
            other => Err(ValueErrorKind::Unsendable(type_name(other)).into()),
        }
    }

    fn value(&mut self, v: &Value, depth: usize) -> Result<(), ValueError> {
        match v {
            Value::Table(t) => self.table(t, depth + 1),
            other => self.scalar(other),
        }
    }

    fn key(&mut self, k: &Value) -> Result<(), ValueError> {
        match k {
            Value::Table(_) => Err(ValueErrorKind::BadKey("table").into()),
            Value::String(_) | Value::Integer(_) | Value::Number(_) | Value::Boolean(_) => {
                self.scalar(k)
            }
            other => Err(ValueErrorKind::BadKey(type_name(other)).into()),
        }
    }

    fn table(&mut self, t: &Table, depth: usize) -> Result<(), ValueError> {
        let limit = self.limits.nesting_depth;
        if depth > limit {
            return Err(ValueErrorKind::TooDeep { limit }.into());
        }
        let ptr = t.to_pointer();
        if !self.path.insert(ptr) {
            return Err(ValueErrorKind::Cycle.into());
        }
        // Every entry costs at least two bytes, so a table with more entries
        // than that cannot fit: stop collecting early.
        let most = self.limits.message_bytes / 2 + 1;
        let mut entries: Vec<(Value, Value)> = Vec::new();
        let collected = t.for_each(|k: Value, v: Value| {
            entries.push((k, v));
            if entries.len() > most {
                return Err(mlua::Error::runtime("too many entries"));
            }
            Ok(())
        });
        if let Err(e) = collected {
            self.path.remove(&ptr);
            return Err(if entries.len() > most {
                ValueErrorKind::TooLarge {
                    limit: self.limits.message_bytes,
                }
                .into()
            } else {
                ValueErrorKind::Lua(e.to_string()).into()
            });
        }
        let n = entries.len();
        let is_array = entries
            .iter()
            .all(|(k, _)| matches!(k, Value::Integer(i) if *i >= 1 && *i as u64 <= n as u64));
        let result = if is_array {
            entries.sort_by_key(|(k, _)| k.as_integer().unwrap_or(0));
            self.head(4, n as u64).and_then(|()| {
                entries
                    .iter()
                    .try_for_each(|(k, v)| self.value(v, depth).map_err(|e| e.inside(k)))
            })
        } else {
            self.head(5, n as u64).and_then(|()| {
                entries.iter().try_for_each(|(k, v)| {
                    self.key(k)?;
                    self.value(v, depth).map_err(|e| e.inside(k))
                })
            })
        };
        self.path.remove(&ptr);
        result
    }
}

mod array;
mod decode;
pub use array::{decode_array, encode_array};
pub use decode::cbor_to_lua;
pub(crate) use decode::forget_keys;

#[cfg(test)]
mod tests;
