//! Lua to CBOR: raw access only, bounded depth and size.

use std::collections::HashSet;
use std::ffi::c_void;

use mlua::{Table, Value};

use super::error::{ValueError, ValueErrorKind};
use crate::sandbox::limits::Limits;

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
/// use peerlet::sandbox::{lua_to_cbor, cbor_to_lua, Limits};
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
