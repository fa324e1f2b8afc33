//! The `handshake` target: the acceptor's side of a secure link
//! (`net::secure::respond`) fed what a peer sends, over an in-memory pipe.
//!
//! The first byte of an input picks the peer. Below 128 it is a real
//! opener (`initiate_with`) whose hello is the rest of the input, so
//! mutations reach the hello's decoding and the id and lab checks behind a
//! valid handshake. From 128 it is raw bytes: the rest of the input is
//! everything the acceptor reads (handshake messages of any length, and
//! then records), so mutations reach the message framing, Noise's own
//! checks, and the record reader. Bound: 16 bytes per input byte plus the
//! handshake's fixed buffers and [`super::targets`]'s slack.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use peerlet::net::secure::{self, LinkSettings};
use peerlet::net::NodeKey;
use peerlet::wire::{Message, NodeRef};
use smol::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::engine::Target;
use crate::mutate::Form;
use crate::targets::Make;

/// One direction of an in-memory pipe.
#[derive(Default)]
struct Pipe {
    bytes: VecDeque<u8>,
    reader: Option<Waker>,
    closed: bool,
}

/// One end of a pipe pair: reads one direction, writes the other.
struct End {
    rx: Rc<RefCell<Pipe>>,
    tx: Rc<RefCell<Pipe>>,
}

fn pair() -> (End, End) {
    let (a, b): (Rc<RefCell<Pipe>>, Rc<RefCell<Pipe>>) = (Rc::default(), Rc::default());
    (
        End {
            rx: a.clone(),
            tx: b.clone(),
        },
        End { rx: b, tx: a },
    )
}

impl AsyncRead for End {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut p = self.rx.borrow_mut();
        if p.bytes.is_empty() {
            if p.closed {
                return Poll::Ready(Ok(0));
            }
            p.reader = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = buf.len().min(p.bytes.len());
        for (slot, byte) in buf.iter_mut().zip(p.bytes.drain(..n)) {
            *slot = byte;
        }
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for End {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut p = self.tx.borrow_mut();
        p.bytes.extend(buf);
        if let Some(w) = p.reader.take() {
            w.wake();
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.tx.borrow_mut().close();
        Poll::Ready(Ok(()))
    }
}

impl Pipe {
    fn close(&mut self) {
        self.closed = true;
        if let Some(w) = self.reader.take() {
            w.wake();
        }
    }
}

impl Drop for End {
    fn drop(&mut self) {
        self.tx.borrow_mut().close();
    }
}

pub struct HandshakeTarget {
    opener: NodeKey,
    acceptor: NodeKey,
    me: NodeRef,
    settings: LinkSettings,
}

impl Make for HandshakeTarget {
    fn make() -> HandshakeTarget {
        let acceptor = NodeKey::from_secret([7; 32]);
        HandshakeTarget {
            opener: NodeKey::from_secret([9; 32]),
            me: NodeRef {
                id: acceptor.id(),
                addr: "127.0.0.1:4000".parse().unwrap(),
            },
            acceptor,
            settings: LinkSettings::default(),
        }
    }
}

impl Target for HandshakeTarget {
    type Outcome = String;

    fn form(&self) -> Form {
        Form::Cbor { start: 1 }
    }

    fn seeds(&self) -> Vec<Vec<u8>> {
        let opener = NodeRef {
            id: self.opener.id(),
            addr: "127.0.0.1:4001".parse().unwrap(),
        };
        let mut lab = opener;
        lab.id = peerlet::id::Id::key("chosen");
        let mut seeds = Vec::new();
        for node in [opener, lab] {
            let mut honest = vec![0u8];
            honest.extend(secure::hello_payload(node));
            seeds.push(honest);
        }
        let mut notify = vec![1u8];
        ciborium::into_writer(&Message::Notify, &mut notify).unwrap();
        seeds.push(notify);
        // Raw: a first message of the right size, then junk.
        let mut raw = vec![200u8, 0, 32];
        raw.extend([5u8; 32]);
        raw.extend([0, 48]);
        raw.extend([1u8; 48]);
        seeds.push(raw);
        seeds
    }

    fn alloc_limit(&self, input_len: usize) -> usize {
        16 * input_len + 256 * 1024
    }

    fn limit_text(&self) -> String {
        "16 × input + 256 KiB".into()
    }

    fn run(&mut self, input: &[u8]) -> String {
        let Some((&mode, rest)) = input.split_first() else {
            return "empty".into();
        };
        let (mut peer, end) = pair();
        let accept = secure::respond(
            end,
            &self.acceptor,
            self.me,
            &self.settings,
            Duration::from_secs(1),
        );
        smol::block_on(async {
            let speak = async {
                if mode < 128 {
                    let opened =
                        secure::initiate_with(&mut peer, &self.opener, rest, &self.settings).await;
                    if let Ok((mut sealer, _)) = opened {
                        // A record, then the end: the reader sees both.
                        let _ = peer.write_all(&sealer.sealed(rest)).await;
                    }
                } else {
                    let _ = peer.write_all(rest).await;
                }
                drop(peer);
            };
            let (accepted, ()) = smol::future::zip(accept, speak).await;
            match accepted {
                Ok((mut reader, who)) => {
                    let mut got = Vec::new();
                    let read = reader.read_to_end(&mut got).await;
                    format!(
                        "ok {:?} read {}",
                        who.node.id == self.opener.id(),
                        read.is_ok()
                    )
                }
                Err(e) => {
                    let text = e.to_string();
                    text.split(':').next().unwrap_or_default().to_string()
                }
            }
        })
    }

    fn shape(&self, outcome: &String) -> String {
        outcome.clone()
    }
}
