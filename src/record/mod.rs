//! `record`: what a run measured. The runner hands one [`AttemptRecord`] per attempt to a
//! [`Recorder`], which keeps
//!
//! - HDR histograms (1 µs ..= 1 h, 3 significant digits) of connect, bind, request and total
//!   time, per outcome and per product. Attempts touched by an injected fault go to a
//!   separate set, so fault-free latency is never polluted by faulted attempts;
//! - tallies: attempts by outcome, by HRESULT, by cause, by product × code, by fault × code;
//! - a per-second timeline: attempts started and completed, outcomes, codes, in-flight
//!   samples, p50/p99 of fault-free total time;
//! - a threshold tracker per counting pool (Windows, Office 2010, Office 2013+): the first
//!   activation, the number of distinct clients before it, the largest and the last count;
//! - per host and pool, the ePIDs and HwIDs seen (a real host keeps them stable).
//!
//! Every part merges ([`Recorder::merge`]), so shards can record separately and combine, and
//! every attempt is counted exactly once: [`Recorder::invariant_check`] proves
//! `attempts = activated + not_activated + failed = Σ by_code`. A recorder can be rebuilt
//! from the files a run wrote ([`Recorder::restore`], all but the threshold tracker, which
//! [`Recorder::observe_threshold`] refills from events.csv rows): `kmsload merge` does so.
//!
//! ```text
//! runner ──AttemptRecord──► Recorder::record(rec, completion_second)
//!        ──in-flight n────► Recorder::sample_in_flight(second, n)
//!                           │
//!        Recorder::merge ◄──┤ (shards)
//!                           ├─► summary()            → Summary (serde)      → summary.json
//!                           ├─► timeline()           → Vec<TimelineRow>
//!                           ├─► write_run_log / write_timeline_log (HdrHistogram interval log)
//! runner ──AttemptRecord──► EventWriter (csv)                               → events.csv
//! ```
//!
//! Uses `sim` only for [`ClientIdentity`] (in [`AttemptRecord::new`]) and its mixing function
//! (the CMID hasher). Left out: no files and no terminal output (the report module opens files and passes a
//! writer), no clocks (the runner passes seconds and microseconds), no sockets, no tokio.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::catalog::Application;
use crate::client::Outcome;
use crate::sim::ClientIdentity;
use crate::wire::base::Version;

mod events;
mod hist;
mod hosts;
mod log;
mod recorder;
pub mod replay;
mod restore;
mod run;
mod summary;
mod tally;
mod threshold;
mod timeline;

pub use events::{EventRow, EventWriter, EventsMode, ProductName, VersionText};
pub(crate) use hist::merge_sorted;
pub use hist::{HIGHEST_US, LOWEST_US, SIGFIG};
pub use hosts::VALUES_MAX as HOST_VALUES_MAX;
pub use log::LogError;
pub use recorder::{InvariantError, Recorder};
pub use restore::Saved;
pub use run::{
    ConnectionBudget, GeneratorStats, LATE_AFTER, ListenQueue, MergeInfo, RunResult, ShardRow,
};
pub use summary::{
    ByOutcome, FaultSummary, HostSummary, LatencySummary, PhaseLatency, ProductSummary,
    SeenSummary, Summary,
};
pub use tally::Tally;
pub use threshold::{COUNT_VALUES_MAX, CountStep, DISTINCT_MAX, LevelSummary, ThresholdSummary};
pub use timeline::TimelineRow;

/// A measured step of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LatencyPhase {
    /// TCP connect.
    Connect,
    /// RPC bind (and alter_context) round trip.
    Bind,
    /// Activation request round trip.
    Request,
    /// From the intended start to the verdict (includes any wait before the start).
    Total,
}

impl LatencyPhase {
    /// All phases, in protocol order.
    pub const ALL: [Self; 4] = [Self::Connect, Self::Bind, Self::Request, Self::Total];

    /// The name used in JSON and in interval-log tags.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Bind => "bind",
            Self::Request => "request",
            Self::Total => "total",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Connect => 0,
            Self::Bind => 1,
            Self::Request => 2,
            Self::Total => 3,
        }
    }
}

impl fmt::Display for LatencyPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Phase latencies of one attempt in microseconds; `None` when the phase did not happen
/// (e.g. no bind after a refused connect).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Latencies {
    /// TCP connect time.
    pub connect_us: Option<u64>,
    /// Bind round trip.
    pub bind_us: Option<u64>,
    /// Request round trip.
    pub request_us: Option<u64>,
    /// Total time from the intended start.
    pub total_us: Option<u64>,
}

impl Latencies {
    /// The latency of `phase`.
    pub fn get(&self, phase: LatencyPhase) -> Option<u64> {
        match phase {
            LatencyPhase::Connect => self.connect_us,
            LatencyPhase::Bind => self.bind_us,
            LatencyPhase::Request => self.request_us,
            LatencyPhase::Total => self.total_us,
        }
    }
}

/// An HRESULT shown as `0xC004F038` (uppercase, 8 digits) in JSON and CSV; orders by value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HexCode(pub u32);

impl HexCode {
    /// The 10 ASCII bytes `0xXXXXXXXX`.
    pub fn to_ascii(self) -> [u8; 10] {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        let mut out = *b"0x00000000";
        for (i, b) in out[2..].iter_mut().enumerate() {
            *b = HEX[((self.0 >> (28 - 4 * i)) & 0xF) as usize];
        }
        out
    }
}

impl fmt::Display for HexCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:08X}", self.0)
    }
}

impl Serialize for HexCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ascii = self.to_ascii();
        // Only hex digits and 'x' are written: always ASCII.
        s.serialize_str(std::str::from_utf8(&ascii).unwrap_or("0x????????"))
    }
}

impl<'de> Deserialize<'de> for HexCode {
    /// Reads what [`Serialize`] writes, and every other spelling `kmsload explain` takes.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
        crate::catalog::hresult::parse_code(&text)
            .map(Self)
            .map_err(serde::de::Error::custom)
    }
}

/// Everything the runner knows about one attempt: the one value it produces per attempt.
///
/// Cheap to build: the only heap field is the ePID the decoder already allocated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    /// Attempt number, unique in the run, in start order (shards share one numbering).
    pub attempt: u64,
    /// Fleet index of the client.
    pub client_index: u64,
    /// When the schedule said this attempt should start, µs from the run start.
    pub intended_start_us: u64,
    /// The CMID sent.
    pub cmid: Uuid,
    /// Index of the product in [`crate::catalog::products`].
    pub product: u16,
    /// Protocol version sent.
    pub protocol: Version,
    /// Phase latencies.
    pub latency: Latencies,
    /// How the attempt ended.
    pub outcome: Outcome,
    /// The HRESULT a real client would show; 0 (S_OK) when activated.
    pub code: u32,
    /// Short cause of a failure, e.g. `"connect refused"`, `"timeout in bind"`.
    pub cause: Option<&'static str>,
    /// The injected fault that touched this attempt, if any (e.g. `"reset"`, `"stall"`).
    pub fault: Option<&'static str>,
    /// `CurrentCount` from the response, when one was decoded.
    pub reported_count: Option<u32>,
    /// The count pool of the product (see [`Application::of`]).
    pub pool: Application,
    /// `RequiredClientCount` (N) sent.
    pub required: u32,
    /// Index of the target host in the run's target list.
    pub host: u16,
    /// ePID from the response, when one was decoded.
    pub epid: Option<String>,
    /// HwID from a V6 response.
    pub hwid: Option<[u8; 8]>,
}

impl AttemptRecord {
    /// The record of an attempt by `client` that ended with `outcome` and `code`: identity
    /// fields (CMID, product, protocol, pool, N = the product's `n_policy`) come from the
    /// client; latencies, cause, fault, count, ePID and HwID start empty for the runner to fill.
    pub fn new(
        attempt: u64,
        intended_start_us: u64,
        host: u16,
        client: &ClientIdentity,
        outcome: Outcome,
        code: u32,
    ) -> Self {
        Self {
            attempt,
            client_index: client.index,
            intended_start_us,
            cmid: client.cmid,
            // The catalog has a few hundred rows; an index past u16 would not be a catalog row.
            product: u16::try_from(client.product_index).unwrap_or(u16::MAX),
            protocol: client.protocol,
            latency: Latencies::default(),
            outcome,
            code,
            cause: None,
            fault: None,
            reported_count: None,
            pool: Application::of(client.product),
            required: client.product.n_policy,
            host,
            epid: None,
            hwid: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::products;
    use crate::sim::{Fleet, FleetSpec, ProductWeight};

    #[test]
    fn records_take_identity_fields_from_the_client() {
        let office = products()
            .iter()
            .position(|p| p.name == "Office LTSC Professional Plus 2021")
            .expect("in catalog");
        let fleet = Fleet::new(3, FleetSpec::new(10, vec![ProductWeight::new(office, 1.0)]))
            .expect("valid spec");
        let c = fleet.client(4);
        let r = AttemptRecord::new(9, 1234, 2, &c, Outcome::NotActivated, 0xC004_F038);
        assert_eq!(
            (r.attempt, r.client_index, r.intended_start_us, r.host),
            (9, 4, 1234, 2)
        );
        assert_eq!(
            (r.cmid, usize::from(r.product), r.protocol),
            (c.cmid, office, c.protocol)
        );
        assert_eq!((r.pool, r.required), (Application::Office2013, 5));
        assert_eq!((r.outcome, r.code), (Outcome::NotActivated, 0xC004_F038));
        assert_eq!(r.latency, Latencies::default());
        assert!(r.epid.is_none() && r.reported_count.is_none() && r.fault.is_none());
    }

    #[test]
    fn hex_codes_are_uppercase_with_prefix() {
        assert_eq!(HexCode(0xC004_F038).to_string(), "0xC004F038");
        assert_eq!(&HexCode(0xC004_F038).to_ascii(), b"0xC004F038");
        assert_eq!(&HexCode(0).to_ascii(), b"0x00000000");
        assert_eq!(&HexCode(0x8007_274D).to_ascii(), b"0x8007274D");
        assert_eq!(
            serde_json::to_string(&HexCode(0xABCDEF01)).ok().as_deref(),
            Some("\"0xABCDEF01\"")
        );
        assert!(HexCode(1) < HexCode(0x8000_0000));
        let back: HexCode = serde_json::from_str("\"0xC004F038\"").expect("reads its own form");
        assert_eq!(back, HexCode(0xC004_F038));
        assert!(serde_json::from_str::<HexCode>("\"no code\"").is_err());
    }

    #[test]
    fn names() {
        assert_eq!(Outcome::NotActivated.as_str(), "not_activated");
        assert_eq!(LatencyPhase::Request.as_str(), "request");
        assert_eq!(
            serde_json::to_string(&Outcome::NotActivated)
                .ok()
                .as_deref(),
            Some("\"not_activated\"")
        );
        let l = Latencies {
            bind_us: Some(3),
            ..Latencies::default()
        };
        assert_eq!(l.get(LatencyPhase::Bind), Some(3));
        assert_eq!(l.get(LatencyPhase::Total), None);
    }
}
