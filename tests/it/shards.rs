//! Shards of one run, end to end: `kmsload run --shard I/N` (and its environment forms)
//! against one `kmsload host` on loopback, compared with the unsharded run of the same
//! scenario attempt for attempt through events.csv.
//!
//! The command lines here are the ones deploy/slurm and deploy/kubernetes give: tests/it/slurm.rs
//! runs the Slurm scripts as shipped, and `the_kubernetes_job_command_line_runs_a_shard` runs
//! the Indexed Job's container arguments with its variables filled in.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use serde_json::Value;

use crate::scaleout::*;
use crate::util::temp_dir;

#[test]
fn shards_split_a_run_attempt_for_attempt() {
    let dir = temp_dir("split");
    let scenario = dir.join("sharded.toml");
    fs::write(&scenario, SCENARIO).unwrap();
    let host = Host::start(&dir);
    let sc = scenario.to_str().unwrap();

    let whole = dir.join("whole");
    let out = kmsload()
        .args(["run", sc, "--quiet", "--target", &host.addr, "--out"])
        .arg(&whole)
        .output()
        .unwrap();
    check(&out, "the unsharded run");

    // Four shards at once, each told its shard a different way, with a common start.
    let start_at = utc_in(3);
    let shard_dir = |i: u32| dir.join(format!("shard-{i}"));
    let base = |i: u32| {
        let mut cmd = kmsload();
        cmd.args(["run", sc, "--quiet", "--target", &host.addr])
            .args(["--run-id", "split-test", "--start-at", &start_at, "--out"])
            .arg(shard_dir(i))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    };
    let mut s0 = base(0);
    s0.args(["--shard", "0/4", "--source-address", "127.0.0.2"]);
    let mut s1 = base(1);
    s1.env("KMSLOAD_SHARD", "1/4")
        .args(["--source-address", "127.0.0.3,127.0.0.4"]);
    let mut s2 = base(2);
    s2.env("JOB_COMPLETION_INDEX", "2").args(["--shards", "4"]);
    let mut s3 = base(3);
    s3.envs([
        ("SLURM_ARRAY_TASK_ID", "4"),
        ("SLURM_ARRAY_TASK_COUNT", "4"),
        ("SLURM_ARRAY_TASK_MIN", "1"),
    ]);
    let children: Vec<Child> = [s0, s1, s2, s3]
        .iter_mut()
        .map(|c| c.spawn().unwrap())
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        check(&child.wait_with_output().unwrap(), &format!("shard {i}"));
    }

    // Together the shards are the unsharded run, attempt for attempt. On a loaded machine an
    // attempt due in the last milliseconds may start after the duration: it is then not
    // started but counted (`not_started`, issue 12 item 6), so the plan is what was run plus
    // what was counted.
    let expected = planned(&whole);
    // Stages ramp linearly: 0→60/s over 1 s (30) and 60→150/s over 3 s (315).
    assert_eq!(expected.len() as u64 + not_started(&whole), 345);
    let shards_not_started: u64 = (0..4).map(|i| not_started(&shard_dir(i))).sum();
    let mut union = Planned::new();
    for i in 0..4u32 {
        let part = planned(&shard_dir(i));
        assert!(
            part.keys().all(|k| k % 4 == u64::from(i)),
            "shard {i} took another's attempt"
        );
        for (k, v) in part {
            assert!(union.insert(k, v).is_none(), "attempt {k} in two shards");
        }
    }
    assert_eq!(union.len() as u64 + shards_not_started, 345);
    let planned_keys = 0..345u64;
    assert!(union.keys().all(|k| planned_keys.contains(k)));
    let compared = expected.keys().filter(|k| union.contains_key(k)).count() as u64;
    assert!(
        compared + shards_not_started + not_started(&whole) >= 345,
        "only {compared} attempts are in both runs"
    );
    for (k, want) in expected.iter().filter(|(k, _)| union.contains_key(k)) {
        let got = &union[k];
        // events.csv's intended start is the schedule's, moved up to the timer's 2 ms slack
        // when the timer fired late (load::TIMER_SLACK): compare within that.
        let (a, b): (i64, i64) = (got.0.parse().unwrap(), want.0.parse().unwrap());
        assert!(
            (a - b).abs() <= 2_000,
            "attempt {k}: intended {a} µs sharded, {b} unsharded"
        );
        assert_eq!(
            (&got.1, &got.2, &got.3, &got.4, &got.5),
            (&want.1, &want.2, &want.3, &want.4, &want.5),
            "attempt {k}: client, cmid, product, protocol, fault"
        );
    }
    let faulted = expected.values().filter(|v| !v.5.is_empty()).count();
    assert!(faulted > 10 && faulted < 200, "faults vary: {faulted}");

    // Every shard names itself and the run; they waited for the same start.
    let mut attempts = 0;
    for i in 0..4u32 {
        let s = summary(&shard_dir(i));
        let shard = &s["shard"];
        assert_eq!(shard["index"], i);
        assert_eq!(shard["count"], 4);
        assert_eq!(shard["run_id"], "split-test");
        assert_eq!(shard["start_at_utc"], start_at.as_str());
        assert!(shard["late_start_us"].is_u64(), "{shard}");
        let started = humantime::parse_rfc3339(shard["started_utc"].as_str().unwrap()).unwrap();
        assert!(started >= humantime::parse_rfc3339(&start_at).unwrap());
        attempts += s["attempts"].as_u64().unwrap();
    }
    assert_eq!(attempts + shards_not_started, 345);
    let w = summary(&whole);
    assert_eq!(w["shard"]["count"], 1);
    assert_eq!(w["shard"]["run_id"], "sharded-s5");

    merge_checks(&dir, &whole, &host);

    // Shards 0 and 1 connected from their own source addresses.
    assert_eq!(
        summary(&shard_dir(0))["config"]["source_addresses"],
        serde_json::json!(["127.0.0.2"])
    );
    let log = fs::read_to_string(&host.log).unwrap();
    for source in ["127.0.0.2:", "127.0.0.3:", "127.0.0.4:"] {
        assert!(
            log.contains(source),
            "no connection from {source} in the host log"
        );
    }
}

#[test]
fn a_closed_model_shard_runs_its_share_of_the_clients() {
    let dir = temp_dir("closed");
    let scenario = dir.join("closed.toml");
    fs::write(
        &scenario,
        "name = \"closed\"\n[host]\ncharged = true\n[load]\nmodel = \"closed\"\nclients = 5\n\
         attempts = 40\nduration = \"10s\"\n",
    )
    .unwrap();
    let mut total = 0;
    for i in 0..3 {
        let out_dir = dir.join(format!("shard-{i}"));
        let out = kmsload()
            .arg("run")
            .arg(&scenario)
            .args(["--quiet", "--shard", &format!("{i}/3"), "--out"])
            .arg(&out_dir)
            .output()
            .unwrap();
        check(&out, "a closed-model shard");
        let s = summary(&out_dir);
        total += s["attempts"].as_u64().unwrap();
        assert!(planned(&out_dir).keys().all(|k| k % 3 == i));
    }
    assert_eq!(total, 40);
}

#[test]
fn bad_shard_input_exits_2_and_starts_nothing() {
    let dir = temp_dir("bad");
    let scenario = dir.join("s.toml");
    fs::write(&scenario, "name = \"s\"\n[load]\nrate = 10\nattempts = 5\n").unwrap();
    /// Flags, environment, and what the message must say.
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case<'_>; 6] = [
        (&["--shard", "4/4"], &[], "0 to 3"),
        (&["--shard", "two"], &[], "I/N"),
        (&["--shards", "4"], &[], "JOB_COMPLETION_INDEX"),
        (&[], &[("KMSLOAD_SHARD", "1/0")], "KMSLOAD_SHARD"),
        (&["--start-at", "tomorrow"], &[], "UTC time"),
        (&["--run-id", "a/b"], &[], "run id"),
    ];
    for (args, envs, expect) in cases {
        let out_dir = dir.join("out");
        let out = kmsload()
            .arg("run")
            .arg(&scenario)
            .args(args)
            .envs(envs.iter().copied())
            .arg("--out")
            .arg(&out_dir)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} {envs:?}: {err}");
        assert!(err.contains(expect), "{args:?}: {err}");
        assert!(!out_dir.exists(), "{args:?} started a run");
    }
}

fn merge(args: &[&Path], extra: &[&str], out: &Path) -> std::process::Output {
    kmsload()
        .arg("merge")
        .args(args)
        .args(extra)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

/// `kmsload merge` of the four shards written by `shards_split_a_run_attempt_for_attempt`.
fn merge_checks(dir: &Path, whole: &Path, host: &Host) {
    let _ = host;
    let shards: Vec<PathBuf> = (0..4).map(|i| dir.join(format!("shard-{i}"))).collect();
    let refs: Vec<&Path> = shards.iter().map(PathBuf::as_path).collect();
    let merged = dir.join("merged");
    let junit = dir.join("merged-gates.xml");
    let out = merge(&refs, &["--junit", junit.to_str().unwrap()], &merged);
    check(&out, "kmsload merge");
    let m = summary(&merged);
    let w = summary(whole);
    let parts: Vec<Value> = shards.iter().map(|d| summary(d)).collect();
    // Exact sums: attempts, outcomes, codes, causes, faults.
    let sum = |key: &str| parts.iter().map(|p| p[key].as_u64().unwrap()).sum::<u64>();
    assert_eq!(m["attempts"].as_u64(), Some(sum("attempts")));
    assert_eq!(m["not_started"].as_u64(), Some(sum("not_started")));
    // Nothing was dropped for lateness in either run: they did the same attempts.
    let same_attempts = sum("not_started") == 0 && w["not_started"] == 0;
    if same_attempts {
        assert_eq!(m["attempts"], w["attempts"]);
    }
    assert_eq!(m["complete"], true);
    for key in ["by_outcome", "by_code", "by_cause"] {
        let mut sum: BTreeMap<String, u64> = BTreeMap::new();
        for p in &parts {
            for (k, v) in p[key].as_object().unwrap() {
                *sum.entry(k.clone()).or_default() += v.as_u64().unwrap();
            }
        }
        let merged_map: BTreeMap<String, u64> = m[key]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
            .collect();
        assert_eq!(merged_map, sum, "{key}");
    }
    // The merged latency histogram is exactly the histogram of every shard's attempts.
    let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
    for d in &shards {
        let mut reader = csv::Reader::from_path(d.join("events.csv")).unwrap();
        let headers = reader.headers().unwrap().clone();
        let col = |n: &str| headers.iter().position(|h| h == n).unwrap();
        let (total, fault) = (col("total_us"), col("fault"));
        for row in reader.records() {
            let row = row.unwrap();
            if row[fault].is_empty() && !row[total].is_empty() {
                h.record(row[total].parse::<u64>().unwrap().max(1)).unwrap();
            }
        }
    }
    let total = &m["latency_us"]["total"];
    assert_eq!(total["count"].as_u64(), Some(h.len()));
    for (key, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999)] {
        assert_eq!(total[key].as_u64(), Some(h.value_at_quantile(q)), "{key}");
    }
    assert_eq!(total["max"].as_u64(), Some(h.max()));
    // The unsharded run had as many fault-free attempts (the same ones).
    if same_attempts {
        assert_eq!(total["count"], w["latency_us"]["total"]["count"]);
    }
    assert_eq!(m["shard"]["run_id"], "split-test");
    let md = fs::read_to_string(merged.join("report.md")).unwrap();
    assert!(
        md.contains("## Shards") && md.contains("4 of 4 shards merged"),
        "{md}"
    );
    assert!(merged.join("report.html").exists());
    let merged_events = planned(&merged);
    let mut shard_events: Vec<u64> = shards.iter().flat_map(|d| planned(d).into_keys()).collect();
    shard_events.sort_unstable();
    assert_eq!(
        merged_events.keys().copied().collect::<Vec<_>>(),
        shard_events
    );
    if same_attempts {
        assert_eq!(
            merged_events.keys().collect::<Vec<_>>(),
            planned(whole).keys().collect::<Vec<_>>()
        );
    }
    assert!(!md.contains("events.csv: No such file"), "{md}");
    assert!(fs::read_to_string(&junit).unwrap().contains("<testsuites>"));
    let html = fs::read_to_string(merged.join("report.html")).unwrap();
    assert!(
        html.contains("<section id=\"shards\">"),
        "report.html has the shard table"
    );

    // The merge block lists the shards with their own figures and source addresses.
    let block = &m["merge"];
    assert_eq!(block["count"], 4);
    assert_eq!(block["threshold_recomputed"], true, "{block}");
    assert_eq!(block["shards"].as_array().unwrap().len(), 4);
    assert_eq!(
        block["shards"][1]["source_addresses"],
        serde_json::json!(["127.0.0.3", "127.0.0.4"])
    );
    for (i, p) in parts.iter().enumerate() {
        assert_eq!(block["shards"][i]["attempts"], p["attempts"]);
    }
    // The overrides the shards ran with (--target) are the merged plan's.
    assert_eq!(
        m["shard"]["overrides"]["target"],
        parts[0]["shard"]["overrides"]["target"]
    );
    assert_eq!(m["target"]["address"], parts[0]["target"]["address"]);
    assert_eq!(m["target"]["in_process"], false);
    // Recomputed from every shard's rows, the threshold sees the unsharded run's clients
    // (when both ran the same attempts: one not started for lateness changes the count).
    let compared_pools = if same_attempts {
        w["threshold"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    for pool in &compared_pools {
        assert_eq!(
            m["threshold"][pool]["distinct_clients"], w["threshold"][pool]["distinct_clients"],
            "{pool}"
        );
        assert_eq!(
            m["threshold"][pool]["answers"], w["threshold"][pool]["answers"],
            "{pool}"
        );
    }
    // In-flight samples: the shards' samples of a second add up (they started together).
    let in_flight = |v: &Value| -> BTreeMap<u64, u64> {
        v["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| Some((r["second"].as_u64()?, r["in_flight"].as_u64()?)))
            .collect()
    };
    let mut summed: BTreeMap<u64, u64> = BTreeMap::new();
    for p in &parts {
        for (s, n) in in_flight(p) {
            *summed.entry(s).or_default() += n;
        }
    }
    assert!(!summed.is_empty());
    assert_eq!(in_flight(&m), summed);

    // Without events.csv (events off): histograms, tallies and the timeline are the same,
    // merged from summary.json and the histogram logs; the threshold is left out, said why.
    let bare: Vec<PathBuf> = (0..4).map(|i| dir.join(format!("bare-{i}"))).collect();
    for (from, to) in shards.iter().zip(&bare) {
        fs::create_dir_all(to).unwrap();
        for f in [
            "summary.json",
            "scenario.toml",
            "histograms.hlog",
            "timeline.hlog",
        ] {
            fs::copy(from.join(f), to.join(f)).unwrap();
        }
    }
    let bare_refs: Vec<&Path> = bare.iter().map(PathBuf::as_path).collect();
    let merged_bare = dir.join("merged-bare");
    check(
        &merge(&bare_refs, &[], &merged_bare),
        "merge without events.csv",
    );
    let b = summary(&merged_bare);
    for key in [
        "attempts",
        "by_outcome",
        "by_code",
        "by_cause",
        "latency_us",
        "latency_us_by_outcome",
        "latency_us_faulted",
        "faulted_attempts",
        "products",
        "faults",
        "timeline",
        "hosts",
    ] {
        assert_eq!(b[key], m[key], "{key} without events.csv");
    }
    assert_eq!(b["merge"]["threshold_recomputed"], false);
    assert!(
        b["threshold"].as_object().is_none_or(|t| t.is_empty()),
        "{}",
        b["threshold"]
    );
    assert!(
        b["merge"]["notes"][0]
            .as_str()
            .unwrap()
            .contains("no events.csv (events off)"),
        "{}",
        b["merge"]["notes"]
    );

    // Refusals: nothing is written, exit 2, the reason.
    let refused = |args: &[&Path], extra: &[&str], expect: &str| {
        let out_dir = dir.join("refused");
        let out = merge(args, extra, &out_dir);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(expect), "{expect}: {err}");
        assert!(!out_dir.exists());
    };
    refused(
        &[refs[0], refs[1], refs[1], refs[2], refs[3]],
        &[],
        "appears twice",
    );
    refused(&[refs[0], refs[1], refs[3]], &[], "shard(s) 2 of 4 missing");
    refused(&[refs[0], whole], &[], "not shards of one run");
    // --allow-missing: merged, marked incomplete, not a pass.
    let partial = dir.join("partial");
    let out = merge(&[refs[0], refs[1], refs[3]], &["--allow-missing"], &partial);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = summary(&partial);
    assert_eq!(p["complete"], false);
    let expected: u64 = [0usize, 1, 3]
        .iter()
        .map(|&i| parts[i]["attempts"].as_u64().unwrap())
        .sum();
    assert_eq!(p["attempts"], expected);
    assert!(
        fs::read_to_string(partial.join("report.md"))
            .unwrap()
            .contains("INCOMPLETE: shard(s) 2 missing")
    );
}

/// The container arguments of deploy/kubernetes/shards-job.yaml and merge-job.yaml, run as
/// the pods would run them: `$(VAR)` filled from the pod's environment (the index from the
/// Job, the rest from the kmsload-run ConfigMap), the mount paths moved to a temp dir, and
/// the scenario replaced by this file's short one (the ConfigMap's example runs for a
/// minute; it is checked to validate instead).
#[test]
fn the_kubernetes_job_command_lines_run_the_shards_and_the_merge() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes");
    let yaml = |name: &str| -> Value {
        serde_yaml_ng::from_str(&fs::read_to_string(root.join(name)).unwrap()).unwrap()
    };
    let job = yaml("shards-job.yaml");
    let merge_job = yaml("merge-job.yaml");
    let scenario_map = yaml("scenario-configmap.yaml");
    let example = scenario_map["data"]["scenario.toml"].as_str().unwrap();
    kmsload::scenario::parse_str(
        example,
        Path::new("scenario.toml"),
        &kmsload::scenario::Overrides::default(),
        &kmsload::scenario::resolve_exact,
    )
    .unwrap_or_else(|e| panic!("the ConfigMap's scenario does not validate: {e}"));

    let dir = temp_dir("kubernetes");
    let etc = dir.join("etc-kmsload");
    let results = dir.join("results");
    fs::create_dir_all(&etc).unwrap();
    fs::create_dir_all(&results).unwrap();
    fs::write(etc.join("scenario.toml"), SCENARIO).unwrap();
    let host = Host::start(&dir);
    let start_at = utc_in(3);
    let fill = |arg: &str, index: Option<u64>| -> String {
        let mut a = arg
            .replace("$(RUN_ID)", "k8s-test")
            .replace("$(START_AT)", &start_at)
            .replace("$(KMS_TARGET)", &host.addr)
            .replace("$(KMS_CONFIRM_TARGET)", "127.0.0.1");
        if let Some(i) = index {
            a = a.replace("$(JOB_COMPLETION_INDEX)", &i.to_string());
        }
        assert!(!a.contains("$("), "an unfilled variable in {arg}");
        a.replace("/etc/kmsload", etc.to_str().unwrap())
            .replace("/results", results.to_str().unwrap())
    };
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["command"][0], "kmsload");
    let n = job["spec"]["completions"].as_u64().unwrap();
    let pods: Vec<Child> = (0..n)
        .map(|i| {
            let args: Vec<String> = container["args"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| fill(a.as_str().unwrap(), Some(i)))
                .collect();
            kmsload()
                .args(&args)
                .env("JOB_COMPLETION_INDEX", i.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, pod) in pods.into_iter().enumerate() {
        check(&pod.wait_with_output().unwrap(), &format!("pod {i}"));
    }
    let merge_container = &merge_job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(merge_container["command"][0], "kmsload");
    let args: Vec<String> = merge_container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| fill(a.as_str().unwrap(), None))
        .collect();
    check(&kmsload().args(&args).output().unwrap(), "the merge pod");
    let merged = results.join("k8s-test/merged");
    let m = summary(&merged);
    assert_eq!(m["shard"]["run_id"], "k8s-test");
    assert_eq!(m["complete"], true);
    let parts: Vec<Value> = (0..n)
        .map(|i| summary(&results.join(format!("k8s-test/shard-{i}"))))
        .collect();
    let count = |key: &str| -> u64 { parts.iter().map(|p| p[key].as_u64().unwrap()).sum() };
    let per_shard = count("attempts");
    assert_eq!(m["attempts"].as_u64(), Some(per_shard));
    // On a loaded machine an attempt due in the last milliseconds may not start: it is
    // counted as not started, so what ran plus what was counted is the scenario's.
    assert_eq!(
        per_shard + count("not_started"),
        345,
        "the scenario's attempts"
    );
    assert_eq!(m["not_started"].as_u64(), Some(count("not_started")));
    assert!(merged.join("gates.xml").exists());
}
