//! The incoming side of the TCP transport: accepting connections and
//! reading their frames (see [`super::tcp`] for the whole design).
//!
//! Each accepted connection gets a reader task. Its first frame must be a
//! hello of our protocol version, within the hello timeout; after that it
//! may idle as long as it likes, but a frame once begun must complete
//! within the frame timeout. Bad input of any kind (oversize, undecodable,
//! truncated, not a hello first, wrong version, too slow) closes that
//! connection with exactly one warning naming the peer and the reason; the
//! node and its other connections go on.

use std::net::SocketAddr;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::Duration;

use async_net::{TcpListener, TcpStream};
use smol::channel::Sender;
use smol::{LocalExecutor, Timer};

use super::connection::{FrameReader, ReadError};
use super::tcp::{NetCounters, NetInput, TcpConfig};
use crate::wire::{check_hello, FrameError};

/// Accepts connections for as long as the node runs, one reader task each.
pub async fn accept_loop(
    listener: TcpListener,
    executor: Weak<LocalExecutor<'static>>,
    cfg: Rc<TcpConfig>,
    inputs: Sender<NetInput>,
    counters: Arc<NetCounters>,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                Timer::after(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(executor) = executor.upgrade() else {
            return;
        };
        let (cfg, inputs, counters) = (cfg.clone(), inputs.clone(), counters.clone());
        executor
            .spawn(read_from_peer(stream, peer, cfg, inputs, counters))
            .detach();
    }
}

/// Checks the hello of an accepted connection, then hands every message to
/// the core. Any bad input closes this connection with one warning.
async fn read_from_peer(
    stream: TcpStream,
    peer: SocketAddr,
    cfg: Rc<TcpConfig>,
    inputs: Sender<NetInput>,
    counters: Arc<NetCounters>,
) {
    let _ = stream.set_nodelay(true);
    let mut reader = FrameReader::new(stream, cfg.max_frame, cfg.frame_timeout);
    let limit = cfg.hello_timeout;
    let no_hello = async {
        Timer::after(limit).await;
        Err(ReadError::NoHello(limit))
    };
    let first = smol::future::or(reader.read_frame(), no_hello).await;
    let hello = match first {
        Ok(Some(msg)) => check_hello(msg).map_err(ReadError::from),
        Ok(None) => return,
        Err(e) => Err(e),
    };
    let from = match hello {
        Ok(node) => node,
        Err(e) => {
            NetCounters::bump(&counters.bad_frames);
            tracing::warn!("closing connection from {peer}: {e}");
            return;
        }
    };
    tracing::debug!("connection from {peer}: {from:?}");
    loop {
        match reader.read_frame().await {
            Ok(Some(msg)) => {
                NetCounters::add(&counters.bytes_in, reader.last_frame_len() as u64);
                if inputs.send(NetInput::Message { from, msg }).await.is_err() {
                    return; // the node stopped
                }
            }
            Ok(None) => {
                tracing::debug!("connection from {peer} ({from:?}) closed");
                return;
            }
            Err(ReadError::Frame(FrameError::Io(e))) => {
                // Not bad input: the peer went away (e.g. crashed).
                tracing::info!("connection from {peer} ({from:?}) lost: {e}");
                return;
            }
            Err(e) => {
                NetCounters::bump(&counters.bad_frames);
                tracing::warn!("closing connection from {peer} ({from:?}): {e}");
                return;
            }
        }
    }
}
