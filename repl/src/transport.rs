//! How the console reaches a node. This crate speaks [`Request`]s and
//! [`Response`]s and leaves the bytes to its caller: the node crate
//! implements these traits for its Unix control socket with the frame codec
//! its nodes use between themselves, so the codec is written once and this
//! crate does not depend on the node (which depends on it for the protocol).

use std::fmt::Display;
use std::io;

use crate::protocol::{Request, Response};

/// Where a node's console is: opens as many connections as the console
/// needs (its own, one for a log stream, one for each interrupt). Displayed
/// in messages ("attached to ...").
pub trait Transport: Display {
    type Connection: Connection;

    fn connect(&self) -> io::Result<Self::Connection>;
}

/// One connection to a node's console.
pub trait Connection: Sized + Send + 'static {
    type Error: std::error::Error + From<io::Error> + Send + Sync + 'static;

    fn send(&mut self, req: &Request) -> Result<(), Self::Error>;

    /// The next response; `None` when the node closed the connection
    /// between two responses.
    fn receive(&mut self) -> Result<Option<Response>, Self::Error>;

    /// A second handle on this connection: one thread reads a log stream
    /// while another keeps the means to [`Connection::close`] it.
    fn try_clone(&self) -> io::Result<Self>;

    /// Closes the connection both ways; a thread reading it sees its end.
    fn close(&self);

    /// Sends `req` and waits for the node's answer.
    fn request(&mut self, req: &Request) -> Result<Response, Self::Error> {
        self.send(req)?;
        self.receive()?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the node closed the control connection",
            )
            .into()
        })
    }
}

/// Connects, or says which node could not be reached.
pub fn attach<T: Transport>(transport: &T) -> Result<T::Connection, String> {
    transport
        .connect()
        .map_err(|e| format!("cannot attach to {transport}: {e}"))
}
