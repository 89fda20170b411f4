//! The tokio server around the host model: `kmsload host`, and the in-process host that tests
//! and `kmsload run` (with no target) start on an ephemeral loopback port.
//!
//! - `listener.rs`: bind, accept under the connection cap, periodic `--state` saves, the
//!   orderly stop;
//! - `connection.rs`: one connection's loop, on [`crate::netio::PduReader`]'s framing like
//!   the client's;
//! - [`log`]: the log events, their one-line text and JSON formats, and the writer thread
//!   that keeps the log off the connection tasks (a full queue drops and counts lines);
//! - [`clock`]: the host's clock, real or virtual;
//! - [`stats`]: counters and the final report.
//!
//! ```text
//!   start(ServerOptions) ──► HostHandle { addr, stats, with_model, shutdown }
//!         │
//!   supervisor task: accept loop ── permit (max_connections) ── spawn per connection ──┐
//!         │                                                                             │
//!         │   connection task: read whole PDUs (netio::PduReader) under a               │
//!         │   deadline ─► HostSession::handle_pdu ─► KMS payload: HostRequest::decode   │
//!         │   ─► lock model, HostModel::handle(now), unlock ─► encode ─► write          │
//!         │                                                                             │
//!   stop (watch) ──► accept loop ends, idle connections close ──► wait until every ─────┘
//!                    connection task has ended ──► final --state save ──► ServerReport
//! ```
//!
//! # Behaviour
//!
//! - RPC negotiation is [`HostSession`](crate::wire::session::HostSession)'s, configured by [`ServerOptions::rpc`]: Windows-like by
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
//!   each write has the same deadline. A timeout too long for an `Instant` means "never",
//!   not a panic.
//! - [`ServerOptions::max_connections`]: when that many connections are open the accept loop
//!   stops accepting until one ends. New connections then **wait** in the kernel's listen
//!   backlog ([`LISTEN_BACKLOG`] asked, which the kernel caps at `net.core.somaxconn`: see
//!   [`listen_backlog`]), as with vlmcsd `-m`: their TCP connect
//!   completes, their bind is answered once a slot frees, and a client whose bind deadline
//!   passes first sees a timeout. Waiting, rather than refusing, shows a saturated host the
//!   way a load test should see it: as latency. A failed accept (out of file descriptors) is
//!   logged as it happens, at most one [`LogEvent::AcceptErrors`] line a second with a count.
//! - The model sits behind a `std::sync::Mutex` held only for [`HostModel::handle`] (never
//!   across an `.await`). Time comes from the [`Clock`] in the options: [`SystemClock`], or a
//!   [`VirtualClock`] that tests advance by 30 days.
//! - Randomness (association group id per connection, `IV_resp` and `R` per response) comes
//!   from a SplitMix64 per connection seeded from the thread RNG: 8 bytes of state.
//! - `--state FILE`: loaded at start when the file exists; saved (atomically, see
//!   [`super::state`]) every [`ServerOptions::state_interval`] when a request was handled since
//!   the last save, and at shutdown. A failed periodic save is logged at once
//!   ([`LogEvent::SaveFailed`]) and tried again at the next interval.
//! - [`HostHandle::set_down`] plays an outage (a scenario's `down` windows): the listening
//!   socket is closed, so connects are refused, and open connections are closed as at a stop;
//!   back up, the host binds the same address again with its model untouched.
//! - An idle connection holds no read buffer: the buffer is released whenever no partial PDU
//!   is pending and allocated again when bytes arrive.
//!
//! Left out: TLS or any authentication, multi-fragment calls (a KMS PDU always fits one),
//! per-peer rate limits, and refusals a real host may send but the model does not have.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

use super::config::{ConfigError, HostConfig};
use super::model::{Decision, HostModel, ModelSummary};
use super::rng::SplitMix64;
use super::state::{self, StateError};
use crate::wire::kms::HostRequest;
use crate::wire::rpc::SecondaryAddress;
use crate::wire::session::HostRpcConfig;
use crate::wire::{FileTime, Version};

pub mod clock;
mod connection;
mod listener;
pub mod log;
pub mod stats;

pub use clock::{Clock, SystemClock, VirtualClock};
pub use log::{
    DropReason, LOG_EXIT_GRACE, LOG_QUEUE, LogEvent, LogFormat, LogTotals, LogWriter, Logger,
    RequestEvent, RequestIds, RequestOutcome,
};
pub use stats::{ServerReport, ServerStats};

use listener::{listen, supervise};
use stats::{Stats, bump};

/// vlmcsd's default idle timeout (`-t`, spec 10.8).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default cap on simultaneous connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Default period of `--state` saves (only when something changed).
pub const DEFAULT_STATE_INTERVAL: Duration = Duration::from_secs(10);
/// Listen backlog requested from the kernel: as deep as Linux allows (it caps the request at
/// `net.core.somaxconn`, 4096 by default since Linux 5.4), so a burst of connects waits in
/// the queue instead of being dropped and retried by the client after 1 s and 3 s. tokio's
/// `TcpListener::bind` asks for 1024.
pub const LISTEN_BACKLOG: u32 = 65_535;

/// The backlog the host's listening socket gets: [`LISTEN_BACKLOG`] capped at
/// `somaxconn` (read with [`crate::procfs::somaxconn`]; `None` where it cannot be read).
pub fn listen_backlog(somaxconn: Option<u32>) -> u32 {
    somaxconn.map_or(LISTEN_BACKLOG, |cap| LISTEN_BACKLOG.min(cap))
}
/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

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

/// A running host. Dropping it stops the host in the background; [`HostHandle::shutdown`]
/// stops it and waits.
#[derive(Debug)]
pub struct HostHandle {
    addr: SocketAddr,
    shared: Arc<ServerShared>,
    stop: watch::Sender<bool>,
    down: watch::Sender<bool>,
    supervisor: JoinHandle<Option<String>>,
}

impl HostHandle {
    /// The address the host listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Takes the host down (`true`) or brings it back (`false`), as a stopped and restarted
    /// KMS service: while down the listening socket is closed, so connects are refused
    /// (0x8007274D WSAECONNREFUSED at the client), and open connections are closed; the
    /// client table and identity are kept. Back up, it listens on the same address again.
    pub fn set_down(&self, down: bool) {
        self.down.send_replace(down);
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
            log_lines_dropped: 0,
            log_lines_unwritten: 0,
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
    let runtime = host_runtime(worker_threads)?;
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

/// A runtime of its own for hosts started from async code that runs something else beside
/// them: `kmsload run`'s in-process hosts get their own worker threads (named
/// `kmsload-host`) instead of sharing the runner's, so neither side's tasks queue behind
/// the other's. Hosts started on it are stopped with [`HostHandle::shutdown`] as usual (it
/// can be awaited from any runtime); dropping the `HostRuntime` then ends its threads
/// without blocking, so it may be dropped inside another runtime.
#[derive(Debug)]
pub struct HostRuntime {
    runtime: Option<tokio::runtime::Runtime>,
}

/// The host's own multi-threaded tokio runtime: `worker_threads` threads (at least one),
/// named `kmsload-host`.
fn host_runtime(worker_threads: usize) -> Result<tokio::runtime::Runtime, ServerError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads.max(1))
        .thread_name("kmsload-host")
        .enable_all()
        .build()
        .map_err(ServerError::Runtime)
}

impl HostRuntime {
    /// A multi-threaded runtime with `worker_threads` threads (at least one).
    ///
    /// # Errors
    /// [`ServerError::Runtime`] when the runtime cannot be built.
    pub fn new(worker_threads: usize) -> Result<Self, ServerError> {
        let runtime = host_runtime(worker_threads)?;
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    /// Starts a host on this runtime, as [`start`] does on the caller's. Callable from any
    /// async context.
    ///
    /// # Errors
    /// [`ServerError`] as [`start`].
    pub async fn start(&self, options: ServerOptions) -> Result<HostHandle, ServerError> {
        // Present until drop.
        let runtime = self.runtime.as_ref().expect("runtime present until drop");
        match runtime.spawn(start(options)).await {
            Ok(started) => started,
            Err(e) => Err(ServerError::Runtime(io::Error::other(format!(
                "host start task failed: {e}"
            )))),
        }
    }

    /// The tokio handle of the runtime, e.g. to check where a host's tasks run.
    pub fn handle(&self) -> tokio::runtime::Handle {
        // Present until drop.
        self.runtime
            .as_ref()
            .expect("runtime present until drop")
            .handle()
            .clone()
    }
}

impl Drop for HostRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Shared state
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
                return Err(crate::catalog::hresult::code::ERROR_INVALID_DATA);
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
    let (down, down_rx) = watch::channel(false);
    let supervisor = tokio::spawn(supervise(
        listener,
        addr,
        shared.clone(),
        stop_rx,
        down_rx,
        options.max_connections.min(Semaphore::MAX_PERMITS),
        options
            .state_file
            .map(|path| (path, options.state_interval)),
    ));
    Ok(HostHandle {
        addr,
        shared,
        stop,
        down,
        supervisor,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;
    use crate::wire::rpc::FrameError;

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
}
