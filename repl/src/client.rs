//! The console without the editor: one line from `peerlet repl -e`, and
//! the interrupt that Ctrl-C sends while a line runs.

use std::io::Write;

use crate::meta::{self, Action};
use crate::protocol::{Request, Response};
use crate::transport::{attach, Connection, Transport};

/// `-e CODE`: one line (Lua or a meta command), its answer on stdout (or
/// `Err` with the node's error, for a non-zero exit status). `.log LEVEL`
/// prints the node's log until the node stops or the process is killed,
/// like `tail -f`.
pub fn eval_once<T: Transport>(
    transport: &T,
    code: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let req = match meta::parse(code)? {
        Action::Help => {
            println!("{}", meta::help());
            return Ok(());
        }
        Action::Send(req) => req,
    };
    if let Request::Log { level } = &req {
        if level == "off" {
            return Err("`.log off` stops the stream of an interactive console".into());
        }
        let (conn, note) = crate::log::open(transport, level)?;
        eprintln!("{note}");
        crate::log::follow(conn, |line| {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        });
        return Ok(());
    }
    let mut conn = attach(transport)?;
    match conn.request(&req)? {
        Response::Ok(text) => {
            if !text.is_empty() {
                println!("{text}");
            }
            Ok(())
        }
        Response::Error(e) => Err(e.into()),
        Response::Log { .. } => Err("unexpected log lines".into()),
    }
}

/// Interrupts the console line running on the node (for a Ctrl-C handler:
/// the line's own connection is busy waiting for its answer).
pub fn interrupt<T: Transport>(transport: &T) {
    if let Ok(mut conn) = transport.connect() {
        let _ = conn.request(&Request::Interrupt);
    }
}
