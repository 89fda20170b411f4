//! Verdicts a CI pipeline can trust: latency gates over activated attempts, incomplete runs
//! that fail in JUnit, gates that abort a run, signals, the duration bound of a saturated
//! runner, and result files that hold every attempt however the run ended.

use std::fs;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{
    KMSLOAD, assert_accounting, dead_port, run_text, show, signal, summary, temp_dir, wait_for,
    write_scenario,
};

fn spawn_run(file: &str, out: &std::path::Path, extra: &[&str]) -> Child {
    Command::new(KMSLOAD)
        .args([
            "run",
            file,
            "--quiet",
            "--no-html",
            "--out",
            out.to_str().unwrap(),
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn a_latency_gate_fails_when_nothing_activated() {
    // Every attempt fails fast with 0xC004F074: its latency is tiny, and it must not make
    // the latency gate pass.
    let dir = temp_dir("dead-host-gate");
    let text = format!(
        "name = \"dead\"\ntarget = \"127.0.0.1:{}\"\n[load]\nrate = 100\nattempts = 30\n\
         [gates]\nlatency = [{{ percentile = 99, below = \"250ms\" }}]\n",
        dead_port()
    );
    let (o, out) = run_text(&dir, &text);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let s = assert_accounting(&out);
    assert_eq!(s["by_code"]["0xC004F074"], 30);
    let g = &s["gates"][0];
    assert_eq!(g["pass"], false);
    assert_eq!(g["shown"], "no activated attempts");
    assert_eq!(s["passed"], false);

    // Naming the failures measures them, and then the fast failures pass.
    let text = text.replace("below = \"250ms\"", "of = \"failed\", below = \"250ms\"");
    let (o, out) = run_text(&temp_dir("dead-host-gate-failed"), &text);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(
        summary(&out)["gates"][0]["name"],
        "total p99 < 250ms (failed)"
    );
}

#[test]
fn an_abort_gate_ends_a_doomed_run_early() {
    let dir = temp_dir("abort");
    let file = write_scenario(
        &dir,
        &format!(
            "name = \"doomed\"\ntarget = \"127.0.0.1:{}\"\n[load]\nrate = 50\nduration = \"60s\"\n\
             [gates]\nmax_error_rate = 0.01\nabort = true\nabort_grace = \"1s\"\n",
            dead_port()
        ),
    );
    let out = dir.join("out");
    let junit = dir.join("junit.xml");
    let mut child = spawn_run(&file, &out, &["--junit", junit.to_str().unwrap()]);
    let status = wait_for(&mut child, Duration::from_secs(30), "an aborted run");
    assert_eq!(status.code(), Some(1));
    let s = assert_accounting(&out);
    assert_eq!(s["complete"], false);
    assert_eq!(s["passed"], false);
    let why = s["aborted"].as_str().unwrap();
    assert!(why.starts_with("error rate <= 0.01"), "{why}");
    // It stopped after its grace, long before the 60 s bound.
    assert!(
        s["attempts"].as_u64().unwrap() < 50 * 20,
        "{}",
        s["attempts"]
    );
    let report = fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("ABORTED by a gate"), "{report}");
    let xml = fs::read_to_string(junit).unwrap();
    assert!(xml.contains("name=\"run completed\"><failure"), "{xml}");
}

#[test]
fn sigterm_drains_and_writes_everything_and_junit_fails() {
    let dir = temp_dir("sigterm");
    let file = write_scenario(
        &dir,
        "name = \"long\"\n[host]\ncharged = true\n[load]\nrate = 200\nduration = \"60s\"\n",
    );
    let out = dir.join("out");
    let junit = dir.join("junit.xml");
    let mut child = spawn_run(&file, &out, &["--junit", junit.to_str().unwrap()]);
    std::thread::sleep(Duration::from_millis(1500));
    signal(&child, "TERM");
    let status = wait_for(&mut child, Duration::from_secs(20), "after SIGTERM");
    assert_eq!(status.code(), Some(1), "an interrupted run is not a pass");
    let s = assert_accounting(&out);
    assert_eq!(s["complete"], false);
    assert_eq!(s["passed"], false);
    assert!(s["aborted"].is_null());
    assert!(s["attempts"].as_u64().unwrap() > 50, "{}", s["attempts"]);
    let xml = fs::read_to_string(junit).unwrap();
    assert!(xml.contains("failures=\"1\""), "{xml}");
    assert!(xml.contains("name=\"run completed\"><failure"), "{xml}");
}

#[test]
fn sighup_stops_like_ctrl_c() {
    let dir = temp_dir("sighup");
    let file = write_scenario(
        &dir,
        "name = \"long\"\n[host]\ncharged = true\n[load]\nrate = 100\nduration = \"60s\"\n",
    );
    let out = dir.join("out");
    let mut child = spawn_run(&file, &out, &[]);
    std::thread::sleep(Duration::from_millis(1500));
    signal(&child, "HUP");
    let status = wait_for(&mut child, Duration::from_secs(20), "after SIGHUP");
    assert_eq!(status.code(), Some(1));
    assert_eq!(assert_accounting(&out)["complete"], false);
}

/// A host that accepts and never answers: attempts hang until their deadline.
fn silent_host() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

#[test]
fn a_second_signal_ends_the_drain_and_abandoned_attempts_reach_events_csv() {
    // The kernel completes connects into the backlog of a listener that never accepts, so
    // every attempt waits for its 30 s bind deadline; the drain would wait 60 s.
    let (_listener, port) = silent_host();
    let dir = temp_dir("second-signal");
    let file = write_scenario(
        &dir,
        &format!(
            "name = \"stuck\"\ntarget = \"127.0.0.1:{port}\"\n[load]\nrate = 20\nduration = \"60s\"\n\
             [timeouts]\nbind = \"30s\"\ndrain = \"60s\"\n"
        ),
    );
    let out = dir.join("out");
    let mut child = spawn_run(&file, &out, &[]);
    std::thread::sleep(Duration::from_millis(1500));
    signal(&child, "TERM");
    std::thread::sleep(Duration::from_millis(500));
    signal(&child, "TERM");
    let status = wait_for(
        &mut child,
        Duration::from_secs(20),
        "after a second SIGTERM",
    );
    assert_eq!(status.code(), Some(1));
    // assert_accounting checks one events.csv row per attempt: the abandoned ones included.
    let s = assert_accounting(&out);
    assert_eq!(s["complete"], false);
    let abandoned = s["by_cause"]["abandoned"].as_u64().unwrap();
    assert!(abandoned > 10, "{abandoned}");
    assert_eq!(s["abandoned"].as_u64().unwrap(), abandoned);
    let events = fs::read_to_string(out.join("events.csv")).unwrap();
    assert_eq!(
        events.lines().filter(|l| l.contains("abandoned")).count() as u64,
        abandoned
    );
}

#[test]
fn abandoned_attempts_at_the_drain_deadline_reach_events_csv() {
    let (_listener, port) = silent_host();
    let dir = temp_dir("drain-deadline");
    let text = format!(
        "name = \"stuck\"\ntarget = \"127.0.0.1:{port}\"\n[load]\nrate = 20\nduration = \"1s\"\n\
         [timeouts]\nbind = \"30s\"\ndrain = \"500ms\"\n"
    );
    let (o, out) = run_text(&dir, &text);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let s = assert_accounting(&out);
    assert_eq!(s["complete"], true);
    assert_eq!(s["by_cause"]["abandoned"], 20);
}

#[test]
fn sigkill_leaves_events_csv_with_every_attempt_older_than_a_second() {
    let dir = temp_dir("sigkill");
    let file = write_scenario(
        &dir,
        "name = \"long\"\n[host]\ncharged = true\n[load]\nrate = 100\nduration = \"60s\"\n",
    );
    let out = dir.join("out");
    let mut child = spawn_run(&file, &out, &[]);
    std::thread::sleep(Duration::from_millis(3500));
    signal(&child, "KILL");
    wait_for(&mut child, Duration::from_secs(10), "after SIGKILL");
    let events = fs::read_to_string(out.join("events.csv")).unwrap();
    // 100/s for 3.5 s: whatever finished before the last flush (at most a second ago) is on
    // disk. Without periodic flushing, the 64 KiB buffer holds all of it (~30 KB).
    let rows = events.lines().count().saturating_sub(1);
    assert!(rows >= 150, "{rows} rows after 3.5 s at 100/s");
}

#[test]
fn after_sigkill_report_rebuilds_the_results_from_events_csv() {
    // issue 12 item 4: a run killed with SIGKILL leaves events.csv and scenario.toml only;
    // `kmsload report DIR` rebuilds summary.json, report.md and the page from the rows,
    // says so, and marks the result rebuilt and incomplete (exit 1).
    let dir = temp_dir("rebuild");
    let file = write_scenario(
        &dir,
        "name = \"killed\"\n[host]\ncharged = true\n[load]\nrate = 100\nduration = \"60s\"\n\
         [[faults]]\nkind = \"refuse\"\nprobability = 0.1\n\
         [gates]\nmax_error_rate = 0.5\n",
    );
    let out = dir.join("out");
    let mut child = spawn_run(&file, &out, &[]);
    std::thread::sleep(Duration::from_millis(3500));
    signal(&child, "KILL");
    wait_for(&mut child, Duration::from_secs(10), "after SIGKILL");
    assert!(!out.join("summary.json").exists());
    let rows = fs::read_to_string(out.join("events.csv"))
        .unwrap()
        .lines()
        .count() as u64
        - 1;
    assert!(rows >= 150, "{rows} rows after 3.5 s at 100/s");

    let o = crate::util::kmsload(&["report", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = crate::util::stderr(&o);
    assert!(
        err.contains("has no summary.json") && err.contains("rebuilding them from events.csv"),
        "{err}"
    );
    assert!(
        err.contains(&format!("from {rows} attempts in events.csv")),
        "{err}"
    );
    // Totals equal the rows: outcomes, codes and dispatched all add up to them.
    let s = assert_accounting(&out);
    assert_eq!(s["attempts"].as_u64(), Some(rows));
    assert_eq!(s["complete"], false);
    assert_eq!(s["passed"], false);
    let note = s["rebuilt"].as_str().unwrap();
    assert!(note.contains(&format!("{rows} attempts")), "{note}");
    let refused = s["faults"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["fault"] == "refuse")
        .unwrap()["attempts"]
        .as_u64()
        .unwrap();
    assert!(refused > 0 && refused < rows, "{refused} refused of {rows}");
    let md = fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("REBUILT from events.csv"), "{md}");
    assert!(md.contains(&format!("- attempts: {rows} ")), "{md}");
    let page = fs::read_to_string(out.join("report.html")).unwrap();
    assert!(page.contains("rebuilt from events.csv"), "the page says so");
    // A second report reads the rebuilt summary like any other.
    let again = crate::util::kmsload(&["report", out.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(0), "{}", show(&again));
}

#[test]
fn a_saturated_runner_keeps_the_duration_bound_and_counts_what_it_could_not_start() {
    // 10,000/s offered to a host that never answers, with 5 attempts in flight at most: the
    // runner can start only 5. After 2 s nothing more starts, and the rest are counted.
    let (_listener, port) = silent_host();
    let dir = temp_dir("saturated");
    let text = format!(
        "name = \"sat\"\ntarget = \"127.0.0.1:{port}\"\n[load]\nrate = 10000\nduration = \"2s\"\n\
         max_in_flight = 5\n[timeouts]\nbind = \"3s\"\ndrain = \"5s\"\n"
    );
    let t = Instant::now();
    let (o, out) = run_text(&dir, &text);
    // Bounded by the duration, the bind deadline and the drain: never the 20,000 attempts
    // run one after the other (which would take hours).
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let s = assert_accounting(&out);
    let attempts = s["attempts"].as_u64().unwrap();
    let not_started = s["not_started"].as_u64().unwrap();
    assert!(attempts <= 10, "{attempts}");
    assert_eq!(attempts + not_started, 20_000);
    let report = fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("not started: "), "{report}");
}

#[test]
fn runs_started_in_the_same_second_get_their_own_directories() {
    let dir = temp_dir("same-second");
    let file = write_scenario(
        &dir,
        "name = \"twin\"\n[host]\ncharged = true\n[load]\nrate = 100\nattempts = 20\n",
    );
    // Both write under results/ of their working directory, named by the same second.
    let run = || {
        Command::new(KMSLOAD)
            .current_dir(&dir)
            .args(["run", &file, "--quiet", "--no-html"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let (a, b) = (run(), run());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success() && b.status.success());
    let dirs: Vec<_> = fs::read_dir(dir.join("results"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 2, "{dirs:?}");
    for d in dirs {
        assert_eq!(assert_accounting(&d)["attempts"], 20);
    }
}

#[test]
fn events_modes_full_failures_and_off() {
    // A fresh host: the first 24 distinct Windows clients are not activated, the rest are.
    let text = "name = \"modes\"\n[fleet]\nreuse = \"new\"\nsize = 40\n[load]\nrate = 400\nattempts = 40\n";
    let run = |name: &str, text: &str, extra: &[&str]| {
        let dir = temp_dir(name);
        let file = write_scenario(&dir, text);
        let out = dir.join("results");
        let mut args = vec![
            "run",
            &file,
            "--quiet",
            "--no-html",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let o = crate::util::kmsload(&args);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", show(&o));
        let s = summary(&out);
        (out, s)
    };
    let rows = |path: std::path::PathBuf| -> Vec<csv::StringRecord> {
        csv::Reader::from_path(path)
            .unwrap()
            .records()
            .map(Result::unwrap)
            .collect()
    };

    let (out, s) = run("events-full", text, &[]);
    assert_eq!(s["events"], "full");
    assert_eq!(s["by_outcome"]["not_activated"], 24);
    let all = rows(out.join("events.csv"));
    assert_eq!(all.len(), 40);
    assert!(
        all.iter().all(|r| ["V4", "V5", "V6"].contains(&&r[4])),
        "{all:?}"
    );
    assert!(!out.join("failures.csv").exists());

    let (out, s) = run("events-failures", text, &["--events", "failures"]);
    assert_eq!(s["events"], "failures");
    assert_eq!(s["attempts"], 40, "the summary still counts every attempt");
    // events.csv always means every attempt: the failures go to their own file.
    assert!(!out.join("events.csv").exists());
    let failed = rows(out.join("failures.csv"));
    assert_eq!(failed.len(), 24);
    assert!(
        failed.iter().all(|r| &r[9] == "not_activated"),
        "{failed:?}"
    );
    let report = fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("events = \"failures\""), "{report}");

    // The key in the file, and a results directory without events.csv that still renders.
    let (out, s) = run("events-off", &format!("events = \"off\"\n{text}"), &[]);
    assert_eq!(s["events"], "off");
    assert_eq!(s["attempts"], 40);
    assert!(!out.join("events.csv").exists() && !out.join("failures.csv").exists());
    let o = crate::util::kmsload(&["report", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    // --events replaces the key.
    let (out, _) = run(
        "events-flag-wins",
        &format!("events = \"off\"\n{text}"),
        &["--events", "full"],
    );
    assert_eq!(rows(out.join("events.csv")).len(), 40);
}

#[test]
fn report_md_shows_each_threshold_of_a_mixed_pool() {
    // A fresh host; Windows clients (N = 25) and Windows Server (N = 5) share the Windows
    // count, and each kind flips at its own N.
    let dir = temp_dir("mixed-threshold");
    let text = "name = \"mixed\"\n[fleet]\nreuse = \"new\"\nsize = 60\nproducts = [\
                { product = \"Windows 10/11 Pro\", weight = 1 }, \
                { product = \"Windows Server 2022 Standard\", weight = 1 }]\n\
                [load]\nrate = 300\nattempts = 60\n";
    let (o, out) = run_text(&dir, text);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let s = summary(&out);
    assert_eq!(
        s["threshold"]["windows"]["by_required"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let report = fs::read_to_string(out.join("report.md")).unwrap();
    let server = report
        .lines()
        .find(|l| l.contains("N = 5 (Windows Server)"))
        .unwrap_or_else(|| panic!("no Windows Server line:\n{report}"));
    assert!(
        server.contains("first activated after 5 distinct clients"),
        "{server}"
    );
    let client = report
        .lines()
        .find(|l| l.contains("N = 25 (Windows client)"))
        .unwrap_or_else(|| panic!("no Windows client line:\n{report}"));
    assert!(
        client.contains("first activated after 25 distinct clients"),
        "{client}"
    );
}

#[test]
fn command_line_bounds_replace_the_files_and_an_early_end_is_said() {
    // As scenarios/smoke.toml: a rate, an attempt cap and a duration.
    let text = "name = \"capped\"\n[host]\ncharged = true\n[fleet]\nsize = 50\n\
                [load]\nrate = 100\nattempts = 30\nduration = \"5s\"\n";
    let dir = temp_dir("capped");
    let file = write_scenario(&dir, text);
    let run = |name: &str, extra: &[&str]| {
        let out = dir.join(name);
        let mut args = vec![
            "run",
            &file,
            "--quiet",
            "--no-html",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let o = crate::util::kmsload(&args);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", show(&o));
        (o, out)
    };
    // --rate alone: the file's cap ends the run early, and the output says so.
    let (o, out) = run("rate-only", &["--rate", "300"]);
    assert_eq!(summary(&out)["attempts"], 30);
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        stdout.contains("before the duration bound of 5s: it reached its `attempts` bound (30)"),
        "{stdout}"
    );
    let report = fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        report.contains("it reached its `attempts` bound (30)"),
        "{report}"
    );
    // --rate and --duration: that long at that rate; the file's cap does not apply.
    let (o, out) = run("rate-and-duration", &["--rate", "100", "--duration", "1s"]);
    let attempts = summary(&out)["attempts"].as_u64().unwrap();
    assert!(attempts > 30, "{attempts} attempts");
    assert!(!String::from_utf8_lossy(&o.stdout).contains("before the duration bound"));
    // --attempts replaces the cap.
    let (_, out) = run("attempts", &["--rate", "300", "--attempts", "45"]);
    assert_eq!(summary(&out)["attempts"], 45);
}
