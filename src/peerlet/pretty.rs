//! Lua values as text for the console: what `1+1` or `kbr.id()` shows.
//!
//! Tables print with their keys sorted (array part first, then numbers,
//! then strings, then the rest), so the same table always prints the same;
//! a table met again on the path from the root prints as `<cycle>`, nesting
//! stops at [`MAX_DEPTH`], and the whole text at [`MAX_TEXT`] bytes. Only
//! raw access is used: printing never runs a script's metamethods.

use std::fmt::Write;

use mlua::{MultiValue, Table, Value};

/// Deeper tables print as `{...}`.
pub const MAX_DEPTH: usize = 8;
/// Text beyond this many bytes is cut, with a note.
pub const MAX_TEXT: usize = 64 * 1024;

/// The results of one console line, tab-separated; empty when there are none.
/// Top-level strings print as they are (so `-e` output fits in scripts),
/// nested ones quoted.
pub fn values(values: &MultiValue) -> String {
    let mut out = String::new();
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        match v {
            Value::String(s) => out.push_str(&s.to_string_lossy()),
            other => value(&mut out, other, 0, &mut Vec::new()),
        }
        if out.len() > MAX_TEXT {
            break;
        }
    }
    if out.len() > MAX_TEXT {
        let mut cut = MAX_TEXT;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str("\n... (output cut)");
    }
    out
}

fn value(out: &mut String, v: &Value, depth: usize, path: &mut Vec<usize>) {
    match v {
        Value::Nil => out.push_str("nil"),
        Value::Boolean(b) => write!(out, "{b}").unwrap_or(()),
        Value::Integer(n) => write!(out, "{n}").unwrap_or(()),
        Value::Number(n) => number(out, *n),
        Value::String(s) => write!(out, "{:?}", s.to_string_lossy()).unwrap_or(()),
        Value::Table(t) => table(out, t, depth, path),
        other => write!(out, "<{}>", other.type_name()).unwrap_or(()),
    }
}

fn number(out: &mut String, n: f64) {
    if n.is_finite() && n.fract() == 0.0 && n.abs() < 1e16 {
        write!(out, "{n:.1}").unwrap_or(())
    } else {
        write!(out, "{n}").unwrap_or(())
    }
}

/// Orders keys: the array part 1..n, other numbers, strings, the rest.
fn key_rank(k: &Value, len: usize) -> (u8, f64, String) {
    match k {
        Value::Integer(i) if *i >= 1 && (*i as usize) <= len => (0, *i as f64, String::new()),
        Value::Integer(i) => (1, *i as f64, String::new()),
        Value::Number(n) => (1, *n, String::new()),
        Value::String(s) => (2, 0.0, s.to_string_lossy()),
        other => (3, 0.0, format!("{other:?}")),
    }
}

fn table(out: &mut String, t: &Table, depth: usize, path: &mut Vec<usize>) {
    let ptr = t.to_pointer() as usize;
    if path.contains(&ptr) {
        out.push_str("<cycle>");
        return;
    }
    if depth >= MAX_DEPTH {
        out.push_str("{...}");
        return;
    }
    let len = t.raw_len();
    let mut entries: Vec<(Value, Value)> =
        t.pairs::<Value, Value>().filter_map(Result::ok).collect();
    if entries.is_empty() {
        out.push_str("{}");
        return;
    }
    entries.sort_by(|(a, _), (b, _)| {
        let (a, b) = (key_rank(a, len), key_rank(b, len));
        a.0.cmp(&b.0)
            .then(a.1.total_cmp(&b.1))
            .then_with(|| a.2.cmp(&b.2))
    });
    path.push(ptr);
    let mut items = Vec::with_capacity(entries.len());
    let mut used = out.len();
    for (k, v) in &entries {
        if used > MAX_TEXT {
            items.push("...".to_string());
            break;
        }
        let mut item = String::new();
        match k {
            Value::Integer(i) if *i >= 1 && (*i as usize) <= len => {}
            Value::String(s) if is_name(&s.to_string_lossy()) => {
                write!(item, "{} = ", s.to_string_lossy()).unwrap_or(())
            }
            other => {
                item.push('[');
                value(&mut item, other, depth + 1, path);
                item.push_str("] = ");
            }
        }
        value(&mut item, v, depth + 1, path);
        used += item.len() + 2;
        items.push(item);
    }
    path.pop();
    let flat = items.iter().map(String::len).sum::<usize>() + 2 * items.len();
    if flat <= 72 && items.iter().all(|i| !i.contains('\n')) {
        write!(out, "{{ {} }}", items.join(", ")).unwrap_or(());
        return;
    }
    let pad = "  ".repeat(depth + 1);
    out.push_str("{\n");
    for item in items {
        writeln!(out, "{pad}{item},").unwrap_or(());
    }
    write!(out, "{}}}", "  ".repeat(depth)).unwrap_or(());
}

/// Whether `s` can be written as `s = ...` in a table constructor.
fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlua::Lua;

    fn show(code: &str) -> String {
        let lua = Lua::new();
        values(&lua.load(code).eval::<MultiValue>().unwrap())
    }

    #[test]
    fn tables_print_with_sorted_keys_and_marked_cycles() {
        assert_eq!(show("return 1 + 1"), "2");
        assert_eq!(show("return 'hi', 1.5, nil"), "hi\t1.5\tnil");
        assert_eq!(
            show("return {b = 2, a = 'x', 10, 20, [99] = true}"),
            r#"{ 10, 20, [99] = true, a = "x", b = 2 }"#
        );
        assert_eq!(show("local t = {} t.me = t return t"), "{ me = <cycle> }");
        assert_eq!(show("return {}"), "{}");
        assert!(show("return {s = string.rep('x', 80)}").starts_with("{\n  s = "));
    }

    #[test]
    fn huge_tables_are_cut_quickly() {
        let started = std::time::Instant::now();
        let text = show("local t = {} for i = 1, 200000 do t[i] = i end return t");
        assert!(text.len() < MAX_TEXT + 100, "{}", text.len());
        assert!(
            text.ends_with("(output cut)"),
            "{}",
            &text[text.len() - 40..]
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
