//! peerlets/im.lua on a 20-node simulated ring: users on different nodes
//! message each other; messages to a user who is away wait at the root of
//! their name (up to a bound) and arrive at their next login, wherever that is.

mod common;

use std::time::Duration;

use common::samples::SampleRing;
use peerlet::id::{AppId, Id};

/// Console code that prints the unread messages of `name` as `from:text|...`.
fn read(name: &str) -> String {
    format!(
        "(function() local out = {{}} for i, m in ipairs(IM:read({name:?})) do \
         out[i] = m.from .. ':' .. m.text end return table.concat(out, '|') end)()"
    )
}

struct Im {
    r: SampleRing,
    app: AppId,
}

impl Im {
    fn new(seed: u64) -> Im {
        let mut r = SampleRing::new(20, seed);
        let app = r.install(&r.all(), "im");
        Im { r, app }
    }

    /// Runs `code` at node `i` with `IM` bound to a handle on its own im.
    fn at(&mut self, i: usize, code: &str) -> Result<String, String> {
        let line = format!(
            "local IM = peerlet.lookup(kbr.id().id, {:?}) return {code}",
            self.app.to_string()
        );
        self.r.eval(i, &line)
    }

    fn root_of(&self, name: &str) -> usize {
        self.r
            .index_of(&self.r.net.oracle().successor(&Id::key(name)).id)
    }
}

#[test]
fn im_users_on_different_nodes_exchange_messages() {
    let mut im = Im::new(21);
    // Ten users, each on a node of their own; each writes to the next one.
    let users: Vec<(usize, String)> = (0..10).map(|u| (u * 2, format!("user{u}"))).collect();
    for (node, name) in &users {
        assert_eq!(
            im.at(*node, &format!("IM:login({name:?})")).as_deref(),
            Ok("0")
        );
    }
    for (u, (node, name)) in users.iter().enumerate() {
        let to = &users[(u + 1) % users.len()].1;
        let sent = im.at(
            *node,
            &format!("IM:send({name:?}, {to:?}, 'hi from {name}')"),
        );
        assert_eq!(sent.as_deref(), Ok("delivered"), "{name} to {to}");
    }
    im.r.net.run_for(Duration::from_secs(1));
    for (u, (node, name)) in users.iter().enumerate() {
        let from = &users[(u + users.len() - 1) % users.len()].1;
        let want = format!("{from}:hi from {from}");
        assert_eq!(
            im.at(*node, &read(name)).as_deref(),
            Ok(want.as_str()),
            "{name}"
        );
        // Reading empties the inbox.
        assert_eq!(im.at(*node, &read(name)).as_deref(), Ok(""), "{name}");
    }
    // The roots of the names hold the presence; no user lives at their own root here.
    assert!(users.iter().any(|(node, name)| im.root_of(name) != *node));
    assert_eq!(im.r.reports(), Vec::<String>::new());
}

#[test]
fn im_messages_to_an_away_user_wait_at_the_root_and_arrive_at_next_login() {
    let mut im = Im::new(22);
    assert_eq!(im.at(1, "IM:login('alice')").as_deref(), Ok("0"));
    assert_eq!(im.at(7, "IM:login('bob')").as_deref(), Ok("0"));
    assert_eq!(im.at(7, "IM:logout('bob')").as_deref(), Ok("true"));

    for text in ["one", "two"] {
        let sent = im.at(1, &format!("IM:send('alice', 'bob', '{text}')"));
        assert_eq!(sent.as_deref(), Ok("queued"));
    }
    im.r.net.run_for(Duration::from_secs(1));
    // Bob comes back on another node: the two messages come with him.
    assert_eq!(im.at(13, "IM:login('bob')").as_deref(), Ok("2"));
    assert_eq!(
        im.at(13, &read("bob")).as_deref(),
        Ok("alice:one|alice:two")
    );
    assert_eq!(
        im.at(7, &read("bob")).as_deref(),
        Ok(""),
        "not at his old node"
    );
    // Now he is online: the next message goes straight to node 13.
    let sent = im.at(1, "IM:send('alice', 'bob', 'three')");
    assert_eq!(sent.as_deref(), Ok("delivered"));
    im.r.net.run_for(Duration::from_secs(1));
    assert_eq!(im.at(13, &read("bob")).as_deref(), Ok("alice:three"));
    // Nothing is waited twice: a new login finds nothing.
    assert_eq!(im.at(13, "IM:login('bob')").as_deref(), Ok("0"));

    // The root keeps at most 32 messages for someone away.
    assert_eq!(im.at(4, "IM:login('carol')").as_deref(), Ok("0"));
    assert_eq!(im.at(4, "IM:logout('carol')").as_deref(), Ok("true"));
    let burst = "(function() local last for i = 1, 33 do \
                 last = table.pack(IM:send('alice', 'carol', 'm' .. i)) end \
                 return last[1], last[2] end)()";
    assert_eq!(
        im.at(1, burst).as_deref(),
        Ok("nil\tmailbox of carol is full (32 waiting)")
    );
    assert_eq!(im.at(9, "IM:login('carol')").as_deref(), Ok("32"));
    let want: Vec<String> = (1..=32).map(|i| format!("alice:m{i}")).collect();
    assert_eq!(
        im.at(9, &read("carol")).as_deref(),
        Ok(want.join("|").as_str())
    );

    // Sending needs a login on the node you send from.
    let err = im.at(2, "IM:send('alice', 'bob', 'x')").unwrap_err();
    assert!(err.contains("log in as alice first"), "{err}");
}

#[test]
fn im_a_message_for_a_user_whose_node_crashed_waits_for_the_next_login() {
    let mut im = Im::new(23);
    // Bob's node: neither alice's node nor the root of either name.
    let roots = [im.root_of("alice"), im.root_of("bob")];
    let bobs = (2..20).find(|i| !roots.contains(i)).unwrap();
    assert_eq!(im.at(1, "IM:login('alice')").as_deref(), Ok("0"));
    assert_eq!(im.at(bobs, "IM:login('bob')").as_deref(), Ok("0"));
    im.r.net.crash(bobs);
    im.r.net.run_for(Duration::from_secs(5)); // the ring notices
    let sent = im.at(1, "IM:send('alice', 'bob', 'are you there?')");
    assert_eq!(sent.as_deref(), Ok("queued"), "no one took it");
    let elsewhere = (2..20).find(|&i| i != bobs).unwrap();
    assert_eq!(im.at(elsewhere, "IM:login('bob')").as_deref(), Ok("1"));
    assert_eq!(
        im.at(elsewhere, &read("bob")).as_deref(),
        Ok("alice:are you there?")
    );
}
