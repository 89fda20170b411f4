//! [`LogHist`]: a small sparse log-bucketed histogram for the report's per-second series.
//!
//! The report reads `events.csv` back and needs p50/p90/p99 per phase for every second of a
//! run, and p99 over groups of seconds for the knee. A full HDR histogram per phase-second
//! (184 KiB each at the recorder's precision) would cost gigabytes on an hour-long run, and
//! keeping every value costs 16 bytes per attempt. This keeps one counter per *occupied*
//! bucket instead: a second whose latencies span 200 µs .. 20 ms occupies at most ~600.
//!
//! ```text
//! value v < 128          bucket v                     (exact)
//! value v >= 128         e = floor(log2 v) - 7        (so v >> e is in 128..256)
//!                        bucket 128 + 128·e + (v >> e) - 128
//! bucket width 2^e, relative width < 1/128 (0.8 %)
//! ```
//!
//! Quantiles return the highest value of the bucket holding the rank (the same convention as
//! `hdrhistogram`'s `value_at_quantile`), so a value is never under-reported. Left out:
//! recording weights, subtraction and iteration APIs the report does not need.

use crate::record::merge_sorted;

/// Sub-buckets per power of two (7 bits of precision).
const SUB: u64 = 128;

/// See the module docs. Buckets are kept sorted by index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogHist {
    buckets: Vec<(u16, u32)>,
    count: u64,
}

/// Bucket of `v`.
fn index(v: u64) -> u16 {
    if v < SUB {
        return v as u16;
    }
    let e = u64::from(63 - v.leading_zeros()) - 7;
    // e <= 56 and (v >> e) < 256, so the index is below 128 + 128·57 = 7424.
    (SUB + SUB * e + (v >> e) - SUB) as u16
}

/// Highest value that falls in bucket `i`.
fn highest(i: u16) -> u64 {
    let i = u64::from(i);
    if i < SUB {
        return i;
    }
    let e = (i - SUB) / SUB;
    let mantissa = (i - SUB) % SUB + SUB;
    // For the top bucket (mantissa 255, e 56) the shift carries out exactly 2^64, which
    // wraps to 0; the wrapping subtraction then gives u64::MAX, the right answer.
    ((mantissa + 1) << e).wrapping_sub(1)
}

impl LogHist {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// A histogram of `values` (tests and small inputs).
    pub fn from_values(values: &[u64]) -> Self {
        let mut h = Self::new();
        for &v in values {
            h.record(v);
        }
        h
    }

    /// Adds one value.
    pub fn record(&mut self, v: u64) {
        let i = index(v);
        self.count += 1;
        match self.buckets.binary_search_by_key(&i, |b| b.0) {
            Ok(k) => self.buckets[k].1 = self.buckets[k].1.saturating_add(1),
            Err(k) => self.buckets.insert(k, (i, 1)),
        }
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Self) {
        if other.buckets.is_empty() {
            return;
        }
        self.buckets = merge_sorted(&self.buckets, &other.buckets, u32::saturating_add);
        self.count += other.count;
    }

    /// Number of values.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// True when no value was recorded.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The value at quantile `q` (0..=1): the highest value of the bucket holding rank
    /// `ceil(q · n)` (at least 1); `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let q = if q.is_nan() { 0.0 } else { q.clamp(0.0, 1.0) };
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0u64;
        for &(i, n) in &self.buckets {
            seen += u64::from(n);
            if seen >= rank {
                return Some(highest(i));
            }
        }
        self.buckets.last().map(|b| highest(b.0))
    }

    /// Largest value (to bucket precision); `None` when empty.
    pub fn max(&self) -> Option<u64> {
        self.buckets.last().map(|b| highest(b.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_exact_below_128_and_within_one_percent_above() {
        for v in 0..128u64 {
            assert_eq!(highest(index(v)), v);
        }
        for v in [
            128u64,
            129,
            255,
            256,
            1000,
            4095,
            1_000_000,
            3_600_000_000,
            u64::MAX,
        ] {
            let h = highest(index(v));
            assert!(h >= v, "{v} -> {h}");
            assert!((h - v) as f64 <= v as f64 / 128.0, "{v} -> {h}");
        }
        // Consecutive buckets tile the range: the next bucket starts one above.
        for i in 127u16..2000 {
            assert_eq!(index(highest(i) + 1), i + 1, "bucket {i}");
        }
        assert!(index(u64::MAX) < 7424);
    }

    #[test]
    fn quantiles_follow_ranks() {
        let h = LogHist::from_values(&(1..=100).collect::<Vec<_>>());
        assert_eq!(h.len(), 100);
        assert_eq!(h.quantile(0.5), Some(50));
        assert_eq!(h.quantile(0.99), Some(99));
        assert_eq!(h.quantile(1.0), Some(100));
        assert_eq!(h.quantile(0.0), Some(1));
        assert_eq!(h.max(), Some(100));
        assert_eq!(LogHist::new().quantile(0.5), None);
        let big = LogHist::from_values(
            &[10_000; 99]
                .iter()
                .copied()
                .chain([900_000])
                .collect::<Vec<_>>(),
        );
        assert_eq!(big.quantile(0.99), Some(highest(index(10_000))));
        assert_eq!(big.quantile(0.999), Some(highest(index(900_000))));
    }

    #[test]
    fn merge_equals_recording_everything_in_one() {
        let a: Vec<u64> = (0..500).map(|i| 100 + i * 37 % 9000).collect();
        let b: Vec<u64> = (0..300).map(|i| 5 + i * 101 % 70_000).collect();
        let mut m = LogHist::from_values(&a);
        m.merge(&LogHist::from_values(&b));
        let all: Vec<u64> = a.iter().chain(&b).copied().collect();
        assert_eq!(m, LogHist::from_values(&all));
        let mut e = LogHist::new();
        e.merge(&m);
        assert_eq!(e, m);
    }
}
