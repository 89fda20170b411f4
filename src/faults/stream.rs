//! [`FaultyStream`]: the byte-stream wrapper that applies an attempt's fault to the bytes of
//! one connection.
//!
//! With no fault armed, every call goes straight to the inner stream after one atomic load
//! (has the [`FaultHandle`](super::FaultHandle) been re-armed?). With a fault, received bytes
//! pass through a small buffer so the wrapper can hold them back (delay, trickle, stall),
//! stop at a cut point (reset, truncate) or flip bytes of a whole PDU (corrupt):
//!
//! ```text
//!            inner stream ──read──► inbuf ──release──► client
//!                                    │
//!   delay    each chunk read waits delay + jitter, then goes out whole
//!   trickle  `chunk` bytes per `every`
//!   stall    reads wait `duration` (or forever) from the moment the client sent the PDU
//!            of the stalled phase: bind/alter_context for `bind`, request for `request`
//!   reset    bytes up to the cut, then RST to the host (Abort) and ConnectionReset here
//!   truncate bytes up to the cut, then FIN to the host (shutdown) and end-of-stream here
//!   corrupt  whole PDUs; the first response PDU gets its bytes flipped before release
//! ```
//!
//! PDU boundaries come from `frag_length` (spec 4.1): received PDUs are followed only where a
//! fault needs them (mid-PDU cuts, corruption), sent PDUs only for a stall (to see which phase
//! starts). The wrapper assumes it is re-armed between exchanges, when no PDU is half-way
//! through, which is how [`Client`](crate::client::Client) uses a connection.
//!
//! Byte counts for `after_bytes` and "the next PDU" start at the beginning of the attempt on
//! this connection: on a new connection that is its first byte; on a kept connection, the
//! first byte after re-arming.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use super::{Abort, FaultHandle, InjectedFault, Slot};
use crate::faults::{CutPoint, Direction, FaultKind, StallPhase};
use crate::wire::rpc::{HEADER_LEN, MAX_FRAG_LENGTH, Ptype, field};

/// Bytes read from the inner stream per fill.
const FILL: usize = 4096;
/// Largest hold-back buffer: a whole PDU of the largest legal size fits, so a PDU being
/// collected for corruption never hits it; past it the fault gives up and passes bytes on.
const INBUF_CAP: usize = MAX_FRAG_LENGTH as usize + FILL;
/// Bytes needed to read `frag_length`.
const FRAME_HEAD: usize = field::FRAG_LENGTH.end;

/// A stream with an attempt's fault applied (see the module docs). Made by
/// [`FaultyConnector`](super::FaultyConnector), or with [`FaultyStream::new`] around any
/// stream.
pub struct FaultyStream<S> {
    /// `None` once aborted (the RST has gone out).
    inner: Option<S>,
    slot: Arc<Slot>,
    /// Generation of the slot the current state was built from.
    seen: u64,
    /// `None`: pass everything through.
    active: Option<Box<Active>>,
}

impl<S> std::fmt::Debug for FaultyStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyStream")
            .field("fault", &self.active.as_ref().and_then(|a| a.fault))
            .field("aborted", &self.inner.is_none())
            .finish()
    }
}

impl<S> FaultyStream<S> {
    /// Wraps a stream that was just connected: it gets the fault `handle` holds, unless that
    /// fault is an event (see [`InjectedFault::is_event`]) that already happened in this
    /// attempt, e.g. on the connection the client had before reconnecting.
    pub fn new(inner: S, handle: &FaultHandle) -> Self {
        Self::with_slot(inner, Arc::clone(&handle.slot))
    }

    pub(super) fn with_slot(inner: S, slot: Arc<Slot>) -> Self {
        let (seen, fault) = slot.current();
        let fault = fault.filter(|f| !(f.is_event() && slot.fired()));
        let mut stream = Self {
            inner: Some(inner),
            slot,
            seen,
            active: None,
        };
        stream.rearm(fault, false);
        stream
    }

    /// The inner stream, `None` after a reset aborted it.
    pub fn inner(&self) -> Option<&S> {
        self.inner.as_ref()
    }

    /// Picks up a fault armed since the last call.
    fn refresh(&mut self) {
        let generation = self.slot.generation();
        if generation != self.seen {
            let (seen, fault) = self.slot.current();
            self.seen = seen;
            self.rearm(fault, true);
        }
    }

    /// Replaces the state for a new attempt. `kept`: the connection existed before the
    /// attempt (a kept-alive one), so connect-level faults act on it.
    fn rearm(&mut self, fault: Option<InjectedFault>, kept: bool) {
        // Bytes already read but not released belong to the client whatever comes next.
        let carried = self.active.take().map(|a| a.inbuf).unwrap_or_default();
        let mut active = fault.and_then(|f| Active::for_fault(f, kept, &self.slot));
        if active.is_none() && !carried.is_empty() {
            active = Some(Active::new(None, Rx::Pass, Tx::Pass));
        }
        if let Some(a) = active.as_mut() {
            a.inbuf = carried;
        }
        self.active = active.map(Box::new);
    }
}

/// What a stream does with received bytes.
enum Rx {
    /// Nothing.
    Pass,
    /// Each chunk read waits `fault.delay(i)`.
    Delay(InjectedFault),
    /// `chunk` bytes per `every`.
    Trickle { chunk: usize, every: Duration },
    /// Reset or truncate when `received` reaches `at` (mid-PDU: decided once the PDU's
    /// `frag_length` is in).
    Cut {
        fault: InjectedFault,
        truncate: bool,
        at: Option<u64>,
    },
    /// Whole PDUs; the first response gets flipped. `remaining`: bytes of the current PDU
    /// still to release (0 at a boundary).
    Corrupt {
        fault: InjectedFault,
        remaining: usize,
    },
}

/// What a stream does with sent bytes.
enum Tx {
    /// Nothing.
    Pass,
    /// Each write waits `fault.delay(i)`.
    Delay(InjectedFault),
    /// `chunk` bytes per write, one write per `every`.
    Trickle { chunk: usize, every: Duration },
    /// Stall reads once the client starts sending a PDU of `phase`.
    Stall {
        phase: StallPhase,
        duration: Option<Duration>,
        sent: PduCursor,
    },
}

/// How a connection ended because of the fault.
#[derive(Clone, Copy)]
enum End {
    /// Aborted with RST: reads and writes fail with ConnectionReset.
    Reset,
    /// Closed: reads give end-of-stream, writes BrokenPipe.
    Eof,
    /// Blackholed: reads never complete, writes vanish.
    Dead,
}

/// A wait before bytes move on.
enum Hold {
    Until(Pin<Box<Sleep>>),
    Forever,
}

impl Hold {
    fn after(d: Option<Duration>) -> Self {
        match d {
            Some(d) => Self::Until(Box::pin(tokio::time::sleep(d))),
            None => Self::Forever,
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match self {
            // The caller's deadline (the client's phase timeout) wakes the task.
            Self::Forever => Poll::Pending,
            Self::Until(sleep) => sleep.as_mut().poll(cx),
        }
    }
}

/// What the read side does next.
enum Step {
    /// Release this many bytes from the front of `inbuf`.
    Give(usize),
    /// Wait, then release: the gate and the release quota after it.
    Wait(Hold, usize),
    /// Read more from the inner stream into `inbuf`.
    Fill,
    /// Read from the inner stream straight into the caller's buffer.
    Direct,
    /// Apply the cut now.
    Cut,
    /// End of stream.
    Eof,
}

/// The per-attempt state of a faulted stream.
struct Active {
    fault: Option<InjectedFault>,
    rx: Rx,
    tx: Tx,
    end: Option<End>,
    /// Bytes read from the inner stream, not yet released.
    inbuf: Vec<u8>,
    inner_eof: bool,
    /// Bytes released to the client in this attempt.
    received: u64,
    /// Bytes that may be released without waiting (delay, trickle).
    quota: usize,
    rgate: Option<(Hold, usize)>,
    wgate: Option<Hold>,
    /// The current write has waited its turn.
    wopen: bool,
    /// Delays drawn so far (the jitter index).
    delays: u64,
}

impl Active {
    fn new(fault: Option<InjectedFault>, rx: Rx, tx: Tx) -> Self {
        Self {
            fault,
            rx,
            tx,
            end: None,
            inbuf: Vec::new(),
            inner_eof: false,
            received: 0,
            quota: 0,
            rgate: None,
            wgate: None,
            wopen: false,
            delays: 0,
        }
    }

    /// The state for `fault`, or `None` when it does nothing to an established stream.
    fn for_fault(fault: InjectedFault, kept: bool, slot: &Slot) -> Option<Self> {
        let (rx, tx) = match fault.kind {
            FaultKind::Delay { on, .. } => match on {
                Direction::Connect => return None,
                Direction::Send => (Rx::Pass, Tx::Delay(fault)),
                Direction::Receive => (Rx::Delay(fault), Tx::Pass),
            },
            FaultKind::Trickle { on, chunk, every } => {
                let chunk = usize::try_from(chunk).unwrap_or(usize::MAX).max(1);
                match on {
                    Direction::Connect => return None,
                    Direction::Send => (Rx::Pass, Tx::Trickle { chunk, every }),
                    Direction::Receive => (Rx::Trickle { chunk, every }, Tx::Pass),
                }
            }
            // On a kept connection the host has gone away: the connection closes (refuse:
            // the client reconnects and is refused) or goes silent (blackhole: the request
            // times out). A new connection never gets here: the connector stopped it.
            FaultKind::Refuse | FaultKind::Blackhole if !kept => return None,
            FaultKind::Refuse => {
                let mut a = Self::new(Some(fault), Rx::Pass, Tx::Pass);
                a.end = Some(End::Eof);
                return Some(a);
            }
            FaultKind::Blackhole => {
                slot.fire();
                let mut a = Self::new(Some(fault), Rx::Pass, Tx::Pass);
                a.end = Some(End::Dead);
                return Some(a);
            }
            FaultKind::Reset { at } | FaultKind::Truncate { at } => {
                let at = match at {
                    CutPoint::AfterBytes(n) => Some(n),
                    CutPoint::MidPdu => None,
                };
                let truncate = matches!(fault.kind, FaultKind::Truncate { .. });
                (
                    Rx::Cut {
                        fault,
                        truncate,
                        at,
                    },
                    Tx::Pass,
                )
            }
            FaultKind::Corrupt { .. } => (
                Rx::Corrupt {
                    fault,
                    remaining: 0,
                },
                Tx::Pass,
            ),
            FaultKind::Stall { phase, duration } => (
                Rx::Pass,
                Tx::Stall {
                    phase,
                    duration,
                    sent: PduCursor::default(),
                },
            ),
        };
        Some(Self::new(Some(fault), rx, tx))
    }

    /// Decides the next read step from what is buffered.
    fn next_rx(&mut self, slot: &Slot) -> Step {
        // A hold-back buffer at its cap can only come from a stream that is not DCE/RPC:
        // give up on the fault and pass the bytes on.
        if self.inbuf.len() >= INBUF_CAP
            && matches!(self.rx, Rx::Cut { at: None, .. } | Rx::Corrupt { .. })
        {
            self.rx = Rx::Pass;
        }
        match &mut self.rx {
            Rx::Pass => {
                if self.inbuf.is_empty() {
                    if self.inner_eof {
                        Step::Eof
                    } else {
                        Step::Direct
                    }
                } else {
                    Step::Give(self.inbuf.len())
                }
            }
            Rx::Delay(fault) => {
                if self.inbuf.is_empty() {
                    self.quota = 0;
                    self.more()
                } else if self.quota > 0 {
                    Step::Give(self.inbuf.len())
                } else {
                    slot.fire();
                    let d = fault.delay(self.delays);
                    self.delays += 1;
                    Step::Wait(Hold::after(Some(d)), usize::MAX)
                }
            }
            Rx::Trickle { chunk, every } => {
                if self.inbuf.is_empty() {
                    self.more()
                } else if self.quota > 0 {
                    Step::Give(self.quota.min(self.inbuf.len()))
                } else {
                    slot.fire();
                    Step::Wait(Hold::after(Some(*every)), *chunk)
                }
            }
            Rx::Cut { fault, at, .. } => {
                let at = match *at {
                    Some(at) => at,
                    None if self.inbuf.len() >= FRAME_HEAD => {
                        let k = fault.cut_offset(frag_length(&self.inbuf));
                        let cut = self.received + k as u64;
                        *at = Some(cut);
                        cut
                    }
                    None if self.inner_eof => {
                        // Closed before the PDU's length arrived: nothing to cut inside.
                        self.rx = Rx::Pass;
                        return self.next_rx(slot);
                    }
                    None => return Step::Fill,
                };
                if self.inbuf.is_empty() {
                    self.more()
                } else if self.received >= at {
                    Step::Cut
                } else {
                    let left = usize::try_from(at - self.received).unwrap_or(usize::MAX);
                    Step::Give(left.min(self.inbuf.len()))
                }
            }
            Rx::Corrupt { fault, remaining } => {
                if self.inbuf.is_empty() {
                    return self.more();
                }
                if *remaining > 0 {
                    return Step::Give((*remaining).min(self.inbuf.len()));
                }
                // At a PDU boundary: collect its header.
                if self.inbuf.len() < FRAME_HEAD {
                    return if self.inner_eof {
                        Step::Give(self.inbuf.len())
                    } else {
                        Step::Fill
                    };
                }
                let len = frag_length(&self.inbuf);
                if self.inbuf[field::RPC_VERS] != 5
                    || !(HEADER_LEN..=usize::from(MAX_FRAG_LENGTH)).contains(&len)
                {
                    // Not DCE/RPC: the client will say so; nothing to aim at.
                    self.rx = Rx::Pass;
                    return Step::Give(self.inbuf.len());
                }
                if self.inbuf[field::PTYPE] != Ptype::RESPONSE.0 {
                    *remaining = len;
                    return Step::Give(len.min(self.inbuf.len()));
                }
                if self.inbuf.len() < len {
                    return if self.inner_eof {
                        Step::Give(self.inbuf.len())
                    } else {
                        Step::Fill
                    };
                }
                let flips = fault.corruption(&self.inbuf[..len]);
                for &(offset, mask) in &flips {
                    self.inbuf[offset] ^= mask;
                }
                if !flips.is_empty() {
                    slot.fire();
                }
                // One response per attempt is corrupted; the rest passes.
                self.rx = Rx::Pass;
                Step::Give(self.inbuf.len())
            }
        }
    }

    /// The step when nothing is buffered.
    fn more(&self) -> Step {
        if self.inner_eof {
            Step::Eof
        } else {
            Step::Fill
        }
    }

    /// Moves up to `n` buffered bytes into `buf`.
    fn give(&mut self, n: usize, buf: &mut ReadBuf<'_>) {
        let n = n.min(buf.remaining()).min(self.inbuf.len());
        buf.put_slice(&self.inbuf[..n]);
        self.inbuf.drain(..n);
        self.received += n as u64;
        self.quota = self.quota.saturating_sub(n);
        if let Rx::Corrupt { remaining, .. } = &mut self.rx {
            *remaining = remaining.saturating_sub(n);
        }
    }

    /// Follows sent bytes for a stall: starts it when the stalled phase's PDU goes out.
    fn sent(&mut self, bytes: &[u8], slot: &Slot) {
        let Tx::Stall {
            phase,
            duration,
            sent,
        } = &mut self.tx
        else {
            return;
        };
        let mut start = false;
        sent.feed(bytes, |ptype| {
            start |= match phase {
                StallPhase::Bind => ptype == Ptype::BIND.0 || ptype == Ptype::ALTER_CONTEXT.0,
                StallPhase::Request => ptype == Ptype::REQUEST.0,
            };
        });
        // Once per attempt: an alter_context after the stalled bind, or the request sent
        // again on a new connection, is not stalled a second time.
        if start && !slot.fired() {
            slot.fire();
            self.rgate = Some((Hold::after(*duration), 0));
        }
    }
}

/// `frag_length` of the PDU at the start of `buf` (at least [`FRAME_HEAD`] bytes).
fn frag_length(buf: &[u8]) -> usize {
    usize::from(u16::from_le_bytes([
        buf[field::FRAG_LENGTH.start],
        buf[field::FRAG_LENGTH.start + 1],
    ]))
}

/// Follows PDU boundaries in a byte stream fed in arbitrary pieces.
#[derive(Debug, Default)]
struct PduCursor {
    head: [u8; FRAME_HEAD],
    head_len: usize,
    /// Bytes of the current PDU after its first [`FRAME_HEAD`].
    remaining: usize,
}

impl PduCursor {
    /// Consumes `bytes`, calling `on_start(ptype)` for every PDU whose `ptype` byte passes.
    fn feed(&mut self, mut bytes: &[u8], mut on_start: impl FnMut(u8)) {
        while !bytes.is_empty() {
            if self.remaining > 0 {
                let n = self.remaining.min(bytes.len());
                self.remaining -= n;
                bytes = &bytes[n..];
                continue;
            }
            let n = (FRAME_HEAD - self.head_len).min(bytes.len());
            let before = self.head_len;
            self.head[before..before + n].copy_from_slice(&bytes[..n]);
            self.head_len += n;
            bytes = &bytes[n..];
            if before <= field::PTYPE && self.head_len > field::PTYPE {
                on_start(self.head[field::PTYPE]);
            }
            if self.head_len == FRAME_HEAD {
                // A frag_length below the header is garbage: the next byte is taken as the
                // start of a new PDU, which keeps the cursor moving.
                self.remaining = frag_length(&self.head).saturating_sub(FRAME_HEAD);
                self.head_len = 0;
            }
        }
    }
}

/// Reads and drops what the inner stream already holds (bounded), so that closing it later
/// sends a FIN, not the RST a close with unread bytes makes.
fn discard_ready<S: AsyncRead + Unpin>(inner: &mut S, cx: &mut Context<'_>) {
    let mut scratch = [0u8; 1024];
    // At most 64 KiB: more than a host sends in one exchange.
    for _ in 0..64 {
        let mut rb = ReadBuf::new(&mut scratch);
        match Pin::new(&mut *inner).poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) if !rb.filled().is_empty() => {}
            _ => break,
        }
    }
}

fn reset_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionReset,
        "connection reset by peer (injected fault)",
    )
}

impl<S: AsyncRead + AsyncWrite + Unpin + Abort> AsyncRead for FaultyStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.refresh();
        let Some(active) = this.active.as_deref_mut() else {
            return match this.inner.as_mut() {
                Some(inner) => Pin::new(inner).poll_read(cx, buf),
                None => Poll::Ready(Err(reset_error())),
            };
        };
        // Each turn either returns or makes progress: a gate passes, bytes arrive in
        // `inbuf`, the inner stream ends, or the cut is made.
        loop {
            match active.end {
                Some(End::Reset) => return Poll::Ready(Err(reset_error())),
                Some(End::Eof) => return Poll::Ready(Ok(())),
                Some(End::Dead) => return Poll::Pending,
                None => {}
            }
            if let Some((gate, quota)) = active.rgate.as_mut() {
                ready!(gate.poll(cx));
                active.quota = *quota;
                active.rgate = None;
            }
            if buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            match active.next_rx(&this.slot) {
                Step::Give(n) => {
                    active.give(n, buf);
                    return Poll::Ready(Ok(()));
                }
                Step::Wait(gate, quota) => active.rgate = Some((gate, quota)),
                Step::Direct => {
                    return match this.inner.as_mut() {
                        Some(inner) => Pin::new(inner).poll_read(cx, buf),
                        None => Poll::Ready(Err(reset_error())),
                    };
                }
                Step::Eof => return Poll::Ready(Ok(())),
                Step::Fill => {
                    let Some(inner) = this.inner.as_mut() else {
                        return Poll::Ready(Err(reset_error()));
                    };
                    let start = active.inbuf.len();
                    active.inbuf.resize(start + FILL, 0);
                    let mut rb = ReadBuf::new(&mut active.inbuf[start..]);
                    let polled = Pin::new(inner).poll_read(cx, &mut rb);
                    let n = rb.filled().len();
                    active.inbuf.truncate(start + n);
                    match polled {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        Poll::Ready(Ok(())) if n == 0 => active.inner_eof = true,
                        Poll::Ready(Ok(())) => {}
                    }
                }
                Step::Cut => {
                    this.slot.fire();
                    active.inbuf.clear();
                    let truncate = matches!(active.rx, Rx::Cut { truncate: true, .. });
                    if truncate {
                        // The host's side closes: FIN towards the host, end-of-stream here.
                        if let Some(inner) = this.inner.as_mut() {
                            discard_ready(inner, cx);
                            // Best effort: TCP shuts down at once; a stream that cannot
                            // finish now is closed when dropped.
                            let _ = Pin::new(inner).poll_shutdown(cx);
                        }
                        active.end = Some(End::Eof);
                    } else {
                        if let Some(inner) = this.inner.take() {
                            inner.abort();
                        }
                        active.end = Some(End::Reset);
                    }
                }
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Abort> AsyncWrite for FaultyStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.refresh();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(Err(reset_error()));
        };
        let Some(active) = this.active.as_deref_mut() else {
            return Pin::new(inner).poll_write(cx, data);
        };
        match active.end {
            Some(End::Reset) => return Poll::Ready(Err(reset_error())),
            Some(End::Eof) => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
            // The bytes vanish, as on a path that drops every packet.
            Some(End::Dead) => return Poll::Ready(Ok(data.len())),
            None => {}
        }
        let (wait, limit) = match &active.tx {
            Tx::Pass | Tx::Stall { .. } => (None, data.len()),
            Tx::Delay(fault) => (Some(fault.delay(active.delays)), data.len()),
            Tx::Trickle { chunk, every } => (Some(*every), (*chunk).min(data.len())),
        };
        if let Some(d) = wait
            && !active.wopen
        {
            if active.wgate.is_none() {
                this.slot.fire();
                if matches!(active.tx, Tx::Delay(_)) {
                    active.delays += 1;
                }
                active.wgate = Some(Hold::after(Some(d)));
            }
            if let Some(gate) = active.wgate.as_mut() {
                ready!(gate.poll(cx));
            }
            active.wgate = None;
            active.wopen = true;
        }
        let written = ready!(Pin::new(inner).poll_write(cx, &data[..limit]));
        active.wopen = false;
        if let Ok(n) = written {
            active.sent(&data[..n], &this.slot);
        }
        Poll::Ready(written)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().inner.as_mut() {
            Some(inner) => Pin::new(inner).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().inner.as_mut() {
            Some(inner) => Pin::new(inner).poll_shutdown(cx),
            None => Poll::Ready(Ok(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};

    use super::*;
    use crate::faults::Region;

    /// A PDU-shaped buffer: rpc_vers 5, `ptype`, `frag_length` = `len`, filled with `fill`.
    fn pdu(len: u16, ptype: u8, fill: u8) -> Vec<u8> {
        let mut p = vec![fill; usize::from(len)];
        p[0] = 5;
        p[2] = ptype;
        p[8..10].copy_from_slice(&len.to_le_bytes());
        p
    }

    fn armed(kind: FaultKind, draw: u64) -> (FaultHandle, InjectedFault) {
        let handle = FaultHandle::new();
        let fault = InjectedFault::new(kind, draw);
        handle.arm(Some(fault));
        (handle, fault)
    }

    /// A client-side faulty stream and the host's end of the pipe.
    fn pipe(handle: &FaultHandle) -> (FaultyStream<DuplexStream>, DuplexStream) {
        let (client, host) = duplex(64 * 1024);
        (FaultyStream::new(client, handle), host)
    }

    /// Reads until end-of-stream or an error: the bytes and how it ended.
    async fn drain(s: &mut FaultyStream<DuplexStream>) -> (Vec<u8>, Option<io::ErrorKind>) {
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        for _ in 0..10_000 {
            match s.read(&mut buf).await {
                Ok(0) => return (got, None),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => return (got, Some(e.kind())),
            }
        }
        panic!("stream did not end");
    }

    async fn within<T>(f: impl Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(5), f)
            .await
            .expect("no hang")
    }

    #[tokio::test]
    async fn nothing_armed_passes_both_ways() {
        let handle = FaultHandle::new();
        let (mut s, mut host) = pipe(&handle);
        s.write_all(b"hello").await.unwrap();
        let mut five = [0u8; 5];
        host.read_exact(&mut five).await.unwrap();
        assert_eq!(&five, b"hello");
        host.write_all(&pdu(40, 12, 1)).await.unwrap();
        drop(host);
        assert_eq!(within(drain(&mut s)).await, (pdu(40, 12, 1), None));
        assert!(!handle.fired());
    }

    #[tokio::test]
    async fn reset_mid_pdu_cuts_at_the_seeded_point_and_replays() {
        let kind = FaultKind::Reset {
            at: CutPoint::MidPdu,
        };
        let mut cuts = Vec::new();
        for round in 0..2 {
            for draw in [1u64, 2, 3] {
                let (handle, fault) = armed(kind, draw);
                let (mut s, mut host) = pipe(&handle);
                host.write_all(&pdu(108, 12, 7)).await.unwrap();
                let (got, end) = within(drain(&mut s)).await;
                assert_eq!(end, Some(io::ErrorKind::ConnectionReset));
                assert_eq!(got.len(), fault.cut_offset(108));
                assert_eq!(got[..], pdu(108, 12, 7)[..got.len()]);
                assert!(handle.fired());
                assert!(s.inner().is_none(), "the inner stream was aborted");
                // The host's end sees the connection gone.
                let mut b = [0u8; 1];
                assert_eq!(host.read(&mut b).await.unwrap(), 0);
                let e = s.write_all(b"x").await.unwrap_err();
                assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
                if round == 0 {
                    cuts.push(got.len());
                } else {
                    assert_eq!(cuts[draw as usize - 1], got.len(), "replay");
                }
            }
        }
        assert!(cuts.iter().any(|&c| c != cuts[0]), "{cuts:?}");
    }

    #[tokio::test]
    async fn truncate_after_bytes_ends_the_stream_and_shuts_down() {
        let (handle, _) = armed(
            FaultKind::Truncate {
                at: CutPoint::AfterBytes(50),
            },
            0,
        );
        let (mut s, mut host) = pipe(&handle);
        let mut both = pdu(40, 12, 1);
        both.extend(pdu(30, 15, 2));
        host.write_all(&both).await.unwrap();
        let (got, end) = within(drain(&mut s)).await;
        assert_eq!(end, None);
        assert_eq!(got, both[..50]);
        // Our side shut down its write half: the host reads end-of-stream.
        let mut b = [0u8; 1];
        assert_eq!(within(host.read(&mut b)).await.unwrap(), 0);
        let e = s.write_all(b"x").await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    }

    #[tokio::test]
    async fn cut_beyond_the_traffic_never_fires() {
        let (handle, _) = armed(
            FaultKind::Reset {
                at: CutPoint::AfterBytes(1000),
            },
            0,
        );
        let (mut s, mut host) = pipe(&handle);
        host.write_all(&pdu(100, 2, 3)).await.unwrap();
        drop(host);
        assert_eq!(within(drain(&mut s)).await, (pdu(100, 2, 3), None));
        assert!(!handle.fired());
    }

    #[tokio::test]
    async fn corrupt_flips_the_first_response_only() {
        let v: serde_json::Value = serde_json::from_str(include_str!(
            "../../tests/data/vlmcsd-v6-windows10-pro.json"
        ))
        .unwrap();
        let pdus: Vec<Vec<u8>> = v["connections"][0]["pdus"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["dir"] == "s2c")
            .map(|p| hex::decode(p["hex"].as_str().unwrap()).unwrap())
            .collect();
        let sent: Vec<u8> = pdus.concat();
        for region in [Region::RpcHeader, Region::Stub, Region::Payload] {
            let kind = FaultKind::Corrupt { region, bytes: 3 };
            let (handle, fault) = armed(kind, 42);
            let (mut s, mut host) = pipe(&handle);
            // Split the host's bytes awkwardly: the wrapper must reassemble PDUs.
            for piece in sent.chunks(7) {
                host.write_all(piece).await.unwrap();
            }
            drop(host);
            let (got, end) = within(drain(&mut s)).await;
            assert_eq!(end, None);
            assert_eq!(got.len(), sent.len());
            let flips = fault.corruption(&pdus[2]);
            assert_eq!(flips.len(), 3);
            let base = pdus[0].len() + pdus[1].len();
            let mut want = sent.clone();
            for (offset, mask) in &flips {
                want[base + offset] ^= mask;
            }
            assert_eq!(got, want, "{region:?}");
            assert!(handle.fired());
        }
    }

    #[tokio::test]
    async fn corrupt_without_a_region_does_not_fire() {
        let (handle, _) = armed(
            FaultKind::Corrupt {
                region: Region::Payload,
                bytes: 1,
            },
            1,
        );
        let (mut s, mut host) = pipe(&handle);
        host.write_all(&pdu(40, 12, 0)).await.unwrap();
        host.write_all(&pdu(32, 3, 0)).await.unwrap();
        drop(host);
        let (got, _) = within(drain(&mut s)).await;
        assert_eq!(got.len(), 72);
        assert!(!handle.fired());
    }

    #[tokio::test]
    async fn trickle_receive_releases_chunks() {
        let (handle, _) = armed(
            FaultKind::Trickle {
                on: Direction::Receive,
                chunk: 7,
                every: Duration::from_millis(1),
            },
            0,
        );
        let (mut s, mut host) = pipe(&handle);
        host.write_all(&pdu(40, 12, 9)).await.unwrap();
        drop(host);
        let mut sizes = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            let n = within(s.read(&mut buf)).await.unwrap();
            if n == 0 {
                break;
            }
            sizes.push(n);
        }
        assert_eq!(sizes, [7, 7, 7, 7, 7, 5]);
    }

    #[tokio::test]
    async fn trickle_send_splits_writes() {
        let (handle, _) = armed(
            FaultKind::Trickle {
                on: Direction::Send,
                chunk: 4,
                every: Duration::from_millis(1),
            },
            0,
        );
        let (mut s, mut host) = pipe(&handle);
        let n = within(s.write(b"0123456789")).await.unwrap();
        assert_eq!(n, 4);
        within(s.write_all(b"456789")).await.unwrap();
        let mut got = [0u8; 10];
        host.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"0123456789");
    }

    #[tokio::test]
    async fn delay_keeps_bytes_and_order() {
        for on in [Direction::Send, Direction::Receive] {
            let (handle, _) = armed(
                FaultKind::Delay {
                    on,
                    delay: Duration::from_millis(2),
                    jitter: Duration::from_millis(2),
                },
                5,
            );
            let (mut s, mut host) = pipe(&handle);
            for i in 0..5u8 {
                within(s.write_all(&[i; 3])).await.unwrap();
                host.write_all(&[10 + i; 3]).await.unwrap();
            }
            let mut sent = [0u8; 15];
            host.read_exact(&mut sent).await.unwrap();
            assert_eq!(sent, [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]);
            drop(host);
            let (got, end) = within(drain(&mut s)).await;
            assert_eq!(end, None);
            assert_eq!(
                got,
                [10, 10, 10, 11, 11, 11, 12, 12, 12, 13, 13, 13, 14, 14, 14]
            );
            assert!(handle.fired());
        }
    }

    #[tokio::test]
    async fn stall_waits_for_its_phase() {
        let stall = |phase| FaultKind::Stall {
            phase,
            duration: None,
        };
        // A request stall does not hold the bind_ack.
        let (handle, _) = armed(stall(StallPhase::Request), 0);
        let (mut s, mut host) = pipe(&handle);
        s.write_all(&pdu(72, Ptype::BIND.0, 0)).await.unwrap();
        host.write_all(&pdu(60, 12, 0)).await.unwrap();
        let mut buf = [0u8; 60];
        within(s.read_exact(&mut buf)).await.unwrap();
        assert!(!handle.fired());
        // The request goes out, and nothing comes back.
        s.write_all(&pdu(100, Ptype::REQUEST.0, 0)).await.unwrap();
        assert!(handle.fired());
        host.write_all(&pdu(60, 2, 0)).await.unwrap();
        let held = tokio::time::timeout(Duration::from_millis(50), s.read(&mut buf)).await;
        assert!(held.is_err(), "the response is held");

        // A bounded bind stall lets the bind_ack through afterwards.
        let (handle, _) = armed(
            FaultKind::Stall {
                phase: StallPhase::Bind,
                duration: Some(Duration::from_millis(5)),
            },
            0,
        );
        let (mut s, mut host) = pipe(&handle);
        // The bind goes out in two pieces that split its header.
        let bind = pdu(72, Ptype::BIND.0, 0);
        s.write_all(&bind[..2]).await.unwrap();
        assert!(!handle.fired());
        s.write_all(&bind[2..]).await.unwrap();
        assert!(handle.fired());
        host.write_all(&pdu(60, 12, 0)).await.unwrap();
        within(s.read_exact(&mut buf)).await.unwrap();
    }

    #[tokio::test]
    async fn kept_connection_is_rearmed_per_attempt() {
        let handle = FaultHandle::new();
        let (mut s, mut host) = pipe(&handle);
        // Attempt 1: clean.
        host.write_all(&pdu(20, 2, 1)).await.unwrap();
        let mut buf = [0u8; 20];
        s.read_exact(&mut buf).await.unwrap();
        // Attempt 2: a reset after 5 bytes, counted from this attempt.
        handle.arm(Some(InjectedFault::new(
            FaultKind::Reset {
                at: CutPoint::AfterBytes(5),
            },
            0,
        )));
        host.write_all(&pdu(20, 2, 2)).await.unwrap();
        let (got, end) = within(drain(&mut s)).await;
        assert_eq!((got.len(), end), (5, Some(io::ErrorKind::ConnectionReset)));
    }

    #[tokio::test]
    async fn connect_faults_on_a_kept_connection() {
        // Refuse: the host went away, the connection reads as closed.
        let handle = FaultHandle::new();
        let (mut s, _host) = pipe(&handle);
        handle.arm(Some(InjectedFault::new(FaultKind::Refuse, 0)));
        let mut buf = [0u8; 8];
        assert_eq!(within(s.read(&mut buf)).await.unwrap(), 0);
        assert!(!handle.fired(), "fires at the refused reconnect");
        // Blackhole: writes vanish, nothing ever arrives.
        let handle = FaultHandle::new();
        let (mut s, mut host) = pipe(&handle);
        handle.arm(Some(InjectedFault::new(FaultKind::Blackhole, 0)));
        s.write_all(b"lost").await.unwrap();
        host.write_all(b"also lost").await.unwrap();
        let r = tokio::time::timeout(Duration::from_millis(30), s.read(&mut buf)).await;
        assert!(r.is_err());
        assert!(handle.fired());
        let r = tokio::time::timeout(Duration::from_millis(10), host.read(&mut buf)).await;
        assert!(r.is_err(), "nothing reached the host");
        // A connect delay has nothing to act on.
        let handle = FaultHandle::new();
        let (mut s, mut host) = pipe(&handle);
        handle.arm(Some(InjectedFault::new(
            FaultKind::Delay {
                on: Direction::Connect,
                delay: Duration::from_secs(60),
                jitter: Duration::ZERO,
            },
            0,
        )));
        host.write_all(b"ok").await.unwrap();
        assert_eq!(within(s.read(&mut buf)).await.unwrap(), 2);
        assert!(!handle.fired());
    }

    #[tokio::test]
    async fn events_happen_once_per_attempt_conditions_on_every_connection() {
        let (handle, _) = armed(
            FaultKind::Reset {
                at: CutPoint::AfterBytes(0),
            },
            0,
        );
        let (mut s, mut host) = pipe(&handle);
        host.write_all(b"x").await.unwrap();
        assert_eq!(
            within(drain(&mut s)).await.1,
            Some(io::ErrorKind::ConnectionReset)
        );
        // The reconnect within the same attempt is clean.
        let (mut s, mut host) = pipe(&handle);
        host.write_all(b"fine").await.unwrap();
        drop(host);
        assert_eq!(within(drain(&mut s)).await, (b"fine".to_vec(), None));

        let (handle, _) = armed(
            FaultKind::Trickle {
                on: Direction::Receive,
                chunk: 1,
                every: Duration::from_millis(1),
            },
            0,
        );
        for _ in 0..2 {
            let (mut s, mut host) = pipe(&handle);
            host.write_all(b"ab").await.unwrap();
            let mut buf = [0u8; 8];
            assert_eq!(within(s.read(&mut buf)).await.unwrap(), 1);
        }
    }

    #[tokio::test]
    async fn garbage_is_passed_on_not_held() {
        for kind in [
            FaultKind::Corrupt {
                region: Region::Stub,
                bytes: 1,
            },
            FaultKind::Reset {
                at: CutPoint::MidPdu,
            },
        ] {
            let (handle, _) = armed(kind, 0);
            let (mut s, mut host) = pipe(&handle);
            host.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
            drop(host);
            let (got, _) = within(drain(&mut s)).await;
            assert!(got.starts_with(b"GET"));
        }
        // Fewer bytes than a frame head, then close: passed on.
        let (handle, _) = armed(
            FaultKind::Truncate {
                at: CutPoint::MidPdu,
            },
            0,
        );
        let (mut s, mut host) = pipe(&handle);
        host.write_all(&[5, 0, 2]).await.unwrap();
        drop(host);
        assert_eq!(within(drain(&mut s)).await, (vec![5, 0, 2], None));
    }

    #[test]
    fn pdu_cursor_reports_each_pdu_start() {
        let mut stream = pdu(30, 11, 0);
        stream.extend(pdu(20, 14, 0));
        stream.extend(pdu(40, 0, 0));
        for split in [1, 2, 3, 9, 10, 11, 64] {
            let mut cursor = PduCursor::default();
            let mut seen = Vec::new();
            for piece in stream.chunks(split) {
                cursor.feed(piece, |p| seen.push(p));
            }
            assert_eq!(seen, [11, 14, 0], "split {split}");
        }
    }
}
