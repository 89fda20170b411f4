//! `netio`: the tokio side of PDU framing, shared by the client and the reference host.
//!
//! DCE/RPC over TCP is a byte stream: one `read` may return half a PDU or two of them
//! (spec 2). [`PduReader`] keeps a buffer, asks [`crate::wire::rpc::check_frame`] whether a whole
//! PDU is there, and reads more only when it is not. Deadlines are the caller's: wrap each
//! call in `tokio::time::timeout` so a stalled peer becomes a timeout, never a hang.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::wire::rpc::{Frame, FrameError, check_frame};

/// Why no PDU could be read.
#[derive(Debug, thiserror::Error)]
pub enum PduReadError {
    /// The peer closed the connection. `partial` is true when it did so in the middle of a
    /// PDU (bytes of it had arrived), false on a clean boundary.
    #[error("connection closed by the peer{}", if *partial { " in the middle of a PDU" } else { "" })]
    Closed {
        /// Whether part of a PDU had arrived.
        partial: bool,
    },
    /// The byte stream is not DCE/RPC.
    #[error("unreadable PDU stream: {0}")]
    Framing(#[from] FrameError),
    /// The socket failed (reset, ...). `partial` is true when part of a PDU had arrived.
    #[error("{error}")]
    Io {
        /// The socket error.
        error: io::Error,
        /// Whether part of a PDU had arrived.
        partial: bool,
    },
}

/// Room kept free before each read: every KMS PDU (at most ~312 bytes) fits in one read.
const MIN_READ: usize = 512;

/// Reads whole PDUs from a byte stream.
#[derive(Debug, Default)]
pub struct PduReader {
    buf: Vec<u8>,
}

impl PduReader {
    /// An empty reader.
    pub fn new() -> Self {
        Self {
            buf: Vec::with_capacity(512),
        }
    }

    /// True when bytes of a next PDU are already buffered.
    pub fn has_buffered(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Reads until one whole PDU is buffered and returns it. Bytes after it stay buffered
    /// for the next call.
    ///
    /// # Errors
    /// [`PduReadError`] when the peer closes, the socket fails or the stream is not DCE/RPC.
    pub async fn read_pdu<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
    ) -> Result<Vec<u8>, PduReadError> {
        loop {
            match check_frame(&self.buf) {
                Frame::Complete(len) => {
                    // Copy the PDU out and keep the buffer (and its capacity) for the next
                    // one, so the next read is one `recv`, not several growing ones.
                    let pdu = self.buf[..len].to_vec();
                    self.buf.drain(..len);
                    return Ok(pdu);
                }
                Frame::Invalid(e) => return Err(e.into()),
                Frame::Incomplete { .. } => {}
            }
            if self.buf.capacity() - self.buf.len() < MIN_READ {
                self.buf.reserve(MIN_READ);
            }
            let read = stream.read_buf(&mut self.buf).await;
            let read = read.map_err(|error| PduReadError::Io {
                error,
                partial: !self.buf.is_empty(),
            })?;
            if read == 0 {
                return Err(PduReadError::Closed {
                    partial: !self.buf.is_empty(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    fn pdu(len: u16, fill: u8) -> Vec<u8> {
        let mut p = vec![fill; usize::from(len)];
        p[0] = 5;
        p[8..10].copy_from_slice(&len.to_le_bytes());
        p
    }

    #[tokio::test]
    async fn reassembles_split_and_coalesced_pdus() {
        let (mut a, mut b) = tokio::io::duplex(64);
        let (p1, p2) = (pdu(40, 1), pdu(20, 2));
        let mut both = p1.clone();
        both.extend_from_slice(&p2);
        let writer = tokio::spawn(async move {
            for chunk in both.chunks(7) {
                a.write_all(chunk).await.unwrap();
            }
        });
        let mut r = PduReader::new();
        assert_eq!(r.read_pdu(&mut b).await.unwrap(), p1);
        assert_eq!(r.read_pdu(&mut b).await.unwrap(), p2);
        writer.await.unwrap();
        assert!(matches!(
            r.read_pdu(&mut b).await,
            Err(PduReadError::Closed { partial: false })
        ));
    }

    #[tokio::test]
    async fn close_mid_pdu_and_garbage_are_classified() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&pdu(40, 0)[..30]).await.unwrap();
        drop(a);
        let mut r = PduReader::new();
        assert!(matches!(
            r.read_pdu(&mut b).await,
            Err(PduReadError::Closed { partial: true })
        ));

        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let mut r = PduReader::new();
        assert!(matches!(
            r.read_pdu(&mut b).await,
            Err(PduReadError::Framing(FrameError::NotRpc(b'G')))
        ));
    }
}
