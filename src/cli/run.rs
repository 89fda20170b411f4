//! `kmsload run SCENARIO`: the load test. With no target in the scenario (or `--target`), it
//! starts the reference host in-process on loopback.

use std::io::{BufWriter, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::values;
use super::{CliError, Status};
use crate::catalog::{hresult, lookup};
use crate::host;
use crate::load::{self, Live};
use crate::report::{self, TargetInfo};
use crate::scenario::{self, Overrides, Plan, Target};

/// Options of `kmsload run`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kmsload run scenarios/smoke.toml\n  kmsload run scenarios/threshold.toml --seed 7 --out /tmp/threshold\n  kmsload run scenarios/bench.toml --quiet --junit gates.xml\n  kmsload run my.toml --target kms.lab:1688 --confirm-target kms.lab\n\nScenario keys and result files are documented in scenarios/README.md."
)]
pub struct Args {
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

    /// Override the scenario's duration bound, e.g. 30s, 5m.
    #[arg(long, value_parser = values::parse_nonzero_duration)]
    pub duration: Option<Duration>,

    /// Override the scenario's seed (fleet identities and schedule).
    #[arg(long)]
    pub seed: Option<u64>,

    // Help in `help` rather than a doc comment: rustdoc would read `<scenario>` as HTML.
    #[arg(
        long,
        value_name = "DIR",
        help = "Results directory (default: results/<scenario>-<UTC time>)"
    )]
    pub out: Option<PathBuf>,

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

    /// Tolerances of the --baseline comparison (as for `kmsload compare`).
    #[command(flatten)]
    pub tolerances: super::compare::ToleranceArgs,
}

/// Runs `kmsload run`.
///
/// # Errors
/// [`CliError::Usage`] for a bad scenario or flag (nothing is started);
/// [`CliError::Runtime`] when the run cannot start or its results cannot be written.
pub fn run(args: Args) -> Result<Status, CliError> {
    let overrides = Overrides {
        target: args.target.clone(),
        confirm_target: args.confirm_target.clone(),
        rate: args.rate,
        duration: args.duration,
        seed: args.seed,
        out: args.out.clone(),
    };
    let resolve = |s: &str| lookup::find(s).map_err(|e| e.to_string());
    let plan = scenario::load_file(&args.scenario, &overrides, &resolve).map_err(|e| {
        CliError::Usage(format!(
            "{e}\nnothing was started; see scenarios/README.md for every key"
        ))
    })?;
    if crate::faults::FaultPlan::new(&plan.faults, plan.seed).overcommitted() {
        let total: f64 = plan.faults.iter().map(|f| f.probability).sum();
        return Err(CliError::Usage(format!(
            "{}: [[faults]] probability: the rules add up to {total}; at most one fault hits an \
             attempt, so their probabilities must add up to 1 or less\nnothing was started",
            args.scenario.display()
        )));
    }
    // --baseline must be readable before anything starts (cli::compare).
    if let Some(b) = &args.baseline {
        super::compare::load(b, "--baseline")
            .map_err(|e| CliError::Usage(format!("{e}\nnothing was started")))?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the async runtime: {e}")))?;
    // The run goes on a worker thread, not on this one: `block_on` would poll the dispatcher
    // here, and every attempt it spawned would then have to wake a worker across threads
    // (a futex call each). Spawned from a worker, attempts start on that worker's own queue.
    runtime.block_on(async {
        tokio::spawn(execute(plan, args))
            .await
            .map_err(|e| CliError::Runtime(format!("the run stopped unexpectedly: {e}")))?
    })
}

async fn execute(plan: Plan, args: Args) -> Result<Status, CliError> {
    // The in-process host lives until this function returns.
    let (addr, target, host) = match &plan.target {
        Target::InProcess(options) => {
            let host = start_in_process(options, plan.seed)
                .await
                .map_err(|e| CliError::Runtime(format!("cannot start the in-process host: {e}")))?;
            let addr = host.addr();
            (
                addr,
                TargetInfo {
                    address: addr.to_string(),
                    in_process: true,
                },
                Some(host),
            )
        }
        Target::Remote(remote) => {
            let addr = resolve(&remote.host, remote.port, plan.timeouts.connect).await?;
            (
                addr,
                TargetInfo {
                    address: remote.addr(),
                    in_process: false,
                },
                None,
            )
        }
    };

    let started = std::time::SystemTime::now();
    let dir = plan
        .out
        .clone()
        .unwrap_or_else(|| report::default_dir(&plan.name, started));
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::Runtime(format!("cannot create {}: {e}", dir.display())))?;
    let events = std::fs::File::create(dir.join("events.csv")).map_err(|e| {
        CliError::Runtime(format!("cannot create {}/events.csv: {e}", dir.display()))
    })?;
    let events: Box<dyn Write + Send> = Box::new(BufWriter::with_capacity(1 << 16, events));

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = stop_tx.send(true);
        }
    });

    let live = Arc::new(Live::default());
    let (done_tx, done_rx) = tokio::sync::watch::channel(false);
    let progress =
        (!args.quiet).then(|| tokio::spawn(show_progress(live.clone(), plan.clone(), done_rx)));
    eprintln!(
        "kmsload: running {} against {}{}; results in {}",
        plan.name,
        target.address,
        if target.in_process {
            " (in-process reference host)"
        } else {
            ""
        },
        dir.display()
    );
    if let Some(warning) =
        open_files_warning(&plan, target.in_process, crate::procfs::open_file_limit())
    {
        eprintln!("{warning}");
    }
    let result = load::run(&plan, addr, Some(events), live.clone(), stop_rx)
        .await
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let _ = done_tx.send(true);
    if let Some(p) = progress {
        let _ = p.await;
    }
    if let Some(host) = host {
        host.shutdown().await;
    }

    let gates = report::evaluate(&plan.gates, &result.recorder, result.achieved_rate);
    report::write_results(&dir, &plan, &target, &result, &gates).map_err(|e| {
        CliError::Runtime(format!("cannot write results to {}: {e}", dir.display()))
    })?;
    if let Some(path) = &args.junit {
        report::write_junit(path, &plan.name, &gates, result.elapsed.as_secs_f64())
            .map_err(|e| CliError::Runtime(format!("cannot write {}: {e}", path.display())))?;
    }
    let summary = result.recorder.summary();
    println!(
        "{}",
        report::markdown(&plan, &target, &result, &summary, &gates)
    );
    println!("results: {}", dir.display());
    if let Some(e) = &result.events_error {
        eprintln!("warning: events.csv is incomplete: {e}");
    }

    // ---- report.html, report.md's text twin, --baseline (cli::report::after_run) ----
    let regressed = super::report::after_run(
        &dir,
        args.no_html,
        args.baseline.as_deref(),
        &args.tolerances,
    )?;
    // ---- end of the report block ----

    // Every attempt appears exactly once, or the run says so loudly.
    if let Err(e) = result.recorder.invariant_check() {
        return Err(CliError::Runtime(format!(
            "accounting check failed: {e} (this is a kmsload bug)"
        )));
    }
    if result.recorder.attempts() != result.dispatched {
        return Err(CliError::Runtime(format!(
            "accounting check failed: {} attempts dispatched but {} recorded (this is a kmsload bug)",
            result.dispatched,
            result.recorder.attempts()
        )));
    }
    if !result.complete {
        eprintln!("run interrupted: results are marked incomplete");
        return Ok(Status::Failure);
    }
    Ok(if gates.iter().all(|g| g.pass) && !regressed {
        Status::Success
    } else {
        Status::Failure
    })
}

/// A warning when the run may hold more sockets at once than the open-file limit allows.
/// Attempts past the limit would fail as `local:too_many_open_files`: kmsload's problem,
/// not the host's.
///
/// Sockets at once: the attempts in flight (open model: at most `max_in_flight`, and at most
/// the peak rate times the longest an attempt can hold a socket, the sum of its phase
/// timeouts; closed model: `clients`), doubled with the in-process host, which holds the
/// other end, plus slack for the runtime and the result files. Kept-alive connections idle
/// in the pool never outnumber the attempts that once used them at the same time.
fn open_files_warning(plan: &Plan, in_process: bool, limit: Option<u64>) -> Option<String> {
    const SLACK: u64 = 64;
    let limit = limit?;
    let in_flight = match &plan.load.model {
        scenario::LoadModel::Open(schedule) => {
            let t = &plan.timeouts;
            let longest = (t.connect + t.bind + t.request).as_secs_f64();
            let by_rate = (schedule.peak_rate() * longest).ceil() as u64;
            u64::from(plan.load.max_in_flight).min(by_rate.max(1))
        }
        scenario::LoadModel::Closed { clients, .. } => u64::from(*clients),
    };
    let per_attempt = if in_process { 2 } else { 1 };
    let needed = in_flight.saturating_mul(per_attempt).saturating_add(SLACK);
    (needed > limit).then(|| {
        format!(
            "kmsload: warning: up to {in_flight} attempts may hold a connection at once, which \
             needs about {needed} open files{}, but the open-file limit is {limit}; attempts \
             beyond it fail as local:too_many_open_files. Raise the limit (ulimit -n) or lower \
             max_in_flight.",
            if in_process {
                " (two sockets each with the in-process host)"
            } else {
                ""
            }
        )
    })
}

async fn resolve(host: &str, port: u16, limit: Duration) -> Result<SocketAddr, CliError> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    crate::client::resolve(host, port, limit)
        .await
        .map_err(|e| CliError::Runtime(format!("target: {e}")))
}

/// Live progress: a bar on a terminal, a plain line every few seconds otherwise.
async fn show_progress(live: Arc<Live>, plan: Plan, mut done: tokio::sync::watch::Receiver<bool>) {
    let start = Instant::now();
    let total = plan.load.bounds.max_attempts;
    let max_duration = plan.load.bounds.max_duration;
    let tty = std::io::stderr().is_terminal();
    let bar = tty.then(|| {
        let bar = match total {
            Some(n) => indicatif::ProgressBar::new(n),
            None => indicatif::ProgressBar::new_spinner(),
        };
        let style = indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} ETA {eta} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        bar.set_style(style);
        bar
    });
    let period = if tty {
        Duration::from_millis(250)
    } else {
        Duration::from_secs(5)
    };
    let mut tick = tokio::time::interval(period);
    // The rate shown is over the last two seconds: steadier than one tick's worth.
    let mut recent = std::collections::VecDeque::from([(Instant::now(), 0u64)]);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = done.changed() => {
                if let Some(bar) = bar {
                    bar.finish_and_clear();
                }
                return;
            }
        }
        let done = live.completed.load(Ordering::Relaxed);
        let now = Instant::now();
        recent.push_back((now, done));
        while recent.len() > 2 && now.duration_since(recent[0].0) > Duration::from_secs(2) {
            recent.pop_front();
        }
        let (then, before) = recent[0];
        let rate = (done - before) as f64 / now.duration_since(then).as_secs_f64().max(1e-3);
        let snap = live.snapshot.lock().map(|s| s.clone()).unwrap_or_default();
        let codes: Vec<String> = snap
            .codes
            .iter()
            .take(3)
            .map(|(c, n)| format!("{}×{n}", hresult::hex(*c)))
            .collect();
        let msg = format!(
            "{rate:.0}/s in-flight {} activated {} not {} failed {} p99 {}{}",
            live.in_flight.load(Ordering::Relaxed),
            live.activated.load(Ordering::Relaxed),
            live.not_activated.load(Ordering::Relaxed),
            live.failed.load(Ordering::Relaxed),
            snap.p99_us
                .map_or_else(|| "-".to_owned(), report::gates::format_us),
            if codes.is_empty() {
                String::new()
            } else {
                format!(" codes {}", codes.join(" "))
            },
        );
        match &bar {
            Some(bar) => {
                bar.set_position(done);
                bar.set_message(msg);
            }
            None => {
                let of = match (total, max_duration) {
                    (Some(n), _) => format!("/{n}"),
                    (None, Some(d)) => format!(
                        " ({:.0}s of {:.0}s)",
                        start.elapsed().as_secs_f64(),
                        d.as_secs_f64()
                    ),
                    (None, None) => String::new(),
                };
                eprintln!(
                    "[{:>6.1}s] {done}{of} attempts, {msg}",
                    start.elapsed().as_secs_f64()
                );
            }
        }
    }
}

/// Starts the reference host in-process on loopback, configured from the scenario's
/// `[host]` section.
async fn start_in_process(
    options: &scenario::HostOptions,
    seed: u64,
) -> Result<host::HostHandle, host::ServerError> {
    let minutes = |d: Duration| u32::try_from(d.as_secs() / 60).unwrap_or(u32::MAX);
    let mut config = host::HostConfig {
        charged: options.charged,
        time_check: options.time_check,
        activation_interval: minutes(options.activation_interval),
        renewal_interval: minutes(options.renewal_interval),
        seed,
        ..host::HostConfig::default()
    };
    match &options.host_key {
        scenario::HostKey::AcceptAll => config.accept_retail = true,
        scenario::HostKey::VolumeOnly => {}
        scenario::HostKey::Group(key) => config.host_key = key,
        scenario::HostKey::KmsIds(ids) => {
            // The list is exactly what is accepted, retail or not.
            config.accept_retail = true;
            config.only_kms_ids = Some(ids.clone());
        }
    }
    let server = host::ServerOptions {
        listen: SocketAddr::from(([127, 0, 0, 1], options.port)),
        host: config,
        rpc: crate::wire::session::HostRpcConfig {
            ndr64: options.ndr64,
            btfn: options.btfn,
            ..crate::wire::session::HostRpcConfig::default()
        },
        close_after_response: options.close_after_response,
        ..host::ServerOptions::default()
    };
    host::server::start(server).await
}

#[cfg(test)]
mod open_files_tests {
    use super::*;

    fn plan(load: &str) -> Plan {
        let text = format!(
            "[fleet]\nsize = 10\nproducts = [{{ product = \"Windows 10/11 Pro\" }}]\n[load]\n{load}\n"
        );
        scenario::parse_str(
            &text,
            std::path::Path::new("t.toml"),
            &Overrides::default(),
            &scenario::resolve_exact,
        )
        .unwrap()
    }

    #[test]
    fn warns_when_sockets_in_flight_can_exceed_the_limit() {
        // 10,000/s for up to 20 s of phase timeouts could hold far more; the cap holds 1000.
        let open = plan("rate = 10000\nduration = \"1s\"\nmax_in_flight = 1000");
        // 1000 in flight, two sockets each with the in-process host, plus slack.
        let warning = open_files_warning(&open, true, Some(1024)).unwrap();
        assert!(warning.contains("2064 open files"), "{warning}");
        assert!(warning.contains("ulimit -n"), "{warning}");
        assert_eq!(open_files_warning(&open, false, Some(1064)), None);
        assert!(open_files_warning(&open, false, Some(1063)).is_some());
        assert_eq!(open_files_warning(&open, true, None), None);

        // A low rate cannot fill a high cap: 10/s times the phase timeouts is the bound.
        let slow = plan("rate = 10\nduration = \"1s\"\nmax_in_flight = 100000");
        let t = &slow.timeouts;
        let bound = (10.0 * (t.connect + t.bind + t.request).as_secs_f64()).ceil() as u64;
        assert_eq!(open_files_warning(&slow, true, Some(2 * bound + 64)), None);
        assert!(open_files_warning(&slow, true, Some(2 * bound + 63)).is_some());

        let closed = plan("model = \"closed\"\nclients = 5000\nduration = \"1s\"");
        assert!(open_files_warning(&closed, false, Some(1024)).is_some());
        assert_eq!(open_files_warning(&closed, false, Some(20000)), None);
    }
}
