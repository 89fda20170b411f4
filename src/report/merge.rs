//! One result from the shards of a run (`kmsload merge`): reads every shard's results
//! directory with the one results schema ([`read`]), checks they are the shards of one run,
//! and builds the [`RunResult`] one process making all their attempts would have produced.
//!
//! ```text
//! shard dir ── summary.json ───────► tallies, products, faults, causes, hosts, timeline rows,
//!          │                         in-flight samples, by_host, generator, shard block
//!          ├── histograms.hlog ────► latency histograms (phase × outcome, faulted, product)
//!          ├── timeline.hlog ──────► per-second total-time histograms
//!          └── events.csv (optional) threshold tracker; the merged events.csv
//!                                    │
//!      Recorder::restore (each shard, timeline moved by its start offset) ─► Recorder::merge
//! ```
//!
//! Exact: attempts, outcomes, codes, causes, faults, per-product and per-host tallies are
//! sums; histograms are the shards' HdrHistograms added bucket by bucket (the same buckets an
//! unsharded run fills); timelines are aligned on absolute time, to the second; in-flight
//! samples of one second are added (an upper bound when shards peak at different moments).
//! The threshold tracker needs every answered attempt's CMID: it is recomputed from the
//! shards' events.csv when every shard has one row per attempt (shards share one attempt
//! numbering, and the tracker keys everything on it, so the result is the unsharded one).
//! Otherwise (events off or failures only) the merged summary has no threshold figures and
//! [`MergeInfo::notes`] says why. `by_host` latency percentiles cannot be merged from
//! percentiles: the merged max is exact, p50 and p99 are the largest of the shards' values,
//! an upper bound (the quantile of a mixture lies between its parts' quantiles).
//!
//! Refused ([`MergeError`]): directories of different runs (run id, scenario, seed, shard
//! count or overrides differ; the source addresses may differ), the same shard twice, a
//! missing shard unless `allow_missing` (the result then names it and is incomplete), and
//! files that disagree with each other.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};

use super::read::{self, read_hlog};
use super::{SummaryFile, TargetInfo};
use crate::catalog::lookup;
use crate::discover::HostSplit;
use crate::discover::SplitLatency;
use crate::record::{GeneratorStats, MergeInfo, Recorder, RunResult, Saved, ShardRow, replay};
use crate::scenario::{self, Plan};

/// Why the directories cannot be merged (the user's input: exit 2, nothing written).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MergeError(pub String);

/// One shard, read back.
struct ShardDir {
    dir: PathBuf,
    summary: SummaryFile,
    scenario_text: String,
    started: SystemTime,
    run_histograms: BTreeMap<String, Histogram<u64>>,
    second_histograms: BTreeMap<u64, Histogram<u64>>,
}

/// The merged run, ready for [`crate::run::finish`].
pub struct Merged {
    /// The plan the shards ran (their scenario, seed and overrides); its gates judge the
    /// merge.
    pub plan: Plan,
    /// The scenario file's text, as the shards kept it.
    pub scenario_text: String,
    /// The target, as the first shard names it.
    pub target: TargetInfo,
    /// Everything merged; `result.merge` describes the shards.
    pub result: RunResult,
    shards: Vec<(PathBuf, u64)>,
}

fn fail(message: impl Into<String>) -> MergeError {
    MergeError(message.into())
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Reads timeline.hlog into second → histogram (interval start, relative to the log's
/// base time, which is the run start).
fn read_second_hlog(bytes: &[u8], path: &Path) -> Result<BTreeMap<u64, Histogram<u64>>, String> {
    let mut out: BTreeMap<u64, Histogram<u64>> = BTreeMap::new();
    let mut de = Deserializer::new();
    for entry in IntervalLogIterator::new(bytes) {
        let entry = entry.map_err(|e| format!("{}: {e:?}", path.display()))?;
        let LogEntry::Interval(h) = entry else {
            continue;
        };
        let raw = read::base64_decode(h.encoded_histogram())
            .ok_or_else(|| format!("{}: a histogram is not valid base64", path.display()))?;
        let hist: Histogram<u64> = de
            .deserialize(&mut io::Cursor::new(raw))
            .map_err(|e| format!("{}: {e:?}", path.display()))?;
        let second = h.start_timestamp().as_secs_f64().round() as u64;
        match out.get_mut(&second) {
            Some(acc) => acc
                .add(&hist)
                .map_err(|e| format!("{}: {e:?}", path.display()))?,
            None => {
                out.insert(second, hist);
            }
        }
    }
    Ok(out)
}

fn read_shard(dir: &Path) -> Result<ShardDir, MergeError> {
    let summary = read::read_summary(dir).map_err(|e| {
        fail(format!(
            "{e}; give the results directories the shards wrote (--out of kmsload run)"
        ))
    })?;
    let scenario_path = dir.join("scenario.toml");
    let scenario_text = fs::read_to_string(&scenario_path)
        .map_err(|e| fail(format!("{}: {e}", scenario_path.display())))?;
    let started = humantime::parse_rfc3339(&summary.shard.started_utc).map_err(|e| {
        fail(format!(
            "{}: shard.started_utc {:?}: {e}; results written before shards existed cannot be \
             merged",
            dir.join("summary.json").display(),
            summary.shard.started_utc
        ))
    })?;
    let hlog = dir.join("histograms.hlog");
    let bytes = fs::read(&hlog).map_err(|e| {
        fail(format!(
            "{}: {e}; the latency histograms are merged from it",
            hlog.display()
        ))
    })?;
    let run_histograms = read_hlog(&bytes, &hlog).map_err(|e| fail(e.to_string()))?;
    let tlog = dir.join("timeline.hlog");
    let bytes = fs::read(&tlog).map_err(|e| {
        fail(format!(
            "{}: {e}; the per-second histograms are merged from it",
            tlog.display()
        ))
    })?;
    let second_histograms = read_second_hlog(&bytes, &tlog).map_err(fail)?;
    Ok(ShardDir {
        dir: dir.to_owned(),
        summary,
        scenario_text,
        started,
        run_histograms,
        second_histograms,
    })
}

/// Checks that `shards` are the shards of one run; returns the missing indexes.
fn check_one_run(shards: &[ShardDir], allow_missing: bool) -> Result<Vec<u32>, MergeError> {
    let first = &shards[0];
    let f = &first.summary;
    for s in &shards[1..] {
        let o = &s.summary;
        let differs = if o.shard.run_id != f.shard.run_id {
            Some(format!("run id {} vs {}", o.shard.run_id, f.shard.run_id))
        } else if o.scenario != f.scenario || s.scenario_text != first.scenario_text {
            Some(format!("scenario {} vs {}", o.scenario, f.scenario))
        } else if o.config.seed != f.config.seed {
            Some(format!("seed {} vs {}", o.config.seed, f.config.seed))
        } else if o.shard.count != f.shard.count {
            Some(format!("{} shards vs {}", o.shard.count, f.shard.count))
        } else if !o.shard.overrides.same_run(&f.shard.overrides) {
            Some(format!(
                "command-line overrides {:?} vs {:?}",
                o.shard.overrides, f.shard.overrides
            ))
        } else {
            None
        };
        if let Some(why) = differs {
            return Err(fail(format!(
                "{} and {} are not shards of one run ({why})",
                s.dir.display(),
                first.dir.display()
            )));
        }
    }
    let mut seen: BTreeMap<u32, &Path> = BTreeMap::new();
    for s in shards {
        if let Some(other) = seen.insert(s.summary.shard.index, &s.dir) {
            return Err(fail(format!(
                "shard {} appears twice: {} and {}",
                s.summary.shard.index,
                other.display(),
                s.dir.display()
            )));
        }
    }
    let missing: Vec<u32> = (0..f.shard.count)
        .filter(|i| !seen.contains_key(i))
        .collect();
    if !missing.is_empty() && !allow_missing {
        let list: Vec<String> = missing.iter().map(u32::to_string).collect();
        return Err(fail(format!(
            "run {}: shard(s) {} of {} missing; give every shard's directory, or \
             --allow-missing to merge what is there (the result is then marked incomplete)",
            f.shard.run_id,
            list.join(", "),
            f.shard.count
        )));
    }
    Ok(missing)
}

/// Sums the shards' per-host splits; see the module docs for the latency percentiles.
pub fn merge_by_host<'a>(splits: impl IntoIterator<Item = &'a [HostSplit]>) -> Vec<HostSplit> {
    let mut out: BTreeMap<String, (HostSplit, u128)> = BTreeMap::new();
    for split in splits {
        for h in split {
            let (m, cost) = out.entry(h.host.clone()).or_insert_with(|| {
                (
                    HostSplit {
                        host: h.host.clone(),
                        ..HostSplit::default()
                    },
                    0,
                )
            });
            m.attempts += h.attempts;
            m.activated += h.activated;
            m.not_activated += h.not_activated;
            m.failed += h.failed;
            for (code, n) in &h.codes {
                *m.codes.entry(code.clone()).or_default() += n;
            }
            m.latency_us = match (m.latency_us, h.latency_us) {
                (Some(a), Some(b)) => Some(SplitLatency {
                    p50: a.p50.max(b.p50),
                    p99: a.p99.max(b.p99),
                    max: a.max.max(b.max),
                }),
                (a, b) => a.or(b),
            };
            m.failed_tries += h.failed_tries;
            m.failovers_in += h.failovers_in;
            m.failover_cost_us_max = m.failover_cost_us_max.max(h.failover_cost_us_max);
            add_seconds(&mut m.per_second, &h.per_second);
            add_seconds(&mut m.failovers_per_second, &h.failovers_per_second);
            *cost += u128::from(h.failover_cost_us_mean.unwrap_or(0)) * u128::from(h.failovers_in);
        }
    }
    out.into_values()
        .map(|(mut m, cost)| {
            m.failover_cost_us_mean = (m.failovers_in > 0)
                .then(|| u64::try_from(cost / u128::from(m.failovers_in)).unwrap_or(u64::MAX));
            m
        })
        .collect()
}

/// Adds `from` to `to` second by second (the shards share the run's time 0).
fn add_seconds(to: &mut Vec<u64>, from: &[u64]) {
    if to.len() < from.len() {
        to.resize(from.len(), 0);
    }
    for (t, f) in to.iter_mut().zip(from) {
        *t += f;
    }
}

/// Feeds one shard's events.csv to `recorder`'s threshold tracker (with the one events
/// reader, [`replay::read_events`]); returns the rows read.
fn replay_threshold(path: &Path, recorder: &mut Recorder) -> Result<u64, String> {
    let file = fs::File::open(path).map_err(|e| e.to_string())?;
    let mut labels = replay::Labels::default();
    let end = replay::read_events(
        io::BufReader::with_capacity(1 << 16, file),
        0,
        &mut labels,
        false,
        |rec| recorder.observe_threshold(&rec),
    )?;
    Ok(end.rows)
}

/// Merges the shards in `dirs` (see the module docs); `out` becomes the plan's output
/// directory.
///
/// # Errors
/// [`MergeError`] when the directories are not the complete shards of one run (see the
/// module docs) or a shard's files cannot be read or disagree.
pub fn merge(dirs: &[PathBuf], out: &Path, allow_missing: bool) -> Result<Merged, MergeError> {
    if dirs.is_empty() {
        return Err(fail("no shard directories given"));
    }
    let mut shards = dirs
        .iter()
        .map(|d| read_shard(d))
        .collect::<Result<Vec<_>, _>>()?;
    let missing = check_one_run(&shards, allow_missing)?;
    shards.sort_by_key(|s| s.summary.shard.index);
    let first = &shards[0];

    // The plan the shards ran: their scenario, seed and overrides (the source addresses are
    // each shard's own; the merged plan keeps none).
    let mut overrides = scenario::Overrides::from(&first.summary.shard.overrides);
    overrides.source_addresses = None;
    overrides.seed = Some(first.summary.config.seed);
    overrides.out = Some(out.to_owned());
    let resolve = |s: &str| lookup::find(s).map_err(|e| e.to_string());
    let mut plan = scenario::parse_str(
        &first.scenario_text,
        &first.dir.join("scenario.toml"),
        &overrides,
        &resolve,
    )
    .map_err(|e| fail(format!("the shards' scenario no longer validates: {e}")))?;
    plan.load.run_id = Some(first.summary.shard.run_id.clone());
    plan.load.shard = crate::load::Shard::WHOLE;
    plan.load.overrides = crate::load::shard::RunOverrides::from(&overrides);

    let origin = shards
        .iter()
        .map(|s| s.started)
        .min()
        .unwrap_or(first.started);
    let mut recorder = Recorder::new();
    // Only the threshold tracker, fed from every shard's events.csv; used when all have one
    // row per attempt.
    let mut threshold = Recorder::new();
    let mut notes = Vec::new();
    let mut events_complete = true;
    let mut rows = Vec::new();
    for s in &shards {
        let offset_us = micros(s.started.duration_since(origin).unwrap_or_default());
        let saved = Saved {
            summary: &s.summary.recorded,
            timeline: &s.summary.timeline,
            run_histograms: &s.run_histograms,
            second_histograms: &s.second_histograms,
        };
        let (r, restore_notes) = Recorder::restore(&saved, (offset_us + 500_000) / 1_000_000)
            .map_err(|e| fail(format!("{}: {e}", s.dir.display())))?;
        for n in restore_notes {
            notes.push(format!("shard {}: {n}", s.summary.shard.index));
        }
        r.invariant_check().map_err(|e| {
            fail(format!(
                "{}: summary.json does not add up ({e}); the directory is damaged",
                s.dir.display()
            ))
        })?;
        recorder.merge(&r);
        let events = s.dir.join("events.csv");
        if events_complete {
            let why = if !events.exists() {
                Some("no events.csv (events off)".to_owned())
            } else {
                match replay_threshold(&events, &mut threshold) {
                    Ok(n) if n == s.summary.recorded.attempts => None,
                    Ok(n) => Some(format!(
                        "events.csv has {n} rows for {} attempts (events off or failures only, \
                     or attempts abandoned at the drain deadline)",
                        s.summary.recorded.attempts
                    )),
                    Err(e) => Some(format!("{}: {e}", events.display())),
                }
            };
            if let Some(why) = why {
                events_complete = false;
                notes.push(format!(
                    "shard {}: {why}, so the threshold figures could not be recomputed from \
                     per-attempt records and are left out",
                    s.summary.shard.index
                ));
            }
        }
        let m = &s.summary;
        rows.push(ShardRow {
            index: m.shard.index,
            dir: s.dir.display().to_string(),
            attempts: m.recorded.attempts,
            achieved_rate: m.achieved_rate,
            offered_rate: m.offered_rate,
            max_lag_us: m.generator.max_lag_us,
            late_attempts: m.generator.late_attempts,
            start_offset_us: offset_us,
            late_start_us: m.shard.late_start_us,
            source_addresses: m
                .shard
                .overrides
                .source_addresses
                .clone()
                .unwrap_or_default(),
            complete: m.complete,
            failed_gates: m
                .gates
                .iter()
                .filter(|g| !g.pass)
                .map(|g| g.name.clone())
                .collect(),
        });
    }
    if events_complete {
        recorder.merge(&threshold);
    }
    if shards.iter().any(|s| !s.summary.by_host.is_empty()) && shards.len() > 1 {
        notes.push(
            "by_host: counts are sums; latency max is exact, p50 and p99 are the largest of \
             the shards' (an upper bound on the merged percentiles)"
                .to_owned(),
        );
    }
    if shards.iter().any(|s| s.summary.target.in_process) && shards.len() > 1 {
        notes.push(
            "the shards ran against their own in-process hosts, so each host counted only its \
             shard's clients; the threshold figures are recomputed as if one host had seen \
             them all"
                .to_owned(),
        );
    }

    let elapsed = shards
        .iter()
        .map(|s| {
            s.started.duration_since(origin).unwrap_or_default()
                + Duration::from_secs_f64(s.summary.elapsed_s.max(0.0))
        })
        .max()
        .unwrap_or_default();
    let attempts = recorder.attempts();
    let sum_opt = |f: &dyn Fn(&SummaryFile) -> Option<f64>| -> Option<f64> {
        shards.iter().map(|s| f(&s.summary)).sum()
    };
    let result = RunResult {
        recorder,
        started: origin,
        late_start_us: shards
            .iter()
            .filter_map(|s| s.summary.shard.late_start_us)
            .max(),
        elapsed,
        complete: missing.is_empty() && shards.iter().all(|s| s.summary.complete),
        rebuilt: None,
        aborted: shards.iter().find_map(|s| s.summary.aborted.clone()),
        dispatched: shards.iter().map(|s| s.summary.dispatched).sum(),
        not_started: shards.iter().map(|s| s.summary.not_started).sum(),
        abandoned: shards.iter().map(|s| s.summary.abandoned).sum(),
        offered_rate: sum_opt(&|s| s.offered_rate),
        achieved_rate: attempts as f64 / elapsed.as_secs_f64().max(1e-9),
        events_error: None,
        by_host: merge_by_host(shards.iter().map(|s| s.summary.by_host.as_slice())),
        generator: GeneratorStats {
            max_lag_us: shards
                .iter()
                .map(|s| s.summary.generator.max_lag_us)
                .max()
                .unwrap_or(0),
            late_attempts: shards
                .iter()
                .map(|s| s.summary.generator.late_attempts)
                .sum(),
            process_cpu_s: sum_opt(&|s| s.generator.process_cpu_s),
            process_cpu_busy: None,
            // Machine-wide counts: shards on one machine would each count the same drops.
            listen_queue: None,
            in_flight_limit: shards
                .iter()
                .map(|s| s.summary.generator.in_flight_limit)
                .sum(),
            slot_waits: shards.iter().map(|s| s.summary.generator.slot_waits).sum(),
            // Each shard's own process had its own; its summary.json says.
            connection_budget: None,
        },
        merge: Some(MergeInfo {
            run_id: first.summary.shard.run_id.clone(),
            count: first.summary.shard.count,
            shards: rows,
            missing,
            threshold_recomputed: events_complete,
            notes,
        }),
    };
    Ok(Merged {
        target: TargetInfo {
            address: first.summary.target.address.clone(),
            in_process: first.summary.target.in_process,
        },
        scenario_text: first.scenario_text.clone(),
        shards: shards
            .iter()
            .map(|s| {
                (
                    s.dir.clone(),
                    micros(s.started.duration_since(origin).unwrap_or_default()),
                )
            })
            .collect(),
        plan,
        result,
    })
}

impl Merged {
    /// Writes `out`/events.csv: every shard's rows, their intended starts moved onto the
    /// merged clock (the report reads per-second percentiles and charge curves from it).
    /// Shards without events.csv add nothing; returns how many rows were written.
    ///
    /// # Errors
    /// A read or write error, with the file it concerns.
    pub fn write_events(&self, out: &Path) -> Result<u64, String> {
        let path = out.join("events.csv");
        let file = fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut w = csv::Writer::from_writer(io::BufWriter::with_capacity(1 << 16, file));
        let mut header_written = false;
        let mut rows = 0u64;
        for (dir, offset_us) in &self.shards {
            let input = dir.join("events.csv");
            let Ok(mut rd) = csv::Reader::from_path(&input) else {
                continue;
            };
            let header = rd
                .headers()
                .map_err(|e| format!("{}: {e}", input.display()))?
                .clone();
            let start = header
                .iter()
                .position(|h| h == "intended_start_us")
                .ok_or_else(|| format!("{}: no intended_start_us column", input.display()))?;
            if !header_written {
                w.write_record(&header)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                header_written = true;
            }
            let mut row = csv::StringRecord::new();
            let mut shifted = csv::StringRecord::new();
            while rd
                .read_record(&mut row)
                .map_err(|e| format!("{}: {e}", input.display()))?
            {
                shifted.clear();
                for (i, f) in row.iter().enumerate() {
                    if i == start {
                        let us: u64 = f
                            .parse()
                            .map_err(|_| format!("{}: intended_start_us {f:?}", input.display()))?;
                        shifted.push_field(&(us + offset_us).to_string());
                    } else {
                        shifted.push_field(f);
                    }
                }
                w.write_record(&shifted)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                rows += 1;
            }
        }
        w.flush().map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(rows)
    }
}

/// The columns of the shards table, in report.md and report.html.
pub(super) const SHARD_COLUMNS: [&str; 9] = [
    "shard",
    "attempts",
    "achieved /s",
    "max generator lag",
    "late attempts",
    "start offset",
    "late start",
    "source addresses",
    "own gates",
];

/// One shard's row of the shards table, as plain text (report.html escapes each cell).
pub(super) fn shard_cells(s: &ShardRow) -> [String; 9] {
    let ms = |us: u64| format!("{:.1} ms", us as f64 / 1000.0);
    [
        s.index.to_string(),
        s.attempts.to_string(),
        format!("{:.1}", s.achieved_rate),
        ms(s.max_lag_us),
        s.late_attempts.to_string(),
        ms(s.start_offset_us),
        s.late_start_us.map_or("-".to_owned(), ms),
        if s.source_addresses.is_empty() {
            "-".to_owned()
        } else {
            s.source_addresses.join(", ")
        },
        if s.failed_gates.is_empty() {
            "pass".to_owned()
        } else {
            format!("FAIL ({})", s.failed_gates.join(", "))
        },
    ]
}

/// The per-shard section of report.md.
pub fn shard_table_markdown(m: &MergeInfo) -> String {
    let mut t = format!(
        "\n## Shards\n\nRun `{}`: {} of {} shards merged.\n\n",
        m.run_id,
        m.shards.len(),
        m.count
    );
    if !m.missing.is_empty() {
        let list: Vec<String> = m.missing.iter().map(u32::to_string).collect();
        let _ = writeln!(
            t,
            "**INCOMPLETE: shard(s) {} missing; the figures above leave their attempts out.**\n",
            list.join(", ")
        );
    }
    for n in &m.notes {
        let _ = writeln!(t, "Note: {n}.\n");
    }
    let _ = writeln!(t, "| {} |", SHARD_COLUMNS.join(" | "));
    t.push_str("|---:|---:|---:|---:|---:|---:|---:|---|---|\n");
    for s in &m.shards {
        let _ = writeln!(t, "| {} |", shard_cells(s).join(" | "));
    }
    t
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::catalog::{Application, products};
    use crate::client::Outcome;
    use crate::record::{AttemptRecord, EventWriter, Latencies};
    use crate::wire::Version;

    /// A mixed run: three products, every outcome, faults, causes, counts, ePIDs and HwIDs,
    /// spread over a few seconds, records in attempt order.
    fn records(n: u64) -> Vec<(AttemptRecord, u64)> {
        let catalog = products();
        let picks = [0usize, 7, catalog.len() - 1];
        (0..n)
            .map(|k| {
                let index = picks[(k % 3) as usize];
                let product = &catalog[index];
                let (outcome, code, cause, fault, count) = match k % 7 {
                    0 => (
                        Outcome::Failed,
                        0x8007_274D,
                        Some("connect refused"),
                        None,
                        None,
                    ),
                    1 => (
                        Outcome::Failed,
                        0x8007_2746,
                        Some("reset in request"),
                        Some("reset"),
                        None,
                    ),
                    2 | 3 => (
                        Outcome::NotActivated,
                        0xC004_F038,
                        None,
                        None,
                        Some((k % 20) as u32),
                    ),
                    _ => (
                        Outcome::Activated,
                        0,
                        None,
                        None,
                        Some(25 + (k % 30) as u32),
                    ),
                };
                let start = k * 13_000;
                let total = 500 + (k * 7919) % 40_000;
                let rec = AttemptRecord {
                    attempt: k,
                    client_index: k % 40,
                    intended_start_us: start,
                    cmid: Uuid::from_u64_pair(
                        0x1234_5678_9ABC_4DEF,
                        0x8000_0000_0000_0000 | (k % 40),
                    ),
                    product: index as u16,
                    protocol: Version { major: 6, minor: 0 },
                    latency: Latencies {
                        connect_us: Some(100 + k % 50),
                        bind_us: (k % 7 != 0).then_some(300 + k % 90),
                        request_us: (k % 7 > 1).then_some(1000 + k % 700),
                        total_us: Some(total),
                    },
                    outcome,
                    code,
                    cause,
                    fault,
                    reported_count: count,
                    pool: Application::of(product),
                    required: product.n_policy,
                    host: (k % 2) as u16,
                    epid: count.map(|_| format!("EPID-{}", k % 2)),
                    hwid: count.map(|_| [1, 2, 3, 4, 5, 6, 7, (k % 3) as u8]),
                };
                (rec, (start + total) / 1_000_000)
            })
            .collect()
    }

    /// What a results directory would hold for `r`, read back through the report's readers.
    fn files(
        r: &Recorder,
    ) -> (
        BTreeMap<String, Histogram<u64>>,
        BTreeMap<u64, Histogram<u64>>,
    ) {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut run = Vec::new();
        r.write_run_log(&mut run, Some(start), Duration::from_secs(9))
            .unwrap();
        let mut seconds = Vec::new();
        r.write_timeline_log(&mut seconds, Some(start)).unwrap();
        (
            read_hlog(&run, Path::new("histograms.hlog")).unwrap(),
            read_second_hlog(&seconds, Path::new("timeline.hlog")).unwrap(),
        )
    }

    fn restored(r: &Recorder, shift_s: u64) -> Recorder {
        let summary = r.summary();
        let timeline = r.timeline();
        let (run, seconds) = files(r);
        Recorder::restore(
            &Saved {
                summary: &summary,
                timeline: &timeline,
                run_histograms: &run,
                second_histograms: &seconds,
            },
            shift_s,
        )
        .unwrap()
        .0
    }

    #[test]
    fn a_recorder_restored_from_its_files_is_the_recorder_without_its_threshold() {
        let recs = records(700);
        let mut r = Recorder::new();
        for (rec, second) in &recs {
            r.record(rec, *second);
            r.sample_in_flight(*second, 3 + rec.attempt % 5);
        }
        let mut back = restored(&r, 0);
        back.invariant_check().unwrap();
        let (want, mut got) = (r.summary(), back.summary());
        assert!(got.threshold.is_empty(), "no threshold without the rows");
        got.threshold = want.threshold.clone();
        assert_eq!(got, want);
        assert_eq!(back.timeline(), r.timeline());
        assert_eq!(
            files(&back),
            files(&r),
            "every histogram, bucket for bucket"
        );
        // With the rows replayed, the threshold is the recorder's too.
        for (rec, _) in &recs {
            back.observe_threshold(rec);
        }
        assert_eq!(back.summary(), r.summary());
    }

    #[test]
    fn restored_shards_merge_to_the_unsharded_recorder() {
        let recs = records(900);
        let mut whole = Recorder::new();
        let mut parts = [Recorder::new(), Recorder::new(), Recorder::new()];
        for (rec, second) in &recs {
            whole.record(rec, *second);
            parts[(rec.attempt % 3) as usize].record(rec, *second);
        }
        let mut merged = Recorder::new();
        let mut threshold = Recorder::new();
        for p in &parts {
            merged.merge(&restored(p, 0));
        }
        for (rec, _) in &recs {
            threshold.observe_threshold(rec);
        }
        merged.merge(&threshold);
        merged.invariant_check().unwrap();
        assert_eq!(merged.summary(), whole.summary());
        assert_eq!(merged.timeline(), whole.timeline());
        assert_eq!(files(&merged), files(&whole));
        // A shard that started 2 s later: its seconds move, its histograms do not.
        let late = restored(&parts[1], 2);
        assert_eq!(late.summary(), restored(&parts[1], 0).summary());
        let first = parts[1].timeline()[0].second;
        assert_eq!(late.timeline()[0].second, first + 2);
    }

    #[test]
    fn a_log_that_disagrees_with_the_summary_is_refused() {
        let recs = records(50);
        let mut r = Recorder::new();
        for (rec, second) in &recs {
            r.record(rec, *second);
        }
        let mut summary = r.summary();
        summary
            .latency_us_by_outcome
            .activated
            .total
            .as_mut()
            .unwrap()
            .count += 1;
        let timeline = r.timeline();
        let (run, seconds) = files(&r);
        let e = Recorder::restore(
            &Saved {
                summary: &summary,
                timeline: &timeline,
                run_histograms: &run,
                second_histograms: &seconds,
            },
            0,
        )
        .unwrap_err();
        assert!(e.contains("total activated"), "{e}");
    }

    #[test]
    fn a_log_without_product_histograms_restores_with_a_note() {
        let recs = records(60);
        let mut r = Recorder::new();
        for (rec, second) in &recs {
            r.record(rec, *second);
        }
        let summary = r.summary();
        let timeline = r.timeline();
        let (mut run, seconds) = files(&r);
        run.retain(|tag, _| !tag.starts_with("product."));
        let (back, notes) = Recorder::restore(
            &Saved {
                summary: &summary,
                timeline: &timeline,
                run_histograms: &run,
                second_histograms: &seconds,
            },
            0,
        )
        .unwrap();
        assert!(notes[0].contains("no per-product histograms"), "{notes:?}");
        let got = back.summary();
        assert_eq!(got.latency_us, summary.latency_us);
        assert_eq!(got.products.len(), summary.products.len());
        for (g, w) in got.products.iter().zip(&summary.products) {
            assert_eq!((g.attempts, &g.by_code), (w.attempts, &w.by_code));
            assert_eq!(g.latency_us.total, None);
        }
    }

    #[test]
    fn by_host_is_the_sum_of_the_shards() {
        let split = |host: &str, attempts, ok, failovers, cost, p: (u64, u64, u64)| HostSplit {
            host: host.to_owned(),
            attempts,
            activated: ok,
            not_activated: 0,
            failed: attempts - ok,
            codes: BTreeMap::from([
                ("0x00000000".to_owned(), ok),
                ("0x8007274D".to_owned(), attempts - ok),
            ]),
            latency_us: Some(SplitLatency {
                p50: p.0,
                p99: p.1,
                max: p.2,
            }),
            failed_tries: attempts - ok,
            failovers_in: failovers,
            failover_cost_us_mean: (failovers > 0).then_some(cost),
            failover_cost_us_max: (failovers > 0).then_some(cost * 2),
            per_second: vec![attempts / 2, attempts - attempts / 2],
            failovers_per_second: vec![0, failovers],
        };
        let a = vec![
            split("kms1:1688", 10, 8, 2, 1000, (500, 900, 1000)),
            split("kms2:1688", 5, 5, 0, 0, (400, 450, 460)),
        ];
        let b = vec![split("kms1:1688", 6, 6, 2, 3000, (700, 800, 2000))];
        let m = merge_by_host([a.as_slice(), b.as_slice()]);
        assert_eq!(m.len(), 2);
        let k1 = &m[0];
        assert_eq!(k1.host, "kms1:1688");
        assert_eq!(
            (k1.attempts, k1.activated, k1.failed, k1.failed_tries),
            (16, 14, 2, 2)
        );
        assert_eq!(k1.codes["0x00000000"], 14);
        assert_eq!(k1.codes["0x8007274D"], 2);
        assert_eq!((k1.failovers_in, k1.failover_cost_us_mean), (4, Some(2000)));
        assert_eq!(k1.failover_cost_us_max, Some(6000));
        assert_eq!(k1.per_second, [8, 8]);
        assert_eq!(k1.failovers_per_second, [0, 4]);
        assert_eq!(
            k1.latency_us,
            Some(SplitLatency {
                p50: 700,
                p99: 900,
                max: 2000
            })
        );
        assert_eq!(m[1], b_or(&a[1]));
        // Summed over hosts, the attempts are the shards' attempts.
        let total: u64 = m.iter().map(|h| h.attempts).sum();
        assert_eq!(total, 21);
    }

    fn b_or(h: &HostSplit) -> HostSplit {
        HostSplit {
            failover_cost_us_mean: None,
            ..h.clone()
        }
    }

    #[test]
    fn the_threshold_replay_reads_events_csv() {
        let recs = records(200);
        let mut r = Recorder::new();
        let mut csv = Vec::new();
        {
            let mut w = EventWriter::new(&mut csv).unwrap();
            for (rec, second) in &recs {
                r.record(rec, *second);
                w.write(rec).unwrap();
            }
            w.flush().unwrap();
        }
        let dir = std::env::temp_dir().join(format!("kmsload-merge-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("events.csv");
        fs::write(&path, &csv).unwrap();
        let mut t = Recorder::new();
        assert_eq!(replay_threshold(&path, &mut t).unwrap(), 200);
        for pool in Application::ALL {
            assert_eq!(t.threshold(pool), r.threshold(pool), "{pool:?}");
        }
        assert!(!r.summary().threshold.is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }
}
