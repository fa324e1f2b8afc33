//! A peer that speaks the wire protocol by hand, as an attacker would: it
//! has its own key, listens (so a node that dials back finds it), opens
//! secure links to nodes, and sends whatever frames, records or bytes a
//! test wants. What nodes send it is collected.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use peerlet::id::Id;
use peerlet::net::secure::{self, LinkSettings, PeerIdentity, Sealer};
use peerlet::net::{FrameReader, NodeKey};
use peerlet::wire::{encode_frame, Message, NodeRef, DEFAULT_MAX_FRAME};

pub struct WirePeer {
    pub key: NodeKey,
    /// Who the peer says it is in its hellos (its listen address, and its
    /// derived id unless a test changes it).
    pub me: NodeRef,
    pub settings: LinkSettings,
    /// Messages nodes sent to this peer, with the sender the link proved.
    pub received: Arc<Mutex<Vec<(NodeRef, Message)>>>,
}

/// One link this peer opened: frames go in, sealed, to the node.
pub struct Link {
    pub stream: TcpStream,
    pub sealer: Sealer,
    pub node: PeerIdentity,
}

impl WirePeer {
    /// A peer with a fresh key, listening on a free loopback port.
    pub fn start() -> WirePeer {
        WirePeer::start_with(LinkSettings::default())
    }

    pub fn start_with(settings: LinkSettings) -> WirePeer {
        let key = NodeKey::generate().expect("a key");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let me = NodeRef {
            id: key.id(),
            addr: listener.local_addr().unwrap(),
        };
        let received = Arc::new(Mutex::new(Vec::new()));
        let (k, sink) = (key.clone(), received.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (k, sink) = (k.clone(), sink.clone());
                std::thread::spawn(move || answer(stream, k, me, settings, sink));
            }
        });
        WirePeer {
            key,
            me,
            settings,
            received,
        }
    }

    /// Opens a secure link to the node at `to`, saying hello as `self.me`.
    pub fn link(&self, to: SocketAddr) -> Result<Link, String> {
        self.link_with_hello(to, &secure::hello_payload(self.me))
    }

    /// Opens a secure link whose handshake carries `hello` (any bytes).
    pub fn link_with_hello(&self, to: SocketAddr, hello: &[u8]) -> Result<Link, String> {
        let stream = TcpStream::connect(to).map_err(|e| e.to_string())?;
        let mut conn = async_net::TcpStream::try_from(stream.try_clone().unwrap()).unwrap();
        let (sealer, node) = smol::block_on(secure::initiate_with(
            &mut conn,
            &self.key,
            hello,
            &self.settings,
        ))
        .map_err(|e| e.to_string())?;
        drop(conn);
        stream.set_nonblocking(false).map_err(|e| e.to_string())?;
        Ok(Link {
            stream,
            sealer,
            node,
        })
    }

    /// Messages received so far.
    pub fn received(&self) -> Vec<(NodeRef, Message)> {
        self.received.lock().unwrap().clone()
    }
}

impl Link {
    /// Sends one message, sealed.
    pub fn send(&mut self, msg: &Message) -> std::io::Result<()> {
        let frame = encode_frame(msg, DEFAULT_MAX_FRAME).expect("encodes");
        self.send_frame(&frame)
    }

    /// Sends any bytes as the plaintext of records (a frame, or not).
    pub fn send_frame(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let records = self.sealer.sealed(bytes);
        self.stream.write_all(&records)
    }

    /// Waits (up to 10 s) for the node to close the link.
    pub fn closed_by_node(&mut self) -> bool {
        self.stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 16];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                // An idle close says so with a byte first.
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }
}

/// Answers one connection a node opened to this peer, and keeps what it sends.
fn answer(
    stream: TcpStream,
    key: NodeKey,
    me: NodeRef,
    settings: LinkSettings,
    sink: Arc<Mutex<Vec<(NodeRef, Message)>>>,
) {
    let Ok(stream) = async_net::TcpStream::try_from(stream) else {
        return;
    };
    smol::block_on(async {
        let timeout = Duration::from_secs(10);
        let Ok((reader, who)) = secure::respond(stream, &key, me, &settings, timeout).await else {
            return;
        };
        let mut frames = FrameReader::new(reader, DEFAULT_MAX_FRAME, timeout);
        while let Ok(Some(msg)) = frames.read_frame().await {
            sink.lock().unwrap().push((who.node, msg));
        }
    });
}

/// An id this peer cannot have: the key of a name.
pub fn chosen_id(name: &str) -> Id {
    Id::key(name)
}
