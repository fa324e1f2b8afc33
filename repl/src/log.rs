//! The console's side of `.log [LEVEL]`: a second connection to the node
//! that carries nothing but its log lines (see [`Request::Log`]), so the
//! console stays usable while they arrive. Closing that connection
//! (`.log off`, leaving the REPL) ends the stream on the node.

use crate::protocol::{Request, Response};
use crate::transport::{attach, Connection, Transport};

/// What `.log` with no level streams.
pub const DEFAULT_LEVEL: &str = "info";

/// Opens the stream at `level`; returns the connection and the node's
/// first answer ("streaming ...").
pub fn open<T: Transport>(transport: &T, level: &str) -> Result<(T::Connection, String), String> {
    let mut conn = attach(transport)?;
    let req = Request::Log {
        level: level.to_string(),
    };
    conn.send(&req).map_err(|e| e.to_string())?;
    match conn.receive().map_err(|e| e.to_string())? {
        Some(Response::Ok(text)) => Ok((conn, text)),
        Some(Response::Error(e)) => Err(e),
        Some(Response::Log { .. }) | None => Err("the node did not start the log stream".into()),
    }
}

/// Hands every line of the stream to `print` (and a note for dropped
/// lines), until the node or [`Connection::close`] ends the connection.
pub fn follow(mut conn: impl Connection, mut print: impl FnMut(String)) {
    while let Ok(Some(Response::Log { lines, dropped })) = conn.receive() {
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
