//! lua/peerlet.d.lua declares exactly the host API a peerlet gets: every
//! host function is declared there, and every declared one exists.

use std::collections::BTreeSet;

use peerlet::chord::RoutingTable;
use peerlet::id::{AppId, Id};
use peerlet::peerlet::host::{self, HostState};
use peerlet::sandbox::{Limits, Sandbox};
use peerlet::wire::{AppType, NodeRef};

const TABLES: [&str; 6] = ["kbr", "peerlet", "timer", "clock", "log", "store"];

fn declared() -> BTreeSet<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("lua/peerlet.d.lua");
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("function ") {
            out.insert(rest.split('(').next().unwrap().to_string());
        }
        for t in TABLES {
            if let Some(field) = line.strip_prefix(&format!("{t}.")) {
                if let Some((name, _)) = field.split_once(" = ") {
                    out.insert(format!("{t}.{name}"));
                }
            }
        }
    }
    out
}

fn provided() -> BTreeSet<String> {
    let limits = Limits::default();
    let mut sandbox = Sandbox::new("api", &limits).unwrap();
    let me = NodeRef {
        id: Id::key("me"),
        addr: "127.0.0.1:1".parse().unwrap(),
    };
    let state = HostState::new(
        "api",
        AppId::derive(b"k", "api"),
        AppType::EndNode,
        &limits,
        std::rc::Rc::new(RoutingTable::new(me, 4)),
        None,
    );
    host::install(&mut sandbox, &state).unwrap();
    let g = sandbox.lua().globals();
    let mut out = BTreeSet::new();
    for t in TABLES {
        let table: mlua::Table = g.raw_get(t).unwrap();
        for pair in table.pairs::<String, mlua::Value>() {
            let (k, _) = pair.unwrap();
            out.insert(format!("{t}.{k}"));
        }
    }
    out
}

#[test]
fn every_host_function_is_declared_and_every_declared_one_exists() {
    let declared = declared();
    let provided = provided();
    let undeclared: Vec<_> = provided.difference(&declared).collect();
    let missing: Vec<_> = declared.difference(&provided).collect();
    assert!(
        undeclared.is_empty(),
        "host functions not in lua/peerlet.d.lua: {undeclared:?}"
    );
    assert!(
        missing.is_empty(),
        "declared in lua/peerlet.d.lua but not provided: {missing:?}"
    );
    assert!(provided.len() > 20, "{provided:?}");
}
