//! Why a value cannot cross between Lua and the wire, and where in it.

use std::fmt;

use mlua::Value;

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
    /// The same error, one step further out: `segment` is the key the
    /// failing value sat under.
    pub(super) fn inside(mut self, segment: &Value) -> ValueError {
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
