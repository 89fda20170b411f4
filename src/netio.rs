//! `netio`: the tokio side of PDU framing, shared by the client and the reference host.
//!
//! DCE/RPC over TCP is a byte stream: one `read` may return half a PDU or two of them
//! (spec 2). [`PduReader`] keeps a buffer, asks [`crate::wire::rpc::check_frame`] whether a whole
//! PDU is there, and reads more only when it is not. Deadlines are the caller's: wrap each
//! call in `tokio::time::timeout` so a stalled peer becomes a timeout, never a hang.
//!
//! Two ways to read, one framing:
//! - [`PduReader::read_pdu_in`] (the client, [`crate::client`]): any `AsyncRead` (the
//!   client's streams may be wrapped by [`crate::faults`]); the PDU lent from the buffer
//!   ([`PduReader::read_pdu`] copies it out).
//! - [`PduReader::next_pdu`] (the host's connection loop, [`crate::host::server`]): a
//!   `TcpStream`, the PDU lent from the buffer without a copy, the buffer released while the
//!   connection is idle, and the socket drained with readiness-based reads.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, Interest};
use tokio::net::TcpStream;

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

/// Room kept free before each read of the host's [`PduReader::next_pdu`]: every KMS PDU (at
/// most ~312 bytes) fits in one read.
const MIN_READ: usize = 512;

/// Room kept free before each read of the client's [`PduReader::read_pdu_in`], and the
/// capacity of [`PduReader::new`]: the largest PDU of a KMS exchange, a V6 request or
/// response over NDR64 with a 48-character ePID (300 and 312 bytes, spec 7.7), fits in one
/// read, and 10,000 clients that hold a connection hold 10,000 buffers of this size (the
/// request PDU is written in it too, see [`PduReader::outgoing`]). A longer PDU (a longer
/// ePID) takes a second read.
const CLIENT_READ: usize = 320;

/// Reads whole PDUs from a byte stream. [`PduReader::default`] holds no buffer until bytes
/// arrive; [`PduReader::new`] reserves one client read's worth.
#[derive(Debug, Default)]
pub struct PduReader {
    buf: Vec<u8>,
    /// Length of the PDU at the front of `buf` last lent by [`next_pdu`](Self::next_pdu);
    /// dropped at the next call.
    lent: usize,
}

/// A [`PduReader`]'s buffer lent for an outgoing PDU (see [`PduReader::outgoing`]); emptied
/// when dropped.
#[derive(Debug)]
pub struct Outgoing<'a> {
    buf: &'a mut Vec<u8>,
}

impl Outgoing<'_> {
    /// The buffer to write the PDU in (empty at first).
    pub fn buf(&mut self) -> &mut Vec<u8> {
        self.buf
    }
}

impl Drop for Outgoing<'_> {
    fn drop(&mut self) {
        self.buf.clear();
    }
}

impl PduReader {
    /// An empty reader.
    pub fn new() -> Self {
        Self {
            buf: Vec::with_capacity(CLIENT_READ),
            lent: 0,
        }
    }

    /// The buffer's capacity (what a held connection keeps).
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// True when bytes of a next PDU are already buffered.
    pub fn has_buffered(&self) -> bool {
        self.buf.len() > self.lent
    }

    /// True when a whole next PDU is already buffered: the next call returns it without
    /// waiting for the socket.
    pub fn has_whole_pdu(&self) -> bool {
        matches!(check_frame(&self.buf[self.lent..]), Frame::Complete(_))
    }

    /// Lends the buffer for an outgoing PDU, when no byte of an incoming one is buffered:
    /// a client that sends a request and then reads its answer needs one buffer per
    /// connection, not two. The loan ends empty (the bytes written are not taken for input),
    /// keeping the capacity for the answer. `None` while bytes are buffered; they stay for the
    /// next read.
    pub fn outgoing(&mut self) -> Option<Outgoing<'_>> {
        self.release_lent();
        // Not `then_some`: its argument is built (and dropped, emptying the buffer) either way.
        if self.buf.is_empty() {
            Some(Outgoing { buf: &mut self.buf })
        } else {
            None
        }
    }

    /// Drops the PDU lent by the last [`next_pdu`](Self::next_pdu).
    fn release_lent(&mut self) {
        if self.lent > 0 {
            self.buf.drain(..self.lent);
            self.lent = 0;
        }
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
        self.read_pdu_in(stream).await.map(<[u8]>::to_vec)
    }

    /// Like [`read_pdu`](Self::read_pdu), lending the PDU from the buffer instead of
    /// copying it (the client's per-request path); it is dropped at the next call. The
    /// buffer keeps its capacity, so the next read is one `recv`, not several growing ones.
    ///
    /// # Errors
    /// As [`read_pdu`](Self::read_pdu).
    pub async fn read_pdu_in<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
    ) -> Result<&[u8], PduReadError> {
        self.release_lent();
        loop {
            match check_frame(&self.buf) {
                Frame::Complete(len) => {
                    self.lent = len;
                    return Ok(&self.buf[..len]);
                }
                Frame::Invalid(e) => return Err(e.into()),
                Frame::Incomplete { .. } => {}
            }
            if self.buf.capacity() - self.buf.len() < CLIENT_READ {
                self.buf.reserve(CLIENT_READ);
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

    /// Reads from a TCP socket until one whole PDU is buffered and lends it: no copy (the
    /// host's per-request path). The PDU lent by the previous call is dropped first; bytes
    /// after it stay buffered.
    ///
    /// While no byte of a next PDU is buffered the buffer is released, so an idle connection
    /// holds no memory (10,000 idle connections should cost their sockets, not 10,000
    /// buffers); it is allocated again when bytes arrive.
    ///
    /// Cancel-safe: bytes are appended only by synchronous reads between the waits for
    /// readiness, so dropping the future (a deadline, a stop signal) loses nothing.
    ///
    /// # Errors
    /// [`PduReadError`] when the peer closes, the socket fails or the stream is not DCE/RPC.
    pub async fn next_pdu(&mut self, stream: &TcpStream) -> Result<&[u8], PduReadError> {
        self.release_lent();
        loop {
            match check_frame(&self.buf) {
                Frame::Complete(len) => {
                    self.lent = len;
                    return Ok(&self.buf[..len]);
                }
                Frame::Invalid(e) => return Err(e.into()),
                Frame::Incomplete { .. } => {}
            }
            self.read_tcp(stream).await?;
        }
    }

    /// Waits until the socket is readable and appends what arrived.
    async fn read_tcp(&mut self, stream: &TcpStream) -> Result<(), PduReadError> {
        loop {
            if self.buf.is_empty() {
                self.buf = Vec::new();
            }
            let partial = !self.buf.is_empty();
            if let Err(error) = stream.readable().await {
                return Err(PduReadError::Io { error, partial });
            }
            self.buf.reserve(MIN_READ);
            let spare = self.buf.capacity() - self.buf.len();
            let buf = &mut self.buf;
            let mut got = None;
            // A read that returns less than it could take drained the socket: report it to
            // tokio as WouldBlock so the readiness is cleared and the next wait goes straight
            // to epoll, instead of costing one more `recv` that fails with EAGAIN (tokio's own
            // `poll_read` does the same). `got` tells that case from a real WouldBlock.
            let read = stream.try_io(Interest::READABLE, || {
                let n = stream.try_read_buf(buf)?;
                got = Some(n);
                if 0 < n && n < spare {
                    Err(io::ErrorKind::WouldBlock.into())
                } else {
                    Ok(n)
                }
            });
            match (read, got) {
                (_, Some(0)) => return Err(PduReadError::Closed { partial }),
                (_, Some(_)) => return Ok(()),
                (Err(error), None) if error.kind() != io::ErrorKind::WouldBlock => {
                    return Err(PduReadError::Io { error, partial });
                }
                // WouldBlock: a spurious wake-up; wait again. (`Ok` without `got` cannot
                // happen.)
                (_, None) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

    /// A client's request PDU and the answer share one buffer: the loan is the reader's own
    /// allocation, ends empty (the request is not read back as input), and is refused while
    /// bytes of an incoming PDU are buffered.
    #[tokio::test]
    async fn outgoing_lends_the_read_buffer_only_when_nothing_is_buffered() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        let mut r = PduReader::new();
        let (request, answer) = (pdu(300, 7), pdu(40, 1));
        {
            let mut lent = r.outgoing().expect("nothing buffered");
            assert!(lent.buf().is_empty());
            lent.buf().extend_from_slice(&request);
            let capacity = lent.buf().capacity();
            assert_eq!(capacity, CLIENT_READ, "the reader's own buffer");
            b.write_all(lent.buf()).await.unwrap();
        }
        assert!(!r.has_buffered(), "the request is not input");
        let capacity = r.buf.capacity();
        // The answer and the first half of another PDU arrive together.
        a.write_all(&[&answer[..], &pdu(20, 2)[..10]].concat())
            .await
            .unwrap();
        assert_eq!(r.read_pdu_in(&mut b).await.unwrap(), &answer[..]);
        assert_eq!(r.buf.capacity(), capacity, "read into the same allocation");
        assert!(r.outgoing().is_none(), "bytes of the next PDU are buffered");
        assert_eq!(
            r.buf.len(),
            10,
            "the answer released, the next PDU's bytes kept"
        );
        let mut sent = vec![0; request.len()];
        a.read_exact(&mut sent).await.unwrap();
        assert_eq!(sent, request);
    }

    #[tokio::test]
    async fn next_pdu_lends_split_and_coalesced_pdus_over_tcp() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut a = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (b, _) = listener.accept().await.unwrap();
        let (p1, p2, p3) = (pdu(40, 1), pdu(20, 2), pdu(30, 3));
        let mut r = PduReader::default();
        // p1 in two pieces.
        a.write_all(&p1[..7]).await.unwrap();
        a.flush().await.unwrap();
        assert!(!r.has_whole_pdu());
        let writer = {
            let (rest, p2, p3) = (p1[7..].to_vec(), p2.clone(), p3.clone());
            tokio::spawn(async move {
                a.write_all(&rest).await.unwrap();
                // p2 and the first half of p3 in one write, so both arrive together.
                a.write_all(&[&p2[..], &p3[..15]].concat()).await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                a.write_all(&p3[15..]).await.unwrap();
                a
            })
        };
        assert_eq!(r.next_pdu(&b).await.unwrap(), &p1[..]);
        assert_eq!(r.next_pdu(&b).await.unwrap(), &p2[..]);
        assert_eq!(r.next_pdu(&b).await.unwrap(), &p3[..]);
        assert!(!r.has_buffered());
        let a = writer.await.unwrap();
        drop(a);
        assert!(matches!(
            r.next_pdu(&b).await,
            Err(PduReadError::Closed { partial: false })
        ));
    }

    #[tokio::test]
    async fn next_pdu_classifies_a_close_mid_pdu_and_garbage() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut a = TcpStream::connect(addr).await.unwrap();
        let (b, _) = listener.accept().await.unwrap();
        a.write_all(&pdu(40, 0)[..30]).await.unwrap();
        drop(a);
        let mut r = PduReader::default();
        assert!(matches!(
            r.next_pdu(&b).await,
            Err(PduReadError::Closed { partial: true })
        ));

        let mut a = TcpStream::connect(addr).await.unwrap();
        let (b, _) = listener.accept().await.unwrap();
        a.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let mut r = PduReader::default();
        assert!(matches!(
            r.next_pdu(&b).await,
            Err(PduReadError::Framing(FrameError::NotRpc(b'G')))
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
