//! A console line that calls a peerlet method which itself waits on a
//! remote call: the line's outcome is the line's own, not the method's
//! (both activations may carry the same per-sandbox call number).

mod common;

use common::samples::SampleRing;

const RELAY: &str = r#"--@peerlet name=relay type=end-node version=1
local P = {}
function P.far() return "far" end
function P.relay(tag)
  return tag .. ":" .. peerlet.lookup(kbr.key("elsewhere")):far()
end
return P
"#;

#[test]
fn a_console_line_gets_its_own_result_when_the_method_it_calls_waits_too() {
    let mut r = SampleRing::new(8, 71);
    let mut app = None;
    for i in r.all() {
        let m = r.managers[i].clone();
        app = Some(
            r.net
                .with_node(i, |k, now| {
                    m.0.borrow_mut()
                        .install_local(&mut k.api(now), "relay.lua", RELAY.as_bytes())
                })
                .unwrap(),
        );
    }
    let app = app.unwrap().to_string();
    let line = format!(
        "local h = peerlet.lookup(kbr.id().id, {app:?}) \
         local a, b = h:relay('one'), h:relay('two') \
         return a .. ' ' .. b .. ' done'"
    );
    assert_eq!(r.eval(3, &line).as_deref(), Ok("one:far two:far done"));
}
