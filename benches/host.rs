//! Whole-host and whole-runner benchmark, a plain `main` that prints one table of every figure
//! with its floor, the ratio and the targets of issue 15, and writes the table as JSON to
//! `target/bench-host.json` (or `$CARGO_TARGET_DIR/bench-host.json`).
//!
//! Phases, in order (each figure reads against floors measured in the same run):
//!
//! 1. **idle**: memory of 10,000 bound, idle host connections. The client sockets live in a
//!    child process (this bench re-executed with `KMSLOAD_BENCH_ROLE=idle-clients`), so the
//!    RSS increase of this process is the host's alone.
//! 2. **connections held by the runner**: a child process (`KMSLOAD_BENCH_ROLE=runner-conns`)
//!    runs `kmsload::load::run`, the runner of `kmsload run`, with 10,000 closed-loop clients
//!    on kept-alive connections that think 2 s between activations, so all 10,000
//!    connections are open at once; its RSS increase per open connection is the runner's
//!    memory per connection, this process's the host's (active, kept-alive connections).
//! 3. **crypto**: a timed loop of the V6 wire-level work of one activation, the client's
//!    (encode + encrypt the request, decrypt + verify the response) and the host's (decrypt +
//!    decode the request, encode + encrypt the response), as `benches/wire.rs` measures it.
//! 4. **host, bench loop**: C client tasks (64), each with its own `client::Client`, looping V6
//!    activations with new CMIDs (kept alive, then a new connection per activation: connect,
//!    bind, alter_context, request, close; sockets spread over 127.0.2.x sources so TIME_WAIT
//!    does not exhaust the ephemeral ports).
//! 5. **runner**: the same load from `kmsload::load::run` (what `kmsload run` runs: schedule,
//!    fleet identities, fault plan, recorder with histograms, timeline, threshold tracker),
//!    closed model, C clients, kept alive and then a new connection per activation; and its
//!    heap allocations per activation, counted on a current-thread runtime (the difference of
//!    two runs of different length, so set-up cost cancels out).
//! 6. **1,000,000-client fleet**: `kmsload run` (the binary) of a closed-loop scenario with
//!    `[fleet] size = 1000000` against this host, its peak RSS from `/usr/bin/time`.
//! 7. **floor**: the same two loads against a plain TCP echo of 300 bytes each way (the size of
//!    a V6 request and response), with no RPC, no KMS and no crypto: what one exchange costs
//!    this machine's kernel and tokio.
//!
//! Host and clients share the machine's cores: the host runs on its own runtime (threads named
//! `kmsload-host`), the clients and the runner on another (`bench-client`), and the CPU time
//! of each is read per thread from `/proc/self/task/*/stat`, so each side's CPU cost per
//! activation is reported apart.
//!
//! The targets (issue 15): runner CPU per kept-alive activation ≤ 1.3 × (echo client per
//! exchange + V6 client crypto); per new-connection activation ≤ 1.3 × (new-connection echo
//! client + 2 kept-alive echo exchanges + V6 client crypto), a Windows-style activation being
//! 3 round trips (bind, alter_context, request); host CPU per kept-alive activation ≤ 1.3 ×
//! (echo server per exchange + V6 host crypto); runner ≤ 2 allocations per activation;
//! memory per kept-alive connection: runner ≤ 4 KiB, host ≤ 2 KiB; a 1,000,000-client fleet
//! run under 64 MiB peak RSS.
//!
//! Run: `cargo bench --bench host` (release). Environment: `KMSLOAD_BENCH_SECS` (per phase,
//! default 5), `KMSLOAD_BENCH_CONCURRENCY` (64), `KMSLOAD_BENCH_IDLE` (10000, also the runner's
//! held connections), `KMSLOAD_BENCH_HOST_THREADS` / `KMSLOAD_BENCH_CLIENT_THREADS` (1 / 1),
//! `KMSLOAD_BENCH_ONLY=memory` (only the rows that are counted, not timed: phases 1, 2 and 6
//! and the runner's allocations per activation, in about half a minute; the table then goes
//! to `target/bench-host-memory.json`, and `bench-host.json` keeps the last full run).
//! Linux only (reads `/proc`).

use std::hint::black_box;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kmsload::catalog::lookup;
use kmsload::client::{Client, ClientOptions, Outcome, TcpConnector};
use kmsload::host::server::{ServerOptions, start_background};
use kmsload::load::{self, Endpoint, Live};
use kmsload::procfs;
use kmsload::scenario::{self, Plan};
use kmsload::wire::kms::{HostRequest, HwId, encode_request_into};
use kmsload::wire::session::{ClientRpcConfig, ClientSession};
use kmsload::wire::{FileTime, RequestBase, ResponseBase};
use uuid::Uuid;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One line of the table.
#[derive(Debug, Clone, serde::Serialize)]
struct Row {
    /// What was measured.
    figure: String,
    value: f64,
    unit: &'static str,
    /// What the value reads against, and its value in the same unit.
    floor_is: Option<String>,
    floor: Option<f64>,
    /// value / floor.
    ratio: Option<f64>,
    /// The target: a limit on the ratio when there is a floor, else on the value.
    target: Option<f64>,
    /// Whether the target is met; `None` for a figure without one.
    pass: Option<bool>,
}

#[derive(Default)]
struct Table(Vec<Row>);

impl Table {
    /// A figure without a floor or a target.
    fn info(&mut self, figure: impl Into<String>, value: f64, unit: &'static str) {
        self.0.push(Row {
            figure: figure.into(),
            value,
            unit,
            floor_is: None,
            floor: None,
            ratio: None,
            target: None,
            pass: None,
        });
    }

    /// A figure with an absolute limit (memory, allocations).
    fn limit(&mut self, figure: impl Into<String>, value: f64, unit: &'static str, limit: f64) {
        self.0.push(Row {
            figure: figure.into(),
            value,
            unit,
            floor_is: None,
            floor: None,
            ratio: None,
            target: Some(limit),
            pass: Some(value <= limit),
        });
    }

    /// A figure against its floor, with a target on the ratio or none.
    fn ratio(
        &mut self,
        figure: impl Into<String>,
        value: f64,
        unit: &'static str,
        floor_is: impl Into<String>,
        floor: f64,
        target: Option<f64>,
    ) {
        let ratio = (floor > 0.0).then(|| value / floor);
        self.0.push(Row {
            figure: figure.into(),
            value,
            unit,
            floor_is: Some(floor_is.into()),
            floor: Some(floor),
            ratio,
            target,
            pass: target.map(|t| ratio.is_some_and(|r| r <= t)),
        });
    }

    fn print(&self) {
        println!();
        println!(
            "{:<58} {:>12} {:<8} {:>9} {:>7} {:>7} {:<6}  floor",
            "figure", "value", "unit", "floor", "ratio", "target", ""
        );
        for r in &self.0 {
            let num =
                |v: Option<f64>, prec: usize| v.map_or_else(String::new, |v| format!("{v:.prec$}"));
            let prec = if r.value >= 1000.0 { 0 } else { 1 };
            let verdict = match r.pass {
                Some(true) => "PASS",
                Some(false) => "over",
                None => "",
            };
            let target = match (r.target, r.floor) {
                (Some(t), Some(_)) => format!("≤{t:.2}×"),
                (Some(t), None) => format!("≤{t:.0}"),
                (None, _) => String::new(),
            };
            println!(
                "{:<58} {:>12} {:<8} {:>9} {:>7} {:>7} {:<6}  {}",
                r.figure,
                format!("{:.prec$}", r.value),
                r.unit,
                num(r.floor, 1),
                num(r.ratio, 2),
                target,
                verdict,
                r.floor_is.as_deref().unwrap_or("")
            );
        }
    }

    fn write_json(&self, path: &Path, setup: serde_json::Value) {
        let doc = serde_json::json!({ "setup": setup, "rows": self.0 });
        let text = serde_json::to_string_pretty(&doc).expect("table serialises");
        match std::fs::write(path, text + "\n") {
            Ok(()) => println!("\nwritten to {}", path.display()),
            Err(e) => println!("\ncannot write {}: {e}", path.display()),
        }
    }
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
        PathBuf::from,
    )
}

fn main() {
    match std::env::var("KMSLOAD_BENCH_ROLE").as_deref() {
        Ok("idle-clients") => return idle_clients(),
        Ok("runner-conns") => return runner_connections_child(),
        _ => {}
    }
    // `cargo bench` passes `--bench`; nothing else to parse.
    let secs = env_num("KMSLOAD_BENCH_SECS", 5);
    let concurrency = env_num("KMSLOAD_BENCH_CONCURRENCY", 64);
    let idle = env_num("KMSLOAD_BENCH_IDLE", 10_000);
    let host_threads = env_num("KMSLOAD_BENCH_HOST_THREADS", 1) as usize;
    let client_threads = env_num("KMSLOAD_BENCH_CLIENT_THREADS", 1) as usize;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "kmsload host benchmark: {cores} cores, host {host_threads} thread(s), clients {client_threads} thread(s), {secs} s per phase"
    );
    let only_memory = match std::env::var("KMSLOAD_BENCH_ONLY").as_deref() {
        Ok("memory") => true,
        Ok("") | Err(_) => false,
        Ok(other) => {
            eprintln!("KMSLOAD_BENCH_ONLY={other}: the one value is `memory` (or unset for all)");
            std::process::exit(2);
        }
    };
    let setup = serde_json::json!({
        "cores": cores,
        "host_threads": host_threads,
        "client_threads": client_threads,
        "seconds_per_phase": secs,
        "concurrency": concurrency,
        "held_connections": idle,
        "only": if only_memory { "memory" } else { "all" },
    });
    let mut table = Table::default();

    let options = ServerOptions {
        max_connections: 100_000,
        idle_timeout: Duration::from_secs(120),
        ..ServerOptions::default()
    };
    let options = ServerOptions {
        host: kmsload::host::HostConfig {
            charged: true,
            ..options.host
        },
        ..options
    };
    let host = start_background(options, host_threads).expect("host starts");
    let addr = host.addr();
    println!("host on {addr}");

    // 1. Idle connections first, on a fresh heap.
    if let Some(per_conn) = idle_memory(&host, addr, idle) {
        table.limit(
            "host memory per idle connection (10k bound)",
            per_conn,
            "bytes",
            2048.0,
        );
    }
    // 2. Connections held by the runner, before the throughput phases grow either heap.
    if let Some((runner, host_per_conn)) = runner_connections(&host, addr, idle) {
        table.limit(
            "runner memory per kept-alive connection (10k open)",
            runner,
            "bytes",
            4096.0,
        );
        table.limit(
            "host memory per kept-alive connection (10k open)",
            host_per_conn,
            "bytes",
            2048.0,
        );
    }

    if only_memory {
        // The rows counted rather than timed: the allocations and the fleet's peak RSS.
        let allocs = runner_allocations(addr, concurrency);
        let fleet_rss = fleet_peak_rss(addr, secs);
        drop(host.shutdown());
        allocation_rows(&mut table, &allocs);
        fleet_row(&mut table, fleet_rss);
        table.print();
        table.write_json(&target_dir().join("bench-host-memory.json"), setup);
        return;
    }

    // 3. The V6 crypto of one activation, each side.
    let crypto_secs = (secs as f64 / 5.0).clamp(0.2, 2.0);
    let (client_crypto, host_crypto) = crypto_costs(Duration::from_secs_f64(crypto_secs));
    println!();
    println!(
        "V6 crypto per activation: client {client_crypto:.2} µs, host {host_crypto:.2} µs (thread CPU over {crypto_secs:.1} s each)"
    );
    table.info("V6 client crypto per activation", client_crypto, "µs");
    table.info("V6 host crypto per activation", host_crypto, "µs");

    // 4. The host under the bench's own client loop.
    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(client_threads.max(1))
        .thread_name("bench-client")
        .enable_all()
        .build()
        .expect("client runtime");
    let mut bench_loop = Vec::new();
    for (name, keep_alive) in [("kept-alive", true), ("new connection", false)] {
        let host_requests = host.handle().stats().requests;
        let ((ok, failed), wall, cpu) = measured(|| {
            clients.block_on(load_loop(
                addr,
                keep_alive,
                concurrency,
                Duration::from_secs(secs),
            ))
        });
        let served = host.handle().stats().requests - host_requests;
        println!();
        println!("host, bench loop, {name}: {concurrency} clients, V6, new CMID each");
        let (host_us, client_us) = print_activations(ok, failed, served, wall, cpu, cores);
        bench_loop.push((name, ok as f64 / wall, host_us, client_us));
    }

    // 5. The runner itself.
    let mut runner = Vec::new();
    for (name, keep_alive) in [("kept-alive", true), ("new connection", false)] {
        let plan = runner_plan(keep_alive, concurrency, Some(secs), None);
        let host_requests = host.handle().stats().requests;
        let ((ok, failed), wall, cpu) = measured(|| run_load(&clients, &plan, addr));
        let served = host.handle().stats().requests - host_requests;
        println!();
        println!(
            "runner (kmsload::load::run), {name}: closed model, {concurrency} clients, V6, fleet of 100,000"
        );
        let (host_us, runner_us) = print_activations(ok, failed, served, wall, cpu, cores);
        runner.push((name, ok as f64 / wall, host_us, runner_us));
    }
    drop(clients);
    let allocs = runner_allocations(addr, concurrency);

    // 6. A run of a 1,000,000-client fleet, as its own process.
    let fleet_rss = fleet_peak_rss(addr, secs);

    let report = host.shutdown();
    println!();
    println!("{}", report.stats);

    // 7. The floor, on a fresh echo server named like the host so its CPU counts as "host".
    let echo = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(host_threads.max(1))
        .thread_name("kmsload-host-echo")
        .enable_all()
        .build()
        .expect("echo runtime");
    let echo_addr = echo.block_on(start_echo());
    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(client_threads.max(1))
        .thread_name("bench-client")
        .enable_all()
        .build()
        .expect("client runtime");
    // (server µs, client µs) per exchange: kept-alive, new connection.
    let mut floor = Vec::new();
    for (name, keep_alive) in [("kept-alive", true), ("new connection", false)] {
        let (exchanges, wall, cpu) = measured(|| {
            clients.block_on(echo_load(
                echo_addr,
                keep_alive,
                concurrency,
                Duration::from_secs(secs),
            ))
        });
        let per = |ticks: u64| ticks as f64 * 1e6 / Cpu::HZ / exchanges.max(1) as f64;
        println!();
        println!(
            "floor, {name}: plain TCP echo of {ECHO_LEN} bytes each way, {concurrency} clients"
        );
        println!(
            "  {exchanges} exchanges in {wall:.2} s = {:.0}/s; CPU per exchange: server {:.1} µs, clients {:.1} µs, other {:.1} µs",
            exchanges as f64 / wall,
            per(cpu.host),
            per(cpu.client),
            per(cpu.other),
        );
        table.info(
            format!("floor {name}: echo exchanges/s"),
            exchanges as f64 / wall,
            "/s",
        );
        table.info(
            format!("floor {name}: echo server CPU per exchange"),
            per(cpu.host),
            "µs",
        );
        table.info(
            format!("floor {name}: echo client CPU per exchange"),
            per(cpu.client),
            "µs",
        );
        floor.push((per(cpu.host), per(cpu.client)));
    }
    echo.shutdown_background();
    drop(clients);

    // The ratios, all from figures of this run.
    let (echo_server_ka, echo_client_ka) = floor[0];
    let (echo_server_new, echo_client_new) = floor[1];
    for (name, rate, host_us, client_us) in &bench_loop {
        table.info(
            format!("host, bench loop {name}: activations/s"),
            *rate,
            "/s",
        );
        table.info(
            format!("host, bench loop {name}: bench client CPU per activation"),
            *client_us,
            "µs",
        );
        let (floor_is, floor, target) = if *name == "kept-alive" {
            ("echo server", echo_server_ka, None)
        } else {
            ("echo server, new connection", echo_server_new, None)
        };
        table.ratio(
            format!("host, bench loop {name}: host CPU per activation"),
            *host_us,
            "µs",
            floor_is,
            floor,
            target,
        );
    }
    for (name, rate, host_us, runner_us) in &runner {
        table.info(format!("runner {name}: activations/s"), *rate, "/s");
        if *name == "kept-alive" {
            table.ratio(
                "runner kept-alive: runner CPU per activation",
                *runner_us,
                "µs",
                "echo client + V6 client crypto",
                echo_client_ka + client_crypto,
                Some(1.3),
            );
            table.ratio(
                "runner kept-alive: host CPU per activation",
                *host_us,
                "µs",
                "echo server + V6 host crypto",
                echo_server_ka + host_crypto,
                Some(1.3),
            );
            table.ratio(
                "runner kept-alive: host CPU per activation (vs bare echo)",
                *host_us,
                "µs",
                "echo server",
                echo_server_ka,
                None,
            );
        } else {
            table.ratio(
                "runner new connection: runner CPU per activation",
                *runner_us,
                "µs",
                "new-conn echo client + 2 echo exchanges + crypto",
                echo_client_new + 2.0 * echo_client_ka + client_crypto,
                Some(1.3),
            );
            table.ratio(
                "runner new connection: host CPU per activation",
                *host_us,
                "µs",
                "new-conn echo server + 2 echo exchanges + crypto",
                echo_server_new + 2.0 * echo_server_ka + host_crypto,
                None,
            );
        }
    }
    allocation_rows(&mut table, &allocs);
    fleet_row(&mut table, fleet_rss);
    table.print();
    table.write_json(&target_dir().join("bench-host.json"), setup);
}

/// The runner's heap allocations per activation, kept alive and with a new connection.
fn runner_allocations(addr: SocketAddr, concurrency: u64) -> Vec<(&'static str, f64)> {
    [("kept-alive", true), ("new connection", false)]
        .into_iter()
        .map(|(name, keep_alive)| {
            let per = allocations_per_activation(addr, keep_alive, concurrency);
            println!("runner allocations per activation, {name}: {per:.2}");
            (name, per)
        })
        .collect()
}

fn allocation_rows(table: &mut Table, allocs: &[(&str, f64)]) {
    for (name, per) in allocs {
        let figure = format!("runner {name}: heap allocations per activation");
        if *name == "kept-alive" {
            table.limit(figure, *per, "allocs", 2.0);
        } else {
            table.info(figure, *per, "allocs");
        }
    }
}

fn fleet_row(table: &mut Table, fleet_rss: Option<u64>) {
    if let Some(kib) = fleet_rss {
        table.limit(
            "1,000,000-client fleet run: peak RSS",
            kib as f64 / 1024.0,
            "MiB",
            64.0,
        );
    }
}

/// Prints an activation phase's figures; returns (host, client) CPU µs per activation.
fn print_activations(
    ok: u64,
    failed: u64,
    served: u64,
    wall: f64,
    cpu: Cpu,
    cores: usize,
) -> (f64, f64) {
    let rate = ok as f64 / wall;
    println!(
        "  {ok} activations in {wall:.2} s = {rate:.0} activations/s  ({failed} failed, host saw {served} requests)"
    );
    let per = |ticks: u64| ticks as f64 * 1e6 / Cpu::HZ / ok.max(1) as f64;
    println!(
        "  CPU per activation: host {:.1} µs, clients {:.1} µs, other {:.1} µs (CPU busy {:.0}% of {cores} cores)",
        per(cpu.host),
        per(cpu.client),
        per(cpu.other),
        (cpu.host + cpu.client + cpu.other) as f64 / Cpu::HZ / wall / cores as f64 * 100.0
    );
    if cpu.host > 0 {
        println!(
            "  host capacity at 100% of one core: {:.0} activations/s",
            ok as f64 * Cpu::HZ / cpu.host as f64
        );
    }
    (per(cpu.host), per(cpu.client))
}

/// The runner's scenario: a closed loop of `clients` on kept-alive connections or a new one
/// per activation (from 64 127.0.2.x sources, as the echo floor), V6, bounded by `secs`
/// and/or `attempts`.
fn runner_plan(keep_alive: bool, clients: u64, secs: Option<u64>, attempts: Option<u64>) -> Plan {
    runner_plan_with(keep_alive, clients, secs, attempts, 100_000, "0s")
}

fn runner_plan_with(
    keep_alive: bool,
    clients: u64,
    secs: Option<u64>,
    attempts: Option<u64>,
    fleet: u64,
    think: &str,
) -> Plan {
    let connection = if keep_alive {
        "connection = \"keep-alive\"".to_owned()
    } else {
        let sources: Vec<String> = (1..=64).map(|i| format!("\"127.0.2.{i}\"")).collect();
        format!(
            "connection = \"new\"\nsource_addresses = [{}]",
            sources.join(", ")
        )
    };
    let mut bounds = String::new();
    if let Some(s) = secs {
        bounds += &format!("duration = \"{s}s\"\n");
    }
    if let Some(n) = attempts {
        bounds += &format!("attempts = {n}\n");
    }
    let text = format!(
        "name = \"bench-runner\"\nseed = 15\n\
         [fleet]\nsize = {fleet}\nproducts = [{{ product = \"Windows 10/11 Enterprise\" }}]\n\
         [load]\nmodel = \"closed\"\nclients = {clients}\nthink_time = \"{think}\"\n{bounds}{connection}\n"
    );
    scenario::parse_str(
        &text,
        Path::new("bench-runner.toml"),
        &scenario::Overrides::default(),
        &scenario::resolve_exact,
    )
    .unwrap_or_else(|e| panic!("bench scenario: {e}\n{text}"))
}

/// Runs `plan` with `kmsload::load::run` against `addr` on `rt`, from a worker thread as
/// `kmsload run` does; returns (activated, not activated or failed).
fn run_load(rt: &tokio::runtime::Runtime, plan: &Plan, addr: SocketAddr) -> (u64, u64) {
    let plan = plan.clone();
    let result = rt.block_on(async move {
        tokio::spawn(async move {
            let (_stop_tx, stop) = tokio::sync::watch::channel(false);
            load::run(
                &plan.job(),
                Endpoint::Fixed(addr),
                None,
                Arc::new(Live::default()),
                stop,
                None,
            )
            .await
        })
        .await
        .expect("runner task")
        .expect("runner starts")
    });
    let ok = result.recorder.outcome_count(Outcome::Activated);
    let attempts = result.recorder.attempts();
    if ok < attempts {
        eprintln!(
            "runner: {} of {attempts} attempts not activated",
            attempts - ok
        );
    }
    (ok, attempts - ok)
}

/// Heap allocations per activation of the runner: two runs of different length on a
/// current-thread runtime (every allocation of the runner on this thread), counted with
/// `allocation_counter`; the difference divided by the difference in activations leaves out
/// what a run allocates once (fleet, recorder, histograms).
fn allocations_per_activation(addr: SocketAddr, keep_alive: bool, clients: u64) -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let count = |attempts: u64| {
        let plan = runner_plan(keep_alive, clients, None, Some(attempts));
        let mut ok = 0;
        let info = allocation_counter::measure(|| {
            let result = rt.block_on(async {
                let (_stop_tx, stop) = tokio::sync::watch::channel(false);
                load::run(
                    &plan.job(),
                    Endpoint::Fixed(addr),
                    None,
                    Arc::new(Live::default()),
                    stop,
                    None,
                )
                .await
                .expect("runner starts")
            });
            ok = result.recorder.outcome_count(Outcome::Activated);
        });
        (info.count_total, ok)
    };
    let (short, short_ok) = count(2_000);
    let (long, long_ok) = count(12_000);
    long.saturating_sub(short) as f64 / long_ok.saturating_sub(short_ok).max(1) as f64
}

/// V6 crypto per activation in µs of this thread's CPU: (client, host). The client encodes and
/// encrypts a request and decrypts and verifies a response; the host decrypts and decodes the
/// request and encodes and encrypts the response. Each loop runs for `each`.
fn crypto_costs(each: Duration) -> (f64, f64) {
    let product = lookup::find("Windows 10/11 Enterprise").expect("catalog product");
    let base = request(product, 1);
    let iv = [0xB1; 16];
    let mut req = Vec::with_capacity(300);
    encode_request_into(&base, iv, &mut req).expect("request encodes");
    let host = HostRequest::decode(&req).expect("request decodes");
    let response_base = ResponseBase {
        version: base.version,
        epid: "03612-00206-568-579566-03-1063-14393.0000-2062020".into(),
        client_machine_id: base.client_machine_id,
        request_time: base.request_time,
        current_count: 50,
        activation_interval: 120,
        renewal_interval: 10080,
    };
    let mut resp = Vec::with_capacity(300);
    host.encode_response_into(
        &response_base,
        HwId::VLMCSD_DEFAULT,
        [0xDE; 16],
        [0x42; 16],
        &mut resp,
    );

    let timed = |mut one: Box<dyn FnMut() + '_>| {
        let before = thread_cpu_ticks();
        let started = Instant::now();
        let mut n = 0u64;
        while started.elapsed() < each {
            for _ in 0..100 {
                one();
            }
            n += 100;
        }
        let ticks = thread_cpu_ticks().saturating_sub(before);
        // A tick is 10 ms: below a few ticks, the wall time is the better measure.
        let secs = if ticks >= 10 {
            ticks as f64 / Cpu::HZ
        } else {
            started.elapsed().as_secs_f64()
        };
        secs * 1e6 / n as f64
    };
    let mut buf = Vec::with_capacity(300);
    let client = timed(Box::new(|| {
        buf.clear();
        let pending = encode_request_into(black_box(&base), iv, &mut buf).expect("encodes");
        black_box(pending.decode_response(black_box(&resp)).expect("verifies"));
    }));
    let mut out = Vec::with_capacity(300);
    let host_cost = timed(Box::new(|| {
        let got = HostRequest::decode(black_box(&req)).expect("decodes");
        out.clear();
        got.encode_response_into(
            black_box(&response_base),
            HwId::VLMCSD_DEFAULT,
            [0xDE; 16],
            [0x42; 16],
            &mut out,
        );
        black_box(&out);
    }));
    (client, host_cost)
}

/// CPU ticks of the calling thread.
fn thread_cpu_ticks() -> u64 {
    std::fs::read_to_string("/proc/thread-self/stat")
        .ok()
        .and_then(|s| procfs::parse_cpu_ticks(&s))
        .unwrap_or(0)
}

/// Runs `phase` and returns its result, its wall time in seconds and the CPU it used.
fn measured<T>(phase: impl FnOnce() -> T) -> (T, f64, Cpu) {
    let before = CpuReading::now();
    let started = Instant::now();
    let out = phase();
    let wall = started.elapsed().as_secs_f64();
    (out, wall, CpuReading::now().since(&before))
}

/// Bytes each way in the floor measurement: a V6 request PDU is 292 bytes, its response 300.
const ECHO_LEN: usize = 300;

/// A TCP echo server of [`ECHO_LEN`]-byte messages on the current runtime.
async fn start_echo() -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("echo listens");
    let addr = listener.local_addr().expect("echo address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = [0u8; ECHO_LEN];
                // Ends when the client closes (read error or EOF).
                while stream.read_exact(&mut buf).await.is_ok() {
                    if stream.write_all(&buf).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// `concurrency` tasks exchanging echo messages with `addr` for `duration`, on one kept
/// connection each or on a new one per exchange (from the same 127.0.0.x sources as
/// [`load`]). Returns the number of completed exchanges.
async fn echo_load(
    addr: SocketAddr,
    keep_alive: bool,
    concurrency: u64,
    duration: Duration,
) -> u64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..concurrency {
        let (done, stop) = (done.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let source =
                SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 2, (i % 64) as u8 + 1)), 0);
            let connect = || async move {
                let socket = tokio::net::TcpSocket::new_v4()?;
                socket.bind(source)?;
                let stream = socket.connect(addr).await?;
                stream.set_nodelay(true)?;
                std::io::Result::Ok(stream)
            };
            let mut buf = [0x5Au8; ECHO_LEN];
            let mut stream = None;
            // Bounded by the stop flag, set after `duration`.
            while !stop.load(Ordering::Relaxed) {
                if stream.is_none() || !keep_alive {
                    stream = connect().await.ok();
                }
                let Some(s) = stream.as_mut() else { continue };
                if s.write_all(&buf).await.is_err() || s.read_exact(&mut buf).await.is_err() {
                    stream = None;
                    continue;
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    done.load(Ordering::Relaxed)
}

/// This bench's own binary as a child in `role` (see `KMSLOAD_BENCH_ROLE`) against `addr`
/// with `n` connections, its stdout piped for its report.
fn spawn_role(role: &str, addr: SocketAddr, n: u64, stdin: Stdio) -> std::process::Child {
    let exe = std::env::current_exe().expect("own path");
    Command::new(exe)
        .env("KMSLOAD_BENCH_ROLE", role)
        .env("KMSLOAD_BENCH_ADDR", addr.to_string())
        .env("KMSLOAD_BENCH_IDLE", n.to_string())
        .stdin(stdin)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{role} child starts: {e}"))
}

/// Opens `n` connections from a child process, binds each, and reports the host's RSS
/// increase per connection.
fn idle_memory(host: &kmsload::host::BackgroundHost, addr: SocketAddr, n: u64) -> Option<f64> {
    if n == 0 {
        return None;
    }
    // Unlimited or unknown: assume the usual default.
    let n = within_file_limit(n);
    // Let the runtime settle, then measure.
    std::thread::sleep(Duration::from_millis(200));
    let before = rss_kib();
    let mut child = spawn_role("idle-clients", addr, n, Stdio::piped());
    let started = Instant::now();
    let mut line = String::new();
    let mut out = BufReader::new(child.stdout.take().expect("piped"));
    out.read_line(&mut line).expect("child reports");
    let bound: u64 = line
        .trim()
        .strip_prefix("bound ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("idle-clients child said {line:?}"));
    std::thread::sleep(Duration::from_millis(500));
    let open = host.handle().stats().open;
    let after = rss_kib();
    let per_conn = (after.saturating_sub(before)) as f64 * 1024.0 / bound.max(1) as f64;
    println!();
    println!(
        "idle: {bound} connections bound in {:.2} s, {open} open on the host",
        started.elapsed().as_secs_f64()
    );
    println!(
        "  host RSS {before} KiB → {after} KiB: +{} KiB = {per_conn:.0} bytes per idle connection (userspace; kernel socket buffers not included)",
        after.saturating_sub(before)
    );
    drop(child.stdin.take()); // the child exits when its stdin closes
    let _ = child.wait();
    // Wait until the host has seen them close.
    let deadline = Instant::now() + Duration::from_secs(30);
    while host.handle().stats().open > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(per_conn)
}

/// `n`, or fewer when the open-files limit would not hold `n` sockets and some spare.
fn within_file_limit(n: u64) -> u64 {
    // Unlimited or unknown: assume the usual default.
    let limit = procfs::open_file_limit().unwrap_or(1024);
    if limit < n + 200 {
        let reduced = limit.saturating_sub(200);
        println!(
            "note: open-files limit {limit}; measuring {reduced} connections instead of {n} (raise it with `ulimit -n`)"
        );
        reduced
    } else {
        n
    }
}

/// Runs the runner in a child process with `n` closed-loop clients on kept-alive connections
/// that think 2 s between activations, so `n` connections are open at once; returns the
/// RSS increase per open connection of the child (the runner) and of this process (the host).
fn runner_connections(
    host: &kmsload::host::BackgroundHost,
    addr: SocketAddr,
    n: u64,
) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let n = within_file_limit(n);
    std::thread::sleep(Duration::from_millis(200));
    let before = rss_kib();
    let mut child = spawn_role("runner-conns", addr, n, Stdio::inherit());
    let mut out = BufReader::new(child.stdout.take().expect("piped"));
    // While the child runs: the most connections open on the host, and this process's
    // largest RSS.
    let watching = AtomicBool::new(true);
    let mut line = String::new();
    let (open, host_peak) = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            let (mut open, mut rss) = (0, 0);
            // Bounded by the child's run, which is bounded by its scenario's duration.
            while watching.load(Ordering::Relaxed) {
                open = host.handle().stats().open.max(open);
                rss = rss_kib().max(rss);
                std::thread::sleep(Duration::from_millis(20));
            }
            (open, rss)
        });
        out.read_line(&mut line).expect("child reports");
        let _ = child.wait();
        watching.store(false, Ordering::Relaxed);
        watcher.join().expect("watcher")
    });
    let fields: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let [child_before, child_peak, activated] = fields[..] else {
        println!("runner-conns child said {line:?}");
        return None;
    };
    let runner = child_peak.saturating_sub(child_before) as f64 * 1024.0 / open.max(1) as f64;
    let host_per_conn = host_peak.saturating_sub(before) as f64 * 1024.0 / open.max(1) as f64;
    println!();
    println!(
        "runner holding connections: {n} clients, {open} connections open at most on the host, {activated} activations"
    );
    println!(
        "  runner RSS {child_before} KiB → peak {child_peak} KiB = {runner:.0} bytes per connection; host RSS {before} KiB → peak {host_peak} KiB = {host_per_conn:.0} bytes per connection"
    );
    // Wait until the host has seen them close.
    let deadline = Instant::now() + Duration::from_secs(30);
    while host.handle().stats().open > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    Some((runner, host_per_conn))
}

/// Child role: `kmsload::load::run` with N clients that hold their kept-alive connections
/// (2 s of think time between activations, 3 s run), reporting "RSS-before peak-RSS
/// activated" (KiB).
fn runner_connections_child() {
    let addr: SocketAddr = std::env::var("KMSLOAD_BENCH_ADDR")
        .expect("address")
        .parse()
        .expect("socket address");
    let n = env_num("KMSLOAD_BENCH_IDLE", 10_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("bench-client")
        .enable_all()
        .build()
        .expect("runtime");
    let plan = runner_plan_with(true, n, Some(3), None, 100_000, "2s");
    std::thread::sleep(Duration::from_millis(200));
    let before = rss_kib();
    let watching = Arc::new(AtomicBool::new(true));
    let watcher = {
        let watching = watching.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            // Bounded by the run below.
            while watching.load(Ordering::Relaxed) {
                peak = rss_kib().max(peak);
                std::thread::sleep(Duration::from_millis(20));
            }
            peak
        })
    };
    let (ok, _) = run_load(&rt, &plan, addr);
    watching.store(false, Ordering::Relaxed);
    let peak = watcher.join().expect("watcher");
    println!("{before} {peak} {ok}");
    let _ = std::io::stdout().flush();
}

/// Peak RSS in KiB of `kmsload run` (the binary) of a closed-loop scenario of a 1,000,000-client
/// fleet against `addr` for `secs`, from `/usr/bin/time -f %M`; `None` when that is missing.
fn fleet_peak_rss(addr: SocketAddr, secs: u64) -> Option<u64> {
    let time = Path::new("/usr/bin/time");
    if !time.exists() {
        println!(
            "\n1,000,000-client fleet: /usr/bin/time is missing (apt-get install time); not measured"
        );
        return None;
    }
    let dir = target_dir().join("bench-fleet-1m");
    let _ = std::fs::create_dir_all(&dir);
    let scenario = dir.join("fleet-1m.toml");
    let text = format!(
        "name = \"bench-fleet-1m\"\nseed = 15\n\
         [fleet]\nsize = 1000000\nproducts = [\n  \
         {{ product = \"Windows 10/11 Enterprise\", weight = 4 }},\n  \
         {{ product = \"Office LTSC Professional Plus 2021\", weight = 1 }},\n]\n\
         [load]\nmodel = \"closed\"\nclients = 64\nduration = \"{secs}s\"\nconnection = \"keep-alive\"\n"
    );
    std::fs::write(&scenario, text).expect("scenario written");
    let output = Command::new(time)
        .args(["-f", "peak-rss-kib %M"])
        .arg(env!("CARGO_BIN_EXE_kmsload"))
        .arg("run")
        .arg(&scenario)
        .args(["--quiet", "--no-html", "--target"])
        .arg(addr.to_string())
        .arg("--out")
        .arg(dir.join("results"))
        .stdout(Stdio::null())
        .output()
        .expect("kmsload run starts");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let kib = stderr
        .lines()
        .find_map(|l| l.strip_prefix("peak-rss-kib "))
        .and_then(|v| v.trim().parse().ok());
    println!();
    match kib {
        Some(k) => println!(
            "1,000,000-client fleet: `kmsload run` for {secs} s ({}), peak RSS {k} KiB",
            output.status
        ),
        None => println!("1,000,000-client fleet: no peak RSS in {stderr:?}"),
    }
    kib
}

/// Child role: open N connections, bind each (bind → bind_ack), say `bound N`, idle until
/// stdin closes.
fn idle_clients() {
    let addr: SocketAddr = std::env::var("KMSLOAD_BENCH_ADDR")
        .expect("address")
        .parse()
        .expect("socket address");
    let n = env_num("KMSLOAD_BENCH_IDLE", 10_000);
    let bind = ClientSession::new(ClientRpcConfig::default())
        .bind()
        .expect("bind PDU");
    let mut streams = Vec::with_capacity(n as usize);
    let mut ack = [0u8; 1024];
    for i in 0..n {
        let socket = TcpStream::connect_timeout(&addr, Duration::from_secs(5));
        let mut s = match socket {
            Ok(s) => s,
            Err(e) => {
                eprintln!("idle client {i}: connect failed: {e}");
                break;
            }
        };
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        s.write_all(&bind).expect("bind sent");
        // A bind_ack is one PDU well under 1 KiB; read its header, then the rest.
        let mut got = 0;
        while got < 10 || got < usize::from(u16::from_le_bytes([ack[8], ack[9]])) {
            match s.read(&mut ack[got..]) {
                Ok(0) | Err(_) => panic!("idle client {i}: no bind_ack"),
                Ok(k) => got += k,
            }
        }
        streams.push(s);
    }
    println!("bound {}", streams.len());
    let _ = std::io::stdout().flush();
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    drop(streams);
}

/// Runs `concurrency` clients for `duration`; returns (activated, other).
async fn load_loop(
    addr: SocketAddr,
    keep_alive: bool,
    concurrency: u64,
    duration: Duration,
) -> (u64, u64) {
    let product = lookup::find("Windows 10/11 Enterprise").expect("catalog product");
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let next_cmid = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for i in 0..concurrency {
        let (ok, failed, stop, next_cmid) =
            (ok.clone(), failed.clone(), stop.clone(), next_cmid.clone());
        tasks.push(tokio::spawn(async move {
            let connector = TcpConnector {
                // 64 source addresses × 28k ephemeral ports: no exhaustion from TIME_WAIT.
                source: Some(IpAddr::V4(Ipv4Addr::new(127, 0, 2, (i % 64) as u8 + 1))),
            };
            let options = ClientOptions {
                keep_alive,
                ..ClientOptions::default()
            };
            let mut client = Client::with_connector(connector, addr, options);
            let mut iv = [0u8; 16];
            // Bounded by the stop flag, set after `duration`.
            while !stop.load(Ordering::Relaxed) {
                let n = next_cmid.fetch_add(1, Ordering::Relaxed);
                let base = request(product, n);
                iv[..8].copy_from_slice(&n.to_le_bytes());
                let attempt = client.activate(&base, iv).await;
                if attempt.verdict().outcome == Outcome::Activated {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    if failed.fetch_add(1, Ordering::Relaxed) < 3 {
                        eprintln!("attempt failed: {:?}", attempt.result);
                    }
                }
            }
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed))
}

/// A V6 request of `product` with the `n`th bench CMID.
fn request(product: &kmsload::catalog::Product, n: u64) -> RequestBase {
    kmsload::client::volume_request(
        product,
        6,
        Uuid::from_u64_pair(0xBE4C_0000_0000_4000, n),
        now(),
        "bench.example.test",
    )
}

fn now() -> FileTime {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    FileTime::from_unix(d.as_secs() as i64, d.subsec_nanos())
}

/// CPU ticks (utime + stime) of this process's threads, by runtime.
#[derive(Debug, Clone, Copy)]
struct Cpu {
    host: u64,
    client: u64,
    other: u64,
}

/// Per-thread CPU ticks, so a difference counts only the threads that ran between two
/// readings (a runtime shut down in between must not make the sum go backwards).
struct CpuReading(Vec<(u64, &'static str, u64)>);

impl Cpu {
    /// Clock ticks per second of the readings.
    const HZ: f64 = procfs::TICKS_PER_SECOND;
}

impl CpuReading {
    /// The CPU ticks of every thread of this process now.
    fn now() -> Self {
        let mut threads = Vec::new();
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return Self(threads);
        };
        for task in tasks.flatten() {
            let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
                continue;
            };
            // "tid (comm) state ...": comm may contain spaces and parentheses.
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            let (Ok(tid), Some(ticks)) = (
                stat[..open].trim().parse::<u64>(),
                procfs::parse_cpu_ticks(&stat),
            ) else {
                continue;
            };
            // Thread names are cut to 15 bytes: "kmsload-host-echo" reads "kmsload-host-ec".
            let comm = &stat[open + 1..close];
            let class = if comm.starts_with("kmsload-host") {
                "host"
            } else if comm.starts_with("bench-client") {
                "client"
            } else {
                "other"
            };
            threads.push((tid, class, ticks));
        }
        Self(threads)
    }

    /// Ticks each class of thread used since `before`.
    fn since(&self, before: &Self) -> Cpu {
        let mut cpu = Cpu {
            host: 0,
            client: 0,
            other: 0,
        };
        for &(tid, class, ticks) in &self.0 {
            let earlier = before.0.iter().find(|t| t.0 == tid).map_or(0, |t| t.2);
            let used = ticks.saturating_sub(earlier);
            match class {
                "host" => cpu.host += used,
                "client" => cpu.client += used,
                _ => cpu.other += used,
            }
        }
        cpu
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
