//! What the runner is configured with: the load model and its schedule, bounds, connection
//! policy, deadlines, and [`Job`], everything one run needs. `load` owns these types;
//! `scenario` builds them from the file (and the command line's overrides), so the runner
//! never reads a scenario.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use crate::client::ClientOptions;
use crate::faults::FaultRule;
use crate::record::{ConnectionBudget, EventsMode};
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
    /// Ports in this machine's ephemeral range ([`crate::procfs::local_port_count`]), which
    /// bound the connections held at once with a new connection per activation (see
    /// [`Load::in_flight_limit`]); `None` where the OS does not say. `Plan::job` leaves it
    /// `None`; `run` fills it in from this machine.
    pub local_ports: Option<u32>,
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
    /// equals `clients`), lowered by the connection budget with a new connection per
    /// activation ([`Load::in_flight_limit`]). An arrival that finds the cap reached waits
    /// for a slot, the wait counting in its latency; one still waiting at the end of the run
    /// is counted as not started.
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

/// With a new connection per activation, the attempts in progress at once hold at most this
/// share (1/N) of each source address's local ports.
///
/// Why: every `connect()` searches the ephemeral range for a port whose connection to the
/// target is free, and on loopback the search walks past every port held open and every port
/// in TIME_WAIT for less than a second (`tcp_tw_reuse` reuses older ones). When a host falls
/// behind, the attempts waiting on it each hold a socket; with thousands of them the search
/// grows until it takes more CPU than the activation. Measured on 2 cores against the
/// in-process host offered 18,000 new connections per second (the configuration sustains
/// 12,000): with 9,000 attempts in flight 6,552 activated per second, the kernel's
/// `__inet_hash_connect` and `__inet_check_established` taking 24 % of the CPU; with 5,000,
/// 9,082/s; 2,500, 10,510/s; 1,000, 12,381/s; 256, 12,751/s. A host that falls behind is
/// then measured as latency (the waits for a slot count from each attempt's intended start)
/// instead of the runner collapsing. 1/32 of Linux's default range is 882 connections, far
/// more than a loopback host needs (rate × latency: 12,000/s × 2 ms = 24) and more than a
/// remote one can use, whose TIME_WAIT ports stay taken for 60 s (about 470 new connections
/// per second per source address).
pub const PORT_SHARE: u32 = 32;

/// The ports assumed where the OS does not say how many it has: IANA's dynamic range,
/// 49152–65535.
pub const FALLBACK_LOCAL_PORTS: u32 = 16_384;

/// How many attempts may be in progress at once, and what set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InFlightLimit {
    /// Attempts in progress at most.
    pub limit: u32,
    /// Set when the local ports, not `max_in_flight`, set the limit: the connection budget
    /// ([`PORT_SHARE`] of the ports of each source address, or of [`FALLBACK_LOCAL_PORTS`]),
    /// as summary.json reports it.
    pub port_budget: Option<ConnectionBudget>,
}

impl Load {
    /// The attempts in progress at most: `max_in_flight` (closed model: `clients`), and in
    /// the open model with a new connection per activation, at most [`PORT_SHARE`] of the
    /// local ports of each source address (`local_ports`; [`FALLBACK_LOCAL_PORTS`] when
    /// unknown). At least 1.
    pub fn in_flight_limit(&self, local_ports: Option<u32>) -> InFlightLimit {
        let configured = InFlightLimit {
            limit: self.max_in_flight.max(1),
            port_budget: None,
        };
        if matches!(self.model, LoadModel::Closed { .. })
            || self.connection != ConnectionPolicy::NewPerActivation
        {
            return configured;
        }
        let local_ports = local_ports.unwrap_or(FALLBACK_LOCAL_PORTS);
        let sources = u32::try_from(self.source_addresses.len().max(1)).unwrap_or(u32::MAX);
        let limit = (local_ports / PORT_SHARE).max(1).saturating_mul(sources);
        if limit < configured.limit {
            InFlightLimit {
                limit,
                port_budget: Some(ConnectionBudget {
                    limit,
                    max_in_flight: self.max_in_flight,
                    local_ports,
                    sources,
                }),
            }
        } else {
            configured
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn load(connection: ConnectionPolicy, sources: usize, max_in_flight: u32) -> Load {
        Load {
            model: LoadModel::Open(Schedule::Constant { rate: 1000.0 }),
            bounds: Bounds {
                max_duration: Some(Duration::from_secs(1)),
                max_attempts: None,
            },
            connection,
            source_addresses: (0..sources)
                .map(|i| IpAddr::from([127, 0, 0, 1 + i as u8]))
                .collect(),
            max_in_flight,
            shard: Shard::WHOLE,
            start_at: None,
            run_id: None,
            overrides: RunOverrides::default(),
        }
    }

    #[test]
    fn new_connections_in_flight_hold_a_share_of_the_local_ports() {
        let new = ConnectionPolicy::NewPerActivation;
        // Linux's default range: 28,232 / 32 = 882 per source address.
        let one = load(new, 0, 9000).in_flight_limit(Some(28_232));
        assert_eq!(one.limit, 882);
        assert_eq!(
            one.port_budget,
            Some(ConnectionBudget {
                limit: 882,
                max_in_flight: 9000,
                local_ports: 28_232,
                sources: 1
            })
        );
        // Each source address has its own ports.
        assert_eq!(load(new, 4, 9000).in_flight_limit(Some(28_232)).limit, 3528);
        // Unknown range: IANA's 16,384 ports.
        assert_eq!(load(new, 0, 9000).in_flight_limit(None).limit, 512);
        // max_in_flight below the budget is the limit, and says so.
        let low = load(new, 0, 500).in_flight_limit(Some(28_232));
        assert_eq!((low.limit, low.port_budget), (500, None));
        // A tiny range still lets one attempt through.
        assert_eq!(load(new, 0, 9000).in_flight_limit(Some(10)).limit, 1);
    }

    #[test]
    fn kept_alive_and_closed_runs_keep_their_configured_limit() {
        let kept = ConnectionPolicy::KeepAlive {
            requests_per_connection: None,
        };
        let l = load(kept, 0, 9000).in_flight_limit(Some(28_232));
        assert_eq!((l.limit, l.port_budget), (9000, None));
        let mut closed = load(ConnectionPolicy::NewPerActivation, 0, 5000);
        closed.model = LoadModel::Closed {
            clients: 5000,
            think_time: Duration::ZERO,
        };
        let l = closed.in_flight_limit(Some(28_232));
        assert_eq!((l.limit, l.port_budget), (5000, None));
    }
}
