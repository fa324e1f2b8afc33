//! `peerlet repl`: an interactive Lua console attached to a running node
//! through its control socket ([`crate::control`]).
//!
//! Lines starting with `.` are meta commands (see [`HELP`]); everything else
//! is Lua, sent to the node's console once it is a complete chunk (the
//! editor keeps reading lines while it is not, see `repl/helper.rs`). History is
//! kept next to the socket, in the node's owner-only data directory.

mod helper;
mod log;
mod short_ids;

use std::io::IsTerminal;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::Editor;

use crate::control::{Client, Request, Response};

/// What `.help` prints.
pub const HELP: &str = "\
Lua lines run on the node, in its console peerlet (same API and budgets as
any peerlet: kbr, peerlet, timer, clock, log, store). Expressions print
their values; a chunk continues over several lines until it is complete.
Meta commands:
  .help               this text
  .peers              successors, predecessor, fingers, with liveness
                      (alive / suspected / unknown, from what the node saw)
  .ring               the ring as this node knows it
  .apps               installed peerlets and their counters
  .load FILE          install the peerlet in FILE: signed if FILE.minisig
                      exists, or signed with DATA/peerlet.key if the node
                      trusts that key, else unsigned as this node's own
  .reload NAME [FILE] swap the code of peerlet NAME for FILE (default: the
                      file it was loaded from); its save()/restore(state)
                      hand the state over; a signed peerlet's new code is
                      signed like .load's (other nodes update by traffic
                      when its version= is higher)
  .unload NAME        remove peerlet NAME
  .trace KEY          route a probe to KEY (40 hex digits, else a name
                      hashed like kbr.key) and list each hop: number, id,
                      address, ms until this node heard from it
  .stats              messages and bytes, queue depths, peerlet reports
  .log [LEVEL]        stream the node's log here at LEVEL (error, warn,
                      info (default), debug, trace); .log off stops
Ctrl-C interrupts a line waiting on a remote call; Ctrl-D leaves.";

/// The meta commands, for completion.
pub const META_COMMANDS: &[&str] = &[
    ".help", ".peers", ".ring", ".apps", ".load", ".reload", ".unload", ".stats", ".trace", ".log",
];

/// Turns one input (a meta command or Lua) into a request, or says what is
/// wrong with it. Paths are made absolute: the node reads them from its own
/// working directory.
pub fn parse_input(line: &str) -> Result<Request, String> {
    let trimmed = line.trim();
    if !trimmed.starts_with('.') {
        return Ok(Request::Eval {
            code: line.to_string(),
        });
    }
    let words: Vec<&str> = trimmed.split_whitespace().collect();
    let abs = |p: &str| std::path::absolute(p).unwrap_or_else(|_| PathBuf::from(p));
    match words.as_slice() {
        [".peers"] => Ok(Request::Peers),
        [".apps"] => Ok(Request::Apps),
        [".ring"] => Ok(Request::Ring),
        [".stats"] => Ok(Request::Stats),
        [".log"] => Ok(Request::Log {
            level: log::DEFAULT_LEVEL.into(),
        }),
        [".log", level] => Ok(Request::Log {
            level: level.to_string(),
        }),
        // The rest of the line: a name may have spaces.
        [".trace", _, ..] => Ok(Request::Trace {
            key: trimmed[".trace".len()..].trim().to_string(),
        }),
        [".load", file] => Ok(Request::Load { path: abs(file) }),
        [".reload", name] => Ok(Request::Reload {
            name: name.to_string(),
            path: None,
        }),
        [".reload", name, file] => Ok(Request::Reload {
            name: name.to_string(),
            path: Some(abs(file)),
        }),
        [".unload", name] => Ok(Request::Unload {
            name: name.to_string(),
        }),
        [cmd, ..] if META_COMMANDS.contains(cmd) => Err(format!("usage: see .help ({cmd})")),
        [cmd, ..] => Err(format!("unknown command {cmd}; try .help")),
        [] => Err("empty command".into()),
    }
}

/// `-e CODE`: one request, its answer on stdout (or the error on stderr and
/// `Err`, for a non-zero exit status).
pub fn eval_once(socket: &Path, code: &str) -> Result<(), Box<dyn std::error::Error>> {
    let req = parse_input(code)?;
    if let Request::Log { level } = &req {
        // Like `tail -f`: lines until the node stops or we are killed.
        if level == "off" {
            return Err("`.log off` stops the stream of an interactive console".into());
        }
        let (stream, note) = log::open(socket, level)?;
        eprintln!("{note}");
        log::follow(stream, |line| {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        });
        return Ok(());
    }
    let mut client = connect(socket)?;
    match client.request(&req)? {
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
pub fn interrupt(socket: &Path) {
    if let Ok(mut client) = Client::connect(socket) {
        let _ = client.request(&Request::Interrupt);
    }
}

fn connect(socket: &Path) -> Result<Client, String> {
    Client::connect(socket).map_err(|e| format!("cannot attach to {}: {e}", socket.display()))
}

/// The interactive loop, until Ctrl-D.
pub fn run(socket: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let mut client = connect(socket)?;
    // Colour only on a terminal, and never when NO_COLOR is set (no-color.org).
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let mut editor: Editor<helper::ReplHelper, FileHistory> = Editor::new()?;
    editor.set_helper(Some(helper::ReplHelper::new()));
    let history = socket.with_file_name("repl_history");
    let _ = editor.load_history(&history);
    println!("attached to {} (.help for commands)", socket.display());
    // The connection of the log stream `.log` started, if any.
    let mut following: Option<UnixStream> = None;
    // The node's words: peerlet names and the ids it knows (for Tab, and
    // to keep shortened ids apart).
    let mut words: Vec<String> = Vec::new();
    loop {
        if let Ok(Response::Ok(text)) = client.request(&Request::Completions) {
            words = text.lines().map(str::to_string).collect();
            if let Some(h) = editor.helper_mut() {
                h.set_node_words(words.clone());
            }
        }
        let line = match editor.readline("peerlet> ") {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        if line.trim().is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(line.as_str());
        // Saved at once: a REPL killed during a long line keeps its history.
        let _ = editor.save_history(&history);
        if line.trim() == ".help" {
            println!("{HELP}");
            continue;
        }
        let answer = match parse_input(&line) {
            Ok(Request::Log { level }) => follow_log(socket, &level, &mut editor, &mut following),
            Ok(req @ Request::Eval { .. }) => match client.request(&req) {
                Ok(Response::Ok(text)) => Response::Ok(short_ids::shorten(&text, &words)),
                other => other.map_err(|e| e.to_string())?,
            },
            Ok(req) => client.request(&req).map_err(|e| e.to_string())?,
            Err(e) => Response::Error(e),
        };
        match answer {
            Response::Ok(text) if text.is_empty() => {}
            Response::Ok(text) => println!("{text}"),
            Response::Error(e) if colour => println!("\x1b[31m{e}\x1b[0m"),
            Response::Error(e) => println!("{e}"),
            Response::Log { .. } => {}
        }
    }
    if let Some(stream) = following {
        log::stop(&stream);
    }
    if let Err(e) = editor.save_history(&history) {
        eprintln!("peerlet: cannot save history to {}: {e}", history.display());
    }
    Ok(())
}

/// `.log LEVEL` / `.log off`: replaces the running log stream, if any, by
/// one at LEVEL, whose lines a thread prints above the prompt.
fn follow_log(
    socket: &Path,
    level: &str,
    editor: &mut Editor<helper::ReplHelper, FileHistory>,
    following: &mut Option<UnixStream>,
) -> Response {
    let was_on = following.take().inspect(log::stop).is_some();
    if level == "off" {
        return Response::Ok(
            if was_on {
                "log stream stopped"
            } else {
                "no log stream to stop"
            }
            .into(),
        );
    }
    let (stream, note) = match log::open(socket, level) {
        Ok(opened) => opened,
        Err(e) => return Response::Error(e),
    };
    let Ok(ours) = stream.try_clone() else {
        return Response::Error("cannot share the log connection".into());
    };
    // Above the prompt when the editor can, else plainly.
    let mut printer = editor.create_external_printer().ok();
    std::thread::spawn(move || {
        log::follow(stream, |line| match printer.as_mut() {
            // Between two prompts the printer writes as it is given: the
            // newline keeps the next prompt from overwriting the line.
            Some(p) => {
                let _ = rustyline::ExternalPrinter::print(p, format!("{line}\n"));
            }
            None => println!("{line}"),
        })
    });
    *following = Some(ours);
    Response::Ok(note)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_commands_become_requests() {
        assert_eq!(parse_input(".apps"), Ok(Request::Apps));
        assert_eq!(
            parse_input(".unload dht"),
            Ok(Request::Unload { name: "dht".into() })
        );
        assert!(parse_input(".load").is_err());
        assert!(parse_input(".nope").is_err());
        assert_eq!(
            parse_input("1 + 1"),
            Ok(Request::Eval {
                code: "1 + 1".into()
            })
        );
    }
}
