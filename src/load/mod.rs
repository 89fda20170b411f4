//! `load`: the one runner, driven by its load model (open schedule or closed loop), and the
//! configuration it runs with ([`Job`], [`Load`]; `scenario` builds them).
//!
//! ```text
//! dispatcher ── ticket (attempt k, intended start) ──► attempt task ──► AttemptRecord ──► recorder task
//!   open: sleep until the schedule's time for k        identity = fleet(seed, k)             Recorder + events.csv
//!     (late ones paced out: schedule::LatePacer)
//!   closed: wait for a free client slot                client from the pool (kept alive) or new
//! ```
//!
//! Every dispatched attempt produces exactly one record, whatever happens to it: a deadline
//! bounds each network step, and on stop (Ctrl-C or the run's bounds) the dispatcher starts
//! nothing new and waits for the attempts in flight up to the drain deadline; any still
//! running then are recorded as timed out in the phase they had reached. The runner prints
//! nothing: it exposes [`Live`] counters for whoever shows progress.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::{Semaphore, mpsc, watch};

use crate::discover::{ClientDiscovery, Discovery, HostClients, SplitRecorder};

use crate::client::{Attempt, Client, ClientOptions, Outcome, Reply, TcpConnector};
use crate::faults::{FaultHandle, FaultPlan, FaultyClient, FaultyConnector};
use crate::procfs;
use crate::record::EventsMode;
use crate::record::{
    AttemptRecord, EventWriter, GeneratorStats, LATE_AFTER, Latencies, ListenQueue, Recorder,
    RunResult,
};
use crate::sim::{self, Fleet, Reuse};
use crate::wire::{FileTime, RequestBase, Version};

mod config;
pub mod schedule;
pub mod shard;

pub use config::{
    Bounds, ConnectionPolicy, FALLBACK_LOCAL_PORTS, InFlightLimit, Job, Load, LoadModel,
    PORT_SHARE, Timeouts,
};
pub use schedule::{LatePacer, Schedule, Stage, open_start};
pub use shard::Shard;

/// Mixing tag for request IVs (see [`sim::mix`]); sim reserves tags below 0x100.
const TAG_IV: u64 = 0x4C_4F_41_44; // "LOAD"

/// Mixing tag for each attempt's SRV draw.
const TAG_DNS: u64 = 0x44_4E_53_44; // "DNSD"

/// Lateness of a timer wake-up that is put down to the timer (tokio's has millisecond
/// granularity), not to the host.
const TIMER_SLACK: Duration = Duration::from_millis(2);

/// Why a job cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The fleet in the job is not a valid fleet.
    #[error("fleet: {0}")]
    Fleet(#[from] sim::SpecError),
}

/// Called once a second by the recorder with what was recorded so far and the time since
/// the start. Returning a reason ends the run early, as a stop does (nothing new starts, the
/// attempts in flight drain), and the reason is kept as the run's `aborted`. `kmsload run`
/// checks its `abort = true` gates this way.
pub type Watchdog = Box<dyn FnMut(&Recorder, Duration) -> Option<String> + Send>;

/// Counters the runner updates as it goes, for progress display. Cheap to read at any time.
#[derive(Debug, Default)]
pub struct Live {
    /// Attempts dispatched.
    pub dispatched: AtomicU64,
    /// Attempts finished.
    pub completed: AtomicU64,
    /// Finished and activated.
    pub activated: AtomicU64,
    /// Finished, not activated (low count or refused).
    pub not_activated: AtomicU64,
    /// Finished, failed.
    pub failed: AtomicU64,
    /// Running now.
    pub in_flight: AtomicU64,
    /// Latest per-second view from the recorder: error codes so far and last second's p99.
    pub snapshot: Mutex<Snapshot>,
    /// The instant the load started (time 0 of the run: intended starts, fault windows,
    /// outage windows count from it), once it has.
    started: std::sync::OnceLock<Instant>,
    started_signal: tokio::sync::Notify,
}

impl Live {
    /// Waits until the load has started and returns its time 0.
    pub async fn started(&self) -> Instant {
        loop {
            let signalled = self.started_signal.notified();
            if let Some(at) = self.started.get() {
                return *at;
            }
            signalled.await;
        }
    }

    fn mark_started(&self, at: Instant) {
        let _ = self.started.set(at);
        self.started_signal.notify_waiters();
    }
}

/// What the recorder task publishes once a second.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Non-zero codes seen so far, most frequent first.
    pub codes: Vec<(u32, u64)>,
    /// p99 of total latency over the run so far, µs (fault-free attempts).
    pub p99_us: Option<u64>,
    /// p99 of total latency of the fault-free attempts that completed in the last whole
    /// second, µs.
    pub last_second_p99_us: Option<u64>,
}

/// Where the attempts go.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// One address (the in-process host, or `target`).
    Fixed(SocketAddr),
    /// Each client discovers its host (`discover = "DOMAIN"`).
    Discover(Arc<Discovery>),
}

/// Per-client discovery state and the run's split across hosts.
#[derive(Default)]
struct DiscoveryRun {
    clients: Mutex<HashMap<u64, ClientDiscovery>>,
    split: Mutex<SplitRecorder>,
    hosts: Mutex<Vec<String>>,
}

/// Everything an attempt task needs, shared.
struct Shared {
    fleet: Fleet,
    seed: u64,
    target: SocketAddr,
    discovery: Option<(Arc<Discovery>, DiscoveryRun)>,
    options: ClientOptions,
    sources: Vec<IpAddr>,
    /// Shards in the run (1 unsharded).
    shard_count: u32,
    requests_per_connection: Option<u32>,
    /// Kept clients of the open model, boxed: checkout and return move a pointer, not the client (over
    /// 500 bytes, twice per attempt), and the pool's own memory is a pointer per client.
    #[allow(clippy::vec_box)]
    pool: Mutex<Vec<Box<Pooled>>>,
    faults: FaultPlan,
    abandoned: Mutex<Vec<(u64, u64)>>,
    live: Arc<Live>,
    start: Instant,
    think: Duration,
}

struct Pooled {
    client: FaultyClient,
    /// The request of the client's last attempt, rewritten in place for the next.
    base: RequestBase,
    used: u32,
}

/// Runs `job` against `endpoint` and returns what was recorded. `events`, if given, receives
/// events.csv as the run goes (every attempt, or with [`EventsMode::Failures`] those that
/// did not activate, for failures.csv). Sending `true` on `stop` interrupts the run (Ctrl-C).
///
/// # Errors
/// [`RunError`] when the job's fleet cannot be built (nothing is started then).
pub async fn run(
    job: &Job<'_>,
    endpoint: Endpoint,
    events: Option<Box<dyn io::Write + Send>>,
    live: Arc<Live>,
    mut stop: watch::Receiver<bool>,
    watchdog: Option<Watchdog>,
) -> Result<RunResult, RunError> {
    let fleet = Fleet::new(job.seed, job.fleet.clone())?;
    let load = job.load;
    let pacing = &load.model;
    let shard = load.shard;
    let in_flight = load.in_flight_limit(job.local_ports);
    let think = match *pacing {
        LoadModel::Open(_) => Duration::ZERO,
        LoadModel::Closed { think_time, .. } => think_time,
    };
    let late_start_us = match load.start_at {
        Some(at) => wait_for_start(at, &mut stop).await,
        None => None,
    };
    let started = SystemTime::now();
    let start = Instant::now();
    live.mark_started(start);
    let (target, discovery) = match endpoint {
        Endpoint::Fixed(addr) => (addr, None),
        Endpoint::Discover(d) => (
            SocketAddr::from(([127, 0, 0, 1], 0)),
            Some((d, DiscoveryRun::default())),
        ),
    };
    let shared = Arc::new(Shared {
        fleet,
        seed: job.seed,
        target,
        discovery,
        options: job.client.clone(),
        sources: load.source_addresses.clone(),
        shard_count: shard.count,
        requests_per_connection: match load.connection {
            ConnectionPolicy::KeepAlive {
                requests_per_connection,
            } => requests_per_connection,
            ConnectionPolicy::NewPerActivation => None,
        },
        pool: Mutex::new(Vec::new()),
        faults: FaultPlan::new(job.faults, job.seed),
        abandoned: Mutex::new(Vec::new()),
        live: live.clone(),
        start,
        think,
    });

    let cpu_at_start = procfs::process_cpu_s();
    // The listen queues are this machine's: worth reporting when the host is on it.
    let local_target = shared.discovery.is_none() && shared.target.ip().is_loopback();
    let listen_at_start = local_target.then(procfs::listen_counters).flatten();
    let mut generator = GeneratorStats {
        in_flight_limit: match pacing {
            LoadModel::Open(_) => in_flight.limit,
            LoadModel::Closed { clients, .. } => shard.clients(*clients),
        },
        connection_budget: in_flight.port_budget,
        ..GeneratorStats::default()
    };
    let (tx, rx) = mpsc::channel::<AttemptRecord>(16 * 1024);
    // The recorder halts the dispatcher when the watchdog gives a reason to abort.
    let (halt_tx, mut halt) = watch::channel(false);
    let recorder = tokio::spawn(record_loop(
        rx,
        events,
        job.events == EventsMode::Failures,
        live.clone(),
        start,
        watchdog,
        halt_tx,
    ));

    let max_duration = load.bounds.max_duration;
    let mut tasks = tokio::task::JoinSet::new();
    let dispatcher = Dispatcher {
        shared: &shared,
        tx: &tx,
        stop: &mut stop,
        halt: &mut halt,
        tasks: &mut tasks,
        shard,
        max_attempts: max_attempts(job),
        max_duration,
        // After this instant no attempt starts (less the timer's slack: an attempt due just
        // before the end that the timer wakes a tick late still goes out).
        deadline: max_duration.map(|d| start + d + TIMER_SLACK),
    };
    let Dispatched {
        mut complete,
        not_started,
    } = match pacing {
        LoadModel::Open(schedule) => {
            dispatcher
                .open(schedule, in_flight.limit, &mut generator)
                .await
        }
        // A shard runs its share of the clients; one with none makes no attempt.
        LoadModel::Closed { clients, .. } => dispatcher.closed(shard.clients(*clients)).await,
    };
    let dispatched = live.dispatched.load(Ordering::Relaxed);

    // Drain: wait for attempts in flight, up to the drain deadline; a stop signal during
    // the drain (a second Ctrl-C or SIGTERM) ends it at once.
    let drain = job.drain;
    let mut cut_short = false;
    let drained = tokio::select! {
        r = tokio::time::timeout(drain, async { while tasks.join_next().await.is_some() {} }) => r.is_ok(),
        _ = stop.changed() => { cut_short = true; false }
    };
    let mut abandoned = 0;
    if !drained {
        abandoned = tasks.len() as u64;
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
    if cut_short {
        complete = false;
    }
    // Aborted attempts never sent their record: they go to the recorder (and events.csv)
    // like every other attempt, before the channel closes.
    for rec in abandoned_records(&shared) {
        let _ = tx.send(rec).await;
    }
    let elapsed = start.elapsed();
    drop(tx);
    let (recorder, events_error, aborted) = match recorder.await {
        Ok(r) => r,
        Err(e) => (
            Recorder::new(),
            Some(format!("recorder task failed: {e}")),
            None,
        ),
    };
    let offered_rate = match pacing {
        // Over the time the schedule ran, not the drain after it: an 8 s run at 80,000/s
        // that takes 15 s to drain offered 80,000/s, not 40,000/s.
        LoadModel::Open(s) => {
            let ran = [max_duration, s.natural_end()]
                .into_iter()
                .flatten()
                .fold(elapsed, Duration::min);
            Some(s.expected_arrivals(ran) / ran.as_secs_f64().max(1e-9))
        }
        LoadModel::Closed { .. } => None,
    };
    let achieved_rate = recorder.attempts() as f64 / elapsed.as_secs_f64().max(1e-9);
    if let (Some(before), Some(after)) = (cpu_at_start, procfs::process_cpu_s()) {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let cpu = (after - before).max(0.0);
        generator.process_cpu_s = Some(cpu);
        generator.process_cpu_busy = Some(cpu / (elapsed.as_secs_f64().max(1e-9) * cores as f64));
    }
    if let (Some(before), Some(after)) = (listen_at_start, procfs::listen_counters()) {
        let d = after.since(before);
        generator.listen_queue = Some(ListenQueue {
            overflows: d.overflows,
            drops: d.drops,
            somaxconn: procfs::somaxconn(),
        });
    }
    let by_host = shared
        .discovery
        .as_ref()
        .map(|(_, run)| {
            std::mem::take(&mut *run.split.lock().unwrap_or_else(|e| e.into_inner())).finish()
        })
        .unwrap_or_default();
    Ok(RunResult {
        rebuilt: None,
        by_host,
        merge: None,
        recorder,
        started,
        late_start_us,
        elapsed,
        complete: complete && aborted.is_none(),
        aborted,
        dispatched,
        not_started,
        abandoned,
        offered_rate,
        achieved_rate,
        events_error,
        generator,
    })
}

/// Starts a run's attempts, open or closed, onto `tasks`; the drain after it waits for them.
struct Dispatcher<'a> {
    shared: &'a Arc<Shared>,
    tx: &'a mpsc::Sender<AttemptRecord>,
    stop: &'a mut watch::Receiver<bool>,
    /// Changes when the recorder's watchdog aborts the run.
    halt: &'a mut watch::Receiver<bool>,
    tasks: &'a mut tokio::task::JoinSet<()>,
    shard: Shard,
    /// The unsharded numbering's bound: attempts `0..max_attempts`.
    max_attempts: u64,
    max_duration: Option<Duration>,
    /// After this instant no attempt starts.
    deadline: Option<Instant>,
}

/// How the dispatching ended.
struct Dispatched {
    /// No stop signal cut it short.
    complete: bool,
    /// Attempts of an open schedule due before the duration bound that did not start by
    /// then.
    not_started: u64,
}

impl Dispatcher<'_> {
    /// The closed model: one long-lived task per client (see [`ClosedClient`]), until every
    /// client has run out of attempts or time, or the run is stopped or halted.
    async fn closed(self, clients: u32) -> Dispatched {
        let claims = Arc::new(Claims {
            next: AtomicU64::new(0),
            first: u64::from(self.shard.index),
            step: u64::from(self.shard.count),
            limit: self.max_attempts,
        });
        // A stop or a halt, as the clients see it: one signal to wait for while they think.
        // Dropped at the end of this call (the run's duration is over, or every client is
        // done), which ends the think of those still thinking: the drain waits for attempts
        // in flight, not for think times.
        let (end_tx, end) = watch::channel(false);
        for _ in 0..clients {
            let client = ClosedClient {
                shared: self.shared.clone(),
                tx: self.tx.clone(),
                claims: claims.clone(),
                end: end.clone(),
                max_duration: self.max_duration,
            };
            if self.shared.think.is_zero() {
                self.tasks.spawn(client.run::<Inline>());
            } else {
                self.tasks.spawn(client.run::<Boxed>());
            }
        }
        let tasks = self.tasks;
        let stopped = tokio::select! {
            () = async { while tasks.join_next().await.is_some() {} } => false,
            _ = self.stop.changed() => { let _ = end_tx.send(true); true }
            _ = self.halt.changed() => { let _ = end_tx.send(true); false }
            () = sleep_until_opt(self.deadline) => false,
        };
        Dispatched {
            complete: !stopped,
            not_started: 0,
        }
    }

    /// The open model: a task per attempt, each released at its intended start on
    /// `schedule` (late ones paced out, see [`LatePacer`]) once one of `slots` is free.
    /// Shard I of N takes attempts I, I+N, I+2N, ... of the unsharded numbering: each keeps
    /// its intended start, identity and fault decision (see `shard`).
    async fn open(
        self,
        schedule: &Schedule,
        slots: u32,
        generator: &mut GeneratorStats,
    ) -> Dispatched {
        let shared = self.shared;
        let start = shared.start;
        let slots = Arc::new(Semaphore::new(slots as usize));
        let mut complete = true;
        // The first attempt the duration bound kept from starting, if any.
        let mut out_of_time: Option<u64> = None;
        let mut pacer = LatePacer::default();
        for k in self.shard.attempts(self.max_attempts) {
            if *self.stop.borrow_and_update() {
                complete = false;
                break;
            }
            if *self.halt.borrow() {
                break;
            }
            // `None` past the duration bound: `open_start` only gives starts before it.
            let Some(offset) = open_start(schedule, k, self.max_duration) else {
                break;
            };
            let intended = start + offset;
            let release =
                start + pacer.release_at(offset, Instant::now().saturating_duration_since(start));
            if release > Instant::now() {
                tokio::select! {
                    () = tokio::time::sleep_until(release.into()) => {}
                    _ = self.stop.changed() => { complete = false; break; }
                    _ = self.halt.changed() => break,
                }
            }
            let now = Instant::now();
            if self.deadline.is_some_and(|d| now >= d) {
                // A saturated runner reaches attempts after the run's end: they are not
                // started late, they are counted as not started.
                out_of_time = Some(k);
                break;
            }
            let lag = now.saturating_duration_since(intended);
            generator.max_lag_us = generator.max_lag_us.max(micros(lag));
            generator.late_attempts += u64::from(lag > LATE_AFTER);
            // Measure from the intended start, less the timer's own granularity: attempts
            // due within one timer tick go out together when it fires, up to a tick late,
            // and that lateness is the generator's, not the host's. Anything later than the
            // slack, and any wait for a free slot below, counts in full (coordinated
            // omission).
            let intended = now.clamp(intended, intended + TIMER_SLACK);
            // Wait for a slot; the wait counts in latency because it starts at `intended`.
            generator.slot_waits += u64::from(slots.available_permits() == 0);
            let permit = tokio::select! {
                p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                () = sleep_until_opt(self.deadline) => { out_of_time = Some(k); break; }
                _ = self.stop.changed() => { complete = false; break; }
                _ = self.halt.changed() => break,
            };
            pacer.released(offset, release.saturating_duration_since(start));
            shared.live.dispatched.fetch_add(1, Ordering::Relaxed);
            shared.live.in_flight.fetch_add(1, Ordering::Relaxed);
            self.tasks.spawn(attempt_task(
                shared.clone(),
                self.tx.clone(),
                permit,
                k,
                intended,
            ));
            // Reap finished tasks so the set does not grow with the run.
            while self.tasks.try_join_next().is_some() {}
        }
        let not_started = match (out_of_time, self.max_duration) {
            (Some(first), Some(d)) => self
                .shard
                .attempts(self.max_attempts)
                .skip_while(|j| *j < first)
                .take_while(|j| open_start(schedule, *j, Some(d)).is_some())
                .count() as u64,
            _ => 0,
        };
        Dispatched {
            complete,
            not_started,
        }
    }
}

/// Waits until the wall clock reaches `at` (or `stop`), and returns how late the wait ended
/// after `at`, in µs: 0 on time, more when the process itself started after `at`.
async fn wait_for_start(at: SystemTime, stop: &mut watch::Receiver<bool>) -> Option<u64> {
    if let Ok(ahead) = at.duration_since(SystemTime::now()) {
        tokio::select! {
            () = tokio::time::sleep(ahead) => {}
            _ = stop.changed() => {}
        }
    }
    Some(SystemTime::now().duration_since(at).map_or(0, micros))
}

/// What the schedule decides for one attempt before it runs: when (open model), who, and
/// whether a fault is armed. Used to check that shards split a run attempt for attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedAttempt {
    /// Attempt number in the unsharded run.
    pub attempt: u64,
    /// Intended start from the run start (open model); `None` in the closed model, where
    /// it is when a client slot frees up.
    pub intended: Option<Duration>,
    /// Fleet index of the client.
    pub client: u64,
    /// CMID sent.
    pub cmid: uuid::Uuid,
    /// Catalog index of the product.
    pub product: usize,
    /// Protocol version sent.
    pub protocol: Version,
    /// The client's clock skew, seconds.
    pub skew_secs: i64,
    /// The fault the attempt would get at its intended start (start of the run in the
    /// closed model), by label.
    pub fault: Option<&'static str>,
}

/// The attempts bound: `attempts`, and with a new client per attempt at most the fleet's
/// size (the fleet runs out, which ends the run).
fn max_attempts(job: &Job<'_>) -> u64 {
    let bound = job.load.bounds.max_attempts.unwrap_or(u64::MAX);
    match job.fleet.reuse {
        Reuse::NewClients => bound.min(job.fleet.clients),
        Reuse::Renewals => bound,
    }
}

/// The first `limit` attempts `job`'s shard would dispatch, in order, as the runner
/// decides them (same numbering, schedule, fleet and fault plan).
///
/// # Errors
/// [`RunError`] when the job's fleet cannot be built.
pub fn planned_attempts(job: &Job<'_>, limit: u64) -> Result<Vec<PlannedAttempt>, RunError> {
    let fleet = Fleet::new(job.seed, job.fleet.clone())?;
    let faults = FaultPlan::new(job.faults, job.seed);
    let mut out = Vec::new();
    for k in job.load.shard.attempts(max_attempts(job).min(limit)) {
        let intended = match &job.load.model {
            LoadModel::Open(s) => match open_start(s, k, job.load.bounds.max_duration) {
                Some(t) => Some(t),
                None => break,
            },
            LoadModel::Closed { .. } => None,
        };
        let identity = fleet.identity_for_attempt(k);
        let fault = faults
            .decide(identity.index, k, intended.unwrap_or_default())
            .map(|f| f.label());
        out.push(PlannedAttempt {
            attempt: k,
            intended,
            client: identity.index,
            cmid: identity.cmid,
            product: identity.product_index,
            protocol: identity.protocol,
            skew_secs: identity.skew_secs,
            fault,
        });
    }
    Ok(out)
}

/// The request `identity` sends at `now`, written into `base` (whose machine-name buffer is
/// reused, so a pooled client builds its requests without allocating).
fn fill_request(base: &mut RequestBase, identity: &sim::ClientIdentity, now: FileTime) {
    base.version = identity.protocol;
    base.is_client_vm = identity.is_client_vm();
    base.license_status = 2;
    base.binding_expiration = 43_200;
    base.application_id = identity.product.app_id;
    base.sku_id = identity.product.sku_id;
    base.kms_counted_id = identity.product.kms_id;
    base.client_machine_id = identity.cmid;
    base.required_client_count = identity.product.n_policy;
    base.request_time = identity.request_time(now);
    base.previous_client_machine_id = uuid::Uuid::nil();
    base.machine_name.clear();
    base.machine_name.push_str(identity.machine_name.as_str());
}

/// A request base to fill with [`fill_request`].
fn empty_request() -> RequestBase {
    RequestBase {
        version: Version::V6,
        is_client_vm: 0,
        license_status: 0,
        binding_expiration: 0,
        application_id: uuid::Uuid::nil(),
        sku_id: uuid::Uuid::nil(),
        kms_counted_id: uuid::Uuid::nil(),
        client_machine_id: uuid::Uuid::nil(),
        required_client_count: 0,
        request_time: FileTime(0),
        previous_client_machine_id: uuid::Uuid::nil(),
        machine_name: String::new(),
    }
}

/// The task of one open-model attempt: runs it, sends its record, frees the slot.
async fn attempt_task(
    shared: Arc<Shared>,
    tx: mpsc::Sender<AttemptRecord>,
    permit: tokio::sync::OwnedSemaphorePermit,
    k: u64,
    intended: Instant,
) {
    run_and_record(
        &shared,
        &tx,
        k,
        intended,
        attempt(&shared, k, intended, None),
    )
    .await;
    drop(permit);
}

/// Runs one attempt's `work` and sends its record, with `live.in_flight` counting it while
/// it runs. If the task is aborted (at the drain deadline) before the record is sent, the
/// attempt goes on the abandoned list instead.
async fn run_and_record(
    shared: &Shared,
    tx: &mpsc::Sender<AttemptRecord>,
    k: u64,
    intended: Instant,
    work: impl Future<Output = AttemptRecord>,
) {
    let mut guard = Unrecorded {
        shared,
        k,
        intended,
        armed: true,
        running: true,
    };
    let rec = work.await;
    shared.live.in_flight.fetch_sub(1, Ordering::Relaxed);
    guard.running = false;
    // The recorder outlives every attempt task; a send can only fail after a panic there,
    // and then the run's invariant check reports the missing records. Without waiting
    // while the queue has room (nearly always): a send that can wait holds the record in
    // its future, and inline in a closed-model client's task that state would be kept for
    // the whole run, by every client (see `a_thinking_clients_task_is_small`); boxed, the
    // wait for room costs an allocation only when the recorder is behind.
    // (The error of `try_send` holds the record: it must not live across the await, as the
    // scrutinee of an `if let` would.)
    let wait = match tx.try_send(rec) {
        Err(mpsc::error::TrySendError::Full(rec)) => Some(Box::pin(tx.send(rec))),
        _ => None,
    };
    if let Some(wait) = wait {
        let _ = wait.await;
    }
    // No await between the send completing and this: an abort cannot land between.
    guard.armed = false;
}

/// The attempt numbers a closed model's workers take in turn: this shard's (`first`,
/// `first + step`, ...) below `limit`.
struct Claims {
    /// How many have been claimed.
    next: AtomicU64,
    first: u64,
    step: u64,
    limit: u64,
}

impl Claims {
    /// The next attempt number, `None` when none is left.
    fn claim(&self) -> Option<u64> {
        let j = self.next.fetch_add(1, Ordering::Relaxed);
        let k = self.first.checked_add(j.checked_mul(self.step)?)?;
        (k < self.limit).then_some(k)
    }
}

/// One client of the closed model: takes the next attempt number, runs it, records it,
/// thinks, and again, until the attempts or the duration run out or the run is stopped.
/// One task per client for the whole run, instead of a task (and a dispatcher's wake-up
/// and a slot) per attempt: the closed model's attempts are due when the previous one of
/// the same client ends, which the client itself knows best.
struct ClosedClient {
    shared: Arc<Shared>,
    tx: mpsc::Sender<AttemptRecord>,
    claims: Arc<Claims>,
    /// True once the run is stopped or halted (`run` forwards both), closed once the run's
    /// duration is over: one receiver and one wait while thinking instead of two, for a
    /// smaller task.
    end: watch::Receiver<bool>,
    max_duration: Option<Duration>,
}

impl ClosedClient {
    /// The client's task, its attempts held as `R` says. An `async` block rather than an
    /// `async fn`: the latter keeps a second copy of `self` in its state for the whole run.
    #[allow(clippy::manual_async_fn)] // deliberately, as said above
    fn run<R: WorkerAttempt>(mut self) -> impl Future<Output = ()> + Send {
        async move {
            let shared = &*self.shared;
            // This client's kept connection: its own, as a machine's is, so N clients that
            // think hold N connections, not the few a shared pool would hand round.
            let mut own: Option<Box<Pooled>> = None;
            loop {
                if *self.end.borrow_and_update() {
                    return;
                }
                let intended = Instant::now();
                if self
                    .max_duration
                    .is_some_and(|d| intended.duration_since(shared.start) >= d)
                {
                    return;
                }
                let Some(k) = self.claims.claim() else { return };
                shared.live.dispatched.fetch_add(1, Ordering::Relaxed);
                shared.live.in_flight.fetch_add(1, Ordering::Relaxed);
                let work = R::attempt(shared, k, intended, &mut own);
                run_and_record(shared, &self.tx, k, intended, work).await;
                if !shared.think.is_zero() {
                    tokio::select! {
                        () = tokio::time::sleep(shared.think) => {}
                        _ = self.end.changed() => return,
                    }
                }
            }
        }
    }
}

/// How a closed-model worker holds its attempt's future: inline for clients that do not
/// think (no allocation per attempt), boxed for clients that do, so the worker's own task
/// stays a few hundred bytes while it thinks and the attempt's state (some KiB) exists only
/// while the attempt runs (10,000 thinking clients would each keep it otherwise). A type
/// parameter rather than a branch: each worker's future is laid out for its own choice only.
trait WorkerAttempt {
    fn attempt<'a>(
        shared: &'a Shared,
        k: u64,
        intended: Instant,
        own: &'a mut Option<Box<Pooled>>,
    ) -> impl Future<Output = AttemptRecord> + Send + 'a;
}

/// The attempt's future inline in the worker's.
struct Inline;

/// The attempt's future on the heap, for as long as the attempt runs.
struct Boxed;

impl WorkerAttempt for Inline {
    fn attempt<'a>(
        shared: &'a Shared,
        k: u64,
        intended: Instant,
        own: &'a mut Option<Box<Pooled>>,
    ) -> impl Future<Output = AttemptRecord> + Send + 'a {
        attempt(shared, k, intended, Some(own))
    }
}

impl WorkerAttempt for Boxed {
    fn attempt<'a>(
        shared: &'a Shared,
        k: u64,
        intended: Instant,
        own: &'a mut Option<Box<Pooled>>,
    ) -> impl Future<Output = AttemptRecord> + Send + 'a {
        Box::pin(attempt(shared, k, intended, Some(own)))
    }
}

/// One attempt, start to record. Never panics on network input; bounded by the client's
/// deadlines.
///
/// `own` is the closed-model client's own kept connection (`None` before its first attempt
/// and after a close); the open model's attempts pass `None` and share the run's pool.
///
/// Not an `async fn`, whose state would keep its arguments twice: the runner holds one of
/// these per client that is connecting or waiting for an answer.
#[allow(clippy::manual_async_fn)] // deliberately, as said above
fn attempt<'a>(
    shared: &'a Shared,
    k: u64,
    intended: Instant,
    mut own: Option<&'a mut Option<Box<Pooled>>>,
) -> impl Future<Output = AttemptRecord> + Send + 'a {
    async move {
        let identity = shared.fleet.identity_for_attempt(k);
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let now = FileTime::from_unix(now.as_secs() as i64, now.subsec_nanos());
        let iv_stream = sim::Stream::new(shared.seed, TAG_IV);
        let mut iv = [0u8; 16];
        iv[..8].copy_from_slice(&iv_stream.at(2 * k).to_le_bytes());
        iv[8..].copy_from_slice(&iv_stream.at(2 * k + 1).to_le_bytes());
        if let Some((discovery, run)) = &shared.discovery {
            let mut base = empty_request();
            fill_request(&mut base, &identity, now);
            // Boxed: discovery's DNS futures are several KiB, and inline they would make every
            // attempt's future (and task) that large, copied several times per attempt.
            return Box::pin(discovered_attempt(
                shared, discovery, run, k, intended, &identity, base, iv,
            ))
            .await;
        }

        let mut pooled = match own.as_deref_mut().and_then(Option::take) {
            Some(pooled) => pooled,
            None => checkout(shared, k),
        };
        fill_request(&mut pooled.base, &identity, now);
        // Faults are decided per (client, attempt, time in the run), so a failing attempt replays.
        let fault = shared.faults.decide(
            identity.index,
            k,
            intended.saturating_duration_since(shared.start),
        );
        let result: Attempt = pooled.client.attempt(&pooled.base, iv, fault).await;
        let end = Instant::now();
        pooled.used += 1;
        if let Some(pooled) = kept(shared, pooled) {
            match own {
                Some(own) => *own = Some(pooled),
                None => shared
                    .pool
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(pooled),
            }
        }

        let verdict = result.verdict();
        let intended_us = micros(intended.saturating_duration_since(shared.start));
        let mut rec = AttemptRecord::new(
            k,
            intended_us,
            0,
            &identity,
            verdict.outcome,
            verdict.hresult,
        );
        rec.latency = Latencies {
            connect_us: result.times.connect.map(micros),
            bind_us: result.times.bind.map(micros),
            request_us: result.times.request.map(micros),
            // From the intended start: queueing before the attempt began counts.
            total_us: Some(micros(end.saturating_duration_since(intended))),
        };
        if verdict.outcome != Outcome::Activated {
            rec.cause = Some(verdict.cause.label());
        }
        // Every attempt that had a fault armed goes to the faulted figures, so the latency of
        // the attempts no fault touched stays clean.
        rec.fault = fault.map(|f| f.label());
        if let Ok(Reply::Response(r)) = result.result {
            rec.reported_count = Some(r.base.current_count);
            rec.hwid = r.hwid.map(|h| h.0);
            rec.epid = Some(r.base.epid);
        }
        rec
    }
}

/// One attempt through discovery: the client's own state (cached host, SRV answer) and its
/// own seeded draw; a new connection per host tried (no pooling across attempts).
#[allow(clippy::too_many_arguments)]
async fn discovered_attempt(
    shared: &Shared,
    discovery: &Discovery,
    run: &DiscoveryRun,
    k: u64,
    intended: Instant,
    identity: &sim::ClientIdentity,
    base: RequestBase,
    iv: [u8; 16],
) -> AttemptRecord {
    let mut state = run
        .clients
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&identity.index)
        .unwrap_or_default();
    let fault = shared.faults.decide(
        identity.index,
        k,
        intended.saturating_duration_since(shared.start),
    );
    let handle = FaultHandle::new();
    handle.arm(fault);
    let source = (!shared.sources.is_empty())
        .then(|| shared.sources[(k % shared.sources.len() as u64) as usize]);
    let options = ClientOptions {
        keep_alive: false,
        ..shared.options.clone()
    };
    let make = {
        let handle = handle.clone();
        move |addr| {
            let connector = FaultyConnector::with_handle(TcpConnector { source }, handle.clone());
            Client::with_connector(connector, addr, options.clone())
        }
    };
    let mut hosts = HostClients::new(make, base, iv);
    let mut rng = StdRng::seed_from_u64(sim::Stream::new(shared.seed, TAG_DNS).at(k));
    let found = discovery.attempt(&mut state, &mut hosts, &mut rng).await;
    let end = Instant::now();
    run.clients
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(identity.index, state);

    let verdict = found.verdict();
    let total_us = micros(end.saturating_duration_since(intended));
    run.split.lock().unwrap_or_else(|e| e.into_inner()).record(
        &found,
        verdict.outcome,
        verdict.hresult,
        total_us,
        intended.saturating_duration_since(shared.start).as_secs(),
    );
    let host_name = found
        .host
        .as_ref()
        .map_or_else(|| crate::discover::NO_HOST.to_owned(), |h| h.host());
    let host_index = {
        let mut names = run.hosts.lock().unwrap_or_else(|e| e.into_inner());
        match names.iter().position(|n| *n == host_name) {
            Some(i) => i,
            None => {
                names.push(host_name);
                names.len() - 1
            }
        }
    };
    let intended_us = micros(intended.saturating_duration_since(shared.start));
    let mut rec = AttemptRecord::new(
        k,
        intended_us,
        u16::try_from(host_index).unwrap_or(u16::MAX),
        identity,
        verdict.outcome,
        verdict.hresult,
    );
    let times = found.attempt.as_ref().map(|a| a.times).unwrap_or_default();
    rec.latency = Latencies {
        connect_us: times.connect.map(micros),
        bind_us: times.bind.map(micros),
        request_us: times.request.map(micros),
        total_us: Some(total_us),
    };
    if verdict.outcome != Outcome::Activated {
        rec.cause = Some(verdict.cause.label());
    }
    rec.fault = fault.map(|f| f.label());
    if let Some(Attempt {
        result: Ok(Reply::Response(r)),
        ..
    }) = found.attempt
    {
        rec.reported_count = Some(r.base.current_count);
        rec.hwid = r.hwid.map(|h| h.0);
        rec.epid = Some(r.base.epid);
    }
    rec
}

fn checkout(shared: &Shared, k: u64) -> Box<Pooled> {
    if shared.options.keep_alive {
        // The lock is held for a push or pop only.
        if let Some(p) = shared.pool.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return p;
        }
    }
    // In turn over this process's attempts: by the shard's own count, since every attempt
    // number of shard I of N is I mod N and `k mod len` would keep to a few addresses.
    let local = k / u64::from(shared.shard_count);
    let source = (!shared.sources.is_empty())
        .then(|| shared.sources[(local % shared.sources.len() as u64) as usize]);
    Box::new(Pooled {
        client: FaultyClient::new(shared.target, source, shared.options.clone()),
        base: empty_request(),
        used: 0,
    })
}

/// The client after an attempt, if its connection is to be kept for another.
fn kept(shared: &Shared, mut pooled: Box<Pooled>) -> Option<Box<Pooled>> {
    if !shared.options.keep_alive || !pooled.client.is_connected() {
        return None;
    }
    if shared
        .requests_per_connection
        .is_some_and(|n| pooled.used >= n)
    {
        pooled.client.disconnect();
        return None;
    }
    Some(pooled)
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The recorder task: every record goes into the [`Recorder`] and, if asked, events.csv
/// (with `failures_only`, the records of attempts that did not activate).
async fn record_loop(
    mut rx: mpsc::Receiver<AttemptRecord>,
    events: Option<Box<dyn io::Write + Send>>,
    failures_only: bool,
    live: Arc<Live>,
    start: Instant,
    mut watchdog: Option<Watchdog>,
    halt: watch::Sender<bool>,
) -> (Recorder, Option<String>, Option<String>) {
    let mut aborted = None;
    let mut recorder = Recorder::new();
    let mut error = None;
    let mut writer = match events.map(EventWriter::new).transpose() {
        Ok(w) => w,
        Err(e) => {
            error = Some(e.to_string());
            None
        }
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut batch = Vec::with_capacity(256);
    loop {
        tokio::select! {
            n = rx.recv_many(&mut batch, 256) => {
                if n == 0 {
                    break;
                }
                // One clock reading and one update of each live counter per batch: the
                // records of a batch arrived together, within the same second but at its edge.
                let second = start.elapsed().as_secs();
                let mut by_outcome = [0u64; 3];
                for rec in batch.drain(..) {
                    recorder.record(&rec, second);
                    by_outcome[rec.outcome.index()] += 1;
                    let wanted = !failures_only || rec.outcome != Outcome::Activated;
                    if wanted
                        && let Some(w) = writer.as_mut()
                        && let Err(e) = w.write(&rec) {
                            error.get_or_insert_with(|| e.to_string());
                            writer = None;
                        }
                }
                for (outcome, n) in [Outcome::Activated, Outcome::NotActivated, Outcome::Failed]
                    .into_iter()
                    .map(|o| (o, by_outcome[o.index()]))
                    .filter(|(_, n)| *n > 0)
                {
                    let counter = match outcome {
                        Outcome::Activated => &live.activated,
                        Outcome::NotActivated => &live.not_activated,
                        Outcome::Failed => &live.failed,
                    };
                    counter.fetch_add(n, Ordering::Relaxed);
                }
                live.completed.fetch_add(n as u64, Ordering::Relaxed);
            }
            _ = tick.tick() => {
                let elapsed = start.elapsed();
                recorder.sample_in_flight(elapsed.as_secs(), live.in_flight.load(Ordering::Relaxed));
                publish(&recorder, &live, elapsed.as_secs().checked_sub(1));
                // Once a second the rows reach the file, so a killed run (SIGKILL, power)
                // still leaves every attempt that finished more than a second before.
                if let Some(w) = writer.as_mut()
                    && let Err(e) = w.flush() {
                        error.get_or_insert_with(|| e.to_string());
                        writer = None;
                    }
                if aborted.is_none()
                    && let Some(w) = watchdog.as_mut() {
                        aborted = w(&recorder, elapsed);
                        if aborted.is_some() {
                            let _ = halt.send(true);
                        }
                    }
            }
        }
    }
    publish(&recorder, &live, start.elapsed().as_secs().checked_sub(1));
    if let Some(w) = writer.as_mut()
        && let Err(e) = w.flush()
    {
        error.get_or_insert_with(|| e.to_string());
    }
    (recorder, error, aborted)
}

fn publish(recorder: &Recorder, live: &Live, last_second: Option<u64>) {
    let summary = recorder.summary();
    let mut codes: Vec<(u32, u64)> = summary
        .by_code
        .iter()
        .filter(|(c, _)| c.0 != 0)
        .map(|(c, n)| (c.0, *n))
        .collect();
    codes.sort_by_key(|c| std::cmp::Reverse(c.1));
    let p99_us = summary.latency_us.total.map(|l| l.p99);
    let last_second_p99_us = last_second.and_then(|s| recorder.second_p99_us(s));
    *live.snapshot.lock().unwrap_or_else(|e| e.into_inner()) = Snapshot {
        codes,
        p99_us,
        last_second_p99_us,
    };
}

/// Marks an attempt whose record has not been sent: if the task is aborted at the drain
/// deadline, dropping this puts the attempt on the abandoned list instead.
struct Unrecorded<'a> {
    shared: &'a Shared,
    k: u64,
    intended: Instant,
    armed: bool,
    running: bool,
}

impl Drop for Unrecorded<'_> {
    fn drop(&mut self) {
        if self.running {
            self.shared.live.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
        if self.armed {
            let offset = micros(self.intended.saturating_duration_since(self.shared.start));
            self.shared
                .abandoned
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((self.k, offset));
        }
    }
}

/// The records of the attempts the drain deadline cut short, so every dispatched attempt
/// appears exactly once: failed with 0xC004F074, cause `abandoned`, latency unknown.
fn abandoned_records(shared: &Shared) -> Vec<AttemptRecord> {
    let abandoned =
        std::mem::take(&mut *shared.abandoned.lock().unwrap_or_else(|e| e.into_inner()));
    abandoned
        .into_iter()
        .map(|(k, intended_us)| {
            let identity = shared.fleet.identity_for_attempt(k);
            let mut rec = AttemptRecord::new(
                k,
                intended_us,
                0,
                &identity,
                Outcome::Failed,
                crate::catalog::hresult::code::SL_E_VL_BINDING_SERVICE_UNAVAILABLE,
            );
            rec.cause = Some("abandoned");
            rec
        })
        .collect()
}

/// Sleeps until `at`, or forever when there is no such instant.
async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_shared() -> Arc<Shared> {
        let spec = sim::FleetSpec::new(10, vec![sim::ProductWeight::new(0, 1.0)]);
        Arc::new(Shared {
            fleet: Fleet::new(1, spec).unwrap(),
            seed: 1,
            target: SocketAddr::from(([127, 0, 0, 1], 1)),
            discovery: None,
            options: ClientOptions::default(),
            sources: Vec::new(),
            shard_count: 1,
            requests_per_connection: None,
            pool: Mutex::new(Vec::new()),
            faults: FaultPlan::new(&[], 1),
            abandoned: Mutex::new(Vec::new()),
            live: Arc::new(Live::default()),
            start: Instant::now(),
            think: Duration::ZERO,
        })
    }

    /// The future of one attempt is moved into its task and copied out again several times
    /// per attempt, and a task of a thinking client lives as long as it thinks: it must stay
    /// small. Discovery's DNS futures (several KiB) and the client's connect+bind are boxed
    /// off it; inline, this future was 4.3 KiB in a debug build (1.7 KiB boxed), and the
    /// release build copied about 8.8 KiB per move of its task. An attempt's future is now
    /// 992 bytes in a debug build; with 10,000 clients that connect at once, all of these
    /// exist together.
    #[test]
    fn an_attempts_future_is_small() {
        let shared = test_shared();
        let work = attempt(&shared, 0, Instant::now(), None);
        let size = size_of_val(&work);
        assert!(size <= 1024, "an attempt's future is {size} bytes");
        drop(work);
        let (tx, _rx) = mpsc::channel(1);
        let permit = Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap();
        let task = attempt_task(shared.clone(), tx.clone(), permit, 0, Instant::now());
        let size = size_of_val(&task);
        assert!(size <= 4096, "an attempt's task is {size} bytes");
        // A closed-model client's task holds one attempt at a time for the whole run.
        let claims = Arc::new(Claims {
            next: AtomicU64::new(0),
            first: 0,
            step: 1,
            limit: 1,
        });
        let (_end_tx, end) = watch::channel(false);
        let client = || ClosedClient {
            shared: shared.clone(),
            tx: tx.clone(),
            claims: claims.clone(),
            end: end.clone(),
            max_duration: None,
        };
        let worker = client().run::<Inline>();
        let size = size_of_val(&worker);
        assert!(size <= 4096, "a closed-model client's task is {size} bytes");
        // A client that thinks keeps only a pointer to its attempt between attempts: 352
        // bytes in a debug build (a 512-byte task in release), against 768 (1,024) when its
        // record's send and a second copy of the client were in its state, and 2.7 KiB with
        // the attempt inline.
        let worker = client().run::<Boxed>();
        let size = size_of_val(&worker);
        assert!(size <= 448, "a thinking client's task is {size} bytes");
    }

    /// A record finds the recorder's queue full: it waits for room and arrives, it is not
    /// dropped (the send that waits is the rare, boxed path of `run_and_record`).
    #[tokio::test]
    async fn a_record_waits_for_room_in_a_full_queue() {
        let shared = test_shared();
        let record = |k: u64| {
            let identity = shared.fleet.identity_for_attempt(k);
            AttemptRecord::new(k, 0, 0, &identity, Outcome::Activated, 0)
        };
        let (tx, mut rx) = mpsc::channel(1);
        tx.try_send(record(1)).expect("room for one");
        let sending = {
            let (shared, tx, rec) = (shared.clone(), tx.clone(), record(2));
            shared.live.in_flight.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                run_and_record(&shared, &tx, 2, Instant::now(), async { rec }).await;
            })
        };
        tokio::task::yield_now().await;
        assert!(!sending.is_finished(), "waits while the queue is full");
        assert_eq!(rx.recv().await.map(|r| r.attempt), Some(1));
        assert_eq!(rx.recv().await.map(|r| r.attempt), Some(2));
        sending.await.unwrap();
        assert_eq!(shared.live.in_flight.load(Ordering::Relaxed), 0);
        assert!(
            shared.abandoned.lock().unwrap().is_empty(),
            "a record sent is not also abandoned"
        );
    }

    /// At the end of a closed run's duration, clients that are thinking end at once: the
    /// drain waits for attempts in flight, not for think times (nor are thinking clients cut
    /// off at the drain deadline and counted as abandoned, as when each slept its think out).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn thinking_clients_end_with_the_run_not_after_their_think() {
        let host = crate::host::server::start(crate::host::server::ServerOptions {
            host: crate::host::HostConfig {
                charged: true,
                ..crate::host::HostConfig::default()
            },
            ..crate::host::server::ServerOptions::default()
        })
        .await
        .unwrap();
        let text = "name = \"think\"\nseed = 1\n[fleet]\nsize = 100\n\
                    products = [{ product = \"Windows 10/11 Enterprise\" }]\n\
                    [load]\nmodel = \"closed\"\nclients = 4\nthink_time = \"1h\"\n\
                    duration = \"300ms\"\nconnection = \"keep-alive\"\n\
                    [timeouts]\ndrain = \"2s\"\n";
        let plan = crate::scenario::parse_str(
            text,
            std::path::Path::new("think.toml"),
            &crate::scenario::Overrides::default(),
            &crate::scenario::resolve_exact,
        )
        .unwrap();
        let (_stop_tx, stop) = watch::channel(false);
        let result = run(
            &plan.job(),
            Endpoint::Fixed(host.addr()),
            None,
            Arc::new(Live::default()),
            stop,
            None,
        )
        .await
        .unwrap();
        assert_eq!(result.recorder.attempts(), 4, "one attempt per client");
        assert_eq!(result.abandoned, 0, "no thinking client is abandoned");
        assert!(result.complete);
    }

    /// The closed model's workers take this shard's attempt numbers in turn and stop at
    /// the limit, whatever the step and offset.
    #[test]
    fn claims_walk_the_shards_attempts_and_stop_at_the_limit() {
        let claims = Claims {
            next: AtomicU64::new(0),
            first: 2,
            step: 3,
            limit: 12,
        };
        let taken: Vec<u64> = std::iter::from_fn(|| claims.claim()).collect();
        assert_eq!(taken, [2, 5, 8, 11]);
        assert_eq!(claims.claim(), None);
        let huge = Claims {
            next: AtomicU64::new(u64::MAX / 2),
            first: 1,
            step: 4,
            limit: u64::MAX,
        };
        assert_eq!(
            huge.claim(),
            None,
            "an overflowing attempt number is not taken"
        );
    }
}
