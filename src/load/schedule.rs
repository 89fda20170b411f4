//! When each attempt should start: the open model's rate schedule and its arithmetic.
//!
//! Open model: the schedule gives the expected number of arrivals by time `t`; attempt `k`
//! (0-based) is due when that number reaches `k`. Latency is measured from that intended
//! start, so a host that makes attempts wait cannot hide its queue (coordinated omission).
//! Closed model: a fixed number of client slots; the next attempt is due as soon as a slot is
//! free (after its think time).

use std::time::Duration;

/// Arrival rate over time for the open model (rates in attempts per second).
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// A constant rate.
    Constant {
        /// Attempts per second (> 0).
        rate: f64,
    },
    /// Stages run in order; within each, the rate moves linearly from the previous stage's
    /// target (or `start_rate`) to this stage's target. A stage whose target equals the
    /// previous one holds the rate. The run ends with the last stage at the latest.
    Stages {
        /// Rate at time 0.
        start_rate: f64,
        /// At least one; every duration > 0.
        stages: Vec<Stage>,
    },
    /// Each period of `every` runs at `base_rate` for `every - length`, then at
    /// `burst_rate` for `length`.
    Bursts {
        /// Rate between bursts (may be 0).
        base_rate: f64,
        /// Rate during a burst (> 0).
        burst_rate: f64,
        /// Period, > `length`.
        every: Duration,
        /// Burst length, > 0.
        length: Duration,
    },
}

/// One stage of a staged schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    /// How long the stage lasts (> 0).
    pub duration: Duration,
    /// Rate reached at the end of the stage.
    pub target_rate: f64,
}

impl Schedule {
    /// The offered rate (attempts per second) at `elapsed` since the start of the run.
    /// After the last stage of a staged schedule: 0.
    pub fn rate_at(&self, elapsed: Duration) -> f64 {
        match self {
            Self::Constant { rate } => *rate,
            Self::Stages { start_rate, stages } => {
                let mut from = *start_rate;
                let mut t = elapsed;
                for s in stages {
                    if t < s.duration {
                        let f = t.as_secs_f64() / s.duration.as_secs_f64();
                        return from + (s.target_rate - from) * f;
                    }
                    t -= s.duration;
                    from = s.target_rate;
                }
                0.0
            }
            Self::Bursts {
                base_rate,
                burst_rate,
                every,
                length,
            } => {
                let period = every.as_nanos().max(1);
                let into = elapsed.as_nanos() % period;
                if into >= period - length.as_nanos().min(period) {
                    *burst_rate
                } else {
                    *base_rate
                }
            }
        }
    }

    /// Where the schedule itself ends (the end of the last stage), if it does.
    pub fn natural_end(&self) -> Option<Duration> {
        match self {
            Self::Stages { stages, .. } => Some(stages.iter().map(|s| s.duration).sum()),
            Self::Constant { .. } | Self::Bursts { .. } => None,
        }
    }

    /// The highest rate the schedule ever offers.
    pub fn peak_rate(&self) -> f64 {
        match self {
            Self::Constant { rate } => *rate,
            Self::Stages { start_rate, stages } => stages
                .iter()
                .map(|s| s.target_rate)
                .fold(*start_rate, f64::max),
            Self::Bursts {
                base_rate,
                burst_rate,
                ..
            } => base_rate.max(*burst_rate),
        }
    }

    /// Expected number of arrivals in `[0, until)`: the integral of [`Self::rate_at`].
    pub fn expected_arrivals(&self, until: Duration) -> f64 {
        match self {
            Self::Constant { rate } => rate * until.as_secs_f64(),
            Self::Stages { start_rate, stages } => {
                let mut from = *start_rate;
                let mut left = until;
                let mut total = 0.0;
                for s in stages {
                    let part = left.min(s.duration);
                    let f = part.as_secs_f64() / s.duration.as_secs_f64();
                    let end_rate = from + (s.target_rate - from) * f;
                    total += (from + end_rate) / 2.0 * part.as_secs_f64();
                    left -= part;
                    from = s.target_rate;
                    if left.is_zero() {
                        break;
                    }
                }
                total
            }
            Self::Bursts {
                base_rate,
                burst_rate,
                every,
                length,
            } => {
                // Whole periods, then the partial one.
                let period = every.as_secs_f64();
                let burst = length.as_secs_f64();
                let per_period = base_rate * (period - burst) + burst_rate * burst;
                let t = until.as_secs_f64();
                let whole = (t / period).floor();
                let rest = t - whole * period;
                let base_part = rest.min(period - burst);
                let burst_part = (rest - base_part).max(0.0);
                whole * per_period + base_rate * base_part + burst_rate * burst_part
            }
        }
    }
}

/// Intended start of attempt `k` under an open schedule, or `None` when the schedule never
/// reaches `k` arrivals before `limit` (the run's duration bound or the schedule's end).
pub fn open_start(schedule: &Schedule, k: u64, limit: Option<Duration>) -> Option<Duration> {
    let target = k as f64;
    let end = match (limit, schedule.natural_end()) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    if let Schedule::Constant { rate } = schedule {
        // Fast path: no search needed.
        if *rate <= 0.0 {
            return None;
        }
        let t = Duration::from_secs_f64(target / rate);
        return end.is_none_or(|e| t < e).then_some(t);
    }
    // expected_arrivals is non-decreasing in t: find the first t where it reaches k.
    let mut hi = Duration::from_millis(1);
    loop {
        if schedule.expected_arrivals(hi) >= target {
            break;
        }
        if let Some(e) = end {
            if hi >= e {
                return None;
            }
        } else if hi > Duration::from_secs(365 * 24 * 3600) {
            // A schedule that stays at rate 0 forever never reaches k.
            return None;
        }
        hi *= 2;
        if let Some(e) = end {
            hi = hi.min(e);
        }
    }
    let mut lo = Duration::ZERO;
    // 40 halvings of at most a year: well below a microsecond.
    for _ in 0..40 {
        let mid = (lo + hi) / 2;
        if schedule.expected_arrivals(mid) >= target {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    end.is_none_or(|e| hi < e).then_some(hi)
}

/// How much faster than the schedule late attempts are released: once behind, the runner
/// catches up at twice the schedule's pace, so a lag of `d` is made good over `d`.
pub const CATCH_UP: u32 = 2;

/// The most late attempts may leave together, in schedule time: one tick of tokio's timer
/// (1 ms). A release planned less than this before now goes at once.
pub const PACING_WINDOW: Duration = Duration::from_millis(1);

/// Spaces out attempts that are already late, instead of releasing them together.
///
/// When the dispatcher falls behind its schedule (its own CPU is short, or it waited for a
/// free slot), every attempt whose intended start has passed is due at once. Released
/// together they arrive at the host as one burst: with new connections that overflows the
/// listen queue, and the SYNs the kernel drops are retried after 1 s and 3 s, which costs more
/// than the burst saved. The pacer releases a late attempt no sooner than the previous
/// planned release plus its scheduled gap divided by [`CATCH_UP`], and no sooner than
/// [`PACING_WINDOW`] before now: late attempts leave at twice the schedule's rate, at most a
/// timer tick's worth together, never in a burst. Attempts on time keep their intended
/// start. Latency still counts from the intended start, so the wait shows as latency
/// (coordinated omission).
///
/// Times are offsets from the run's start; the caller passes `now`, so the pacer holds no
/// clock and can be tested without one.
#[derive(Debug, Clone, Default)]
pub struct LatePacer {
    /// Intended start of the previous attempt.
    previous_intended: Option<Duration>,
    /// The previous attempt's planned release.
    previous_release: Option<Duration>,
}

impl LatePacer {
    /// When to release the attempt intended for `intended`, the dispatcher getting to it at
    /// `now`: `intended` when it is not late; otherwise the previous planned release plus
    /// the scheduled gap over [`CATCH_UP`], but not before `intended` nor more than
    /// [`PACING_WINDOW`] before `now` (a pacer left far behind by a long wait does not
    /// release its whole backlog at once). The caller waits until then if it is later than
    /// now, and reports the plan with [`LatePacer::released`].
    pub fn release_at(&self, intended: Duration, now: Duration) -> Duration {
        if intended >= now {
            return intended;
        }
        let floor = intended.max(now.saturating_sub(PACING_WINDOW));
        match (self.previous_intended, self.previous_release) {
            (Some(pi), Some(pr)) => floor.max(pr + intended.saturating_sub(pi) / CATCH_UP),
            _ => floor,
        }
    }

    /// Records that the attempt intended for `intended` was planned for release at `at`
    /// (what [`LatePacer::release_at`] returned; the plan, not the moment the timer woke,
    /// so releases inside one timer tick keep their spacing in the plan).
    pub fn released(&mut self, intended: Duration, at: Duration) {
        self.previous_intended = Some(intended);
        self.previous_release = Some(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn stages_ramp_linearly_and_hold() {
        let s = Schedule::Stages {
            start_rate: 0.0,
            stages: vec![
                Stage {
                    duration: secs(10),
                    target_rate: 100.0,
                },
                Stage {
                    duration: secs(10),
                    target_rate: 100.0,
                },
                Stage {
                    duration: secs(5),
                    target_rate: 50.0,
                },
            ],
        };
        assert_eq!(s.rate_at(secs(0)), 0.0);
        assert_eq!(s.rate_at(secs(5)), 50.0);
        assert_eq!(s.rate_at(secs(15)), 100.0);
        assert_eq!(s.rate_at(Duration::from_millis(22_500)), 75.0);
        assert_eq!(s.rate_at(secs(25)), 0.0);
        assert_eq!(s.natural_end(), Some(secs(25)));
        assert_eq!(s.peak_rate(), 100.0);
        // 10 s ramp 0→100 (500) + 10 s at 100 (1000) + 5 s 100→50 (375).
        assert_eq!(s.expected_arrivals(secs(25)), 1875.0);
        assert_eq!(s.expected_arrivals(secs(100)), 1875.0);
        assert_eq!(s.expected_arrivals(secs(5)), 125.0);
    }

    #[test]
    fn bursts_come_at_the_end_of_each_period() {
        let s = Schedule::Bursts {
            base_rate: 10.0,
            burst_rate: 1000.0,
            every: secs(10),
            length: secs(2),
        };
        assert_eq!(s.rate_at(secs(0)), 10.0);
        assert_eq!(s.rate_at(Duration::from_millis(7_999)), 10.0);
        assert_eq!(s.rate_at(secs(8)), 1000.0);
        assert_eq!(s.rate_at(secs(10)), 10.0);
        assert_eq!(s.rate_at(secs(19)), 1000.0);
        assert_eq!(s.natural_end(), None);
        assert_eq!(s.peak_rate(), 1000.0);
        assert_eq!(s.expected_arrivals(secs(10)), 80.0 + 2000.0);
        assert_eq!(s.expected_arrivals(secs(15)), 2080.0 + 50.0);
    }

    #[test]
    fn constant_rate() {
        let s = Schedule::Constant { rate: 250.0 };
        assert_eq!(s.rate_at(secs(1000)), 250.0);
        assert_eq!(s.expected_arrivals(secs(4)), 1000.0);
    }

    #[test]
    fn constant_rate_spaces_attempts_evenly() {
        let s = Schedule::Constant { rate: 100.0 };
        assert_eq!(open_start(&s, 0, None), Some(Duration::ZERO));
        assert_eq!(open_start(&s, 250, None), Some(Duration::from_millis(2500)));
        assert_eq!(open_start(&s, 500, Some(Duration::from_secs(5))), None);
        assert_eq!(
            open_start(&s, 499, Some(Duration::from_secs(5))),
            Some(Duration::from_millis(4990))
        );
    }

    #[test]
    fn ramp_follows_the_integral_of_the_rate() {
        // 0 → 100/s over 10 s: E(t) = 5 t², so attempt k is due at sqrt(k / 5).
        let s = Schedule::Stages {
            start_rate: 0.0,
            stages: vec![Stage {
                duration: Duration::from_secs(10),
                target_rate: 100.0,
            }],
        };
        for k in [1u64, 20, 125, 499] {
            let t = open_start(&s, k, None).unwrap().as_secs_f64();
            assert!((t - (k as f64 / 5.0).sqrt()).abs() < 1e-3, "k={k} t={t}");
        }
        // 500 arrivals take the whole ramp; the 501st never comes.
        assert_eq!(open_start(&s, 501, None), None);
    }

    #[test]
    fn bursts_crowd_attempts_into_the_burst() {
        let s = Schedule::Bursts {
            base_rate: 10.0,
            burst_rate: 1000.0,
            every: Duration::from_secs(10),
            length: Duration::from_secs(1),
        };
        // 90 base arrivals in the first 9 s, then 1000 in the burst second.
        let t = open_start(&s, 100, None).unwrap().as_secs_f64();
        assert!((9.0..9.02).contains(&t), "{t}");
        let t = open_start(&s, 1089, None).unwrap().as_secs_f64();
        assert!((9.99..10.0).contains(&t), "{t}");
    }

    /// Drives the pacer as the dispatcher does, with a clock that only moves when the
    /// dispatcher waits: returns each attempt's release offset.
    fn releases(intended: &[Duration], stalled_until: Duration) -> Vec<Duration> {
        let mut pacer = LatePacer::default();
        let mut now = stalled_until;
        intended
            .iter()
            .map(|&i| {
                let at = pacer.release_at(i, now);
                now = now.max(at);
                pacer.released(i, at);
                at
            })
            .collect()
    }

    #[test]
    fn attempts_on_time_keep_their_intended_start() {
        let s = Schedule::Constant { rate: 1000.0 };
        let intended: Vec<Duration> = (0..100).map(|k| open_start(&s, k, None).unwrap()).collect();
        assert_eq!(releases(&intended, Duration::ZERO), intended);
    }

    #[test]
    fn late_attempts_are_spaced_out_at_twice_the_schedule_rate_not_released_together() {
        // 1000/s, and the dispatcher gets to work 100 ms late: 100 attempts are overdue.
        let s = Schedule::Constant { rate: 1000.0 };
        let intended: Vec<Duration> = (0..400).map(|k| open_start(&s, k, None).unwrap()).collect();
        let stall = Duration::from_millis(100);
        let at = releases(&intended, stall);
        // The first is planned one window before now (it goes at once); the next ones 0.5 ms
        // apart (the 1 ms gap over CATCH_UP), not all at 100 ms.
        assert_eq!(at[0], stall - PACING_WINDOW);
        for k in 1..190 {
            assert_eq!(at[k] - at[k - 1], Duration::from_micros(500), "attempt {k}");
        }
        // Up to one millisecond after the stall, 5 attempts leave (99 to 101 ms), where all
        // 100 overdue would have left at once without pacing.
        let burst = at
            .iter()
            .filter(|&&t| t <= stall + Duration::from_millis(1))
            .count();
        assert_eq!(burst, 5);
        // Caught up after about twice the stall: from then on each leaves at its intended
        // start.
        let caught = at.iter().zip(&intended).position(|(a, i)| a == i).unwrap();
        assert!((190..=200).contains(&caught), "{caught}");
        assert_eq!(&at[caught..], &intended[caught..]);
        // Never earlier than intended, never out of order.
        assert!(at.iter().zip(&intended).all(|(a, i)| a >= i));
        assert!(at.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn a_late_release_follows_the_schedules_own_spacing() {
        // Bursts: late attempts inside the burst (1000/s) are released 0.5 ms apart, those
        // of the base rate (10/s) 50 ms apart.
        let s = Schedule::Bursts {
            base_rate: 10.0,
            burst_rate: 1000.0,
            every: Duration::from_secs(10),
            length: Duration::from_secs(1),
        };
        let intended: Vec<Duration> = (85..1120)
            .map(|k| open_start(&s, k, None).unwrap())
            .collect();
        let at = releases(&intended, Duration::from_secs(9));
        assert_eq!(at[2] - at[1], Duration::from_millis(50));
        let in_burst = intended
            .iter()
            .position(|&i| i > Duration::from_millis(9050))
            .unwrap();
        let gap = at[in_burst + 1] - at[in_burst];
        assert!(gap <= Duration::from_micros(501), "{gap:?}");
    }

    #[test]
    fn a_pacer_left_behind_by_a_long_wait_releases_one_window_not_its_backlog() {
        // 10,000/s: the dispatcher waited 50 ms for a free slot after attempt 0.
        let s = Schedule::Constant { rate: 10_000.0 };
        let mut pacer = LatePacer::default();
        pacer.released(Duration::ZERO, Duration::ZERO);
        let mut now = Duration::from_millis(50);
        let mut together = 0;
        for k in 1..1000 {
            let i = open_start(&s, k, None).unwrap();
            let at = pacer.release_at(i, now);
            if at > now {
                break;
            }
            together += 1;
            pacer.released(i, at);
            now += Duration::from_nanos(1);
        }
        // 1 ms of releases at 20,000/s leave at once, not the 500 overdue.
        assert_eq!(together, 21);
    }

    #[test]
    fn zero_rate_never_schedules() {
        assert_eq!(open_start(&Schedule::Constant { rate: 0.0 }, 1, None), None);
    }
}
