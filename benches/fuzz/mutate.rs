//! Mutations: how one input becomes the next.
//!
//! Byte-level mutations (bit flips, interesting values, inserted, deleted and
//! duplicated ranges, splices, truncation) find what any parser trips on.
//! Inputs that are CBOR also get mutations that know CBOR's item heads,
//! because a decoder's limits are tested by the *claims* an input makes:
//! a length of 2^63 in a ten-byte input, an indefinite-length item with no
//! break, 100,000 levels of nesting, an item from another valid input put
//! where this one's was. Text inputs (key files, signatures, the trust
//! policy) get the words and line shapes their parsers look for.

use peerlet::sim::Rng;

/// What an input is, so mutations can respect (or attack) its structure.
#[derive(Clone, Copy, Debug)]
pub enum Form {
    /// One or more CBOR items starting at byte `start` (after a length
    /// prefix, for frames).
    Cbor { start: usize },
    /// Text made of lines.
    Text,
}

/// Bytes decoders treat specially: zero, sign and range edges, and CBOR
/// heads (each major type's tiny, 1-, 2-, 4- and 8-byte and indefinite
/// forms, tags, false, true, null, undefined, floats, break).
const INTERESTING_BYTES: &[u8] = &[
    0x00, 0x01, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1f, 0x20, 0x38, 0x3b, 0x40, 0x58, 0x5b, 0x5f,
    0x60, 0x78, 0x7b, 0x7f, 0x80, 0x98, 0x9b, 0x9f, 0xa0, 0xb8, 0xbb, 0xbf, 0xc0, 0xc2, 0xd8, 0xdb,
    0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xff,
];

/// Big-endian words at the edges of u16/u32/u64 and of the signed ranges.
const INTERESTING_WORDS: &[u64] = &[
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0x7fff,
    0x8000,
    0xffff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX,
];

/// Words and lines the text parsers look for.
const TEXT_TOKENS: &[&str] = &[
    "untrusted comment: ",
    "trusted comment: ",
    "\n",
    "\r\n",
    "\r",
    "=",
    " = ",
    "#",
    "key = ",
    "key-file = ",
    "per-hop = ",
    "max-package-bytes = ",
    "allow",
    "deny",
    "RW",
    "RU",
    "Ed",
    "ED",
    "==",
    "=\n",
    "\0",
    "\u{feff}",
    "é",
    "18446744073709551616",
    "-1",
    "0",
    "peerlet:",
    "peerlet:name=x type=per-hop version=4294967296",
    "--@peerlet name=",
    " type=end-node",
    " version=",
    "timestamp:",
    "file:",
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
];

const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Nesting prefixes: an array of one, an indefinite array, a map of one
/// under key "k", a tag.
const NESTERS: &[&[u8]] = &[&[0x81], &[0x9f], &[0xa1, 0x61, b'k'], &[0xd8, 0x18]];

/// Levels of nesting tried: just past the sandbox's 32, past ciborium's
/// 256, and far past both.
const DEPTHS: &[usize] = &[33, 257, 1_000, 100_000];

/// Largest input a mutation may make (deep nesting makes the largest).
pub const MAX_INPUT: usize = 512 * 1024;

/// A mutant of `parent`: one to eight mutations stacked. `other` is a second
/// corpus entry to splice from.
pub fn mutate(parent: &[u8], other: &[u8], form: Form, rng: &mut Rng) -> Vec<u8> {
    let mut x = parent.to_vec();
    let rounds = 1 << rng.below(4);
    for _ in 0..rounds {
        let structured = rng.below(3) == 0;
        match (form, structured) {
            (Form::Cbor { start }, true) => cbor_mutation(&mut x, other, start, rng),
            (Form::Text, true) => text_mutation(&mut x, rng),
            _ => byte_mutation(&mut x, other, rng),
        }
        if x.len() > MAX_INPUT {
            x.truncate(MAX_INPUT);
        }
    }
    if let (Form::Text, Err(_)) = (form, std::str::from_utf8(&x)) {
        // Text files are read with `read_to_string`: other bytes never
        // reach the parsers.
        x = String::from_utf8_lossy(&x).into_owned().into_bytes();
    }
    x
}

fn pick<T: Copy>(rng: &mut Rng, from: &[T]) -> T {
    from[rng.below(from.len() as u64) as usize]
}

/// A position in `0..=len` (inserting) or `0..len` (`len > 0`, changing).
fn at(rng: &mut Rng, len: usize) -> usize {
    rng.below(len as u64 + 1) as usize
}

/// A range inside `x`, usually short.
fn range(rng: &mut Rng, len: usize) -> (usize, usize) {
    let start = at(rng, len);
    let most = (len - start).min(if rng.below(4) == 0 { len } else { 16 });
    (start, start + at(rng, most))
}

fn byte_mutation(x: &mut Vec<u8>, other: &[u8], rng: &mut Rng) {
    let len = x.len();
    match rng.below(10) {
        0 if len > 0 => {
            let i = rng.below(len as u64) as usize;
            x[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len as u64) as usize;
            x[i] = pick(rng, INTERESTING_BYTES);
        }
        2 if len > 0 => {
            let i = rng.below(len as u64) as usize;
            x[i] = x[i].wrapping_add(rng.below(33) as u8).wrapping_sub(16);
        }
        3 => {
            let width = pick(rng, &[2usize, 4, 8]);
            let word = pick(rng, INTERESTING_WORDS).to_be_bytes();
            let i = at(rng, len.saturating_sub(width));
            let end = (i + width).min(len);
            x.splice(i..end, word[8 - width..].iter().copied());
        }
        4 => {
            let i = at(rng, len);
            let most = if rng.below(8) == 0 { 4096 } else { 16 };
            let n = 1 + rng.below(most) as usize;
            let fill: Vec<u8> = if rng.below(2) == 0 {
                vec![rng.next_u64() as u8; n]
            } else {
                (0..n).map(|_| rng.next_u64() as u8).collect()
            };
            x.splice(i..i, fill);
        }
        5 => {
            let (a, b) = range(rng, len);
            x.drain(a..b);
        }
        6 => {
            let (a, b) = range(rng, len);
            let copy = x[a..b].to_vec();
            let i = at(rng, len);
            x.splice(i..i, copy);
        }
        7 => {
            // Head of this input, tail of the other.
            let cut = at(rng, len);
            let from = at(rng, other.len());
            x.truncate(cut);
            x.extend_from_slice(&other[from..]);
        }
        8 => x.truncate(at(rng, len)),
        _ => {
            let (a, b) = range(rng, other.len());
            let i = at(rng, len);
            x.splice(i..i, other[a..b].iter().copied());
        }
    }
}

/// One CBOR item head: where it is, how many bytes it takes, its major
/// type and its argument.
#[derive(Clone, Copy, Debug)]
pub struct Head {
    pub pos: usize,
    pub len: usize,
    pub major: u8,
    pub arg: u64,
}

/// The item heads of `bytes` from `start`, in order, skipping string
/// contents; stops at the first malformed head.
pub fn heads(bytes: &[u8], start: usize) -> Vec<Head> {
    let mut out = Vec::new();
    let mut pos = start;
    while let Some(h) = head_at(bytes, pos) {
        out.push(h);
        pos = h.pos + h.len;
        if (h.major == 2 || h.major == 3) && bytes[h.pos] & 0x1f != 31 {
            match pos.checked_add(h.arg as usize) {
                Some(end) if end <= bytes.len() && h.arg <= usize::MAX as u64 => pos = end,
                _ => break,
            }
        }
    }
    out
}

fn head_at(bytes: &[u8], pos: usize) -> Option<Head> {
    let b = *bytes.get(pos)?;
    let (major, info) = (b >> 5, b & 0x1f);
    let width = match info {
        0..=23 | 31 => 0,
        24 => 1,
        25 => 2,
        26 => 4,
        27 => 8,
        _ => return None,
    };
    let arg_bytes = bytes.get(pos + 1..pos + 1 + width)?;
    let arg = if width == 0 {
        u64::from(info)
    } else {
        arg_bytes.iter().fold(0u64, |a, b| a << 8 | u64::from(*b))
    };
    Some(Head {
        pos,
        len: 1 + width,
        major,
        arg,
    })
}

/// Where the item whose head is at `pos` ends (definite lengths only).
pub fn item_end(bytes: &[u8], pos: usize, depth: usize) -> Option<usize> {
    let h = head_at(bytes, pos)?;
    if depth > 64 || bytes[pos] & 0x1f == 31 {
        return None;
    }
    let mut end = pos + h.len;
    match h.major {
        2 | 3 => {
            end = end.checked_add(usize::try_from(h.arg).ok()?)?;
            (end <= bytes.len()).then_some(end)
        }
        4 | 5 => {
            let items = if h.major == 5 {
                h.arg.checked_mul(2)?
            } else {
                h.arg
            };
            if items > bytes.len() as u64 {
                return None;
            }
            for _ in 0..items {
                end = item_end(bytes, end, depth + 1)?;
            }
            Some(end)
        }
        6 => item_end(bytes, end, depth + 1),
        _ => Some(end),
    }
}

/// Encodes a head with an 8-byte argument, or `info` as given.
fn head_bytes(major: u8, arg: u64, wide: bool) -> Vec<u8> {
    let m = major << 5;
    match (wide, arg) {
        (false, 0..=23) => vec![m | arg as u8],
        (false, 24..=0xff) => vec![m | 24, arg as u8],
        (false, 0x100..=0xffff) => [&[m | 25][..], &(arg as u16).to_be_bytes()].concat(),
        (false, 0x1_0000..=0xffff_ffff) => [&[m | 26][..], &(arg as u32).to_be_bytes()].concat(),
        _ => [&[m | 27][..], &arg.to_be_bytes()].concat(),
    }
}

fn cbor_mutation(x: &mut Vec<u8>, other: &[u8], start: usize, rng: &mut Rng) {
    let hs = heads(x, start);
    if hs.is_empty() {
        return byte_mutation(x, other, rng);
    }
    let h = pick(rng, &hs);
    let head = h.pos..h.pos + h.len;
    match rng.below(8) {
        0 => {
            // A length far beyond the input: 2^63, 2^64-1, 2^32, or one more.
            let arg = pick(
                rng,
                &[
                    1 << 63,
                    u64::MAX,
                    1 << 32,
                    0xffff_ffff,
                    h.arg.wrapping_add(1),
                ],
            );
            let major = if rng.below(2) == 0 {
                h.major
            } else {
                2 + rng.below(4) as u8
            };
            x.splice(head, head_bytes(major, arg, rng.below(2) == 0));
        }
        1 => {
            // Indefinite length, and no break anywhere.
            let major = pick(rng, &[2u8, 3, 4, 5]);
            x.splice(head, [major << 5 | 31]);
        }
        2 => {
            // Another major type with the same argument.
            let major = rng.below(8) as u8;
            x.splice(head, head_bytes(major, h.arg, false));
        }
        3 => {
            let tag = pick(
                rng,
                &[&[0xc0u8][..], &[0xc2], &[0xd8, 0x18], &[0xd9, 0xd9, 0xf7]],
            );
            x.splice(h.pos..h.pos, tag.iter().copied());
        }
        4 => {
            let nester = pick(rng, NESTERS);
            let depth = if rng.below(16) == 0 {
                pick(rng, DEPTHS)
            } else {
                pick(rng, &DEPTHS[..2])
            };
            let prefix: Vec<u8> = nester
                .iter()
                .copied()
                .cycle()
                .take(nester.len() * depth)
                .collect();
            x.splice(h.pos..h.pos, prefix);
        }
        5 => {
            // An item of the other input in place of one of this one.
            let theirs = heads(other, 0);
            if theirs.is_empty() {
                return;
            }
            let t = pick(rng, &theirs);
            if let (Some(mine), Some(end)) = (item_end(x, h.pos, 0), item_end(other, t.pos, 0)) {
                x.splice(h.pos..mine, other[t.pos..end].iter().copied());
            }
        }
        6 => {
            // The item twice (an array then has one more than it says).
            if let Some(end) = item_end(x, h.pos, 0) {
                let copy = x[h.pos..end].to_vec();
                x.splice(end..end, copy);
            }
        }
        _ => {
            // The item gone.
            if let Some(end) = item_end(x, h.pos, 0) {
                x.drain(h.pos..end);
            }
        }
    }
}

fn text_mutation(x: &mut Vec<u8>, rng: &mut Rng) {
    let len = x.len();
    match rng.below(6) {
        0 => {
            let token = pick(rng, TEXT_TOKENS).as_bytes();
            let i = at(rng, len);
            x.splice(i..i, token.iter().copied());
        }
        1 => {
            // Another base64 character where there was one: still base64,
            // so the decoders past the base64 layer see it.
            let places: Vec<usize> = (0..len).filter(|i| BASE64.contains(&x[*i])).collect();
            if !places.is_empty() {
                let i = pick(rng, &places);
                x[i] = pick(rng, BASE64);
            }
        }
        2 => {
            let n = pick(rng, &[100usize, 10_000, 100_000]);
            let i = at(rng, len);
            x.splice(i..i, std::iter::repeat_n(pick(rng, b"A=# \n"), n));
        }
        _ => {
            // Whole lines: one dropped, doubled or moved.
            let mut lines: Vec<Vec<u8>> = x.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
            let i = rng.below(lines.len() as u64) as usize;
            match rng.below(3) {
                0 => {
                    lines.remove(i);
                }
                1 => lines.insert(i, lines[i].clone()),
                _ => {
                    let j = rng.below(lines.len() as u64) as usize;
                    lines.swap(i, j);
                }
            }
            *x = lines.join(&b'\n');
        }
    }
}
