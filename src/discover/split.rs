//! The split of a run across the hosts discovery found: per host, the attempts it answered,
//! their outcomes, codes and latency, and what failing over cost (summary.json `by_host`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Discovered;
use crate::catalog::hresult;
use crate::client::outcome::Outcome;

/// The per-second series stop growing here (a day); later attempts count in the last entry.
const MAX_SECONDS: usize = 86_400;

/// Label of the attempts no host answered (DNS failed, or every host failed).
pub const NO_HOST: &str = "(none)";

/// One host's share of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostSplit {
    /// `target:port`, or [`NO_HOST`].
    pub host: String,
    /// Attempts that ended at this host (it answered; for [`NO_HOST`], none did).
    pub attempts: u64,
    /// Of those: activated, not activated, failed.
    pub activated: u64,
    /// Not activated (low count, refused).
    pub not_activated: u64,
    /// Failed.
    pub failed: u64,
    /// Codes of those attempts, `"0x........"` → attempts.
    pub codes: BTreeMap<String, u64>,
    /// Latency of those attempts from their intended start, µs: p50, p99, max.
    pub latency_us: Option<SplitLatency>,
    /// Times this host was tried and failed, so the client went on (failovers away from it).
    pub failed_tries: u64,
    /// Attempts this host answered after another had failed (failovers to it).
    pub failovers_in: u64,
    /// Mean time those failovers spent before this host answered (DNS, the failed hosts), µs.
    pub failover_cost_us_mean: Option<u64>,
    /// The longest such time, µs.
    pub failover_cost_us_max: Option<u64>,
    /// Attempts that ended at this host, by second of their intended start (index 0: the
    /// run's first second): the shift between hosts over time.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub per_second: Vec<u64>,
    /// Of those, the attempts that failed over to this host, by second.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failovers_per_second: Vec<u64>,
}

/// An outage window of an in-process host, as the scenario set it (summary.json `outages`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostOutage {
    /// The host's name (the SRV target; `by_host` names it `name:port`).
    pub host: String,
    /// Start, seconds from the run's start.
    pub from_s: f64,
    /// End, seconds from the run's start.
    pub to_s: f64,
}

impl HostOutage {
    /// True when `split_host` (`target:port` of `by_host`) is this outage's host.
    pub fn is_of(&self, split_host: &str) -> bool {
        split_host
            .rsplit_once(':')
            .map_or(split_host, |(name, _)| name)
            == self.host
    }
}

/// Adds one to `v[i]`, growing `v` as needed.
fn bump_at(v: &mut Vec<u64>, i: usize) {
    if v.len() <= i {
        v.resize(i + 1, 0);
    }
    v[i] += 1;
}

/// Seconds per row when a run of `seconds` seconds is shown in at most `rows` rows.
pub fn bucket_width(seconds: usize, rows: usize) -> usize {
    seconds.div_ceil(rows.max(1)).max(1)
}

/// Latency percentiles of one host's attempts, µs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitLatency {
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest.
    pub max: u64,
}

#[derive(Debug)]
struct HostTally {
    split: HostSplit,
    latency: hdrhistogram::Histogram<u64>,
    failover_cost_us: u64,
    failover_cost_us_max: u64,
}

/// Accumulates [`HostSplit`]s over a run.
#[derive(Debug, Default)]
pub struct SplitRecorder {
    hosts: BTreeMap<String, HostTally>,
}

impl SplitRecorder {
    fn tally(&mut self, host: &str) -> &mut HostTally {
        self.hosts
            .entry(host.to_owned())
            .or_insert_with(|| HostTally {
                split: HostSplit {
                    host: host.to_owned(),
                    ..HostSplit::default()
                },
                latency: hdrhistogram::Histogram::new(3).expect("3 significant figures are valid"),
                failover_cost_us: 0,
                failover_cost_us_max: 0,
            })
    }

    /// Records one attempt through discovery, its verdict's outcome and code, its latency
    /// from the intended start, and the second (from the run's start) it was due in.
    pub fn record(
        &mut self,
        d: &Discovered,
        outcome: Outcome,
        code: u32,
        total_us: u64,
        second: u64,
    ) {
        let second = usize::try_from(second)
            .unwrap_or(usize::MAX)
            .min(MAX_SECONDS);
        for t in &d.tried {
            self.tally(&t.host).split.failed_tries += 1;
        }
        let host = d
            .host
            .as_ref()
            .map_or_else(|| NO_HOST.to_owned(), |h| h.host());
        let tally = self.tally(&host);
        let s = &mut tally.split;
        s.attempts += 1;
        match outcome {
            Outcome::Activated => s.activated += 1,
            Outcome::NotActivated => s.not_activated += 1,
            Outcome::Failed => s.failed += 1,
        }
        *s.codes.entry(hresult::hex(code)).or_default() += 1;
        let _ = tally.latency.record(total_us.max(1));
        bump_at(&mut tally.split.per_second, second);
        if d.failed_over() {
            tally.split.failovers_in += 1;
            bump_at(&mut tally.split.failovers_per_second, second);
            let before = d.elapsed.saturating_sub(
                d.attempt
                    .as_ref()
                    .map(|a| a.times.total)
                    .unwrap_or_default(),
            );
            let before = u64::try_from(before.as_micros()).unwrap_or(u64::MAX);
            tally.failover_cost_us = tally.failover_cost_us.saturating_add(before);
            tally.failover_cost_us_max = tally.failover_cost_us_max.max(before);
        }
    }

    /// The splits, by host name ([`NO_HOST`] sorts first).
    pub fn finish(self) -> Vec<HostSplit> {
        self.hosts
            .into_values()
            .map(|mut t| {
                if !t.latency.is_empty() {
                    t.split.latency_us = Some(SplitLatency {
                        p50: t.latency.value_at_quantile(0.5),
                        p99: t.latency.value_at_quantile(0.99),
                        max: t.latency.max(),
                    });
                }
                t.split.failover_cost_us_mean =
                    t.failover_cost_us.checked_div(t.split.failovers_in);
                t.split.failover_cost_us_max =
                    (t.split.failovers_in > 0).then_some(t.failover_cost_us_max);
                t.split
            })
            .collect()
    }
}
