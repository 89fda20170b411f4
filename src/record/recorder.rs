//! [`Recorder`]: takes one [`AttemptRecord`] per attempt and keeps every figure a run
//! reports; merges with other recorders (shards) exactly.
//!
//! Per record, with no allocation once every key has been seen: a few counters, small
//! linear tallies, up to 8 histogram updates (outcome set and product set), a timeline slot,
//! a CMID map update for answered attempts, and one string comparison for the ePID.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use super::hist::PhaseSet;
use super::hosts::HostTracker;
use super::summary::{
    ByOutcome, FaultSummary, LatencySummary, PhaseLatency, ProductSummary, Summary,
};
use super::tally::Tally;
use super::threshold::{PoolTracker, ThresholdSummary};
use super::timeline::{Timeline, TimelineRow};
use super::{Application, AttemptRecord, HexCode, LatencyPhase, Outcome};
use crate::catalog::products;

/// A broken accounting identity: some attempt was counted twice or not at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvariantError {
    /// `attempts != activated + not_activated + failed`.
    #[error("{attempts} attempts but activated + not_activated + failed = {sum}")]
    Outcomes {
        /// Attempts recorded.
        attempts: u64,
        /// Sum of the outcome counts.
        sum: u64,
    },
    /// `attempts != Σ by_code`.
    #[error("{attempts} attempts but the by_code counts sum to {sum}")]
    Codes {
        /// Attempts recorded.
        attempts: u64,
        /// Sum of the code counts.
        sum: u64,
    },
    /// `attempts != Σ per-product attempts`.
    #[error("{attempts} attempts but the per-product counts sum to {sum}")]
    Products {
        /// Attempts recorded.
        attempts: u64,
        /// Sum of the product counts.
        sum: u64,
    },
    /// A timeline column does not sum to `attempts`.
    #[error("{attempts} attempts but the timeline's {column} column sums to {sum}")]
    Timeline {
        /// Attempts recorded.
        attempts: u64,
        /// `completed` or `started`.
        column: &'static str,
        /// Sum of the column.
        sum: u64,
    },
    /// Faulted attempts disagree with the per-fault table.
    #[error("{faulted} faulted attempts but the per-fault counts sum to {sum}")]
    Faults {
        /// Attempts with a fault tag.
        faulted: u64,
        /// Sum of the per-fault counts.
        sum: u64,
    },
}

#[derive(Debug, Clone, Default)]
pub(super) struct Counts {
    pub(super) attempts: u64,
    pub(super) outcomes: [u64; 3],
    pub(super) codes: Tally<u32>,
}

impl Counts {
    fn add(&mut self, outcome: Outcome, code: u32) {
        self.attempts += 1;
        self.outcomes[outcome.index()] += 1;
        self.codes.add(code, 1);
    }

    fn merge(&mut self, other: &Self) {
        self.attempts += other.attempts;
        for (a, b) in self.outcomes.iter_mut().zip(other.outcomes) {
            *a += b;
        }
        self.codes.merge(&other.codes);
    }

    fn by_outcome(&self) -> ByOutcome<u64> {
        ByOutcome::from_array(self.outcomes)
    }

    fn by_code(&self) -> BTreeMap<HexCode, u64> {
        self.codes
            .sorted()
            .into_iter()
            .map(|(k, n)| (HexCode(k), n))
            .collect()
    }
}

#[derive(Debug, Clone, Default)]
pub(super) struct ProductStats {
    pub(super) counts: Counts,
    pub(super) faulted: u64,
    pub(super) clean: PhaseSet,
}

#[derive(Debug, Clone)]
pub(super) struct FaultStats {
    pub(super) fault: &'static str,
    pub(super) counts: Counts,
}

/// Collects a run's measurements. See the [module docs](super).
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    pub(super) counts: Counts,
    pub(super) causes: Tally<&'static str>,
    pub(super) faulted: u64,
    /// Fault-free latencies by outcome.
    pub(super) clean: [PhaseSet; 3],
    /// Latencies of faulted attempts by outcome.
    pub(super) dirty: [PhaseSet; 3],
    /// Indexed by product index; grown on demand (at most 65536 slots).
    pub(super) products: Vec<Option<Box<ProductStats>>>,
    pub(super) faults: Vec<FaultStats>,
    pub(super) timeline: Timeline,
    pub(super) pools: [PoolTracker; 3],
    pub(super) hosts: HostTracker,
}

impl Recorder {
    /// An empty recorder. Histograms are allocated when their first value arrives.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one attempt that completed `second` seconds after the run start.
    pub fn record(&mut self, rec: &AttemptRecord, second: u64) {
        let o = rec.outcome.index();
        self.counts.add(rec.outcome, rec.code);
        if let Some(c) = rec.cause {
            self.causes.add(c, 1);
        }
        let faulted = rec.fault.is_some();
        if let Some(f) = rec.fault {
            self.faulted += 1;
            self.dirty[o].record(&rec.latency);
            match self.faults.iter_mut().find(|s| s.fault == f) {
                Some(s) => s.counts.add(rec.outcome, rec.code),
                None => {
                    let mut counts = Counts::default();
                    counts.add(rec.outcome, rec.code);
                    self.faults.push(FaultStats { fault: f, counts });
                }
            }
        } else {
            self.clean[o].record(&rec.latency);
        }

        let p = self.product_mut(rec.product);
        p.counts.add(rec.outcome, rec.code);
        if faulted {
            p.faulted += 1;
        } else {
            p.clean.record(&rec.latency);
        }

        let clean_total = if faulted { None } else { rec.latency.total_us };
        self.timeline
            .record(second, rec.outcome, rec.code, faulted, clean_total);
        self.timeline.started(rec.intended_start_us / 1_000_000);

        self.observe_threshold(rec);
        self.hosts.observe(
            rec.host,
            rec.pool,
            rec.epid.as_deref(),
            rec.hwid,
            rec.attempt,
        );
    }

    /// The runner's in-flight gauge for `second`; the timeline keeps the largest sample.
    pub fn sample_in_flight(&mut self, second: u64, in_flight: u64) {
        self.timeline.sample_in_flight(second, in_flight);
    }

    pub(super) fn product_mut(&mut self, product: u16) -> &mut ProductStats {
        let i = usize::from(product);
        if self.products.len() <= i {
            self.products.resize_with(i + 1, || None);
        }
        self.products[i].get_or_insert_with(Box::default)
    }

    /// Adds everything `other` recorded, as if its attempts had been recorded here.
    pub fn merge(&mut self, other: &Self) {
        self.counts.merge(&other.counts);
        self.causes.merge(&other.causes);
        self.faulted += other.faulted;
        for (a, b) in self.clean.iter_mut().zip(&other.clean) {
            a.merge(b);
        }
        for (a, b) in self.dirty.iter_mut().zip(&other.dirty) {
            a.merge(b);
        }
        for (i, theirs) in other.products.iter().enumerate() {
            if let Some(t) = theirs {
                // `other.products` has at most 65536 slots, so `i` fits a u16.
                let p = self.product_mut(i as u16);
                p.counts.merge(&t.counts);
                p.faulted += t.faulted;
                p.clean.merge(&t.clean);
            }
        }
        for f in &other.faults {
            match self.faults.iter_mut().find(|s| s.fault == f.fault) {
                Some(s) => s.counts.merge(&f.counts),
                None => self.faults.push(f.clone()),
            }
        }
        self.timeline.merge(&other.timeline);
        for (a, b) in self.pools.iter_mut().zip(&other.pools) {
            a.merge(b);
        }
        self.hosts.merge(&other.hosts);
    }

    /// Checks that every attempt was counted exactly once in every table.
    ///
    /// # Errors
    /// The first [`InvariantError`] found.
    pub fn invariant_check(&self) -> Result<(), InvariantError> {
        let attempts = self.counts.attempts;
        let sum = self.counts.outcomes.iter().sum();
        if sum != attempts {
            return Err(InvariantError::Outcomes { attempts, sum });
        }
        let sum = self.counts.codes.total();
        if sum != attempts {
            return Err(InvariantError::Codes { attempts, sum });
        }
        let sum = self
            .products
            .iter()
            .flatten()
            .map(|p| p.counts.attempts)
            .sum();
        if sum != attempts {
            return Err(InvariantError::Products { attempts, sum });
        }
        let sum = self.timeline.completed_total();
        if sum != attempts {
            return Err(InvariantError::Timeline {
                attempts,
                column: "completed",
                sum,
            });
        }
        let sum = self.timeline.started_total();
        if sum != attempts {
            return Err(InvariantError::Timeline {
                attempts,
                column: "started",
                sum,
            });
        }
        let sum = self.faults.iter().map(|f| f.counts.attempts).sum();
        if sum != self.faulted {
            return Err(InvariantError::Faults {
                faulted: self.faulted,
                sum,
            });
        }
        Ok(())
    }

    /// Attempts recorded.
    pub fn attempts(&self) -> u64 {
        self.counts.attempts
    }

    /// Attempts with `outcome`.
    pub fn outcome_count(&self, outcome: Outcome) -> u64 {
        self.counts.outcomes[outcome.index()]
    }

    /// Attempts that ended with HRESULT `code`.
    pub fn code_count(&self, code: u32) -> u64 {
        self.counts.codes.get(code)
    }

    /// The histogram of `phase` for `outcome`, of fault-free attempts or (`faulted`) of the
    /// attempts a fault touched; `None` when empty.
    pub fn histogram(
        &self,
        phase: LatencyPhase,
        outcome: Outcome,
        faulted: bool,
    ) -> Option<&Histogram<u64>> {
        let set = if faulted { &self.dirty } else { &self.clean };
        set[outcome.index()].get(phase)
    }

    /// The fault-free histogram of `phase` for one product (all outcomes).
    pub fn product_histogram(&self, product: u16, phase: LatencyPhase) -> Option<&Histogram<u64>> {
        self.products
            .get(usize::from(product))?
            .as_ref()?
            .clean
            .get(phase)
    }

    /// Fault-free histogram of `phase` over all outcomes (a new histogram).
    pub fn combined_histogram(&self, phase: LatencyPhase, faulted: bool) -> Option<Histogram<u64>> {
        let mut acc = PhaseSet::default();
        for s in if faulted { &self.dirty } else { &self.clean } {
            acc.merge(s);
        }
        acc.get(phase).cloned()
    }

    /// The threshold figures of `pool`, or `None` when no answer came from it.
    pub fn threshold(&self, pool: Application) -> Option<ThresholdSummary> {
        self.pools[pool.index()].summary()
    }

    /// True when a host showed more than one ePID or HwID for a pool.
    pub fn hosts_changed(&self) -> bool {
        self.hosts.changed()
    }

    /// p99 of the fault-free total time of the attempts that completed in timeline second
    /// `second`, µs; `None` when none did. The live progress shows the last whole second's.
    pub fn second_p99_us(&self, second: u64) -> Option<u64> {
        self.timeline.p99_us(second)
    }

    /// The per-second timeline, by second.
    pub fn timeline(&self) -> Vec<TimelineRow> {
        self.timeline.rows()
    }

    pub(super) fn timeline_parts(&self) -> &Timeline {
        &self.timeline
    }

    /// Calls `f(tag, histogram)` for every non-empty whole-run histogram: `"<phase>"` (fault-
    /// free, all outcomes), `"<phase>.<outcome>"`, `"faulted.<phase>"`,
    /// `"faulted.<phase>.<outcome>"`, and `"product.<catalog index>.<phase>"` (fault-free).
    pub(super) fn for_each_run_histogram<E>(
        &self,
        mut f: impl FnMut(&str, &Histogram<u64>) -> Result<(), E>,
    ) -> Result<(), E> {
        for (prefix, sets) in [("", &self.clean), ("faulted.", &self.dirty)] {
            let mut all = PhaseSet::default();
            for s in sets {
                all.merge(s);
            }
            for phase in LatencyPhase::ALL {
                if let Some(h) = all.get(phase) {
                    f(&format!("{prefix}{}", phase.as_str()), h)?;
                }
                for outcome in Outcome::ALL {
                    if let Some(h) = sets[outcome.index()].get(phase) {
                        f(
                            &format!("{prefix}{}.{}", phase.as_str(), outcome.as_str()),
                            h,
                        )?;
                    }
                }
            }
        }
        for (i, p) in self.products.iter().enumerate() {
            if let Some(p) = p {
                for phase in LatencyPhase::ALL {
                    if let Some(h) = p.clean.get(phase) {
                        f(&format!("product.{i}.{}", phase.as_str()), h)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The run summary (`summary.json`).
    pub fn summary(&self) -> Summary {
        let latency = |set: &PhaseSet| PhaseLatency {
            connect: set.get(LatencyPhase::Connect).and_then(LatencySummary::of),
            bind: set.get(LatencyPhase::Bind).and_then(LatencySummary::of),
            request: set.get(LatencyPhase::Request).and_then(LatencySummary::of),
            total: set.get(LatencyPhase::Total).and_then(LatencySummary::of),
        };
        let combined = |sets: &[PhaseSet; 3]| {
            let mut acc = PhaseSet::default();
            for s in sets {
                acc.merge(s);
            }
            latency(&acc)
        };
        let catalog = products();
        let mut faults: Vec<FaultSummary> = self
            .faults
            .iter()
            .map(|f| FaultSummary {
                fault: f.fault.to_owned(),
                attempts: f.counts.attempts,
                by_outcome: f.counts.by_outcome(),
                by_code: f.counts.by_code(),
            })
            .collect();
        faults.sort_by(|a, b| a.fault.cmp(&b.fault));
        Summary {
            attempts: self.counts.attempts,
            by_outcome: self.counts.by_outcome(),
            by_code: self.counts.by_code(),
            by_cause: self
                .causes
                .sorted()
                .into_iter()
                .map(|(c, n)| (c.to_owned(), n))
                .collect(),
            latency_us: combined(&self.clean),
            latency_us_by_outcome: ByOutcome::from_array(self.clean.each_ref().map(latency)),
            latency_us_faulted: combined(&self.dirty),
            faulted_attempts: self.faulted,
            threshold: Application::ALL
                .into_iter()
                .filter_map(|p| Some((p, self.pools[p.index()].summary()?)))
                .collect(),
            hosts: self.hosts.summary(),
            hosts_changed: self.hosts.changed(),
            products: self
                .products
                .iter()
                .enumerate()
                .filter_map(|(i, p)| {
                    let p = p.as_ref()?;
                    Some(ProductSummary {
                        // At most 65536 slots (u16 indices).
                        index: i as u16,
                        name: catalog.get(i).map(|p| p.name.clone()),
                        attempts: p.counts.attempts,
                        by_outcome: p.counts.by_outcome(),
                        by_code: p.counts.by_code(),
                        faulted_attempts: p.faulted,
                        latency_us: latency(&p.clean),
                    })
                })
                .collect(),
            faults,
        }
    }

    /// Attempts that fed the threshold tracker of `pool`.
    pub fn pool_answers(&self, pool: Application) -> u64 {
        self.pools[pool.index()].answers()
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::record::Latencies;
    use crate::wire::base::Version;

    const NOT_ENOUGH: u32 = 0xC004_F038;
    const REFUSED: u32 = 0x8007_274D;
    const EPID: &str = "03612-00206-568-579566-03-1033-17763.0000-2062020";

    fn record(attempt: u64) -> AttemptRecord {
        AttemptRecord {
            attempt,
            client_index: attempt,
            intended_start_us: attempt * 10_000,
            cmid: Uuid::from_u64_pair(0x1234_5678_9ABC_4DEF, 0x8000_0000_0000_0000 | attempt),
            product: 5,
            protocol: Version::V6,
            latency: Latencies {
                connect_us: Some(200 + attempt % 50),
                bind_us: Some(300),
                request_us: Some(1000 + attempt % 700),
                total_us: Some(1600 + attempt % 900),
            },
            outcome: Outcome::Activated,
            code: 0,
            cause: None,
            fault: None,
            reported_count: Some(50),
            pool: Application::Windows,
            required: 25,
            host: 0,
            epid: Some(EPID.to_owned()),
            hwid: Some([0x3A, 0x1C, 0x04, 0x96, 0x00, 0xB6, 0x00, 0x76]),
        }
    }

    fn failed(attempt: u64) -> AttemptRecord {
        AttemptRecord {
            outcome: Outcome::Failed,
            code: REFUSED,
            cause: Some("connect refused"),
            latency: Latencies {
                connect_us: Some(90),
                total_us: Some(95),
                ..Latencies::default()
            },
            reported_count: None,
            epid: None,
            hwid: None,
            ..record(attempt)
        }
    }

    #[test]
    fn counts_add_up_and_codes_are_hex() {
        let mut r = Recorder::new();
        r.record(&record(0), 0);
        r.record(&failed(1), 0);
        let mut low = record(2);
        low.outcome = Outcome::NotActivated;
        low.code = NOT_ENOUGH;
        low.reported_count = Some(3);
        r.record(&low, 1);
        assert_eq!(r.invariant_check(), Ok(()));
        let s = r.summary();
        assert_eq!(s.attempts, 3);
        assert_eq!(
            s.by_outcome,
            ByOutcome {
                activated: 1,
                not_activated: 1,
                failed: 1
            }
        );
        let json = serde_json::to_value(&s).expect("serializes");
        assert_eq!(json["by_code"]["0x00000000"], 1);
        assert_eq!(json["by_code"]["0xC004F038"], 1);
        assert_eq!(json["by_code"]["0x8007274D"], 1);
        assert_eq!(json["by_cause"]["connect refused"], 1);
        assert_eq!(json["latency_us"]["total"]["count"], 3);
        assert!(json["latency_us"]["total"]["p999"].is_u64());
        assert_eq!(
            json["latency_us_by_outcome"]["failed"]["bind"],
            serde_json::Value::Null
        );
        assert_eq!(json["threshold"]["windows"]["required"], 25);
        assert_eq!(json["products"][0]["attempts"], 3);
        assert!(json["products"][0]["name"].is_string());
        assert_eq!(r.code_count(REFUSED), 1);
        assert_eq!(r.outcome_count(Outcome::NotActivated), 1);
    }

    #[test]
    fn phases_that_did_not_happen_are_not_recorded() {
        let mut r = Recorder::new();
        r.record(&failed(0), 0);
        assert!(
            r.histogram(LatencyPhase::Bind, Outcome::Failed, false)
                .is_none()
        );
        assert_eq!(
            r.histogram(LatencyPhase::Connect, Outcome::Failed, false)
                .map(Histogram::len),
            Some(1)
        );
        assert!(
            r.histogram(LatencyPhase::Connect, Outcome::Activated, false)
                .is_none()
        );
        assert_eq!(r.summary().latency_us.bind, None);
    }

    #[test]
    fn faulted_attempts_do_not_touch_clean_latency() {
        let mut clean_only = Recorder::new();
        let mut mixed = Recorder::new();
        for a in 0..100 {
            clean_only.record(&record(a), a / 10);
            mixed.record(&record(a), a / 10);
        }
        for a in 100..150 {
            let mut rec = record(a);
            rec.fault = Some("delay");
            rec.latency.total_us = Some(5_000_000);
            mixed.record(&rec, a / 10);
            let mut rec = failed(a + 100);
            rec.fault = Some("reset");
            rec.code = 0x8007_2746;
            mixed.record(&rec, a / 10);
        }
        assert_eq!(mixed.invariant_check(), Ok(()));
        let (c, m) = (clean_only.summary(), mixed.summary());
        assert_eq!(m.latency_us, c.latency_us);
        assert_eq!(
            m.latency_us_by_outcome.activated,
            c.latency_us_by_outcome.activated
        );
        assert_eq!(m.products[0].latency_us, c.products[0].latency_us);
        assert_eq!(m.faulted_attempts, 100);
        assert_eq!(m.latency_us_faulted.total.map(|l| l.count), Some(100));
        assert_eq!(
            m.latency_us_faulted.total.map(|l| l.max >= 5_000_000),
            Some(true)
        );
        assert_eq!(m.faults.len(), 2);
        assert_eq!(m.faults[0].fault, "delay");
        assert_eq!(m.faults[1].by_code.get(&HexCode(0x8007_2746)), Some(&50));
        // Per-second percentiles also use fault-free attempts only: seconds 10..15 hold only
        // faulted attempts and have none; seconds 0..10 match the clean run.
        let (tc, tm) = (clean_only.timeline(), mixed.timeline());
        for s in 0..10 {
            assert_eq!((tm[s].p50_us, tm[s].p99_us), (tc[s].p50_us, tc[s].p99_us));
        }
        assert_eq!(
            (tm[12].p50_us, tm[12].faulted, tm[12].completed),
            (None, 20, 20)
        );
    }

    #[test]
    fn threshold_sentence_through_the_recorder() {
        let mut r = Recorder::new();
        for i in 0..60u64 {
            let count = (i + 1).min(50) as u32;
            let mut rec = record(i);
            rec.reported_count = Some(count);
            if count < 25 {
                rec.outcome = Outcome::NotActivated;
                rec.code = NOT_ENOUGH;
            }
            r.record(&rec, i / 10);
        }
        let t = r.threshold(Application::Windows).expect("windows answered");
        assert_eq!(
            t.sentence(),
            "activation began after 25 distinct clients; count capped at 50"
        );
        assert_eq!(r.threshold(Application::Office2013), None);
        assert_eq!(r.pool_answers(Application::Windows), 60);
        let json = serde_json::to_value(r.summary()).expect("serializes");
        let w = &json["threshold"]["windows"];
        assert_eq!(
            (
                w["first_activation_after_clients"].as_u64(),
                w["max_count"].as_u64()
            ),
            (Some(25), Some(50))
        );
        assert_eq!(w["final_count"], 50);
    }

    #[test]
    fn failed_attempts_do_not_feed_the_threshold() {
        let mut r = Recorder::new();
        r.record(&failed(0), 0);
        assert_eq!(r.threshold(Application::Windows), None);
    }

    #[test]
    fn host_changes_are_flagged() {
        let mut r = Recorder::new();
        r.record(&record(0), 0);
        r.record(&record(1), 0);
        assert!(!r.hosts_changed());
        let mut rec = record(2);
        rec.epid = Some("05426-00206-271-392058-03-1033-9200.0000-1762017".into());
        r.record(&rec, 0);
        assert!(r.hosts_changed());
        let s = r.summary();
        assert!(s.hosts_changed);
        assert_eq!(s.hosts[0].epids.len(), 2);
    }

    #[test]
    fn merge_equals_recording_everything_in_one() {
        let recs: Vec<(AttemptRecord, u64)> = (0..400u64)
            .map(|a| {
                let mut rec = if a % 7 == 0 { failed(a) } else { record(a) };
                rec.product = (a % 3) as u16 * 40;
                rec.pool = Application::ALL[(a % 3) as usize];
                rec.reported_count = rec.reported_count.map(|_| (a / 3 + 1).min(10) as u32);
                if a % 11 == 0 {
                    rec.fault = Some(if a % 2 == 0 { "stall" } else { "corrupt" });
                }
                (rec, a / 37 + a % 3)
            })
            .collect();
        let mut all = Recorder::new();
        let mut parts = [Recorder::new(), Recorder::new(), Recorder::new()];
        for (i, (rec, s)) in recs.iter().enumerate() {
            all.record(rec, *s);
            parts[i * 7 % 3].record(rec, *s);
        }
        all.sample_in_flight(3, 12);
        parts[1].sample_in_flight(3, 12);
        let mut merged = Recorder::new();
        for p in &parts {
            merged.merge(p);
        }
        let mut reversed = Recorder::new();
        for p in parts.iter().rev() {
            reversed.merge(p);
        }
        assert_eq!(merged.invariant_check(), Ok(()));
        assert_eq!(merged.summary(), all.summary());
        assert_eq!(reversed.summary(), all.summary());
        assert_eq!(merged.timeline(), all.timeline());
        for phase in LatencyPhase::ALL {
            for outcome in Outcome::ALL {
                for faulted in [false, true] {
                    let (a, b) = (
                        all.histogram(phase, outcome, faulted),
                        merged.histogram(phase, outcome, faulted),
                    );
                    assert_eq!(
                        a.map(|h| (h.len(), h.max(), h.mean().to_bits())),
                        b.map(|h| (h.len(), h.max(), h.mean().to_bits()))
                    );
                }
            }
        }
    }

    #[test]
    fn invariant_violations_are_reported() {
        let mut r = Recorder::new();
        r.record(&record(0), 0);
        let good = r.clone();
        r.counts.outcomes[0] += 1;
        assert_eq!(
            r.invariant_check(),
            Err(InvariantError::Outcomes {
                attempts: 1,
                sum: 2
            })
        );
        let mut r = good.clone();
        r.counts.codes.add(7, 1);
        assert_eq!(
            r.invariant_check(),
            Err(InvariantError::Codes {
                attempts: 1,
                sum: 2
            })
        );
        let mut r = good.clone();
        r.products.clear();
        assert_eq!(
            r.invariant_check(),
            Err(InvariantError::Products {
                attempts: 1,
                sum: 0
            })
        );
        let mut r = good.clone();
        r.timeline.record(9, Outcome::Activated, 0, false, None);
        assert_eq!(
            r.invariant_check(),
            Err(InvariantError::Timeline {
                attempts: 1,
                column: "completed",
                sum: 2
            })
        );
        let mut r = good.clone();
        r.timeline.started(4);
        assert_eq!(
            r.invariant_check(),
            Err(InvariantError::Timeline {
                attempts: 1,
                column: "started",
                sum: 2
            })
        );
        let mut r = good;
        r.faulted = 1;
        assert_eq!(
            r.invariant_check(),
            Err(InvariantError::Faults { faulted: 1, sum: 0 })
        );
        assert_eq!(
            InvariantError::Codes {
                attempts: 3,
                sum: 2
            }
            .to_string(),
            "3 attempts but the by_code counts sum to 2"
        );
    }

    #[test]
    fn combined_and_product_histograms() {
        let mut r = Recorder::new();
        r.record(&record(0), 0);
        r.record(&failed(1), 0);
        assert_eq!(
            r.combined_histogram(LatencyPhase::Total, false)
                .map(|h| h.len()),
            Some(2)
        );
        assert_eq!(
            r.combined_histogram(LatencyPhase::Total, true)
                .map(|h| h.len()),
            None
        );
        assert_eq!(
            r.product_histogram(5, LatencyPhase::Connect)
                .map(Histogram::len),
            Some(2)
        );
        assert!(r.product_histogram(6, LatencyPhase::Connect).is_none());
        assert!(
            r.product_histogram(u16::MAX, LatencyPhase::Connect)
                .is_none()
        );
        let mut big = record(2);
        big.product = u16::MAX;
        r.record(&big, 0);
        assert_eq!(
            r.summary()
                .products
                .last()
                .map(|p| (p.index, p.name.clone())),
            Some((u16::MAX, None))
        );
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;
    use uuid::Uuid;

    use super::*;
    use crate::record::Latencies;
    use crate::wire::base::Version;

    const CODES: [u32; 4] = [0, 0xC004_F038, 0xC004_F042, 0x8007_274D];
    const FAULTS: [Option<&str>; 3] = [None, Some("reset"), Some("delay")];
    const EPIDS: [Option<&str>; 3] = [None, Some("epid-a"), Some("epid-b")];

    /// One arbitrary attempt; `attempt` is set from its position.
    #[allow(clippy::type_complexity)]
    fn arb_record() -> impl Strategy<Value = (AttemptRecord, u64)> {
        (
            (
                0usize..3,
                0usize..4,
                0u16..3,
                0usize..3,
                proptest::option::of(0u32..60),
            ),
            (0usize..3, 0u64..12, 0u64..40, 0usize..3, 0u32..2),
            proptest::array::uniform4(proptest::option::of(0u64..3_000_000)),
        )
            .prop_map(
                |((o, c, product, pool, count), (fault, second, cmid, epid, n), lat)| {
                    let rec = AttemptRecord {
                        attempt: 0,
                        client_index: cmid,
                        intended_start_us: second * 900_000,
                        cmid: Uuid::from_u64_pair(cmid, 7),
                        product,
                        protocol: Version::V6,
                        latency: Latencies {
                            connect_us: lat[0],
                            bind_us: lat[1],
                            request_us: lat[2],
                            total_us: lat[3],
                        },
                        outcome: Outcome::ALL[o],
                        code: CODES[c],
                        cause: (o == 2).then_some("timeout"),
                        fault: FAULTS[fault],
                        reported_count: count,
                        pool: Application::ALL[pool],
                        required: [5, 25][n as usize],
                        host: product % 2,
                        epid: EPIDS[epid].map(str::to_owned),
                        hwid: (epid == 1).then_some([1; 8]),
                    };
                    (rec, second)
                },
            )
    }

    fn arb_run() -> impl Strategy<Value = (Vec<(AttemptRecord, u64)>, Vec<usize>)> {
        proptest::collection::vec(arb_record(), 0..120).prop_flat_map(|recs| {
            let n = recs.len();
            (Just(recs), proptest::collection::vec(0usize..3, n))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn invariants_hold_and_merge_is_exact_and_order_independent((recs, shard) in arb_run()) {
            let mut all = Recorder::new();
            let mut parts = [Recorder::new(), Recorder::new(), Recorder::new()];
            for (i, (rec, second)) in recs.iter().enumerate() {
                let mut rec = rec.clone();
                rec.attempt = i as u64;
                all.record(&rec, *second);
                parts[shard[i]].record(&rec, *second);
            }
            prop_assert_eq!(all.invariant_check(), Ok(()));
            let s = all.summary();
            prop_assert_eq!(s.attempts, recs.len() as u64);
            prop_assert_eq!(s.by_outcome.total(), s.attempts);
            prop_assert_eq!(s.by_code.values().sum::<u64>(), s.attempts);
            prop_assert_eq!(s.products.iter().map(|p| p.attempts).sum::<u64>(), s.attempts);
            prop_assert_eq!(s.faults.iter().map(|f| f.attempts).sum::<u64>(), s.faulted_attempts);
            let rows = all.timeline();
            prop_assert_eq!(rows.iter().map(|r| r.completed).sum::<u64>(), s.attempts);
            prop_assert_eq!(rows.iter().map(|r| r.started).sum::<u64>(), s.attempts);

            let mut forward = Recorder::new();
            for p in &parts {
                forward.merge(p);
            }
            let mut backward = parts[2].clone();
            backward.merge(&parts[0]);
            backward.merge(&parts[1]);
            prop_assert_eq!(forward.invariant_check(), Ok(()));
            prop_assert_eq!(backward.invariant_check(), Ok(()));
            prop_assert_eq!(&forward.summary(), &s);
            prop_assert_eq!(&backward.summary(), &s);
            prop_assert_eq!(forward.timeline(), rows.clone());
            prop_assert_eq!(backward.timeline(), rows);
        }
    }
}
