//! The console's way to a node's control socket: the [`Transport`] and
//! [`Connection`] of `peerlet-repl`, over a Unix socket, with the frame
//! codec the nodes use between themselves ([`crate::wire`]).

use std::fmt;
use std::io;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use peerlet_repl::{Connection, Request, Response, Transport};

use super::server::MAX_FRAME;
use crate::wire::{read_frame, write_frame, FrameError};

/// A node's control socket, by its path.
pub struct ControlSocket {
    path: PathBuf,
}

impl ControlSocket {
    pub fn new(path: &Path) -> ControlSocket {
        ControlSocket {
            path: path.to_path_buf(),
        }
    }
}

impl fmt::Display for ControlSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.path.display().fmt(f)
    }
}

impl Transport for ControlSocket {
    type Connection = Client;

    fn connect(&self) -> io::Result<Client> {
        Client::connect(&self.path)
    }
}

/// A connection to a node's control socket. [`Connection::request`] sends a
/// request and waits for the answer.
pub struct Client {
    stream: UnixStream,
}

impl Client {
    pub fn connect(socket: &Path) -> io::Result<Client> {
        let stream = UnixStream::connect(socket)?;
        Ok(Client { stream })
    }
}

impl Connection for Client {
    type Error = FrameError;

    fn send(&mut self, req: &Request) -> Result<(), FrameError> {
        write_frame(&mut self.stream, req, MAX_FRAME)
    }

    fn receive(&mut self) -> Result<Option<Response>, FrameError> {
        read_frame(&mut self.stream, MAX_FRAME)
    }

    fn try_clone(&self) -> io::Result<Client> {
        Ok(Client {
            stream: self.stream.try_clone()?,
        })
    }

    fn close(&self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}
