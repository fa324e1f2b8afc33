//! An upper bound on the work of one Lua pattern call, computed before the
//! call because the instruction hook never fires inside `string.find`,
//! `match`, `gmatch` or `gsub`.
//!
//! Lua's matcher backtracks: at each start position, every repetition item
//! (`*`, `+`, `-`) that has more pattern after it is tried with each possible
//! length, so the work multiplies across such items. The bound is
//! `starts × Π (longest run of the item's class in the subject + 1)`, with a
//! factor 2 for `?` items and `len + 1` for `%b` and back-references (linear
//! scans). A repetition with nothing but capture closes after it succeeds on
//! its first try, so it adds no factor. Using the longest *run* of the class
//! (not the whole subject length) keeps ordinary patterns such as
//! `(%w+)=(%w+)` cheap while `("a*"):rep(40) .. "b"` on 100 000 `a`s is
//! refused at once.

use std::collections::HashMap;

/// Estimated matcher steps for `pattern` on `subject`, saturating at
/// `cap + 1` (the caller refuses anything over `cap`). `anchorable` is false
/// for `gmatch`, whose `^` does not stop the scan over start positions.
pub(crate) fn pattern_work(subject: &[u8], pattern: &[u8], anchorable: bool, cap: u64) -> u64 {
    let n = subject.len() as u64;
    let anchored = anchorable && pattern.first() == Some(&b'^');
    let mut i = usize::from(anchored);
    let mut work: u64 = if anchored { 1 } else { n + 1 };
    let mut runs: HashMap<&[u8], u64> = HashMap::new();
    // The estimate itself scans the subject once per distinct class; bound
    // that too, so a huge pattern cannot make the check the slow part.
    let mut scanned: u64 = 0;
    let p = pattern;
    while i < p.len() && work <= cap {
        match p[i] {
            b'(' | b')' => i += 1,
            b'$' if i + 1 == p.len() => i += 1,
            b'%' if p.get(i + 1) == Some(&b'b') => {
                work = work.saturating_mul(n + 1);
                i += 4;
            }
            b'%' if p.get(i + 1) == Some(&b'f') => {
                i = class_end(p, i + 2);
            }
            b'%' if p.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                work = work.saturating_mul(n + 1);
                i += 2;
            }
            _ => {
                let end = class_end(p, i);
                let quantifier = p.get(end).copied();
                let last = p[(end + 1).min(p.len())..].iter().all(|&c| c == b')');
                match quantifier {
                    Some(b'*' | b'+' | b'-') if !last => {
                        let class = &p[i..end];
                        let run = match runs.get(class) {
                            Some(r) => *r,
                            None => {
                                scanned = scanned.saturating_add(n);
                                if scanned > cap {
                                    return cap.saturating_add(1);
                                }
                                let r = longest_run(subject, class);
                                runs.insert(class, r);
                                r
                            }
                        };
                        work = work.saturating_mul(run + 1);
                        i = end + 1;
                    }
                    Some(b'?') if !last => {
                        work = work.saturating_mul(2);
                        i = end + 1;
                    }
                    Some(b'*' | b'+' | b'-' | b'?') => i = end + 1,
                    _ => i = end,
                }
            }
        }
    }
    work.min(cap.saturating_add(1))
}

/// Index just past the single-character class starting at `i` (Lua's
/// `classEnd`), clamped to the pattern length for malformed patterns (Lua
/// itself raises an error for those).
fn class_end(p: &[u8], mut i: usize) -> usize {
    let len = p.len();
    if i >= len {
        return len;
    }
    let c = p[i];
    i += 1;
    match c {
        b'%' => (i + 1).min(len),
        b'[' => {
            if p.get(i) == Some(&b'^') {
                i += 1;
            }
            loop {
                if i >= len {
                    return len;
                }
                let c = p[i];
                i += 1;
                if c == b'%' {
                    i += 1;
                }
                if p.get(i) == Some(&b']') {
                    return (i + 1).min(len);
                }
            }
        }
        _ => i,
    }
}

fn longest_run(subject: &[u8], class: &[u8]) -> u64 {
    let mut best = 0u64;
    let mut cur = 0u64;
    for &c in subject {
        if single_match(c, class) {
            cur += 1;
            best = best.max(cur);
        } else {
            cur = 0;
        }
    }
    best
}

/// Lua's `singlematch` for one class (`.`, `%a`, `[set]`, or a literal).
fn single_match(c: u8, class: &[u8]) -> bool {
    match class {
        [b'.'] => true,
        [b'%', k] => class_match(c, *k),
        [b'[', ..] => bracket_match(c, class),
        [lit, ..] => c == *lit,
        [] => false,
    }
}

fn class_match(c: u8, k: u8) -> bool {
    let res = match k.to_ascii_lowercase() {
        b'a' => c.is_ascii_alphabetic(),
        b'c' => c.is_ascii_control(),
        b'd' => c.is_ascii_digit(),
        b'g' => c.is_ascii_graphic(),
        b'l' => c.is_ascii_lowercase(),
        b'p' => c.is_ascii_punctuation(),
        b's' => matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r'),
        b'u' => c.is_ascii_uppercase(),
        b'w' => c.is_ascii_alphanumeric(),
        b'x' => c.is_ascii_hexdigit(),
        _ => return c == k,
    };
    if k.is_ascii_uppercase() {
        !res
    } else {
        res
    }
}

/// Lua's `matchbracketclass`; `class` is `[...]` including the brackets.
fn bracket_match(c: u8, class: &[u8]) -> bool {
    let end = class.len().saturating_sub(1);
    let mut i = 1;
    let mut yes = true;
    if class.get(1) == Some(&b'^') {
        yes = false;
        i = 2;
    }
    while i < end {
        if class[i] == b'%' && i + 1 < end {
            if class_match(c, class[i + 1]) {
                return yes;
            }
            i += 2;
        } else if i + 2 < end && class[i + 1] == b'-' {
            if class[i] <= c && c <= class[i + 2] {
                return yes;
            }
            i += 3;
        } else {
            if class[i] == c {
                return yes;
            }
            i += 1;
        }
    }
    !yes
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: u64 = 10_000_000;

    #[test]
    fn bomb_is_over_any_cap() {
        let subject = vec![b'a'; 100_000];
        let pattern = "a*".repeat(40) + "b";
        assert!(pattern_work(&subject, pattern.as_bytes(), true, CAP) > CAP);
        let small = vec![b'a'; 2000];
        assert!(pattern_work(&small, b"a*a*b", true, CAP) > CAP);
    }

    #[test]
    fn ordinary_patterns_are_cheap() {
        let subject = "key=value; ".repeat(5000);
        let s = subject.as_bytes();
        assert!(pattern_work(s, b"(%w+)=(%w+)", true, CAP) < 1_000_000);
        assert!(pattern_work(s, b"[^;]+", true, CAP) < 100_000);
        assert!(pattern_work(s, b"^(.-)$", true, CAP) < 100_000);
        assert!(pattern_work(s, b"%s+$", true, CAP) < CAP);
        // Linear patterns on a big subject stay under the cap.
        let big = vec![b'x'; 8 << 20];
        assert!(pattern_work(&big, b".", true, CAP) <= CAP);
    }

    #[test]
    fn classes_follow_lua() {
        assert!(single_match(b']', b"[]]"));
        assert!(single_match(b'b', b"[a-c]"));
        assert!(!single_match(b'b', b"[^a-c]"));
        assert!(single_match(b'7', b"[%d]"));
        assert!(!single_match(b' ', b"%S"));
        assert_eq!(class_end(b"[%]]x", 0), 4);
        assert_eq!(class_end(b"%ax", 0), 2);
    }
}
