//! Attacks beyond the hostile corpus (tests/hostile/): each one asserts the
//! sandbox's answer, and every test ends in bounded time because the budget
//! ends it, not a clock.

use std::cell::RefCell;
use std::rc::Rc;

use mlua::{MultiValue, Value};
use peerlet::sandbox::{cbor_to_lua, lua_to_cbor, Limits, Sandbox, SandboxError, UpcallOutcome};

/// Default limits, but with a wall-clock backstop far out of reach, so the
/// tests see the deterministic limits (instructions, memory) on any machine.
fn limits() -> Limits {
    Limits {
        upcall_time: std::time::Duration::from_secs(120),
        ..Limits::default()
    }
}

fn sandbox_with(src: &str, limits: &Limits) -> Sandbox {
    let mut sb = Sandbox::new("attack", limits).unwrap();
    sb.load("attack.lua", src.as_bytes()).unwrap();
    sb
}

fn sandbox(src: &str) -> Sandbox {
    sandbox_with(src, &limits())
}

/// A module with one upcall `go` whose body is `body`.
fn upcall(body: &str) -> String {
    format!("local P = {{}}\nfunction P.go(...)\n{body}\nend\nreturn P\n")
}

fn go(sb: &mut Sandbox) -> Result<MultiValue, SandboxError> {
    match sb.start_upcall("go", ())? {
        UpcallOutcome::Done(v) => Ok(v),
        UpcallOutcome::Suspended { .. } => panic!("unexpected suspension"),
    }
}

/// Runs `body` as an upcall in a fresh sandbox; the results as text
/// (`nil`, `true`, `42`, ...), since the sandbox is gone afterwards.
fn run(body: &str) -> Result<Vec<String>, SandboxError> {
    let mut sb = sandbox(&upcall(body));
    go(&mut sb).map(|values| values.iter().map(text).collect())
}

fn text(v: &Value) -> String {
    match v {
        Value::Nil => "nil".into(),
        Value::Boolean(b) => b.to_string(),
        Value::Integer(i) => i.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.to_string_lossy(),
        other => other.type_name().into(),
    }
}

fn assert_budget<T: std::fmt::Debug>(r: Result<T, SandboxError>) {
    match r {
        Err(SandboxError::Budget { .. }) => {}
        other => panic!("expected an instruction budget abort, got {other:?}"),
    }
}

fn assert_memory<T: std::fmt::Debug>(r: Result<T, SandboxError>) {
    match r {
        Err(SandboxError::Memory { .. }) => {}
        other => panic!("expected a memory abort, got {other:?}"),
    }
}

/// The sandbox still runs plain code after whatever happened.
fn assert_still_works(sb: &mut Sandbox) {
    let mut probe = Sandbox::new("probe", &limits()).unwrap();
    probe
        .load("probe.lua", b"return {go = function() return 1 + 1 end}")
        .unwrap();
    assert_eq!(go(&mut probe).unwrap()[0], Value::Integer(2));
    if !sb.is_stopped() {
        let f: mlua::Function = sb
            .lua()
            .load("return function() return 'ok' end")
            .eval()
            .unwrap();
        sb.module().unwrap().raw_set("probe", f).unwrap();
        let UpcallOutcome::Done(v) = sb.start_upcall("probe", ()).unwrap() else {
            panic!()
        };
        assert_eq!(text(&v[0]), "ok");
    }
}

#[test]
fn finalizers_are_refused() {
    let r = run(
        r#"local ok, err = pcall(setmetatable, {}, {__gc = function() while true do end end})
                   return ok, tostring(err)"#,
    )
    .unwrap();
    assert_eq!(r[0], "false");
    assert!(r[1].contains("`__gc`"), "{}", r[1]);
}

#[test]
fn close_handlers_and_weak_tables_are_refused_in_setmetatable() {
    for field in ["__close", "__mode"] {
        let r = run(&format!(
            "return pcall(setmetatable, {{}}, {{{field} = function() while true do end end}})"
        ))
        .unwrap();
        assert_eq!(r[0], "false", "{field} accepted");
    }
}

#[test]
fn a_close_handler_added_later_cannot_run_unhooked_in_an_aborted_coroutine() {
    let mut sb = sandbox(
        r#"local P = {}
        local co
        function P.arm()
          local mt = {}
          local obj = setmetatable({}, mt)
          mt.__close = function() while true do end end
          co = coroutine.create(function() local x <close> = obj while true do end end)
          coroutine.resume(co)
        end
        function P.close() return coroutine.close(co) end
        return P"#,
    );
    let err = sb.start_upcall("arm", ()).unwrap_err();
    assert!(matches!(err, SandboxError::Budget { .. }), "{err}");
    // The coroutine was stopped by a yield, so closing it runs the handler
    // with hooks on: the budget ends it.
    let err = sb.start_upcall("close", ()).unwrap_err();
    assert!(matches!(err, SandboxError::Budget { .. }), "{err}");
    assert_still_works(&mut sb);
}

#[test]
fn a_close_handler_added_later_cannot_run_unhooked_inside_a_c_callback() {
    // Inside a sort comparator the hook cannot yield, so it raises; mlua
    // closes the comparator's to-be-closed variable from inside the hook.
    let mut sb = sandbox(&upcall(
        r#"local mt = {}
        local obj = setmetatable({}, mt)
        mt.__close = function() while true do end end
        table.sort({3, 2, 1}, function(a, b) local x <close> = obj while true do end end)"#,
    ));
    assert_budget(go(&mut sb));
    assert_still_works(&mut sb);
    // The same from an xpcall handler and a gsub callback.
    assert_budget(run(r#"local mt = {}
        local obj = setmetatable({}, mt)
        mt.__close = function() while true do end end
        xpcall(error, function() local x <close> = obj while true do end end)"#));
    assert_budget(run(r#"local mt = {}
        local obj = setmetatable({}, mt)
        mt.__close = function() while true do end end
        ("abc"):gsub(".", function() for _ in next, {}, nil, obj do end while true do end end)"#));
}

#[test]
fn close_handlers_that_spin_are_hooked() {
    assert_budget(run(r#"local mt = {}
        local obj = setmetatable({}, mt)
        mt.__close = function() while true do end end
        do local x <close> = obj end"#));
    // The generic for's fourth value is to-be-closed too.
    assert_budget(run(r#"local mt = {}
        local obj = setmetatable({}, mt)
        mt.__close = function() while true do end end
        for _ in next, {}, nil, obj do end"#));
}

#[test]
fn xpcall_handlers_cannot_outlive_the_budget() {
    assert_budget(run(
        "xpcall(function() while true do end end, function(e) while true do end end)",
    ));
    assert_budget(run(
        "xpcall(function() error('x') end, function(e) while true do end end)",
    ));
    assert_budget(run(
        "while true do xpcall(function() while true do end end, function(e) return e end) end",
    ));
}

#[test]
fn nested_pcall_loops_end() {
    assert_budget(run(
        "while true do pcall(pcall, pcall, function() while true do end end) end",
    ));
    assert_budget(run(r#"while true do
          pcall(function()
            while true do pcall(function() while true do end end) end
          end)
        end"#));
}

#[test]
fn error_objects_with_spinning_tostring_are_bounded() {
    let mut sb = sandbox(&upcall(
        "error(setmetatable({}, {__tostring = function() while true do end end}))",
    ));
    assert_budget(go(&mut sb));
    assert_still_works(&mut sb);
    let r = run("error(setmetatable({}, {__tostring = function() return 'custom' end}))");
    let err = r.unwrap_err();
    assert!(err.to_string().contains("custom"), "{err}");
}

#[test]
fn the_string_metatable_is_out_of_reach() {
    let r = run(r#"local mt = getmetatable("")
        local ok = pcall(function() getmetatable("").__index = {} end)
        return mt, ok, ("abc"):upper(), ("a,b"):find(",", 1, true)"#)
    .unwrap();
    assert_eq!(r[0], "false");
    assert_eq!(r[1], "false");
    assert_eq!(r[2], "ABC");
    assert_eq!(r[3], "2");
}

#[test]
fn swapping_globals_does_not_unwrap_library_functions() {
    let r = run(r#"local leaked
        pcall = function(f, ...) leaked = f return true end
        table.concat = function() leaked = "concat" end
        local s = ("x"):rep(3)
        print("still logs")
        return leaked == nil, s"#)
    .unwrap();
    assert_eq!(r[0], "true");
    assert_eq!(r[1], "xxx");
}

#[test]
fn deep_recursion_ends_in_an_error() {
    let mut sb = sandbox(&upcall(
        "local function f(n) return 1 + f(n + 1) end return f(1)",
    ));
    assert!(go(&mut sb).is_err());
    assert_still_works(&mut sb);
    let r =
        run("local t = setmetatable({}, {__index = function(t, k) return t[k] end}) return t.x");
    let err = r.unwrap_err();
    assert!(err.to_string().contains("stack overflow"), "{err}");
}

#[test]
fn string_rep_is_bounded_before_the_call() {
    assert_memory(run("return string.rep('', 1e6, ('x'):rep(1e5))"));
    assert_memory(run("return ('x'):rep(1 << 40)"));
    let err = run("\n\nlocal s = ('x'):rep(1 << 30) return s").unwrap_err();
    assert!(err.to_string().contains("attack.lua:5:"), "{err}");
    assert_eq!(run("return #('ab'):rep(3, ',')").unwrap()[0], "8");
}

#[test]
fn a_huge_allocation_hits_the_memory_limit() {
    let limits = Limits {
        string_bytes: usize::MAX,
        ..limits()
    };
    let mut sb = sandbox_with(
        &upcall("return #string.rep('x', 100 * 1024 * 1024)"),
        &limits,
    );
    let baseline = sb.memory_used();
    assert_memory(go(&mut sb));
    assert!(sb.memory_used() < baseline + (64 << 10));
    assert_still_works(&mut sb);
}

#[test]
fn gsub_growth_hits_the_memory_limit() {
    let limits = Limits {
        memory_bytes: 2 << 20,
        ..limits()
    };
    let mut sb = sandbox_with(
        &upcall("return ('x'):rep(1e6):gsub('.', '%0%0%0')"),
        &limits,
    );
    assert_memory(go(&mut sb));
    assert_still_works(&mut sb);
}

#[test]
fn catching_memory_errors_in_a_loop_still_ends() {
    let mut sb = sandbox(&upcall(
        "local t = {} while true do pcall(function() t[#t + 1] = ('x'):rep(1000) .. #t end) end",
    ));
    assert_memory(go(&mut sb));
    assert_still_works(&mut sb);
}

#[test]
fn format_concat_and_unpack_are_bounded() {
    assert_memory(run(
        "local big = ('x'):rep(600000) return string.format('%s%s', big, big)",
    ));
    assert_memory(run(
        "local t = {} for i = 1, 200 do t[i] = ('y'):rep(10000) end return table.concat(t)",
    ));
    assert_memory(run(
        "return table.concat({'a', 'b'}, ('x'):rep(1 << 20) .. 'x')",
    ));
    let err = run("return table.unpack({}, 1, 1e7)").unwrap_err();
    assert!(matches!(err, SandboxError::Limit { .. }), "{err}");
    let r =
        run("return string.format('%5.1f|%s|%q', 1.25, 'a', 'b\\n'), table.concat({1, 2, 3}, '-')")
            .unwrap();
    assert_eq!(r[0], "  1.2|a|\"b\\\n\"");
    assert_eq!(r[1], "1-2-3");
}

#[test]
fn table_loops_run_under_the_budget() {
    assert_budget(run("table.move({}, 1, 1e12, 2)"));
    assert_budget(run(
        "table.insert(setmetatable({}, {__len = function() return 1e12 end}), 1, 'x')",
    ));
    assert_budget(run(
        "table.remove(setmetatable({}, {__len = function() return 1e12 end}), 1)",
    ));
    let err = run(
        "table.sort(setmetatable({}, {__len = function() return 2^31 - 2 end, __index = rawlen}))",
    )
    .unwrap_err();
    assert!(err.to_string().contains("table.sort"), "{err}");
}

#[test]
fn table_functions_keep_their_meaning() {
    let r = run(r##"local t = {1, 2, 3}
        table.insert(t, 4)
        table.insert(t, 1, 0)
        local removed = table.remove(t, 2)
        local last = table.remove(t)
        local moved = table.move({1, 2, 3}, 1, 3, 2)
        table.sort(t, function(a, b) return a > b end)
        return table.concat(t, ","), removed, last, table.concat(moved, ","), select("#", table.unpack(t))"##)
    .unwrap();
    assert_eq!(r[0], "3,2,0");
    assert_eq!(r[1], "1");
    assert_eq!(r[2], "4");
    assert_eq!(r[3], "1,1,2,3");
    assert_eq!(r[4], "3");
    let err = run("table.insert({}, 5, 'x')").unwrap_err();
    assert!(err.to_string().contains("position out of bounds"), "{err}");
}

#[test]
fn pattern_functions_keep_their_meaning_and_refuse_bombs() {
    let r = run(r##"local s = ("key=value; "):rep(3000)
        local n = 0
        for k, v in s:gmatch("(%w+)=(%w+)") do n = n + 1 end
        return n, s:find("value", 1, true), ("a1b2"):gsub("%d", "#"), ("x"):match("^(x)$")"##)
    .unwrap();
    assert_eq!(r[0], "3000");
    assert_eq!(r[1], "5");
    assert_eq!(r[2], "a#b#");
    assert_eq!(r[3], "x");
    let err = run("return (('a'):rep(2000)):find('a*a*b')").unwrap_err();
    assert!(matches!(err, SandboxError::Limit { .. }), "{err}");
    let err = run("return string.gsub(('a'):rep(5000), '.-.-.-b', '')").unwrap_err();
    assert!(matches!(err, SandboxError::Limit { .. }), "{err}");
    // A refusal is an ordinary error the peerlet may handle.
    let r = run("return pcall(string.match, ('a'):rep(5000), 'a-a-b')").unwrap();
    assert_eq!(r[0], "false");
}

#[test]
fn coroutine_churn_is_charged() {
    assert_budget(run(
        "while true do coroutine.wrap(function() for i = 1, 900 do end end)() end",
    ));
}

#[test]
fn logging_is_charged() {
    assert_budget(run("for i = 1, 1e7 do print(i) end"));
}

#[test]
fn the_upcall_thread_is_not_the_scripts_to_touch() {
    let r = run(r#"local co, main = coroutine.running()
        local a = pcall(coroutine.close, co)
        local b = pcall(coroutine.resume, co)
        local c = pcall(coroutine.yield, 1)
        local inner = coroutine.wrap(function() return coroutine.isyieldable(), select(2, coroutine.running()) end)
        local y, m = inner()
        return main, a, b, c, coroutine.isyieldable(), y, m"#)
    .unwrap();
    assert_eq!(
        r,
        ["true", "false", "false", "false", "false", "true", "false"]
    );
}

#[test]
fn script_coroutines_yield_as_usual() {
    let r = run(r#"local gen = coroutine.wrap(function() for i = 1, 3 do coroutine.yield(i) end return "done" end)
        local co = coroutine.create(function(a) local b = coroutine.yield(a + 1) return b * 2 end)
        local _, x = coroutine.resume(co, 1)
        local _, y = coroutine.resume(co, 10)
        local ok, err = coroutine.resume(co)
        return gen(), gen(), gen(), gen(), x, y, ok, coroutine.status(co)"#)
    .unwrap();
    assert_eq!(r[0], "1");
    assert_eq!(r[2], "3");
    assert_eq!(r[3], "done");
    assert_eq!(r[4], "2");
    assert_eq!(r[5], "20");
    assert_eq!(r[6], "false");
    assert_eq!(r[7], "dead");
}

#[test]
fn values_handed_to_the_host_are_read_raw() {
    let mut sb = sandbox(&upcall(
        r#"local boom = function() error("metamethod ran") end
           send(setmetatable({1, 2}, {__index = boom, __len = boom, __pairs = boom}))"#,
    ));
    let sent: Rc<RefCell<Vec<Vec<u8>>>> = Rc::default();
    let s = Rc::clone(&sent);
    let sb_limits = sb.limits().clone();
    let send = sb
        .lua()
        .create_function(move |_, v: Value| {
            s.borrow_mut()
                .push(lua_to_cbor(&v, &sb_limits).map_err(mlua::Error::external)?);
            Ok(())
        })
        .unwrap();
    sb.lua().globals().raw_set("send", send).unwrap();
    go(&mut sb).unwrap();
    let lua = mlua::Lua::new();
    let back = cbor_to_lua(&lua, &sent.borrow()[0], &limits()).unwrap();
    assert_eq!(back.as_table().unwrap().raw_len(), 2);
}

#[test]
fn collectgarbage_only_counts() {
    let r = run("return type(collectgarbage('count')), pcall(collectgarbage), pcall(collectgarbage, 'stop')")
        .unwrap();
    assert_eq!(r[0], "number");
    assert_eq!(r[1], "false");
}

#[test]
fn loads_are_checked() {
    let mut sb = Sandbox::new("bad", &limits()).unwrap();
    let err = sb.load("bad.lua", b"return 42").unwrap_err();
    assert!(err.to_string().contains("must return a table"), "{err}");
    let mut sb = Sandbox::new("bad", &limits()).unwrap();
    let err = sb.load("bad.lua", b"local x = \n\n )").unwrap_err();
    assert!(matches!(err, SandboxError::Load { .. }), "{err}");
    assert!(err.to_string().contains("bad.lua:3"), "{err}");
    let mut sb = Sandbox::new("twice", &limits()).unwrap();
    sb.load("a.lua", b"return {}").unwrap();
    assert!(sb.load("a.lua", b"return {}").is_err());
    assert!(matches!(
        sb.start_upcall("missing", ()),
        Err(SandboxError::NoUpcall { .. })
    ));
    assert!(!sb.has_upcall("missing"));
}

#[test]
fn runtime_errors_are_not_strikes() {
    let mut sb = sandbox(&upcall("error('boom')"));
    for _ in 0..5 {
        let err = go(&mut sb).unwrap_err();
        assert_eq!(
            err.to_string(),
            "peerlet `attack`: error in go(): attack.lua:3: boom"
        );
    }
    assert_eq!(sb.aborts(), 0);
    assert!(!sb.is_stopped());
}

#[test]
fn tostring_metamethods_called_from_c_are_bounded() {
    assert_budget(run(
        "print(setmetatable({}, {__tostring = function() while true do end end}))",
    ));
    assert_budget(run(
        "return string.format('%s', setmetatable({}, {__tostring = function() while true do end end}))",
    ));
    assert_budget(run(
        "for _ in ipairs(setmetatable({}, {__index = function() while true do end end})) do end",
    ));
}

#[test]
fn a_stopped_coroutine_resumed_later_is_budgeted_again() {
    let mut sb = sandbox(
        r#"local P = {}
        local co
        function P.arm()
          co = coroutine.create(function() while true do end end)
          coroutine.resume(co)
        end
        function P.again() return coroutine.resume(co) end
        return P"#,
    );
    assert_budget(sb.start_upcall("arm", ()));
    assert_budget(sb.start_upcall("again", ()));
    assert!(sb.is_stopped() || sb.aborts() == 2);
}

#[test]
fn coroutine_nesting_and_load_time_memory_end_in_errors() {
    let err = run(
        "local function nest(n) return coroutine.wrap(function() return nest(n + 1) end)() end return nest(1)",
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            SandboxError::Runtime { .. } | SandboxError::Memory { .. }
        ),
        "{err}"
    );
    let mut sb = Sandbox::new("hoarder", &limits()).unwrap();
    let err = sb
        .load(
            "hoarder.lua",
            b"local t = {} for i = 1, 1e7 do t[i] = {i} end return {}",
        )
        .unwrap_err();
    assert!(matches!(err, SandboxError::Memory { .. }), "{err}");
    assert!(sb.module().is_none());
}

#[test]
fn memory_pressure_cannot_buy_unbounded_collections() {
    // Live data just under the pressure line, and garbage churned on top:
    // each forced collection is charged, so the budget ends the upcall.
    let limits = Limits {
        instructions: 5_000_000,
        ..Limits::default()
    };
    let mut sb = sandbox_with(
        &upcall(
            r#"local keep = {}
            for i = 1, 60000 do keep[i] = {i} end
            while true do local g = ('x'):rep(600000) end"#,
        ),
        &limits,
    );
    let err = go(&mut sb).unwrap_err();
    assert!(err.is_abort(), "{err}");
    assert_still_works(&mut sb);
}

#[test]
fn the_wall_clock_backstop_ends_what_instructions_do_not_count() {
    let limits = Limits {
        instructions: u64::MAX,
        upcall_time: std::time::Duration::ZERO,
        ..Limits::default()
    };
    let mut sb = sandbox_with(&upcall("while true do end"), &limits);
    let err = go(&mut sb).unwrap_err();
    assert!(matches!(err, SandboxError::Time { .. }), "{err}");
    assert!(err.to_string().contains("at attack.lua:3"), "{err}");
}

#[test]
fn a_c_callback_resuming_a_coroutine_in_a_loop_still_ends() {
    // The comparator cannot yield; the coroutine it keeps resuming can. Both
    // must stop.
    assert_budget(run(
        r#"local co = coroutine.wrap(function() while true do coroutine.yield() end end)
        table.sort({3, 2, 1}, function(a, b) while true do co() end end)"#,
    ));
    assert_budget(run(
        r#"local co = coroutine.create(function() while true do end end)
        table.sort({3, 2, 1}, function(a, b) while true do coroutine.resume(co) end end)"#,
    ));
}

/// Upcall threads are reused when an upcall returns cleanly; a thread kept
/// from an earlier upcall is still the host's, never the script's, and a
/// thread the budget stopped (or an error ended) is never run again.
#[test]
fn upcall_threads_kept_from_earlier_upcalls_stay_out_of_reach() {
    let mut sb = sandbox(
        r#"local P = {}
        local seen = {}
        function P.keep() seen[#seen + 1] = coroutine.running() end
        function P.spin() seen[#seen + 1] = coroutine.running() while true do end end
        function P.fail() seen[#seen + 1] = coroutine.running() error("no") end
        function P.poke()
          local me = coroutine.running()
          local out = {}
          for i, co in ipairs(seen) do
            out[i] = table.concat({
              tostring(pcall(coroutine.resume, co)),
              tostring(pcall(coroutine.close, co)),
              coroutine.status(co),
              tostring(rawequal(co, me)),
            }, ",")
          end
          return table.concat(out, " ")
        end
        return P"#,
    );
    go_named(&mut sb, "keep");
    go_named(&mut sb, "keep");
    assert_budget(sb.start_upcall("spin", ()));
    assert!(matches!(
        sb.start_upcall("fail", ()),
        Err(SandboxError::Runtime { .. })
    ));
    let UpcallOutcome::Done(v) = sb.start_upcall("poke", ()).unwrap() else {
        panic!()
    };
    let seen: Vec<String> = text(&v[0]).split(' ').map(String::from).collect();
    assert_eq!(seen.len(), 4);
    // Whether or not a thread was reused, the script can neither resume nor
    // close any of them.
    assert!(
        seen.iter().all(|s| s.starts_with("false,false,")),
        "{seen:?}"
    );
    // The stopped and the failed threads were not reused for `poke`.
    assert!(seen[2].ends_with(",false"), "{seen:?}");
    assert!(seen[3].ends_with(",false"), "{seen:?}");
    assert_still_works(&mut sb);
}

fn go_named(sb: &mut Sandbox, name: &str) {
    match sb.start_upcall(name, ()).unwrap() {
        UpcallOutcome::Done(_) => {}
        UpcallOutcome::Suspended { .. } => panic!("unexpected suspension"),
    }
}
