//! `kmsload run` end to end: short scenarios against the in-process reference host, checking
//! the result files, the accounting invariant, the gates and the exit codes.

use std::fs;
use std::process::Command;

use crate::util::{KMSLOAD, assert_accounting, kmsload, run_text, show, temp_dir, write_scenario};

#[test]
fn smoke_scenario_activates_everything_and_writes_every_file() {
    let out = temp_dir("smoke");
    let o = kmsload(&[
        "run",
        "scenarios/smoke.toml",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    for f in [
        "summary.json",
        "events.csv",
        "histograms.hlog",
        "timeline.hlog",
        "report.md",
    ] {
        assert!(out.join(f).is_file(), "{f} written");
    }
    let s = assert_accounting(&out);
    assert_eq!(s["schema_version"], 1);
    assert_eq!(s["complete"], true);
    assert_eq!(s["attempts"], 300);
    assert_eq!(s["by_outcome"]["activated"], 300);
    assert_eq!(s["gates_passed"], true);
    assert!(
        s["gates"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["pass"] == true)
    );
    for phase in ["connect", "bind", "request", "total"] {
        let l = &s["latency_us"][phase];
        assert!(
            l["p50"].as_u64().unwrap() <= l["p99"].as_u64().unwrap(),
            "{phase}"
        );
        assert!(
            l["p99"].as_u64().unwrap() <= l["max"].as_u64().unwrap(),
            "{phase}"
        );
    }
    // A real host keeps its identity: one ePID per pool, no change reported.
    assert_eq!(s["hosts_changed"], false);
    let report = fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("## Latency"), "{report}");
}

#[test]
fn threshold_flips_at_the_25th_distinct_windows_client() {
    let dir = temp_dir("threshold");
    let out = dir.join("out");
    let junit = dir.join("gates.xml");
    // One client at a time, so attempts reach the host in order and "after 25 distinct
    // clients" is exact (concurrent attempts may reach it in another order).
    let file = write_scenario(
        &dir,
        &fs::read_to_string("scenarios/threshold.toml")
            .unwrap()
            .replace("rate = 20\n", "model = \"closed\"\nclients = 1\n"),
    );
    let o = kmsload(&[
        "run",
        &file,
        "--quiet",
        "--out",
        out.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let s = assert_accounting(&out);
    assert_eq!(s["by_code"]["0xC004F038"], 24);
    assert_eq!(s["by_code"]["0x00000000"], 36);
    let t = &s["threshold"]["windows"];
    assert_eq!(t["first_activation_after_clients"], 25);
    assert_eq!(t["max_count"], 50);
    assert!(
        fs::read_to_string(junit)
            .unwrap()
            .contains("failures=\"0\"")
    );
}

#[test]
fn a_failed_gate_exits_1_and_says_so() {
    let dir = temp_dir("gatefail");
    let file = write_scenario(
        &dir,
        r#"
name = "gate-fail"
[fleet]
size = 10
products = [{ product = "Windows 10/11 Pro" }]
reuse = "new"
[load]
rate = 200
attempts = 10
[gates]
threshold = { within = 5, application = "windows" }
"#,
    );
    let out = dir.join("out");
    let o = kmsload(&["run", &file, "--quiet", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let s = assert_accounting(&out);
    assert_eq!(s["gates_passed"], false);
    assert_eq!(
        s["by_code"]["0xC004F038"], 10,
        "an empty host never reaches 25 with 10 clients"
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("FAIL"));
}

#[test]
fn bad_scenario_exits_2_naming_file_line_and_key() {
    let dir = temp_dir("bad");
    let file = write_scenario(&dir, "[load]\nrate = -5\nattempts = 10\n");
    let o = kmsload(&["run", &file, "--quiet"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("scenario.toml:2"), "{err}");
    assert!(err.contains("rate"), "{err}");
    let o = kmsload(&["run", "no/such/file.toml"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn non_loopback_target_is_refused_without_confirmation() {
    let o = kmsload(&[
        "run",
        "scenarios/smoke.toml",
        "--target",
        "192.0.2.10:1688",
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("30 days"), "{err}");
}

#[test]
fn closed_model_new_connections_and_keep_alive_account_exactly() {
    for (model, connection) in [
        ("closed", "new"),
        ("closed", "keep-alive"),
        ("open", "keep-alive"),
    ] {
        let dir = temp_dir(&format!("{model}-{connection}"));
        let load = if model == "closed" {
            "model = \"closed\"\nclients = 8\n".to_owned()
        } else {
            "rate = 500\n".to_owned()
        };
        let file = write_scenario(
            &dir,
            &format!(
                "name = \"m\"\n[host]\ncharged = true\n[fleet]\nsize = 50\nproducts = [{{ product = \"Office LTSC Professional Plus 2021\" }}, {{ product = \"Windows 7 Enterprise\" }}, {{ product = \"Windows Server 2012 Standard\" }}]\n[load]\n{load}attempts = 200\nconnection = \"{connection}\"\n[gates]\nmax_error_rate = 0.0\n"
            ),
        );
        let out = dir.join("out");
        let o = kmsload(&["run", &file, "--quiet", "--out", out.to_str().unwrap()]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{model}/{connection}: {}",
            show(&o)
        );
        let s = assert_accounting(&out);
        assert_eq!(s["attempts"], 200);
        assert_eq!(s["by_outcome"]["activated"], 200);
    }
}

#[test]
fn an_unreachable_target_is_classified_not_hung() {
    // A loopback port with nothing listening: every attempt fails fast with 0xC004F074.
    let dir = temp_dir("refused");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let file = write_scenario(
        &dir,
        &format!(
            "name = \"r\"\ntarget = \"127.0.0.1:{port}\"\n[load]\nrate = 200\nattempts = 20\n"
        ),
    );
    let out = dir.join("out");
    let o = kmsload(&["run", &file, "--quiet", "--out", out.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "no gates: the run itself succeeded; {}",
        show(&o)
    );
    let s = assert_accounting(&out);
    assert_eq!(s["by_code"]["0xC004F074"], 20);
    assert_eq!(s["by_cause"]["connect_refused"], 20);
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_new_attempts_and_writes_incomplete_results() {
    let dir = temp_dir("interrupt");
    let file = write_scenario(
        &dir,
        "name = \"long\"\n[host]\ncharged = true\n[load]\nrate = 200\nduration = \"60s\"\n",
    );
    let out = dir.join("out");
    let mut child = Command::new(KMSLOAD)
        .args(["run", &file, "--quiet", "--out", out.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    crate::util::signal(&child, "INT");
    // The run stops well before its 60 s bound.
    let status = crate::util::wait_for(
        &mut child,
        std::time::Duration::from_secs(20),
        "after SIGINT",
    );
    assert_eq!(status.code(), Some(1), "an interrupted run is not a pass");
    let s = assert_accounting(&out);
    assert_eq!(s["complete"], false);
    assert!(s["attempts"].as_u64().unwrap() > 50, "{}", s["attempts"]);
    assert!(
        fs::read_to_string(out.join("report.md"))
            .unwrap()
            .contains("INTERRUPTED")
    );
}

#[test]
fn a_fault_episode_is_classified_and_leaves_clean_attempts_alone() {
    let dir = temp_dir("faults");
    let file = write_scenario(
        &dir,
        r#"
name = "fault-episode"
[host]
charged = true
[fleet]
size = 500
products = [{ product = "Windows 10/11 Pro" }, { product = "Windows 7 Enterprise" }]
[load]
rate = 150
duration = "3s"
connection = "keep-alive"
[timeouts]
connect = "300ms"
bind = "300ms"
request = "300ms"
drain = "2s"
[[faults]]
kind = "refuse"
probability = 0.1
window = ["1s", "2s"]
[[faults]]
kind = "stall"
phase = "request"
probability = 0.1
window = ["1s", "2s"]
[[faults]]
kind = "corrupt"
region = "payload"
probability = 0.1
window = ["1s", "2s"]
[[faults]]
kind = "delay"
on = "receive"
delay = "20ms"
probability = 0.1
window = ["1s", "2s"]
"#,
    );
    let out = dir.join("out");
    let o = kmsload(&["run", &file, "--quiet", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let s = assert_accounting(&out);
    let faulted = s["faulted_attempts"].as_u64().unwrap();
    assert!(faulted > 20, "faults were injected: {faulted}");
    assert!(s["by_cause"]["connect_refused"].as_u64().unwrap() > 0);
    assert!(s["by_cause"]["timeout:request"].as_u64().unwrap() > 0);
    assert!(s["by_cause"]["invalid_response"].as_u64().unwrap() > 0);
    // Clean latency only counts attempts no fault touched.
    let clean = s["latency_us"]["total"]["count"].as_u64().unwrap();
    assert_eq!(clean + faulted, s["attempts"].as_u64().unwrap());

    let report = fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("## Injected faults"), "{report}");
    assert!(report.contains("| refuse |"), "{report}");
    // events.csv: every attempt without a fault activated; faults only inside the window.
    let mut rdr = csv::Reader::from_path(out.join("events.csv")).unwrap();
    let headers = rdr.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (fault, outcome, start) = (col("fault"), col("outcome"), col("intended_start_us"));
    for row in rdr.records() {
        let row = row.unwrap();
        let t: u64 = row[start].parse().unwrap();
        if row[fault].is_empty() {
            assert_eq!(&row[outcome], "activated", "{row:?}");
        } else {
            assert!(
                (1_000_000..2_000_000).contains(&t),
                "fault outside its window: {row:?}"
            );
        }
    }
}

/// New connections from several loopback source addresses: every attempt activates.
#[test]
fn new_connections_from_source_addresses_all_activate() {
    let out = temp_dir("sources");
    let (o, results) = run_text(
        &out,
        r#"
name = "sources"
seed = 3
[host]
charged = true
[fleet]
size = 1000
products = [{ product = "Windows 10/11 Enterprise" }]
[load]
rate = 400
attempts = 600
duration = "10s"
connection = "new"
source_addresses = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
[gates]
max_error_rate = 0.0
"#,
    );
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let s = assert_accounting(&results);
    assert_eq!(s["attempts"], 600);
    assert_eq!(s["by_outcome"]["activated"], 600, "{}", show(&o));
}

/// A schedule no dispatcher can keep (10 million arrivals/s): the run says kmsload fell
/// behind, in summary.json and report.md, so its figures are not read as the host's.
#[test]
fn a_generator_that_falls_behind_says_so() {
    let out = temp_dir("behind");
    let (o, results) = run_text(
        &out,
        r#"
name = "behind"
[host]
charged = true
[fleet]
size = 100000
products = [{ product = "Windows 10/11 Enterprise" }]
[load]
rate = 10000000
attempts = 50000
duration = "30s"
connection = "keep-alive"
max_in_flight = 4000
"#,
    );
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let s = assert_accounting(&results);
    let g = &s["generator"];
    assert!(g["late_attempts"].as_u64().unwrap() > 500, "{g}");
    assert!(g["max_lag_us"].as_u64().unwrap() > 10_000, "{g}");
    let md = fs::read_to_string(results.join("report.md")).unwrap();
    assert!(md.contains("kmsload fell behind its own schedule"), "{md}");
    assert!(md.contains("- load generator: at most"), "{md}");
}

/// Issue 12, item 8: `kmsload run ... | head -3` panicked ("failed printing to stdout: Broken
/// pipe") before report.html was written. A closed stdout now ends printing quietly; the run,
/// its files and its exit code are unaffected.
#[test]
fn a_closed_stdout_ends_printing_quietly_and_the_run_completes() {
    let dir = temp_dir("closed-stdout");
    let path = write_scenario(
        &dir,
        r#"
name = "closed-stdout"
[host]
charged = true
[fleet]
size = 20
products = [{ product = "Windows 10/11 Pro" }]
[load]
rate = 200
attempts = 20
[gates]
max_error_rate = 0.0
"#,
    );
    let results = dir.join("results");
    let mut child = Command::new(KMSLOAD)
        .args(["run", &path, "--quiet", "--out", results.to_str().unwrap()])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kmsload runs");
    // The reader goes away before kmsload prints anything, as `head` does after its lines.
    drop(child.stdout.take());
    let o = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    for file in ["summary.json", "events.csv", "report.md", "report.html"] {
        assert!(results.join(file).is_file(), "{file} missing; {stderr}");
    }
    assert_accounting(&results);
}

/// Closed-model clients on kept-alive connections each keep their own connection, as a
/// machine does: 12 clients that think between attempts hold 12 connections to the host for
/// the whole run (a pool shared by the clients handed a few connections round instead).
#[test]
fn closed_clients_each_keep_their_own_connection() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let host = runtime
        .block_on(kmsload::host::server::start(
            kmsload::host::server::ServerOptions {
                host: kmsload::host::HostConfig {
                    charged: true,
                    ..Default::default()
                },
                ..Default::default()
            },
        ))
        .expect("host starts");
    let dir = temp_dir("closed-own-connection");
    let text = format!(
        "name = \"own\"\ntarget = \"{}\"\nseed = 3\n[fleet]\nsize = 1000\nproducts = [{{ product = \"Windows 10/11 Enterprise\" }}]\n[load]\nmodel = \"closed\"\nclients = 12\nthink_time = \"150ms\"\nduration = \"1s\"\nattempts = 120\nconnection = \"keep-alive\"\n",
        host.addr()
    );
    let (o, results) = run_text(&dir, &text);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let s = assert_accounting(&results);
    let attempts = s["attempts"].as_u64().unwrap();
    assert!(attempts >= 24, "each client ran more than once: {attempts}");
    let stats = host.stats();
    assert_eq!(stats.connections, 12, "{stats:?}");
    runtime.block_on(host.shutdown());
}
