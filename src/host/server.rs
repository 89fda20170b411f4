//! The tokio server around the host model: `kmsload host`, and the in-process host that tests
//! and `kmsload run` (with no target) start on an ephemeral loopback port.
//!
//! ```text
//!   start(ServerOptions) ──► HostHandle { addr, stats, with_model, shutdown }
//!         │
//!   supervisor task: accept loop ── permit (max_connections) ── spawn per connection ──┐
//!         │                                                                             │
//!         │   connection task: read whole PDUs (wire::rpc::check_frame) under a         │
//!         │   deadline ─► HostSession::handle_pdu ─► KMS payload: HostRequest::decode   │
//!         │   ─► lock model, HostModel::handle(now), unlock ─► encode ─► write          │
//!         │                                                                             │
//!   stop (watch) ──► accept loop ends, idle connections close ──► wait until every ─────┘
//!                    connection task has ended ──► final --state save ──► ServerReport
//! ```
//!
//! # Behaviour
//!
//! - RPC negotiation is [`HostSession`]'s, configured by [`ServerOptions::rpc`]: Windows-like by
//!   default (NDR64 accepted, NDR32 then rejected so Windows clients send an alter_context,
//!   BTFN acknowledged); `ndr64: false` / `btfn: false` test clients' fallbacks. The
//!   secondary address of the bind_ack is always the port actually listened on, like vlmcsd.
//! - One connection carries any number of requests, each answered in order. With
//!   [`ServerOptions::close_after_response`] the connection is closed after the answer to the
//!   first request (py-kms, vlmcsd `-d`).
//! - A KMS payload that does not decode (bad size, padding, MAC, version) is answered with
//!   0x8007000D in the response stub (spec 8.2); a version the model does not implement too.
//!   Bytes that are not DCE/RPC, a malformed PDU or stub, a request before the bind, a second
//!   bind: the connection is closed without an answer (vlmcsd's behaviour, spec 8.1 path 3).
//!   Nothing a peer sends can panic the server or affect another connection.
//! - Deadlines: each PDU must arrive whole within [`ServerOptions::idle_timeout`] (30 s, like
//!   vlmcsd `-t`) of the end of the previous one, so a silent or trickling peer is dropped;
//!   each write has the same deadline.
//! - [`ServerOptions::max_connections`]: when that many connections are open the accept loop
//!   stops accepting until one ends. New connections then **wait** in the kernel's listen
//!   backlog (4096, capped by `net.core.somaxconn`), as with vlmcsd `-m`: their TCP connect
//!   completes, their bind is answered once a slot frees, and a client whose bind deadline
//!   passes first sees a timeout. Waiting, rather than refusing, shows a saturated host the
//!   way a load test should see it: as latency.
//! - The model sits behind a `std::sync::Mutex` held only for [`HostModel::handle`] (never
//!   across an `.await`). Time comes from the [`Clock`] in the options: [`SystemClock`], or a
//!   [`VirtualClock`] that tests advance by 30 days.
//! - Randomness (association group id per connection, `IV_resp` and `R` per response) comes
//!   from a SplitMix64 per connection seeded from the thread RNG: 8 bytes of state.
//! - `--state FILE`: loaded at start when the file exists; saved (atomically, see
//!   [`super::state`]) every [`ServerOptions::state_interval`] when a request was handled since
//!   the last save, and at shutdown.
//! - An idle connection holds no read buffer: the buffer is released whenever no partial PDU
//!   is pending and allocated again when bytes arrive.
//!
//! Left out: TLS or any authentication, multi-fragment calls (a KMS PDU always fits one),
//! per-peer rate limits, and refusals a real host may send but the model does not have.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

use super::config::{ConfigError, HostConfig};
use super::model::{Decision, HostModel, ModelSummary, Refusal, hresult};
use super::rng::SplitMix64;
use super::state::{self, HostState, StateError};
use crate::catalog::lookup;
use crate::wire::kms::{HostRequest, RequestError};
use crate::wire::rpc::{Frame, FrameError, Header, Ptype, SecondaryAddress, check_frame, field};
use crate::wire::session::{CloseReason, HostAction, HostRpcConfig, HostSession};
use crate::wire::{FileTime, Version};

/// vlmcsd's default idle timeout (`-t`, spec 10.8).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default cap on simultaneous connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Default period of `--state` saves (only when something changed).
pub const DEFAULT_STATE_INTERVAL: Duration = Duration::from_secs(10);
/// Listen backlog requested from the kernel (Linux caps it at `net.core.somaxconn`).
const LISTEN_BACKLOG: u32 = 4096;
/// Bytes reserved for each read: a V6 request PDU (292 bytes) or a bind (160) arrives in one.
const READ_CHUNK: usize = 512;
/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

// ---------------------------------------------------------------------------------------------
// Clock
// ---------------------------------------------------------------------------------------------

/// The host's clock: what "now" is for the time check, the client tables and the logs.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current host time.
    fn now(&self) -> FileTime;
}

/// The system's UTC clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> FileTime {
        // Before 1970 only on a badly broken clock; FileTime saturates anyway.
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
        FileTime::from_unix(secs, since.subsec_nanos())
    }
}

/// A clock that only moves when told to: tests start it anywhere and advance it by days.
/// Clones share the same time.
#[derive(Debug, Clone)]
pub struct VirtualClock(Arc<AtomicU64>);

impl VirtualClock {
    /// A clock standing at `start`.
    pub fn new(start: FileTime) -> Self {
        Self(Arc::new(AtomicU64::new(start.0)))
    }

    /// Moves the clock by `secs` (negative: back), saturating.
    pub fn advance_secs(&self, secs: i64) {
        // fetch_update with a closure that always returns Some cannot fail.
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(FileTime(t).offset_secs(secs).0)
            });
    }

    /// Moves the clock forward by `by` (whole seconds).
    pub fn advance(&self, by: Duration) {
        self.advance_secs(i64::try_from(by.as_secs()).unwrap_or(i64::MAX));
    }

    /// Sets the clock.
    pub fn set(&self, t: FileTime) {
        self.0.store(t.0, Ordering::SeqCst);
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> FileTime {
        FileTime(self.0.load(Ordering::SeqCst))
    }
}

// ---------------------------------------------------------------------------------------------
// Options, errors, events
// ---------------------------------------------------------------------------------------------

/// Receives the server's log events (one per request, one per dropped connection).
#[derive(Clone)]
pub struct Logger(Arc<dyn Fn(&LogEvent) + Send + Sync>);

impl Logger {
    /// A logger calling `f` for every event.
    pub fn new(f: impl Fn(&LogEvent) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// One line per event on stderr (`kmsload host`).
    pub fn stderr() -> Self {
        Self::new(|event| {
            use std::io::Write;
            let _ = writeln!(io::stderr().lock(), "{event}");
        })
    }

    fn log(&self, event: &LogEvent) {
        (self.0)(event);
    }
}

impl fmt::Debug for Logger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Logger")
    }
}

/// How the host is started. [`ServerOptions::default`] is the in-process host: an ephemeral
/// loopback port, a Windows-like host with every key, no log, no state file, system time.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Address to listen on; port 0 picks a free one ([`HostHandle::addr`] tells which).
    pub listen: SocketAddr,
    /// The behaviour model's configuration.
    pub host: HostConfig,
    /// RPC negotiation. `sec_addr` is replaced by the port actually listened on.
    pub rpc: HostRpcConfig,
    /// Close the connection after answering a request (py-kms, vlmcsd `-d`).
    pub close_after_response: bool,
    /// Answer V6 requests with the request's IV instead of a fresh one, as a host built with
    /// V5 rules does; vlmcs and `kmsload validate` flag such hosts as emulators.
    pub echo_iv: bool,
    /// Longest wait for a whole PDU, and for a write (vlmcsd `-t`, 30 s).
    pub idle_timeout: Duration,
    /// Simultaneous connections; more wait in the listen backlog (see the module docs).
    pub max_connections: usize,
    /// `--state FILE`: client tables and identity kept across restarts.
    pub state_file: Option<PathBuf>,
    /// How often the state file is saved when something changed.
    pub state_interval: Duration,
    /// The host's clock.
    pub clock: Arc<dyn Clock>,
    /// Where log events go; `None` logs nothing (the in-process default).
    pub log: Option<Logger>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            host: HostConfig::default(),
            rpc: HostRpcConfig::default(),
            close_after_response: false,
            echo_iv: false,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            state_file: None,
            state_interval: DEFAULT_STATE_INTERVAL,
            clock: Arc::new(SystemClock),
            log: None,
        }
    }
}

/// Why the host could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The model's configuration is invalid.
    #[error("host configuration: {0}")]
    Config(#[from] ConfigError),
    /// The state file could not be read or used.
    #[error(transparent)]
    State(#[from] StateError),
    /// A server option is out of range.
    #[error("{0}")]
    Options(String),
    /// The listening socket could not be set up.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// The background runtime could not be built.
    #[error("cannot start the host's runtime: {0}")]
    Runtime(io::Error),
}

/// Something worth a log line.
#[derive(Debug, Clone)]
pub enum LogEvent {
    /// A KMS request was answered.
    Request(RequestEvent),
    /// A connection was closed for misbehaving (not for a normal close).
    Dropped {
        /// Host time.
        time: FileTime,
        /// The peer.
        peer: SocketAddr,
        /// Why.
        reason: DropReason,
    },
}

/// One answered KMS request.
#[derive(Debug, Clone)]
pub struct RequestEvent {
    /// Host time of the answer.
    pub time: FileTime,
    /// The client's address.
    pub peer: SocketAddr,
    /// The request's version (`None` when the payload was too short to have one).
    pub protocol: Option<Version>,
    /// CMID, SKU ID and KMS counted ID, when the request decoded.
    pub ids: Option<RequestIds>,
    /// What the host answered.
    pub outcome: RequestOutcome,
}

/// The identifiers of a decoded request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestIds {
    /// `ClientMachineID`.
    pub cmid: Uuid,
    /// `SkuID`.
    pub sku_id: Uuid,
    /// `KmsCountedID`.
    pub kms_id: Uuid,
}

/// What the host answered to one request.
#[derive(Debug, Clone)]
pub enum RequestOutcome {
    /// A response with count ≥ N: the client activates.
    Activated {
        /// `CurrentCount` sent.
        count: u32,
        /// The request's `RequiredClientCount`.
        required: u32,
    },
    /// A response with count < N: the client reports 0xC004F038.
    LowCount {
        /// `CurrentCount` sent.
        count: u32,
        /// The request's `RequiredClientCount`.
        required: u32,
    },
    /// The model refused; its HRESULT went into the response stub.
    Refused(Refusal),
    /// The payload did not decode; 0x8007000D went into the response stub.
    Invalid(RequestError),
}

impl RequestOutcome {
    /// The HRESULT on the wire (0 for a response).
    pub fn hresult(&self) -> u32 {
        match self {
            Self::Activated { .. } | Self::LowCount { .. } => 0,
            Self::Refused(r) => r.hresult(),
            Self::Invalid(_) => hresult::INVALID_DATA,
        }
    }
}

/// Why a connection was dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropReason {
    /// No whole PDU within the idle timeout.
    IdleTimeout,
    /// The bytes are not DCE/RPC.
    Framing(FrameError),
    /// The session refused the PDU (malformed, out of order, ...).
    Rejected(CloseReason),
    /// The peer closed in the middle of a PDU.
    Truncated,
    /// A write did not complete within the idle timeout.
    WriteTimeout,
    /// The socket failed (reset, ...).
    Io(io::ErrorKind),
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::IdleTimeout => f.write_str("idle timeout: no whole PDU in time"),
            Self::Framing(e) => write!(f, "not DCE/RPC: {e}"),
            Self::Rejected(r) => write!(f, "{r}"),
            Self::Truncated => f.write_str("peer closed in the middle of a PDU"),
            Self::WriteTimeout => f.write_str("write timed out"),
            Self::Io(kind) => write!(f, "socket error: {kind}"),
        }
    }
}

/// One line: time, peer, protocol, CMID, product, outcome, HRESULT, count (and why, when not
/// activated):
///
/// ```text
/// 2026-11-22T01:26:21Z 127.0.0.1:50112 V6 cmid=… "Windows 10/11 Enterprise" activated 0x00000000 count 25/25
/// 2026-11-22T01:26:21Z 127.0.0.1:50114 V6 cmid=… "Office 2019 Standard" refused 0xC004F042 count - (KMS ID …)
/// 2026-11-22T01:26:22Z 127.0.0.1:50120 connection dropped: idle timeout: no whole PDU in time
/// ```
impl fmt::Display for LogEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Request(r) => {
                write!(f, "{} {} ", Utc(r.time), r.peer)?;
                match r.protocol {
                    Some(v) if v.minor == 0 => write!(f, "V{} ", v.major)?,
                    Some(v) => write!(f, "V{v} ")?,
                    None => f.write_str("V? ")?,
                }
                match &r.ids {
                    Some(ids) => write!(
                        f,
                        "cmid={} \"{}\" ",
                        ids.cmid,
                        ProductLabel(ids.sku_id, ids.kms_id)
                    )?,
                    None => f.write_str("cmid=- - ")?,
                }
                match &r.outcome {
                    RequestOutcome::Activated { count, required } => {
                        write!(f, "activated 0x00000000 count {count}/{required}")
                    }
                    RequestOutcome::LowCount { count, required } => write!(
                        f,
                        "not_activated 0xC004F038 count {count}/{required} (below threshold)"
                    ),
                    RequestOutcome::Refused(refusal) => {
                        // Refusal's Display is "0xCODE: reason"; the code is written first.
                        let text = refusal.to_string();
                        let reason = text.split_once(": ").map_or(text.as_str(), |(_, r)| r);
                        write!(f, "refused 0x{:08X} count - ({reason})", refusal.hresult())
                    }
                    RequestOutcome::Invalid(e) => {
                        write!(f, "refused 0x8007000D count - (undecodable request: {e})")
                    }
                }
            }
            Self::Dropped { time, peer, reason } => {
                write!(f, "{} {peer} connection dropped: {reason}", Utc(*time))
            }
        }
    }
}

/// The catalog's product name for a SKU ID, else the KMS ID's name, else the SKU ID.
struct ProductLabel(Uuid, Uuid);

impl fmt::Display for ProductLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = lookup::by_sku_id(self.0) {
            f.write_str(&p.name)
        } else if let Some(k) = super::keys::kms_id(self.1) {
            write!(f, "SKU {} of {}", self.0, k.name)
        } else {
            write!(f, "SKU {}", self.0)
        }
    }
}

/// A FILETIME as `YYYY-MM-DDTHH:MM:SSZ`.
struct Utc(FileTime);

impl fmt::Display for Utc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.unix_secs();
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        // Civil date from days since 1970-01-01 (proleptic Gregorian; H. Hinnant's method).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            rem / 3600,
            rem / 60 % 60,
            rem % 60
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------------------------

/// What the server did, beyond the model's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ServerStats {
    /// Connections accepted.
    pub connections: u64,
    /// Connections open now.
    pub open: u64,
    /// Most connections open at once.
    pub peak_open: u64,
    /// KMS requests received (each answered with a response or an HRESULT).
    pub requests: u64,
    /// Answered with a KMS response.
    pub responses: u64,
    /// Answered with an HRESULT (model refusals and undecodable payloads).
    pub refused: u64,
    /// Payloads that did not decode (answered 0x8007000D).
    pub invalid: u64,
    /// Fault PDUs sent (unknown context, bad opnum).
    pub faults: u64,
    /// Connections dropped for bytes that are not DCE/RPC or a PDU the session refused.
    pub dropped_malformed: u64,
    /// Connections dropped at the idle timeout.
    pub dropped_idle: u64,
    /// Connections the peer closed in the middle of a PDU, or that failed.
    pub dropped_other: u64,
    /// `accept` failures (e.g. out of file descriptors).
    pub accept_errors: u64,
}

impl fmt::Display for ServerStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "connections {} (peak {} open)  requests {}  responses {}  refused {} ({} undecodable)  faults {}  dropped: malformed {}, idle {}, other {}",
            self.connections,
            self.peak_open,
            self.requests,
            self.responses,
            self.refused,
            self.invalid,
            self.faults,
            self.dropped_malformed,
            self.dropped_idle,
            self.dropped_other,
        )?;
        if self.accept_errors > 0 {
            write!(f, "  accept errors {}", self.accept_errors)?;
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Stats {
    connections: AtomicU64,
    open: AtomicU64,
    peak_open: AtomicU64,
    requests: AtomicU64,
    responses: AtomicU64,
    refused: AtomicU64,
    invalid: AtomicU64,
    faults: AtomicU64,
    dropped_malformed: AtomicU64,
    dropped_idle: AtomicU64,
    dropped_other: AtomicU64,
    accept_errors: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Stats {
    fn snapshot(&self) -> ServerStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ServerStats {
            connections: get(&self.connections),
            open: get(&self.open),
            peak_open: get(&self.peak_open),
            requests: get(&self.requests),
            responses: get(&self.responses),
            refused: get(&self.refused),
            invalid: get(&self.invalid),
            faults: get(&self.faults),
            dropped_malformed: get(&self.dropped_malformed),
            dropped_idle: get(&self.dropped_idle),
            dropped_other: get(&self.dropped_other),
            accept_errors: get(&self.accept_errors),
        }
    }
}

/// What a stopped host reports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServerReport {
    /// Connection and request statistics.
    pub stats: ServerStats,
    /// The model's summary at shutdown.
    pub summary: ModelSummary,
    /// The final `--state` save failed with this message.
    pub state_error: Option<String>,
}

impl fmt::Display for ServerReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.summary)?;
        writeln!(f, "{}", self.stats)?;
        if let Some(e) = &self.state_error {
            writeln!(f, "state not saved: {e}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Handles
// ---------------------------------------------------------------------------------------------

/// A running host. Dropping it stops the host in the background; [`HostHandle::shutdown`]
/// stops it and waits.
#[derive(Debug)]
pub struct HostHandle {
    addr: SocketAddr,
    shared: Arc<ServerShared>,
    stop: watch::Sender<bool>,
    supervisor: JoinHandle<Option<String>>,
}

impl HostHandle {
    /// The address the host listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connection and request statistics so far.
    pub fn stats(&self) -> ServerStats {
        self.shared.stats.snapshot()
    }

    /// The model's summary now.
    pub fn summary(&self) -> ModelSummary {
        let now = self.shared.clock.now();
        self.shared.model().summary(now)
    }

    /// Host time now (the options' clock).
    pub fn now(&self) -> FileTime {
        self.shared.clock.now()
    }

    /// Runs `f` on the model (under its lock: keep it short, no blocking).
    pub fn with_model<R>(&self, f: impl FnOnce(&HostModel) -> R) -> R {
        f(&self.shared.model())
    }

    /// Stops accepting, closes idle connections, lets requests being answered finish, waits
    /// for every connection to end (at most the idle timeout for a stalled write), saves the
    /// state file, and reports.
    pub async fn shutdown(self) -> ServerReport {
        let _ = self.stop.send(true);
        let state_error = match self.supervisor.await {
            Ok(e) => e,
            Err(e) => Some(format!("host task failed: {e}")),
        };
        let now = self.shared.clock.now();
        ServerReport {
            stats: self.shared.stats.snapshot(),
            summary: self.shared.model().summary(now),
            state_error,
        }
    }
}

/// A host running on its own runtime (threads named `kmsload-host`), for callers without
/// one: benchmarks, synchronous tests. Dropping it stops the host.
#[derive(Debug)]
pub struct BackgroundHost {
    handle: Option<HostHandle>,
    runtime: Option<tokio::runtime::Runtime>,
}

/// Starts the host on a new multi-threaded runtime with `worker_threads` threads. Call it from
/// synchronous code (not from inside a tokio runtime).
///
/// # Errors
/// [`ServerError`] as [`start`], or [`ServerError::Runtime`].
pub fn start_background(
    options: ServerOptions,
    worker_threads: usize,
) -> Result<BackgroundHost, ServerError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads.max(1))
        .thread_name("kmsload-host")
        .enable_all()
        .build()
        .map_err(ServerError::Runtime)?;
    let handle = runtime.block_on(start(options))?;
    Ok(BackgroundHost {
        handle: Some(handle),
        runtime: Some(runtime),
    })
}

impl BackgroundHost {
    /// The address the host listens on.
    pub fn addr(&self) -> SocketAddr {
        self.handle().addr()
    }

    /// The running host.
    pub fn handle(&self) -> &HostHandle {
        // Both are Some until `shutdown` consumes self or `drop` runs.
        self.handle
            .as_ref()
            .expect("host handle present until shutdown")
    }

    /// Stops the host and waits, as [`HostHandle::shutdown`].
    pub fn shutdown(mut self) -> ServerReport {
        let (Some(handle), Some(runtime)) = (self.handle.take(), self.runtime.take()) else {
            unreachable!("both are Some until shutdown or drop");
        };
        let report = runtime.block_on(handle.shutdown());
        runtime.shutdown_background();
        report
    }
}

impl Drop for BackgroundHost {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            let _ = handle.stop.send(true);
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct ServerShared {
    model: Mutex<HostModel>,
    clock: Arc<dyn Clock>,
    rpc: HostRpcConfig,
    close_after_response: bool,
    echo_iv: bool,
    idle_timeout: Duration,
    log: Option<Logger>,
    stats: Stats,
}

impl ServerShared {
    fn model(&self) -> MutexGuard<'_, HostModel> {
        // The model holds no invariant a panicking `handle` could break half-way that matters
        // more than keeping the host up; take it back from a poisoned lock.
        self.model.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Answers one KMS payload: the response payload, or the HRESULT for the stub.
    fn answer(
        &self,
        payload: &[u8],
        peer: SocketAddr,
        rng: &mut SplitMix64,
    ) -> Result<Vec<u8>, u32> {
        bump(&self.stats.requests);
        let request = match HostRequest::decode(payload) {
            Ok(r) => r,
            Err(error) => {
                bump(&self.stats.invalid);
                bump(&self.stats.refused);
                if let Some(log) = &self.log {
                    let protocol = (payload.len() >= 4).then(|| {
                        Version::from_bytes([payload[0], payload[1], payload[2], payload[3]])
                    });
                    log.log(&LogEvent::Request(RequestEvent {
                        time: self.clock.now(),
                        peer,
                        protocol,
                        ids: None,
                        outcome: RequestOutcome::Invalid(error),
                    }));
                }
                return Err(hresult::INVALID_DATA);
            }
        };
        let now = self.clock.now();
        let (decision, hwid) = {
            let mut model = self.model();
            (model.handle(&request.base, now), model.hwid())
        };
        let (result, outcome) = match decision {
            Decision::Respond(response) => {
                bump(&self.stats.responses);
                let fresh = random_block(rng);
                let iv = if self.echo_iv { request.iv } else { fresh };
                let random = random_block(rng);
                let bytes = request.encode_response(&response.base, hwid, iv, random);
                let (count, required) = (
                    response.base.current_count,
                    request.base.required_client_count,
                );
                let outcome = if response.activated {
                    RequestOutcome::Activated { count, required }
                } else {
                    RequestOutcome::LowCount { count, required }
                };
                (Ok(bytes), outcome)
            }
            Decision::Refuse(refusal) => {
                bump(&self.stats.refused);
                (Err(refusal.hresult()), RequestOutcome::Refused(refusal))
            }
        };
        if let Some(log) = &self.log {
            log.log(&LogEvent::Request(RequestEvent {
                time: now,
                peer,
                protocol: Some(request.version),
                ids: Some(RequestIds {
                    cmid: request.base.client_machine_id,
                    sku_id: request.base.sku_id,
                    kms_id: request.base.kms_counted_id,
                }),
                outcome,
            }));
        }
        result
    }

    fn dropped(&self, peer: SocketAddr, reason: DropReason) {
        let counter = match reason {
            DropReason::Framing(_) | DropReason::Rejected(_) => &self.stats.dropped_malformed,
            DropReason::IdleTimeout => &self.stats.dropped_idle,
            DropReason::Truncated | DropReason::WriteTimeout | DropReason::Io(_) => {
                &self.stats.dropped_other
            }
        };
        bump(counter);
        if let Some(log) = &self.log {
            log.log(&LogEvent::Dropped {
                time: self.clock.now(),
                peer,
                reason,
            });
        }
    }
}

fn random_block(rng: &mut SplitMix64) -> [u8; 16] {
    let mut block = [0u8; 16];
    block[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
    block[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
    block
}

/// Starts the host: builds (or loads) the model, binds the listener and spawns the server on
/// the current tokio runtime. Returns once the host accepts connections.
///
/// # Errors
/// [`ServerError`]: invalid configuration or options, unusable state file, bind failure.
pub async fn start(options: ServerOptions) -> Result<HostHandle, ServerError> {
    if options.max_connections == 0 {
        return Err(ServerError::Options(
            "max_connections must be at least 1".into(),
        ));
    }
    if options.idle_timeout.is_zero() {
        return Err(ServerError::Options("idle_timeout must not be zero".into()));
    }
    let now = options.clock.now();
    let model = match &options.state_file {
        Some(path) if path.exists() => state::load_model(path, options.host.clone())?,
        _ => HostModel::new(options.host.clone(), now)?,
    };
    let listener = listen(options.listen).map_err(|source| ServerError::Listen {
        addr: options.listen,
        source,
    })?;
    let addr = listener
        .local_addr()
        .map_err(|source| ServerError::Listen {
            addr: options.listen,
            source,
        })?;
    let mut rpc = options.rpc.clone();
    rpc.sec_addr = SecondaryAddress::port(addr.port());
    let shared = Arc::new(ServerShared {
        model: Mutex::new(model),
        clock: options.clock.clone(),
        rpc,
        close_after_response: options.close_after_response,
        echo_iv: options.echo_iv,
        idle_timeout: options.idle_timeout,
        log: options.log.clone(),
        stats: Stats::default(),
    });
    let (stop, stop_rx) = watch::channel(false);
    let supervisor = tokio::spawn(supervise(
        listener,
        shared.clone(),
        stop_rx,
        options.max_connections.min(Semaphore::MAX_PERMITS),
        options
            .state_file
            .map(|path| (path, options.state_interval)),
    ));
    Ok(HostHandle {
        addr,
        shared,
        stop,
        supervisor,
    })
}

fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // A restarted host must not fail on connections of its predecessor in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// True once the host is told to stop (or its handle is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|&s| s).await;
}

/// Accepts until told to stop, then waits for the connections and saves the state. Returns
/// the final save's error, if any.
async fn supervise(
    listener: TcpListener,
    shared: Arc<ServerShared>,
    mut stop: watch::Receiver<bool>,
    max_connections: usize,
    state: Option<(PathBuf, Duration)>,
) -> Option<String> {
    let saver = state.as_ref().map(|(path, every)| {
        tokio::spawn(save_periodically(
            shared.clone(),
            path.clone(),
            *every,
            stop.clone(),
        ))
    });
    // Each connection task holds a clone; `recv` returns None once all are gone.
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let permits = Arc::new(Semaphore::new(max_connections));
    // Per-connection seeds: one draw from the thread RNG, then a SplitMix64 stream.
    let mut seeds = SplitMix64::new(rand::random(), "connections");
    loop {
        let permit = tokio::select! {
            biased;
            () = stopped(&mut stop) => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break, // the semaphore is never closed
            },
        };
        let accepted = tokio::select! {
            biased;
            () = stopped(&mut stop) => break,
            a = listener.accept() => a,
        };
        let Ok((stream, peer)) = accepted else {
            bump(&shared.stats.accept_errors);
            tokio::time::sleep(ACCEPT_BACKOFF).await;
            continue;
        };
        bump(&shared.stats.connections);
        let open = shared.stats.open.fetch_add(1, Ordering::Relaxed) + 1;
        shared.stats.peak_open.fetch_max(open, Ordering::Relaxed);
        let (shared, stop, done, seed) = (
            shared.clone(),
            stop.clone(),
            done_tx.clone(),
            seeds.next_u64(),
        );
        tokio::spawn(async move {
            // Answers are one write each, sent as soon as they are ready.
            let _ = stream.set_nodelay(true);
            if let Err(reason) = serve(&shared, stream, peer, seed, stop).await {
                shared.dropped(peer, reason);
            }
            shared.stats.open.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
            drop(done);
        });
    }
    drop(listener);
    drop(done_tx);
    let _ = done_rx.recv().await;
    let (path, _) = state?;
    if let Some(saver) = saver {
        let _ = saver.await;
    }
    save(&shared, path).await.err()
}

/// Saves the state every `every` when a request was handled since the last save.
async fn save_periodically(
    shared: Arc<ServerShared>,
    path: PathBuf,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut saved_at = shared.model().counters().requests;
    let mut ticks = tokio::time::interval_at(Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = stopped(&mut stop) => return,
            _ = ticks.tick() => {}
        }
        let requests = shared.model().counters().requests;
        if requests == saved_at {
            continue;
        }
        // A failed periodic save is retried at the next tick and reported at shutdown.
        if save(&shared, path.clone()).await.is_ok() {
            saved_at = requests;
        }
    }
}

/// Snapshots the model under the lock, writes the file on a blocking thread.
async fn save(shared: &ServerShared, path: PathBuf) -> Result<(), String> {
    let snapshot = HostState::from_model(&shared.model());
    match tokio::task::spawn_blocking(move || state::save(&path, &snapshot)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("state save task failed: {e}")),
    }
}

/// Serves one connection until it closes normally (`Ok`) or is dropped (`Err`).
async fn serve(
    shared: &ServerShared,
    mut stream: TcpStream,
    peer: SocketAddr,
    seed: u64,
    mut stop: watch::Receiver<bool>,
) -> Result<(), DropReason> {
    let mut rng = SplitMix64::new(seed, "connection");
    // The truncation keeps 32 random bits.
    let mut session = HostSession::new(shared.rpc.clone(), rng.next_u64() as u32);
    let mut buf = Vec::new();
    loop {
        let deadline = Instant::now() + shared.idle_timeout;
        let len = loop {
            match check_frame(&buf) {
                Frame::Complete(len) => break len,
                Frame::Invalid(e) => return Err(DropReason::Framing(e)),
                Frame::Incomplete { .. } => {}
            }
            match read_more(&stream, &mut buf, deadline, &mut stop).await? {
                Read::Data => {}
                Read::Closed | Read::Stopped => return Ok(()),
            }
        };
        let pdu = &buf[..len];
        let is_request = Header::new_checked(pdu).is_ok_and(|h| h.ptype() == Ptype::REQUEST);
        let action = session.handle_pdu(pdu, |payload| shared.answer(payload, peer, &mut rng));
        buf.drain(..len);
        let bytes = match action {
            HostAction::Send(bytes) => bytes,
            HostAction::Close(reason) => return Err(DropReason::Rejected(reason)),
        };
        if bytes.get(field::PTYPE) == Some(&Ptype::FAULT.0) {
            bump(&shared.stats.faults);
        }
        let write_deadline = Instant::now() + shared.idle_timeout;
        match tokio::time::timeout_at(write_deadline, stream.write_all(&bytes)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(DropReason::Io(e.kind())),
            Err(_) => return Err(DropReason::WriteTimeout),
        }
        if is_request && shared.close_after_response {
            return Ok(());
        }
    }
}

enum Read {
    /// Bytes were appended.
    Data,
    /// The peer closed on a PDU boundary.
    Closed,
    /// The host is stopping.
    Stopped,
}

/// Waits for bytes (until `deadline`, or until the host stops) and appends what arrived.
async fn read_more(
    stream: &TcpStream,
    buf: &mut Vec<u8>,
    deadline: Instant,
    stop: &mut watch::Receiver<bool>,
) -> Result<Read, DropReason> {
    loop {
        if buf.is_empty() {
            // Nothing pending: hold no memory while the peer thinks (10,000 idle connections
            // should cost their sockets, not 10,000 buffers).
            *buf = Vec::new();
        }
        tokio::select! {
            biased;
            () = stopped(stop) => return Ok(Read::Stopped),
            ready = tokio::time::timeout_at(deadline, stream.readable()) => match ready {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(DropReason::Io(e.kind())),
                Err(_) => return Err(DropReason::IdleTimeout),
            },
        }
        buf.reserve(READ_CHUNK);
        let spare = buf.capacity() - buf.len();
        let mut got = None;
        // A read that returns less than it could take drained the socket: report it to tokio
        // as WouldBlock so the readiness is cleared and the next wait goes straight to epoll,
        // instead of costing one more `recv` that fails with EAGAIN (tokio's own `poll_read`
        // does the same). `got` tells that case from a real WouldBlock.
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
            (_, Some(0)) if buf.is_empty() => return Ok(Read::Closed),
            (_, Some(0)) => return Err(DropReason::Truncated),
            (_, Some(_)) => return Ok(Read::Data),
            (Err(e), None) if e.kind() != io::ErrorKind::WouldBlock => {
                return Err(DropReason::Io(e.kind()));
            }
            // WouldBlock: a spurious wake-up; wait again. (`Ok` without `got` cannot happen.)
            (_, None) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;
    use crate::wire::rpc::FrameError;

    #[test]
    fn utc_formats_known_dates() {
        assert_eq!(
            Utc(FileTime::from_unix(0, 0)).to_string(),
            "1970-01-01T00:00:00Z"
        );
        // 2026-11-22T01:26:21Z, the model tests' T0.
        assert_eq!(
            Utc(FileTime(134_397_843_810_000_000)).to_string(),
            "2026-11-22T01:26:21Z"
        );
        assert_eq!(
            Utc(FileTime::from_unix(951_782_400, 0)).to_string(),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            Utc(FileTime::from_unix(-1, 0)).to_string(),
            "1969-12-31T23:59:59Z"
        );
    }

    #[test]
    fn virtual_clock_moves_only_when_told() {
        let c = VirtualClock::new(FileTime::from_unix(1000, 0));
        let shared = c.clone();
        c.advance_secs(30 * 86_400);
        assert_eq!(shared.now().unix_secs(), 1000 + 30 * 86_400);
        c.advance_secs(-1000 - 30 * 86_400);
        assert_eq!(shared.now().unix_secs(), 0);
        c.advance(Duration::from_secs(5));
        assert_eq!(shared.now().unix_secs(), 5);
        c.set(FileTime(0));
        assert_eq!(shared.now(), FileTime(0));
    }

    #[test]
    fn system_clock_is_after_2024() {
        assert!(SystemClock.now().unix_secs() > 1_704_067_200);
    }

    #[tokio::test]
    async fn options_out_of_range_are_refused() {
        let e = start(ServerOptions {
            max_connections: 0,
            ..ServerOptions::default()
        })
        .await
        .unwrap_err();
        assert!(matches!(e, ServerError::Options(_)), "{e}");
        let e = start(ServerOptions {
            idle_timeout: Duration::ZERO,
            ..ServerOptions::default()
        })
        .await
        .unwrap_err();
        assert!(matches!(e, ServerError::Options(_)), "{e}");
        let e = start(ServerOptions {
            host: HostConfig {
                lcid: 0,
                ..HostConfig::default()
            },
            ..ServerOptions::default()
        })
        .await
        .unwrap_err();
        assert!(matches!(e, ServerError::Config(_)), "{e}");
    }

    #[tokio::test]
    async fn garbage_is_dropped_and_logged() {
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        let host = start(ServerOptions {
            log: Some(Logger::new(move |e| {
                sink.lock().unwrap().push(e.to_string());
            })),
            ..ServerOptions::default()
        })
        .await
        .unwrap();
        let mut s = TcpStream::connect(host.addr()).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let mut rest = Vec::new();
        // The host closes without answering: EOF (or a reset), never bytes.
        let _ = s.read_to_end(&mut rest).await;
        assert!(rest.is_empty());
        let report = host.shutdown().await;
        assert_eq!(report.stats.dropped_malformed, 1);
        assert_eq!(report.stats.connections, 1);
        assert_eq!(report.stats.open, 0);
        let events = events.lock().unwrap();
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(
            events[0].contains(&FrameError::NotRpc(b'G').to_string()),
            "{}",
            events[0]
        );
    }

    #[tokio::test]
    async fn dropping_the_handle_stops_the_host() {
        let host = start(ServerOptions::default()).await.unwrap();
        let addr = host.addr();
        let mut idle = TcpStream::connect(addr).await.unwrap();
        drop(host);
        let mut rest = Vec::new();
        // The idle connection is closed by the stopping host, well before the 30 s timeout.
        let r = tokio::time::timeout(Duration::from_secs(10), idle.read_to_end(&mut rest)).await;
        assert!(
            r.is_ok(),
            "idle connection still open after the handle was dropped"
        );
    }

    #[test]
    fn request_event_line_names_product_and_outcome() {
        let event = LogEvent::Request(RequestEvent {
            time: FileTime::from_unix(0, 0),
            peer: "127.0.0.1:5000".parse().unwrap(),
            protocol: Some(Version::V6),
            ids: Some(RequestIds {
                cmid: Uuid::nil(),
                sku_id: lookup::find("Windows 10/11 Enterprise").unwrap().sku_id,
                kms_id: Uuid::nil(),
            }),
            outcome: RequestOutcome::LowCount {
                count: 3,
                required: 25,
            },
        });
        assert_eq!(
            event.to_string(),
            "1970-01-01T00:00:00Z 127.0.0.1:5000 V6 cmid=00000000-0000-0000-0000-000000000000 \"Windows 10/11 Enterprise\" not_activated 0xC004F038 count 3/25 (below threshold)"
        );
        let invalid = LogEvent::Request(RequestEvent {
            time: FileTime::from_unix(0, 0),
            peer: "127.0.0.1:5000".parse().unwrap(),
            protocol: None,
            ids: None,
            outcome: RequestOutcome::Invalid(RequestError::TooShort { actual: 2 }),
        });
        assert!(
            invalid
                .to_string()
                .ends_with("V? cmid=- - refused 0x8007000D count - (undecodable request: request payload of 2 bytes has no version)"),
            "{invalid}"
        );
    }
}
