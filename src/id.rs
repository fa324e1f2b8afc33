//! Identifiers on the ring: 160-bit node ids and keys, 128-bit app ids.
//!
//! A key for a name is the first 20 bytes of SHA-256(name). Ids are shown to
//! people and to Lua as 40 lowercase hex digits. Ring arithmetic is modulo
//! 2^160: intervals wrap around zero, and `(a, a)` is the whole ring but `a`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Bits in a ring id.
pub const ID_BITS: usize = 160;
/// Bytes in a ring id.
pub const ID_BYTES: usize = ID_BITS / 8;

/// A point on the Chord ring: a node id or a key (160 bits, big-endian).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Id(#[serde(with = "serde_bytes")] pub [u8; ID_BYTES]);

/// Why a string is not an id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseIdError {
    #[error("expected {expected} hex digits, got {got}")]
    Length { expected: usize, got: usize },
    #[error("`{0}` is not a hex digit")]
    Digit(char),
}

impl Id {
    /// The zero id.
    pub const ZERO: Id = Id([0; ID_BYTES]);

    /// The key of a name: the first 20 bytes of SHA-256(name).
    ///
    /// # Examples
    /// ```
    /// let k = peerlet::id::Id::key("hello");
    /// assert_eq!(k.to_string().len(), 40);
    /// assert_eq!(k, peerlet::id::Id::key(b"hello"));
    /// ```
    pub fn key(name: impl AsRef<[u8]>) -> Id {
        let digest = Sha256::digest(name.as_ref());
        let mut out = [0; ID_BYTES];
        out.copy_from_slice(&digest[..ID_BYTES]);
        Id(out)
    }

    /// An id from its 64 high bits (the rest zero); handy in tests and simulations.
    pub fn from_u64(hi: u64) -> Id {
        let mut out = [0; ID_BYTES];
        out[..8].copy_from_slice(&hi.to_be_bytes());
        Id(out)
    }

    /// `self + 2^bit` modulo 2^160: the start of finger `bit`.
    pub fn add_pow2(&self, bit: usize) -> Id {
        assert!(bit < ID_BITS, "bit {bit} out of range");
        let mut out = self.0;
        let byte = ID_BYTES - 1 - bit / 8;
        let mut carry = 1u16 << (bit % 8);
        for i in (0..=byte).rev() {
            let sum = out[i] as u16 + carry;
            out[i] = sum as u8;
            carry = sum >> 8;
            if carry == 0 {
                break;
            }
        }
        Id(out)
    }

    /// Clockwise distance from `self` to `other`: `(other - self) mod 2^160`.
    pub fn distance_to(&self, other: &Id) -> Id {
        let mut out = [0u8; ID_BYTES];
        let mut borrow = 0i16;
        for i in (0..ID_BYTES).rev() {
            let mut d = other.0[i] as i16 - self.0[i] as i16 - borrow;
            borrow = if d < 0 {
                d += 256;
                1
            } else {
                0
            };
            out[i] = d as u8;
        }
        Id(out)
    }

    /// Is `self` in the open interval `(a, b)` going clockwise? `(a, a)` is
    /// the whole ring except `a`.
    pub fn in_open(&self, a: &Id, b: &Id) -> bool {
        if a == b {
            return self != a;
        }
        let d_self = a.distance_to(self);
        let d_b = a.distance_to(b);
        d_self > Id::ZERO && d_self < d_b
    }

    /// Is `self` in the half-open interval `(a, b]` going clockwise? `(a, a]`
    /// is the whole ring.
    pub fn in_open_closed(&self, a: &Id, b: &Id) -> bool {
        if a == b {
            return true;
        }
        self == b || self.in_open(a, b)
    }

    /// Number of significant bits: 0 for zero, 160 when the top bit is set.
    /// For a distance `d`, `bit_length() - 1` is floor(log2 d).
    pub fn bit_length(&self) -> usize {
        for (i, b) in self.0.iter().enumerate() {
            if *b != 0 {
                return (ID_BYTES - i) * 8 - b.leading_zeros() as usize;
            }
        }
        0
    }

    /// The first `n` hex digits, for logs and tables where the full id is noise.
    pub fn short(&self, n: usize) -> String {
        let mut s = self.to_string();
        s.truncate(n.min(2 * ID_BYTES));
        s
    }

    /// The high 64 bits, e.g. to place the id on a drawn ring.
    pub fn high_u64(&self) -> u64 {
        u64::from_be_bytes(self.0[..8].try_into().expect("8 bytes"))
    }
}

fn parse_hex<const N: usize>(s: &str) -> Result<[u8; N], ParseIdError> {
    if s.len() != 2 * N {
        return Err(ParseIdError::Length {
            expected: 2 * N,
            got: s.chars().count(),
        });
    }
    let mut out = [0u8; N];
    let digits: Vec<char> = s.chars().collect();
    for (i, pair) in digits.chunks(2).enumerate() {
        let hi = pair[0].to_digit(16).ok_or(ParseIdError::Digit(pair[0]))?;
        let lo = pair[1].to_digit(16).ok_or(ParseIdError::Digit(pair[1]))?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Ok(out)
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    // One write of the whole string: ids are formatted on every upcall.
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 2 * ID_BYTES];
    let n = bytes.len().min(ID_BYTES);
    for (i, b) in bytes[..n].iter().enumerate() {
        buf[2 * i] = DIGITS[(b >> 4) as usize];
        buf[2 * i + 1] = DIGITS[(b & 15) as usize];
    }
    f.write_str(std::str::from_utf8(&buf[..2 * n]).expect("hex digits are ASCII"))
}

impl FromStr for Id {
    type Err = ParseIdError;

    /// Parses 40 hex digits (either case).
    fn from_str(s: &str) -> Result<Id, ParseIdError> {
        parse_hex(s).map(Id)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.short(8))
    }
}

/// An application's id: 128 bits, the first 16 bytes of
/// SHA-256(publisher public key ‖ peerlet name), so that only the holder of
/// the publisher's secret key can publish code under it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct AppId(#[serde(with = "serde_bytes")] pub [u8; 16]);

impl AppId {
    /// The app id of peerlet `name` signed by the Ed25519 public key `publisher`.
    pub fn derive(publisher: &[u8], name: &str) -> AppId {
        let mut h = Sha256::new();
        h.update(publisher);
        h.update(name.as_bytes());
        let digest = h.finalize();
        let mut out = [0; 16];
        out.copy_from_slice(&digest[..16]);
        AppId(out)
    }
}

impl FromStr for AppId {
    type Err = ParseIdError;

    fn from_str(s: &str) -> Result<AppId, ParseIdError> {
        parse_hex(s).map(AppId)
    }
}

impl fmt::Display for AppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for AppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AppId(")?;
        write_hex(f, &self.0[..4])?;
        write!(f, ")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(hi: u64) -> Id {
        Id::from_u64(hi)
    }

    #[test]
    fn key_is_first_20_bytes_of_sha256() {
        // SHA-256("abc") = ba7816bf 8f01cfea 414140de 5dae2223 b00361a3 96177a9c b410ff61 f20015ad
        assert_eq!(
            Id::key("abc").to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a3"
        );
    }

    #[test]
    fn hex_round_trip_and_errors() {
        let k = Id::key("x");
        assert_eq!(k.to_string().parse::<Id>().unwrap(), k);
        assert_eq!(k.to_string().to_uppercase().parse::<Id>().unwrap(), k);
        assert_eq!(
            "abc".parse::<Id>(),
            Err(ParseIdError::Length {
                expected: 40,
                got: 3
            })
        );
        let bad = format!("{}g", "0".repeat(39));
        assert_eq!(bad.parse::<Id>(), Err(ParseIdError::Digit('g')));
        let app = AppId::derive(b"pk", "dht");
        assert_eq!(app.to_string().parse::<AppId>().unwrap(), app);
    }

    #[test]
    fn intervals_wrap_around_zero() {
        let max = Id([0xff; ID_BYTES]);
        assert!(Id::ZERO.in_open(&max, &id(5)));
        assert!(id(3).in_open(&max, &id(5)));
        assert!(!id(5).in_open(&max, &id(5)));
        assert!(id(5).in_open_closed(&max, &id(5)));
        assert!(!id(6).in_open_closed(&max, &id(5)));
        assert!(id(6).in_open(&id(5), &id(5)));
        assert!(!id(5).in_open(&id(5), &id(5)));
        assert!(id(5).in_open_closed(&id(5), &id(5)));
        assert!(!max.in_open(&id(1), &id(5)));
    }

    #[test]
    fn add_pow2_carries_and_wraps() {
        assert_eq!(Id::ZERO.add_pow2(0).0[ID_BYTES - 1], 1);
        let max = Id([0xff; ID_BYTES]);
        assert_eq!(max.add_pow2(0), Id::ZERO);
        assert_eq!(Id::ZERO.add_pow2(159), id(1 << 63));
        assert_eq!(id(1 << 63).add_pow2(159), Id::ZERO);
    }

    #[test]
    fn bit_length_is_floor_log2_plus_one() {
        assert_eq!(Id::ZERO.bit_length(), 0);
        assert_eq!(Id::ZERO.add_pow2(0).bit_length(), 1);
        assert_eq!(Id::ZERO.add_pow2(37).bit_length(), 38);
        assert_eq!(Id([0xff; ID_BYTES]).bit_length(), 160);
    }

    #[test]
    fn distance_is_clockwise() {
        assert_eq!(id(1).distance_to(&id(3)), id(2));
        let back = id(3).distance_to(&id(1));
        assert_eq!(back.0[0], 0xff);
        assert_eq!(Id::ZERO.distance_to(&back), back);
    }

    use proptest::prelude::*;

    fn any_id() -> impl Strategy<Value = Id> {
        any::<[u8; ID_BYTES]>().prop_map(Id)
    }

    proptest! {
        #[test]
        fn exactly_one_side_of_a_split(x in any_id(), a in any_id(), b in any_id()) {
            prop_assume!(a != b && x != a && x != b);
            prop_assert!(x.in_open(&a, &b) ^ x.in_open(&b, &a));
        }

        #[test]
        fn distance_adds_up(a in any_id(), b in any_id(), c in any_id()) {
            // d(a,b) + d(b,c) == d(a,c) mod 2^160, checked through in_open_closed:
            // b in (a, c] iff d(a,b) <= d(a,c) (for b != a).
            prop_assume!(a != b);
            let inside = b.in_open_closed(&a, &c);
            prop_assert_eq!(inside, a.distance_to(&b) <= a.distance_to(&c) || a == c);
        }
    }
}
