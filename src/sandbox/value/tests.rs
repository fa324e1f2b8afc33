use mlua::{Lua, Value};

use super::*;
use crate::sandbox::limits::Limits;

fn eval(lua: &Lua, code: &str) -> Value {
    lua.load(code).eval().unwrap()
}

fn kind(lua: &Lua, code: &str) -> ValueErrorKind {
    lua_to_cbor(&eval(lua, code), &Limits::default())
        .unwrap_err()
        .kind
}

fn round_trip(lua: &Lua, v: &Value) -> Value {
    let limits = Limits::default();
    let bytes = lua_to_cbor(v, &limits).unwrap();
    cbor_to_lua(lua, &bytes, &limits).unwrap()
}

#[test]
fn scalars_and_bytes_round_trip() {
    let lua = Lua::new();
    let v = eval(
        &lua,
        r#"return {1, -7, 2.5, true, false, "\0\255bytes", math.mininteger, 1/0}"#,
    );
    let back = round_trip(&lua, &v);
    let t = back.as_table().unwrap();
    assert_eq!(t.raw_len(), 8);
    assert_eq!(t.raw_get::<Value>(1).unwrap(), Value::Integer(1));
    assert_eq!(t.raw_get::<Value>(2).unwrap(), Value::Integer(-7));
    assert_eq!(t.raw_get::<Value>(3).unwrap(), Value::Number(2.5));
    assert_eq!(
        t.raw_get::<mlua::LuaString>(6).unwrap().as_bytes().as_ref(),
        b"\0\xffbytes"
    );
    assert_eq!(t.raw_get::<i64>(7).unwrap(), i64::MIN);
    assert_eq!(t.raw_get::<f64>(8).unwrap(), f64::INFINITY);
}

#[test]
fn maps_keep_their_key_types() {
    let lua = Lua::new();
    let v = eval(
        &lua,
        "return {a = 1, [10] = 'x', [1.5] = 'f', [true] = 'b', nested = {k = {}}}",
    );
    let back = round_trip(&lua, &v);
    let t = back.as_table().unwrap();
    assert_eq!(t.raw_get::<i64>("a").unwrap(), 1);
    assert_eq!(t.raw_get::<String>(10).unwrap(), "x");
    assert_eq!(t.raw_get::<String>(1.5).unwrap(), "f");
    assert_eq!(t.raw_get::<String>(true).unwrap(), "b");
    let nested: mlua::Table = t.raw_get("nested").unwrap();
    assert!(nested.raw_get::<mlua::Table>("k").is_ok());
}

#[test]
fn unsendable_values_are_named() {
    let lua = Lua::new();
    assert_eq!(
        kind(&lua, "return print"),
        ValueErrorKind::Unsendable("function")
    );
    assert_eq!(
        kind(&lua, "return {co = coroutine.create(print)}"),
        ValueErrorKind::Unsendable("coroutine")
    );
    assert_eq!(
        kind(&lua, "local t = {} t.self = t return t"),
        ValueErrorKind::Cycle
    );
    assert_eq!(
        kind(&lua, "return {[{}] = 1}"),
        ValueErrorKind::BadKey("table")
    );
    assert_eq!(
        kind(
            &lua,
            "local d = {} local t = d for _ = 1, 100 do t.n = {} t = t.n end return d"
        ),
        ValueErrorKind::TooDeep { limit: 32 }
    );
    let err = lua_to_cbor(
        &eval(&lua, "return {a = {b = {print}}}"),
        &Limits::default(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "a function cannot be sent (at value.a.b[1])"
    );
}

#[test]
fn shared_subtables_are_not_cycles() {
    let lua = Lua::new();
    let v = eval(&lua, "local s = {1} return {s, s}");
    assert!(lua_to_cbor(&v, &Limits::default()).is_ok());
}

#[test]
fn oversize_stops_early() {
    let lua = Lua::new();
    let v = eval(&lua, "return {big = string.rep('b', 8 * 1024 * 1024)}");
    assert_eq!(
        lua_to_cbor(&v, &Limits::default()).unwrap_err().kind,
        ValueErrorKind::TooLarge { limit: 64 << 10 }
    );
    // A DAG that doubles at each level is refused by size, quickly.
    let v = eval(
        &lua,
        "local t = {} for _ = 1, 30 do t = {t, t} end return t",
    );
    assert!(matches!(
        lua_to_cbor(&v, &Limits::default()).unwrap_err().kind,
        ValueErrorKind::TooLarge { .. }
    ));
}

#[test]
fn metamethods_are_never_run() {
    let lua = Lua::new();
    let v = eval(
        &lua,
        r#"local boom = function() error("metamethod ran") end
           return setmetatable({x = 1}, {__index = boom, __len = boom, __pairs = boom,
                                         __newindex = boom, __tostring = boom})"#,
    );
    let back = round_trip(&lua, &v);
    assert_eq!(back.as_table().unwrap().raw_get::<i64>("x").unwrap(), 1);
}

#[test]
fn malformed_input_is_refused() {
    let lua = Lua::new();
    let limits = Limits::default();
    let bad: &[&[u8]] = &[
        b"",
        b"\x9f\x01\xff",                         // indefinite array
        b"\xc1\x01",                             // tag
        b"\x1b\xff\xff\xff\xff\xff\xff\xff\xff", // u64 over i64
        b"\x9a\xff\xff\xff\xff",                 // array longer than the input
        b"\x5a\xff\xff\xff\xff",                 // string longer than the input
        b"\xa1\xf6\x01",                         // nil key
        b"\x01\x02",                             // trailing bytes
    ];
    for b in bad {
        let e = cbor_to_lua(&lua, b, &limits).unwrap_err();
        assert!(
            matches!(
                e.kind,
                ValueErrorKind::Malformed(_) | ValueErrorKind::BadKey(_)
            ),
            "{b:?}: {e}"
        );
    }
    let deep = [vec![0x81u8; 100], vec![0x01]].concat();
    assert_eq!(
        cbor_to_lua(&lua, &deep, &limits).unwrap_err().kind,
        ValueErrorKind::TooDeep { limit: 32 }
    );
    let text = cbor_to_lua(&lua, b"\x62hi", &limits).unwrap();
    assert_eq!(text.as_string().unwrap().as_bytes().as_ref(), b"hi");
    let half = cbor_to_lua(&lua, b"\xf9\x3e\x00", &limits).unwrap();
    assert_eq!(half, Value::Number(1.5));
}

#[test]
fn map_keys_decode_the_same_across_many_messages() {
    // More distinct keys than the decoder's key cache holds, short and long,
    // text and bytes, each decoded many times.
    let lua = Lua::new();
    let v = eval(
        &lua,
        r#"local t = {}
        for i = 1, 40 do t["k" .. i] = i end
        t[string.rep("long", 20)] = "long"
        t["\0\255"] = "bytes"
        return t"#,
    );
    for _ in 0..5 {
        let back = round_trip(&lua, &v);
        let t = back.as_table().unwrap();
        for i in 1..=40 {
            assert_eq!(t.raw_get::<i64>(format!("k{i}")).unwrap(), i);
        }
        assert_eq!(t.raw_get::<String>("long".repeat(20)).unwrap(), "long");
        assert_eq!(
            t.raw_get::<String>(mlua::Value::String(lua.create_string(b"\0\xff").unwrap()))
                .unwrap(),
            "bytes"
        );
        assert_eq!(t.pairs::<Value, Value>().count(), 42);
    }
}
