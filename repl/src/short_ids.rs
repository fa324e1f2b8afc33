//! Ids in printed values, shortened but unambiguous.
//!
//! A 40-hex-digit string inside a printed table (`{ id = "3fa2…", ... }`)
//! is cut to its shortest prefix of at least [`MIN_DIGITS`] digits that no
//! other id in sight shares: neither another id in the same output nor an
//! id the node knows (its own and its routing table's). The cut is marked
//! with `…` and loses its quotes, so it cannot be mistaken for a string.
//!
//! Only the interactive console shortens, and only inside tables: a value
//! that is itself an id (`kbr.id().id`) prints whole, so a full id is one
//! field access away, and `peerlet repl -e` prints everything whole, since
//! scripts pass ids on.

/// Digits kept at least.
pub const MIN_DIGITS: usize = 8;

const ID_DIGITS: usize = 40;

/// Shortens every quoted 40-hex string in `text` (see the module docs);
/// `known` are further ids that must stay distinguishable.
pub fn shorten(text: &str, known: &[String]) -> String {
    let found = quoted_ids(text);
    if found.is_empty() {
        return text.to_string();
    }
    let mut all: Vec<&str> = found
        .iter()
        .map(|&at| &text[at + 1..at + 1 + ID_DIGITS])
        .collect();
    all.extend(known.iter().map(String::as_str).filter(|k| is_id(k)));
    all.sort_unstable();
    all.dedup();
    let digits = |id: &str| {
        let i = all.binary_search(&id).expect("collected");
        let shared = |j: usize| common_prefix(id, all[j]);
        let before = if i > 0 { shared(i - 1) } else { 0 };
        let after = if i + 1 < all.len() { shared(i + 1) } else { 0 };
        (before.max(after) + 1).clamp(MIN_DIGITS, ID_DIGITS)
    };
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for at in found {
        let id = &text[at + 1..at + 1 + ID_DIGITS];
        out.push_str(&text[last..at]);
        let n = digits(id);
        out.push_str(&id[..n]);
        if n < ID_DIGITS {
            out.push('…');
        }
        last = at + ID_DIGITS + 2;
    }
    out.push_str(&text[last..]);
    out
}

/// Byte offsets of the opening quotes of `"<40 lowercase hex>"`.
fn quoted_ids(text: &str) -> Vec<usize> {
    let b = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i + ID_DIGITS + 1 < b.len() {
        if b[i] == b'"' && b[i + ID_DIGITS + 1] == b'"' && is_id(&text[i + 1..i + 1 + ID_DIGITS]) {
            found.push(i);
            i += ID_DIGITS + 2;
        } else {
            i += 1;
        }
    }
    found
}

fn is_id(s: &str) -> bool {
    s.len() == ID_DIGITS && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

fn common_prefix(a: &str, b: &str) -> usize {
    a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_cut_to_the_shortest_unambiguous_prefix() {
        let a = format!("{}{}", "3fa2b1c9d0", "1".repeat(30));
        let b = format!("{}{}", "3fa2b1c9d7", "2".repeat(30));
        let c = format!("{}{}", "77", "0".repeat(38));
        let text = format!(r#"{{ {{ id = "{a}" }}, {{ id = "{c}" }}, "not an id" }}"#);
        // `b` is known to the node: `a` must stay apart from it.
        let short = shorten(&text, &[b.clone(), "word".into()]);
        assert_eq!(
            short,
            r#"{ { id = 3fa2b1c9d0… }, { id = 77000000… }, "not an id" }"#
        );
        // A bare id (not quoted: a top-level value) stays whole.
        assert_eq!(shorten(&a, &[]), a);
        assert_eq!(shorten("", &[]), "");
        // Two equal ids are one id: eight digits do.
        let twice = format!(r#"{{ "{c}", "{c}" }}"#);
        assert_eq!(shorten(&twice, &[]), "{ 77000000…, 77000000… }");
    }
}
