//! The per-second timeline: attempts started (by intended start) and completed, outcomes,
//! codes, in-flight samples, and the fault-free total-time histogram of each second.
//!
//! ```text
//! window (last 4 seconds seen, live histograms, reused) ──close oldest──► closed seconds
//!        record(s) with s in the window: O(1)                              (sparse histograms,
//!        s newer: open a slot, closing the oldest                           BTreeMap by second)
//!        s older than the window: straight into its closed second
//! ```
//!
//! A second's data is the sum of its window slot and its closed entry (a merge or a late
//! record can give a second both), so nothing is ever lost whatever order records come in,
//! and merging shards is exact. The in-flight gauge keeps the largest sample of each second;
//! merged shards add their gauges (an upper bound when shards peak at different moments).

use std::collections::{BTreeMap, BTreeSet};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::hist::{self, HIGHEST_US, SparseHist};
use super::{HexCode, Outcome, Tally};

/// Number of live seconds kept.
const WINDOW: usize = 4;

/// One second of the timeline.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TimelineRow {
    /// Seconds since the run start.
    pub second: u64,
    /// Attempts whose intended start fell in this second.
    pub started: u64,
    /// Attempts that completed in this second.
    pub completed: u64,
    /// Of those, activated.
    pub activated: u64,
    /// Of those, not activated.
    pub not_activated: u64,
    /// Of those, failed.
    pub failed: u64,
    /// Of those, touched by an injected fault.
    pub faulted: u64,
    /// Largest in-flight sample of the second, if the runner sampled it.
    pub in_flight: Option<u64>,
    /// Completions by HRESULT.
    pub by_code: BTreeMap<HexCode, u64>,
    /// Median total time of the fault-free attempts that completed in this second, µs.
    pub p50_us: Option<u64>,
    /// 99th percentile of the same, µs.
    pub p99_us: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct SecondCounts {
    completed: u64,
    outcomes: [u64; 3],
    faulted: u64,
    codes: Tally<u32>,
}

impl SecondCounts {
    fn add(&mut self, outcome: Outcome, code: u32, faulted: bool) {
        self.completed += 1;
        self.outcomes[outcome.index()] += 1;
        self.faulted += u64::from(faulted);
        self.codes.add(code, 1);
    }

    fn merge(&mut self, other: &Self) {
        self.completed += other.completed;
        for (a, b) in self.outcomes.iter_mut().zip(other.outcomes) {
            *a += b;
        }
        self.faulted += other.faulted;
        self.codes.merge(&other.codes);
    }
}

#[derive(Clone)]
struct Open {
    second: u64,
    counts: SecondCounts,
    hist: Histogram<u64>,
}

#[derive(Debug, Clone, Default)]
struct ClosedSecond {
    counts: SecondCounts,
    hist: SparseHist,
}

/// See the module docs.
#[derive(Clone, Default)]
pub(super) struct Timeline {
    window: Vec<Open>,
    closed: BTreeMap<u64, ClosedSecond>,
    started: BTreeMap<u64, u64>,
    started_last: Option<(u64, u64)>,
    in_flight: BTreeMap<u64, u64>,
}

impl Timeline {
    /// One completion in `second`; `clean_total` is the total time of a fault-free attempt.
    pub(super) fn record(
        &mut self,
        second: u64,
        outcome: Outcome,
        code: u32,
        faulted: bool,
        clean_total: Option<u64>,
    ) {
        let slot = match self.window.iter().rposition(|o| o.second == second) {
            Some(i) => Some(i),
            None => self.open_slot(second),
        };
        if let Some(i) = slot {
            let o = &mut self.window[i];
            o.counts.add(outcome, code, faulted);
            if let Some(t) = clean_total {
                o.hist.saturating_record(t);
            }
            return;
        }
        // Older than the window: the window is full, so window[0] exists to compute buckets.
        let bucket = clean_total
            .zip(self.window.first())
            .map(|(t, o)| o.hist.highest_equivalent(t.min(HIGHEST_US)));
        let c = self.closed.entry(second).or_default();
        c.counts.add(outcome, code, faulted);
        if let Some(b) = bucket {
            c.hist.merge(&SparseHist::single(b));
        }
    }

    /// One attempt whose intended start fell in `second`.
    pub(super) fn started(&mut self, second: u64) {
        match &mut self.started_last {
            Some((s, n)) if *s == second => *n += 1,
            last => {
                if let Some((s, n)) = last.replace((second, 1)) {
                    *self.started.entry(s).or_default() += n;
                }
            }
        }
    }

    /// An in-flight sample; the row keeps the largest of its second.
    pub(super) fn sample_in_flight(&mut self, second: u64, n: u64) {
        let v = self.in_flight.entry(second).or_default();
        *v = (*v).max(n);
    }

    /// Opens a window slot for `second` unless it is older than a full window.
    fn open_slot(&mut self, second: u64) -> Option<usize> {
        let full = self.window.len() >= WINDOW;
        if full && self.window.first().is_some_and(|o| second < o.second) {
            return None;
        }
        let mut pos = self.window.partition_point(|o| o.second < second);
        let hist = if full {
            // `second` is newer than window[0] (checked above), so pos >= 1.
            let mut old = self.window.remove(0);
            pos -= 1;
            let c = self.closed.entry(old.second).or_default();
            c.counts.merge(&old.counts);
            c.hist.merge(&SparseHist::from_hist(&old.hist));
            old.hist.reset();
            old.hist
        } else {
            hist::new_hist()
        };
        self.window.insert(
            pos,
            Open {
                second,
                counts: SecondCounts::default(),
                hist,
            },
        );
        Some(pos)
    }

    pub(super) fn merge(&mut self, other: &Self) {
        for o in &other.window {
            match self.window.iter_mut().find(|m| m.second == o.second) {
                Some(m) => {
                    m.counts.merge(&o.counts);
                    hist::add(&mut m.hist, &o.hist);
                }
                None => {
                    let c = self.closed.entry(o.second).or_default();
                    c.counts.merge(&o.counts);
                    c.hist.merge(&SparseHist::from_hist(&o.hist));
                }
            }
        }
        for (&s, theirs) in &other.closed {
            match self.window.iter_mut().find(|m| m.second == s) {
                Some(m) => {
                    m.counts.merge(&theirs.counts);
                    theirs.hist.add_to(&mut m.hist);
                }
                None => {
                    let c = self.closed.entry(s).or_default();
                    c.counts.merge(&theirs.counts);
                    c.hist.merge(&theirs.hist);
                }
            }
        }
        for (s, n) in other.started_counts() {
            *self.started.entry(s).or_default() += n;
        }
        for (&s, &n) in &other.in_flight {
            *self.in_flight.entry(s).or_default() += n;
        }
    }

    /// A timeline from its rows and per-second histograms as a results directory holds them
    /// (summary.json's `timeline`, timeline.hlog), every second moved `shift` seconds later.
    pub(super) fn restore(
        rows: &[TimelineRow],
        hists: &BTreeMap<u64, Histogram<u64>>,
        shift: u64,
    ) -> Self {
        let mut t = Self::default();
        for r in rows {
            let s = r.second + shift;
            if r.completed > 0 {
                let c = t.closed.entry(s).or_default();
                c.counts.completed += r.completed;
                c.counts.outcomes[0] += r.activated;
                c.counts.outcomes[1] += r.not_activated;
                c.counts.outcomes[2] += r.failed;
                c.counts.faulted += r.faulted;
                for (code, n) in &r.by_code {
                    c.counts.codes.add(code.0, *n);
                }
            }
            if r.started > 0 {
                *t.started.entry(s).or_default() += r.started;
            }
            if let Some(n) = r.in_flight {
                let v = t.in_flight.entry(s).or_default();
                *v = (*v).max(n);
            }
        }
        for (&second, h) in hists {
            t.closed
                .entry(second + shift)
                .or_default()
                .hist
                .merge(&SparseHist::from_hist(h));
        }
        t
    }

    fn started_counts(&self) -> BTreeMap<u64, u64> {
        let mut m = self.started.clone();
        if let Some((s, n)) = self.started_last {
            *m.entry(s).or_default() += n;
        }
        m
    }

    pub(super) fn completed_total(&self) -> u64 {
        self.window.iter().map(|o| o.counts.completed).sum::<u64>()
            + self
                .closed
                .values()
                .map(|c| c.counts.completed)
                .sum::<u64>()
    }

    pub(super) fn started_total(&self) -> u64 {
        self.started.values().sum::<u64>() + self.started_last.map_or(0, |(_, n)| n)
    }

    /// Counts and sparse histogram of `second`, window and closed parts combined.
    fn second(&self, second: u64) -> (SecondCounts, SparseHist) {
        let mut counts = SecondCounts::default();
        let mut sparse = SparseHist::default();
        if let Some(c) = self.closed.get(&second) {
            counts.merge(&c.counts);
            sparse.merge(&c.hist);
        }
        if let Some(o) = self.window.iter().find(|o| o.second == second) {
            counts.merge(&o.counts);
            sparse.merge(&SparseHist::from_hist(&o.hist));
        }
        (counts, sparse)
    }

    fn seconds(&self, started: &BTreeMap<u64, u64>) -> BTreeSet<u64> {
        let mut all: BTreeSet<u64> = self.closed.keys().copied().collect();
        all.extend(self.window.iter().map(|o| o.second));
        all.extend(started.keys());
        all.extend(self.in_flight.keys());
        all
    }

    /// p99 of the fault-free total time of the attempts that completed in `second`, µs.
    pub(super) fn p99_us(&self, second: u64) -> Option<u64> {
        self.second(second).1.value_at_quantile(0.99)
    }

    pub(super) fn rows(&self) -> Vec<TimelineRow> {
        let started = self.started_counts();
        self.seconds(&started)
            .into_iter()
            .map(|second| {
                let (c, sparse) = self.second(second);
                TimelineRow {
                    second,
                    started: started.get(&second).copied().unwrap_or(0),
                    completed: c.completed,
                    activated: c.outcomes[0],
                    not_activated: c.outcomes[1],
                    failed: c.outcomes[2],
                    faulted: c.faulted,
                    in_flight: self.in_flight.get(&second).copied(),
                    by_code: c
                        .codes
                        .sorted()
                        .into_iter()
                        .map(|(k, n)| (HexCode(k), n))
                        .collect(),
                    p50_us: sparse.value_at_quantile(0.5),
                    p99_us: sparse.value_at_quantile(0.99),
                }
            })
            .collect()
    }

    /// Calls `f(second, histogram)` for every second with fault-free latencies, in order,
    /// reusing one scratch histogram.
    pub(super) fn for_each_histogram<E>(
        &self,
        mut f: impl FnMut(u64, &Histogram<u64>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut scratch = hist::new_hist();
        let mut seconds: BTreeSet<u64> = self.closed.keys().copied().collect();
        seconds.extend(self.window.iter().map(|o| o.second));
        for s in seconds {
            scratch.reset();
            if let Some(c) = self.closed.get(&s) {
                c.hist.add_to(&mut scratch);
            }
            if let Some(o) = self.window.iter().find(|o| o.second == s) {
                hist::add(&mut scratch, &o.hist);
            }
            if !scratch.is_empty() {
                f(s, &scratch)?;
            }
        }
        Ok(())
    }
}

impl std::fmt::Debug for Timeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timeline")
            .field(
                "window",
                &self.window.iter().map(|o| o.second).collect::<Vec<_>>(),
            )
            .field("closed_seconds", &self.closed.len())
            .field("completed", &self.completed_total())
            .field("started", &self.started_total())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(t: &mut Timeline, second: u64, total: u64) {
        t.record(second, Outcome::Activated, 0, false, Some(total));
    }

    #[test]
    fn in_order_records_fill_rows() {
        let mut t = Timeline::default();
        for s in 0..10u64 {
            for k in 0..=s {
                rec(&mut t, s, 1000 * (k + 1));
                t.started(s);
            }
            t.record(s, Outcome::Failed, 0x8007_274D, true, None);
            t.sample_in_flight(s, s);
            t.sample_in_flight(s, 2 * s);
        }
        let rows = t.rows();
        assert_eq!(rows.len(), 10);
        let r = &rows[3];
        assert_eq!(
            (
                r.second,
                r.started,
                r.completed,
                r.activated,
                r.failed,
                r.faulted
            ),
            (3, 4, 5, 4, 1, 1)
        );
        assert_eq!(r.in_flight, Some(6));
        assert_eq!(r.by_code.get(&HexCode(0)), Some(&4));
        assert_eq!(r.by_code.get(&HexCode(0x8007_274D)), Some(&1));
        // Above 2048 µs buckets are 2 µs wide: 4000 reads as its bucket's top, 4001.
        assert_eq!((r.p50_us, r.p99_us), (Some(2000), Some(4001)));
        assert_eq!(t.completed_total(), (1..=10).sum::<u64>() + 10);
        assert_eq!(t.started_total(), (1..=10).sum::<u64>());
    }

    #[test]
    fn late_and_out_of_order_records_land_in_their_second() {
        let mut inorder = Timeline::default();
        let mut shuffled = Timeline::default();
        let events: Vec<(u64, u64)> = (0..200u64).map(|i| (i % 20, 100 + i * 37 % 900)).collect();
        for &(s, v) in &events {
            rec(&mut inorder, s, v);
        }
        // Far-from-sorted order: seconds 19, 0, 18, 1, ... so most records are "late".
        let mut order: Vec<usize> = (0..events.len()).collect();
        order.sort_by_key(|&i| (events[i].0.is_multiple_of(2), events[i].0 * 7919 % 23, i));
        for i in order {
            rec(&mut shuffled, events[i].0, events[i].1);
        }
        assert_eq!(inorder.rows(), shuffled.rows());
    }

    #[test]
    fn merge_equals_one_timeline() {
        let mut all = Timeline::default();
        let (mut a, mut b) = (Timeline::default(), Timeline::default());
        for i in 0..300u64 {
            let s = i / 10 + (i % 7) / 3; // slightly out of order
            let v = 50 + (i * 131) % 5000;
            rec(&mut all, s, v);
            all.started(i / 10);
            let part = if i % 3 == 0 { &mut a } else { &mut b };
            rec(part, s, v);
            part.started(i / 10);
        }
        all.sample_in_flight(4, 9);
        a.sample_in_flight(4, 9);
        let mut ab = a.clone();
        ab.merge(&b);
        let mut ba = b.clone();
        ba.merge(&a);
        assert_eq!(ab.rows(), all.rows());
        assert_eq!(ba.rows(), all.rows());
        let mut n = 0;
        ab.for_each_histogram(|_, h| {
            n += h.len();
            Ok::<_, ()>(())
        })
        .ok();
        assert_eq!(n, 300);
    }

    #[test]
    fn in_flight_only_seconds_have_rows() {
        let mut t = Timeline::default();
        t.sample_in_flight(7, 3);
        let rows = t.rows();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (
                rows[0].second,
                rows[0].completed,
                rows[0].in_flight,
                rows[0].p50_us
            ),
            (7, 0, Some(3), None)
        );
    }
}
