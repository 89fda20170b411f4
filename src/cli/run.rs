//! `kmsload run SCENARIO`: the load test. With no target in the scenario (or `--target`), it
//! starts the reference host in-process on loopback. This file parses the flags, shows
//! progress and prints; the run itself is [`crate::run`].

use std::path::PathBuf;
use std::time::Duration;

use super::{CliError, Status};
use crate::catalog::lookup;
use crate::load;
use crate::run::{self, Prepared};
use crate::scenario::{self, EventsMode, Overrides, Plan};
use crate::values;

/// Options of `kmsload run`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kmsload run scenarios/smoke.toml\n  kmsload run scenarios/threshold.toml --seed 7 --out /tmp/threshold\n  kmsload run scenarios/bench.toml --quiet --junit gates.xml\n  kmsload run my.toml --target kms.lab:1688 --confirm-target kms.lab\n\nScenario keys and result files are documented in scenarios/README.md."
)]
pub struct RunArgs {
    /// Scenario file (TOML; see scenarios/README.md).
    pub scenario: PathBuf,

    /// Run against this KMS host instead of the scenario's target / the in-process host.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub target: Option<String>,

    /// Confirm a non-loopback target (its name as given in the target). Synthetic clients
    /// stay in a real host's table for 30 days and inflate its licence counts.
    #[arg(long, value_name = "HOST")]
    pub confirm_target: Option<String>,

    /// Override the scenario's arrival rate (attempts per second; open model only).
    #[arg(long)]
    pub rate: Option<f64>,

    /// Run this long, e.g. 30s, 5m. The command line's bounds replace the scenario's
    /// `duration` and `attempts` together: with --duration alone the file's attempt cap does
    /// not apply.
    #[arg(long, value_parser = values::parse_nonzero_duration)]
    pub duration: Option<Duration>,

    /// Stop after starting N attempts; with --duration, whichever comes first. Replaces the
    /// scenario's bounds as --duration does.
    #[arg(long, value_name = "N")]
    pub attempts: Option<u64>,

    /// Override the scenario's seed (fleet identities and schedule).
    #[arg(long)]
    pub seed: Option<u64>,

    #[command(flatten)]
    pub out: super::OutArg,

    /// Also write the gates as JUnit XML to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// No progress output (the final summary is still printed).
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// Do not write report.html (report.md and the other files are still written).
    #[arg(long)]
    pub no_html: bool,

    /// Compare with this earlier run (a results directory or its summary.json) at the end;
    /// a regression makes the exit status 1, like a failed gate.
    #[arg(long, value_name = "DIR")]
    pub baseline: Option<PathBuf>,

    /// Run shard I of N: the attempts of the whole run whose number is I mod N (same seed,
    /// same schedule). Also from KMSLOAD_SHARD=I/N, JOB_COMPLETION_INDEX with --shards N,
    /// or SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT. Combine shards with `kmsload merge`.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,

    /// The number of shards when the index comes from JOB_COMPLETION_INDEX (a Kubernetes
    /// Indexed Job).
    #[arg(long, value_name = "N")]
    pub shards: Option<u32>,

    /// Start at this UTC time (e.g. 2026-12-06T10:00:00Z) instead of at once, so the
    /// shards of a run start together; a shard that starts later records by how much.
    #[arg(long, value_name = "UTC-TIME", value_parser = parse_start_at)]
    pub start_at: Option<std::time::SystemTime>,

    /// Name of the run, the same for all its shards (default: from the scenario, the seed
    /// and --start-at).
    #[arg(long, value_name = "ID", value_parser = parse_run_id)]
    pub run_id: Option<String>,

    /// Local addresses for this process's connections, comma-separated; replaces the
    /// scenario's `source_addresses` (shards on one machine can each have their own).
    #[arg(long, value_name = "ADDR[,ADDR...]", value_delimiter = ',')]
    pub source_address: Vec<String>,

    /// Per-attempt rows: full (events.csv, every attempt), failures (failures.csv, those that
    /// did not activate) or off (neither); replaces the scenario's `events`.
    #[arg(long, value_enum, value_name = "MODE")]
    pub events: Option<EventsMode>,

    /// Tolerances of the --baseline comparison (as for `kmsload compare`).
    #[command(flatten)]
    pub tolerances: super::compare::ToleranceArgs,
}

/// Runs `kmsload run`.
///
/// # Errors
/// [`CliError::Usage`] for a bad scenario or flag (nothing is started);
/// [`CliError::Runtime`] when the run cannot start or its results cannot be written.
pub fn run(args: RunArgs) -> Result<Status, CliError> {
    let overrides = Overrides {
        target: args.target.clone(),
        confirm_target: args.confirm_target.clone(),
        rate: args.rate,
        duration: args.duration,
        attempts: args.attempts,
        seed: args.seed,
        out: args.out.out.clone(),
        source_addresses: (!args.source_address.is_empty()).then(|| args.source_address.clone()),
        events: args.events,
    };
    let shard = load::Shard::from_sources(args.shard.as_deref(), args.shards, &|name| {
        std::env::var(name).ok()
    })
    .map_err(|e| CliError::Usage(format!("{e}\nnothing was started")))?;
    let resolve = |s: &str| lookup::find(s).map_err(|e| e.to_string());
    let mut plan = scenario::load_file(&args.scenario, &overrides, &resolve).map_err(|e| {
        CliError::Usage(format!(
            "{e}\nnothing was started; see scenarios/README.md for every key"
        ))
    })?;
    plan.load.shard = shard.unwrap_or_default();
    plan.load.overrides = load::shard::RunOverrides::from(&overrides);
    plan.load.start_at = args.start_at;
    plan.load.run_id = Some(
        args.run_id
            .clone()
            .unwrap_or_else(|| load::shard::default_run_id(&plan.name, plan.seed, args.start_at)),
    );
    let options = run::RunOptions {
        junit: args.junit.clone(),
        no_html: args.no_html,
        baseline: args.baseline.clone(),
        tolerances: args.tolerances.tolerances(),
    };
    run::preflight(&plan, &options, &args.scenario).map_err(from_run)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the async runtime: {e}")))?;
    // The run goes on a worker thread, not on this one: `block_on` would poll the dispatcher
    // here, and every attempt it spawned would then have to wake a worker across threads
    // (a futex call each). Spawned from a worker, attempts start on that worker's own queue.
    runtime.block_on(async {
        tokio::spawn(execute(plan, options, args.quiet))
            .await
            .map_err(|e| CliError::Runtime(format!("the run stopped unexpectedly: {e}")))?
    })
}

fn from_run(e: run::CommandError) -> CliError {
    match e {
        run::CommandError::Usage(m) => CliError::Usage(m),
        run::CommandError::Runtime(m) => CliError::Runtime(m),
    }
}

/// [`run::prepare`] and [`Prepared::execute`] with Ctrl-C, progress and the printing around
/// them.
async fn execute(plan: Plan, options: run::RunOptions, quiet: bool) -> Result<Status, CliError> {
    let prepared: Prepared = run::prepare(&plan).await.map_err(from_run)?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(relay_signals(stop_tx));
    let progress = (!quiet).then(|| {
        tokio::spawn(super::progress::show(
            prepared.live(),
            plan.clone(),
            prepared.load_done(),
        ))
    });
    let target = prepared.target();
    let shard = plan.load.shard;
    if shard.is_sharded() {
        crate::errln!(
            "kmsload: shard {shard} of run {}",
            plan.load.run_id.as_deref().unwrap_or("-")
        );
    }
    if let Some(at) = plan.load.start_at {
        crate::errln!(
            "kmsload: waiting for the common start at {}",
            humantime::format_rfc3339_seconds(at)
        );
    }
    crate::errln!(
        "kmsload: running {} against {}{}; results in {}",
        plan.name,
        target.address,
        if target.in_process {
            " (in-process reference host)"
        } else {
            ""
        },
        prepared.dir().display()
    );
    if let Some(warning) = prepared.open_files_warning(&plan) {
        crate::errln!("{warning}");
    }
    let finished = prepared.execute(&plan, &options, stop_rx).await;
    if let Some(p) = progress {
        let _ = p.await;
    }
    let mut f = finished.map_err(from_run)?;
    crate::outln!("{}", f.markdown);
    crate::outln!("results: {}", f.dir.display());
    if let Some(e) = &f.events_error {
        crate::errln!("warning: events.csv is incomplete: {e}");
    }
    if let Some(k) = &f.knee {
        crate::outln!("{k}");
    }
    print_report(&mut f)?;
    if let Some(e) = f.accounting_error {
        return Err(CliError::Runtime(e));
    }
    if !f.complete {
        match &f.aborted {
            Some(why) => {
                crate::errln!("run aborted by a gate: {why}; results are marked incomplete")
            }
            None => crate::errln!("run interrupted: results are marked incomplete"),
        }
        return Ok(Status::Failure);
    }
    Ok(if f.passed() {
        Status::Success
    } else {
        Status::Failure
    })
}

/// Ctrl-C (SIGINT), SIGTERM and SIGHUP all stop the run the same way: the first stops
/// starting attempts and drains those in flight, a second ends the drain at once; the
/// results are written either way. `timeout`, `docker stop`, systemd and CI cancellation
/// send SIGTERM; a closed terminal sends SIGHUP.
async fn relay_signals(stop: tokio::sync::watch::Sender<bool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        crate::errln!(
            "warning: cannot listen for SIGTERM/SIGHUP; only Ctrl-C stops the run cleanly"
        );
        while tokio::signal::ctrl_c().await.is_ok() {
            let _ = stop.send(true);
        }
        return;
    };
    for n in 0u32.. {
        let name = tokio::select! {
            r = tokio::signal::ctrl_c() => match r { Ok(()) => "Ctrl-C", Err(_) => return },
            Some(()) = term.recv() => "SIGTERM",
            Some(()) = hup.recv() => "SIGHUP",
            else => return,
        };
        if n == 0 {
            crate::errln!(
                "\n{name}: no new attempts; waiting for those in flight (again to stop now), then \
                 writing the results"
            );
        } else {
            crate::errln!("\n{name}: ending the drain now; writing the results");
        }
        // `send` wakes the runner even when the value is already `true`.
        let _ = stop.send(true);
    }
}

/// `--start-at`: an RFC 3339 time in UTC, `2026-12-06T10:00:00Z`.
fn parse_start_at(text: &str) -> Result<std::time::SystemTime, String> {
    humantime::parse_rfc3339(text.trim())
        .map_err(|e| format!("`{text}` is not a UTC time ({e}): write e.g. 2026-12-06T10:00:00Z"))
}

/// `--run-id`: letters, digits, `.`, `_`, `-`; at most 128 characters (it names directories).
fn parse_run_id(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text.len() <= 128
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "`{text}` is not a run id: use 1 to 128 letters, digits, `.`, `_` or `-`"
        ))
    }
}

/// Prints where report.html is and the baseline comparison, and fails when the reports could
/// not be written (after a run or a merge).
///
/// # Errors
/// The report's error, as the command's.
pub(super) fn print_report(f: &mut run::Finished) -> Result<(), CliError> {
    if let Some(page) = &f.page {
        crate::outln!("report: {}", page.display());
    }
    if let Some(c) = &f.comparison {
        crate::outln!("\n{}", c.text());
    }
    match f.report_error.take() {
        Some(e) => Err(from_run(e)),
        None => Ok(()),
    }
}
