//! The stripped standard library: what is removed, and the host halves of
//! the wrappers in `prelude.lua` that bound C functions.
//!
//! The state opens with `coroutine`, `table`, `string`, `utf8` and `math`
//! only. The base library still carries file access (`dofile`, `loadfile`),
//! code loading (`load`, which accepts bytecode) and the collector, so those
//! are removed here by hand; `print`/`warn` go to the node's log.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Mutex, OnceLock};

use mlua::chunk::ChunkMode;
use mlua::{Function, Lua, LuaOptions, LuaString, StdLib, Table, Value, Variadic};

use super::budget::{Budget, GRAIN};
use super::error::{script_location, WorkLimit};
use super::limits::Limits;
use super::pattern::pattern_work;

const PRELUDE: &str = include_str!("prelude.lua");

/// Compiled host chunks by the address and length of their source text.
type ChunksBySource = HashMap<(usize, usize), &'static [u8]>;

/// Host code compiled once per process, as a binary chunk: every sandbox
/// loads this instead of compiling the source again (the 300-line prelude
/// was most of a peerlet's start). Only the host's own `'static` sources
/// are compiled here; binary chunks from anywhere else are refused
/// (`Sandbox::load`). Debug information is kept, so errors still name the
/// host code's lines.
pub(crate) fn trusted_chunk(name: &'static str, source: &'static str) -> &'static [u8] {
    static CHUNKS: OnceLock<Mutex<ChunksBySource>> = OnceLock::new();
    let mut chunks = CHUNKS
        .get_or_init(Mutex::default)
        .lock()
        .expect("chunks lock");
    // One entry per static source text: a bounded set, leaked on purpose.
    let at = (source.as_ptr() as usize, source.len());
    chunks.entry(at).or_insert_with(|| {
        let lua = Lua::new_with(StdLib::NONE, LuaOptions::default()).expect("a bare Lua state");
        let bytes = lua
            .load(source)
            .set_name(name)
            .set_mode(ChunkMode::Text)
            .into_function()
            .expect("host code compiles")
            .dump(false);
        Box::leak(bytes.into_boxed_slice())
    })
}

/// The prelude's chunk name in tracebacks.
const PRELUDE_NAME: &str = "=[sandbox]";

/// Instructions charged for one log line, so a logging loop is bounded by the
/// budget like any other loop (1000 lines per upcall by default).
const LOG_COST: u64 = GRAIN as u64;
/// Longest log line kept; the rest is cut.
const LOG_LINE_BYTES: usize = 2048;
/// Most output one `string.format` conversion can make (Lua's own bound for
/// `%99.99f` is under this).
const FORMAT_ITEM_BYTES: u64 = 512;

/// What the host keeps from setting up a state.
pub(crate) struct Prelude {
    /// The value that marks a host call travelling up through coroutines.
    pub mark: Table,
    /// Weak set of the host's upcall threads, read by the coroutine wrappers.
    pub upcall_threads: Table,
    /// `make(prepare)` returns a Lua function that suspends its upcall.
    pub make_suspending: Function,
}

/// A fresh Lua state with only the safe libraries opened.
pub(crate) fn new_state() -> mlua::Result<Lua> {
    let libs = StdLib::COROUTINE | StdLib::TABLE | StdLib::STRING | StdLib::UTF8 | StdLib::MATH;
    Lua::new_with(libs, LuaOptions::default())
}

/// Strips the base library and runs the prelude. Call before any script code
/// and before the budget hook is armed.
pub(crate) fn install(
    lua: &Lua,
    name: &Rc<str>,
    limits: &Limits,
    budget: &Rc<Budget>,
) -> mlua::Result<Prelude> {
    let g = lua.globals();
    for unsafe_name in [
        "dofile",
        "loadfile",
        "load",
        "loadstring",
        "require",
        "module",
    ] {
        g.raw_set(unsafe_name, Value::Nil)?;
    }
    // Every error a host function raises makes mlua build a traceback, and
    // Lua names each function on it by searching the loaded modules' tables
    // (`_LOADED`, which holds `_G`): with a script's million globals, every
    // failed host call would walk them all. Nothing loads modules here (no
    // `require`), so the table can be empty and the search costs nothing.
    lua.set_named_registry_value("_LOADED", lua.create_table()?)?;

    let host = lua.create_table()?;
    let upcall_threads = lua.create_table()?;
    let weak = lua.create_table()?;
    weak.raw_set("__mode", "k")?;
    upcall_threads.set_metatable(Some(weak))?;
    host.raw_set("upcall_threads", &upcall_threads)?;

    let b = Rc::clone(budget);
    host.raw_set(
        "charge_coroutine",
        lua.create_function(move |lua, ()| b.charge(lua, GRAIN as u64))?,
    )?;
    let b = Rc::clone(budget);
    host.raw_set("killed", lua.create_function(move |_, ()| Ok(b.killed()))?)?;
    let metatables = lua.create_table()?;
    let weak_keys = lua.create_table()?;
    weak_keys.raw_set("__mode", "k")?;
    metatables.set_metatable(Some(weak_keys))?;
    budget.set_metatables(metatables.clone(), lua.create_function(|_, ()| Ok(()))?);
    host.raw_set("metatables", metatables)?;
    let flags = lua.create_table()?;
    flags.raw_set("killed", false)?;
    budget.set_flags(flags.clone());
    host.raw_set("flags", flags)?;
    let b = Rc::clone(budget);
    host.raw_set(
        "note_resume",
        lua.create_function(move |_, co: Value| {
            if let Value::Thread(co) = co {
                b.note_resume(&co);
            }
            Ok(())
        })?,
    )?;
    let b = Rc::clone(budget);
    host.raw_set(
        "aborted",
        lua.create_function(move |_, co: mlua::Thread| Ok(b.was_aborted(&co)))?,
    )?;
    host.raw_set("check_metatable", lua.create_function(check_metatable)?)?;
    host.raw_set(
        "memory_kib",
        lua.create_function(|lua, ()| Ok(lua.used_memory() as f64 / 1024.0))?,
    )?;
    let (b, peerlet) = (Rc::clone(budget), Rc::clone(name));
    host.raw_set(
        "log",
        lua.create_function(move |lua, (level, msg): (String, LuaString)| {
            b.charge(lua, LOG_COST)?;
            log(&peerlet, &level, &msg.as_bytes());
            Ok(())
        })?,
    )?;

    let max = limits.string_bytes as u64;
    host.raw_set(
        "check_rep",
        lua.create_function(move |lua, (s, n, sep): (Value, Value, Value)| {
            let (len, sep_len) = (str_len(lua, &s), str_len(lua, &sep));
            let n = match n {
                Value::Integer(n) => n as i128,
                Value::Number(f) if f.is_finite() => f as i128,
                _ => 0,
            };
            if n > 0 {
                let total = n * len as i128 + (n - 1) * sep_len as i128;
                too_big(lua, "string.rep", total, max)?;
            }
            Ok(())
        })?,
    )?;
    host.raw_set(
        "check_format",
        lua.create_function(move |lua, (fmt, args): (Value, Variadic<Value>)| {
            if let Some(fmt) = coerce(lua, &fmt) {
                too_big(
                    lua,
                    "string.format",
                    format_bound(lua, &fmt, &args) as i128,
                    max,
                )?;
            }
            Ok(())
        })?,
    )?;
    host.raw_set(
        "check_concat",
        lua.create_function(
            move |lua, (t, sep, i, j): (Value, Value, Option<i64>, Option<i64>)| {
                if let Value::Table(t) = t {
                    too_big(
                        lua,
                        "table.concat",
                        concat_bound(lua, &t, &sep, i, j) as i128,
                        max,
                    )?;
                }
                Ok(())
            },
        )?,
    )?;
    let most = limits.unpack_results as i128;
    host.raw_set(
        "check_unpack",
        lua.create_function(move |lua, (i, j): (Value, Value)| {
            if let (Some(i), Some(j)) = (number(&i), number(&j)) {
                if j as i128 - i as i128 + 1 > most {
                    return Err(mlua::Error::external(WorkLimit(format!(
                        "{}table.unpack: {} results is over the limit of {most}",
                        script_where(lua),
                        j as i128 - i as i128 + 1
                    ))));
                }
            }
            Ok(())
        })?,
    )?;
    host.raw_set("check_sort", lua.create_function(check_sort)?)?;
    let cap = limits.pattern_work;
    host.raw_set(
        "check_pattern",
        lua.create_function(move |lua, (fname, s, p): (String, Value, Value)| {
            let (Some(s), Some(p)) = (coerce(lua, &s), coerce(lua, &p)) else {
                return Ok(());
            };
            let work = pattern_work(&s, &p, fname != "gmatch", cap);
            if work > cap {
                return Err(mlua::Error::external(WorkLimit(format!(
                    "{}string.{fname}: pattern too complex for a subject of {} bytes \
                     (over {cap} matching steps)",
                    script_where(lua),
                    s.len()
                ))));
            }
            Ok(())
        })?,
    )?;

    let mark = lua.create_table()?;
    let make_suspending: Function = lua
        .load(trusted_chunk(PRELUDE_NAME, PRELUDE))
        .set_name(PRELUDE_NAME)
        .set_mode(ChunkMode::Binary)
        .call((&mark, host))?;
    Ok(Prelude {
        mark,
        upcall_threads,
        make_suspending,
    })
}

fn check_metatable(lua: &Lua, mt: Value) -> mlua::Result<()> {
    if let Value::Table(mt) = mt {
        for (field, why) in [
            (
                "__gc",
                "finalizers run where the instruction budget cannot stop them",
            ),
            (
                "__close",
                "close handlers can run where the instruction budget cannot stop them",
            ),
            (
                "__mode",
                "weak tables can make the collector's work unbounded",
            ),
        ] {
            if !mt.raw_get::<Value>(field)?.is_nil() {
                return Err(mlua::Error::runtime(format!(
                    "{}setmetatable: metatables with `{field}` are not allowed in peerlets ({why})",
                    script_where(lua)
                )));
            }
        }
    }
    Ok(())
}

/// `table.sort` loops in C over `#t` elements read with `t[i]`; with `__len`
/// and a C function as `__index` that loop has no Lua instruction to count.
fn check_sort(lua: &Lua, t: Value) -> mlua::Result<()> {
    if let Value::Table(t) = t {
        if let Some(mt) = t.metatable() {
            if !mt.raw_get::<Value>("__len")?.is_nil() || !mt.raw_get::<Value>("__index")?.is_nil()
            {
                return Err(mlua::Error::runtime(format!(
                    "{}table.sort: tables with `__len` or `__index` metamethods \
                     cannot be sorted in a peerlet",
                    script_where(lua)
                )));
            }
        }
    }
    Ok(())
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        _ => None,
    }
}

fn too_big(lua: &Lua, what: &str, total: i128, max: u64) -> mlua::Result<()> {
    if total > max as i128 {
        return Err(mlua::Error::MemoryError(format!(
            "{}{what}: a result of {total} bytes is over the limit of {max} bytes",
            script_where(lua)
        )));
    }
    Ok(())
}

/// `chunk:line: ` of the nearest peerlet line on the stack, or empty.
fn script_where(lua: &Lua) -> String {
    script_location(lua, 1)
        .map(|at| format!("{at}: "))
        .unwrap_or_default()
}

/// The bytes of a string or number argument as Lua would see them; `None`
/// for other types (the C function then raises its own error).
fn coerce(lua: &Lua, v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Integer(_) | Value::Number(_) => lua
            .coerce_string(v.clone())
            .ok()
            .flatten()
            .map(|s| s.as_bytes().to_vec()),
        _ => None,
    }
}

fn str_len(lua: &Lua, v: &Value) -> u64 {
    match v {
        Value::String(s) => s.as_bytes().len() as u64,
        Value::Integer(_) | Value::Number(_) => coerce(lua, v).map_or(0, |b| b.len() as u64),
        _ => 0,
    }
}

/// An upper bound on `string.format(fmt, args...)`'s length.
fn format_bound(lua: &Lua, fmt: &[u8], args: &[Value]) -> u64 {
    let mut total = fmt.len() as u64;
    let mut next_arg = 0;
    let mut i = 0;
    while i < fmt.len() {
        if fmt[i] != b'%' {
            i += 1;
            continue;
        }
        i += 1;
        if fmt.get(i) == Some(&b'%') {
            i += 1;
            continue;
        }
        while i < fmt.len() && b"-+ #0123456789.".contains(&fmt[i]) {
            i += 1;
        }
        let arg = args.get(next_arg);
        next_arg += 1;
        let len = arg.map_or(0, |a| str_len(lua, a));
        total += match fmt.get(i) {
            Some(b's') if matches!(arg, Some(Value::String(_))) => len + FORMAT_ITEM_BYTES,
            Some(b'q') => 4 * len + FORMAT_ITEM_BYTES,
            _ => FORMAT_ITEM_BYTES,
        };
        i += 1;
    }
    total
}

/// An upper bound on `table.concat(t, sep, i, j)` from raw reads, stopping at
/// the first element that is not a string or number (the C call then errors,
/// or runs metamethods, which the budget and memory limit cover).
fn concat_bound(lua: &Lua, t: &Table, sep: &Value, i: Option<i64>, j: Option<i64>) -> u64 {
    let sep_len = str_len(lua, sep);
    let (i, j) = (i.unwrap_or(1), j.unwrap_or(t.raw_len() as i64));
    let mut total = 0u64;
    let mut k = i;
    while k <= j {
        let len = match t.raw_get::<Value>(k) {
            Ok(v @ (Value::String(_) | Value::Integer(_) | Value::Number(_))) => str_len(lua, &v),
            _ => break,
        };
        total = total.saturating_add(len);
        if k > i {
            total = total.saturating_add(sep_len);
        }
        k += 1;
    }
    total
}

fn log(peerlet: &str, level: &str, msg: &[u8]) {
    let cut = &msg[..msg.len().min(LOG_LINE_BYTES)];
    let text = String::from_utf8_lossy(cut);
    match level {
        "warn" => tracing::warn!(target: "peerlet", peerlet, "{text}"),
        _ => tracing::info!(target: "peerlet", peerlet, "{text}"),
    }
}
