//! Several in-process hosts (`[[hosts]]`) behind a scenario's static SRV records (`srv`), with
//! outage windows (`down`): the host's side (a stopped service refuses connects and comes
//! back), and whole runs whose clients fail over as Windows clients do.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};

use serde_json::Value;

use crate::util::{assert_accounting, kmsload, run_text, show, temp_dir, write_scenario};

/// A host taken down refuses connects and closes its connections; back up, it listens on the
/// same address.
#[test]
fn a_host_taken_down_refuses_connects_closes_its_connections_and_comes_back() {
    use kmsload::client::{Client, ClientError, ClientOptions};
    use kmsload::host::{HostConfig, ServerOptions};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let host = kmsload::host::server::start(ServerOptions {
            listen: SocketAddr::from((Ipv4Addr::new(127, 0, 0, 2), 0)),
            host: HostConfig {
                charged: true,
                ..HostConfig::default()
            },
            ..ServerOptions::default()
        })
        .await
        .unwrap();
        let addr = host.addr();
        let p = kmsload::catalog::lookup::find("Windows 10/11 Enterprise").unwrap();
        let base = kmsload::client::volume_request(
            p,
            6,
            uuid::Uuid::new_v4(),
            crate::util::now(),
            "failover-test.kms.test",
        );
        let options = ClientOptions {
            keep_alive: true,
            ..ClientOptions::default()
        };
        let mut kept = Client::new(addr, options.clone());
        assert!(kept.activate(&base, [1; 16]).await.result.is_ok());
        assert!(kept.is_connected());

        host.set_down(true);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let mut fresh = Client::new(addr, options.clone());
        let refused = fresh.activate(&base, [2; 16]).await;
        assert!(
            matches!(refused.result, Err(ClientError::Connect { .. })),
            "{:?}",
            refused.result
        );
        assert_eq!(
            refused.verdict().cause.label(),
            "connect_refused",
            "{refused:?}"
        );
        // The kept connection was closed by the host: its next request fails.
        let cut = kept.activate(&base, [3; 16]).await;
        assert!(cut.result.is_err(), "{:?}", cut.result);

        host.set_down(false);
        let mut back = Client::new(addr, options);
        let mut answered = None;
        for _ in 0..50 {
            let a = back.activate(&base, [4; 16]).await;
            if a.result.is_ok() {
                answered = Some(a);
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(answered.is_some(), "the host listens again on {addr}");
        assert_eq!(host.addr(), addr);
        let report = host.shutdown().await;
        assert!(report.stats.requests >= 2, "{:?}", report.stats);
    });
}

fn host_splits(s: &Value) -> Vec<Value> {
    s["by_host"].as_array().cloned().unwrap_or_default()
}

fn named<'a>(splits: &'a [Value], name: &str) -> &'a Value {
    splits
        .iter()
        .find(|h| h["host"].as_str().unwrap().starts_with(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in {splits:?}"))
}

fn at(v: &Value, key: &str, second: usize) -> u64 {
    v[key]
        .as_array()
        .and_then(|a| a.get(second))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// Two hosts behind static records; the primary is down from 3 s to 6 s of a 9 s run. Every
/// attempt is accounted for once, the backup takes over in the outage (each of those attempts
/// failed over), the primary takes new clients again after it, the split sums to the totals,
/// and report.md and report.html show the shift and the failover cost.
#[test]
fn the_backup_takes_over_while_the_primary_is_down_and_the_report_shows_it() {
    let dir = temp_dir("failover");
    let path = write_scenario(
        &dir,
        "name = \"failover-it\"\n\
         discover = \"corp.example\"\n\
         srv = [{ host = \"kms01\" }, { host = \"kms02\", priority = 10 }]\n\
         [[hosts]]\nname = \"kms01\"\ncharged = true\ndown = [{ from = \"3s\", for = \"3s\" }]\n\
         [[hosts]]\nname = \"kms02\"\ncharged = true\n\
         [fleet]\nsize = 2000\n\
         [load]\nrate = 40\nduration = \"9s\"\n\
         [gates]\nmax_error_rate = 0.0\n",
    );
    let out = dir.join("results");
    let o = kmsload(&["run", &path, "--quiet", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let s = assert_accounting(&out);
    let attempts = s["attempts"].as_u64().unwrap();
    assert_eq!(s["by_outcome"]["activated"].as_u64(), Some(attempts));

    let splits = host_splits(&s);
    assert_eq!(splits.len(), 2, "{splits:?}");
    for key in ["attempts", "activated", "not_activated", "failed"] {
        let sum: u64 = splits.iter().map(|h| h[key].as_u64().unwrap()).sum();
        let total = match key {
            "attempts" => attempts,
            k => s["by_outcome"][k].as_u64().unwrap(),
        };
        assert_eq!(sum, total, "by_host {key} sums to the total");
    }
    let per_second_sum: u64 = splits
        .iter()
        .flat_map(|h| h["per_second"].as_array().unwrap().iter())
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(
        per_second_sum, attempts,
        "every attempt in one second of one host"
    );

    let (kms01, kms02) = (named(&splits, "kms01"), named(&splits, "kms02"));
    // Before the outage: the priority-0 host only.
    for sec in 0..3 {
        assert!(
            at(kms01, "per_second", sec) > 0,
            "kms01 answers in second {sec}"
        );
        assert_eq!(
            at(kms02, "per_second", sec),
            0,
            "kms02 idle in second {sec}"
        );
    }
    // Inside it (away from its edges): the backup only, every attempt failed over.
    for sec in 4..6 {
        assert_eq!(
            at(kms01, "per_second", sec),
            0,
            "kms01 down in second {sec}"
        );
        let answered = at(kms02, "per_second", sec);
        assert!(answered > 0, "kms02 took over in second {sec}");
        assert_eq!(
            at(kms02, "failovers_per_second", sec),
            answered,
            "second {sec}"
        );
    }
    // After it: new clients draw kms01 first again.
    assert!(
        (7..9).any(|sec| at(kms01, "per_second", sec) > 0),
        "{kms01}"
    );
    // The cost: every failover counted, with the time it lost.
    let failovers = kms02["failovers_in"].as_u64().unwrap();
    assert!(failovers > 0);
    assert!(kms01["failed_tries"].as_u64().unwrap() >= failovers);
    assert!(kms02["failover_cost_us_mean"].as_u64().is_some(), "{kms02}");
    assert!(
        kms02["failover_cost_us_max"].as_u64().unwrap()
            >= kms02["failover_cost_us_mean"].as_u64().unwrap()
    );
    assert_eq!(kms01["failovers_in"], 0);
    assert_eq!(
        s["outages"],
        serde_json::json!([{ "host": "kms01", "from_s": 3.0, "to_s": 6.0 }])
    );

    let md = fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("## Hosts over time"), "{md}");
    assert!(md.contains("Failover cost: "), "{md}");
    assert!(
        md.lines()
            .any(|l| l.starts_with("| 4–5 |") && l.ends_with("| kms01 |")),
        "{md}"
    );
    let html = fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<section id=\"hosts\">"));
    assert!(html.contains("id=\"chart-hosts\""));
    assert!(html.contains("kms01 down 3.00 s"), "the outage is shaded");
    assert!(html.contains("<p id=\"failover-cost\">Failover cost: "));
}

/// A lone host that goes down: with nowhere to fail over, the attempts in the window fail
/// with 0xC004F074 (connection refused); after it, the host answers again.
#[test]
fn a_lone_host_down_fails_its_attempts_then_recovers() {
    let dir = temp_dir("lone-outage");
    let (o, out) = run_text(
        &dir,
        "[[hosts]]\ncharged = true\ndown = [{ from = \"2s\", for = \"2s\" }]\n\
         [load]\nrate = 20\nduration = \"6s\"\n",
    );
    // No gate: the run passes however many failed.
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let s = assert_accounting(&out);
    assert!(s["by_code"]["0xC004F074"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(s["outages"][0]["host"], "kms01");
    let events = fs::read_to_string(out.join("events.csv")).unwrap();
    let mut failed_at = Vec::new();
    let mut refused = 0;
    let mut activated_after = 0;
    for line in events.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let intended_s = f[0].parse::<f64>().unwrap() / 1e6;
        match f[9] {
            "failed" => {
                // Refused; or, for an attempt that connected just before, closed by the host.
                refused += u32::from(f[13] == "connect_refused");
                failed_at.push(intended_s);
            }
            "activated" if intended_s > 4.8 => activated_after += 1,
            _ => {}
        }
    }
    // Only attempts due around the window failed (an attempt a few ms before its start may
    // still be connecting when the host goes down).
    assert!(
        failed_at.iter().all(|t| (1.5..4.5).contains(t)),
        "{failed_at:?}"
    );
    assert!(failed_at.len() >= 30, "{failed_at:?}");
    assert!(
        refused as usize + 3 >= failed_at.len(),
        "{refused} of {failed_at:?}"
    );
    assert!(activated_after >= 15, "the host came back");
}
