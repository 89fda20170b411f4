//! `report`: a run's results on disk, and the gates that decide its exit code. Measures
//! nothing: everything here reads what [`crate::record`] produced.
//!
//! A results directory (`results/<scenario>-<UTC time>/` unless `--out` says otherwise):
//!
//! | file | content |
//! |---|---|
//! | `summary.json` | schema_version, resolved config, counts by outcome and code, latency per phase, threshold per pool, hosts, gates, timeline, `complete`, `shard`; after `kmsload merge` also `merge` (the shards) |
//! | `events.csv` | one row per attempt (written while the run goes) |
//! | `histograms.hlog` | HdrHistogram interval log, one histogram per phase × outcome (fault-free and faulted) and per product × phase |
//! | `timeline.hlog` | HdrHistogram interval log of total latency per second |
//! | `report.md` | the human summary; `kmsload run` appends the text twin of report.html (capacity knee, codes over time, fault episodes: [`analysis::twin_markdown`]) |
//! | `report.html` | self-contained page with charts ([`html`]); not with `--no-html`; `kmsload report DIR` writes it for any results directory |
//! | `junit.xml` | only with `--junit FILE` (written there): one test case per gate |
//!
//! Reading a directory back is [`read`]'s job alone; [`compare`] judges a run against a
//! baseline, [`knee`] finds the capacity knee, [`svg`] draws the charts, [`merge`] makes one
//! result of the shards of a run.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::catalog::Application;
use crate::catalog::{hresult, products};
use crate::record::{GeneratorStats, HexCode, LATE_AFTER, RunResult, Summary, TimelineRow};
use crate::scenario::{LoadModel, Plan, Schedule};
use crate::values::DisplayDuration;

pub mod analysis;
pub mod compare;
pub mod gates;
pub mod html;
pub mod knee;
pub mod loghist;
pub mod merge;
pub mod read;
pub mod svg;
pub mod terms;

pub use gates::{GateResult, evaluate};

/// Version of the summary.json layout. Raised when a field changes meaning or disappears.
pub const SCHEMA_VERSION: u32 = 1;

/// What the run was pointed at, for the record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TargetInfo {
    /// `host:port`.
    pub address: String,
    /// True for the reference host started in-process.
    pub in_process: bool,
}

/// Everything summary.json holds: written by [`write_results`], read back by
/// [`read::read_summary`] into the same type. Every field has a default, so a file from an
/// older kmsload (or a trimmed one) still reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SummaryFile {
    /// Layout version ([`SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// kmsload's version.
    pub kmsload_version: String,
    /// Scenario name.
    pub scenario: String,
    /// The resolved configuration that ran.
    pub config: ConfigView,
    /// Target.
    pub target: TargetInfo,
    /// Start, UTC.
    pub started_utc: String,
    /// Which part of which run this is (`shard.count` 1: the whole run).
    pub shard: ShardInfo,
    /// The per-attempt rows written: `full` (events.csv, every attempt; also what an older
    /// summary without the key means), `failures` (failures.csv, the attempts that did not
    /// activate) or `off` (neither).
    pub events: crate::scenario::EventsMode,
    /// Seconds from the first attempt to the end of the last.
    pub elapsed_s: f64,
    /// False when interrupted (a signal) or aborted (a gate) before the scenario's bounds.
    pub complete: bool,
    /// The gate that aborted the run (`abort = true`), with what it measured.
    pub aborted: Option<String>,
    /// Present when `kmsload report` rebuilt these results from events.csv because the run
    /// was killed before writing them: what the rebuilt results lack. Such results are
    /// never complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebuilt: Option<String>,
    /// The run's verdict: it completed and every gate passed.
    pub passed: bool,
    /// Attempts dispatched.
    pub dispatched: u64,
    /// Attempts due before the duration bound that could not start by then (saturated
    /// runner); they were not run late.
    pub not_started: u64,
    /// Attempts cut short at the drain deadline (recorded as failed, cause `abandoned`).
    pub abandoned: u64,
    /// Arrivals per second the schedule asked for (open model).
    pub offered_rate: Option<f64>,
    /// Attempts finished per second.
    pub achieved_rate: f64,
    /// Whether kmsload kept up with its schedule, and its CPU use.
    pub generator: GeneratorStats,
    /// Everything the recorder summarised (attempts, by_outcome, by_code, latency_us, ...).
    #[serde(flatten)]
    pub recorded: Summary,
    /// Gate verdicts.
    pub gates: Vec<GateResult>,
    /// True when every gate passed (also when there are none).
    pub gates_passed: bool,
    /// One row per second.
    pub timeline: Vec<TimelineRow>,
    /// With `discover`: attempts, outcomes, codes, latency and failovers per host found.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub by_host: Vec<crate::discover::HostSplit>,
    /// For a merged result (`kmsload merge`): the shards it was made of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merge: Option<crate::record::MergeInfo>,
    /// The in-process hosts' outage windows (`down`), as the scenario set them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outages: Vec<crate::discover::HostOutage>,
}

impl SummaryFile {
    /// `by_code` as `(code, attempts)`, by code.
    pub fn codes(&self) -> Vec<(u32, u64)> {
        codes(&self.recorded.by_code)
    }

    /// Attempts whose code is not S_OK, over attempts (0 when there were none).
    pub fn error_rate(&self) -> f64 {
        let s = &self.recorded;
        let ok = s.by_code.get(&HexCode(0)).copied().unwrap_or(0);
        if s.attempts == 0 {
            0.0
        } else {
            s.attempts.saturating_sub(ok) as f64 / s.attempts as f64
        }
    }

    /// The limit, µs, of the scenario's `total p99 < X` gate, with the gate's name.
    pub fn total_p99_gate(&self) -> Option<(u64, &str)> {
        self.gates.iter().find_map(|g| {
            let mut words = g.name.split_whitespace();
            let is_it = words.next() == Some("total") && words.next() == Some("p99");
            is_it
                .then(|| g.limit.as_u64())
                .flatten()
                .map(|l| (l, g.name.as_str()))
        })
    }

    /// The limit of the scenario's `max_error_rate` gate (a fraction), if it has one.
    pub fn max_error_rate_gate(&self) -> Option<f64> {
        self.gates
            .iter()
            .find(|g| g.name.starts_with("error rate <="))
            .and_then(|g| g.limit.as_f64())
    }

    /// True for open-model runs (the offered rate does not depend on the host).
    pub fn is_open_model(&self) -> bool {
        self.config.load.starts_with("open") || self.offered_rate.is_some()
    }
}

/// A `by_code` map as `(code, attempts)`, by code.
pub fn codes(by_code: &BTreeMap<HexCode, u64>) -> Vec<(u32, u64)> {
    by_code.iter().map(|(c, n)| (c.0, *n)).collect()
}

/// summary.json's `shard`: the part of a run these results are, for `kmsload merge`.
/// A file without it (older kmsload) reads as a whole run with an empty run id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ShardInfo {
    /// 0-based shard index.
    pub index: u32,
    /// Shards in the run.
    pub count: u32,
    /// The run's id, the same in every shard of it.
    pub run_id: String,
    /// When this shard started, UTC, to the microsecond.
    pub started_utc: String,
    /// The common start it waited for (`--start-at`), if any.
    pub start_at_utc: Option<String>,
    /// How far after `start_at_utc` this shard started, µs (0: on time).
    pub late_start_us: Option<u64>,
    /// The command-line overrides it ran with.
    pub overrides: crate::load::shard::RunOverrides,
}

impl Default for ShardInfo {
    fn default() -> Self {
        Self {
            index: 0,
            count: 1,
            run_id: String::new(),
            started_utc: String::new(),
            start_at_utc: None,
            late_start_us: None,
            overrides: crate::load::shard::RunOverrides::default(),
        }
    }
}

impl ShardInfo {
    /// The shard block of `plan`'s run that started at `started`.
    pub fn of(plan: &Plan, run: &RunResult) -> Self {
        let shard = plan.load.shard;
        Self {
            index: shard.index,
            count: shard.count,
            run_id: plan.load.run_id.clone().unwrap_or_else(|| {
                crate::load::shard::default_run_id(&plan.name, plan.seed, plan.load.start_at)
            }),
            started_utc: humantime::format_rfc3339_micros(run.started).to_string(),
            start_at_utc: plan
                .load
                .start_at
                .map(|t| humantime::format_rfc3339_seconds(t).to_string()),
            late_start_us: run.late_start_us,
            overrides: plan.load.overrides.clone(),
        }
    }
}

/// The plan, as plain data for summary.json.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConfigView {
    /// Scenario name.
    pub name: String,
    /// Description, if any.
    pub description: Option<String>,
    /// Scenario file.
    pub source: Option<PathBuf>,
    /// Seed of the fleet and schedule.
    pub seed: u64,
    /// Fleet size.
    pub fleet_size: u64,
    /// Product mix.
    pub products: Vec<ProductView>,
    /// Share of virtual machines.
    pub vm_fraction: f64,
    /// Clock-skew distribution.
    pub skew: String,
    /// `renew` or `new`.
    pub reuse: String,
    /// CMID pool size, if any.
    pub cmid_pool: Option<u64>,
    /// Load model, in words.
    pub load: String,
    /// Duration bound, seconds.
    pub max_duration_s: Option<f64>,
    /// Attempt bound.
    pub max_attempts: Option<u64>,
    /// Connection policy.
    pub connection: String,
    /// Local source addresses.
    pub source_addresses: Vec<String>,
    /// In-flight cap.
    pub max_in_flight: u32,
    /// Timeouts, seconds.
    pub timeouts_s: [f64; 4],
    /// NDR mode and BTFN.
    pub client: String,
    /// Gates as written.
    pub gates: Vec<String>,
    /// Fault rules.
    pub faults: Vec<String>,
    /// The fault rules' windows, `[start, end)` in seconds from the run start (rules without
    /// a window apply to the whole run and are not listed): the report shades them.
    pub fault_windows_s: Vec<[f64; 2]>,
    /// Staged load: the stages that hold a rate (target = the rate before), `[start, end)` in
    /// seconds; the seconds between them ramp, and the capacity table leaves them out. Empty
    /// for other schedules.
    pub holds_s: Vec<[f64; 2]>,
}

/// One product of the mix.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProductView {
    /// Edition name.
    pub name: String,
    /// SKU ID.
    pub sku_id: uuid::Uuid,
    /// Weight in the mix.
    pub weight: f64,
    /// Protocol version used.
    pub protocol: u16,
}

impl ConfigView {
    /// The plan as plain data.
    pub fn of(plan: &Plan) -> Self {
        let f = &plan.fleet;
        Self {
            name: plan.name.clone(),
            description: plan.description.clone(),
            source: plan.source.clone(),
            seed: plan.seed,
            fleet_size: f.size,
            products: f
                .products
                .iter()
                .map(|s| ProductView {
                    name: s.product.name.clone(),
                    sku_id: s.product.sku_id,
                    weight: s.weight,
                    protocol: s.protocol,
                })
                .collect(),
            vm_fraction: f.vm_fraction,
            skew: terms::skew(&f.skew),
            reuse: terms::reuse(f.reuse).to_owned(),
            cmid_pool: f.cmid_pool,
            load: describe_load(&plan.load.model),
            max_duration_s: plan.load.bounds.max_duration.map(|d| d.as_secs_f64()),
            max_attempts: plan.load.bounds.max_attempts,
            connection: terms::connection(&plan.load.connection),
            source_addresses: plan
                .load
                .source_addresses
                .iter()
                .map(ToString::to_string)
                .collect(),
            max_in_flight: plan.load.max_in_flight,
            timeouts_s: [
                plan.timeouts.connect.as_secs_f64(),
                plan.timeouts.bind.as_secs_f64(),
                plan.timeouts.request.as_secs_f64(),
                plan.timeouts.drain.as_secs_f64(),
            ],
            client: terms::client(&plan.client),
            gates: plan.gates.iter().map(ToString::to_string).collect(),
            faults: plan.faults.iter().map(terms::fault_rule).collect(),
            fault_windows_s: plan
                .faults
                .iter()
                .filter_map(|f| f.window)
                .map(|w| [w.start.as_secs_f64(), w.end.as_secs_f64()])
                .collect(),
            holds_s: holds(&plan.load.model),
        }
    }
}

/// The holds of a staged schedule (see [`ConfigView::holds_s`]).
fn holds(model: &LoadModel) -> Vec<[f64; 2]> {
    let LoadModel::Open(Schedule::Stages { start_rate, stages }) = model else {
        return Vec::new();
    };
    let (mut at, mut rate) = (0.0, *start_rate);
    let mut out = Vec::new();
    for s in stages {
        let end = at + s.duration.as_secs_f64();
        if s.target_rate == rate {
            out.push([at, end]);
        }
        (at, rate) = (end, s.target_rate);
    }
    out
}

/// The load model in words: `open, constant 100/s`.
pub fn describe_load(model: &LoadModel) -> String {
    match model {
        LoadModel::Open(Schedule::Constant { rate }) => format!("open, constant {rate}/s"),
        LoadModel::Open(Schedule::Stages { start_rate, stages }) => {
            let steps: Vec<String> = stages
                .iter()
                .map(|s| format!("{}/s over {}", s.target_rate, DisplayDuration(s.duration)))
                .collect();
            format!("open, stages from {start_rate}/s: {}", steps.join(", "))
        }
        LoadModel::Open(Schedule::Bursts {
            base_rate,
            burst_rate,
            every,
            length,
        }) => {
            format!(
                "open, {base_rate}/s with bursts of {burst_rate}/s for {} every {}",
                DisplayDuration(*length),
                DisplayDuration(*every)
            )
        }
        LoadModel::Closed {
            clients,
            think_time,
        } => {
            format!(
                "closed, {clients} clients, think time {}",
                DisplayDuration(*think_time)
            )
        }
    }
}

/// When a run ended at its attempt bound (or with a `reuse = "new"` fleet used up) well before
/// its duration bound, says so: `--rate 500` on a file capped at 300 attempts stops after
/// 0.6 s, which a reader of the results would otherwise take for the duration asked.
pub fn early_end(plan: &Plan, run: &RunResult) -> Option<String> {
    let duration = plan.load.bounds.max_duration?;
    let fleet_cap = (plan.fleet.reuse == crate::scenario::ClientReuse::New)
        .then_some(plan.fleet.size)
        .filter(|&n| plan.load.bounds.max_attempts.is_none_or(|a| n < a));
    let (cap, what) = match (fleet_cap, plan.load.bounds.max_attempts) {
        (Some(n), _) => (
            n,
            "its fleet of new clients (`reuse = \"new\"`) was used up",
        ),
        (None, Some(n)) => (n, "it reached its `attempts` bound"),
        (None, None) => return None,
    };
    // A shard starts only its share of the cap; the merged result says it for the run.
    if plan.load.shard.is_sharded() {
        return None;
    }
    let early = run.complete
        && run.dispatched >= cap
        && run.elapsed.as_secs_f64() < 0.9 * duration.as_secs_f64();
    early.then(|| {
        format!(
            "ended after {:.1} s, before the duration bound of {}: {what} ({cap}); \
             `--duration` without `--attempts` lifts the file's attempt bound",
            run.elapsed.as_secs_f64(),
            DisplayDuration(duration)
        )
    })
}

/// `2026-11-22T01:26:21Z`.
pub fn utc(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = crate::wire::base::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The default results directory for a run of `name` started at `t`: `results/<name>-<UTC>`.
pub fn default_dir(name: &str, t: SystemTime) -> PathBuf {
    let stamp = utc(t).replace([':', '-'], "");
    Path::new("results").join(format!("{name}-{stamp}"))
}

/// The load generator's own line for report.md, and a warning when it fell behind: then the
/// achieved rate and the latencies are kmsload's limit, not (only) the host's.
fn generator_lines(g: &GeneratorStats, attempts: u64) -> String {
    let mut line = format!(
        "- load generator: at most {:.1} ms behind schedule, {} attempts more than {} ms late",
        g.max_lag_us as f64 / 1000.0,
        g.late_attempts,
        LATE_AFTER.as_millis()
    );
    if let (Some(cpu), Some(busy)) = (g.process_cpu_s, g.process_cpu_busy) {
        let _ = write!(
            line,
            "; process CPU {cpu:.1} s, {:.0} % of the cores it may use",
            busy * 100.0
        );
    }
    line.push('\n');
    if g.slot_waits > 0 {
        let _ = write!(
            line,
            "- {} attempts found all {} slots for attempts in flight taken and waited for one \
             (the wait is in their latency)",
            g.slot_waits, g.in_flight_limit
        );
        if let Some(b) = g.connection_budget {
            let _ = write!(
                line,
                "; the slots are the connection budget, not max_in_flight {}: with a new \
                 connection each, attempts in flight hold at most 1/{} of the {} local ports of \
                 {} source address(es), so that connect() stays cheap (more source_addresses \
                 raise it)",
                b.max_in_flight,
                crate::load::PORT_SHARE,
                b.local_ports,
                b.sources
            );
        }
        line.push('\n');
    }
    if let Some(q) = g.listen_queue {
        let _ = write!(
            line,
            "- listen queues on this machine during the load: {} overflows, {} drops \
             (TcpExtListenOverflows, TcpExtListenDrops)",
            q.overflows, q.drops
        );
        if let Some(cap) = q.somaxconn {
            let _ = write!(
                line,
                "; net.core.somaxconn {cap} caps every listen backlog, the in-process host's \
                 included"
            );
        }
        line.push('\n');
        if q.overflows > 0 || q.drops > 0 {
            let _ = writeln!(
                line,
                "> Connections were dropped at a full listen queue: each dropped SYN is retried \
                 by the client after 1 s, then 3 s, so connect latency shows those waits. The \
                 host did not accept as fast as connections arrived; a deeper backlog (raise \
                 net.core.somaxconn) absorbs bursts, not a rate above what the host accepts.\n"
            );
        }
    }
    // More than 1 % of attempts late: the schedule was not kept.
    if g.late_attempts > 0 && g.late_attempts * 100 >= attempts.max(1) {
        let _ = writeln!(
            line,
            "> kmsload fell behind its own schedule ({} of {attempts} attempts started more than {} ms late): \
             the achieved rate and latencies show the load generator's limit (and, in-process, the host \
             sharing its cores), not the host's alone. Give kmsload more cores or lower the rate.\n",
            g.late_attempts,
            LATE_AFTER.as_millis()
        );
    }
    line
}

/// Writes summary.json, the histogram logs and report.md into `dir` (which must exist;
/// events.csv is already there, written during the run).
///
/// # Errors
/// The I/O error of the first file that could not be written.
pub fn write_results(
    dir: &Path,
    plan: &Plan,
    target: &TargetInfo,
    run: &RunResult,
    gates: &[GateResult],
) -> io::Result<()> {
    let file = SummaryFile {
        schema_version: SCHEMA_VERSION,
        kmsload_version: env!("CARGO_PKG_VERSION").to_owned(),
        scenario: plan.name.clone(),
        config: ConfigView::of(plan),
        target: target.clone(),
        started_utc: utc(run.started),
        shard: ShardInfo::of(plan, run),
        events: plan.events,
        elapsed_s: run.elapsed.as_secs_f64(),
        complete: run.complete,
        aborted: run.aborted.clone(),
        rebuilt: run.rebuilt.clone(),
        passed: run.complete && gates.iter().all(|g| g.pass),
        dispatched: run.dispatched,
        not_started: run.not_started,
        abandoned: run.abandoned,
        offered_rate: run.offered_rate,
        achieved_rate: run.achieved_rate,
        generator: run.generator,
        recorded: run.recorder.summary(),
        gates: gates.to_vec(),
        gates_passed: gates.iter().all(|g| g.pass),
        timeline: run.recorder.timeline(),
        by_host: run.by_host.clone(),
        merge: run.merge.clone(),
        outages: plan_outages(plan),
    };
    let mut w = BufWriter::new(fs::File::create(dir.join("summary.json"))?);
    serde_json::to_writer_pretty(&mut w, &file).map_err(io::Error::other)?;
    w.write_all(b"\n")?;
    w.flush()?;

    let mut w = BufWriter::new(fs::File::create(dir.join("histograms.hlog"))?);
    run.recorder
        .write_run_log(&mut w, Some(run.started), run.elapsed)
        .map_err(io::Error::other)?;
    w.flush()?;
    let mut w = BufWriter::new(fs::File::create(dir.join("timeline.hlog"))?);
    run.recorder
        .write_timeline_log(&mut w, Some(run.started))
        .map_err(io::Error::other)?;
    w.flush()?;

    fs::write(
        dir.join("report.md"),
        markdown(plan, target, run, &file.recorded, gates),
    )
}

/// The human summary, in Markdown (report.md; also printed at the end of a run).
pub fn markdown(
    plan: &Plan,
    target: &TargetInfo,
    run: &RunResult,
    summary: &Summary,
    gates: &[GateResult],
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# kmsload run: {}\n", plan.name);
    if let Some(d) = &plan.description {
        let _ = writeln!(s, "{d}\n");
    }
    let _ = writeln!(
        s,
        "- target: {}{}\n- started: {}, ran {:.1} s{}\n- load: {}\n- attempts: {} ({:.1}/s achieved{})",
        target.address,
        if target.in_process {
            " (in-process reference host)"
        } else {
            ""
        },
        utc(run.started),
        run.elapsed.as_secs_f64(),
        match (run.complete, &run.aborted) {
            _ if run.rebuilt.is_some() => {
                " — REBUILT from events.csv after the run was killed, results incomplete".to_owned()
            }
            (true, _) => String::new(),
            (false, Some(why)) => format!(" — ABORTED by a gate ({why}), results incomplete"),
            (false, None) => " — INTERRUPTED, results incomplete".to_owned(),
        },
        describe_load(&plan.load.model),
        summary.attempts,
        run.achieved_rate,
        run.offered_rate
            .map_or_else(String::new, |o| format!(", {o:.1}/s offered")),
    );
    let b = &summary.by_outcome;
    let _ = writeln!(
        s,
        "- outcomes: {} activated, {} not activated, {} failed",
        b.activated, b.not_activated, b.failed
    );
    match plan.events {
        crate::scenario::EventsMode::Full => {}
        crate::scenario::EventsMode::Failures => {
            let _ = writeln!(
                s,
                "- events: failures.csv holds the attempts that did not activate, no events.csv \
                 (`events = \"failures\"`)"
            );
        }
        crate::scenario::EventsMode::Off => {
            let _ = writeln!(s, "- events: no events.csv (`events = \"off\"`)");
        }
    }
    if let Some(note) = &run.rebuilt {
        let _ = writeln!(s, "\n> {note}\n");
    }
    if run.rebuilt.is_none() {
        let _ = writeln!(s, "{}", generator_lines(&run.generator, summary.attempts));
    }
    if run.not_started > 0 {
        let _ = writeln!(
            s,
            "- not started: {} attempts were due before the duration bound but kmsload could \
             not start them in time (they were not run late)",
            run.not_started
        );
    }
    if let Some(note) = early_end(plan, run) {
        let _ = writeln!(s, "- {note}");
    }

    let _ = writeln!(s, "## Latency (µs, attempts no fault touched)\n");
    let _ = writeln!(
        s,
        "| phase | count | p50 | p90 | p99 | p99.9 | max |\n|---|--:|--:|--:|--:|--:|--:|"
    );
    let l = &summary.latency_us;
    for (name, v) in [
        ("connect", l.connect),
        ("bind", l.bind),
        ("request", l.request),
        ("total", l.total),
    ] {
        match v {
            Some(v) => {
                let _ = writeln!(
                    s,
                    "| {name} | {} | {} | {} | {} | {} | {} |",
                    v.count, v.p50, v.p90, v.p99, v.p999, v.max
                );
            }
            None => {
                let _ = writeln!(s, "| {name} | 0 | | | | | |");
            }
        }
    }

    let _ = writeln!(
        s,
        "\n## Codes\n\n| code | name | count | meaning |\n|---|---|--:|---|"
    );
    for (code, n) in &summary.by_code {
        let h = hresult::hresult(code.0);
        let _ = writeln!(
            s,
            "| {} | {} | {n} | {} |",
            hresult::hex(code.0),
            h.map_or("unknown", |h| h.name.as_str()),
            h.map_or("", |h| h.meaning.as_str())
        );
    }
    if !summary.by_cause.is_empty() {
        let _ = writeln!(s, "\n| cause | count |\n|---|--:|");
        for (cause, n) in &summary.by_cause {
            let _ = writeln!(s, "| {cause} | {n} |");
        }
        for (cause, n) in &summary.by_cause {
            if let Some(note) = crate::client::outcome::local_limit_note(cause, *n) {
                let _ = writeln!(s, "\n> {note}");
            }
        }
    }

    if !summary.faults.is_empty() {
        let _ = writeln!(
            s,
            "\n## Injected faults\n\n{} attempts had a fault injected; their latency is kept out of the table above.\n",
            summary.faulted_attempts
        );
        let _ = writeln!(
            s,
            "| fault | attempts | activated | not activated | failed | codes |\n|---|--:|--:|--:|--:|---|"
        );
        for f in &summary.faults {
            let codes: Vec<String> = f
                .by_code
                .iter()
                .map(|(c, n)| format!("{} ×{n}", hresult::hex(c.0)))
                .collect();
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} |",
                f.fault,
                f.attempts,
                f.by_outcome.activated,
                f.by_outcome.not_activated,
                f.by_outcome.failed,
                codes.join(", ")
            );
        }
    }
    if !summary.threshold.is_empty() {
        let _ = writeln!(s, "\n## Activation threshold\n");
        for (pool, t) in &summary.threshold {
            let _ = writeln!(
                s,
                "- {} (N = {}): {}",
                pool_name(*pool),
                t.required,
                t.sentence()
            );
            // Clients of one pool may need different N (Windows Server 5, Windows client 25):
            // each flips on its own, which the pool's line alone does not show.
            if t.by_required.len() > 1 {
                for l in &t.by_required {
                    let who = match (*pool, l.required) {
                        (Application::Windows, 5) => " (Windows Server)",
                        (Application::Windows, 25) => " (Windows client)",
                        _ => "",
                    };
                    let _ = writeln!(
                        s,
                        "  - clients with N = {}{who}: {}",
                        l.required,
                        match l.first_activation_after_clients {
                            Some(1) => "first activated after 1 distinct client".to_owned(),
                            Some(k) => format!("first activated after {k} distinct clients"),
                            None => "none activated".to_owned(),
                        }
                    );
                }
            }
        }
    }
    if !run.by_host.is_empty() {
        by_host_markdown(&mut s, &run.by_host);
        hosts_over_time_markdown(&mut s, &run.by_host, &plan_outages(plan));
    }
    if !summary.hosts.is_empty() {
        let _ = writeln!(s, "\n## Host identity\n");
        for h in &summary.hosts {
            let list = |seen: &[crate::record::SeenSummary]| {
                seen.iter()
                    .map(|v| format!("{} ({}×)", v.value, v.count))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let _ = writeln!(
                s,
                "- host {} {} pool: ePID {}{}{}",
                h.host,
                h.pool.as_str(),
                list(&h.epids),
                if h.hwids.is_empty() {
                    String::new()
                } else {
                    format!("; HwID {}", list(&h.hwids))
                },
                if h.changed {
                    " — CHANGED during the run"
                } else {
                    " — stable"
                },
            );
        }
        if summary.hosts_changed {
            let _ = writeln!(
                s,
                "\n**The host changed its ePID or HwID during the run** (a real host keeps them stable)."
            );
        }
    }
    let catalog = products();
    let _ = writeln!(
        s,
        "\n## Products\n\n| product | attempts | activated | not activated | failed |\n|---|--:|--:|--:|--:|"
    );
    for p in &summary.products {
        let name = catalog
            .get(usize::from(p.index))
            .map_or("?", |p| p.name.as_str());
        let _ = writeln!(
            s,
            "| {name} | {} | {} | {} | {} |",
            p.attempts, p.by_outcome.activated, p.by_outcome.not_activated, p.by_outcome.failed
        );
    }
    if !gates.is_empty() {
        let _ = writeln!(
            s,
            "\n## Gates\n\n| gate | measured | verdict |\n|---|---|---|"
        );
        for g in gates {
            let _ = writeln!(
                s,
                "| {} | {} | {} |",
                g.name,
                g.shown,
                if g.pass { "pass" } else { "**FAIL**" }
            );
        }
    }
    if let Some(m) = &run.merge {
        s.push_str(&merge::shard_table_markdown(m));
    }
    s
}

fn pool_name(p: Application) -> &'static str {
    match p {
        Application::Windows => "Windows",
        Application::Office2010 => "Office 2010",
        Application::Office2013 => "Office 2013+",
    }
}

/// Writes the gates as a JUnit XML test suite (one test case per gate) to `path`.
///
/// # Errors
/// The I/O error if the file cannot be written.
pub fn write_junit(
    path: &Path,
    scenario: &str,
    gates: &[GateResult],
    seconds: f64,
    incomplete: Option<&str>,
) -> io::Result<()> {
    let failures = gates.iter().filter(|g| !g.pass).count() + usize::from(incomplete.is_some());
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        "<testsuites><testsuite name=\"kmsload.{}\" tests=\"{}\" failures=\"{failures}\" time=\"{seconds:.3}\">",
        xml(scenario),
        gates.len() + 1
    );
    // A run that did not reach its bounds is a failed test, whatever its gates say: its
    // figures describe part of the load only.
    let _ = write!(
        s,
        "  <testcase classname=\"kmsload.{}\" name=\"run completed\">",
        xml(scenario)
    );
    if let Some(why) = incomplete {
        let _ = write!(s, "<failure message=\"{}\"></failure>", xml(why));
    }
    let _ = writeln!(s, "</testcase>");
    for g in gates {
        let _ = write!(
            s,
            "  <testcase classname=\"kmsload.{}\" name=\"{}\">",
            xml(scenario),
            xml(&g.name)
        );
        if !g.pass {
            let _ = write!(
                s,
                "<failure message=\"measured {}\">limit {}</failure>",
                xml(&g.shown),
                xml(&g.limit.to_string())
            );
        }
        let _ = writeln!(s, "</testcase>");
    }
    s.push_str("</testsuite></testsuites>\n");
    fs::write(path, s)
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The outage windows of the plan's in-process hosts.
pub fn plan_outages(plan: &Plan) -> Vec<crate::discover::HostOutage> {
    let hosts: &[crate::scenario::HostOptions] = match &plan.target {
        crate::scenario::Target::InProcess(h) => std::slice::from_ref(h),
        crate::scenario::Target::Discover(d) => &d.hosts,
        crate::scenario::Target::Remote(_) => &[],
    };
    hosts
        .iter()
        .flat_map(|h| {
            h.down.iter().map(|w| crate::discover::HostOutage {
                host: h.name.clone(),
                from_s: w.start.as_secs_f64(),
                to_s: w.end.as_secs_f64(),
            })
        })
        .collect()
}

/// report.md's "Hosts found by discovery" table: the split, the failovers and their cost.
fn by_host_markdown(s: &mut String, split: &[crate::discover::HostSplit]) {
    let total: u64 = split.iter().map(|h| h.attempts).sum();
    let _ = writeln!(s, "\n## Hosts found by discovery\n");
    let _ = writeln!(
        s,
        "| host | attempts | share | activated | not activated | failed | p50 ms | p99 ms | failed tries | failovers to it | their extra time ms |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let ms =
        |us: Option<u64>| us.map_or_else(|| "-".to_owned(), |u| format!("{:.2}", u as f64 / 1e3));
    for h in split {
        let _ = writeln!(
            s,
            "| {} | {} | {:.1} % | {} | {} | {} | {} | {} | {} | {} | {} |",
            h.host,
            h.attempts,
            if total == 0 {
                0.0
            } else {
                100.0 * h.attempts as f64 / total as f64
            },
            h.activated,
            h.not_activated,
            h.failed,
            ms(h.latency_us.map(|l| l.p50)),
            ms(h.latency_us.map(|l| l.p99)),
            h.failed_tries,
            h.failovers_in,
            ms(h.failover_cost_us_mean),
        );
    }
    let failovers: u64 = split.iter().map(|h| h.failovers_in).sum();
    if failovers > 0 {
        let _ = writeln!(
            s,
            "\n{failovers} attempts failed over: a host they tried first did not connect and bind, and the next one answered; the last column is the mean time they lost before it did."
        );
    }
    if let Some(cost) = failover_cost_sentence(split) {
        let _ = writeln!(s, "\n{cost}");
    }
}

/// "Failing over cost ...": the extra time of the attempts that failed over, against the
/// median of the attempts that did not; `None` without failovers.
pub fn failover_cost_sentence(split: &[crate::discover::HostSplit]) -> Option<String> {
    let failovers: u64 = split.iter().map(|h| h.failovers_in).sum();
    if failovers == 0 {
        return None;
    }
    let total_us: u64 = split
        .iter()
        .filter_map(|h| Some(h.failover_cost_us_mean? * h.failovers_in))
        .sum();
    let max_us = split
        .iter()
        .filter_map(|h| h.failover_cost_us_max)
        .max()
        .unwrap_or(0);
    Some(format!(
        "Failover cost: {failovers} attempts lost {:.2} ms each on average (at most {:.2} ms) on hosts that did not answer before one did: time spent on DNS and on the failed connects and binds, added to their latency.",
        total_us as f64 / failovers as f64 / 1e3,
        max_us as f64 / 1e3
    ))
}

/// report.md's "Hosts over time": attempts each host answered per time slice (at most 30
/// rows), the failovers, and which hosts were down.
fn hosts_over_time_markdown(
    s: &mut String,
    split: &[crate::discover::HostSplit],
    outages: &[crate::discover::HostOutage],
) {
    let seconds = split.iter().map(|h| h.per_second.len()).max().unwrap_or(0);
    if seconds == 0 {
        return;
    }
    let width = crate::discover::bucket_width(seconds, 30);
    let _ = writeln!(s, "\n## Hosts over time\n");
    let _ = writeln!(
        s,
        "Attempts each host answered, by intended start{}; \"failed over\" counts the attempts that reached their host only after another failed.\n",
        if width > 1 {
            format!(", {width} s per row")
        } else {
            String::new()
        }
    );
    let mut head = String::from("| s |");
    let mut rule = String::from("|---|");
    for h in split {
        let _ = write!(head, " {} |", h.host);
        rule.push_str("---:|");
    }
    let _ = writeln!(s, "{head} failed over | down |");
    let _ = writeln!(s, "{rule}---:|---|");
    let sum = |v: &[u64], from: usize| -> u64 { v.iter().skip(from).take(width).sum() };
    for from in (0..seconds).step_by(width) {
        let mut row = format!("| {from}–{} |", from + width);
        for h in split {
            let _ = write!(row, " {} |", sum(&h.per_second, from));
        }
        let failed_over: u64 = split
            .iter()
            .map(|h| sum(&h.failovers_per_second, from))
            .sum();
        let (lo, hi) = (from as f64, (from + width) as f64);
        let mut down: Vec<&str> = outages
            .iter()
            .filter(|o| o.from_s < hi && o.to_s > lo)
            .map(|o| o.host.as_str())
            .collect();
        down.dedup();
        let _ = writeln!(row, " {failed_over} | {} |", down.join(", "));
        s.push_str(&row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_civil_time() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_795_310_781);
        assert_eq!(utc(t), "2026-11-22T01:26:21Z");
        assert_eq!(
            default_dir("smoke", t),
            Path::new("results/smoke-20261122T012621Z")
        );
    }

    #[test]
    fn report_md_and_summary_say_when_the_ports_capped_the_attempts_in_flight() {
        use crate::record::ConnectionBudget;
        let mut g = GeneratorStats {
            in_flight_limit: 882,
            connection_budget: Some(ConnectionBudget {
                limit: 882,
                max_in_flight: 9000,
                local_ports: 28_232,
                sources: 1,
            }),
            ..GeneratorStats::default()
        };
        // The cap never reached: nothing to say.
        assert!(!generator_lines(&g, 100).contains("slots"));
        g.slot_waits = 4321;
        let capped = generator_lines(&g, 100);
        assert!(
            capped.contains("4321 attempts found all 882 slots for attempts in flight taken")
                && capped.contains("the connection budget, not max_in_flight 9000")
                && capped.contains("1/32 of the 28232 local ports of 1 source address(es)"),
            "{capped}"
        );
        // max_in_flight itself the cap.
        g.connection_budget = None;
        let plain = generator_lines(&g, 100);
        assert!(
            plain.contains("4321 attempts found all 882 slots"),
            "{plain}"
        );
        assert!(!plain.contains("connection budget"), "{plain}");
        g.connection_budget = Some(ConnectionBudget {
            limit: 882,
            max_in_flight: 9000,
            local_ports: 28_232,
            sources: 1,
        });
        let json = serde_json::to_value(g).unwrap();
        assert_eq!(json["connection_budget"]["limit"], 882);
        assert_eq!(json["connection_budget"]["local_ports"], 28_232);
        assert_eq!(json["slot_waits"], 4321);
        assert_eq!(json["in_flight_limit"], 882);
        let back: GeneratorStats = serde_json::from_value(json).unwrap();
        assert_eq!(back, g);
    }

    #[test]
    fn report_md_says_what_the_listen_queues_dropped() {
        use crate::record::ListenQueue;
        let mut g = GeneratorStats::default();
        assert!(!generator_lines(&g, 100).contains("listen queues"));
        g.listen_queue = Some(ListenQueue {
            overflows: 0,
            drops: 0,
            somaxconn: Some(4096),
        });
        let quiet = generator_lines(&g, 100);
        assert!(
            quiet.contains("listen queues on this machine during the load: 0 overflows, 0 drops")
                && quiet.contains("net.core.somaxconn 4096 caps every listen backlog"),
            "{quiet}"
        );
        assert!(!quiet.contains("retried"), "{quiet}");
        g.listen_queue = Some(ListenQueue {
            overflows: 4895,
            drops: 4901,
            somaxconn: None,
        });
        let dropped = generator_lines(&g, 100);
        assert!(dropped.contains("4895 overflows, 4901 drops"), "{dropped}");
        assert!(!dropped.contains("somaxconn 4096"), "{dropped}");
        assert!(
            dropped.contains("retried by the client after 1 s, then 3 s"),
            "{dropped}"
        );
        // summary.json carries the same figures.
        let json = serde_json::to_value(g).unwrap();
        assert_eq!(json["listen_queue"]["overflows"], 4895);
        assert_eq!(json["listen_queue"]["drops"], 4901);
    }

    /// summary.json is written and read with one set of types: what a run writes reads back
    /// equal, and writes out again byte for byte.
    #[test]
    fn summary_json_reads_back_into_the_type_that_wrote_it() {
        use crate::client::Outcome;
        use crate::record::{AttemptRecord, Recorder};
        use crate::sim::{Fleet, FleetSpec, ProductWeight};
        let office = products()
            .iter()
            .position(|p| p.name == "Office LTSC Professional Plus 2021")
            .expect("in catalog");
        let fleet = Fleet::new(
            5,
            FleetSpec::new(
                20,
                vec![ProductWeight::new(0, 1.0), ProductWeight::new(office, 1.0)],
            ),
        )
        .expect("valid spec");
        let mut recorder = Recorder::new();
        for k in 0..12u64 {
            let (outcome, code) = match k % 3 {
                0 => (Outcome::Activated, 0),
                1 => (Outcome::NotActivated, 0xC004_F038),
                _ => (Outcome::Failed, 0x8007_2746),
            };
            let mut rec = AttemptRecord::new(k, k * 250_000, 0, &fleet.client(k), outcome, code);
            rec.latency.connect_us = Some(100 + k);
            rec.latency.total_us = Some(900 + 10 * k);
            if outcome == Outcome::Failed {
                rec.cause = Some("connection reset");
                rec.fault = Some("reset");
            } else {
                rec.reported_count = Some(k as u32);
                rec.epid = Some("03612-04918-014-532568-03-1033-26100.0000-3072024".into());
                rec.hwid = Some([1, 2, 3, 4, 5, 6, 7, 8]);
            }
            recorder.record(&rec, k / 4);
        }
        let file = SummaryFile {
            schema_version: SCHEMA_VERSION,
            kmsload_version: "0.1.0".into(),
            scenario: "round-trip".into(),
            target: TargetInfo {
                address: "127.0.0.1:1688".into(),
                in_process: true,
            },
            elapsed_s: 3.25,
            offered_rate: Some(4.0),
            gates: vec![GateResult {
                name: "total p99 < 1s".into(),
                value: 1000.into(),
                limit: 1_000_000.into(),
                pass: true,
                shown: "1 ms".into(),
            }],
            gates_passed: true,
            timeline: recorder.timeline(),
            recorded: recorder.summary(),
            ..SummaryFile::default()
        };
        assert!(!file.recorded.threshold.is_empty() && !file.recorded.faults.is_empty());
        let text = serde_json::to_string_pretty(&file).expect("serialises");
        let back = read::parse_summary(&text, Path::new("summary.json")).expect("reads back");
        assert_eq!(back, file);
        assert_eq!(
            serde_json::to_string_pretty(&back).expect("serialises"),
            text
        );
    }

    #[test]
    fn junit_escapes_and_counts_failures() {
        let g = |pass| GateResult {
            name: "total p99 < 1s".into(),
            value: 5.into(),
            limit: 1.into(),
            pass,
            shown: "a<b".into(),
        };
        let dir = std::env::temp_dir().join(format!("kmsload-junit-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("j.xml");
        write_junit(&path, "s&s", &[g(true), g(false)], 1.0, None).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        // The two gates and the passing `run completed` case.
        assert!(text.contains("tests=\"3\" failures=\"1\""));
        assert!(text.contains("kmsload.s&amp;s"));
        assert!(text.contains("measured a&lt;b"));
        assert!(text.contains("name=\"run completed\"></testcase>"));

        // Interrupted with every gate green: still a failing suite.
        write_junit(&path, "s", &[g(true)], 1.0, Some("interrupted by SIGTERM")).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("tests=\"2\" failures=\"1\""));
        assert!(text.contains(
            "name=\"run completed\"><failure message=\"interrupted by SIGTERM\"></failure>"
        ));
        fs::remove_dir_all(dir).unwrap();
    }
}
