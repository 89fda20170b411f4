//! Which fault an attempt gets ([`FaultPlan::decide`]), and the seeded choices a fault makes
//! once it is injected ([`InjectedFault`]): jitter, the cut point inside a PDU, the bytes a
//! corruption flips.
//!
//! # One draw per attempt
//!
//! ```text
//! u    = Stream::new(seed, TAG_SELECT).derive(client).unit(attempt)      in [0, 1)
//! draw = Stream::new(seed, TAG_DRAW).derive(client).at(attempt)          the fault's own bits
//!
//! rules in file order take consecutive slices of [0, 1):
//!   rule 0: [0, p0)   rule 1: [p0, p0 + p1)   rule 2: [p0 + p1, p0 + p1 + p2) ...
//! the rule whose slice holds u fires, if the run's elapsed time is inside its window
//! ```
//!
//! So at most one fault per attempt, and each rule fires with exactly its probability as long
//! as the probabilities add up to at most 1. Past 1, the slices are cut at 1: the rules at the
//! end of the list get less than they ask for, or nothing ([`FaultPlan::overcommitted`]
//! says when). A rule outside its window keeps its slice and fires nothing, so whether an
//! attempt is faulted depends only on (seed, client, attempt) and, through the windows, on
//! when it ran: an attempt can be replayed from those values alone.
//!
//! The seeded choices inside a fault come from `draw`, with one sub-stream per kind of choice
//! (tags below), so they are the same on every replay of the same attempt.

use std::ops::Range;
use std::time::Duration;

use crate::faults::{CutPoint, Direction, FaultKind, FaultRule, Region, StallPhase};
use crate::sim::mix::Stream;

use super::region;

/// Stream tag of the per-attempt selection draw under the run seed: "fltsel" in ASCII (tags
/// below 0x100 belong to the fleet, see [`crate::sim::mix::Stream::new`]).
pub const TAG_SELECT: u64 = 0x666C_7473_656C;
/// Stream tag of the per-attempt fault bits under the run seed: "fltdrw" in ASCII.
pub const TAG_DRAW: u64 = 0x666C_7464_7277;

/// Sub-streams keyed by an attempt's `draw`.
mod sub {
    /// Jitter of the i-th delay: "jitter".
    pub(super) const JITTER: u64 = 0x6A69_7474_6572;
    /// Cut point inside a PDU: "cut".
    pub(super) const CUT: u64 = 0x0063_7574;
    /// Corruption position (index 0) and masks (index 1..): "corrupt".
    pub(super) const CORRUPT: u64 = 0x0063_6F72_7275_7074;
}

/// The fault rules of a run with its seed: decides, per attempt, which fault (if any) is
/// injected.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    slices: Vec<Slice>,
    select: Stream,
    draw: Stream,
    total: f64,
}

#[derive(Debug, Clone)]
struct Slice {
    rule: FaultRule,
    from: f64,
    to: f64,
}

impl FaultPlan {
    /// A plan for `rules` (in file order) under the run's `seed`.
    pub fn new(rules: &[FaultRule], seed: u64) -> Self {
        let mut cum = 0.0f64;
        let slices = rules
            .iter()
            .map(|rule| {
                // Validation keeps probabilities in [0, 1]; clamp anyway so a NaN or a
                // negative value can only make a rule fire less.
                let p = if rule.probability.is_nan() {
                    0.0
                } else {
                    rule.probability.clamp(0.0, 1.0)
                };
                let from = cum.min(1.0);
                cum += p;
                Slice {
                    rule: rule.clone(),
                    from,
                    to: cum.min(1.0),
                }
            })
            .collect();
        Self {
            slices,
            select: Stream::new(seed, TAG_SELECT),
            draw: Stream::new(seed, TAG_DRAW),
            total: cum,
        }
    }

    /// True when no rule can ever fire (no rules, or every probability 0): the runner can then
    /// use the plain connector and skip the wrapper altogether.
    pub fn is_empty(&self) -> bool {
        self.slices.iter().all(|s| s.to <= s.from)
    }

    /// The rules, in the order they take their slices.
    pub fn rules(&self) -> impl Iterator<Item = &FaultRule> {
        self.slices.iter().map(|s| &s.rule)
    }

    /// True when the probabilities add up to more than 1, so the last rules fire less often
    /// than written (worth a warning before a run).
    pub fn overcommitted(&self) -> bool {
        self.total > 1.0 + 1e-12
    }

    /// The fault for attempt `attempt` of client `client`, started `elapsed` after the run
    /// began; `None` for a clean attempt. Pure: the same arguments give the same answer.
    ///
    /// `attempt` is the client's own attempt counter (0 for its first), or any number the
    /// caller can compute again when replaying.
    pub fn decide(&self, client: u64, attempt: u64, elapsed: Duration) -> Option<InjectedFault> {
        if self.slices.is_empty() {
            return None;
        }
        let u = self.select.derive(client).unit(attempt);
        let (rule, slice) = self
            .slices
            .iter()
            .enumerate()
            .find(|(_, s)| s.from <= u && u < s.to)?;
        if slice.rule.window.is_some_and(|w| !w.contains(elapsed)) {
            return None;
        }
        Some(InjectedFault {
            kind: slice.rule.kind,
            rule,
            draw: self.draw.derive(client).at(attempt),
        })
    }
}

/// A fault decided for one attempt: what happens, which rule it came from, and the seeded
/// bits of its own choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InjectedFault {
    /// What happens.
    pub kind: FaultKind,
    /// Index of the rule in the plan (file order; flag order for `activate`).
    pub rule: usize,
    /// Seeded bits behind the fault's choices (jitter, cut point, corrupted bytes).
    pub draw: u64,
}

impl InjectedFault {
    /// A fault outside any plan (tests, one-off use): rule 0.
    pub fn new(kind: FaultKind, draw: u64) -> Self {
        Self {
            kind,
            rule: 0,
            draw,
        }
    }

    /// A short label for the recorder's `fault` field and reports, e.g. `refuse`,
    /// `reset:mid_pdu`, `corrupt:payload`, `stall:request`.
    pub fn label(&self) -> &'static str {
        match self.kind {
            FaultKind::Delay { on, .. } => match on {
                Direction::Connect => "delay:connect",
                Direction::Send => "delay:send",
                Direction::Receive => "delay:receive",
            },
            FaultKind::Refuse => "refuse",
            FaultKind::Blackhole => "blackhole",
            FaultKind::Reset { at } => match at {
                CutPoint::AfterBytes(_) => "reset:after_bytes",
                CutPoint::MidPdu => "reset:mid_pdu",
            },
            FaultKind::Truncate { at } => match at {
                CutPoint::AfterBytes(_) => "truncate:after_bytes",
                CutPoint::MidPdu => "truncate:mid_pdu",
            },
            FaultKind::Corrupt { region, .. } => match region {
                Region::RpcHeader => "corrupt:rpc_header",
                Region::Stub => "corrupt:stub",
                Region::Payload => "corrupt:payload",
            },
            FaultKind::Stall { phase, .. } => match phase {
                StallPhase::Bind => "stall:bind",
                StallPhase::Request => "stall:request",
            },
            FaultKind::Trickle { on, .. } => match on {
                Direction::Connect => "trickle:connect",
                Direction::Send => "trickle:send",
                Direction::Receive => "trickle:receive",
            },
        }
    }

    /// True for faults that happen once per attempt (refuse, blackhole, reset, truncate,
    /// corrupt, stall); false for conditions that hold for all of an attempt's traffic
    /// (delay, trickle).
    pub fn is_event(&self) -> bool {
        !matches!(
            self.kind,
            FaultKind::Delay { .. } | FaultKind::Trickle { .. }
        )
    }

    /// The `i`-th delay of a delay fault (0 for the connect): `delay` plus `jitter` times a
    /// seeded fraction in [0, 1). Zero for other kinds.
    pub fn delay(&self, i: u64) -> Duration {
        match self.kind {
            FaultKind::Delay { delay, jitter, .. } => {
                let u = Stream::new(self.draw, sub::JITTER).unit(i);
                delay.saturating_add(jitter.mul_f64(u))
            }
            _ => Duration::ZERO,
        }
    }

    /// Where a mid-PDU cut falls in a PDU of `frag_length` bytes: the number of its bytes the
    /// client receives, in `1..frag_length` (at least one byte, never all). 1 when
    /// `frag_length` < 2.
    pub fn cut_offset(&self, frag_length: usize) -> usize {
        let inside = frag_length.saturating_sub(1) as u64;
        let k = Stream::new(self.draw, sub::CUT).below(0, inside);
        // k < inside <= usize::MAX.
        1 + k as usize
    }

    /// The bytes a corruption flips in `pdu` (one whole received PDU): `(offset, xor mask)`
    /// pairs in offset order, a run of up to `bytes` consecutive positions of the region
    /// (see [`region`] for which bytes each region holds). Empty when this is not a
    /// corruption, `pdu` is not a response, or the region does not exist in it (a refusal has
    /// no payload). Every mask has its top bit set, so it is never 0 and a `ptype` can never
    /// turn into another valid type.
    pub fn corruption(&self, pdu: &[u8]) -> Vec<(usize, u8)> {
        let FaultKind::Corrupt { region, bytes } = self.kind else {
            return Vec::new();
        };
        let ranges = region::positions(region, pdu);
        let total: usize = ranges.iter().map(Range::len).sum();
        if total == 0 {
            return Vec::new();
        }
        let run = (bytes as usize).clamp(1, total);
        let s = Stream::new(self.draw, sub::CORRUPT);
        // `total - run + 1` start positions keep the whole run inside the region.
        let start = s.below(0, (total - run + 1) as u64) as usize;
        (0..run)
            .filter_map(|i| {
                let offset = region::nth(&ranges, start + i)?;
                let mask = 0x80 | (s.at(1 + i as u64) & 0x7F) as u8;
                Some((offset, mask))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::Window;

    fn rule(kind: FaultKind, probability: f64) -> FaultRule {
        FaultRule {
            kind,
            probability,
            window: None,
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn decisions_replay_and_differ_between_clients() {
        let plan = FaultPlan::new(&[rule(FaultKind::Refuse, 0.5)], 7);
        let a: Vec<_> = (0..64).map(|n| plan.decide(3, n, secs(1))).collect();
        let b: Vec<_> = (0..64).map(|n| plan.decide(3, n, secs(1))).collect();
        assert_eq!(a, b);
        let other: Vec<_> = (0..64).map(|n| plan.decide(4, n, secs(1))).collect();
        assert_ne!(a, other);
        let reseeded = FaultPlan::new(&[rule(FaultKind::Refuse, 0.5)], 8);
        let c: Vec<_> = (0..64).map(|n| reseeded.decide(3, n, secs(1))).collect();
        assert_ne!(a, c);
    }

    #[test]
    fn probability_zero_never_and_one_always() {
        let never = FaultPlan::new(&[rule(FaultKind::Refuse, 0.0)], 1);
        assert!(never.is_empty());
        let always = FaultPlan::new(&[rule(FaultKind::Blackhole, 1.0)], 1);
        assert!(!always.is_empty());
        for client in 0..50 {
            for attempt in 0..50 {
                assert_eq!(never.decide(client, attempt, secs(0)), None);
                let f = always.decide(client, attempt, secs(0)).unwrap();
                assert_eq!(f.kind, FaultKind::Blackhole);
                assert_eq!(f.rule, 0);
            }
        }
        assert!(FaultPlan::new(&[], 1).is_empty());
    }

    #[test]
    fn window_is_honoured() {
        let mut r = rule(FaultKind::Refuse, 1.0);
        r.window = Some(Window {
            start: secs(20),
            end: secs(40),
        });
        let plan = FaultPlan::new(&[r], 1);
        assert_eq!(plan.decide(0, 0, Duration::from_millis(19_999)), None);
        assert!(plan.decide(0, 0, secs(20)).is_some());
        assert!(plan.decide(0, 0, Duration::from_millis(39_999)).is_some());
        assert_eq!(plan.decide(0, 0, secs(40)), None);
    }

    #[test]
    fn rules_fire_at_their_own_rates_one_at_a_time() {
        let plan = FaultPlan::new(
            &[
                rule(FaultKind::Refuse, 0.1),
                rule(FaultKind::Blackhole, 0.2),
                rule(
                    FaultKind::Truncate {
                        at: CutPoint::MidPdu,
                    },
                    0.3,
                ),
            ],
            99,
        );
        assert!(!plan.overcommitted());
        let mut counts = [0u32; 4];
        let n = 100_000;
        for i in 0..n {
            match plan.decide(i % 1000, i / 1000, secs(0)) {
                Some(f) => counts[f.rule] += 1,
                None => counts[3] += 1,
            }
        }
        // Four standard deviations at n = 100k are below 0.6 percentage points.
        for (got, want) in counts.iter().zip([0.1, 0.2, 0.3, 0.4]) {
            let share = f64::from(*got) / f64::from(n as u32);
            assert!((share - want).abs() < 0.006, "{counts:?}");
        }
    }

    #[test]
    fn overcommitted_rules_are_cut_at_one() {
        let plan = FaultPlan::new(
            &[
                rule(FaultKind::Refuse, 0.8),
                rule(FaultKind::Blackhole, 0.8),
                rule(FaultKind::Refuse, 0.5),
            ],
            1,
        );
        assert!(plan.overcommitted());
        let mut seen = [0u32; 3];
        for a in 0..10_000 {
            let f = plan.decide(0, a, secs(0)).unwrap();
            seen[f.rule] += 1;
        }
        assert_eq!(seen[2], 0);
        assert!(seen[0] > 7_500 && seen[1] > 1_500, "{seen:?}");
    }

    #[test]
    fn labels_name_kind_and_variant() {
        let f = |kind| InjectedFault::new(kind, 0).label();
        assert_eq!(f(FaultKind::Refuse), "refuse");
        assert_eq!(f(FaultKind::Blackhole), "blackhole");
        assert_eq!(
            f(FaultKind::Reset {
                at: CutPoint::MidPdu
            }),
            "reset:mid_pdu"
        );
        assert_eq!(
            f(FaultKind::Truncate {
                at: CutPoint::AfterBytes(3)
            }),
            "truncate:after_bytes"
        );
        assert_eq!(
            f(FaultKind::Corrupt {
                region: Region::Payload,
                bytes: 1
            }),
            "corrupt:payload"
        );
        assert_eq!(
            f(FaultKind::Stall {
                phase: StallPhase::Bind,
                duration: None
            }),
            "stall:bind"
        );
        assert_eq!(
            f(FaultKind::Delay {
                on: Direction::Connect,
                delay: secs(1),
                jitter: Duration::ZERO
            }),
            "delay:connect"
        );
        assert_eq!(
            f(FaultKind::Trickle {
                on: Direction::Receive,
                chunk: 1,
                every: secs(1)
            }),
            "trickle:receive"
        );
    }

    #[test]
    fn delays_stay_within_delay_plus_jitter_and_replay() {
        let kind = FaultKind::Delay {
            on: Direction::Receive,
            delay: Duration::from_millis(100),
            jitter: Duration::from_millis(50),
        };
        let f = InjectedFault::new(kind, 1234);
        let mut distinct = std::collections::BTreeSet::new();
        for i in 0..100 {
            let d = f.delay(i);
            assert!(d >= Duration::from_millis(100) && d < Duration::from_millis(150));
            assert_eq!(d, InjectedFault::new(kind, 1234).delay(i));
            distinct.insert(d);
        }
        assert!(distinct.len() > 90);
        assert_eq!(
            InjectedFault::new(FaultKind::Refuse, 1).delay(0),
            Duration::ZERO
        );
    }

    #[test]
    fn cut_offsets_fall_strictly_inside_the_pdu() {
        let kind = FaultKind::Reset {
            at: CutPoint::MidPdu,
        };
        let mut seen = std::collections::BTreeSet::new();
        for draw in 0..2_000 {
            let k = InjectedFault::new(kind, draw).cut_offset(108);
            assert!((1..108).contains(&k), "{k}");
            seen.insert(k);
        }
        assert_eq!(seen.len(), 107, "every inner position is reachable");
        assert_eq!(InjectedFault::new(kind, 5).cut_offset(0), 1);
        assert_eq!(InjectedFault::new(kind, 5).cut_offset(2), 1);
    }
}
