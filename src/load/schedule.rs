//! When each attempt should start: the pacing policy of the one runner.
//!
//! Open model: the schedule gives the expected number of arrivals by time `t`; attempt `k`
//! (0-based) is due when that number reaches `k`. Latency is measured from that intended
//! start, so a host that makes attempts wait cannot hide its queue (coordinated omission).
//! Closed model: a fixed number of client slots; the next attempt is due as soon as a slot is
//! free (after its think time).

use std::time::Duration;

use crate::scenario::Schedule;

/// The pacing policy.
#[derive(Debug, Clone, PartialEq)]
pub enum Pacing {
    /// Arrivals follow a rate schedule, independent of how fast the host answers.
    Open(Schedule),
    /// `clients` slots, each running one attempt at a time with `think` between them.
    Closed {
        /// Concurrent clients.
        clients: u32,
        /// Pause after each attempt before the slot's next one.
        think: Duration,
    },
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Stage;

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

    #[test]
    fn zero_rate_never_schedules() {
        assert_eq!(open_start(&Schedule::Constant { rate: 0.0 }, 1, None), None);
    }
}
