//! The threshold tracker of one counting pool (spec 10.2): when activation began and where
//! the host's count stopped, so a run can say "activation began after 25 distinct clients;
//! count capped at 50".
//!
//! Fed by every attempt the host answered with a count (or that activated). It keeps:
//!
//! ```text
//! first_seen   CMID → smallest attempt number it appeared in   (at most DISTINCT_MAX CMIDs)
//! levels       per N sent: smallest activated attempt number
//! count_first  count value → smallest attempt number showing it (at most COUNT_VALUES_MAX)
//! max_count, last (attempt, count), answers
//! ```
//!
//! "Distinct clients before the first activation" = CMIDs whose first appearance has an attempt
//! number ≤ the first activated attempt. Attempt numbers follow the start order, so the
//! figure is the same however shards split the work and in whatever order records arrive;
//! with concurrency it counts clients *started* before the activating one. Everything merges
//! by min / max / union, exactly while fewer than [`DISTINCT_MAX`] distinct CMIDs reach a pool
//! (past that the tracker stops adding CMIDs and says so: `distinct_clients_capped`).

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::sim::mix::mix64;

/// Distinct CMIDs remembered per pool. Real thresholds are 5 and 25 (hosts accept N up to
/// 1000), so a pool with no activation after this many clients will not get one.
pub const DISTINCT_MAX: usize = 16_384;
/// Distinct count values remembered per pool (counts are capped at 2N by real hosts).
pub const COUNT_VALUES_MAX: usize = 4096;

/// Threshold figures of one pool, for `summary.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ThresholdSummary {
    /// The largest N (`RequiredClientCount`) sent to this pool; the fields below that are not
    /// in `by_required` are about clients with this N.
    pub required: u32,
    /// Distinct clients (CMIDs) that had reached the host when the first client with N =
    /// `required` activated, that client included.
    pub first_activation_after_clients: Option<u64>,
    /// Attempt number of that first activation.
    pub first_activation_attempt: Option<u64>,
    /// Largest count the host reported.
    pub max_count: Option<u32>,
    /// Count reported to the last attempt (highest attempt number) that got one.
    pub final_count: Option<u32>,
    /// Distinct CMIDs the host answered (at most [`DISTINCT_MAX`]).
    pub distinct_clients: u64,
    /// True when more CMIDs came than the tracker remembers.
    pub distinct_clients_capped: bool,
    /// Attempts that fed this tracker (host answered with a count, or activated).
    pub answers: u64,
    /// The same per N, for pools where clients send different N (e.g. servers 5, clients 25).
    pub by_required: Vec<LevelSummary>,
    /// When each count value was first reported: the count progression.
    pub count_steps: Vec<CountStep>,
}

/// First activation of the clients sending one N.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LevelSummary {
    /// N.
    pub required: u32,
    /// Distinct clients up to and including the first activation with this N.
    pub first_activation_after_clients: Option<u64>,
    /// Its attempt number.
    pub first_activation_attempt: Option<u64>,
}

/// A count value and the first attempt that was told it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CountStep {
    /// Reported count.
    pub count: u32,
    /// Smallest attempt number that got it.
    pub first_attempt: u64,
}

impl ThresholdSummary {
    /// One line for a report, e.g. "activation began after 25 distinct clients; count capped
    /// at 50". "Capped" means more distinct clients reached the host than it counted.
    pub fn sentence(&self) -> String {
        let clients = |n: u64| if n == 1 { "client" } else { "clients" };
        let at_least = if self.distinct_clients_capped {
            "at least "
        } else {
            ""
        };
        let first = match self.first_activation_after_clients {
            Some(k) if self.distinct_clients_capped && k >= DISTINCT_MAX as u64 => {
                format!(
                    "activation began after at least {k} distinct {}",
                    clients(k)
                )
            }
            Some(k) => format!("activation began after {k} distinct {}", clients(k)),
            None => {
                let d = self.distinct_clients;
                format!("no activation after {at_least}{d} distinct {}", clients(d))
            }
        };
        let count = match self.max_count {
            Some(m) if self.distinct_clients > u64::from(m) => format!("count capped at {m}"),
            Some(m) => format!("count reached {m}"),
            None => "no count reported".to_owned(),
        };
        format!("{first}; {count}")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Level {
    required: u32,
    first_activation: Option<u64>,
}

/// See the module docs.
#[derive(Debug, Clone, Default)]
pub(super) struct PoolTracker {
    answers: u64,
    levels: Vec<Level>,
    first_seen: HashMap<Uuid, u64, BuildHasherDefault<IdHasher>>,
    capped: bool,
    max_count: Option<u32>,
    last: Option<(u64, u32)>,
    count_first: BTreeMap<u32, u64>,
}

fn min_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) | (None, x) => x,
    }
}

impl PoolTracker {
    /// One answered attempt.
    pub(super) fn observe(
        &mut self,
        attempt: u64,
        cmid: Uuid,
        required: u32,
        count: Option<u32>,
        activated: bool,
    ) {
        self.answers += 1;
        let activation = activated.then_some(attempt);
        match self.levels.iter_mut().find(|l| l.required == required) {
            Some(l) => l.first_activation = min_opt(l.first_activation, activation),
            None => self.levels.push(Level {
                required,
                first_activation: activation,
            }),
        }
        let full = self.first_seen.len() >= DISTINCT_MAX;
        match self.first_seen.get_mut(&cmid) {
            Some(a) => *a = (*a).min(attempt),
            None if full => self.capped = true,
            None => {
                self.first_seen.insert(cmid, attempt);
            }
        }
        if let Some(c) = count {
            self.max_count = Some(self.max_count.map_or(c, |m| m.max(c)));
            self.last = self.last.max(Some((attempt, c)));
            let full = self.count_first.len() >= COUNT_VALUES_MAX;
            match self.count_first.get_mut(&c) {
                Some(a) => *a = (*a).min(attempt),
                None if full => {}
                None => {
                    self.count_first.insert(c, attempt);
                }
            }
        }
    }

    pub(super) fn merge(&mut self, other: &Self) {
        self.answers += other.answers;
        for l in &other.levels {
            match self.levels.iter_mut().find(|m| m.required == l.required) {
                Some(m) => m.first_activation = min_opt(m.first_activation, l.first_activation),
                None => self.levels.push(*l),
            }
        }
        for (&cmid, &a) in &other.first_seen {
            let e = self.first_seen.entry(cmid).or_insert(a);
            *e = (*e).min(a);
        }
        self.capped |= other.capped;
        if self.first_seen.len() > DISTINCT_MAX {
            let mut v: Vec<(u64, Uuid)> = self.first_seen.iter().map(|(&c, &a)| (a, c)).collect();
            v.sort_unstable();
            v.truncate(DISTINCT_MAX);
            self.first_seen = v.into_iter().map(|(a, c)| (c, a)).collect();
            self.capped = true;
        }
        self.max_count = self.max_count.max(other.max_count);
        self.last = self.last.max(other.last);
        for (&c, &a) in &other.count_first {
            let e = self.count_first.entry(c).or_insert(a);
            *e = (*e).min(a);
        }
        while self.count_first.len() > COUNT_VALUES_MAX {
            self.count_first.pop_last();
        }
    }

    pub(super) fn answers(&self) -> u64 {
        self.answers
    }

    fn clients_up_to(&self, attempt: u64) -> u64 {
        self.first_seen.values().filter(|&&a| a <= attempt).count() as u64
    }

    /// The summary, or `None` when nothing reached this pool.
    pub(super) fn summary(&self) -> Option<ThresholdSummary> {
        if self.answers == 0 {
            return None;
        }
        let mut by_required: Vec<LevelSummary> = self
            .levels
            .iter()
            .map(|l| LevelSummary {
                required: l.required,
                first_activation_after_clients: l.first_activation.map(|a| self.clients_up_to(a)),
                first_activation_attempt: l.first_activation,
            })
            .collect();
        by_required.sort_unstable_by_key(|l| l.required);
        let top = by_required.last().copied();
        Some(ThresholdSummary {
            required: top.map_or(0, |l| l.required),
            first_activation_after_clients: top.and_then(|l| l.first_activation_after_clients),
            first_activation_attempt: top.and_then(|l| l.first_activation_attempt),
            max_count: self.max_count,
            final_count: self.last.map(|(_, c)| c),
            distinct_clients: self.first_seen.len() as u64,
            distinct_clients_capped: self.capped,
            answers: self.answers,
            by_required,
            count_steps: self
                .count_first
                .iter()
                .map(|(&count, &first_attempt)| CountStep {
                    count,
                    first_attempt,
                })
                .collect(),
        })
    }
}

/// Hasher for CMIDs: two SplitMix64 rounds instead of SipHash. CMIDs are not attacker-chosen
/// in a load test, and this sits on the per-attempt path.
#[derive(Default)]
pub(super) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 = mix64(self.0 ^ u64::from_le_bytes(b));
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = mix64(self.0 ^ n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmid(i: u64) -> Uuid {
        Uuid::from_u64_pair(mix64(i + 1), i)
    }

    /// A vlmcsd `-M1 -E1`-like host: counts distinct CMIDs, capped at 2N.
    fn host_run(t: &mut PoolTracker, clients: u64, n: u32) {
        for i in 0..clients {
            let count = (i + 1).min(2 * u64::from(n)) as u32;
            t.observe(i, cmid(i), n, Some(count), count >= n);
        }
    }

    #[test]
    fn the_issue_sentence_from_a_synthetic_sequence() {
        let mut t = PoolTracker::default();
        host_run(&mut t, 60, 25);
        let s = t.summary().expect("answers");
        assert_eq!(s.required, 25);
        assert_eq!(s.first_activation_after_clients, Some(25));
        assert_eq!(s.first_activation_attempt, Some(24));
        assert_eq!(s.max_count, Some(50));
        assert_eq!(s.final_count, Some(50));
        assert_eq!(s.distinct_clients, 60);
        assert_eq!(s.count_steps.len(), 50);
        assert_eq!(
            s.count_steps[49],
            CountStep {
                count: 50,
                first_attempt: 49
            }
        );
        assert_eq!(
            s.sentence(),
            "activation began after 25 distinct clients; count capped at 50"
        );
    }

    #[test]
    fn repeated_cmids_are_one_client() {
        let mut t = PoolTracker::default();
        for i in 0..10 {
            t.observe(i, cmid(i % 3), 5, Some(3), false);
        }
        let s = t.summary().expect("answers");
        assert_eq!(s.distinct_clients, 3);
        assert_eq!(s.first_activation_after_clients, None);
        assert_eq!(
            s.sentence(),
            "no activation after 3 distinct clients; count reached 3"
        );
    }

    #[test]
    fn charged_host_activates_the_first_client() {
        let mut t = PoolTracker::default();
        t.observe(0, cmid(0), 25, Some(25), true);
        let s = t.summary().expect("answers");
        assert_eq!(
            s.sentence(),
            "activation began after 1 distinct client; count reached 25"
        );
    }

    #[test]
    fn mixed_n_reports_each_level_and_the_largest_on_top() {
        let mut t = PoolTracker::default();
        for i in 0..30u64 {
            let n = if i % 2 == 0 { 5 } else { 25 };
            let count = (i + 1) as u32;
            t.observe(i, cmid(i), n, Some(count), count >= n);
        }
        let s = t.summary().expect("answers");
        assert_eq!(s.required, 25);
        assert_eq!(s.first_activation_after_clients, Some(26));
        assert_eq!(
            s.by_required,
            [
                LevelSummary {
                    required: 5,
                    first_activation_after_clients: Some(5),
                    first_activation_attempt: Some(4)
                },
                LevelSummary {
                    required: 25,
                    first_activation_after_clients: Some(26),
                    first_activation_attempt: Some(25)
                },
            ]
        );
    }

    #[test]
    fn merge_is_split_and_order_independent() {
        let mut all = PoolTracker::default();
        host_run(&mut all, 60, 25);
        let (mut a, mut b) = (PoolTracker::default(), PoolTracker::default());
        for i in (0..60u64).rev() {
            let count = (i + 1).min(50) as u32;
            let t = if i % 3 == 1 { &mut a } else { &mut b };
            t.observe(i, cmid(i), 25, Some(count), count >= 25);
        }
        let mut ab = a.clone();
        ab.merge(&b);
        let mut ba = b;
        ba.merge(&a);
        assert_eq!(ab.summary(), all.summary());
        assert_eq!(ba.summary(), all.summary());
    }

    #[test]
    fn distinct_cmids_are_bounded() {
        let mut t = PoolTracker::default();
        let n = DISTINCT_MAX as u64 + 10;
        for i in 0..n {
            t.observe(i, cmid(i), 25, Some(1), false);
        }
        let s = t.summary().expect("answers");
        assert_eq!(s.distinct_clients, DISTINCT_MAX as u64);
        assert!(s.distinct_clients_capped);
        assert_eq!(s.answers, n);
        assert_eq!(
            s.sentence(),
            format!(
                "no activation after at least {DISTINCT_MAX} distinct clients; count capped at 1"
            )
        );
        // Merging two big halves stays bounded and keeps the earliest CMIDs.
        let (mut a, mut b) = (PoolTracker::default(), PoolTracker::default());
        for i in 0..n {
            let t = if i % 2 == 0 { &mut a } else { &mut b };
            t.observe(i, cmid(i), 25, Some(1), i == n - 1);
        }
        a.merge(&b);
        let s = a.summary().expect("answers");
        assert_eq!(s.distinct_clients, DISTINCT_MAX as u64);
        assert_eq!(s.first_activation_after_clients, Some(DISTINCT_MAX as u64));
        assert!(s.sentence().starts_with("activation began after at least"));
    }

    #[test]
    fn count_values_are_bounded() {
        let mut t = PoolTracker::default();
        for i in 0..(COUNT_VALUES_MAX as u64 + 5) {
            t.observe(i, cmid(0), 5, Some(i as u32), false);
        }
        let s = t.summary().expect("answers");
        assert_eq!(s.count_steps.len(), COUNT_VALUES_MAX);
        assert_eq!(s.max_count, Some(COUNT_VALUES_MAX as u32 + 4));
        assert_eq!(PoolTracker::default().summary(), None);
    }
}
