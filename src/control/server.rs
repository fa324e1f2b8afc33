//! The node side of the control socket: one thread accepts, one thread per
//! connection reads requests and runs them on the node through its
//! [`NodeHandle`] (so Lua still runs only on the node's own thread).

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::fleet::Fleet;
use crate::id::Id;
use crate::node::NodeHandle;
use crate::wire::{read_frame, write_frame};
use peerlet_repl::{NodeChoice, Request, Response};

/// The socket's file name in a node's data directory.
pub const SOCKET_NAME: &str = "control.sock";

/// Largest request or reply frame: 1 MiB.
pub const MAX_FRAME: usize = 1 << 20;

/// How long a console line waiting on remote calls may take in all (each
/// call has the node's own call timeout).
const EVAL_LIMIT: Duration = Duration::from_secs(60);

/// What the connection threads share: the node, and the file each peerlet
/// was last loaded from here (so `.reload NAME` can read it again).
struct Served {
    node: Arc<NodeHandle>,
    /// The other nodes of this process, in `peerlet demo`.
    fleet: Option<Arc<dyn Fleet>>,
    /// The socket's path: its directory is the node's data directory.
    socket: PathBuf,
    files: Mutex<HashMap<String, PathBuf>>,
}

/// Connections served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 16;

/// A listening control socket; dropping it removes the socket file (the
/// accept thread ends with the process).
pub struct ControlServer {
    path: PathBuf,
}

impl ControlServer {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Listens on `path` (a stale socket file there is replaced), readable and
/// writable by the owner only, and serves `node` on a background thread.
pub fn serve(path: &Path, node: Arc<NodeHandle>) -> io::Result<ControlServer> {
    serve_with(path, node, None)
}

/// [`serve`], with the other nodes of this process for the fault commands.
pub fn serve_with_fleet(
    path: &Path,
    node: Arc<NodeHandle>,
    fleet: Arc<dyn Fleet>,
) -> io::Result<ControlServer> {
    serve_with(path, node, Some(fleet))
}

fn serve_with(
    path: &Path,
    node: Arc<NodeHandle>,
    fleet: Option<Arc<dyn Fleet>>,
) -> io::Result<ControlServer> {
    if let Some(dir) = path.parent() {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let open = Arc::new(AtomicUsize::new(0));
    let served = Arc::new(Served {
        node,
        fleet,
        socket: path.to_path_buf(),
        files: Mutex::new(HashMap::new()),
    });
    std::thread::Builder::new()
        .name("peerlet-control".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                if open.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                    open.fetch_sub(1, Ordering::SeqCst);
                    tracing::warn!("control socket: too many connections, closing one");
                    continue;
                }
                let (served, open) = (served.clone(), open.clone());
                let spawned = std::thread::Builder::new()
                    .name("peerlet-control-conn".into())
                    .spawn(move || {
                        serve_connection(stream, &served);
                        open.fetch_sub(1, Ordering::SeqCst);
                    });
                if spawned.is_err() {
                    tracing::warn!("control socket: cannot start a connection thread");
                }
            }
        })?;
    Ok(ControlServer {
        path: path.to_path_buf(),
    })
}

fn serve_connection(mut stream: UnixStream, served: &Served) {
    loop {
        let req: Request = match read_frame(&mut stream, MAX_FRAME) {
            Ok(Some(req)) => req,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!("control socket: closing a connection: {e}");
                return;
            }
        };
        if let Request::Log { level } = req {
            return stream_log(stream, &level);
        }
        let resp = answer(served, req).unwrap_or_else(Response::Error);
        if let Err(e) = write_frame(&mut stream, &resp, MAX_FRAME) {
            tracing::warn!("control socket: cannot reply: {e}");
            return;
        }
    }
}

/// How long the log stream waits for lines before it checks whether the
/// client left.
const LOG_POLL: Duration = Duration::from_millis(300);

/// Lines sent in one frame at most.
const LOG_BATCH: usize = 256;

/// Streams the log at `level` until the client closes the connection
/// (or sends anything: the stream takes no more requests).
fn stream_log(mut stream: UnixStream, level: &str) {
    let tapped = super::log_tap::parse_level(level).and_then(super::log_tap::subscribe);
    let tap = match tapped {
        Ok(tap) => tap,
        Err(e) => {
            let _ = write_frame(&mut stream, &Response::Error(e), MAX_FRAME);
            return;
        }
    };
    let hello = Response::Ok(format!(
        "streaming the node's log at {level} (.log off stops)"
    ));
    if write_frame(&mut stream, &hello, MAX_FRAME).is_err() {
        return;
    }
    loop {
        let (lines, dropped) = tap.next_batch(LOG_POLL, LOG_BATCH);
        if client_left(&stream) {
            return;
        }
        if lines.is_empty() && dropped == 0 {
            continue;
        }
        if write_frame(&mut stream, &Response::Log { lines, dropped }, MAX_FRAME).is_err() {
            return;
        }
    }
}

/// Whether the client closed its end (or wrote to a stream that reads
/// nothing), without blocking.
fn client_left(mut stream: &UnixStream) -> bool {
    use std::io::Read;
    if stream.set_nonblocking(true).is_err() {
        return true;
    }
    let mut byte = [0u8; 1];
    let left = !matches!(stream.read(&mut byte), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
    left || stream.set_nonblocking(false).is_err()
}

/// The number in `fleet` of the node a fault command means: `successor`
/// is the first successor of the node this console runs on.
fn number(node: &NodeHandle, fleet: &dyn Fleet, choice: NodeChoice) -> Result<usize, String> {
    match choice {
        NodeChoice::Number(i) => Ok(i),
        NodeChoice::Successor => {
            let succ = node
                .call(|kbr, now| kbr.view(now).successors().first().copied())
                .map_err(|e| e.to_string())?
                .filter(|s| s.id != node.id())
                .ok_or("this node has no successor: it is alone in its ring")?;
            fleet.number_of(succ.addr).ok_or_else(|| {
                format!("this node's successor {succ:?} is not a node of this process")
            })
        }
    }
}

/// Runs one request on the node.
fn answer(served: &Served, req: Request) -> Result<Response, String> {
    let node = &served.node;
    let on_node = |r: Result<Result<String, String>, crate::node::NodeError>| match r {
        Ok(Ok(text)) => Ok(Response::Ok(text)),
        Ok(Err(e)) => Ok(Response::Error(e)),
        Err(e) => Err(e.to_string()),
    };
    match req {
        Request::Eval { code } => Ok(eval(node, code)),
        Request::Nodes
        | Request::Crash { .. }
        | Request::Leave { .. }
        | Request::Spawn
        | Request::Partition { .. }
        | Request::Heal => {
            let Some(fleet) = &served.fleet else {
                return Ok(Response::Error(
                    "only in `peerlet demo` and `peerlet testnet`: this node runs alone in its process \
                     (stop a `peerlet node` with Ctrl-C, or kill it)"
                        .into(),
                ));
            };
            let done = |r: Result<String, String>| r.map_or_else(Response::Error, Response::Ok);
            Ok(match req {
                Request::Crash { node: choice } => {
                    done(number(node, fleet.as_ref(), choice).and_then(|i| fleet.crash(i)))
                }
                Request::Leave { node: choice } => {
                    done(number(node, fleet.as_ref(), choice).and_then(|i| fleet.leave(i)))
                }
                Request::Spawn => done(fleet.spawn()),
                Request::Partition { groups } => done(fleet.partition(&groups)),
                Request::Heal => done(fleet.heal()),
                _ => Response::Ok(fleet.nodes()),
            })
        }
        Request::Log { .. } => Err("a log stream takes a connection of its own".into()),
        Request::Peers => on_node(node.call(|kbr, now| Ok(super::show::peers(kbr, now)))),
        Request::Trace { key } => {
            // 40 hex digits are an id; anything else is a name, hashed
            // like kbr.key(name).
            let key = key.parse::<Id>().unwrap_or_else(|_| Id::key(&key));
            let report = node.trace(key).map_err(|e| e.to_string())?;
            Ok(Response::Ok(super::show::trace(&report)))
        }
        Request::Versions { name } => Ok(versions(node, name)),
        Request::Completions => on_node(node.with_peerlets(|m, api| {
            let mut words: Vec<String> = m.known_names();
            words.push(api.id().id.to_string());
            words.extend(api.view().known_nodes().iter().map(|n| n.id.to_string()));
            Ok(words.join("\n"))
        })),
        Request::Interrupt => on_node(node.with_peerlets(|m, _| {
            Ok(match m.console_interrupt() {
                true => "interrupted".into(),
                false => "nothing to interrupt".into(),
            })
        })),
        Request::Ring => on_node(node.with_peerlets(|_, api| Ok(super::show::ring(&*api.view())))),
        Request::Apps => on_node(node.with_peerlets(|m, _| Ok(super::show::apps(m)))),
        Request::Stats => {
            let stats = node.stats();
            let queues = node.queue_depths().map_err(|e| e.to_string())?;
            on_node(node.with_peerlets(move |m, _| Ok(super::show::stats(&stats, &queues, m))))
        }
        Request::Load { path } => {
            let data_dir = served.socket.parent();
            match super::load::load(node, data_dir, &path) {
                Ok(loaded) => {
                    let chunk = path.file_name().unwrap_or_default().to_string_lossy();
                    let text = format!(
                        "installed {chunk} as `{}` ({}), app {}",
                        loaded.name, loaded.how, loaded.app
                    );
                    let mut files = served.files.lock().expect("files lock");
                    files.insert(loaded.name, path);
                    Ok(Response::Ok(text))
                }
                Err(e) => Ok(Response::Error(e)),
            }
        }
        Request::Reload { name, path } => {
            let known = served.files.lock().expect("files lock").get(&name).cloned();
            let path = path.or(known).ok_or_else(|| {
                format!(
                    "peerlet `{name}` was not loaded from a file here: give .reload {name} FILE"
                )
            })?;
            let n = name.clone();
            let signed = node
                .with_peerlets(move |m, _| m.by_name(&n).map(|p| p.code.is_some()))
                .map_err(|e| e.to_string())?;
            if signed == Some(true) {
                let data_dir = served.socket.parent();
                return match super::load::reload_signed(node, data_dir, &path) {
                    Ok(l) if l.name == name => Ok(Response::Ok(format!(
                        "reloaded `{name}` ({}), app {}",
                        l.how, l.app
                    ))),
                    Ok(l) => Ok(Response::Error(format!(
                        "{} holds peerlet `{}`, not `{name}`: it was installed beside it",
                        path.display(),
                        l.name
                    ))),
                    Err(e) => Ok(Response::Error(e)),
                };
            }
            let source = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            on_node(node.with_peerlets(move |m, api| {
                let app = m.reload(api, &name, &source).map_err(|e| e.to_string())?;
                Ok(format!("reloaded `{name}` (app {app})"))
            }))
        }
        Request::Unload { name } => on_node(node.with_peerlets(move |m, _| {
            let app = m.unload(&name).map_err(|e| e.to_string())?;
            Ok(format!("unloaded `{name}` (app {app})"))
        })),
    }
}

/// `.versions NAME`: asks the overlay through the node's manager and waits
/// for the answer (the manager gives up after its asks time out).
fn versions(node: &NodeHandle, name: String) -> Response {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let asked = node.with_peerlets(move |m, api| {
        let done = Box::new(move |r| {
            let _ = tx.send(r);
        });
        m.versions(api, &name, done)
    });
    if let Err(e) = asked {
        return Response::Error(e.to_string());
    }
    match rx.recv_timeout(EVAL_LIMIT) {
        Ok(Ok(text)) => Response::Ok(text),
        Ok(Err(e)) => Response::Error(e),
        Err(_) => Response::Error("the node dropped the question (it is stopping)".into()),
    }
}

/// Runs a console line, waiting for its outcome while it waits on remote
/// calls.
fn eval(node: &NodeHandle, code: String) -> Response {
    let rx = match node.console_start(&code) {
        Ok(rx) => rx,
        Err(e) => return Response::Error(e.to_string()),
    };
    match rx.recv_timeout(EVAL_LIMIT) {
        Ok(Ok(text)) => Response::Ok(text),
        Ok(Err(e)) => Response::Error(e),
        Err(RecvTimeoutError::Timeout) => Response::Error(format!(
            "the console line got no answer within {EVAL_LIMIT:?}"
        )),
        Err(RecvTimeoutError::Disconnected) => Response::Error(
            "the console line was dropped (a newer line waited, the console was replaced, or the node stopped)"
                .into(),
        ),
    }
}
