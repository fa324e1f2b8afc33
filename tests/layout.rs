//! The layout the design promises (docs/design.md, "Layout"), checked on the
//! source text: no file under src/ imports another that imports it back,
//! directly or through a loop; the routing core's names stay behind the KBR
//! seam; the Chord core stays small; the sandbox and the package checks do
//! not reach up into the runtime.
//!
//! An import is any path a file names that starts with `crate::`, `super::`
//! or `self::` (in `use` trees and in code), resolved to the file of the
//! deepest module it names. Declaring a module (`mod x;`) is not an import.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every .rs file under src/, by its module path (`crate::a::b`).
fn modules() -> BTreeMap<Vec<String>, PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let root = src_dir();
    let mut files = Vec::new();
    walk(&root, &mut files);
    let mut map = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&root).unwrap();
        let mut parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let last = parts.pop().unwrap();
        let stem = last.trim_end_matches(".rs");
        if !matches!(stem, "mod" | "lib" | "main") {
            parts.push(stem.to_string());
        }
        if stem == "main" {
            parts = vec!["<main>".into()];
        }
        map.insert(parts, file);
    }
    map
}

/// The source without comments and string literals, and where its inline
/// `mod tests {` block starts (paths after it with `super::` mean the file).
fn code_of(text: &str) -> (String, usize) {
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                i += 1;
            }
            i += 2;
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && b.get(i + 2) == Some(&b'\'') {
            i += 3; // a char literal such as '{'
        } else if b[i] == b'\'' && b.get(i + 1) == Some(&b'\\') {
            i += 2;
            while i < b.len() && b[i] != b'\'' {
                i += 1;
            }
            i += 1;
        } else {
            out.push(if b[i].is_ascii() { b[i] as char } else { ' ' });
            i += 1;
        }
    }
    // `pub(in crate::x)` names who may see an item, not what it uses.
    while let Some(at) = out.find("pub(in ") {
        let end = at + out[at..].find(')').unwrap_or(out.len() - at);
        out.replace_range(at..=end, "pub");
    }
    let tests_at = out.find("mod tests {").unwrap_or(out.len());
    (out, tests_at)
}

/// Expands the paths a file names: `use a::{b, c::{d}}` gives `a::b`,
/// `a::c::d`; paths in code are taken as they stand.
fn paths_in(code: &str) -> Vec<(usize, Vec<String>)> {
    let mut found = Vec::new();
    let b = code.as_bytes();
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < b.len() {
        let starts = ["crate::", "super::", "self::"]
            .iter()
            .find(|p| code[i..].starts_with(**p) && (i == 0 || !is_ident(b[i - 1])));
        let Some(_) = starts else {
            i += 1;
            continue;
        };
        let begin = i;
        let mut prefix: Vec<String> = Vec::new();
        let mut word = String::new();
        loop {
            while i < b.len() && is_ident(b[i]) {
                word.push(b[i] as char);
                i += 1;
            }
            if code[i..].starts_with("::{") {
                prefix.push(std::mem::take(&mut word));
                let close = matching_brace(code, i + 2);
                for inner in split_top(&code[i + 3..close]) {
                    let mut sub: Vec<String> = prefix.clone();
                    for (_, p) in paths_in_tree(inner) {
                        let mut full = sub.clone();
                        full.extend(p);
                        found.push((begin, full));
                    }
                    sub.clear();
                }
                i = close + 1;
                break;
            } else if code[i..].starts_with("::") {
                prefix.push(std::mem::take(&mut word));
                i += 2;
            } else {
                prefix.push(std::mem::take(&mut word));
                found.push((begin, prefix));
                break;
            }
        }
    }
    found
}

/// Paths inside one element of a use tree (`b`, `c::{d, e}`, `self`).
fn paths_in_tree(tree: &str) -> Vec<(usize, Vec<String>)> {
    let tree = tree.trim();
    let tree = tree.split(" as ").next().unwrap().trim();
    if tree.is_empty() {
        return Vec::new();
    }
    if let Some(open) = tree.find("::{") {
        let head: Vec<String> = tree[..open]
            .split("::")
            .map(|s| s.trim().to_string())
            .collect();
        let close = matching_brace(tree, open + 2);
        let mut out = Vec::new();
        for inner in split_top(&tree[open + 3..close]) {
            for (_, p) in paths_in_tree(inner) {
                let mut full = head.clone();
                full.extend(p);
                out.push((0, full));
            }
        }
        return out;
    }
    let parts: Vec<String> = tree
        .split("::")
        .map(|s| s.trim().to_string())
        .filter(|s| s != "self" && s != "*")
        .collect();
    vec![(0, parts)]
}

fn matching_brace(s: &str, open: usize) -> usize {
    let mut depth = 0;
    for (k, c) in s[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return open + k;
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced use tree");
}

fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (k, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..k]);
                start = k + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// The module a path names, relative to `here` (a file's module path and
/// whether that file is a `mod.rs`-like directory module).
fn resolve(
    here: &[String],
    path: &[String],
    in_tests: bool,
    mods: &BTreeMap<Vec<String>, PathBuf>,
) -> Option<Vec<String>> {
    let mut base: Vec<String> = here.to_vec();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        Some("super") => {
            let mut first = true;
            while rest.first().map(String::as_str) == Some("super") {
                if !(first && in_tests) {
                    base.pop()?;
                }
                first = false;
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    let mut best = base.clone();
    let mut cur = base;
    for seg in rest {
        cur.push(seg.clone());
        if mods.contains_key(&cur) {
            best = cur.clone();
        } else {
            break;
        }
    }
    Some(best)
}

/// Writes paths that start at a child module (`use table::X`, `timers::T`)
/// as `self::table::X`, so that they are seen as imports too.
fn children_as_self(code: &str, here: &[String], mods: &BTreeMap<Vec<String>, PathBuf>) -> String {
    let children: Vec<&String> = mods
        .keys()
        .filter(|m| m.len() == here.len() + 1 && m.starts_with(here))
        .map(|m| m.last().unwrap())
        .collect();
    let mut out = String::with_capacity(code.len());
    let b = code.as_bytes();
    let mut i = 0;
    'outer: while i < b.len() {
        let boundary = i == 0
            || !(b[i - 1].is_ascii_alphanumeric()
                || b[i - 1] == b'_'
                || b[i - 1] == b':'
                || b[i - 1] == b'{');
        if boundary {
            for child in &children {
                let pat = format!("{child}::");
                if code[i..].starts_with(&pat) {
                    out.push_str("self::");
                    out.push_str(&pat);
                    i += pat.len();
                    continue 'outer;
                }
            }
        }
        out.push(b[i] as char);
        i += 1;
    }
    out
}

/// Edges between files: which module files each file imports.
fn imports() -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let mods = modules();
    let mut edges = BTreeMap::new();
    for (here, file) in &mods {
        let text = std::fs::read_to_string(file).unwrap();
        let (code, tests_at) = code_of(&text);
        let code = children_as_self(&code, here, &mods);
        let mut to = BTreeSet::new();
        for (at, path) in paths_in(&code) {
            if let Some(target) = resolve(here, &path, at > tests_at, &mods) {
                if &target != here && !target.is_empty() {
                    to.insert(target);
                }
            }
        }
        edges.insert(here.clone(), to);
    }
    edges
}

fn name(m: &[String]) -> String {
    format!("crate::{}", m.join("::"))
}

#[test]
fn no_file_imports_one_that_imports_it_back() {
    let edges = imports();
    // Depth-first search for a path back to the start, from every file.
    let mut loops = BTreeSet::new();
    for start in edges.keys() {
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((at, path)) = stack.pop() {
            for next in edges.get(&at).into_iter().flatten() {
                if next == start {
                    let mut cycle: Vec<String> = path.iter().map(|m| name(m)).collect();
                    let min = (0..cycle.len()).min_by_key(|&k| cycle[k].clone()).unwrap();
                    cycle.rotate_left(min);
                    loops.insert(cycle.join(" -> "));
                } else if seen.insert(next.clone()) {
                    let mut p = path.clone();
                    p.push(next.clone());
                    stack.push((next.clone(), p));
                }
            }
        }
    }
    assert!(
        loops.is_empty(),
        "import loops between files under src/:\n{}",
        loops.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn routing_core_names_stay_behind_the_kbr_seam() {
    // Where `chord::` may be named: the core itself, the KBR layer over it,
    // the simulator that drives it, and the places a node is built.
    let allowed = |m: &[String]| {
        matches!(m.first().map(String::as_str), Some("chord" | "kbr" | "sim"))
            || m == ["node"]
            || m == ["cmd", "sim"]
    };
    let mut offenders = Vec::new();
    for (here, to) in imports() {
        if allowed(&here) {
            continue;
        }
        for target in to {
            if target.first().map(String::as_str) == Some("chord") {
                offenders.push(format!("{} imports {}", name(&here), name(&target)));
            }
        }
    }
    assert!(offenders.is_empty(), "{}", offenders.join("\n"));
}

#[test]
fn lower_layers_do_not_import_upper_ones() {
    // Layers, lowest first: a module may import its own layer and lower ones.
    let layer = |m: &[String]| match m.first().map(String::as_str) {
        Some("id" | "time") => 0,
        Some("wire" | "routing") => 1,
        Some("chord") => 2,
        Some("kbr" | "package") => 3,
        Some("sandbox") => 3,
        Some("net" | "peerlet") => 4,
        Some("sim" | "node") => 5,
        Some("control" | "web") => 6,
        _ => 7,
    };
    let mut offenders = Vec::new();
    for (here, to) in imports() {
        for target in to {
            let (a, b) = (layer(&here), layer(&target));
            let same_top = here.first() == target.first();
            if b > a && !same_top {
                offenders.push(format!(
                    "{} (layer {a}) imports {} (layer {b})",
                    name(&here),
                    name(&target)
                ));
            }
        }
    }
    assert!(offenders.is_empty(), "{}", offenders.join("\n"));
}

#[test]
fn sandbox_and_packages_are_separate_concepts() {
    // The package checks use no Lua; the sandbox knows nothing of packages,
    // the KBR layer or the runtime.
    let mut offenders = Vec::new();
    for (here, to) in imports() {
        let top = here.first().map(String::as_str);
        for target in &to {
            let t = target.first().map(String::as_str);
            let bad = match top {
                Some("sandbox") => {
                    matches!(t, Some("package" | "kbr" | "chord" | "peerlet" | "node"))
                }
                Some("package") => {
                    matches!(t, Some("sandbox" | "kbr" | "chord" | "peerlet" | "node"))
                }
                _ => false,
            };
            if bad {
                offenders.push(format!("{} imports {}", name(&here), name(target)));
            }
        }
        if top == Some("package") {
            let text = std::fs::read_to_string(&modules()[&here]).unwrap();
            if code_of(&text).0.contains("mlua") {
                offenders.push(format!("{} uses mlua", name(&here)));
            }
        }
    }
    assert!(offenders.is_empty(), "{}", offenders.join("\n"));
}

/// Lines of code: not blank, not only a comment, not in an inline test module.
fn code_lines(file: &Path) -> usize {
    let text = std::fs::read_to_string(file).unwrap();
    let body = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => &text[..],
    };
    body.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//"))
        .count()
}

#[test]
fn the_chord_core_stays_small() {
    let total: usize = modules()
        .iter()
        .filter(|(m, _)| m.first().map(String::as_str) == Some("chord"))
        .map(|(_, f)| code_lines(f))
        .sum();
    assert!(
        total <= 1500,
        "src/chord/ has {total} code lines (the design allows 1,500)"
    );
}
