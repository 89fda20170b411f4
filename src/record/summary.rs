//! The run summary: the shape of `summary.json`. Built by [`super::Recorder::summary`]; plain
//! data, `Serialize` and `Deserialize` (`report` reads summary.json back into these same types),
//! compared whole in tests.
//!
//! ```text
//! {
//!   "attempts": 60,
//!   "by_outcome": {"activated": 36, "not_activated": 24, "failed": 0},
//!   "by_code": {"0x00000000": 36, "0xC004F038": 24},          sums to attempts
//!   "by_cause": {"connect refused": 3},
//!   "latency_us": {"connect": {"count","p50","p90","p99","p999","max"} | null,
//!                  "bind": …, "request": …, "total": …},        fault-free attempts only
//!   "latency_us_by_outcome": {"activated": {…phases…}, "not_activated": …, "failed": …},
//!   "latency_us_faulted": {…phases…},                           attempts a fault touched
//!   "faulted_attempts": 0,
//!   "threshold": {"windows": {"required": 25, "first_activation_after_clients": 25,
//!                             "max_count": 50, "final_count": 50, …}},
//!   "hosts": [{"host": 0, "pool": "windows", "epids": […], "hwids": […], "changed": false}],
//!   "hosts_changed": false,
//!   "products": [{"index", "name", "attempts", "by_outcome", "by_code", "latency_us", …}],
//!   "faults": [{"fault": "reset", "attempts", "by_outcome", "by_code"}]
//! }
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Application, HexCode};

pub use super::hist::LatencySummary;
pub use super::hosts::{HostSummary, SeenSummary};
use super::threshold::ThresholdSummary;

/// One value per outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ByOutcome<T> {
    /// Activated.
    pub activated: T,
    /// Not activated.
    pub not_activated: T,
    /// Failed.
    pub failed: T,
}

impl<T> ByOutcome<T> {
    /// Builds from the three values in [`super::Outcome::ALL`] order.
    pub fn from_array([activated, not_activated, failed]: [T; 3]) -> Self {
        Self {
            activated,
            not_activated,
            failed,
        }
    }
}

impl ByOutcome<u64> {
    /// activated + not_activated + failed.
    pub fn total(&self) -> u64 {
        self.activated + self.not_activated + self.failed
    }
}

/// Latency percentiles of each phase; `None` when no attempt measured the phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PhaseLatency {
    /// TCP connect.
    pub connect: Option<LatencySummary>,
    /// RPC bind.
    pub bind: Option<LatencySummary>,
    /// Activation request.
    pub request: Option<LatencySummary>,
    /// Total from the intended start.
    pub total: Option<LatencySummary>,
}

impl PhaseLatency {
    /// The latency of `phase`.
    pub fn get(&self, phase: super::LatencyPhase) -> Option<LatencySummary> {
        match phase {
            super::LatencyPhase::Connect => self.connect,
            super::LatencyPhase::Bind => self.bind,
            super::LatencyPhase::Request => self.request,
            super::LatencyPhase::Total => self.total,
        }
    }
}

/// Tallies and latency of one product.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProductSummary {
    /// Index in the catalog.
    pub index: u16,
    /// Product name, when the index is in the catalog.
    pub name: Option<String>,
    /// Attempts.
    pub attempts: u64,
    /// By outcome.
    pub by_outcome: ByOutcome<u64>,
    /// By HRESULT.
    pub by_code: BTreeMap<HexCode, u64>,
    /// Attempts touched by a fault.
    pub faulted_attempts: u64,
    /// Fault-free latency, all outcomes.
    pub latency_us: PhaseLatency,
}

/// Tallies of the attempts one injected fault touched.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultSummary {
    /// Fault tag.
    pub fault: String,
    /// Attempts.
    pub attempts: u64,
    /// By outcome.
    pub by_outcome: ByOutcome<u64>,
    /// By HRESULT.
    pub by_code: BTreeMap<HexCode, u64>,
}

/// Everything `summary.json` says about a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Summary {
    /// Attempts recorded.
    pub attempts: u64,
    /// By outcome; sums to `attempts`.
    pub by_outcome: ByOutcome<u64>,
    /// By HRESULT (`"0xC004F038"`); sums to `attempts`.
    pub by_code: BTreeMap<HexCode, u64>,
    /// By failure cause, for attempts that gave one.
    pub by_cause: BTreeMap<String, u64>,
    /// Latency of fault-free attempts, all outcomes together.
    pub latency_us: PhaseLatency,
    /// Latency of fault-free attempts, per outcome.
    pub latency_us_by_outcome: ByOutcome<PhaseLatency>,
    /// Latency of attempts an injected fault touched, all outcomes.
    pub latency_us_faulted: PhaseLatency,
    /// Attempts an injected fault touched.
    pub faulted_attempts: u64,
    /// Threshold figures per pool that got answers.
    pub threshold: BTreeMap<Application, ThresholdSummary>,
    /// ePIDs and HwIDs per host and pool.
    pub hosts: Vec<HostSummary>,
    /// True when any host changed its ePID or HwID within a pool.
    pub hosts_changed: bool,
    /// Per product, by catalog index.
    pub products: Vec<ProductSummary>,
    /// Per injected fault, by tag.
    pub faults: Vec<FaultSummary>,
}
