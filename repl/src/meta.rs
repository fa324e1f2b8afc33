//! The meta commands (`.peers`, `.load FILE`, ...), described once: the
//! table [`META_COMMANDS`] gives each one's name, arguments, help text and
//! the request it makes, and `.help`, Tab completion and [`parse`] all read
//! it. A line that does not start with `.` is Lua for the node's console.

use std::fmt::Write;
use std::path::PathBuf;

use crate::protocol::Request;

/// What a line of input asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Print [`help`] here: nothing goes to the node.
    Help,
    /// Send this to the node.
    Send(Request),
}

/// One meta command.
pub struct MetaCommand {
    /// What is typed, dot included.
    pub name: &'static str,
    /// Its arguments as `.help` shows them: `FILE`, `NAME [FILE]`.
    pub args: &'static str,
    /// What it does, for `.help`; lines after the first are indented there.
    pub help: &'static str,
    /// The action for the words after the name (and, for arguments that
    /// may hold spaces, the rest of the line); `None` when they do not fit
    /// [`MetaCommand::args`].
    build: fn(&[&str], &str) -> Option<Action>,
}

impl MetaCommand {
    /// The name and arguments: `.reload NAME [FILE]`.
    pub fn usage(&self) -> String {
        match self.args {
            "" => self.name.to_string(),
            args => format!("{} {args}", self.name),
        }
    }
}

/// Every meta command, in the order `.help` lists them.
pub const META_COMMANDS: &[MetaCommand] = &[
    MetaCommand {
        name: ".help",
        args: "",
        help: "this text",
        build: |args, _| args.is_empty().then_some(Action::Help),
    },
    MetaCommand {
        name: ".peers",
        args: "",
        help: "successors, predecessor, fingers, with liveness\n\
               (alive / suspected / unknown, from what the node saw)",
        build: |args, _| bare(args, Request::Peers),
    },
    MetaCommand {
        name: ".ring",
        args: "",
        help: "the ring as this node knows it",
        build: |args, _| bare(args, Request::Ring),
    },
    MetaCommand {
        name: ".apps",
        args: "",
        help: "installed peerlets and their counters",
        build: |args, _| bare(args, Request::Apps),
    },
    MetaCommand {
        name: ".load",
        args: "FILE",
        help: "install the peerlet in FILE: signed if FILE.minisig\n\
               exists, or signed with DATA/peerlet.key if the node\n\
               trusts that key, else unsigned as this node's own",
        build: |args, _| match args {
            [file] => send(Request::Load {
                path: absolute(file),
            }),
            _ => None,
        },
    },
    MetaCommand {
        name: ".reload",
        args: "NAME [FILE]",
        help: "swap the code of peerlet NAME for FILE (default: the\n\
               file it was loaded from); its save()/restore(state)\n\
               hand the state over; a signed peerlet's new code is\n\
               signed like .load's (other nodes update by traffic\n\
               when its version= is higher)",
        build: |args, _| match args {
            [name] => send(Request::Reload {
                name: name.to_string(),
                path: None,
            }),
            [name, file] => send(Request::Reload {
                name: name.to_string(),
                path: Some(absolute(file)),
            }),
            _ => None,
        },
    },
    MetaCommand {
        name: ".versions",
        args: "NAME",
        help: "which nodes run which version of peerlet NAME, as\n\
               far as the overlay knows (its publishers, newest\n\
               version, code; nodes say what they run every 30 s)",
        build: |args, _| match args {
            [name] => send(Request::Versions {
                name: name.to_string(),
            }),
            _ => None,
        },
    },
    MetaCommand {
        name: ".unload",
        args: "NAME",
        help: "remove peerlet NAME",
        build: |args, _| match args {
            [name] => send(Request::Unload {
                name: name.to_string(),
            }),
            _ => None,
        },
    },
    MetaCommand {
        name: ".trace",
        args: "KEY",
        help: "route a probe to KEY (40 hex digits, else a name\n\
               hashed like kbr.key) and list each hop: number, id,\n\
               address, ms until this node heard from it",
        // The rest of the line: a name may have spaces.
        build: |_, rest| {
            (!rest.is_empty()).then(|| {
                Action::Send(Request::Trace {
                    key: rest.to_string(),
                })
            })
        },
    },
    MetaCommand {
        name: ".stats",
        args: "",
        help: "messages and bytes, queue depths, peerlet reports",
        build: |args, _| bare(args, Request::Stats),
    },
    MetaCommand {
        name: ".log",
        args: "[LEVEL]",
        help: "stream the node's log here at LEVEL (error, warn,\n\
               info (default), debug, trace); .log off stops",
        build: |args, _| match args {
            [] => send(Request::Log {
                level: crate::log::DEFAULT_LEVEL.into(),
            }),
            [level] => send(Request::Log {
                level: level.to_string(),
            }),
            _ => None,
        },
    },
    MetaCommand {
        name: ".nodes",
        args: "",
        help: "the nodes of this demo: number, address, id, state",
        build: |args, _| bare(args, Request::Nodes),
    },
    MetaCommand {
        name: ".crash",
        args: "N|successor",
        help: "stop node N of this demo (or this node's successor)\n\
               at once, telling nobody (its neighbours find out by\n\
               their own checks)",
        build: |args, _| match args {
            [n] => n
                .parse()
                .ok()
                .and_then(|node| send(Request::Crash { node })),
            _ => None,
        },
    },
    MetaCommand {
        name: ".leave",
        args: "N|successor",
        help: "make node N of this demo (or this node's successor)\n\
               leave the ring gracefully",
        build: |args, _| match args {
            [n] => n
                .parse()
                .ok()
                .and_then(|node| send(Request::Leave { node })),
            _ => None,
        },
    },
    MetaCommand {
        name: ".spawn",
        args: "",
        help: "start one more node in this demo; it joins the ring",
        build: |args, _| bare(args, Request::Spawn),
    },
    MetaCommand {
        name: ".partition",
        args: "GROUP GROUP…",
        help: "cut the network between groups of nodes (e.g. 0-4 5-9,\n\
               or 0,2 3); nodes no group names are one group more",
        build: |args, _| {
            let groups: Option<Vec<Vec<usize>>> = args.iter().map(|g| parse_group(g)).collect();
            match groups {
                Some(groups) if !groups.is_empty() => send(Request::Partition { groups }),
                _ => None,
            }
        },
    },
    MetaCommand {
        name: ".heal",
        args: "",
        help: "lift the partition: every node hears every other again",
        build: |args, _| bare(args, Request::Heal),
    },
];

/// `0-4`, `3`, `0,2,5-7`: node numbers.
fn parse_group(text: &str) -> Option<Vec<usize>> {
    let mut nodes = Vec::new();
    for part in text.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
                if a > b || b - a > 10_000 {
                    return None;
                }
                nodes.extend(a..=b);
            }
            None => nodes.push(part.parse().ok()?),
        }
    }
    Some(nodes)
}

const HELP_INTRO: &str = "\
Lua lines run on the node, in its console peerlet (same API and budgets as
any peerlet: kbr, peerlet, timer, clock, log, store). Expressions print
their values; a chunk continues over several lines until it is complete.
Meta commands:";

const HELP_END: &str = "Ctrl-C interrupts a line waiting on a remote call; Ctrl-D leaves.";

/// Width of the usage column in `.help`.
const USAGE_WIDTH: usize = 19;

/// What `.help` prints.
pub fn help() -> String {
    let mut out = String::from(HELP_INTRO);
    for c in META_COMMANDS {
        let mut lines = c.help.lines();
        let first = lines.next().unwrap_or_default();
        let _ = write!(out, "\n  {:<USAGE_WIDTH$} {first}", c.usage());
        for line in lines {
            let _ = write!(out, "\n  {:USAGE_WIDTH$} {line}", "");
        }
    }
    out.push('\n');
    out.push_str(HELP_END);
    out
}

/// Turns one input (a meta command or Lua) into an action, or says what is
/// wrong with it. Paths are made absolute: the node reads them from its own
/// working directory.
///
/// # Examples
/// ```
/// use peerlet_repl::meta::{parse, Action};
/// use peerlet_repl::Request;
///
/// let unload = parse(".unload dht").unwrap();
/// assert_eq!(unload, Action::Send(Request::Unload { name: "dht".into() }));
/// assert_eq!(parse(".load").unwrap_err(), "usage: .load FILE");
/// assert!(matches!(parse("kbr.id()"), Ok(Action::Send(Request::Eval { .. }))));
/// ```
pub fn parse(line: &str) -> Result<Action, String> {
    let trimmed = line.trim();
    if !trimmed.starts_with('.') {
        return Ok(Action::Send(Request::Eval {
            code: line.to_string(),
        }));
    }
    let mut words = trimmed.split_whitespace();
    let name = words.next().unwrap_or(trimmed);
    let args: Vec<&str> = words.collect();
    let rest = trimmed[name.len()..].trim();
    let command = META_COMMANDS
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| format!("unknown command {name}; try .help"))?;
    (command.build)(&args, rest).ok_or_else(|| format!("usage: {}", command.usage()))
}

/// A command without arguments.
fn bare(args: &[&str], req: Request) -> Option<Action> {
    args.is_empty().then_some(Action::Send(req))
}

fn send(req: Request) -> Option<Action> {
    Some(Action::Send(req))
}

fn absolute(path: &str) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_commands_become_requests_and_misuse_shows_the_usage() {
        assert_eq!(parse(" .apps "), Ok(Action::Send(Request::Apps)));
        assert_eq!(parse(".help"), Ok(Action::Help));
        assert_eq!(
            parse(".trace a name with spaces"),
            Ok(Action::Send(Request::Trace {
                key: "a name with spaces".into()
            }))
        );
        assert_eq!(
            parse(".log"),
            Ok(Action::Send(Request::Log {
                level: "info".into()
            }))
        );
        let Ok(Action::Send(Request::Reload { name, path })) = parse(".reload dht x.lua") else {
            panic!("a reload");
        };
        assert_eq!(name, "dht");
        assert!(path.is_some_and(|p| p.is_absolute() && p.ends_with("x.lua")));
        assert_eq!(
            parse(".versions vote"),
            Ok(Action::Send(Request::Versions {
                name: "vote".into()
            }))
        );
        assert_eq!(parse(".versions"), Err("usage: .versions NAME".into()));
        assert_eq!(parse(".peers now"), Err("usage: .peers".into()));
        assert_eq!(parse(".trace"), Err("usage: .trace KEY".into()));
        assert_eq!(
            parse(".reload a b c"),
            Err("usage: .reload NAME [FILE]".into())
        );
        assert_eq!(
            parse(".nope"),
            Err("unknown command .nope; try .help".into())
        );
        assert_eq!(
            parse("1 + 1"),
            Ok(Action::Send(Request::Eval {
                code: "1 + 1".into()
            }))
        );
    }

    #[test]
    fn help_lists_every_command_with_its_usage_and_aligned_text() {
        let help = help();
        for c in META_COMMANDS {
            let line = format!("\n  {:<USAGE_WIDTH$} ", c.usage());
            assert!(help.contains(&line), "{} missing from:\n{help}", c.name);
        }
        let column = 2 + USAGE_WIDTH + 1;
        let continued = help
            .lines()
            .filter(|l| l.starts_with("   "))
            .collect::<Vec<_>>();
        assert!(!continued.is_empty());
        for line in continued {
            assert_eq!(line.len() - line.trim_start().len(), column, "{line}");
        }
    }
}
