//! The REPL's side of `.log [LEVEL]`: a second connection to the control
//! socket that carries nothing but the node's log lines (see
//! [`crate::control::Request::Log`]), so the console stays usable while
//! they arrive. Closing that connection (`.log off`, leaving the REPL)
//! ends the stream on the node.

use std::os::unix::net::UnixStream;
use std::path::Path;

use crate::control::{Request, Response, MAX_FRAME};
use crate::wire::{read_frame, write_frame};

/// What `.log` with no level streams.
pub const DEFAULT_LEVEL: &str = "info";

/// Opens the stream at `level`; returns the connection and the node's
/// first answer ("streaming ...").
pub fn open(socket: &Path, level: &str) -> Result<(UnixStream, String), String> {
    let mut stream = UnixStream::connect(socket)
        .map_err(|e| format!("cannot attach to {}: {e}", socket.display()))?;
    let req = Request::Log {
        level: level.to_string(),
    };
    write_frame(&mut stream, &req, MAX_FRAME).map_err(|e| e.to_string())?;
    match read_frame(&mut stream, MAX_FRAME).map_err(|e| e.to_string())? {
        Some(Response::Ok(text)) => Ok((stream, text)),
        Some(Response::Error(e)) => Err(e),
        Some(Response::Log { .. }) | None => Err("the node did not start the log stream".into()),
    }
}

/// Hands every line of the stream to `print` (and a note for dropped
/// lines), until the node or [`stop`] closes the connection.
pub fn follow(mut stream: UnixStream, mut print: impl FnMut(String)) {
    while let Ok(Some(Response::Log { lines, dropped })) = read_frame(&mut stream, MAX_FRAME) {
        if dropped > 0 {
            print(format!(
                "({dropped} log line(s) dropped: the console read too slowly)"
            ));
        }
        for line in lines {
            print(line);
        }
    }
}

/// Ends a stream that a thread follows (its reads then fail).
pub fn stop(stream: &UnixStream) {
    let _ = stream.shutdown(std::net::Shutdown::Both);
}
