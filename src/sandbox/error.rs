//! What can go wrong in a sandbox, as the host sees it.

use mlua::Lua;

use super::value::ValueError;

/// Why a sandbox operation failed. Every message names the peerlet and, for
/// aborts, the upcall, the limit and where the script was.
///
/// `Budget`, `Time`, `Memory` and `Limit` are *aborts*: they count as strikes, and
/// after [`Limits::strikes`](super::Limits::strikes) of them the sandbox
/// answers every call with `Stopped`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SandboxError {
    #[error("peerlet `{peerlet}`: instruction budget of {limit} exceeded in {upcall}{}", at_suffix(.at))]
    Budget {
        peerlet: String,
        upcall: String,
        limit: u64,
        /// `chunk:line` where the budget ran out, when known.
        at: Option<String>,
    },
    #[error("peerlet `{peerlet}`: time limit of {limit_ms} ms exceeded in {upcall}{}", at_suffix(.at))]
    Time {
        peerlet: String,
        upcall: String,
        limit_ms: u64,
        at: Option<String>,
    },
    #[error("peerlet `{peerlet}`: memory limit of {limit} bytes hit in {upcall}: {detail}")]
    Memory {
        peerlet: String,
        upcall: String,
        limit: usize,
        detail: String,
    },
    /// A C library call refused because its work would be unbounded
    /// (a pattern too complex for its subject, too many results).
    #[error("peerlet `{peerlet}`: {detail} in {upcall}")]
    Limit {
        peerlet: String,
        upcall: String,
        detail: String,
    },
    /// The script raised an error (or misused a coroutine); not a strike.
    #[error("peerlet `{peerlet}`: error in {upcall}: {message}")]
    Runtime {
        peerlet: String,
        upcall: String,
        message: String,
    },
    #[error("peerlet `{peerlet}`: cannot load {chunk}: {message}")]
    Load {
        peerlet: String,
        chunk: String,
        message: String,
    },
    #[error(
        "peerlet `{peerlet}`: {chunk} is a precompiled (binary) chunk; only Lua source is accepted"
    )]
    BinaryChunk { peerlet: String, chunk: String },
    #[error("peerlet `{peerlet}`: a value was refused: {source}")]
    Value {
        peerlet: String,
        #[source]
        source: ValueError,
    },
    #[error("peerlet `{peerlet}` has no upcall `{upcall}`")]
    NoUpcall { peerlet: String, upcall: String },
    #[error("peerlet `{peerlet}` is not loaded")]
    NotLoaded { peerlet: String },
    #[error("peerlet `{peerlet}` has no suspended call #{call}")]
    NoSuchCall { peerlet: String, call: u64 },
    #[error("peerlet `{peerlet}` was stopped after {strikes} aborts")]
    Stopped { peerlet: String, strikes: u32 },
    /// The host's own use of Lua failed (creating the state, registering).
    #[error("peerlet `{peerlet}`: host error: {message}")]
    Host { peerlet: String, message: String },
}

impl SandboxError {
    /// Whether this error counts as a strike against the peerlet.
    pub fn is_abort(&self) -> bool {
        matches!(
            self,
            SandboxError::Budget { .. }
                | SandboxError::Time { .. }
                | SandboxError::Memory { .. }
                | SandboxError::Limit { .. }
        )
    }
}

fn at_suffix(at: &Option<String>) -> String {
    match at {
        Some(at) => format!(" at {at}"),
        None => String::new(),
    }
}

/// Raised by the C-function wrappers when a call's work would be unbounded;
/// found again in the error chain to report [`SandboxError::Limit`].
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub(crate) struct WorkLimit(pub String);

/// The innermost message of an mlua error, first line only: what a person
/// needs, without mlua's wrapping and tracebacks.
pub(crate) fn describe(e: &mlua::Error) -> String {
    match e {
        mlua::Error::CallbackError { cause, .. } => describe(cause),
        mlua::Error::WithContext { cause, .. } => describe(cause),
        mlua::Error::RuntimeError(m) | mlua::Error::MemoryError(m) => first_line(m),
        mlua::Error::SyntaxError { message, .. } => first_line(message),
        other => first_line(&other.to_string()),
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

/// The kind of failure inside an mlua error chain.
pub(crate) enum Cause {
    Memory(String),
    Limit(String),
    Other(String),
}

pub(crate) fn cause(e: &mlua::Error) -> Cause {
    match e {
        mlua::Error::CallbackError { cause: c, .. } => cause(c),
        mlua::Error::WithContext { cause: c, .. } => cause(c),
        mlua::Error::MemoryError(m) => Cause::Memory(first_line(m)),
        mlua::Error::ExternalError(ext) => match ext.downcast_ref::<WorkLimit>() {
            Some(w) => Cause::Limit(w.0.clone()),
            None => Cause::Other(describe(e)),
        },
        other => Cause::Other(describe(other)),
    }
}

/// `chunk:line` of the nearest peerlet line on the stack from `level` up,
/// skipping host functions and the prelude's wrappers, so reports point at
/// the peerlet's code. `None` when there is none (a tail call hid it).
pub(crate) fn script_location(lua: &Lua, level: usize) -> Option<String> {
    (level..level + 6).find_map(|level| {
        lua.inspect_stack(level, |d| {
            let line = d.current_line()?;
            let src = d.source().short_src?.into_owned();
            (src != "[sandbox]").then(|| format!("{src}:{line}"))
        })
        .flatten()
    })
}
