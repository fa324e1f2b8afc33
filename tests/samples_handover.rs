//! im.lua and directory.lua keep their state on the replica set of each
//! name (issue 14): it outlives the root crashing, and a node that joins as
//! the new root of a name gets it handed over.

mod common;

use std::time::Duration;

use common::samples::SampleRing;
use peerlet::id::{AppId, Id};

const NODES: usize = 20;

fn here(app: AppId) -> String {
    format!("peerlet.lookup(kbr.id().id, {:?})", app.to_string())
}

fn at_root(app: AppId, name: &str) -> String {
    format!("peerlet.lookup(kbr.key({name:?}), {:?})", app.to_string())
}

/// A node that is not among `avoid`.
fn other(avoid: &[usize]) -> usize {
    (0..NODES).find(|i| !avoid.contains(i)).unwrap()
}

/// Runs the ring until `node` is in it and every view agrees.
fn settle(r: &mut SampleRing) {
    for _ in 0..60 {
        if r.net.is_converged() {
            break;
        }
        r.net.run_for(Duration::from_secs(1));
    }
    r.net.run_for(Duration::from_secs(3));
}

#[test]
fn im_messages_waiting_for_a_user_outlive_their_post_office_and_move_to_a_new_one() {
    let mut r = SampleRing::new(NODES, 51);
    let app = r.install(&r.all(), "im");
    let set = r.replica_set(&Id::key("bob"), 3);
    let alice = other(&set);
    assert_eq!(
        r.eval(alice, &format!("{}:login('alice')", here(app)))
            .as_deref(),
        Ok("0")
    );
    for text in ["one", "two"] {
        let line = format!("{}:send('alice', 'bob', '{text}')", here(app));
        assert_eq!(r.eval(alice, &line).as_deref(), Ok("queued"));
    }
    // Bob's post office crashes; the next node of the set has his mail.
    r.net.crash(set[0]);
    settle(&mut r);
    let bob = other(&[set[0], set[1], set[2], alice]);
    assert_eq!(
        r.eval(bob, &format!("{}:login('bob')", here(app)))
            .as_deref(),
        Ok("2")
    );
    let read = format!(
        "(function() local out = {{}} for i, m in ipairs({}:read('bob')) do out[i] = m.text end \
         return table.concat(out, ',') end)()",
        here(app)
    );
    assert_eq!(r.eval(bob, &read).as_deref(), Ok("one,two"));

    // Carol is away with a message waiting; a node joins as the root of her
    // name and is her post office from then on, mail included.
    let line = format!("{}:send('alice', 'carol', 'hi carol')", here(app));
    assert_eq!(r.eval(alice, &line).as_deref(), Ok("queued"));
    let newcomer = r.join(Id::key("carol"), alice, &["im"]);
    settle(&mut r);
    assert_eq!(r.replica_set(&Id::key("carol"), 1), vec![newcomer]);
    let carol = other(&[set[0], alice, bob, newcomer]);
    assert_eq!(
        r.eval(carol, &format!("{}:login('carol')", here(app)))
            .as_deref(),
        Ok("1")
    );
    assert_eq!(r.reports(), Vec::<String>::new());
}

#[test]
fn directory_lists_outlive_their_root_and_move_to_a_new_one() {
    let mut r = SampleRing::new(NODES, 52);
    let app = r.install(&r.all(), "directory");
    let h = at_root(app, "printers");
    for p in ["lpr://a", "lpr://b"] {
        let line = format!("{h}:register('printers', '{p}', 600)");
        assert_eq!(r.eval(3, &line).as_deref(), Ok("true"));
    }
    let find = format!("table.concat({h}:find('printers'), ',')");
    let set = r.replica_set(&Id::key("printers"), 3);
    r.net.crash(set[0]);
    settle(&mut r);
    let reader = other(&set);
    assert_eq!(
        r.eval(reader, &find).as_deref(),
        Ok("lpr://a,lpr://b"),
        "after the root crashed"
    );

    let newcomer = r.join(Id::key("printers"), reader, &["directory"]);
    settle(&mut r);
    assert_eq!(r.replica_set(&Id::key("printers"), 1), vec![newcomer]);
    assert_eq!(
        r.call_local(newcomer, app, "categories()").as_deref(),
        Ok("{ \"printers\" }"),
        "the new root holds the list"
    );
    assert_eq!(
        r.eval(reader, &find).as_deref(),
        Ok("lpr://a,lpr://b"),
        "from the new root"
    );
    // Changes at the new root reach the replicas.
    let line = format!("{h}:unregister('printers', 'lpr://a')");
    assert_eq!(r.eval(reader, &line).as_deref(), Ok("true"));
    r.net.crash(newcomer);
    settle(&mut r);
    assert_eq!(r.eval(reader, &find).as_deref(), Ok("lpr://b"));
    assert_eq!(r.reports(), Vec::<String>::new());
}
