//! The knee of a ramp: the highest offered rate at which p99 of the total time stays under a
//! limit, said as "this host sustains X activations/s with p99 < Y ms".
//!
//! Input: one [`SecondLoad`] per second of the run, keyed by **intended start** (so a second's
//! latency belongs to the load offered in it), with the fault-free total times of the attempts
//! that started in it. Steps:
//!
//! ```text
//! 1. drop seconds that offered nothing, and the ramp-down: the seconds after the last one
//!    whose offered rate was within GROUP_TOLERANCE of the peak (they carry the peak's backlog
//!    and would make a low rate look slow)
//! 2. group seconds by offered rate: sorted by rate, a new group starts when a rate exceeds
//!    the group's lowest by more than GROUP_TOLERANCE (+1/s, so 5/s and 6/s group together);
//!    a stage's hold is one group, a 1 s ramp between holds is a small group of its own
//! 3. per group: merge the latency histograms, p50/p90/p99; a group with fewer than
//!    MIN_SAMPLES fault-free attempts has no trustworthy p99 and is shown but never decides
//! 4. walk the groups upwards: the first trustworthy group whose p99 >= limit (or whose error
//!    rate is over the scenario's `max_error_rate` gate) is the first one over; the knee is
//!    the last trustworthy group before it. A group within the limits above an over-limit one
//!    does not move the knee up: the host did not *stay* within them up to it.
//! ```
//!
//! The limit is the scenario's `total p99 < X` gate when it has one, else [`DEFAULT_LIMIT_US`]
//! (100 ms: far above a healthy host's few milliseconds, well below the 2 s request timeout
//! of a client). The rate said is the *activation* rate of the knee group (activated attempts
//! started per second), which equals the offered rate when everything activated.
//!
//! So a capacity is only stated for rates at which the run met its gates (p99 and error
//! rate; other gates are about the whole run). When no group went over, the knee was not
//! reached: the highest rate offered is named as such, never as "the knee". When the host ran
//! in-process, the sentence says it shared the CPU with the load generator. The caller leaves
//! out the seconds in which a stage ramped between two holds ([`Knee::ramp_seconds`]).
//!
//! Left out: closed-model runs (their offered rate is their achieved rate, so there is no
//! independent variable) — callers show the knee only for open-model runs.

use serde::Serialize;

use super::loghist::LogHist;
use super::svg::fmt_us;

/// Limit used when the scenario has no `total p99` gate, µs.
pub const DEFAULT_LIMIT_US: u64 = 100_000;
/// Fault-free attempts a group needs before its p99 counts.
pub const MIN_SAMPLES: u64 = 100;
/// Relative width of an offered-rate group, and of "near the peak".
pub const GROUP_TOLERANCE: f64 = 0.10;

/// One second of load, by intended start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SecondLoad {
    /// Seconds since the run start.
    pub second: u64,
    /// Attempts whose intended start fell in this second.
    pub offered: u64,
    /// Of those, activated.
    pub activated: u64,
    /// Total time of those no fault touched.
    pub latency: LogHist,
}

/// One group of seconds with about the same offered rate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    /// Mean attempts offered per second.
    pub offered_rate: f64,
    /// Mean activated attempts (by start) per second.
    pub activated_rate: f64,
    /// Seconds in the group.
    pub seconds: u64,
    /// Fault-free latencies in the group.
    pub samples: u64,
    /// Median total time, µs.
    pub p50_us: Option<u64>,
    /// 90th percentile, µs.
    pub p90_us: Option<u64>,
    /// 99th percentile, µs.
    pub p99_us: Option<u64>,
    /// At least [`MIN_SAMPLES`] samples: the p99 counts.
    pub enough: bool,
    /// Attempts started in the group that did not activate, over those started.
    pub error_rate: f64,
}

impl Bucket {
    fn over(&self, limit_us: u64, max_error_rate: Option<f64>) -> bool {
        self.p99_us.is_some_and(|p| p >= limit_us) || self.errors_over(max_error_rate)
    }

    fn errors_over(&self, max_error_rate: Option<f64>) -> bool {
        max_error_rate.is_some_and(|m| self.error_rate > m)
    }
}

/// Where the limit came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitSource {
    /// The scenario's gate, as written.
    Gate(String),
    /// [`DEFAULT_LIMIT_US`]: the scenario has no `total p99` gate.
    Default,
}

/// What a row of the capacity table is marked with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowMark {
    /// The knee group.
    Knee,
    /// The highest rate offered, within the limits: the knee was not reached.
    HighestWithin,
    /// The first group whose p99 (or error rate) is over the limit.
    FirstOver,
    /// Fewer than [`MIN_SAMPLES`] samples: its p99 does not count.
    TooFewSamples,
    /// Nothing to say.
    None,
}

/// The result: groups, the knee and the first group over the limit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Knee {
    /// p99 limit, µs.
    pub limit_us: u64,
    /// Where the limit came from.
    pub limit_source: LimitSource,
    /// Groups by ascending offered rate.
    pub buckets: Vec<Bucket>,
    /// Index in `buckets` of the knee.
    pub knee: Option<usize>,
    /// Index in `buckets` of the first trustworthy group over the limit.
    pub first_over: Option<usize>,
    /// Seconds left out as ramp-down.
    pub ramp_down_seconds: u64,
    /// The scenario's `max_error_rate` gate: a group over it is over the limits.
    pub max_error_rate: Option<f64>,
    /// Seconds the caller left out because a stage ramped in them (between two holds).
    pub ramp_seconds: u64,
    /// The host ran in-process and shared the CPU with the load generator.
    pub in_process: bool,
}

/// Finds the knee of `seconds` against `limit_us` and, when given, the error-rate limit
/// (see the module docs).
pub fn find(
    seconds: &[SecondLoad],
    limit_us: u64,
    limit_source: LimitSource,
    max_error_rate: Option<f64>,
) -> Knee {
    let mut used: Vec<&SecondLoad> = seconds.iter().filter(|s| s.offered > 0).collect();
    used.sort_by_key(|s| s.second);
    let peak = used.iter().map(|s| s.offered).max().unwrap_or(0) as f64;
    let near_peak = peak * (1.0 - GROUP_TOLERANCE);
    let last_peak = used.iter().rposition(|s| s.offered as f64 >= near_peak);
    let keep = last_peak.map_or(0, |i| i + 1);
    let ramp_down_seconds = (used.len() - keep) as u64;
    used.truncate(keep);

    used.sort_by_key(|s| (s.offered, s.second));
    let mut buckets = Vec::new();
    let mut group: Vec<&SecondLoad> = Vec::new();
    for s in used {
        let lowest = group.first().map(|g| g.offered as f64);
        if lowest.is_some_and(|l| s.offered as f64 > l * (1.0 + GROUP_TOLERANCE) + 1.0) {
            buckets.push(bucket(&group));
            group.clear();
        }
        group.push(s);
    }
    if !group.is_empty() {
        buckets.push(bucket(&group));
    }

    let first_over = buckets
        .iter()
        .position(|b| b.enough && b.over(limit_us, max_error_rate));
    let below = first_over.unwrap_or(buckets.len());
    let knee = buckets[..below].iter().rposition(|b| b.enough);
    Knee {
        limit_us,
        limit_source,
        buckets,
        knee,
        first_over,
        ramp_down_seconds,
        max_error_rate,
        ramp_seconds: 0,
        in_process: false,
    }
}

fn bucket(group: &[&SecondLoad]) -> Bucket {
    let mut h = LogHist::new();
    let (mut offered, mut activated) = (0u64, 0u64);
    for s in group {
        h.merge(&s.latency);
        offered += s.offered;
        activated += s.activated;
    }
    let n = group.len().max(1) as f64;
    Bucket {
        offered_rate: offered as f64 / n,
        activated_rate: activated as f64 / n,
        seconds: group.len() as u64,
        samples: h.len(),
        p50_us: h.quantile(0.5),
        p90_us: h.quantile(0.9),
        p99_us: h.quantile(0.99),
        enough: h.len() >= MIN_SAMPLES,
        error_rate: if offered == 0 {
            0.0
        } else {
            offered.saturating_sub(activated) as f64 / offered as f64
        },
    }
}

impl Knee {
    /// The capacity table both report formats print: the header, and per group its cells
    /// (offered/s, activated/s, not activated, seconds, samples, p50, p90, p99) and what
    /// marks it.
    pub const TABLE_HEADER: [&'static str; 8] = [
        "offered/s",
        "activated/s",
        "not activated",
        "seconds",
        "samples",
        "p50",
        "p90",
        "p99",
    ];

    /// One row per group, in [`Knee::TABLE_HEADER`]'s order, with the group's mark.
    pub fn table_rows(&self) -> Vec<([String; 8], RowMark)> {
        let us = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| fmt_us(v as f64));
        self.buckets
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let mark = if Some(i) == self.knee && self.reached() {
                    RowMark::Knee
                } else if Some(i) == self.knee {
                    RowMark::HighestWithin
                } else if Some(i) == self.first_over {
                    RowMark::FirstOver
                } else if !b.enough {
                    RowMark::TooFewSamples
                } else {
                    RowMark::None
                };
                let cells = [
                    format!("{:.1}", b.offered_rate),
                    format!("{:.1}", b.activated_rate),
                    percent(b.error_rate),
                    b.seconds.to_string(),
                    b.samples.to_string(),
                    us(b.p50_us),
                    us(b.p90_us),
                    us(b.p99_us),
                ];
                (cells, mark)
            })
            .collect()
    }

    /// True when a rate offered went over the limits, so the knee lies below it; false when
    /// every rate stayed within them (the knee is above the highest rate offered).
    pub fn reached(&self) -> bool {
        self.first_over.is_some()
    }

    /// Groups whose p99 counts.
    pub fn trustworthy(&self) -> usize {
        self.buckets.iter().filter(|b| b.enough).count()
    }

    /// True when the run offered at least two clearly different rates with enough samples:
    /// a knee means something.
    pub fn is_ramp(&self) -> bool {
        self.trustworthy() >= 2
    }

    /// The knee in words, e.g. "this host sustains 5000 activations/s with p99 < 500 ms".
    pub fn sentence(&self) -> String {
        let limit = fmt_us(self.limit_us as f64);
        let limits = match self.max_error_rate {
            Some(m) => format!("p99 < {limit} and errors <= {}", percent(m)),
            None => format!("p99 < {limit}"),
        };
        let p99 = |b: &Bucket| {
            b.p99_us
                .map_or_else(|| "-".to_owned(), |v| fmt_us(v as f64))
        };
        // What put a group over: its p99, its error rate, or both.
        let why = |b: &Bucket| {
            let slow = b.p99_us.is_some_and(|p| p >= self.limit_us);
            let errors = format!("{} did not activate", percent(b.error_rate));
            match (slow, b.errors_over(self.max_error_rate)) {
                (true, true) => format!("p99 was {} and {errors}", p99(b)),
                (false, true) => errors,
                _ => format!("p99 was {}", p99(b)),
            }
        };
        let mut s = match (
            self.knee.map(|i| &self.buckets[i]),
            self.first_over.map(|i| &self.buckets[i]),
        ) {
            (Some(k), Some(o)) => format!(
                "this host sustains {} activations/s with {limits} (p99 {} at {} offered/s); \
                 at {} offered/s {}",
                rate(k.activated_rate),
                p99(k),
                rate(k.offered_rate),
                rate(o.offered_rate),
                why(o)
            ),
            (Some(k), None) => format!(
                "this host sustains at least {} activations/s with {limits} (p99 {} at {} \
                 offered/s, the highest rate offered); every rate stayed within the limits, so \
                 the knee lies above it",
                rate(k.activated_rate),
                p99(k),
                rate(k.offered_rate)
            ),
            (None, Some(o)) => format!(
                "no capacity can be stated: no rate offered stayed within {limits}; from {} \
                 offered/s up, {}",
                rate(o.offered_rate),
                why(o)
            ),
            (None, None) => format!(
                "not enough fault-free attempts at any offered rate to place the knee \
                 (at least {MIN_SAMPLES} per rate are needed)"
            ),
        };
        if self.in_process && self.knee.is_some() {
            s.push_str(
                " — measured against the in-process reference host, which shared the CPU with \
                 the load generator",
            );
        }
        s
    }
}

/// `1.5 %`, `0 %`.
fn percent(f: f64) -> String {
    let p = f * 100.0;
    if p == 0.0 {
        "0 %".to_owned()
    } else if p < 10.0 {
        format!("{p:.1} %")
    } else {
        format!("{p:.0} %")
    }
}

/// A rate for a sentence: whole numbers, one decimal under 10.
fn rate(r: f64) -> String {
    if r < 10.0 {
        format!("{r:.1}")
    } else {
        format!("{r:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` seconds from `from` at `rate`/s, every attempt activated, latency `lat(i)` µs for
    /// the i-th attempt of the second.
    fn hold(from: u64, n: u64, rate: u64, lat: impl Fn(u64, u64) -> u64) -> Vec<SecondLoad> {
        (from..from + n)
            .map(|s| SecondLoad {
                second: s,
                offered: rate,
                activated: rate,
                latency: LogHist::from_values(&(0..rate).map(|i| lat(s, i)).collect::<Vec<_>>()),
            })
            .collect()
    }

    fn gate() -> LimitSource {
        LimitSource::Gate("total p99 < 500ms".into())
    }

    /// Steps 500, 2000, 5000, 10000/s of 5 s each; p99 = `p99_at(rate)`.
    fn ramp(p99_at: impl Fn(u64) -> u64) -> Vec<SecondLoad> {
        let mut v = Vec::new();
        for (k, rate) in [500u64, 2000, 5000, 10_000].into_iter().enumerate() {
            let p99 = p99_at(rate);
            // 98 % of attempts at 1 ms, the top 2 % at the step's p99.
            v.extend(hold(k as u64 * 5, 5, rate, |_, i| {
                if i * 100 >= rate * 98 { p99 } else { 1000 }
            }));
        }
        v
    }

    #[test]
    fn flat_latency_never_reaches_the_knee() {
        let k = find(&ramp(|_| 3000), 500_000, gate(), None);
        assert_eq!(k.buckets.len(), 4);
        assert!(k.is_ramp());
        assert_eq!(k.knee, Some(3));
        assert_eq!(k.first_over, None);
        assert_eq!(k.buckets[3].offered_rate, 10_000.0);
        let s = k.sentence();
        assert!(
            s.starts_with("this host sustains at least 10000 activations/s with p99 < 500 ms"),
            "{s}"
        );
        assert!(s.contains("the knee lies above it"), "{s}");
        assert!(!s.contains("knee was not reached"), "{s}");
        // The top row is the highest rate offered, not labelled a knee.
        let marks: Vec<RowMark> = k.table_rows().into_iter().map(|(_, m)| m).collect();
        assert_eq!(marks[3], RowMark::HighestWithin);
        assert!(!marks.contains(&RowMark::Knee));
        assert!(!k.reached());
    }

    #[test]
    fn bending_latency_puts_the_knee_below_the_first_rate_over() {
        // 2 ms, 40 ms, 300 ms, 2 s: over 500 ms from 10 000/s.
        let p = |r: u64| match r {
            500 => 2_000,
            2000 => 40_000,
            5000 => 300_000,
            _ => 2_000_000,
        };
        let k = find(&ramp(p), 500_000, gate(), None);
        assert_eq!(k.knee, Some(2));
        assert_eq!(k.first_over, Some(3));
        let s = k.sentence();
        assert!(
            s.starts_with("this host sustains 5000 activations/s with p99 < 500 ms"),
            "{s}"
        );
        assert!(s.contains("at 10000 offered/s p99 was 2"), "{s}");
        // The same ramp against a 100 ms default limit bends one step earlier.
        let k = find(&ramp(p), DEFAULT_LIMIT_US, LimitSource::Default, None);
        assert_eq!((k.knee, k.first_over), (Some(1), Some(2)));
    }

    #[test]
    fn never_under_the_limit_has_no_knee() {
        let k = find(&ramp(|_| 900_000), 500_000, gate(), None);
        assert_eq!((k.knee, k.first_over), (None, Some(0)));
        let s = k.sentence();
        assert!(
            s.starts_with(
                "no capacity can be stated: no rate offered stayed within p99 < 500 ms; from \
                 500 offered/s up, p99 was 9"
            ),
            "{s}"
        );
        assert!(!s.contains("sustains"), "{s}");
    }

    #[test]
    fn a_rate_that_fails_the_error_gate_is_not_a_capacity() {
        // Fast at every rate, but from 5000/s 3 % do not activate against a 1 % gate: the
        // knee is 2000/s, and the sentence says why 5000/s is over.
        let mut v = ramp(|_| 3000);
        for s in v.iter_mut().filter(|s| s.offered >= 5000) {
            s.activated = s.offered * 97 / 100;
        }
        let k = find(&v, 500_000, gate(), Some(0.01));
        assert_eq!((k.knee, k.first_over), (Some(1), Some(2)));
        let s = k.sentence();
        assert!(
            s.starts_with(
                "this host sustains 2000 activations/s with p99 < 500 ms and errors <= 1.0 %"
            ),
            "{s}"
        );
        assert!(
            s.ends_with("at 5000 offered/s 3.0 % did not activate"),
            "{s}"
        );
        let rows = k.table_rows();
        assert_eq!(rows[2].0[2], "3.0 %");
        assert_eq!(rows[1].1, RowMark::Knee);
        // Every rate over the error gate: no capacity at all.
        for s in &mut v {
            s.activated = s.offered / 2;
        }
        let k = find(&v, 500_000, gate(), Some(0.01));
        assert_eq!(k.knee, None);
        let s = k.sentence();
        assert!(s.starts_with("no capacity can be stated"), "{s}");
        assert!(!s.contains("sustains"), "{s}");
    }

    #[test]
    fn an_in_process_host_is_said_to_share_the_cpu() {
        let mut k = find(&ramp(|_| 3000), 500_000, gate(), None);
        k.in_process = true;
        assert!(
            k.sentence().ends_with(
                "in-process reference host, which shared the CPU with the load generator"
            ),
            "{}",
            k.sentence()
        );
    }

    #[test]
    fn noisy_seconds_group_by_rate_and_a_late_dip_does_not_move_the_knee_up() {
        // Offered counts jitter by ±2 %, latency per second jitters; one second per step has
        // an outlier. 20 000/s dips back under the limit after 10 000/s went over: the knee
        // stays at 5000/s.
        let mut v = Vec::new();
        let mut second = 0;
        for (rate, base) in [
            (500u64, 1500u64),
            (2000, 3000),
            (5000, 60_000),
            (10_000, 700_000),
            (20_000, 200_000),
        ] {
            for j in 0..6u64 {
                let offered = rate + rate * ((j * 7) % 5) / 100 - rate / 50;
                let lat = move |_s: u64, i: u64| base + (i * 7919 + j * 131) % (base / 4 + 1);
                v.extend(hold(second, 1, offered, lat));
                second += 1;
            }
        }
        let k = find(&v, 500_000, gate(), None);
        assert_eq!(k.buckets.len(), 5, "{:?}", k.buckets);
        assert_eq!(k.buckets.iter().map(|b| b.seconds).sum::<u64>(), 30);
        assert_eq!(k.knee, Some(2));
        assert_eq!(k.first_over, Some(3));
        assert!(k.buckets[4].p99_us.unwrap() < 500_000);
    }

    #[test]
    fn ramp_down_and_thin_groups_do_not_decide() {
        // Steps at 500 and 5000/s, a 1 s ramp at 2000/s with 40 attempts (too few), then a
        // ramp-down at 1000/s carrying the backlog (slow) that must be left out.
        let mut v = hold(0, 5, 500, |_, _| 2000);
        v.push(SecondLoad {
            second: 5,
            offered: 40,
            activated: 40,
            latency: LogHist::from_values(&[900_000; 40]),
        });
        v.extend(hold(6, 5, 5000, |_, _| 10_000));
        v.extend(hold(11, 2, 1000, |_, _| 3_000_000));
        v.push(SecondLoad {
            second: 13,
            ..SecondLoad::default()
        });
        let k = find(&v, 500_000, gate(), None);
        assert_eq!(k.ramp_down_seconds, 2);
        assert_eq!(k.buckets.len(), 3);
        assert!(!k.buckets[0].enough && k.buckets[0].offered_rate == 40.0);
        assert_eq!(k.first_over, None);
        assert_eq!(k.knee, Some(2));
        assert_eq!(k.trustworthy(), 2);
    }

    #[test]
    fn activation_rate_is_what_the_sentence_says() {
        let mut v = hold(0, 4, 1000, |_, _| 5000);
        for s in &mut v {
            s.activated = 900;
        }
        v.extend(hold(4, 4, 100, |_, _| 5000));
        let k = find(&v, 100_000, LimitSource::Default, None);
        let s = k.sentence();
        assert!(
            s.starts_with("this host sustains at least 900 activations/s with p99 < 100 ms"),
            "{s}"
        );
        assert!(s.contains("1000 offered/s"), "{s}");
    }

    #[test]
    fn empty_and_single_rate_runs() {
        let k = find(&[], 100_000, LimitSource::Default, None);
        assert!(k.buckets.is_empty() && !k.is_ramp());
        assert!(k.sentence().starts_with("not enough fault-free attempts"));
        let k = find(
            &hold(0, 10, 100, |_, i| 1000 + i),
            100_000,
            LimitSource::Default,
            None,
        );
        assert_eq!(k.buckets.len(), 1);
        assert!(!k.is_ramp());
        assert_eq!(k.knee, Some(0));
    }
}
