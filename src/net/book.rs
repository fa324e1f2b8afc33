//! The address book: which key this node found at which address, by
//! reaching it itself.
//!
//! An address is believed only when this node's own outgoing connection
//! to it completed a handshake ([`super::secure`]): the book holds what that
//! handshake proved, for as long as the connection lives. A peer whose
//! incoming connection names a listen address is heard only once the book
//! shows the same key at that address ([`Book::wait`]); the transport dials
//! the address to find out. So a peer cannot take another node's address,
//! and a node never talks to an address a message merely names until the
//! key there is the one expected.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;

use smol::channel::{self, Receiver, Sender};

use super::secure::PeerIdentity;

/// Shared by the transport's tasks, all on the node's thread.
pub type SharedBook = Rc<RefCell<Book>>;

#[derive(Default)]
pub struct Book {
    /// What each connection found, with the connection's generation.
    found: HashMap<SocketAddr, (PeerIdentity, u64)>,
    waiting: HashMap<SocketAddr, Vec<Sender<Option<PeerIdentity>>>>,
}

impl Book {
    /// Our connection `generation` to `addr` completed its handshake with
    /// `peer`.
    pub fn found(&mut self, addr: SocketAddr, peer: PeerIdentity, generation: u64) {
        self.found.insert(addr, (peer, generation));
        for w in self.waiting.remove(&addr).unwrap_or_default() {
            let _ = w.try_send(Some(peer));
        }
    }

    /// Our connection `generation` to `addr` ended (or never completed);
    /// generation 0: no connection will be tried now.
    pub fn lost(&mut self, addr: SocketAddr, generation: u64) {
        if self.found.get(&addr).is_some_and(|(_, g)| *g == generation) {
            self.found.remove(&addr);
        }
        if self.found.contains_key(&addr) {
            return;
        }
        for w in self.waiting.remove(&addr).unwrap_or_default() {
            let _ = w.try_send(None);
        }
    }

    /// The identity at `addr` once a connection there completes (at once if
    /// one is up); `None` if it fails. The caller makes sure one is tried.
    pub fn wait(&mut self, addr: SocketAddr) -> Receiver<Option<PeerIdentity>> {
        let (tx, rx) = channel::bounded(1);
        match self.found.get(&addr) {
            Some((peer, _)) => {
                let _ = tx.try_send(Some(*peer));
            }
            None => self.waiting.entry(addr).or_default().push(tx),
        }
        rx
    }

    /// Drops waiters that gave up (their receiver is gone), so a flood of
    /// checks that time out leaves nothing behind.
    pub fn prune(&mut self) {
        self.waiting.retain(|_, ws| {
            ws.retain(|w| w.receiver_count() > 0);
            !ws.is_empty()
        });
    }
}
