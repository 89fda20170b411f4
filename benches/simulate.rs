//! `kmsload simulate` at scale, a plain `main`: 100,000 clients for 365 virtual days on one
//! core (the engine is single-threaded), the issue-14 target being under 30 s and 256 MiB.
//!
//! 1. **simulate**: the whole run (fleet set-up, every attempt through `HostModel::handle`,
//!    the daily state scans); wall time, CPU time, attempts, attempts/s, and the process's
//!    peak resident memory (`VmHWM`) after it.
//! 2. **floor**: the same number of attempts sent straight to one `HostModel` in a loop
//!    (requests built from the same `sim::Fleet` identities, no queue, no calendar, no
//!    statistics): what the host model alone costs this machine. The engine's figure reads
//!    as a ratio to it.
//!
//! Run: `cargo bench --bench simulate` (release). `KMSLOAD_BENCH_CLIENTS` (100000) and
//! `KMSLOAD_BENCH_DAYS` (365) change the size. Linux only (reads `/proc`).

use std::path::Path;
use std::time::Instant;

use kmsload::host::{HostConfig, HostModel};
use kmsload::lifecycle::{LifeOverrides, parse_life, simulate};
use kmsload::procfs;
use kmsload::scenario::resolve_exact;
use kmsload::sim::{Fleet, FleetSpec, ProductWeight};
use kmsload::wire::{FileTime, RequestBase};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn vm_hwm_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let clients = env_num("KMSLOAD_BENCH_CLIENTS", 100_000);
    let days = env_num("KMSLOAD_BENCH_DAYS", 365);
    let office = clients * 8 / 10;
    let always = clients - office;
    let text = format!(
        r#"
        duration = "{days}d"
        [[hosts]]
        charged = true
        [[hosts]]
        charged = true
        down = [["100d", "121d"]]
        [[groups]]
        size = {office}
        products = [
          {{ product = "Windows 10/11 Enterprise", weight = 7 }},
          {{ product = "Windows 10/11 Pro", weight = 1 }},
          {{ product = "Office LTSC Professional Plus 2021", weight = 2 }},
        ]
        power = "office-hours"
        away = {{ share = 0.1, windows = [["150d", "180d"]] }}
        [[groups]]
        size = {always}
        products = [{{ product = "Windows Server 2022 Datacenter" }}, {{ product = "Windows 10/11 Enterprise" }}]
        power = "always"
        "#
    );
    let sc = parse_life(
        &text,
        Path::new("bench.toml"),
        &LifeOverrides::default(),
        &resolve_exact,
    )
    .expect("bench scenario is valid");
    let rss_before = vm_hwm_kib().unwrap_or(0);
    let cpu0 = procfs::process_cpu_s();
    let t0 = Instant::now();
    let o = simulate(&sc).expect("simulation runs");
    let wall = t0.elapsed().as_secs_f64();
    let cpu = procfs::process_cpu_s().zip(cpu0).map(|(a, b)| a - b);
    let hwm = vm_hwm_kib().unwrap_or(0);
    let attempts: u64 = o.totals.iter().sum();
    println!("simulate: {clients} clients x {days} days");
    println!(
        "  wall {wall:.2} s, cpu {} s, {attempts} attempts, {:.0} attempts/s",
        cpu.map_or("?".to_owned(), |c| format!("{c:.2}")),
        attempts as f64 / wall
    );
    println!(
        "  peak RSS (VmHWM) {:.1} MiB (before: {:.1} MiB); per-client state {} bytes ({:.1} B/client)",
        hwm as f64 / 1024.0,
        rss_before as f64 / 1024.0,
        o.state_bytes,
        o.state_bytes as f64 / clients as f64
    );

    // Floor: the same number of attempts through one host model, nothing else.
    let catalog = kmsload::catalog::products();
    let idx = |name: &str| catalog.iter().position(|p| p.name == name).unwrap();
    let fleet = Fleet::new(
        1,
        FleetSpec::new(
            clients,
            vec![
                ProductWeight::new(idx("Windows 10/11 Enterprise"), 8.0),
                ProductWeight::new(idx("Office LTSC Professional Plus 2021"), 2.0),
            ],
        ),
    )
    .unwrap();
    let start = FileTime::from_unix(sc.start_unix, 0);
    let mut host = HostModel::new(
        HostConfig {
            charged: true,
            ..HostConfig::default()
        },
        start,
    )
    .unwrap();
    let step = (days as i64 * 86_400) / attempts.max(1) as i64;
    let t1 = Instant::now();
    let mut ok = 0u64;
    for k in 0..attempts {
        let id = fleet.client(k % clients);
        let now = start.offset_secs(k as i64 * step.max(1));
        let req = RequestBase {
            version: id.protocol,
            is_client_vm: id.is_client_vm(),
            license_status: 1,
            binding_expiration: 43_200,
            application_id: id.product.app_id,
            sku_id: id.product.sku_id,
            kms_counted_id: id.product.kms_id,
            client_machine_id: id.cmid,
            required_client_count: id.product.n_policy,
            request_time: now,
            previous_client_machine_id: uuid::Uuid::nil(),
            machine_name: id.machine_name.as_str().to_owned(),
        };
        if host.handle(&req, now).hresult().is_none() {
            ok += 1;
        }
    }
    let floor = t1.elapsed().as_secs_f64();
    println!(
        "floor: {attempts} requests straight to HostModel::handle: {floor:.2} s ({ok} answered)"
    );
    println!("  simulate / floor = {:.2}", wall / floor.max(1e-9));
}
