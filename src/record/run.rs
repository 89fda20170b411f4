//! What a whole run produced, beyond the per-attempt records: the [`Recorder`] with the
//! run's bounds and rates, and how well the load generator kept its own schedule. The load
//! runner fills it; the report writes it down.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::Recorder;

/// How the run ended and what it measured.
pub struct RunResult {
    /// Everything recorded.
    pub recorder: Recorder,
    /// Wall-clock start.
    pub started: SystemTime,
    /// With a common start time (`--start-at`): how far after it this process started, µs
    /// (0 when it was on time); `None` without one.
    pub late_start_us: Option<u64>,
    /// From start to the last attempt's end.
    pub elapsed: Duration,
    /// False when the run was interrupted (a signal) or aborted (a gate) before its bounds.
    pub complete: bool,
    /// Why the run was stopped early by a gate with `abort = true`, if it was.
    pub aborted: Option<String>,
    /// Set when these results were rebuilt from events.csv after the run itself ended
    /// without writing them (killed): what the rebuilt results lack.
    pub rebuilt: Option<String>,
    /// Attempts dispatched.
    pub dispatched: u64,
    /// Attempts of the schedule that were due before the duration bound but could not start
    /// by then (the runner or its in-flight cap was saturated): not run late, not recorded.
    pub not_started: u64,
    /// Attempts the drain deadline cut short (recorded as timeouts).
    pub abandoned: u64,
    /// Arrivals per second the schedule asked for over the run (open model).
    pub offered_rate: Option<f64>,
    /// Attempts finished per second.
    pub achieved_rate: f64,
    /// An error while writing events.csv, if any (the run itself went on).
    pub events_error: Option<String>,
    /// How well kmsload itself kept up.
    pub generator: GeneratorStats,
    /// With discovery: the split across the hosts found (empty otherwise).
    pub by_host: Vec<crate::discover::HostSplit>,
    /// For a merged result: the shards it was made of (`None` for a run).
    pub merge: Option<MergeInfo>,
}

/// How far an attempt may start after its intended time before it counts as late: well
/// above the timer's own granularity (the load runner's timer slack, 2 ms).
pub const LATE_AFTER: Duration = Duration::from_millis(10);

/// Whether the load generator kept up with its schedule, and what it cost: when it falls
/// behind, the figures describe kmsload's limit (and, in-process, that of the host sharing
/// its cores), not the host's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GeneratorStats {
    /// Open model: the largest delay between an attempt's intended start and the moment
    /// the dispatcher got to it (before any wait for a free slot, which is the host's).
    pub max_lag_us: u64,
    /// Open model: attempts the dispatcher reached more than [`LATE_AFTER`] late.
    pub late_attempts: u64,
    /// CPU time (user + system) of the whole kmsload process during the load, in seconds,
    /// where the OS reports it (Linux); includes the in-process host when there is one.
    pub process_cpu_s: Option<f64>,
    /// `process_cpu_s` over the load's wall time times the cores kmsload may use: near 1,
    /// kmsload was short of CPU.
    pub process_cpu_busy: Option<f64>,
    /// The machine's listen-queue overflows during the load, when the target was on this
    /// machine (a loopback address, the in-process host included) and Linux reports them.
    pub listen_queue: Option<ListenQueue>,
    /// Open model: the attempts in progress at most (`max_in_flight`, or the connection
    /// budget below); closed model: the clients.
    pub in_flight_limit: u32,
    /// Open model: attempts that found every one of `in_flight_limit` slots taken and waited
    /// for one (the wait counts in their latency, from the intended start).
    pub slot_waits: u64,
    /// Open model with a new connection per activation: set when the local ports, not
    /// `max_in_flight`, capped the attempts in progress (see `load::PORT_SHARE`).
    pub connection_budget: Option<ConnectionBudget>,
}

/// The cap on attempts in progress that a run with a new connection per activation took
/// from its local ports instead of `max_in_flight`: each connection in progress holds a
/// local port, and a fuller port table makes every `connect()` search longer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConnectionBudget {
    /// Attempts in progress at most.
    pub limit: u32,
    /// The scenario's `max_in_flight`, which the budget lowered.
    pub max_in_flight: u32,
    /// Ports in the machine's ephemeral range (`net.ipv4.ip_local_port_range`).
    pub local_ports: u32,
    /// Source addresses the connections were spread over.
    pub sources: u32,
}

/// Connections the machine's listen queues dropped during the load (`nstat`'s
/// `TcpExtListenOverflows` and `TcpExtListenDrops`, from /proc/net/netstat, taken before and
/// after). Machine-wide: another listener on the same machine counts too. A dropped SYN is
/// retried by the client after 1 s, then 3 s: overflows mean connects waited that long.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ListenQueue {
    /// Handshakes completed while the listener's accept queue was full.
    pub overflows: u64,
    /// SYNs and handshakes dropped at a listener, overflows included.
    pub drops: u64,
    /// `net.core.somaxconn`, which caps every listen backlog (the in-process host asks for
    /// 65 535, so this is its backlog).
    pub somaxconn: Option<u32>,
}

/// How a merged result was made up (`kmsload merge`): summary.json's `merge`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MergeInfo {
    /// The run the shards belong to.
    pub run_id: String,
    /// Shards in the run.
    pub count: u32,
    /// The shards merged, by index.
    pub shards: Vec<ShardRow>,
    /// Indexes of the shards that were not there (`--allow-missing`): the result is
    /// incomplete.
    pub missing: Vec<u32>,
    /// True when the threshold figures were recomputed from every shard's per-attempt
    /// records in time order; false when some shard had no complete events.csv (then the
    /// merged summary has no threshold figures).
    pub threshold_recomputed: bool,
    /// What could not be merged exactly, and why.
    pub notes: Vec<String>,
}

/// One merged shard, for the per-shard table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ShardRow {
    /// Shard index.
    pub index: u32,
    /// Its results directory, as given to the merge.
    pub dir: String,
    /// Attempts it recorded.
    pub attempts: u64,
    /// Its own achieved rate, attempts per second.
    pub achieved_rate: f64,
    /// Its own offered rate (open model).
    pub offered_rate: Option<f64>,
    /// Its generator's largest lag, µs.
    pub max_lag_us: u64,
    /// Attempts its generator reached late.
    pub late_attempts: u64,
    /// Its start after the earliest shard's, µs.
    pub start_offset_us: u64,
    /// How late it started after `--start-at`, µs.
    pub late_start_us: Option<u64>,
    /// Its source addresses (`--source-address`), if it was given any.
    pub source_addresses: Vec<String>,
    /// Whether it completed its part.
    pub complete: bool,
    /// The gates that failed on its own figures.
    pub failed_gates: Vec<String>,
}
