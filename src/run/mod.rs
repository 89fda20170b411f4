//! `run`: one load test, from a validated [`Plan`] to a finished results directory. This is
//! `kmsload run` without the terminal: the command line parses flags, calls these steps and
//! prints what they return, so everything here can be tested in-process.
//!
//! ```text
//! preflight(plan, options)   refuse what cannot run (over-committed faults, unreadable
//!                            --baseline) before anything starts
//! prepare(plan)              start the in-process host(s) ([host] / [[hosts]]) on a
//!                            runtime of their own (threads named kmsload-host), resolve
//!                            the target or set up discovery (DNS, or the scenario's static
//!                            `srv` records); create the results directory and events.csv
//!                                                                      → Prepared
//! Prepared::execute(...)     load::run beside the hosts' outage windows (`down`, from the
//!                            load's time 0), stop the hosts, gates, summary.json + logs +
//!                            report.md, JUnit, report.md's text twin, report.html,
//!                            the --baseline comparison, the accounting check → Finished
//! ```
//!
//! Between `prepare` and `execute` the caller may show progress from [`Prepared::live`]; the
//! [`Prepared::load_done`] receiver changes when the load itself has ended.
//!
//! [`rebuild()`] writes the same results afterwards, from events.csv alone, for a run that was
//! killed before it could (`kmsload report` calls it when summary.json is missing).

use std::fs::{self, OpenOptions};
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::faults::FaultPlan;
use crate::host;
use crate::load::{self, Live};
use crate::record::RunResult;
use crate::report::compare::{Comparison, Tolerances};
use crate::report::read::{self, SummaryFile};
use crate::report::{self, GateResult, TargetInfo, analysis, html};
use crate::scenario::{self, EventsMode, Plan, Target};

mod rebuild;

pub use rebuild::{Rebuilt, rebuild};

/// Why a run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The input was wrong: nothing was started (exit 2).
    #[error("{0}")]
    Usage(String),
    /// Something failed while running or writing results (exit 1).
    #[error("{0}")]
    Runtime(String),
}

/// What a run does besides the load and the result files every run writes.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Also write the gates as JUnit XML here.
    pub junit: Option<PathBuf>,
    /// Leave out report.html.
    pub no_html: bool,
    /// Compare with this earlier run (a results directory or its summary.json).
    pub baseline: Option<PathBuf>,
    /// Tolerances of that comparison.
    pub tolerances: Tolerances,
}

/// Checks what can be checked before anything starts.
///
/// # Errors
/// [`CommandError::Usage`] when the fault rules' probabilities add up to more than 1 (at most one
/// fault hits an attempt) or the baseline cannot be read; `source` names the scenario file.
pub fn preflight(plan: &Plan, options: &RunOptions, source: &Path) -> Result<(), CommandError> {
    if FaultPlan::new(&plan.faults, plan.seed).overcommitted() {
        let total: f64 = plan.faults.iter().map(|f| f.probability).sum();
        return Err(CommandError::Usage(format!(
            "{}: [[faults]] probability: the rules add up to {total}; at most one fault hits an \
             attempt, so their probabilities must add up to 1 or less\nnothing was started",
            source.display()
        )));
    }
    if let Some(b) = &options.baseline {
        read_baseline(b, "--baseline")
            .map_err(|e| CommandError::Usage(format!("{e}\nnothing was started")))?;
    }
    Ok(())
}

/// Reads a baseline summary; the message names it as `what`.
///
/// # Errors
/// [`CommandError::Usage`] with the reader's message.
pub fn read_baseline(path: &Path, what: &str) -> Result<SummaryFile, CommandError> {
    read::read_summary(path).map_err(|e| CommandError::Usage(format!("{what}: {e}")))
}

/// A run ready to start: the target is up (or resolved) and the results directory exists.
pub struct Prepared {
    addr: load::Endpoint,
    target: TargetInfo,
    /// The in-process hosts, each with its outage windows.
    hosts: Vec<(host::HostHandle, Vec<scenario::Window>)>,
    /// Their runtime (threads of their own, not the runner's); `None` without them.
    host_runtime: Option<host::HostRuntime>,
    dir: PathBuf,
    events: Option<Box<dyn Write + Send>>,
    live: Arc<Live>,
    load_done: (watch::Sender<bool>, watch::Receiver<bool>),
}

/// Starts the in-process host or resolves the remote target, and creates the results
/// directory (`plan.out`, or `results/<name>-<UTC>`) with its events.csv.
///
/// # Errors
/// [`CommandError::Runtime`] when the host cannot start, the target cannot be resolved or the
/// directory cannot be created.
pub async fn prepare(plan: &Plan) -> Result<Prepared, CommandError> {
    // The in-process hosts live until `execute` stops them, on a runtime of their own.
    let mut host_runtime = None;
    let (addr, target, hosts) = match &plan.target {
        Target::InProcess(options) => {
            let host = start_in_process(&mut host_runtime, options, plan.seed).await?;
            let addr = host.addr();
            let target = TargetInfo {
                address: addr.to_string(),
                in_process: true,
            };
            let hosts = vec![(host, options.down.clone())];
            (load::Endpoint::Fixed(addr), target, hosts)
        }
        Target::Remote(remote) => {
            let addr = resolve(&remote.host, remote.port, plan.timeouts.connect).await?;
            let target = TargetInfo {
                address: remote.addr(),
                in_process: false,
            };
            (load::Endpoint::Fixed(addr), target, Vec::new())
        }
        Target::Discover(d) => {
            let mut hosts = Vec::new();
            for (i, options) in d.hosts.iter().enumerate() {
                // Different seeds: each host its own ePID and HwID, as real hosts have.
                let seed = plan.seed.wrapping_add(i as u64);
                let host = start_in_process(&mut host_runtime, options, seed).await?;
                hosts.push((host, options.down.clone()));
            }
            let discovery = match &d.srv {
                None => crate::discover::Discovery::new(d.config.clone(), d.gate.clone())
                    .map_err(CommandError::Runtime)?,
                Some(records) => {
                    let zone = static_zone(&d.config, &d.hosts, &hosts, records);
                    let resolver = crate::discover::Resolver::fixed(zone, d.config.dns_timeout);
                    crate::discover::Discovery::with_resolver(
                        d.config.clone(),
                        d.gate.clone(),
                        resolver,
                    )
                }
            };
            let listed: Vec<String> = d
                .hosts
                .iter()
                .zip(&hosts)
                .map(|(o, (h, _))| format!("{} {}", o.name, h.addr()))
                .collect();
            let target = TargetInfo {
                address: if listed.is_empty() {
                    format!("discover:{}", d.config.domain)
                } else {
                    format!(
                        "discover:{} ({}{})",
                        d.config.domain,
                        listed.join(", "),
                        if d.srv.is_some() {
                            "; records from srv"
                        } else {
                            ""
                        }
                    )
                },
                in_process: !hosts.is_empty(),
            };
            (load::Endpoint::Discover(Arc::new(discovery)), target, hosts)
        }
    };
    let dir = match &plan.out {
        Some(dir) => {
            fs::create_dir_all(dir).map_err(|e| {
                CommandError::Runtime(format!("cannot create {}: {e}", dir.display()))
            })?;
            dir.clone()
        }
        None => {
            create_unique_dir(&report::default_dir(&plan.name, SystemTime::now())).map_err(|e| {
                CommandError::Runtime(format!("cannot create a results directory: {e}"))
            })?
        }
    };
    // The scenario as it ran, for `kmsload merge` (it reads the gates back from it). A plan
    // parsed from text without a file has none to copy.
    if let Some(source) = plan.source.as_ref().filter(|p| p.is_file()) {
        fs::copy(source, dir.join("scenario.toml")).map_err(|e| {
            CommandError::Runtime(format!(
                "cannot copy the scenario to {}: {e}",
                dir.display()
            ))
        })?;
    }
    // events.csv always holds every attempt (merge and the rebuild of a killed run rely on
    // it); the failures alone go to failures.csv, with the same columns. A file of the other
    // name left by an earlier run into the same `--out` would be read as this run's.
    let (write, stale): (Option<&str>, &[&str]) = match plan.events {
        EventsMode::Full => (Some("events.csv"), &["failures.csv"]),
        EventsMode::Failures => (Some("failures.csv"), &["events.csv"]),
        EventsMode::Off => (None, &["events.csv", "failures.csv"]),
    };
    for name in stale {
        match fs::remove_file(dir.join(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(CommandError::Runtime(format!(
                    "cannot remove the old {}: {e}",
                    dir.join(name).display()
                )));
            }
            _ => {}
        }
    }
    let events: Option<Box<dyn Write + Send>> = match write {
        Some(name) => {
            let path = dir.join(name);
            let file = fs::File::create(&path).map_err(|e| {
                CommandError::Runtime(format!("cannot create {}: {e}", path.display()))
            })?;
            Some(Box::new(BufWriter::with_capacity(1 << 16, file)))
        }
        None => None,
    };
    Ok(Prepared {
        addr,
        target,
        hosts,
        host_runtime,
        dir,
        events,
        live: Arc::new(Live::default()),
        load_done: watch::channel(false),
    })
}

/// How a run ended, for the caller to print and turn into an exit status.
#[derive(Debug)]
pub struct Finished {
    /// The results directory.
    pub dir: PathBuf,
    /// The human summary (report.md's first part).
    pub markdown: String,
    /// Gate verdicts.
    pub gates: Vec<GateResult>,
    /// False when the run was interrupted or aborted before its bounds.
    pub complete: bool,
    /// The gate that aborted the run, with what it measured.
    pub aborted: Option<String>,
    /// An error while writing events.csv (the run went on).
    pub events_error: Option<String>,
    /// For ramps: "this host sustains X activations/s with p99 < Y".
    pub knee: Option<String>,
    /// report.html, when written.
    pub page: Option<PathBuf>,
    /// The --baseline comparison.
    pub comparison: Option<Comparison>,
    /// A failure after summary.json was written (report.md's twin, report.html, the
    /// baseline): the fields above are still good.
    pub report_error: Option<CommandError>,
    /// The accounting check failed: an attempt was lost or counted twice (a kmsload bug).
    pub accounting_error: Option<String>,
}

impl Finished {
    /// True when every gate passed, the run completed and no regression was found.
    pub fn passed(&self) -> bool {
        self.complete
            && self.gates.iter().all(|g| g.pass)
            && !self.comparison.as_ref().is_some_and(Comparison::regressed)
    }
}

impl Prepared {
    /// The target as the results record it.
    pub fn target(&self) -> &TargetInfo {
        &self.target
    }

    /// The results directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The runner's live counters, for progress display.
    pub fn live(&self) -> Arc<Live> {
        self.live.clone()
    }

    /// Changes to `true` when the load has ended (before the results are written).
    pub fn load_done(&self) -> watch::Receiver<bool> {
        self.load_done.1.clone()
    }

    /// A warning when the run may hold more sockets than the open-file limit allows.
    pub fn open_files_warning(&self, plan: &Plan) -> Option<String> {
        open_files_warning(
            plan,
            self.target.in_process,
            crate::procfs::open_file_limit(),
            crate::procfs::local_port_count(),
        )
    }
    /// Runs the load, stops the in-process host and writes every result file. Sending
    /// `true` on `stop` interrupts the load (Ctrl-C).
    ///
    /// # Errors
    /// [`CommandError::Usage`] when the plan's fleet cannot be built; [`CommandError::Runtime`] when
    /// summary.json, the logs, report.md or the JUnit file cannot be written.
    pub async fn execute(
        self,
        plan: &Plan,
        options: &RunOptions,
        stop: watch::Receiver<bool>,
    ) -> Result<Finished, CommandError> {
        let Self {
            addr,
            target,
            hosts,
            host_runtime,
            dir,
            events,
            live,
            load_done,
        } = self;
        let watchdog = plan.gate_abort.map(|abort| -> load::Watchdog {
            let gates = plan.gates.clone();
            Box::new(move |recorder, elapsed| {
                report::gates::abort_reason(&gates, abort, recorder, elapsed)
            })
        });
        // The outage windows run beside the load, from its time 0, and end with it.
        let job = load::Job {
            local_ports: crate::procfs::local_port_count(),
            ..plan.job()
        };
        let result = tokio::select! {
            r = load::run(&job, addr, events, live.clone(), stop, watchdog) => r,
            () = outages(&hosts, &live) => unreachable!("the outage schedule never ends"),
        };
        let _ = load_done.0.send(true);
        for (host, _) in hosts {
            host.shutdown().await;
        }
        // The hosts have stopped: their threads end (without blocking this runtime).
        drop(host_runtime);
        let result = result.map_err(|e| CommandError::Usage(e.to_string()))?;
        let mut finished = finish(&dir, plan, &target, &result, options)?;
        finished.accounting_error = accounting(&result).err();
        Ok(finished)
    }
}

/// Writes the results of `result` to `dir` as a run does: summary.json, the logs,
/// report.md, JUnit if asked, then report.md's twin, report.html and the baseline
/// comparison. Used by [`Prepared::execute`] and by `kmsload merge` for the merged result.
///
/// # Errors
/// [`CommandError::Runtime`] when summary.json or the JUnit file cannot be written; a later
/// failure is in [`Finished::report_error`].
pub fn finish(
    dir: &Path,
    plan: &Plan,
    target: &TargetInfo,
    result: &RunResult,
    options: &RunOptions,
) -> Result<Finished, CommandError> {
    let gates = report::evaluate(&plan.gates, &result.recorder, result.achieved_rate);
    report::write_results(dir, plan, target, result, &gates).map_err(|e| {
        CommandError::Runtime(format!("cannot write results to {}: {e}", dir.display()))
    })?;
    if let Some(path) = &options.junit {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(|e| {
                CommandError::Runtime(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let incomplete = incomplete_reason(result);
        report::write_junit(
            path,
            &plan.name,
            &gates,
            result.elapsed.as_secs_f64(),
            incomplete.as_deref(),
        )
        .map_err(|e| CommandError::Runtime(format!("cannot write {}: {e}", path.display())))?;
    }
    let summary = result.recorder.summary();
    let mut finished = Finished {
        markdown: report::markdown(plan, target, result, &summary, &gates),
        dir: dir.to_owned(),
        gates,
        complete: result.complete,
        aborted: result.aborted.clone(),
        events_error: result.events_error.clone(),
        knee: None,
        page: None,
        comparison: None,
        report_error: None,
        accounting_error: None,
    };
    if let Err(e) = after_results(&mut finished, options) {
        finished.report_error = Some(e);
    }
    Ok(finished)
}

/// Why the run did not reach its bounds, for JUnit's `run completed` case; `None` when it did.
fn incomplete_reason(result: &RunResult) -> Option<String> {
    match (&result.aborted, result.complete) {
        (_, true) => None,
        (Some(why), false) => Some(format!("aborted by a gate: {why}")),
        (None, false) => Some(
            "interrupted (Ctrl-C, SIGTERM or SIGHUP) before the scenario's bounds; the results \
             cover part of the load"
                .to_owned(),
        ),
    }
}

/// Creates `dir`, which must not exist yet, or the first free `dir-2`, `dir-3`, ...: two runs
/// started in the same second never share (and tear) one results directory.
fn create_unique_dir(dir: &Path) -> std::io::Result<PathBuf> {
    if let Some(parent) = dir.parent() {
        fs::create_dir_all(parent)?;
    }
    let mut candidate = dir.to_path_buf();
    for n in 2u32.. {
        match fs::create_dir(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 10_000 => {
                candidate = PathBuf::from(format!("{}-{n}", dir.display()));
            }
            Err(e) => return Err(e),
        }
    }
    unreachable!("the loop returns")
}

/// Every attempt appears exactly once.
fn accounting(result: &RunResult) -> Result<(), String> {
    if let Err(e) = result.recorder.invariant_check() {
        return Err(format!(
            "accounting check failed: {e} (this is a kmsload bug)"
        ));
    }
    if result.recorder.attempts() != result.dispatched {
        return Err(format!(
            "accounting check failed: {} attempts dispatched but {} recorded (this is a kmsload bug)",
            result.dispatched,
            result.recorder.attempts()
        ));
    }
    Ok(())
}

/// Once summary.json is written: reads the directory back, appends the text twin sections
/// to report.md, finds the knee, writes report.html unless `no_html`, and compares with the
/// baseline when there is one.
fn after_results(f: &mut Finished, options: &RunOptions) -> Result<(), CommandError> {
    let r = read::read_dir(&f.dir).map_err(|e| {
        CommandError::Runtime(format!("cannot read the results back for the report: {e}"))
    })?;
    let page = (!options.no_html).then(|| f.dir.join(html::FILE_NAME));
    let twin = analysis::twin_markdown(&r, page.is_some().then_some(html::FILE_NAME));
    let md = f.dir.join("report.md");
    OpenOptions::new()
        .append(true)
        .open(&md)
        .and_then(|mut file| file.write_all(twin.as_bytes()))
        .map_err(|e| CommandError::Runtime(format!("cannot write {}: {e}", md.display())))?;
    f.knee = analysis::knee(&r)
        .filter(|k| k.is_ramp())
        .map(|k| k.sentence());
    if let Some(path) = page {
        html::write(&r, Some(&path))
            .map_err(|e| CommandError::Runtime(format!("cannot write {}: {e}", path.display())))?;
        f.page = Some(path);
    }
    if let Some(base) = &options.baseline {
        let b = read_baseline(base, "baseline")?;
        f.comparison = Some(report::compare::compare(
            &b,
            &r.summary,
            (&base.display().to_string(), &f.dir.display().to_string()),
            &options.tolerances,
        ));
    }
    Ok(())
}

/// A warning when the run may hold more sockets at once than the open-file limit allows.
/// Attempts past the limit would fail as `local:too_many_open_files`: kmsload's problem,
/// not the host's.
///
/// Sockets at once: the attempts in flight (open model: at most `max_in_flight` or the
/// connection budget of [`load::Load::in_flight_limit`], and at most
/// the peak rate times the longest an attempt can hold a socket, the sum of its phase
/// timeouts; closed model: `clients`), doubled with the in-process host, which holds the
/// other end, plus slack for the runtime and the result files. Kept-alive connections idle
/// in the pool never outnumber the attempts that once used them at the same time.
pub fn open_files_warning(
    plan: &Plan,
    in_process: bool,
    limit: Option<u64>,
    local_ports: Option<u32>,
) -> Option<String> {
    const SLACK: u64 = 64;
    let limit = limit?;
    let in_flight = match &plan.load.model {
        scenario::LoadModel::Open(schedule) => {
            let t = &plan.timeouts;
            let longest = (t.connect + t.bind + t.request).as_secs_f64();
            let by_rate = (schedule.peak_rate() * longest).ceil() as u64;
            let cap = plan.load.in_flight_limit(local_ports).limit;
            u64::from(cap).min(by_rate.max(1))
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

async fn resolve(host: &str, port: u16, limit: Duration) -> Result<SocketAddr, CommandError> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    crate::client::resolve(host, port, limit)
        .await
        .map_err(|e| CommandError::Runtime(format!("target: {e}")))
}

/// Takes each host down and up at its outage windows, counted from the load's time 0; then
/// waits forever (the caller ends it with the load).
async fn outages(hosts: &[(host::HostHandle, Vec<scenario::Window>)], live: &Live) {
    let mut changes: Vec<(Duration, usize, bool)> = hosts
        .iter()
        .enumerate()
        .flat_map(|(i, (_, windows))| {
            windows
                .iter()
                .flat_map(move |w| [(w.start, i, true), (w.end, i, false)])
        })
        .collect();
    if !changes.is_empty() {
        // Ends before starts at the same instant: back-to-back windows stay apart.
        changes.sort_by_key(|&(at, i, down)| (at, down, i));
        let zero = live.started().await;
        for (at, i, down) in changes {
            tokio::time::sleep_until((zero + at).into()).await;
            hosts[i].0.set_down(down);
        }
    }
    std::future::pending::<()>().await;
}

/// The static zone of a scenario's `srv` list: each record's target is its host's name, at
/// the port and address that host listens on; the answer's TTL is `dns_ttl`, else an hour.
fn static_zone(
    config: &crate::discover::DiscoveryConfig,
    options: &[scenario::HostOptions],
    hosts: &[(host::HostHandle, Vec<scenario::Window>)],
    records: &[scenario::StaticSrv],
) -> crate::discover::StaticZone {
    let mut list: Vec<crate::discover::SrvRecord> = records
        .iter()
        .map(|r| crate::discover::SrvRecord {
            target: options[r.host].name.clone(),
            port: hosts[r.host].0.addr().port(),
            priority: r.priority,
            weight: r.weight,
        })
        .collect();
    list.sort();
    crate::discover::StaticZone {
        domain: config.domain.clone(),
        answer: crate::discover::SrvAnswer {
            name: crate::discover::srv_name(&config.domain),
            records: list,
            ttl: config.dns_ttl.unwrap_or(Duration::from_secs(3600)),
        },
        addresses: options
            .iter()
            .zip(hosts)
            .map(|(o, (h, _))| (o.name.clone(), h.addr().ip()))
            .collect(),
    }
}

/// Worker threads of the in-process hosts' runtime: half the cores, at least one, beside
/// the runner's runtime (one worker per core). Measured on 2 cores (benches/inproc.sh, issue
/// 15): runner 2 + host 1 was the best of 1+1, 1+2, 2+1 and 2+2, and pinning the host's
/// thread to one core (and the runner's to the other) gained nothing, so no thread is pinned.
fn host_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

/// Starts a reference host in-process on loopback, on the run's host runtime (created for the
/// first host), configured from the scenario's `[host]` section or one `[[hosts]]` entry.
async fn start_in_process(
    runtime: &mut Option<host::HostRuntime>,
    options: &scenario::HostOptions,
    seed: u64,
) -> Result<host::HostHandle, CommandError> {
    let runtime = match runtime {
        Some(rt) => rt,
        None => runtime.insert(host::HostRuntime::new(host_threads()).map_err(|e| {
            CommandError::Runtime(format!(
                "cannot start the in-process host {}: {e}",
                options.name
            ))
        })?),
    };
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
        scenario::HostKeyPlan::VolumeOnly => {}
        scenario::HostKeyPlan::Group(key) => config.host_key = key,
        scenario::HostKeyPlan::KmsIds(ids) => {
            // The list is exactly what is accepted, retail or not.
            config.accept_retail = true;
            config.only_kms_ids = Some(ids.clone());
        }
    }
    let server = host::ServerOptions {
        listen: SocketAddr::from((options.address, options.port)),
        host: config,
        rpc: crate::wire::session::HostRpcConfig {
            ndr64: options.ndr64,
            btfn: options.btfn,
            ..crate::wire::session::HostRpcConfig::default()
        },
        close_after_response: options.close_after_response,
        ..host::ServerOptions::default()
    };
    runtime.start(server).await.map_err(|e| {
        CommandError::Runtime(format!(
            "cannot start the in-process host {}: {e}",
            options.name
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Overrides;

    fn plan(text: &str) -> Plan {
        scenario::parse_str(
            text,
            Path::new("t.toml"),
            &Overrides::default(),
            &scenario::resolve_exact,
        )
        .unwrap()
    }

    fn open_plan(load: &str) -> Plan {
        plan(&format!(
            "[fleet]\nsize = 10\nproducts = [{{ product = \"Windows 10/11 Pro\" }}]\n[load]\n{load}\n"
        ))
    }

    /// The in-process host runs on threads of its own: it accepts and reads while the
    /// runner's runtime (here one thread) is blocked. On the runner's runtime it would not
    /// read until the read below timed out.
    #[test]
    fn the_in_process_host_answers_while_the_runners_runtime_is_blocked() {
        use std::io::{Read, Write};
        let dir = std::env::temp_dir().join(format!("kmsload-own-rt-{}", std::process::id()));
        let mut p = plan(
            "[fleet]\nsize = 1\nproducts = [{ product = \"Windows 10/11 Pro\" }]\n\
             [load]\nrate = 10\nattempts = 1\n[host]\nport = 0\n",
        );
        p.out = Some(dir.clone());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let prepared = prepare(&p).await.unwrap();
            assert!(prepared.host_runtime.is_some());
            let load::Endpoint::Fixed(addr) = prepared.addr else {
                panic!("a fixed address")
            };
            // Blocking calls on the runtime's only thread: nothing else runs on it now.
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.write_all(b"not DCE/RPC at all").unwrap();
            // The host reads the bytes, sees they are not DCE/RPC and closes the connection.
            let mut buf = [0u8; 64];
            match s.read(&mut buf) {
                Ok(0) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
                other => panic!("the host did not read and close: {other:?}"),
            }
            for (host, _) in prepared.hosts {
                host.shutdown().await;
            }
        });
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_taken_results_directory_name_gets_a_suffix() {
        let base = std::env::temp_dir().join(format!("kmsload-unique-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let name = base.join("smoke-20261206T010101Z");
        let first = create_unique_dir(&name).unwrap();
        let second = create_unique_dir(&name).unwrap();
        let third = create_unique_dir(&name).unwrap();
        assert_eq!(first, name);
        assert_eq!(second, base.join("smoke-20261206T010101Z-2"));
        assert_eq!(third, base.join("smoke-20261206T010101Z-3"));
        fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn warns_when_sockets_in_flight_can_exceed_the_limit() {
        // 10,000/s for up to 20 s of phase timeouts could hold far more; the cap holds 1000.
        let open = open_plan("rate = 10000\nduration = \"1s\"\nmax_in_flight = 1000");
        // 1000 in flight, two sockets each with the in-process host, plus slack.
        // (65,536 local ports: a connection budget of 2048, above the cap.)
        let ports = Some(65_536);
        let warning = open_files_warning(&open, true, Some(1024), ports).unwrap();
        assert!(warning.contains("2064 open files"), "{warning}");
        assert!(warning.contains("ulimit -n"), "{warning}");
        assert_eq!(open_files_warning(&open, false, Some(1064), ports), None);
        assert!(open_files_warning(&open, false, Some(1063), ports).is_some());
        assert_eq!(open_files_warning(&open, true, None, ports), None);
        // Linux's default 28,232 ports: a budget of 882 connections, below the cap.
        let warning = open_files_warning(&open, true, Some(1024), Some(28_232)).unwrap();
        assert!(warning.contains("1828 open files"), "{warning}");

        // A low rate cannot fill a high cap: 10/s times the phase timeouts is the bound.
        let slow = open_plan("rate = 10\nduration = \"1s\"\nmax_in_flight = 100000");
        let t = &slow.timeouts;
        let bound = (10.0 * (t.connect + t.bind + t.request).as_secs_f64()).ceil() as u64;
        assert_eq!(
            open_files_warning(&slow, true, Some(2 * bound + 64), ports),
            None
        );
        assert!(open_files_warning(&slow, true, Some(2 * bound + 63), ports).is_some());

        let closed = open_plan("model = \"closed\"\nclients = 5000\nduration = \"1s\"");
        assert!(open_files_warning(&closed, false, Some(1024), ports).is_some());
        assert_eq!(open_files_warning(&closed, false, Some(20000), ports), None);
    }

    /// With a new connection per activation, the attempts in progress hold at most the
    /// connection budget, not `max_in_flight`: a host that holds every connection (never
    /// answers the bind) sees at most that many at once, and the arrivals that found no slot
    /// wait (and, at the end of the run, are not started).
    #[test]
    fn a_host_that_falls_behind_holds_no_more_connections_than_the_budget() {
        use std::sync::atomic::{AtomicU64, Ordering};
        const BUDGET: u32 = 40;
        let plan = open_plan(
            "rate = 2000\nduration = \"700ms\"\nmax_in_flight = 10000\n\
             [timeouts]\nbind = \"150ms\"\ndrain = \"2s\"",
        );
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let open = Arc::new(AtomicU64::new(0));
            let peak = Arc::new(AtomicU64::new(0));
            let (o, p) = (open.clone(), peak.clone());
            // Accepts, reads and never answers; counts the connections open at once.
            let host = tokio::spawn(async move {
                loop {
                    let (mut s, _) = listener.accept().await.unwrap();
                    let now = o.fetch_add(1, Ordering::SeqCst) + 1;
                    p.fetch_max(now, Ordering::SeqCst);
                    let o = o.clone();
                    tokio::spawn(async move {
                        use tokio::io::AsyncReadExt;
                        let mut buf = [0u8; 512];
                        while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
                        o.fetch_sub(1, Ordering::SeqCst);
                    });
                }
            });
            let mut job = plan.job();
            job.local_ports = Some(BUDGET * load::PORT_SHARE);
            let live = Arc::new(Live::default());
            let (_stop_tx, stop) = watch::channel(false);
            // The runner's own count of attempts in progress, sampled through the run.
            let sampled = Arc::new(AtomicU64::new(0));
            let (l, s) = (live.clone(), sampled.clone());
            let sampler = tokio::spawn(async move {
                loop {
                    s.fetch_max(l.in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            });
            let result = load::run(&job, load::Endpoint::Fixed(addr), None, live, stop, None)
                .await
                .unwrap();
            sampler.abort();
            host.abort();
            let budget = result.generator.connection_budget.unwrap();
            assert_eq!(
                (budget.limit, budget.max_in_flight, budget.sources),
                (BUDGET, 10_000, 1)
            );
            // Arrivals found every slot taken and waited: said in summary.json and report.md.
            assert!(result.generator.slot_waits > 0, "{:?}", result.generator);
            assert_eq!(result.generator.in_flight_limit, BUDGET);
            let sampled = sampled.load(Ordering::SeqCst);
            assert!(sampled <= u64::from(BUDGET), "{sampled} in flight");
            // The host counts a connection until it reads its end, a moment after the
            // runner's slot is free again: a few more may overlap. Without the budget, the
            // 2,000/s for 150 ms each would hold about 300.
            let peak = peak.load(Ordering::SeqCst);
            assert!(
                (u64::from(BUDGET) / 2..=u64::from(BUDGET) + 10).contains(&peak),
                "{peak} connections at once"
            );
            assert!(
                result.not_started > 0,
                "dispatched {}, not started {}",
                result.dispatched,
                result.not_started
            );
            assert_eq!(result.recorder.attempts(), result.dispatched);
        });
    }

    #[test]
    fn over_committed_faults_and_unreadable_baselines_start_nothing() {
        let p = plan(
            "[fleet]\nsize = 10\nproducts = [{ product = \"Windows 10/11 Pro\" }]\n\
             [load]\nrate = 10\nattempts = 5\n\
             [[faults]]\nkind = \"reset\"\nprobability = 0.5\n\
             [[faults]]\nkind = \"refuse\"\nprobability = 0.6\n",
        );
        let e = preflight(&p, &RunOptions::default(), Path::new("f.toml")).unwrap_err();
        assert!(
            matches!(&e, CommandError::Usage(m) if m.contains("add up to 1.1") && m.starts_with("f.toml")),
            "{e}"
        );
        let ok = open_plan("rate = 10\nattempts = 5");
        preflight(&ok, &RunOptions::default(), Path::new("f.toml")).unwrap();
        let options = RunOptions {
            baseline: Some("/nonexistent/kmsload-baseline".into()),
            ..RunOptions::default()
        };
        let e = preflight(&ok, &options, Path::new("f.toml")).unwrap_err();
        assert!(
            matches!(&e, CommandError::Usage(m) if m.starts_with("--baseline:") && m.contains("nothing was started")),
            "{e}"
        );
    }

    /// The whole of `kmsload run` in-process: the reference host on loopback, 30 attempts,
    /// every result file, the gates and the accounting; then the same plan again with the
    /// first run as its baseline.
    #[test]
    fn a_run_against_the_in_process_host_writes_its_results_and_passes() {
        let dir = std::env::temp_dir().join(format!("kmsload-run-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let mut p = plan(
            "name = \"in-process\"\n[fleet]\nsize = 30\n\
             products = [{ product = \"Windows 10/11 Pro\" }]\n\
             [load]\nrate = 300\nattempts = 30\n\
             [host]\ncharged = true\nport = 0\n\
             [gates]\nmax_error_rate = 0\n",
        );
        p.out = Some(dir.join("first"));
        let junit = dir.join("gates.xml");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let options = RunOptions {
            junit: Some(junit.clone()),
            ..RunOptions::default()
        };
        let run = |p: Plan, options: RunOptions| {
            rt.block_on(async move {
                let prepared = prepare(&p).await?;
                assert!(prepared.target().in_process);
                let done = prepared.load_done();
                let (_stop_tx, stop) = watch::channel(false);
                let f = prepared.execute(&p, &options, stop).await?;
                assert!(*done.borrow(), "load_done is signalled");
                Ok::<_, CommandError>(f)
            })
        };
        let f = run(p.clone(), options).unwrap();
        assert!(f.passed(), "{f:?}");
        assert!(f.complete && f.accounting_error.is_none() && f.report_error.is_none());
        assert!(f.markdown.contains("30 activated"), "{}", f.markdown);
        for file in [
            "summary.json",
            "events.csv",
            "histograms.hlog",
            "report.md",
            "report.html",
        ] {
            assert!(f.dir.join(file).is_file(), "{file}");
        }
        assert!(
            fs::read_to_string(&junit)
                .unwrap()
                .contains("failures=\"0\"")
        );
        let s = read::read_summary(&f.dir).unwrap();
        assert_eq!(s.recorded.attempts, 30);
        // The host is on this machine: its listen queues are reported where Linux has them.
        if crate::procfs::listen_counters().is_some() {
            let q = s.generator.listen_queue.expect("listen queues reported");
            assert_eq!(q.somaxconn, crate::procfs::somaxconn());
            assert!(
                f.markdown.contains("listen queues on this machine"),
                "{}",
                f.markdown
            );
        }

        p.out = Some(dir.join("second"));
        let options = RunOptions {
            baseline: Some(dir.join("first")),
            no_html: true,
            ..RunOptions::default()
        };
        let f = run(p, options).unwrap();
        assert!(f.comparison.is_some() && f.page.is_none());
        assert!(!f.dir.join("report.html").exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
