//! One framed TCP connection: reading whole frames with a deadline, and the
//! errors that close a connection.
//!
//! A frame is a 4-byte big-endian length and one CBOR [`Message`] (see
//! [`crate::wire`]). A connection may stay idle as long as it likes between
//! frames, but once the first byte of a frame has arrived the whole frame must
//! follow within the frame timeout: a peer that trickles one byte a second
//! cannot hold a connection (and its buffer) forever.

use std::io;
use std::time::Duration;

use smol::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use smol::Timer;

use crate::wire::{decode_body, frame_len, FrameError, Message};

/// Why reading from a connection stopped. Every variant closes the connection.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Oversize, undecodable, truncated, not a hello first, wrong version.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A frame began but was not complete within the frame timeout.
    #[error("frame not complete {0:?} after its first byte (too slow)")]
    Slow(Duration),
    /// The opener did not send its hello in time.
    #[error("no hello within {0:?}")]
    NoHello(Duration),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> ReadError {
        ReadError::Frame(FrameError::Io(e))
    }
}

/// Reads frames off a byte stream, one at a time.
pub struct FrameReader<R> {
    inner: BufReader<R>,
    body: Vec<u8>,
    max_frame: usize,
    frame_timeout: Duration,
    last_len: usize,
}

/// How much a frame's buffer grows at a time while its body arrives.
const GROWTH: usize = 16 * 1024;

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R, max_frame: usize, frame_timeout: Duration) -> FrameReader<R> {
        FrameReader {
            inner: BufReader::new(inner),
            body: Vec::new(),
            max_frame,
            frame_timeout,
            last_len: 0,
        }
    }

    /// The next message; `None` when the peer closed the stream cleanly
    /// between two frames. Waits without limit for a frame to begin.
    pub async fn read_frame(&mut self) -> Result<Option<Message>, ReadError> {
        if self.inner.fill_buf().await?.is_empty() {
            return Ok(None);
        }
        let limit = self.frame_timeout;
        let mut frame = std::pin::pin!(self.read_begun_frame());
        // Usually the whole frame is already here; arming a timer costs a
        // wake-up of the reactor, so only arm one when we must wait.
        if let Some(done) = smol::future::poll_once(frame.as_mut()).await {
            return done.map(Some);
        }
        let slow = async {
            Timer::after(limit).await;
            Err(ReadError::Slow(limit))
        };
        smol::future::or(frame, slow).await.map(Some)
    }

    /// Bytes of the last frame read, length prefix included (for the
    /// node's byte counters).
    pub fn last_frame_len(&self) -> usize {
        self.last_len
    }

    async fn read_begun_frame(&mut self) -> Result<Message, ReadError> {
        let mut prefix = [0u8; 4];
        read_full(&mut self.inner, &mut prefix).await?;
        let len = frame_len(prefix, self.max_frame)?;
        // The buffer grows with the bytes that arrive, never to the declared
        // length up front: a peer that declares a megabyte and sends a byte
        // a second holds a few kilobytes of this node, not the megabyte.
        self.body.clear();
        while self.body.len() < len {
            let got = self.body.len();
            let want = (len - got).min(GROWTH);
            self.body.resize(got + want, 0);
            let n = self.inner.read(&mut self.body[got..]).await?;
            self.body.truncate(got + n);
            if n == 0 {
                return Err(FrameError::Truncated { got, len }.into());
            }
        }
        let msg = decode_body(&self.body)?;
        self.last_len = prefix.len() + len;
        if self.body.capacity() > 64 * 1024 {
            // Don't keep a large buffer for an idle connection.
            self.body = Vec::new();
        }
        Ok(msg)
    }
}

/// Fills `buf`, or says how much arrived before the stream ended.
async fn read_full<R: AsyncRead + Unpin>(r: &mut R, buf: &mut [u8]) -> Result<(), ReadError> {
    let mut got = 0;
    while got < buf.len() {
        let n = r.read(&mut buf[got..]).await?;
        if n == 0 {
            return Err(FrameError::Truncated {
                got,
                len: buf.len(),
            }
            .into());
        }
        got += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{encode_frame, DEFAULT_MAX_FRAME};

    fn read_all(bytes: &[u8]) -> Vec<Result<Option<Message>, String>> {
        smol::block_on(async {
            let mut r = FrameReader::new(bytes, DEFAULT_MAX_FRAME, Duration::from_secs(1));
            let mut out = Vec::new();
            loop {
                let next = r.read_frame().await.map_err(|e| e.to_string());
                let stop = !matches!(next, Ok(Some(_)));
                out.push(next);
                if stop {
                    return out;
                }
            }
        })
    }

    #[test]
    fn frames_then_clean_end() {
        let mut bytes = encode_frame(&Message::Notify, DEFAULT_MAX_FRAME).unwrap();
        bytes.extend(encode_frame(&Message::Ping { req: 3 }, DEFAULT_MAX_FRAME).unwrap());
        let got = read_all(&bytes);
        assert_eq!(
            got,
            vec![
                Ok(Some(Message::Notify)),
                Ok(Some(Message::Ping { req: 3 })),
                Ok(None)
            ]
        );
    }

    #[test]
    fn truncated_oversize_and_garbage_are_errors() {
        let frame = encode_frame(&Message::Notify, DEFAULT_MAX_FRAME).unwrap();
        let got = read_all(&frame[..frame.len() - 1]);
        assert!(
            matches!(&got[0], Err(e) if e.contains("ended early")),
            "{got:?}"
        );
        let got = read_all(&(2u32 << 20).to_be_bytes());
        assert!(
            matches!(&got[0], Err(e) if e.contains("exceeds")),
            "{got:?}"
        );
        let got = read_all(&[0, 0, 0, 3, 0xff, 0xff, 0xff]);
        assert!(
            matches!(&got[0], Err(e) if e.contains("does not decode")),
            "{got:?}"
        );
    }
}
