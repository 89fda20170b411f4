//! `kmsload merge DIR... --out DIR`: one result, with one verdict, from the shards of a run.
//!
//! Each shard's results directory holds its `summary.json` (with the `shard` block), the
//! scenario it ran (`scenario.toml`) and `events.csv`, one row per attempt. The merge checks
//! that the directories are the shards of one run, then replays every attempt of every shard
//! into one recorder in the order they ended, on one clock (each shard's times are moved by
//! its start's offset from the earliest shard's start). So the merged result is what one
//! process making all the attempts would have recorded: outcome, code, cause, product and
//! fault tallies are sums; the latency histograms hold every attempt's own values (the same
//! counts the shards' HdrHistogram logs hold, added bucket by bucket); the timeline is on
//! absolute time; the threshold tracker sees the answers in time order. Gates are evaluated
//! on that, and the files are written as `kmsload run` writes them, plus a table of the
//! shards, and an events.csv of every attempt on the merged clock.
//!
//! Refused with exit 2 (and the reason): directories of different runs (run id, scenario or
//! seed differ), the same shard twice, a missing shard (unless `--allow-missing`: then the
//! result names the missing shards and is marked incomplete), and a shard whose events.csv
//! does not hold all its attempts (an attempt the drain deadline abandoned is counted in
//! summary.json but has no row, so such a shard cannot be merged exactly).
//!
//! Not merged: the per-second in-flight gauge (each process sampled its own) and host
//! identity changes (events.csv has no ePID/HwID); the shards' own reports keep both.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Deserialize;

use super::{CliError, Status};
use crate::catalog::lookup;
use crate::record::{AttemptRecord, EventWriter, replay};
use crate::record::{GeneratorStats, RunResult};
use crate::report::{ShardInfo, TargetInfo};
use crate::scenario::{self, Overrides, Plan};

/// Options of `kmsload merge`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kmsload merge results/run-7/shard-* --out results/run-7/merged\n  kmsload merge a b c --out merged --allow-missing --junit gates.xml"
)]
pub struct Args {
    /// The shards' results directories (each written by `kmsload run --shard I/N`).
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,

    /// Where to write the merged result.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Merge even when shards are missing; the result names them and is marked incomplete
    /// (and so does not pass).
    #[arg(long)]
    pub allow_missing: bool,

    /// Also write the gates as JUnit XML to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Do not write report.html.
    #[arg(long)]
    pub no_html: bool,

    /// Compare the merged result with this earlier run, as `kmsload run --baseline` does.
    #[arg(long, value_name = "DIR")]
    pub baseline: Option<PathBuf>,

    /// Tolerances of the --baseline comparison (as for `kmsload compare`).
    #[command(flatten)]
    pub tolerances: super::compare::ToleranceArgs,
}

/// The parts of a shard's summary.json the merge reads.
#[derive(Debug, Deserialize)]
struct ShardSummary {
    scenario: String,
    config: ShardConfig,
    target: ShardTarget,
    shard: ShardInfo,
    complete: bool,
    #[serde(default)]
    aborted: Option<String>,
    dispatched: u64,
    #[serde(default)]
    not_started: u64,
    abandoned: u64,
    attempts: u64,
    elapsed_s: f64,
    offered_rate: Option<f64>,
    achieved_rate: f64,
    generator: ShardGenerator,
    gates: Vec<ShardGate>,
    gates_passed: bool,
}

#[derive(Debug, Deserialize)]
struct ShardConfig {
    seed: u64,
}

#[derive(Debug, Deserialize)]
struct ShardTarget {
    address: String,
    in_process: bool,
}

#[derive(Debug, Deserialize)]
struct ShardGenerator {
    max_lag_us: u64,
    late_attempts: u64,
    process_cpu_s: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct ShardGate {
    name: String,
    pass: bool,
}

/// One shard, read and checked.
struct Shard {
    dir: PathBuf,
    summary: ShardSummary,
    scenario_text: String,
    started: SystemTime,
}

fn usage(message: String) -> CliError {
    CliError::Usage(format!("{message}\nnothing was merged"))
}

fn read_shard(dir: &Path) -> Result<Shard, CliError> {
    let path = dir.join("summary.json");
    let text = fs::read_to_string(&path).map_err(|e| {
        usage(format!(
            "{}: {e}: give the results directories the shards wrote (--out of kmsload run)",
            path.display()
        ))
    })?;
    let summary: ShardSummary = serde_json::from_str(&text).map_err(|e| {
        usage(format!(
            "{}: not the summary of a kmsload shard ({e}); results written before shards \
             existed cannot be merged",
            path.display()
        ))
    })?;
    let scenario_path = dir.join("scenario.toml");
    let scenario_text = fs::read_to_string(&scenario_path)
        .map_err(|e| usage(format!("{}: {e}", scenario_path.display())))?;
    let started = humantime::parse_rfc3339(&summary.shard.started_utc).map_err(|e| {
        usage(format!(
            "{}: shard.started_utc `{}`: {e}",
            path.display(),
            summary.shard.started_utc
        ))
    })?;
    Ok(Shard {
        dir: dir.to_owned(),
        summary,
        scenario_text,
        started,
    })
}

/// Checks that `shards` are the shards of one run; returns the missing indexes.
fn check_one_run(shards: &[Shard], allow_missing: bool) -> Result<Vec<u32>, CliError> {
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
        } else {
            None
        };
        if let Some(why) = differs {
            return Err(usage(format!(
                "{} and {} are not shards of one run ({why})",
                s.dir.display(),
                first.dir.display()
            )));
        }
    }
    let mut seen: BTreeMap<u32, &Path> = BTreeMap::new();
    for s in shards {
        if let Some(other) = seen.insert(s.summary.shard.index, &s.dir) {
            return Err(usage(format!(
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
        return Err(usage(format!(
            "run {}: shard(s) {} of {} missing; give every shard's directory, or \
             --allow-missing to merge what is there (the result is then marked incomplete)",
            f.shard.run_id,
            list.join(", "),
            f.shard.count
        )));
    }
    Ok(missing)
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Runs `kmsload merge`.
///
/// # Errors
/// [`CliError::Usage`] when the directories are not the shards of one run (nothing is
/// written); [`CliError::Runtime`] when the merged result cannot be written.
pub fn run(args: Args) -> Result<Status, CliError> {
    let mut shards = args
        .dirs
        .iter()
        .map(|d| read_shard(d))
        .collect::<Result<Vec<_>, _>>()?;
    let missing = check_one_run(&shards, args.allow_missing)?;
    shards.sort_by_key(|s| s.summary.shard.index);
    let first = &shards[0];

    // The plan: the scenario the shards ran, with their seed; its gates judge the merge.
    let resolve = |s: &str| lookup::find(s).map_err(|e| e.to_string());
    let mut plan: Plan = scenario::parse_str(
        &first.scenario_text,
        &first.dir.join("scenario.toml"),
        &Overrides {
            seed: Some(first.summary.config.seed),
            out: Some(args.out.clone()),
            ..Overrides::default()
        },
        &resolve,
    )
    .map_err(|e| usage(format!("the shards' scenario no longer validates: {e}")))?;
    plan.load.run_id = Some(first.summary.shard.run_id.clone());
    plan.load.shard = crate::load::Shard::WHOLE;

    // Every attempt of every shard, on the earliest shard's clock.
    let origin = shards
        .iter()
        .map(|s| s.started)
        .min()
        .unwrap_or(first.started);
    let mut labels = replay::Labels::default();
    let mut records: Vec<AttemptRecord> = Vec::new();
    for s in &shards {
        let offset = micros(s.started.duration_since(origin).unwrap_or_default());
        let path = s.dir.join("events.csv");
        let file = fs::File::open(&path).map_err(|e| usage(format!("{}: {e}", path.display())))?;
        let end = replay::read_events(
            std::io::BufReader::new(file),
            offset,
            &mut labels,
            false,
            |rec| {
                records.push(rec);
            },
        )
        .map_err(|e| usage(format!("{}: {e}", path.display())))?;
        let rows = end.rows;
        if rows != s.summary.attempts {
            return Err(usage(format!(
                "{}: events.csv has {rows} attempts but summary.json counts {} ({} abandoned \
                 at the drain deadline have no row): this shard cannot be merged exactly",
                s.dir.display(),
                s.summary.attempts,
                s.summary.abandoned
            )));
        }
    }
    // In the order the attempts ended, as one recorder would have seen them.
    replay::sort_by_end(&mut records);
    let recorder = replay::record_all(&records);

    let elapsed = shards
        .iter()
        .map(|s| {
            s.started.duration_since(origin).unwrap_or_default()
                + Duration::from_secs_f64(s.summary.elapsed_s.max(0.0))
        })
        .max()
        .unwrap_or_default();
    let attempts = recorder.attempts();
    let achieved_rate = attempts as f64 / elapsed.as_secs_f64().max(1e-9);
    let sum_opt = |f: &dyn Fn(&ShardSummary) -> Option<f64>| -> Option<f64> {
        shards.iter().map(|s| f(&s.summary)).sum()
    };
    let result = RunResult {
        rebuilt: None,
        recorder,
        started: origin,
        late_start_us: shards
            .iter()
            .filter_map(|s| s.summary.shard.late_start_us)
            .max(),
        elapsed,
        complete: missing.is_empty() && shards.iter().all(|s| s.summary.complete),
        aborted: shards.iter().find_map(|s| s.summary.aborted.clone()),
        dispatched: shards.iter().map(|s| s.summary.dispatched).sum(),
        not_started: shards.iter().map(|s| s.summary.not_started).sum(),
        abandoned: shards.iter().map(|s| s.summary.abandoned).sum(),
        offered_rate: sum_opt(&|s| s.offered_rate),
        achieved_rate,
        events_error: None,
        // Per-host discovery splits are not merged across shards yet (their latency
        // percentiles cannot be combined from summaries); a merged summary has none.
        by_host: Vec::new(),
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
        },
    };
    let target = TargetInfo {
        address: first.summary.target.address.clone(),
        in_process: first.summary.target.in_process,
    };
    let in_process = shards.iter().any(|s| s.summary.target.in_process);

    fs::create_dir_all(&args.out)
        .map_err(|e| CliError::Runtime(format!("cannot create {}: {e}", args.out.display())))?;
    fs::write(args.out.join("scenario.toml"), &first.scenario_text)
        .map_err(|e| CliError::Runtime(format!("cannot write {}: {e}", args.out.display())))?;
    // events.csv of the whole run, in the order the attempts ended, times on the merged
    // clock: the report reads its per-second percentiles and charge curves from it.
    let events = args.out.join("events.csv");
    let written = fs::File::create(&events)
        .map_err(csv::Error::from)
        .and_then(|f| {
            let mut w = EventWriter::new(std::io::BufWriter::new(f))?;
            for rec in &records {
                w.write(rec)?;
            }
            w.flush().map_err(csv::Error::from)
        });
    written.map_err(|e| CliError::Runtime(format!("cannot write {}: {e}", events.display())))?;
    let options = crate::run::Options {
        junit: args.junit.clone(),
        no_html: args.no_html,
        baseline: args.baseline.clone(),
        tolerances: args.tolerances.tolerances(),
    };
    let f = crate::run::finish(&args.out, &plan, &target, &result, &options).map_err(from_run)?;
    // The shard table goes after the summary, before the twin sections: report.md is
    // rewritten with it inserted where the summary ends.
    let table = shard_table(&shards, origin, &missing, in_process);
    let md = args.out.join("report.md");
    let text = fs::read_to_string(&md).unwrap_or_default();
    let text = match text.find(&f.markdown) {
        Some(at) => {
            let end = at + f.markdown.len();
            format!("{}\n{table}{}", &text[..end], &text[end..])
        }
        None => format!("{text}{table}"),
    };
    fs::write(&md, text)
        .map_err(|e| CliError::Runtime(format!("cannot write {}: {e}", md.display())))?;
    crate::outln!("{}", f.markdown);
    print!("{table}");
    crate::outln!("results: {}", f.dir.display());
    if let Some(page) = &f.page {
        crate::outln!("report: {}", page.display());
    }
    if let Some(c) = &f.comparison {
        crate::outln!("\n{}", c.text());
    }
    if let Some(e) = f.report_error {
        return Err(from_run(e));
    }
    if let Err(e) = result.recorder.invariant_check() {
        return Err(CliError::Runtime(format!(
            "accounting check failed after the merge: {e} (this is a kmsload bug)"
        )));
    }
    if !f.complete {
        crate::errln!("merged result is incomplete: a shard is missing or was interrupted");
        return Ok(Status::Failure);
    }
    Ok(if f.passed() {
        Status::Success
    } else {
        Status::Failure
    })
}

fn from_run(e: crate::run::Error) -> CliError {
    match e {
        crate::run::Error::Usage(m) => CliError::Usage(m),
        crate::run::Error::Runtime(m) => CliError::Runtime(m),
    }
}

/// The per-shard table of report.md: attempts, achieved rate, generator lateness, start
/// offset from the earliest shard, and each shard's own gate verdict.
fn shard_table(shards: &[Shard], origin: SystemTime, missing: &[u32], in_process: bool) -> String {
    let count = shards[0].summary.shard.count;
    let mut t = format!(
        "\n## Shards\n\nRun `{}`: {} of {count} shards merged.\n\n",
        shards[0].summary.shard.run_id,
        shards.len()
    );
    if !missing.is_empty() {
        let list: Vec<String> = missing.iter().map(u32::to_string).collect();
        let _ = writeln!(
            t,
            "**INCOMPLETE: shard(s) {} missing; the figures above leave their attempts out.**\n",
            list.join(", ")
        );
    }
    if in_process {
        t.push_str(
            "Note: the shards ran against their own in-process hosts, so each counted its own \
             clients; the threshold above is recomputed as if one host had seen them all.\n\n",
        );
    }
    t.push_str("| shard | attempts | achieved /s | max generator lag | late attempts | start offset | late start | own gates |\n");
    t.push_str("|---:|---:|---:|---:|---:|---:|---:|---|\n");
    for s in shards {
        let m = &s.summary;
        let offset = s.started.duration_since(origin).unwrap_or_default();
        let failed: Vec<&str> = m
            .gates
            .iter()
            .filter(|g| !g.pass)
            .map(|g| g.name.as_str())
            .collect();
        let _ = writeln!(
            t,
            "| {} | {} | {:.1} | {:.1} ms | {} | {:.1} ms | {} | {} |",
            m.shard.index,
            m.attempts,
            m.achieved_rate,
            m.generator.max_lag_us as f64 / 1000.0,
            m.generator.late_attempts,
            offset.as_secs_f64() * 1000.0,
            m.shard
                .late_start_us
                .map_or("-".to_owned(), |us| format!("{:.1} ms", us as f64 / 1000.0)),
            if m.gates_passed {
                "pass".to_owned()
            } else {
                format!("FAIL ({})", failed.join(", "))
            }
        );
    }
    t
}
