//! A node that always answers, whatever its peerlets do: a ring of three
//! `peerlet node` processes, a hostile peerlet (or several) installed on
//! one of them and set off, then for five seconds its console, routes
//! traced from it and routes traced to it must each answer within 3 s;
//! and told to stop (SIGTERM), the node exits within 2 s. One test per
//! kind of hostility: timers that re-arm themselves at once, failing host
//! calls with a huge `_G`, log floods, two peerlets bouncing messages
//! between two nodes, `update()` storms during churn, remote calls that
//! call back, and many spinning peerlets at once.

#![forbid(unsafe_code)]

mod common;

use std::time::{Duration, Instant};

use common::answering::{
    app_row, keeps_answering, line, peerlet_seconds, stops_within, Ring, LIMIT,
};

/// How long the node is watched while its peerlets misbehave.
const WATCH: Duration = Duration::from_secs(5);

/// The promise to an operator: a stopped node is gone within 2 s.
const STOP_LIMIT: Duration = Duration::from_secs(2);

/// The hostile node, and a node that watches it from outside.
const BUSY: usize = 0;
const OBSERVER: usize = 2;

/// Burns about 800,000 of the 1,000,000 instructions an upcall may run.
const SPIN: &str = "local x = 0; for i = 1, 400000 do x = x + i end";

#[test]
fn node_answers_while_timers_rearm_at_once_and_their_host_calls_fail() {
    let mut ring = Ring::start(3, &[]);
    // 60 chains of zero-delay timers: each callback arms the next one
    // first, then makes 300 host calls that fail, under pcall.
    let rearm = format!(
        r#"--@peerlet name=rearm type=end-node version=1
local P = {{}}
local fire
fire = function()
  pcall(timer.after, 0, fire)
  for i = 1, 100 do
    pcall(kbr.send, nil, i)
    pcall(kbr.route, "not a key", i)
    pcall(store.put, nil, i)
  end
  {SPIN}
end
function P.init()
  for i = 1, 60 do timer.after(0, fire) end
end
return P
"#
    );
    let before = peerlet_seconds(&ring.members[BUSY]);
    ring.load(BUSY, "rearm.lua", &rearm);
    let start = Instant::now();
    let answered = keeps_answering(&ring, BUSY, OBSERVER, WATCH);
    let ran = peerlet_seconds(&ring.members[BUSY]) - before;
    let row = app_row(&ring.members[BUSY], "rearm");
    assert!(
        ran > 0.2,
        "the timers kept the peerlet busy: it ran {ran:.3} s in {:?}",
        start.elapsed()
    );
    assert!(
        row.throttled > 0.0,
        "its timers waited for its share: {row:?}"
    );
    assert!(!row.stopped, "waiting for its share is no offence: {row:?}");
    let took = stops_within(&mut ring.members[BUSY], STOP_LIMIT);
    eprintln!("rearm: {answered:?}; stopped {took:?} after SIGTERM");
}

#[test]
fn node_answers_while_deliver_fails_host_calls_with_a_huge_global_table() {
    // 200,000 globals need more than the default 8 MiB.
    let mut ring = Ring::start(3, &["--max-memory", "134217728"]);
    let storm = r#"--@peerlet name=storm type=end-node version=1
local P = {}
local built = 0
local start
-- 200,000 globals, 20,000 per callback (an upcall's budget would not
-- make them all at once).
local function grow()
  for i = built + 1, built + 20000 do _G["global_" .. i] = i end
  built = built + 20000
  if built < 200000 then timer.after(0, grow) else start() end
end
start = function()
  local me = kbr.id()
  timer.every(0.01, function()
    for i = 1, 20 do pcall(kbr.send, me, i) end
  end)
end
function P.deliver(key, msg, from)
  for i = 1, 300 do
    pcall(kbr.send, nil, msg)
    pcall(kbr.local_lookup, "not a key")
  end
end
function P.init() timer.after(0, grow) end
function P.globals() return built end
return P
"#;
    let before = peerlet_seconds(&ring.members[BUSY]);
    ring.load(BUSY, "storm.lua", storm);
    let answered = keeps_answering(&ring, BUSY, OBSERVER, WATCH);
    let ran = peerlet_seconds(&ring.members[BUSY]) - before;
    let globals = line(
        &ring.members[BUSY].socket,
        "peerlet.lookup(kbr.id().id, 'storm'):globals()",
        Duration::from_secs(15),
    )
    .expect("the storm peerlet answers a call, in time");
    assert_eq!(globals, "200000", "the storm ran with all its globals");
    let row = app_row(&ring.members[BUSY], "storm");
    assert!(
        row.messages_in > 0,
        "deliver() ran its failing calls: {row:?}"
    );
    assert!(ran > 0.2, "the storm kept the peerlet busy: {ran:.3} s");
    assert!(!row.stopped, "{row:?}");
    let took = stops_within(&mut ring.members[BUSY], STOP_LIMIT);
    eprintln!("storm: {answered:?}; peerlet ran {ran:.3} s; stopped {took:?} after SIGTERM");
}

#[test]
fn node_answers_and_its_log_stays_small_while_a_peerlet_floods_it() {
    let mut ring = Ring::start(3, &[]);
    // 60 KB lines, from deliver() (messages it sends itself) and timers.
    let flood = r#"--@peerlet name=flood type=end-node version=1
local P = {}
local big = string.rep("x", 60000)
function P.deliver(key, msg, from)
  for i = 1, 50 do log.warn("deliver flood", i, big) end
end
function P.init()
  local me = kbr.id()
  timer.every(0.01, function()
    for i = 1, 20 do log.error("timer flood", i, big) end
    for i = 1, 5 do pcall(kbr.send, me, i) end
  end)
end
return P
"#;
    ring.load(BUSY, "flood.lua", flood);
    let answered = keeps_answering(&ring, BUSY, OBSERVER, WATCH);
    let row = app_row(&ring.members[BUSY], "flood");
    assert!(
        row.suppressed > 10_000,
        "the flood was suppressed, line after line: {row:?}"
    );
    let log = ring.members[BUSY].data.join("node.log");
    let size = std::fs::metadata(&log).expect("DIR/node.log").len();
    assert!(
        size < 1 << 20,
        "node.log holds {size} bytes after a flood of 60 KB lines"
    );
    assert!(
        !ring.members[BUSY].data.join("node.log.1").exists(),
        "never rotated"
    );
    let text = std::fs::read_to_string(&log).expect("read node.log");
    assert!(
        text.contains("log lines suppressed"),
        "node.log sums up what it left out"
    );
    assert!(
        text.lines().all(|l| l.len() < 2048),
        "every line is cut to about 1 KB"
    );
    let took = stops_within(&mut ring.members[BUSY], STOP_LIMIT);
    eprintln!("flood: {answered:?}; node.log {size} bytes; stopped {took:?} after SIGTERM");
}

#[test]
fn nodes_answer_while_two_peerlets_bounce_messages_between_them() {
    let mut ring = Ring::start(3, &[]);
    // Each copy sends 200 messages to the other node; every message that
    // arrives is sent back twice, so there are always more in flight.
    let bounce = |peer: usize| {
        let p = ring.members[peer].node.me;
        format!(
            r#"--@peerlet name=bounce type=end-node version=1
local P = {{}}
local peer = {{id = "{}", addr = "{}"}}
local pad = string.rep("b", 1000)
function P.deliver(key, msg, from)
  local x = 0
  for i = 1, 50000 do x = x + i end
  pcall(kbr.send, peer, msg)
  pcall(kbr.send, peer, msg)
end
function P.init()
  timer.after(0.05, function()
    for i = 1, 200 do pcall(kbr.send, peer, {{n = i, pad = pad}}) end
  end)
end
return P
"#,
            p.id, p.addr
        )
    };
    let (to_busy, to_other) = (bounce(BUSY), bounce(1));
    ring.load(1, "bounce_to_busy.lua", &to_busy);
    ring.load(BUSY, "bounce_to_other.lua", &to_other);
    let answered = keeps_answering(&ring, BUSY, OBSERVER, WATCH);
    // The other bouncing node answers too.
    let other = keeps_answering(&ring, 1, OBSERVER, Duration::from_secs(2));
    for i in [BUSY, 1] {
        let row = app_row(&ring.members[i], "bounce");
        assert!(
            row.throttled > 0.0,
            "node {i}: the bouncing waited: {row:?}"
        );
    }
    let took = stops_within(&mut ring.members[BUSY], STOP_LIMIT);
    let took_other = stops_within(&mut ring.members[1], STOP_LIMIT);
    eprintln!(
        "bounce: {answered:?}, other node {other:?}; stopped {took:?} and {took_other:?} after SIGTERM"
    );
}

#[test]
fn node_answers_while_update_spins_during_churn() {
    let mut ring = Ring::start(3, &[]);
    let churned = format!(
        r#"--@peerlet name=churned type=end-node version=1
local P = {{}}
local updates = 0
function P.update(node, joined)
  {SPIN}
  updates = updates + 1
end
function P.updates() return updates end
return P
"#
    );
    ring.load(BUSY, "churned.lua", &churned);
    // A fourth node joins through the busy one and leaves, again and
    // again, until the watch is over: every time, the busy node's
    // neighbours change and update() runs.
    let busy_addr = ring.members[BUSY].node.me.addr;
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (answered, cycles) = std::thread::scope(|s| {
        let churn = s.spawn(|| {
            let mut cycles = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && cycles < 50 {
                let mut member = ring.start_member(&format!("churn{cycles}"), Some(busy_addr));
                // Once the busy node counts it among its neighbours, it
                // leaves again (on SIGTERM).
                let addr = member.node.me.addr.to_string();
                common::eventually(Duration::from_secs(20), || {
                    let peers = line(&ring.members[BUSY].socket, ".peers", LIMIT)?;
                    match peers.contains(&addr) {
                        true => Ok(()),
                        false => Err(peers),
                    }
                });
                stops_within(&mut member, Duration::from_secs(5));
                cycles += 1;
            }
            cycles
        });
        let answered = keeps_answering(&ring, BUSY, OBSERVER, WATCH);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (answered, churn.join().expect("churn thread"))
    });
    assert!(
        cycles >= 2,
        "the fourth node came and went: {cycles} time(s)"
    );
    let updates: u64 = line(
        &ring.members[BUSY].socket,
        "peerlet.lookup(kbr.id().id, 'churned'):updates()",
        Duration::from_secs(15),
    )
    .expect("the churned peerlet answers a call")
    .parse()
    .expect("a count");
    assert!(updates >= 2, "update() ran on the churn: {updates}");
    let took = stops_within(&mut ring.members[BUSY], STOP_LIMIT);
    eprintln!(
        "update storm: {answered:?}; {cycles} churn cycles, {updates} updates; stopped {took:?} after SIGTERM"
    );
}

#[test]
fn node_answers_while_remote_calls_call_back_in_fan_out() {
    let mut ring = Ring::start(3, &[]);
    // echo(depth) calls echo(depth - 1) three times on the root of this
    // node's own key (this node), and timers start new trees all along.
    let callback = r#"--@peerlet name=callback type=end-node version=1
local P = {}
local function here() return peerlet.lookup(kbr.id().id) end
function P.echo(depth)
  local x = 0
  for i = 1, 100000 do x = x + i end
  if depth > 0 then
    local h = here()
    for i = 1, 3 do pcall(h.echo, h, depth - 1) end
  end
  return depth
end
function P.init()
  timer.every(0.02, function()
    local h = here()
    pcall(h.echo, h, 8)
  end)
end
return P
"#;
    ring.load(BUSY, "callback.lua", callback);
    let answered = keeps_answering(&ring, BUSY, OBSERVER, WATCH);
    let row = app_row(&ring.members[BUSY], "callback");
    assert!(
        row.throttled > 0.0,
        "the calls waited for its share: {row:?}"
    );
    assert!(!row.stopped, "{row:?}");
    let took = stops_within(&mut ring.members[BUSY], STOP_LIMIT);
    eprintln!("callback: {answered:?}; {row:?}; stopped {took:?} after SIGTERM");
}

#[test]
fn node_answers_and_bounds_its_peerlets_together_while_five_spin() {
    let mut ring = Ring::start(3, &[]);
    for n in 1..=5 {
        let spinner = format!(
            r#"--@peerlet name=spin{n} type=end-node version=1
local P = {{}}
local function spin() {SPIN} end
function P.deliver(key, msg, from) spin() end
function P.init()
  local me = kbr.id()
  timer.every(0.01, function()
    spin()
    for i = 1, 10 do pcall(kbr.send, me, i) end
  end)
end
return P
"#
        );
        ring.load(BUSY, &format!("spin{n}.lua"), &spinner);
    }
    let before = (peerlet_seconds(&ring.members[BUSY]), Instant::now());
    let answered = keeps_answering(&ring, BUSY, OBSERVER, WATCH);
    let ran = peerlet_seconds(&ring.members[BUSY]) - before.0;
    let elapsed = before.1.elapsed().as_secs_f64();
    // All peerlets together get half the node's thread (with bursts of a
    // tenth of a second, and the last step of each paid for after it ran).
    assert!(
        ran <= 0.5 * elapsed + 0.5,
        "five spinning peerlets ran {ran:.3} s in {elapsed:.3} s"
    );
    assert!(ran > 0.5, "they did spin: {ran:.3} s in {elapsed:.3} s");
    // And they share it: none waits for good because of where its app id
    // sorts.
    let rows: Vec<_> = (1..=5)
        .map(|n| app_row(&ring.members[BUSY], &format!("spin{n}")))
        .collect();
    let most = rows.iter().map(|r| r.instructions).max().unwrap();
    for row in &rows {
        assert!(
            row.instructions >= most / 4,
            "every spinner got a fair part: {row:?}, the busiest ran {most} instructions"
        );
        assert!(!row.stopped, "{row:?}");
    }
    let took = stops_within(&mut ring.members[BUSY], STOP_LIMIT);
    let parts: Vec<u64> = rows.iter().map(|r| r.instructions).collect();
    eprintln!(
        "five spinners: {answered:?}; peerlets ran {ran:.3} s of {elapsed:.3} s, instructions {parts:?}; stopped {took:?} after SIGTERM"
    );
}
