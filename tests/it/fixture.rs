//! A synthetic results directory for tests of the report: a 42-second ramp recorded through
//! the real [`Recorder`], [`EventWriter`] and [`super::write_results`], so the files have
//! exactly the shape a run writes. Deterministic (no clock, no randomness beyond a fixed
//! mixing function).
//!
//! ```text
//! offered   20/s (10 s) → 50/s → 100/s → 200/s (1 s ramps, 9 s holds) → 2 s ramp-down
//! latency   total p99 ≈ 4 ms, 9 ms, 30 ms, 150 ms per step (gate: total p99 < 50ms)
//! host      starts empty: Windows (N = 25) answers 0xC004F038 with the count until 25
//!           distinct clients, then activates; Office 2021 (N = 5) likewise; counts cap at 2N
//! faults    15 s ..< 20 s: 30 % of attempts reset (0x80072746, faulted)
//! overload  at 200/s, 1 in 150 attempts times out in the request (0xC004F074)
//! ```
//!
//! The knee is therefore 100/s against the 50 ms gate. It exists for the report tests
//! (`report_html`) and is not part of the tool: it lives here, built only with the tests, and
//! uses nothing but the library's public API.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use kmsload::catalog::Application;
use kmsload::catalog::hresult::code;
use kmsload::catalog::lookup;
use kmsload::client::Outcome;
use kmsload::load::open_start;
use kmsload::record::{AttemptRecord, EventWriter, GeneratorStats, Latencies, Recorder, RunResult};
use kmsload::report::{TargetInfo, evaluate, write_results};
use kmsload::scenario::{self, LoadModel, Overrides};
use kmsload::sim::Fleet;

/// The fixture's scenario.
pub(crate) const SCENARIO: &str = r#"
name = "synthetic-ramp"
description = "synthetic ramp 20/s -> 200/s with a fault episode, for report tests"

[fleet]
size = 400
products = [
  { product = "Windows 10/11 Pro", weight = 3 },
  { product = "Office LTSC Professional Plus 2021", weight = 1 },
]

[load]
start_rate = 20
stages = [
  { duration = "10s", rate = 20 },
  { duration = "1s", rate = 50 },
  { duration = "9s", rate = 50 },
  { duration = "1s", rate = 100 },
  { duration = "9s", rate = 100 },
  { duration = "1s", rate = 200 },
  { duration = "9s", rate = 200 },
  { duration = "2s", rate = 0 },
]

[[faults]]
kind = "reset"
probability = 0.3
window = ["15s", "20s"]

[gates]
latency = [{ phase = "total", percentile = 99, below = "50ms" }]
max_error_rate = 0.2
"#;

/// Run start of the fixture: 2026-11-22T01:26:21Z.
pub(crate) const STARTED_UNIX: u64 = 1_795_310_781;

/// The ePID the synthetic host shows.
pub(crate) const EPID: &str = "03612-00206-568-579566-03-1033-17763.0000-2062020";

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform draw in [0, 1) from `(k, salt)`.
fn unit(k: u64, salt: u64) -> f64 {
    (mix(k ^ salt.wrapping_mul(0xA24B_AED4_963E_E407)) >> 11) as f64 / (1u64 << 53) as f64
}

/// Total latency, µs, of attempt `k` offered at `rate`/s: a base that bends with the rate,
/// a long tail for the top 2 %.
fn total_us(k: u64, rate: f64) -> u64 {
    let base = 1500.0 + 8.0 * rate + 0.004 * rate.powi(3);
    let u = unit(k, 1);
    let tail = if u > 0.98 {
        3.0 + 20.0 * (u - 0.98)
    } else {
        1.0 + 0.6 * u
    };
    (base * tail) as u64
}

/// Writes the fixture's results (summary.json, events.csv, histograms, report.md) into
/// `dir`, which is created. Returns the directory.
///
/// # Errors
/// The first I/O error.
pub(crate) fn write_ramp(dir: &Path) -> io::Result<PathBuf> {
    fs::create_dir_all(dir)?;
    let resolve = |s: &str| lookup::find(s).map_err(|e| e.to_string());
    let plan = scenario::parse_str(
        SCENARIO,
        Path::new("synthetic-ramp.toml"),
        &Overrides::default(),
        &resolve,
    )
    .map_err(|e| io::Error::other(e.to_string()))?;
    let fleet =
        Fleet::new(plan.seed, plan.fleet_spec()).map_err(|e| io::Error::other(e.to_string()))?;
    let LoadModel::Open(schedule) = &plan.load.model else {
        return Err(io::Error::other("the fixture scenario is an open model"));
    };

    let mut events = EventWriter::new(BufWriter::new(fs::File::create(dir.join("events.csv"))?))
        .map_err(io::Error::other)?;
    let mut recorder = Recorder::new();
    let mut distinct: HashMap<Application, HashSet<u64>> = HashMap::new();
    let mut in_flight: HashMap<u64, f64> = HashMap::new();
    let mut k = 0u64;
    let mut last_end = 0u64;
    // Bounded: the schedule ends after 42 s (~4000 attempts).
    while let Some(start) = open_start(schedule, k, None) {
        let start_us = start.as_micros() as u64;
        let rate = schedule.rate_at(start);
        let client = fleet.client(k % fleet.clients());
        let pool = Application::of(client.product);
        let faulted = (15.0..20.0).contains(&start.as_secs_f64()) && unit(k, 2) < 0.3;
        let timed_out = !faulted && rate > 150.0 && unit(k, 3) < 1.0 / 150.0;
        let mut rec;
        if faulted {
            rec = AttemptRecord::new(
                k,
                start_us,
                0,
                &client,
                Outcome::Failed,
                code::WSAECONNRESET,
            );
            rec.cause = Some("reset in request");
            rec.fault = Some("reset");
            let t = 800 + (unit(k, 4) * 400.0) as u64;
            rec.latency = Latencies {
                connect_us: Some(t / 4),
                bind_us: Some(t / 4),
                request_us: None,
                total_us: Some(t),
            };
        } else if timed_out {
            rec = AttemptRecord::new(
                k,
                start_us,
                0,
                &client,
                Outcome::Failed,
                code::SL_E_VL_BINDING_SERVICE_UNAVAILABLE,
            );
            rec.cause = Some("timeout in request");
            rec.latency = Latencies {
                connect_us: Some(300),
                bind_us: Some(600),
                request_us: Some(2_000_000),
                total_us: Some(2_001_000),
            };
        } else {
            let seen = distinct.entry(pool).or_default();
            seen.insert(client.index);
            let n = client.product.n_policy;
            let count = (seen.len() as u32).min(2 * n);
            let activated = count >= n;
            rec = AttemptRecord::new(
                k,
                start_us,
                0,
                &client,
                if activated {
                    Outcome::Activated
                } else {
                    Outcome::NotActivated
                },
                if activated {
                    code::S_OK
                } else {
                    code::SL_E_VL_NOT_ENOUGH_COUNT
                },
            );
            if !activated {
                rec.cause = Some("count below N");
            }
            let t = total_us(k, rate);
            rec.latency = Latencies {
                connect_us: Some(t / 10),
                bind_us: Some(t / 5),
                request_us: Some(t / 2),
                total_us: Some(t),
            };
            rec.reported_count = Some(count);
            rec.epid = Some(EPID.to_owned());
            rec.hwid = Some([0x3A, 0x1C, 0x04, 0x96, 0x00, 0xB6, 0x00, 0x76]);
        }
        let end = start_us + rec.latency.total_us.unwrap_or(0);
        last_end = last_end.max(end);
        // Little's law: attempts in flight ≈ rate × time in system.
        *in_flight.entry(start_us / 1_000_000).or_default() +=
            rec.latency.total_us.unwrap_or(0) as f64 / 1e6;
        recorder.record(&rec, end / 1_000_000);
        events.write(&rec).map_err(io::Error::other)?;
        k += 1;
    }
    events.into_inner()?;
    for (s, n) in in_flight {
        recorder.sample_in_flight(s, n.ceil() as u64);
    }
    let elapsed = Duration::from_micros(last_end);
    let run = RunResult {
        rebuilt: None,
        late_start_us: None,
        generator: GeneratorStats::default(),
        recorder,
        started: SystemTime::UNIX_EPOCH + Duration::from_secs(STARTED_UNIX),
        elapsed,
        complete: true,
        aborted: None,
        dispatched: k,
        not_started: 0,
        abandoned: 0,
        offered_rate: Some(k as f64 / 42.0),
        achieved_rate: k as f64 / elapsed.as_secs_f64().max(1e-3),
        events_error: None,
        by_host: Vec::new(),
        merge: None,
    };
    let gates = evaluate(&plan.gates, &run.recorder, run.achieved_rate);
    let target = TargetInfo {
        address: "127.0.0.1:1688".to_owned(),
        in_process: true,
    };
    write_results(dir, &plan, &target, &run, &gates)?;
    Ok(dir.to_path_buf())
}

mod tests {
    use super::*;

    #[test]
    fn fixture_writes_a_consistent_results_directory() {
        let dir = crate::util::temp_dir("fixture");
        write_ramp(&dir).unwrap();
        let s = kmsload::report::read::read_summary(&dir).unwrap();
        assert_eq!(s.scenario, "synthetic-ramp");
        assert_eq!(
            s.recorded.by_outcome.activated
                + s.recorded.by_outcome.not_activated
                + s.recorded.by_outcome.failed,
            s.recorded.attempts
        );
        assert_eq!(s.config.fault_windows_s, [[15.0, 20.0]]);
        assert!(
            s.recorded.threshold[&Application::Windows]
                .first_activation_after_clients
                .is_some()
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    /// `KMSLOAD_FIXTURE_DIR=/tmp/fx cargo test --test it write_fixture -- --ignored` leaves the
    /// fixture on disk for a look at the files.
    #[test]
    #[ignore = "writes to a directory named by KMSLOAD_FIXTURE_DIR"]
    fn write_fixture_to_a_named_dir() {
        let dir = std::env::var_os("KMSLOAD_FIXTURE_DIR").expect("KMSLOAD_FIXTURE_DIR is set");
        write_ramp(Path::new(&dir)).unwrap();
        let r = kmsload::report::read::read_dir(Path::new(&dir)).unwrap();
        kmsload::report::html::write(&r, None).unwrap();
    }
}
