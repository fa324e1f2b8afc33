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

mod array;
mod decode;
mod encode;
mod error;

pub use array::{decode_array, encode_array};
pub use decode::cbor_to_lua;
pub(crate) use decode::forget_keys;
pub use encode::lua_to_cbor;
pub use error::{ValueError, ValueErrorKind};

#[cfg(test)]
mod tests;
