//! A peerlet's fair share of a node over time, on a simulated ring: a
//! peerlet over its share waits (its messages are held, then delivered in
//! order, or dropped and counted past its backlog) while a benign peerlet
//! on the same node is served at once; one that stays over its share is
//! stopped and reported; per-hop messages wait at the hop and still
//! arrive; timer callbacks and log lines are bounded per second.
//!
//! Shares are measured in Lua instructions here: the instruction rate is
//! set low enough to bind long before the wall-clock shares do (those are
//! set to a whole core), so what is held and when follows from virtual
//! time, not from the speed of this machine.

mod common;

use common::sim::BENIGN;

use common::values::{count, decode_stored};

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use peerlet::id::{AppId, Id};
use peerlet::peerlet::{ManagerApp, ManagerConfig};
use peerlet::sandbox::Limits;
use peerlet::sim::SimNet;
use peerlet::wire::AppType;

/// Instructions one spinning upcall runs: 300,000 iterations of an add and
/// a loop test, well under the per-upcall budget of 1,000,000.
const SPIN: &str = "local x = 0\nfor i = 1, 300000 do x = x + i end";

/// Instructions a peerlet may run per second in these tests: about eight
/// spinning upcalls a second (after a first burst of one budget's worth).
const INSTRUCTIONS_PER_SECOND: u64 = 5_000_000;

/// Limits in which the instruction rate is the share that binds.
fn limits() -> Limits {
    Limits {
        cpu_share: 1.0,
        instructions_per_second: INSTRUCTIONS_PER_SECOND,
        upcall_time: Duration::from_secs(60),
        ..Limits::default()
    }
}

fn config(limits: Limits) -> ManagerConfig {
    ManagerConfig {
        limits,
        peerlets_share: 1.0,
        ..ManagerConfig::default()
    }
}

struct Ring {
    net: SimNet,
    managers: Vec<ManagerApp>,
}

fn ring(n: usize, seed: u64, cfg: &ManagerConfig) -> Ring {
    let (net, managers, _) = common::sim::with_managers(n, seed, cfg);
    Ring { net, managers }
}

impl Ring {
    /// Installs `source` as peerlet `name` on the given nodes.
    fn install(&mut self, nodes: &[usize], name: &str, source: &str) -> AppId {
        common::sim::install_on(&mut self.net, &self.managers, nodes, name, source)
    }

    /// Routes `value` (CBOR) for `app` from node `from` to `key`.
    fn route(
        &mut self,
        from: usize,
        key: Id,
        app: AppId,
        app_type: AppType,
        value: ciborium::Value,
    ) {
        common::sim::route_value(&mut self.net, from, key, app, app_type, &value);
    }

    fn stored_int(&self, i: usize, name: &str, key: &str) -> i128 {
        let m = self.managers[i].0.borrow();
        let p = m
            .by_name(name)
            .unwrap_or_else(|| panic!("no {name} on node {i}"));
        count(p.store_get(key).map(|b| decode_stored(&b)))
    }

    /// Reads peerlet `name` of node `i`.
    fn peerlet<R>(
        &self,
        i: usize,
        name: &str,
        f: impl FnOnce(&peerlet::peerlet::Peerlet) -> R,
    ) -> R {
        let m = self.managers[i].0.borrow();
        f(m.by_name(name)
            .unwrap_or_else(|| panic!("no {name} on node {i}")))
    }

    fn reports(&self, i: usize) -> Vec<String> {
        self.managers[i].0.borrow().reports().cloned().collect()
    }
}

/// A message with a sequence number.
fn seq(n: u64) -> ciborium::Value {
    ciborium::Value::Map(vec![(
        ciborium::Value::Text("seq".into()),
        ciborium::Value::Integer(n.into()),
    )])
}

/// Spins through most of its upcall budget on every message; counts them
/// and notes the first one that came out of order.
fn spinner() -> String {
    format!(
        r#"
local P = {{}}
local last = 0
function P.deliver(key, msg, from)
  {SPIN}
  if msg.seq ~= last + 1 and not store.get("out_of_order") then
    store.put("out_of_order", msg.seq)
  end
  last = msg.seq
  store.put("delivered", (store.get("delivered") or 0) + 1)
end
return P
"#
    )
}

#[test]
fn a_peerlet_over_its_share_waits_while_its_neighbour_is_served_and_catches_up_in_order() {
    let mut r = ring(8, 11, &config(limits()));
    let spinner_app = r.install(&[0], "spinner", &spinner());
    let all: Vec<usize> = (0..8).collect();
    let benign_app = r.install(&all, "benign", BENIGN);
    let target = r.net.me(0).id;
    // 100 spinning upcalls are twelve seconds of this peerlet's share; 20
    // messages for its neighbour come in between.
    for n in 1..=100u64 {
        r.route(3, target, spinner_app, AppType::EndNode, seq(n));
        if n % 5 == 0 {
            r.route(3, target, benign_app, AppType::EndNode, seq(n));
        }
    }
    r.net.run_for(Duration::from_secs(2));
    assert_eq!(
        r.stored_int(0, "benign", "delivered"),
        20,
        "the benign peerlet got every message at once"
    );
    let early = r.stored_int(0, "spinner", "delivered");
    assert!(
        early < 50,
        "the spinner was held to its share: {early} of 100 ran in 2 s"
    );
    assert!(early >= 1, "the spinner ran at all");
    let waiting = r.peerlet(0, "spinner", |p| p.waiting());
    assert!(waiting > 0, "its messages wait for its share");
    // The benign peerlet answers a call made from another node meanwhile.
    let line = format!("peerlet.lookup('{target}', 'benign'):ping()");
    let out = common::sim::eval_many(
        &mut r.net,
        &r.managers,
        &[(5, line)],
        Duration::from_secs(3),
    );
    assert_eq!(out[0].as_deref(), Ok("pong"), "{out:?}");
    assert!(
        r.peerlet(0, "spinner", |p| p.waiting()) > 0,
        "the call was answered while the spinner still waited"
    );
    // Given time, every held message runs, in the order it came.
    let done = r
        .net
        .run_while_not(Duration::from_secs(60), Duration::from_millis(500), |_| {
            r.managers[0]
                .0
                .borrow()
                .by_name("spinner")
                .unwrap()
                .store_get("delivered")
                == Some(cbor(100))
        });
    assert!(
        done,
        "all 100 messages delivered, got {}",
        r.stored_int(0, "spinner", "delivered")
    );
    assert_eq!(r.stored_int(0, "spinner", "out_of_order"), 0, "in order");
    r.peerlet(0, "spinner", |p| {
        assert!(p.share.throttled > Duration::ZERO, "its wait was counted");
        assert_eq!(p.share.dropped, 0);
        assert_eq!(p.waiting(), 0);
        assert_eq!(p.aborts(), 0, "waiting is not an abort");
        assert!(!p.is_stopped());
    });
}

fn cbor(n: i64) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(&ciborium::Value::Integer(n.into()), &mut out).unwrap();
    out
}

#[test]
fn messages_past_a_full_backlog_are_dropped_and_counted() {
    let mut r = ring(
        8,
        12,
        &config(Limits {
            backlog: 10,
            ..limits()
        }),
    );
    let app = r.install(&[0], "spinner", &spinner());
    let target = r.net.me(0).id;
    for n in 1..=50u64 {
        r.route(2, target, app, AppType::EndNode, seq(n));
    }
    r.net.run_for(Duration::from_secs(20));
    let delivered = r.stored_int(0, "spinner", "delivered");
    let dropped = r.peerlet(0, "spinner", |p| p.share.dropped);
    assert!(dropped > 0, "a backlog of 10 cannot hold 50 messages");
    assert!(
        delivered <= 10 + 3,
        "at most the backlog plus a first burst ran: {delivered}"
    );
    assert_eq!(
        delivered + dropped as i128,
        50,
        "every message was delivered or counted as dropped"
    );
    assert_eq!(
        r.stored_int(0, "spinner", "out_of_order"),
        0,
        "the held ones ran in order (the dropped ones are the newest)"
    );
    let reports = r.reports(0);
    assert!(
        reports.iter().any(|l| l.contains("`spinner`")
            && l.contains("over its share")
            && l.contains("dropping")),
        "the drops are reported: {reports:?}"
    );
    assert!(
        reports.iter().filter(|l| l.contains("dropping")).count() <= 8,
        "not once per dropped message: {reports:?}"
    );
}

#[test]
fn a_peerlet_that_stays_over_its_share_is_stopped_and_reported() {
    let overload = Duration::from_secs(2);
    let mut r = ring(
        8,
        13,
        &config(Limits {
            overload_time: overload,
            ..limits()
        }),
    );
    let app = r.install(&[0], "spinner", &spinner());
    r.install(&[0], "benign", BENIGN);
    let target = r.net.me(0).id;
    // 200 spinning upcalls are 24 s of its share: it has work waiting all
    // along.
    for n in 1..=200u64 {
        r.route(4, target, app, AppType::EndNode, seq(n));
    }
    let stopped = r
        .net
        .run_while_not(Duration::from_secs(10), Duration::from_millis(100), |_| {
            r.managers[0]
                .0
                .borrow()
                .by_name("spinner")
                .unwrap()
                .is_stopped()
        });
    let delivered = r.stored_int(0, "spinner", "delivered");
    assert!(
        stopped,
        "stopped within 10 s of being over its share (overload_time {overload:?}); \
         {delivered} of 200 ran, {} wait; reports: {:?}",
        r.peerlet(0, "spinner", |p| p.waiting()),
        r.reports(0)
    );
    assert!(delivered < 200, "it was stopped before its work was done");
    let reports = r.reports(0);
    assert!(
        reports
            .iter()
            .any(|l| l.contains("`spinner` stopped") && l.contains("over its share")),
        "the stop is reported by name and reason: {reports:?}"
    );
    r.peerlet(0, "spinner", |p| {
        assert_eq!(p.waiting(), 0, "its held work is gone")
    });
    // The node goes on: its other peerlet still answers.
    let line = format!("peerlet.lookup('{target}', 'benign'):ping()");
    let out = common::sim::eval_many(
        &mut r.net,
        &r.managers,
        &[(0, line)],
        Duration::from_secs(3),
    );
    assert_eq!(out[0].as_deref(), Ok("pong"), "{out:?}");
}

/// A per-hop peerlet whose forward() spins at every hop.
fn slow_hop() -> String {
    format!(
        r#"--@peerlet name=slowhop type=per-hop
local P = {{}}
function P.forward(key, msg, next_hop)
  {SPIN}
  store.put("forwarded", (store.get("forwarded") or 0) + 1)
end
function P.deliver(key, msg, from)
  store.put("delivered", (store.get("delivered") or 0) + 1)
end
return P
"#
    )
}

#[test]
fn per_hop_messages_over_the_share_wait_at_the_hop_and_still_arrive() {
    let n = 16;
    let mut r = ring(n, 14, &config(limits()));
    let all: Vec<usize> = (0..n).collect();
    let app = r.install(&all, "slowhop", &slow_hop());
    // A key far from the source, so the messages take several hops.
    let source = 0;
    let key = (1..200)
        .map(|k| Id::key(format!("far-{k}")))
        .find(|key| {
            let root = r.net.oracle().successor(key).id;
            let root_i = (0..n).find(|&i| r.net.me(i).id == root).unwrap();
            let path = r.net.lookup(source, *key).map(|f| f.hops).unwrap_or(0);
            root_i != source && path >= 2
        })
        .expect("a key two hops away or more");
    let root = r.net.oracle().successor(&key).id;
    let root_i = (0..n).find(|&i| r.net.me(i).id == root).unwrap();
    let sent = 40;
    for k in 0..sent {
        r.route(source, key, app, AppType::PerHop, seq(k + 1));
    }
    r.net.run_for(Duration::from_millis(1500));
    let held: usize = (0..n)
        .map(|i| r.peerlet(i, "slowhop", |p| p.waiting()))
        .sum();
    let early = r.stored_int(root_i, "slowhop", "delivered");
    assert!(held > 0, "messages wait at a hop for the share there");
    assert!(early < sent as i128, "not all arrived at once: {early}");
    let done = r
        .net
        .run_while_not(Duration::from_secs(60), Duration::from_millis(500), |_| {
            r.managers[root_i]
                .0
                .borrow()
                .by_name("slowhop")
                .unwrap()
                .store_get("delivered")
                == Some(cbor(sent as i64))
        });
    assert!(
        done,
        "all {sent} arrived at the root, got {}",
        r.stored_int(root_i, "slowhop", "delivered")
    );
    let throttled = r.peerlet(source, "slowhop", |p| p.share.throttled);
    assert!(throttled > Duration::ZERO, "the source's forward() waited");
    for i in 0..n {
        r.peerlet(i, "slowhop", |p| {
            assert_eq!(p.share.dropped, 0, "node {i} dropped nothing");
            assert!(!p.is_stopped(), "node {i}");
        });
    }
}

#[test]
fn timer_callbacks_per_second_are_bounded() {
    let rate = 200u32;
    let mut r = ring(
        4,
        15,
        &config(Limits {
            timer_callbacks_per_second: rate,
            ..limits()
        }),
    );
    // 64 timers every 10 ms ask for 6,400 callbacks a second.
    let ticker = r#"
local P = {}
local n = 0
function P.init()
  for i = 1, 64 do
    timer.every(0.01, function()
      n = n + 1
      store.put("n", n)
    end)
  end
end
return P
"#;
    r.install(&[1], "ticker", ticker);
    let secs = 5u64;
    r.net.run_for(Duration::from_secs(secs));
    let n = r.stored_int(1, "ticker", "n");
    let most = (rate as u64 * secs + 64 + rate as u64 / 10) as i128;
    assert!(
        n <= most,
        "{n} callbacks in {secs} s, at most {most} ({rate}/s plus a burst of 64)"
    );
    assert!(
        n >= (rate as u64 * secs) as i128 * 8 / 10,
        "the rate is given, not starved: {n} callbacks in {secs} s"
    );
    r.peerlet(1, "ticker", |p| {
        assert!(!p.is_stopped());
        assert_eq!(p.aborts(), 0);
    });
}

/// Spins a little every 10 ms, and counts its turns.
const TAKES_TURNS: &str = r#"
local P = {}
local n = 0
function P.init()
  timer.every(0.01, function()
    local x = 0
    for i = 1, 50000 do x = x + i end
    n = n + 1
    store.put("n", n)
  end)
end
return P
"#;

#[test]
fn peerlets_over_the_nodes_share_take_turns_whatever_their_app_ids() {
    // All peerlets together get a twentieth of the node: five spinning
    // ones cannot all run, so they must take turns.
    let mut r = ring(
        4,
        17,
        &ManagerConfig {
            peerlets_share: 0.05,
            ..config(limits())
        },
    );
    for n in 1..=5 {
        r.install(&[3], &format!("spin{n}"), TAKES_TURNS);
    }
    r.net.run_for(Duration::from_secs(10));
    let runs: Vec<i128> = (1..=5)
        .map(|n| r.stored_int(3, &format!("spin{n}"), "n"))
        .collect();
    let most = *runs.iter().max().unwrap();
    assert!(most > 0, "they ran: {runs:?}");
    assert!(
        runs.iter().all(|&n| n >= most / 4),
        "every spinner got a fair part of the node's share: {runs:?}"
    );
}

/// Log lines as written by the `fmt` layer, kept for the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .map(str::to_string)
            .collect()
    }
}

#[test]
fn log_lines_are_bounded_per_second_cut_to_length_and_summed_up() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || sink.clone())
        .finish();
    // The simulation runs on this thread: its log goes to `captured`.
    let _guard = tracing::subscriber::set_default(subscriber);
    let limits = Limits::default();
    let mut r = ring(4, 16, &config(Limits { ..limits.clone() }));
    let loud = r#"
local P = {}
function P.deliver(key, msg, from)
  if msg.seq == 1 then
    for i = 1, 10000 do log.info("flood line " .. i) end
  elseif msg.seq == 2 then
    log.info("long line " .. string.rep("x", 60000))
  else
    log.info("after the flood")
  end
end
return P
"#;
    let app = r.install(&[2], "loud", loud);
    let target = r.net.me(2).id;
    r.route(2, target, app, AppType::EndNode, seq(1));
    r.net.run_for(Duration::from_millis(100));
    let flood = |c: &Captured| {
        c.lines()
            .iter()
            .filter(|l| l.contains("flood line"))
            .count()
    };
    let burst = 100;
    assert_eq!(
        flood(&captured),
        burst,
        "one upcall writes one burst of lines"
    );
    let suppressed = r.peerlet(2, "loud", |p| p.log_suppressed());
    assert_eq!(suppressed, 10_000 - burst as u64);
    // A second later the rate has refilled: the next line passes, after a
    // line that sums up what was suppressed.
    r.net.run_for(Duration::from_secs(1));
    r.route(2, target, app, AppType::EndNode, seq(2));
    r.net.run_for(Duration::from_millis(100));
    let lines = captured.lines();
    let summary = format!("{} log lines suppressed", 10_000 - burst);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("`loud`") && l.contains(&summary)),
        "a summary line says `{summary}`: {:?}",
        lines.iter().rev().take(3).collect::<Vec<_>>()
    );
    let long = lines
        .iter()
        .find(|l| l.contains("long line"))
        .expect("the long line is written");
    assert!(
        long.len() < limits.log_line_bytes + 200,
        "cut to about {} bytes, got {}",
        limits.log_line_bytes,
        long.len()
    );
    r.route(2, target, app, AppType::EndNode, seq(3));
    r.net.run_for(Duration::from_millis(100));
    assert!(captured
        .lines()
        .iter()
        .any(|l| l.contains("after the flood")));
    assert_eq!(
        r.peerlet(2, "loud", |p| p.log_suppressed()),
        10_000 - burst as u64,
        "nothing more was suppressed"
    );
}
