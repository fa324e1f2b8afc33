//! Every sample peerlet on one 20-node simulated ring at once (dht, im,
//! directory, scribe, trace, and hello greeting in the background): each
//! node uses all of them in the same console lines, and each sample gives
//! exactly the answers it gives alone; no peerlet sees another's messages.
//! Also: every sample's header matches its file, and it says how to use it.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::samples::{Outcome, SampleRing};
use peerlet::id::{AppId, Id};

const NODES: usize = 20;
const SAMPLES: [&str; 6] = ["dht", "im", "directory", "scribe", "trace", "hello"];

fn ok(outcomes: Vec<Outcome>) -> Vec<String> {
    outcomes
        .into_iter()
        .enumerate()
        .map(|(i, o)| o.unwrap_or_else(|e| panic!("node {i}: {e}")))
        .collect()
}

#[test]
fn all_samples_share_one_overlay_without_interfering() {
    let mut r = SampleRing::new(NODES, 61);
    let all = r.all();
    let apps: Vec<AppId> = SAMPLES.iter().map(|s| r.install(&all, s)).collect();
    assert_eq!(apps.iter().collect::<BTreeSet<_>>().len(), SAMPLES.len());
    let prelude = format!(
        "local DHT, IM, DIR, SCRIBE, TRACE = {:?}, {:?}, {:?}, {:?}, {:?} \
         local function here(app) return peerlet.lookup(kbr.id().id, app) end ",
        apps[0].to_string(),
        apps[1].to_string(),
        apps[2].to_string(),
        apps[3].to_string(),
        apps[4].to_string()
    );
    let lines = |body: &dyn Fn(usize) -> String| -> Vec<(usize, String)> {
        (0..NODES)
            .map(|i| (i, format!("{prelude} local i = {i} {}", body(i))))
            .collect()
    };

    // Round one: every node writes, registers, logs in, maybe joins, traces.
    let round = lines(&|_| {
        "peerlet.lookup(kbr.key('k' .. i), DHT):put('k' .. i, 'v' .. i) \
         local cat = 'cat' .. i % 5 \
         peerlet.lookup(kbr.key(cat), DIR):register(cat, 'p' .. i, 60) \
         here(IM):login('u' .. i) \
         if i % 2 == 0 then here(SCRIBE):join('g') end \
         return here(TRACE):trace(kbr.key('t' .. i))"
            .to_string()
    });
    for (i, out) in ok(r.eval_many(&round, Duration::from_secs(60)))
        .iter()
        .enumerate()
    {
        assert_eq!(out, "1", "node {i}: the trace id");
    }
    r.net.run_for(Duration::from_secs(2));

    // Round two: messages to the next user; every fifth node publishes.
    let round = lines(&|_| {
        format!(
            "local to = 'u' .. (i + 1) % {NODES} \
             local sent = here(IM):send('u' .. i, to, 'hi ' .. to) \
             if i % 5 == 0 then here(SCRIBE):publish('g', 'm' .. i) end \
             return sent"
        )
    });
    for (i, out) in ok(r.eval_many(&round, Duration::from_secs(60)))
        .iter()
        .enumerate()
    {
        assert_eq!(out, "delivered", "node {i}");
    }
    r.net.run_for(Duration::from_secs(2));

    // Round three: every node reads back what each sample holds for it.
    let round = lines(&|_| {
        format!(
            "local out = {{}} \
             for j = 0, {last} do local k = 'k' .. j \
               out[#out + 1] = tostring((peerlet.lookup(kbr.key(k), DHT):get(k))) end \
             for c = 0, 4 do local cat = 'cat' .. c \
               out[#out + 1] = table.concat(peerlet.lookup(kbr.key(cat), DIR):find(cat), '+') end \
             for _, m in ipairs(here(IM):read('u' .. i)) do out[#out + 1] = m.from .. ':' .. m.text end \
             local got = here(SCRIBE):received('g') table.sort(got) \
             out[#out + 1] = table.concat(got, '+') \
             local path = here(TRACE):path(1) \
             out[#out + 1] = path[1].node.id .. '>' .. path[#path].node.id \
             return table.concat(out, ' ')",
            last = NODES - 1
        )
    });
    let oracle = r.net.oracle();
    for (i, out) in ok(r.eval_many(&round, Duration::from_secs(60)))
        .iter()
        .enumerate()
    {
        let mut want: Vec<String> = (0..NODES).map(|j| format!("v{j}")).collect();
        for c in 0..5 {
            let mut providers: Vec<String> = (0..NODES)
                .filter(|j| j % 5 == c)
                .map(|j| format!("p{j}"))
                .collect();
            providers.sort();
            want.push(providers.join("+"));
        }
        let from = (i + NODES - 1) % NODES;
        want.push(format!("u{from}:hi u{i}"));
        want.push(if i % 2 == 0 { "m0+m10+m15+m5" } else { "" }.to_string());
        let root = oracle.successor(&Id::key(format!("t{i}")));
        want.push(format!("{}>{}", r.net.me(i).id, root.id));
        assert_eq!(out, &want.join(" "), "node {i}");
    }

    // Each peerlet got messages only of its own kind: nothing was dropped
    // or refused, and the background greetings kept arriving.
    assert_eq!(r.reports(), Vec::<String>::new());
    let greetings: u64 = r
        .managers
        .iter()
        .map(|m| m.0.borrow().by_name("hello").unwrap().stats.messages_in)
        .sum();
    assert!(
        greetings >= NODES as u64,
        "hello ran alongside: {greetings}"
    );
}

#[test]
fn every_sample_names_itself_in_its_header_and_says_how_to_use_it() {
    use peerlet::package::header::PeerletHeader;
    use peerlet::wire::AppType;
    let types = [
        ("dht", AppType::EndNode),
        ("im", AppType::EndNode),
        ("directory", AppType::EndNode),
        ("scribe", AppType::PerHop),
        ("trace", AppType::PerHop),
        ("hello", AppType::EndNode),
    ];
    for (name, app_type) in types {
        let src = common::samples::source(name);
        let header = PeerletHeader::parse(&src).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            (header.name.as_str(), header.app_type, header.version),
            (name, app_type, 1)
        );
        let second = src.lines().nth(1).unwrap_or("");
        assert!(
            second.starts_with(&format!("-- peerlets/{name}.lua: ")),
            "{name}: the comment under the header says what it is"
        );
        if name != "hello" {
            assert!(src.contains("From the REPL"), "{name}: how to call it");
        }
        // dht.lua does the most (quorum writes, digests, handover,
        // tombstones: issue 14), in about 300 lines of code.
        let limit = if name == "dht" { 420 } else { 200 };
        let lines = src.lines().count();
        assert!(
            lines <= limit,
            "{name}: {lines} lines, teaching material stays short"
        );
    }
}
