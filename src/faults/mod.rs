//! `faults`: network faults applied on the client side of each connection (issue 5), seeded
//! per client so any faulted attempt replays from (seed, client index, attempt).
//!
//! The client never knows: faults wrap the transport it is given (the [`Connector`] and the
//! stream it hands out), as smoltcp's fault injector wraps a device. What a fault does to an
//! attempt is then classified by [`crate::client::outcome`], the one mapping to the codes a
//! real client reports; this module only makes the network misbehave and says which fault it
//! injected ([`InjectedFault::label`]).
//!
//! ```text
//! FaultPlan::decide(client, attempt, elapsed) ──► Option<InjectedFault>
//!                                                      │ FaultHandle::arm (per attempt)
//!                                                      ▼
//! Client ──connect──► FaultyConnector ──► refuse: ConnectionRefused at once
//!                         │               blackhole: never completes (connect timeout)
//!                         │               delay on connect: sleep, then connect
//!                         ▼
//!                     FaultyStream ◄──► inner stream (TCP)
//!                         delay / trickle on send or receive, stall, reset (RST),
//!                         truncate (FIN mid-PDU), corrupt (flipped bytes in a response)
//! ```
//!
//! | kind | effect on the client side |
//! |---|---|
//! | `delay` | wait `delay` + seeded jitter before the connect, each write, or each chunk read |
//! | `refuse` | the connect fails at once with `ConnectionRefused`; no packet is sent |
//! | `blackhole` | the connect never completes: the client's connect timeout ends it |
//! | `reset` | bytes up to the cut, then an RST towards the host and `ConnectionReset` here |
//! | `truncate` | bytes up to the cut, then a FIN towards the host and end-of-stream here |
//! | `corrupt` | bytes of the first response PDU flipped ([`region`] says which) |
//! | `stall` | nothing arrives for `duration` (or at all) after the phase's PDU is sent |
//! | `trickle` | `chunk` bytes per `every`, on send or receive |
//!
//! A cut (`after_bytes` or mid-PDU) counts received bytes from the start of the attempt on
//! the connection, and "mid-PDU" means a seeded point strictly inside the next PDU received
//! (on a new connection: the bind_ack). The cut happens when bytes beyond it arrive, as an
//! RST or FIN would take their place.
//!
//! # Rules
//!
//! - **At most one fault per attempt** ([`FaultPlan`]): rules take consecutive slices of one
//!   seeded draw, so each fires with its own probability while they add up to at most 1.
//! - **Events happen once per attempt, conditions hold for all of it.** refuse, blackhole,
//!   reset, truncate, corrupt and stall act once (the [`FaultHandle`] remembers that they
//!   fired): when the client reconnects within the attempt, the new connection is clean.
//!   delay and trickle apply to every connection the attempt makes.
//! - **Kept-alive connections** are re-armed per attempt through the shared
//!   [`FaultHandle`]. On a kept connection, `refuse` closes it (the host went away: the
//!   client reconnects and is refused), `blackhole` silences it (the request times out), and
//!   a connect delay does nothing (there is no connect).
//! - **No fault, no cost**: a [`FaultyStream`] with nothing armed forwards each call after one
//!   atomic load; a run without fault rules can use the plain connector
//!   ([`FaultPlan::is_empty`]).
//! - **No hang, no panic**: every wait is either a timer or one of the client's deadlines
//!   (a blackhole and an endless stall wait for the phase timeout); bytes from the network
//!   are looked at only through bounds-checked accesses.
//!
//! # Seeds
//!
//! Two streams of [`crate::sim::mix`] under the run seed, tags [`TAG_SELECT`] ("fltsel")
//! and [`TAG_DRAW`] ("fltdrw"), both above the fleet's tags (< 0x100); the choices inside a
//! fault (jitter, cut point, corrupted bytes and masks) are sub-streams of the attempt's
//! draw. The byte positions therefore replay exactly; delays replay per chunk read, and
//! how the OS splits a stream into reads is not under our control.
//!
//! Left out here: faults below the socket (packet loss, reordering, MTU; issue 5 asks for
//! network namespaces with netem for those), faults on the host side, and the runner and
//! `kmsload activate` integration, which call [`FaultPlan::decide`] and
//! [`FaultHandle::arm`] per attempt (see [`crate::cli::fault_args`] for the flags).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::DuplexStream;
use tokio::net::TcpStream;

use crate::client::Connector;

mod client;
mod decide;
pub mod region;
mod rules;
mod stream;

pub use client::FaultyClient;
pub use decide::{FaultPlan, InjectedFault, TAG_DRAW, TAG_SELECT};
pub use rules::{CutPoint, Direction, FaultKind, FaultRule, Region, StallPhase, Window};
pub use stream::FaultyStream;

/// Closes a stream abortively: for TCP an RST towards the peer instead of a FIN, as when a
/// firewall or a crashing host resets a connection.
pub trait Abort {
    /// Closes the stream at once, discarding what is unsent.
    fn abort(self);
}

impl Abort for TcpStream {
    fn abort(self) {
        // SO_LINGER with a zero timeout makes the close send an RST; it never blocks. If the
        // option cannot be set the close is an ordinary FIN, which the client side does not
        // see anyway: it already got its ConnectionReset.
        let _ = self.set_zero_linger();
        drop(self);
    }
}

impl Abort for DuplexStream {
    fn abort(self) {
        drop(self);
    }
}

/// The fault armed for the current attempt, shared by a [`FaultyConnector`] and every
/// stream it made.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    generation: AtomicU64,
    fault: Mutex<Option<InjectedFault>>,
    fired: AtomicBool,
}

impl Slot {
    fn arm(&self, fault: Option<InjectedFault>) {
        *self.fault.lock().unwrap_or_else(PoisonError::into_inner) = fault;
        self.fired.store(false, Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::Release);
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The generation and its fault.
    fn current(&self) -> (u64, Option<InjectedFault>) {
        let generation = self.generation();
        let fault = *self.fault.lock().unwrap_or_else(PoisonError::into_inner);
        (generation, fault)
    }

    fn fire(&self) {
        self.fired.store(true, Ordering::Relaxed);
    }

    fn fired(&self) -> bool {
        self.fired.load(Ordering::Relaxed)
    }
}

/// Arms the fault of each attempt for a [`FaultyConnector`] and its streams, and says
/// afterwards whether it took effect. Cheap to clone; the runner keeps one per client next
/// to the [`Client`](crate::client::Client) that owns the connector.
#[derive(Debug, Clone, Default)]
pub struct FaultHandle {
    slot: Arc<Slot>,
}

impl FaultHandle {
    /// A handle with nothing armed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the fault for the next attempt (`None`: a clean attempt). Call it before
    /// [`Client::activate`](crate::client::Client::activate), never during one.
    pub fn arm(&self, fault: Option<InjectedFault>) {
        self.slot.arm(fault);
    }

    /// The armed fault.
    pub fn armed(&self) -> Option<InjectedFault> {
        self.slot.current().1
    }

    /// True when the armed fault touched the attempt: a connect refused, blackholed or
    /// delayed, bytes delayed, held or flipped, a cut made, a stall started. False when it
    /// had nothing to act on (a cut after more bytes than arrived, a bind stall on a kept
    /// connection, a corruption of a payload a refusal does not have). An attempt with a
    /// fault armed belongs with the faulted ones in latency figures either way.
    pub fn fired(&self) -> bool {
        self.slot.fired()
    }
}

/// A [`Connector`] that applies the armed fault to connects and wraps every stream in a
/// [`FaultyStream`]. One per client: its handle arms that client's attempts only.
#[derive(Debug)]
pub struct FaultyConnector<C> {
    inner: C,
    handle: FaultHandle,
}

impl<C> FaultyConnector<C> {
    /// Wraps `inner`, with a new handle (see [`FaultyConnector::handle`]).
    pub fn new(inner: C) -> Self {
        Self::with_handle(inner, FaultHandle::new())
    }

    /// Wraps `inner`, armed through `handle`.
    pub fn with_handle(inner: C, handle: FaultHandle) -> Self {
        Self { inner, handle }
    }

    /// The handle that arms this connector and its streams.
    pub fn handle(&self) -> FaultHandle {
        self.handle.clone()
    }

    /// The connector underneath.
    pub fn inner(&self) -> &C {
        &self.inner
    }
}

impl<C> Connector for FaultyConnector<C>
where
    C: Connector,
    C::Stream: Abort,
{
    type Stream = FaultyStream<C::Stream>;

    async fn connect(&self, addr: SocketAddr) -> io::Result<Self::Stream> {
        let slot = &self.handle.slot;
        let (_, fault) = slot.current();
        // An event that already happened in this attempt does not happen again.
        let fault = fault.filter(|f| !(f.is_event() && slot.fired()));
        if let Some(f) = fault {
            match f.kind {
                FaultKind::Refuse => {
                    slot.fire();
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionRefused,
                        "connection refused (injected fault)",
                    ));
                }
                FaultKind::Blackhole => {
                    slot.fire();
                    // The SYN goes nowhere: only the caller's connect timeout ends this.
                    return std::future::pending().await;
                }
                FaultKind::Delay {
                    on: Direction::Connect,
                    ..
                } => {
                    slot.fire();
                    tokio::time::sleep(f.delay(0)).await;
                }
                _ => {}
            }
        }
        let stream = self.inner.connect(addr).await?;
        Ok(FaultyStream::with_slot(stream, Arc::clone(slot)))
    }
}
