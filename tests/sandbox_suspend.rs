//! Host calls that suspend an upcall (the `peerlet.lookup` handle calls):
//! the upcall ends its turn with a request, the host answers later, and the
//! script sees an ordinary function return, even inside its own coroutines.

use mlua::{MultiValue, Value};
use peerlet::sandbox::{CallId, Limits, Sandbox, SandboxError, UpcallOutcome};

/// Default limits, but with a wall-clock backstop far out of reach, so the
/// tests see the deterministic limits (instructions, memory) on any machine.
fn limits() -> Limits {
    Limits {
        upcall_time: std::time::Duration::from_secs(120),
        ..Limits::default()
    }
}

/// A sandbox with a global `wait(x)` that suspends with request `x`, and a
/// global `checked(x)` whose `prepare` refuses non-numbers.
fn sandbox_with(src: &str, limits: &Limits) -> Sandbox {
    let mut sb = Sandbox::new("waiter", limits).unwrap();
    let wait = sb
        .create_suspending_function(|_, args: MultiValue| {
            Ok(args.front().cloned().unwrap_or(Value::Nil))
        })
        .unwrap();
    let checked = sb
        .create_suspending_function(|_, args: MultiValue| match args.front() {
            Some(v @ (Value::Integer(_) | Value::Number(_))) => Ok(v.clone()),
            _ => Err(mlua::Error::runtime("checked: a number is needed")),
        })
        .unwrap();
    sb.lua().globals().raw_set("wait", wait).unwrap();
    sb.lua().globals().raw_set("checked", checked).unwrap();
    sb.load("waiter.lua", src.as_bytes()).unwrap();
    sb
}

fn sandbox(src: &str) -> Sandbox {
    sandbox_with(src, &limits())
}

fn suspended(outcome: Result<UpcallOutcome, SandboxError>) -> (CallId, Value) {
    match outcome {
        Ok(UpcallOutcome::Suspended { call, request }) => (call, request),
        other => panic!("expected a suspension, got {other:?}"),
    }
}

fn done(outcome: Result<UpcallOutcome, SandboxError>) -> MultiValue {
    match outcome {
        Ok(UpcallOutcome::Done(v)) => v,
        other => panic!("expected the upcall to return, got {other:?}"),
    }
}

fn reply(v: i64) -> Result<MultiValue, String> {
    Ok(MultiValue::from_vec(vec![Value::Integer(v)]))
}

#[test]
fn a_suspended_upcall_resumes_with_the_reply() {
    let mut sb = sandbox("return {go = function(x) local r = wait(x) return r * 2 end}");
    let (call, request) = suspended(sb.start_upcall("go", 7));
    assert_eq!(request, Value::Integer(7));
    assert_eq!(sb.pending_calls(), 1);
    let r = done(sb.resume(call, reply(21)));
    assert_eq!(r[0], Value::Integer(42));
    assert_eq!(sb.pending_calls(), 0);
}

#[test]
fn an_error_reply_is_raised_at_the_scripts_call() {
    let mut sb = sandbox(
        "local P = {}\nfunction P.caught() return pcall(wait, 1) end\nfunction P.uncaught()\n  wait(1)\nend\nreturn P",
    );
    let (call, _) = suspended(sb.start_upcall("caught", ()));
    let r = done(sb.resume(call, Err("lookup timed out".into())));
    assert_eq!(r[0], Value::Boolean(false));
    assert!(r[1].to_string().unwrap().contains("lookup timed out"));
    let (call, _) = suspended(sb.start_upcall("uncaught", ()));
    let err = sb.resume(call, Err("lookup timed out".into())).unwrap_err();
    assert_eq!(
        err.to_string(),
        "peerlet `waiter`: error in uncaught(): waiter.lua:4: lookup timed out"
    );
}

#[test]
fn prepare_refuses_bad_arguments_at_once() {
    let mut sb = sandbox("return {go = function() return pcall(checked, 'nope') end}");
    let r = done(sb.start_upcall("go", ()));
    assert_eq!(r[0], Value::Boolean(false));
    assert_eq!(sb.pending_calls(), 0);
}

#[test]
fn host_calls_work_inside_script_coroutines() {
    let mut sb = sandbox(
        r#"local P = {}
        function P.wrapped() return coroutine.wrap(function(a) return wait(a) + 1 end)(10) end
        function P.created()
          local co = coroutine.create(function(a)
            local r = wait(a)
            coroutine.yield(r + 1)
            return "end"
          end)
          local ok1, v1 = coroutine.resume(co, 5)
          local ok2, v2 = coroutine.resume(co)
          return ok1, v1, ok2, v2
        end
        function P.nested()
          return coroutine.wrap(function()
            return coroutine.wrap(function() return wait("deep") end)()
          end)()
        end
        return P"#,
    );
    let (call, req) = suspended(sb.start_upcall("wrapped", ()));
    assert_eq!(req, Value::Integer(10));
    assert_eq!(done(sb.resume(call, reply(1)))[0], Value::Integer(2));

    let (call, _) = suspended(sb.start_upcall("created", ()));
    let r = done(sb.resume(call, reply(100)));
    let got: Vec<String> = r.iter().map(|v| v.to_string().unwrap()).collect();
    assert_eq!(got, ["true", "101", "true", "end"]);

    let (call, req) = suspended(sb.start_upcall("nested", ()));
    assert_eq!(req.to_string().unwrap(), "deep");
    assert_eq!(done(sb.resume(call, reply(9)))[0], Value::Integer(9));
}

#[test]
fn activations_interleave() {
    let mut sb = sandbox("return {go = function(x) return x .. ':' .. wait(x) end}");
    let (a, _) = suspended(sb.start_upcall("go", "a"));
    let (b, _) = suspended(sb.start_upcall("go", "b"));
    assert_eq!(sb.pending_calls(), 2);
    assert_eq!(done(sb.resume(b, reply(2)))[0].to_string().unwrap(), "b:2");
    assert_eq!(done(sb.resume(a, reply(1)))[0].to_string().unwrap(), "a:1");
}

#[test]
fn a_script_cannot_answer_a_host_call_itself() {
    let mut sb = sandbox(
        r#"local P = {}
        local pending
        function P.start()
          pending = coroutine.create(function() return wait("x") end)
          return coroutine.resume(pending)
        end
        function P.forge() return coroutine.resume(pending, "forged", true, 42) end
        return P"#,
    );
    let (a, _) = suspended(sb.start_upcall("start", ()));
    let r = done(sb.start_upcall("forge", ()));
    assert_eq!(r[0], Value::Boolean(false));
    assert!(r[1].to_string().unwrap().contains("host call interrupted"));
    // The original activation still finishes cleanly when the host answers.
    let r = done(sb.resume(a, reply(1)));
    assert_eq!(r[0], Value::Boolean(false));
}

#[test]
fn the_budget_covers_the_whole_activation() {
    let mut sb = sandbox(
        "return {go = function() for i = 1, 600000 do end wait(1) for i = 1, 600000 do end end}",
    );
    let (call, _) = suspended(sb.start_upcall("go", ()));
    let err = sb.resume(call, reply(1)).unwrap_err();
    assert!(matches!(err, SandboxError::Budget { .. }), "{err}");
    // Each activation starts with a full budget.
    let mut sb = sandbox("return {go = function() for i = 1, 600000 do end return 1 end}");
    done(sb.start_upcall("go", ()));
    done(sb.start_upcall("go", ()));
}

#[test]
fn pending_calls_are_bounded() {
    let limits = Limits {
        pending_calls: 2,
        ..limits()
    };
    let mut sb = sandbox_with(
        "return {go = function() return pcall(wait, 1) end}",
        &limits,
    );
    suspended(sb.start_upcall("go", ()));
    suspended(sb.start_upcall("go", ()));
    let r = done(sb.start_upcall("go", ()));
    assert_eq!(r[0], Value::Boolean(false));
    assert!(r[1]
        .to_string()
        .unwrap()
        .contains("too many host calls waiting"));
}

#[test]
fn cancelled_and_unknown_calls() {
    let mut sb = sandbox("return {go = function() return wait(1) end}");
    let (call, _) = suspended(sb.start_upcall("go", ()));
    assert!(sb.cancel(call));
    assert!(!sb.cancel(call));
    let r = sb.resume(call, reply(1));
    assert!(matches!(r, Err(SandboxError::NoSuchCall { .. })));
}

#[test]
fn loading_cannot_wait() {
    let mut sb = Sandbox::new("waiter", &limits()).unwrap();
    let wait = sb
        .create_suspending_function(|_, _| Ok(Value::Nil))
        .unwrap();
    sb.lua().globals().raw_set("wait", wait).unwrap();
    let err = sb.load("w.lua", b"wait() return {}").unwrap_err();
    assert!(matches!(err, SandboxError::Load { .. }), "{err}");
    assert_eq!(sb.pending_calls(), 0);
}

#[test]
fn a_stopped_peerlet_drops_its_pending_calls() {
    let limits = Limits {
        strikes: 1,
        ..limits()
    };
    let mut sb = sandbox_with(
        "return {go = function() return wait(1) end, spin = function() while true do end end}",
        &limits,
    );
    let (call, _) = suspended(sb.start_upcall("go", ()));
    assert!(sb.start_upcall("spin", ()).is_err());
    assert!(sb.is_stopped());
    assert_eq!(sb.pending_calls(), 0);
    assert!(matches!(
        sb.resume(call, reply(1)),
        Err(SandboxError::Stopped { .. })
    ));
}
