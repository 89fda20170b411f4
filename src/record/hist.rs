//! Histogram plumbing: one configuration for every latency histogram, sets of four phase
//! histograms allocated on first use, and a sparse form for closed timeline seconds.
//!
//! ```text
//! range 1 µs ..= 3_600_000_000 µs (1 h), 3 significant digits, u64 counts
//! 2048 sub-buckets × 22 buckets → 23_552 counters ≈ 184 KiB per histogram
//! values above 1 h are clamped to 1 h (a run's deadlines are far below)
//! ```
//!
//! Every histogram of a recorder has the same bounds, so adding one to another cannot fail;
//! [`add`] still falls back to re-recording values if it ever did.

use hdrhistogram::Histogram;

use super::{Latencies, LatencyPhase};

/// Lowest discernible value, µs.
pub const LOWEST_US: u64 = 1;
/// Highest trackable value, µs (one hour); larger values are clamped to it.
pub const HIGHEST_US: u64 = 3_600_000_000;
/// Significant decimal digits kept.
pub const SIGFIG: u8 = 3;

/// A histogram with the recorder's bounds.
pub(super) fn new_hist() -> Histogram<u64> {
    // Constant, valid bounds (low >= 1, high >= 2 * low, sigfig <= 5): creation cannot fail.
    Histogram::new_with_bounds(LOWEST_US, HIGHEST_US, SIGFIG).expect("constant histogram bounds")
}

/// `dst += src`.
pub(super) fn add(dst: &mut Histogram<u64>, src: &Histogram<u64>) {
    if dst.add(src).is_err() {
        // Only possible with different bounds, which this module never creates.
        for v in src.iter_recorded() {
            dst.saturating_record_n(v.value_iterated_to(), v.count_at_value());
        }
    }
}

/// Percentile summary of one histogram, µs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct LatencySummary {
    /// Number of values.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest value (to histogram precision).
    pub max: u64,
}

impl LatencySummary {
    /// The summary of `h`, or `None` when it is empty.
    pub fn of(h: &Histogram<u64>) -> Option<Self> {
        (!h.is_empty()).then(|| Self {
            count: h.len(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        })
    }
}

/// Connect, bind, request and total histograms; each allocated when its first value comes.
#[derive(Clone, Default)]
pub(super) struct PhaseSet {
    h: [Option<Histogram<u64>>; 4],
}

impl PhaseSet {
    pub(super) fn record(&mut self, lat: &Latencies) {
        for (slot, v) in
            self.h
                .iter_mut()
                .zip([lat.connect_us, lat.bind_us, lat.request_us, lat.total_us])
        {
            if let Some(v) = v {
                slot.get_or_insert_with(new_hist).saturating_record(v);
            }
        }
    }

    pub(super) fn get(&self, phase: LatencyPhase) -> Option<&Histogram<u64>> {
        self.h[phase.index()].as_ref().filter(|h| !h.is_empty())
    }

    /// Adds the values of `h` (read back from a log) to `phase`.
    pub(super) fn add_phase(&mut self, phase: LatencyPhase, h: &Histogram<u64>) {
        add(self.h[phase.index()].get_or_insert_with(new_hist), h);
    }

    pub(super) fn merge(&mut self, other: &Self) {
        for (mine, theirs) in self.h.iter_mut().zip(&other.h) {
            if let Some(t) = theirs {
                match mine {
                    Some(m) => add(m, t),
                    None => *mine = Some(t.clone()),
                }
            }
        }
    }
}

impl std::fmt::Debug for PhaseSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let counts: Vec<u64> = self
            .h
            .iter()
            .map(|h| h.as_ref().map_or(0, Histogram::len))
            .collect();
        f.debug_struct("PhaseSet").field("counts", &counts).finish()
    }
}

/// The non-empty buckets of a histogram as `(highest equivalent value, count)`, sorted by
/// value. Lossless for histograms of the recorder's configuration, and small: one entry per
/// distinct bucket hit, which for one second of a run is a few hundred at most.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct SparseHist {
    buckets: Vec<(u64, u64)>,
}

impl SparseHist {
    pub(super) fn from_hist(h: &Histogram<u64>) -> Self {
        Self {
            buckets: h
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect(),
        }
    }

    /// One value already mapped to its bucket's highest equivalent value.
    pub(super) fn single(bucket_value: u64) -> Self {
        Self {
            buckets: vec![(bucket_value, 1)],
        }
    }

    /// Adds every bucket into `h`.
    pub(super) fn add_to(&self, h: &mut Histogram<u64>) {
        for &(v, n) in &self.buckets {
            h.saturating_record_n(v, n);
        }
    }

    /// Adds `other`, keeping the buckets sorted.
    pub(super) fn merge(&mut self, other: &Self) {
        if other.buckets.is_empty() {
            return;
        }
        self.buckets = merge_sorted(&self.buckets, &other.buckets, |a, b| a + b);
    }

    pub(super) fn count(&self) -> u64 {
        self.buckets.iter().map(|(_, n)| n).sum()
    }

    /// The value at quantile `q`, computed the way `Histogram::value_at_quantile` does for
    /// `q > 0` (highest equivalent value of the bucket holding the `ceil(q × count)`-th value).
    pub(super) fn value_at_quantile(&self, q: f64) -> Option<u64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let want = ((q.min(1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for &(v, n) in &self.buckets {
            seen += n;
            if seen >= want {
                return Some(v);
            }
        }
        self.buckets.last().map(|&(v, _)| v)
    }

    #[cfg(test)]
    pub(super) fn to_hist(&self) -> Histogram<u64> {
        let mut h = new_hist();
        self.add_to(&mut h);
        h
    }
}

/// Merges two bucket lists sorted by key into one sorted list, adding the counts of a key
/// both hold with `add`. The one merge of sparse histograms: the recorder's [`SparseHist`]
/// and the report's per-second histogram both use it.
pub(crate) fn merge_sorted<K: Ord + Copy, N: Copy>(
    a: &[(K, N)],
    b: &[(K, N)],
    add: impl Fn(N, N) -> N,
) -> Vec<(K, N)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.iter().peekable(), b.iter().peekable());
    loop {
        match (a.peek(), b.peek()) {
            (Some(&&(ka, na)), Some(&&(kb, nb))) => {
                if ka == kb {
                    out.push((ka, add(na, nb)));
                    a.next();
                    b.next();
                } else if ka < kb {
                    out.push((ka, na));
                    a.next();
                } else {
                    out.push((kb, nb));
                    b.next();
                }
            }
            (Some(&&x), None) => {
                out.push(x);
                a.next();
            }
            (None, Some(&&x)) => {
                out.push(x);
                b.next();
            }
            (None, None) => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(values: &[u64]) -> Histogram<u64> {
        let mut h = new_hist();
        for &v in values {
            h.saturating_record(v);
        }
        h
    }

    #[test]
    fn bounds_clamp_large_values() {
        let h = filled(&[0, 1, HIGHEST_US * 10]);
        assert_eq!(h.len(), 3);
        assert!(h.max() >= HIGHEST_US && h.max() < HIGHEST_US + HIGHEST_US / 1000);
        assert_eq!(h.min(), 0);
    }

    #[test]
    fn sparse_round_trip_is_lossless_and_quantiles_match() {
        let values: Vec<u64> = (0..5000u64)
            .map(|i| (i * i * 7919) % 2_000_000 + 1)
            .collect();
        let h = filled(&values);
        let s = SparseHist::from_hist(&h);
        assert_eq!(s.count(), 5000);
        let back = s.to_hist();
        assert_eq!(back.len(), h.len());
        for q in [0.01, 0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(
                s.value_at_quantile(q),
                Some(h.value_at_quantile(q)),
                "q={q}"
            );
            assert_eq!(back.value_at_quantile(q), h.value_at_quantile(q), "q={q}");
        }
        assert_eq!(back.max(), h.max());
        assert_eq!(SparseHist::default().value_at_quantile(0.5), None);
    }

    #[test]
    fn sparse_merge_equals_histogram_add() {
        let a = filled(&[5, 10, 10, 5000, 70_000]);
        let b = filled(&[10, 6000, 70_001, 3_000_000]);
        let mut s = SparseHist::from_hist(&a);
        s.merge(&SparseHist::from_hist(&b));
        let mut h = a.clone();
        add(&mut h, &b);
        assert_eq!(s, SparseHist::from_hist(&h));
        let mut e = SparseHist::default();
        e.merge(&s);
        assert_eq!(e, s);
    }

    #[test]
    fn phase_sets_allocate_lazily_and_merge() {
        let mut a = PhaseSet::default();
        a.record(&Latencies {
            connect_us: Some(100),
            total_us: Some(900),
            ..Latencies::default()
        });
        assert!(a.get(LatencyPhase::Bind).is_none());
        assert_eq!(a.get(LatencyPhase::Connect).map(Histogram::len), Some(1));
        let mut b = PhaseSet::default();
        b.record(&Latencies {
            bind_us: Some(7),
            total_us: Some(800),
            ..Latencies::default()
        });
        a.merge(&b);
        assert_eq!(a.get(LatencyPhase::Bind).map(Histogram::len), Some(1));
        assert_eq!(a.get(LatencyPhase::Total).map(Histogram::len), Some(2));
        assert_eq!(format!("{a:?}"), "PhaseSet { counts: [1, 1, 0, 2] }");
        let s = LatencySummary::of(a.get(LatencyPhase::Total).expect("total recorded"));
        assert_eq!(
            s,
            Some(LatencySummary {
                count: 2,
                p50: 800,
                p90: 900,
                p99: 900,
                p999: 900,
                max: 900
            })
        );
        assert_eq!(LatencySummary::of(&new_hist()), None);
    }

    #[test]
    fn add_falls_back_when_bounds_differ() {
        let mut small = Histogram::<u64>::new_with_bounds(1, 1000, 3).expect("bounds");
        let big = filled(&[10, 5000]);
        add(&mut small, &big);
        assert_eq!(small.len(), 2);
    }
}
