//! The interactive console: a line editor in front of a node, until Ctrl-D.
//!
//! Lines starting with `.` are meta commands ([`crate::meta`]); everything
//! else is Lua, sent to the node's console once it is a complete chunk
//! ([`crate::multiline`]). After each line the node tells the words Tab
//! offers and the ids printed tables are shortened against.

use std::io::IsTerminal;
use std::path::Path;

use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::Editor;

use crate::input::ConsoleInput;
use crate::meta::{self, Action};
use crate::protocol::{Request, Response};
use crate::short_ids;
use crate::transport::{attach, Connection, Transport};

/// Runs the console on this terminal until Ctrl-D, with its history in the
/// file `history`.
pub fn run<T: Transport>(transport: &T, history: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let mut conn = attach(transport)?;
    // Colour only on a terminal, and never when NO_COLOR is set (no-color.org).
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let mut editor: Editor<ConsoleInput, FileHistory> = Editor::new()?;
    editor.set_helper(Some(ConsoleInput::default()));
    let _ = editor.load_history(history);
    println!("attached to {transport} (.help for commands)");
    // The connection of the log stream `.log` started, if any.
    let mut following: Option<T::Connection> = None;
    // The node's words: peerlet names and the ids it knows (for Tab, and
    // to keep shortened ids apart).
    let mut words: Vec<String> = Vec::new();
    loop {
        if let Ok(Response::Ok(text)) = conn.request(&Request::Completions) {
            words = text.lines().map(str::to_string).collect();
            if let Some(input) = editor.helper_mut() {
                input.completion.set_node_words(words.clone());
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
        let _ = editor.save_history(history);
        let answer = match meta::parse(&line) {
            Ok(Action::Help) => Response::Ok(meta::help()),
            Ok(Action::Send(Request::Log { level })) => {
                follow_log(transport, &level, &mut editor, &mut following)
            }
            Ok(Action::Send(req @ Request::Eval { .. })) => match conn.request(&req) {
                Ok(Response::Ok(text)) => Response::Ok(short_ids::shorten(&text, &words)),
                other => other.map_err(|e| e.to_string())?,
            },
            Ok(Action::Send(req)) => conn.request(&req).map_err(|e| e.to_string())?,
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
        stream.close();
    }
    if let Err(e) = editor.save_history(history) {
        eprintln!("peerlet: cannot save history to {}: {e}", history.display());
    }
    Ok(())
}

/// `.log LEVEL` / `.log off`: replaces the running log stream, if any, by
/// one at LEVEL, whose lines a thread prints above the prompt.
fn follow_log<T: Transport>(
    transport: &T,
    level: &str,
    editor: &mut Editor<ConsoleInput, FileHistory>,
    following: &mut Option<T::Connection>,
) -> Response {
    let was_on = following.take().inspect(|s| s.close()).is_some();
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
    let (stream, note) = match crate::log::open(transport, level) {
        Ok(opened) => opened,
        Err(e) => return Response::Error(e),
    };
    let Ok(ours) = stream.try_clone() else {
        return Response::Error("cannot share the log connection".into());
    };
    // Above the prompt when the editor can, else plainly.
    let mut printer = editor.create_external_printer().ok();
    std::thread::spawn(move || {
        crate::log::follow(stream, |line| match printer.as_mut() {
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
