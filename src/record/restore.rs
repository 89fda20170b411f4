//! A [`Recorder`] rebuilt from what a results directory holds, so the shards of a run can be
//! merged exactly without their per-attempt rows:
//!
//! ```text
//! summary.json  attempts, by_outcome, by_code, by_cause, faults, products, hosts  → tallies
//!               timeline rows (started, completed, outcomes, codes, in-flight)    → timeline
//! histograms.hlog  <phase>.<outcome>, faulted.<phase>.<outcome>,
//!                  product.<index>.<phase>                                         → histograms
//! timeline.hlog    one `total` histogram per second                               → timeline
//! ```
//!
//! Everything but the threshold tracker is restored exactly: tallies are counts, and a
//! histogram read back from the log has the very buckets the shard recorded. The tracker
//! needs every answered attempt's CMID in time order, which only events.csv holds: a restored
//! recorder's threshold is empty until the caller replays those rows with
//! [`Recorder::observe_threshold`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use hdrhistogram::Histogram;

use super::hosts::HostTracker;
use super::recorder::{Counts, FaultStats};
use super::summary::{ByOutcome, PhaseLatency, Summary};
use super::timeline::{Timeline, TimelineRow};
use super::{AttemptRecord, HexCode, LatencyPhase, Outcome, Recorder};

/// One results directory's recorded state, as read back from its files.
#[derive(Debug, Clone, Copy)]
pub struct Saved<'a> {
    /// summary.json's recorder part.
    pub summary: &'a Summary,
    /// summary.json's `timeline`.
    pub timeline: &'a [TimelineRow],
    /// histograms.hlog by tag.
    pub run_histograms: &'a BTreeMap<String, Histogram<u64>>,
    /// timeline.hlog: the fault-free total-time histogram of each second.
    pub second_histograms: &'a BTreeMap<u64, Histogram<u64>>,
}

/// Labels (causes, faults) are `&'static str` in a recorder; each distinct one read back is
/// kept once for the life of the process (a run has a handful).
fn label(text: &str) -> &'static str {
    static LABELS: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let mut set = LABELS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(l) = set.get(text) {
        return l;
    }
    let l: &'static str = Box::leak(text.to_owned().into_boxed_str());
    set.insert(l);
    l
}

fn counts(attempts: u64, by_outcome: &ByOutcome<u64>, by_code: &BTreeMap<HexCode, u64>) -> Counts {
    let mut c = Counts {
        attempts,
        outcomes: [
            by_outcome.activated,
            by_outcome.not_activated,
            by_outcome.failed,
        ],
        ..Counts::default()
    };
    for (code, n) in by_code {
        c.codes.add(code.0, *n);
    }
    c
}

/// Checks that the log's histogram of `what` holds as many values as the summary counts.
fn check(
    what: &str,
    latency: &PhaseLatency,
    phase: LatencyPhase,
    h: Option<&Histogram<u64>>,
) -> Result<(), String> {
    let want = latency.get(phase).map_or(0, |l| l.count);
    let have = h.map_or(0, Histogram::len);
    if want == have {
        Ok(())
    } else {
        Err(format!(
            "histograms.hlog holds {have} {what} values but summary.json counts {want}"
        ))
    }
}

impl Recorder {
    /// The recorder that wrote `saved`, with every timeline second moved `shift_s` later;
    /// its threshold tracker is empty (see the module docs of `record::restore`). Also returns what could
    /// not be restored: a histograms.hlog written before it held per-product histograms
    /// (the products' tallies are restored, their latency is not).
    ///
    /// # Errors
    /// When the files disagree (a histogram's count is not the summary's, a HwID is
    /// malformed): the directory was damaged or mixed from two runs.
    pub fn restore(saved: &Saved<'_>, shift_s: u64) -> Result<(Self, Vec<String>), String> {
        let s = saved.summary;
        let hist = |tag: String| saved.run_histograms.get(&tag);
        let mut r = Self {
            counts: counts(s.attempts, &s.by_outcome, &s.by_code),
            faulted: s.faulted_attempts,
            timeline: Timeline::restore(saved.timeline, saved.second_histograms, shift_s),
            hosts: HostTracker::restore(&s.hosts)?,
            ..Self::default()
        };
        for (cause, n) in &s.by_cause {
            r.causes.add(label(cause), *n);
        }
        for (faulted, prefix) in [(false, ""), (true, "faulted.")] {
            for outcome in Outcome::ALL {
                let sets = if faulted { &mut r.dirty } else { &mut r.clean };
                for phase in LatencyPhase::ALL {
                    let h = hist(format!("{prefix}{phase}.{}", outcome.as_str()));
                    if !faulted {
                        let by = &s.latency_us_by_outcome;
                        let l = match outcome {
                            Outcome::Activated => &by.activated,
                            Outcome::NotActivated => &by.not_activated,
                            Outcome::Failed => &by.failed,
                        };
                        check(&format!("{phase} {}", outcome.as_str()), l, phase, h)?;
                    }
                    if let Some(h) = h {
                        sets[outcome.index()].add_phase(phase, h);
                    }
                }
            }
        }
        for phase in LatencyPhase::ALL {
            let have: u64 = r
                .dirty
                .iter()
                .filter_map(|set| set.get(phase))
                .map(Histogram::len)
                .sum();
            let want = s.latency_us_faulted.get(phase).map_or(0, |l| l.count);
            if have != want {
                return Err(format!(
                    "histograms.hlog holds {have} faulted {phase} values but summary.json counts {want}"
                ));
            }
        }
        let mut notes = Vec::new();
        let per_product = saved
            .run_histograms
            .keys()
            .any(|k| k.starts_with("product."));
        if !per_product && s.products.iter().any(|p| p.latency_us.total.is_some()) {
            notes.push(
                "histograms.hlog has no per-product histograms (written by an older kmsload): \
                 per-product latency is left out"
                    .to_owned(),
            );
        }
        for p in &s.products {
            let stats = r.product_mut(p.index);
            stats.counts = counts(p.attempts, &p.by_outcome, &p.by_code);
            stats.faulted = p.faulted_attempts;
            for phase in LatencyPhase::ALL {
                let h = hist(format!("product.{}.{phase}", p.index));
                if !per_product {
                    continue;
                }
                check(
                    &format!("product {} {phase}", p.index),
                    &p.latency_us,
                    phase,
                    h,
                )?;
                if let Some(h) = h {
                    stats.clean.add_phase(phase, h);
                }
            }
        }
        for f in &s.faults {
            r.faults.push(FaultStats {
                fault: label(&f.fault),
                counts: counts(f.attempts, &f.by_outcome, &f.by_code),
            });
        }
        Ok((r, notes))
    }

    /// Feeds one attempt to the threshold tracker only: [`Recorder::record`]'s part for the
    /// threshold, and all a restored recorder needs (its tallies and histograms already hold
    /// the attempt). Attempts that got no answer (no count, not activated) are ignored.
    pub fn observe_threshold(&mut self, rec: &AttemptRecord) {
        let activated = rec.outcome == Outcome::Activated;
        if rec.reported_count.is_some() || activated {
            self.pools[rec.pool.index()].observe(
                rec.attempt,
                rec.cmid,
                rec.required,
                rec.reported_count,
                activated,
            );
        }
    }
}
