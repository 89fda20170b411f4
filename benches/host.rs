//! Whole-host benchmark of the reference host (`kmsload::host::server`), a plain `main`:
//!
//! 1. **idle**: memory of 10,000 bound, idle connections. The client sockets live in a child
//!    process (this bench re-executed with `KMSLOAD_BENCH_ROLE=idle-clients`), so the RSS
//!    increase of this process is the host's alone, and neither process needs more than
//!    ~10,000 file descriptors (the hard limit on the reference machine is 20,000).
//! 2. **kept-alive**: C client tasks (64), each with its own `Client` on one kept connection,
//!    looping V6 activations with new CMIDs for a fixed time.
//! 3. **new connection**: the same with `keep_alive = false`: connect, bind, alter_context,
//!    request, close for every activation (client sockets spread over 127.0.0.x sources so
//!    TIME_WAIT does not exhaust the ephemeral ports).
//! 4. **floor**: the same two loads against a plain TCP echo of 300 bytes each way (the size
//!    of a V6 request and response), with no RPC, no KMS and no crypto: what one exchange
//!    costs this machine's kernel and tokio before kmsload does anything. Every figure above
//!    reads against it; a target below it cannot be met on this machine.
//!
//! Host and clients share the machine's cores: the host runs on its own runtime (threads named
//! `kmsload-host`), the clients on another (`bench-client`), and the CPU time of each is read
//! per thread from `/proc/self/task/*/stat`, so the host's CPU cost per activation is reported
//! apart from the load generator's.
//!
//! Run: `cargo bench --bench host` (release). Environment: `KMSLOAD_BENCH_SECS` (per phase,
//! default 5), `KMSLOAD_BENCH_CONCURRENCY` (64), `KMSLOAD_BENCH_IDLE` (10000),
//! `KMSLOAD_BENCH_HOST_THREADS` / `KMSLOAD_BENCH_CLIENT_THREADS` (1 / 1).
//! Linux only (reads `/proc`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kmsload::catalog::lookup;
use kmsload::client::{Client, ClientOptions, Outcome, TcpConnector};
use kmsload::host::server::{ServerOptions, start_background};
use kmsload::procfs;
use kmsload::wire::session::{ClientRpcConfig, ClientSession};
use kmsload::wire::{FileTime, RequestBase, Version};
use uuid::Uuid;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if std::env::var("KMSLOAD_BENCH_ROLE").as_deref() == Ok("idle-clients") {
        idle_clients();
        return;
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
    idle_memory(&host, addr, idle);

    // 2./3. Throughput.
    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(client_threads.max(1))
        .thread_name("bench-client")
        .enable_all()
        .build()
        .expect("client runtime");
    for (name, keep_alive) in [("kept-alive", true), ("new connection", false)] {
        let host_requests = host.handle().stats().requests;
        let ((ok, failed), wall, cpu) = measured(|| {
            clients.block_on(load(
                addr,
                keep_alive,
                concurrency,
                Duration::from_secs(secs),
            ))
        });
        let served = host.handle().stats().requests - host_requests;
        let rate = ok as f64 / wall;
        println!();
        println!("{name}: {concurrency} clients, V6, new CMID each");
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
    }
    let report = host.shutdown();
    println!();
    println!("{}", report.stats);

    // 4. The floor, on a fresh echo server named like the host so its CPU counts as "host".
    let echo = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(host_threads.max(1))
        .thread_name("kmsload-host-echo")
        .enable_all()
        .build()
        .expect("echo runtime");
    let echo_addr = echo.block_on(start_echo());
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
    }
    echo.shutdown_background();
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

/// Opens `n` connections from a child process, binds each, and reports the host's RSS
/// increase per connection.
fn idle_memory(host: &kmsload::host::BackgroundHost, addr: SocketAddr, n: u64) {
    if n == 0 {
        return;
    }
    // Unlimited or unknown: assume the usual default.
    let limit = procfs::open_file_limit().unwrap_or(1024);
    let n = if limit < n + 200 {
        let reduced = limit.saturating_sub(200);
        println!(
            "note: open-files limit {limit}; measuring {reduced} idle connections instead of {n} (raise it with `ulimit -n`)"
        );
        reduced
    } else {
        n
    };
    // Let the runtime settle, then measure.
    std::thread::sleep(Duration::from_millis(200));
    let before = rss_kib();
    let exe = std::env::current_exe().expect("own path");
    let mut child = Command::new(exe)
        .env("KMSLOAD_BENCH_ROLE", "idle-clients")
        .env("KMSLOAD_BENCH_ADDR", addr.to_string())
        .env("KMSLOAD_BENCH_IDLE", n.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("idle-clients child starts");
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
async fn load(
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
                let base = RequestBase {
                    version: Version::V6,
                    is_client_vm: 0,
                    license_status: 2,
                    binding_expiration: 43_200,
                    application_id: product.app_id,
                    sku_id: product.sku_id,
                    kms_counted_id: product.kms_id,
                    client_machine_id: Uuid::from_u64_pair(0xBE4C_0000_0000_4000, n),
                    required_client_count: product.n_policy,
                    request_time: now(),
                    previous_client_machine_id: Uuid::nil(),
                    machine_name: "bench.example.test".into(),
                };
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
