//! What the runner is configured with: the load model and its schedule, bounds, connection
//! policy, deadlines, and [`Job`], everything one run needs. `load` owns these types;
//! `scenario` builds them from the file (and the command line's overrides), so the runner
//! never reads a scenario.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use crate::client::ClientOptions;
use crate::faults::FaultRule;
use crate::record::EventsMode;
use crate::sim::FleetSpec;

use super::Schedule;
use super::shard::{RunOverrides, Shard};

/// Everything one run of the runner needs, built by `scenario` from a plan
/// (`Plan::job`): the fleet and client translated into the simulator's and the client's
/// own options, the rest borrowed as the plan holds it.
#[derive(Debug, Clone)]
pub struct Job<'a> {
    /// Seed of every random choice in the run (fleet, request IVs, SRV draws, faults).
    pub seed: u64,
    /// The synthetic clients.
    pub fleet: FleetSpec,
    /// How every client speaks the protocol, its deadlines and whether it keeps its
    /// connection.
    pub client: ClientOptions,
    /// Arrivals, bounds, connections, shard and start time.
    pub load: &'a Load,
    /// After a stop or the end of the run, how long attempts in flight may finish before
    /// they are recorded as abandoned.
    pub drain: Duration,
    /// Network faults injected on the client side.
    pub faults: &'a [FaultRule],
    /// Which attempts get an events row.
    pub events: EventsMode,
}

/// Arrivals, bounds and connections (`[load]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Load {
    /// Open (arrivals on a schedule) or closed (clients in a loop).
    pub model: LoadModel,
    /// When the run stops.
    pub bounds: Bounds,
    /// New connection per activation, or kept alive.
    pub connection: ConnectionPolicy,
    /// Local addresses to bind outgoing connections to, used in turn; empty: the system's
    /// choice. Spreads tens of thousands of connections over several ephemeral port ranges.
    pub source_addresses: Vec<IpAddr>,
    /// At most this many attempts in progress at once (open model; for the closed model it
    /// equals `clients`). An arrival that finds the cap reached is recorded as not started,
    /// with its intended start time, so the overload stays visible.
    pub max_in_flight: u32,
    /// Which part of the run this process makes (`--shard`; not a scenario key): the
    /// whole run unless sharded.
    pub shard: Shard,
    /// Wall-clock time to start at (`--start-at`; not a scenario key), so the shards of a
    /// run start together; `None`: at once.
    pub start_at: Option<SystemTime>,
    /// Name of the run, shared by its shards (`--run-id`, or derived; not a scenario key).
    pub run_id: Option<String>,
    /// The command-line overrides this plan was made with (not a scenario key): written to
    /// summary.json so `kmsload merge` rebuilds the plan the shards ran.
    pub overrides: RunOverrides,
}

/// The load model.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadModel {
    /// Arrivals at scheduled times regardless of how the host keeps up; latency counts from
    /// each attempt's intended start, so a host that queues cannot hide it (coordinated
    /// omission).
    Open(Schedule),
    /// `clients` loops, each starting its next attempt `think_time` after the previous one
    /// ended.
    Closed {
        /// Number of concurrent loops.
        clients: u32,
        /// Pause between an attempt's end and the loop's next attempt.
        think_time: Duration,
    },
}

/// When the run stops: at whichever bound comes first. At least one is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Stop starting attempts after this long (for stages: at most the stages' total).
    pub max_duration: Option<Duration>,
    /// Stop after starting this many attempts.
    pub max_attempts: Option<u64>,
}

/// Connections per activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionPolicy {
    /// Connect, bind, one request, close: what real clients do.
    NewPerActivation,
    /// Keep connections open and send further requests on them (bind once).
    KeepAlive {
        /// Close and reconnect after this many requests (`None`: never by count).
        requests_per_connection: Option<u32>,
    },
}

/// Deadlines (`[timeouts]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connect.
    pub connect: Duration,
    /// Bind sent → bind_ack (and alter_context) received.
    pub bind: Duration,
    /// Request sent → response received.
    pub request: Duration,
    /// After Ctrl-C or the end of the run, how long attempts in flight may finish before
    /// they are recorded as cancelled.
    pub drain: Duration,
}
