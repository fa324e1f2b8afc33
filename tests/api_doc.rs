//! docs/api.md documents exactly the API lua/peerlet.d.lua declares: every
//! declared host function, field and upcall has a heading there with the
//! same parameters, the page names nothing undeclared, and its limits table
//! shows the defaults a node really starts with.

#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::path::Path;

use peerlet::sandbox::Limits;

fn read(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The parameter names of `fun(a: T, b?: U): R` (from just after `fun(`).
fn fun_params(after_paren: &str) -> Vec<String> {
    let mut depth = 0;
    let mut params = Vec::new();
    let mut current = String::new();
    for c in after_paren.chars() {
        match c {
            '(' | '{' | '[' | '<' => depth += 1,
            ')' if depth == 0 => break,
            ')' | '}' | ']' | '>' => depth -= 1,
            ',' if depth == 0 => {
                params.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    params.push(current);
    params
        .iter()
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let name = p.split(':').next().unwrap().trim();
            name.trim_end_matches('?').to_string()
        })
        .collect()
}

/// Signatures declared in peerlet.d.lua: `kbr.route(key, msg, opts)`,
/// fields as `peerlet.name`, upcalls (fields of the Peerlet class) as
/// `deliver(key, msg, from)`.
fn declared() -> BTreeSet<String> {
    let text = read("lua/peerlet.d.lua");
    let mut out = BTreeSet::new();
    let mut in_peerlet_class = false;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("function ") {
            let (name, args) = rest.split_once('(').unwrap();
            let args = args.split_once(')').unwrap().0;
            out.insert(format!("{name}({args})"));
        } else if let Some((lhs, _)) = line.split_once(" = nil") {
            if !lhs.contains(' ') {
                out.insert(lhs.to_string());
            }
        }
        if line.starts_with("---@class ") {
            in_peerlet_class = line == "---@class Peerlet";
        } else if !line.starts_with("---@field") {
            in_peerlet_class = false;
        }
        if let (true, Some(field)) = (in_peerlet_class, line.strip_prefix("---@field ")) {
            let (name, ty) = field.split_once(' ').unwrap();
            let ty = ty.trim_start();
            let params = ty
                .strip_prefix("fun(")
                .unwrap_or_else(|| panic!("upcall `{name}` is not declared as a fun(...)"));
            out.insert(format!(
                "{}({})",
                name.trim_end_matches('?'),
                fun_params(params).join(", ")
            ));
        }
    }
    out
}

/// The headings of docs/api.md that name an API item: "### `...`".
fn documented(doc: &str) -> BTreeSet<String> {
    doc.lines()
        .filter_map(|l| l.strip_prefix("### `"))
        .map(|l| l.trim_end().trim_end_matches('`').to_string())
        .collect()
}

#[test]
fn api_doc_names_exactly_what_peerlet_d_lua_declares() {
    let declared = declared();
    let documented = documented(&read("docs/api.md"));
    let undocumented: Vec<_> = declared.difference(&documented).collect();
    let undeclared: Vec<_> = documented.difference(&declared).collect();
    assert!(
        undocumented.is_empty(),
        "declared in lua/peerlet.d.lua but without a \"### `signature`\" heading in docs/api.md: {undocumented:?}"
    );
    assert!(
        undeclared.is_empty(),
        "docs/api.md documents what lua/peerlet.d.lua does not declare: {undeclared:?}"
    );
    for want in [
        "deliver(key, msg, from)",
        "forward(key, msg, next_hop)",
        "save()",
        "kbr.route(key, msg, opts)",
        "peerlet.lookup(key, app)",
        "peerlet.name",
        "store.keys()",
    ] {
        assert!(declared.contains(want), "{want} in {declared:?}");
    }
}

/// `Limits { a: 1, b: 1s }` as (field, value) pairs.
fn limits_fields(limits: &Limits) -> BTreeSet<(String, String)> {
    let debug = format!("{limits:?}");
    let inner = debug
        .strip_prefix("Limits { ")
        .and_then(|s| s.strip_suffix(" }"))
        .unwrap_or_else(|| panic!("unexpected Debug form: {debug}"));
    inner
        .split(", ")
        .map(|kv| {
            let (k, v) = kv.split_once(": ").unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

#[test]
fn api_doc_limits_table_matches_the_defaults() {
    let doc = read("docs/api.md");
    let section = doc.split("## Limits").nth(1).expect("a Limits section");
    let rows: BTreeSet<(String, String)> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (
                cells[0].trim_end_matches('`').to_string(),
                cells[1].to_string(),
            )
        })
        .collect();
    let actual = limits_fields(&Limits::default());
    assert_eq!(
        rows, actual,
        "docs/api.md's limits table (left) differs from Limits::default() (right)"
    );
}
