//! Discovery against a real DNS server (dnsmasq, [`crate::util::dnsmasq`]) and real reference
//! hosts on loopback: the library's [`Discovery`] as `activate` and `run` use it.
//!
//! - `priority_order_comes_from_the_records`: three priorities, tried lowest first.
//! - `weights_split_first_tries_within_a_statistical_bound`: 75/25 weights, 600 attempts
//!   without host cache, the split within 5 standard deviations of RFC 2782's share.
//! - `a_dead_first_host_fails_over_to_the_next`: connection refused, next record answers.
//! - `every_host_dead_is_0xc004f074`.
//! - `nxdomain_is_0x8007232b` and `an_empty_answer_is_its_own_cause` (0x8007251D).
//! - `a_target_that_does_not_resolve_is_skipped`.
//! - `a_silent_dns_server_ends_at_the_deadline`: a UDP socket that never answers.
//! - `the_cached_host_is_reused_then_forgotten_when_it_fails`.
//! - `activate_discover_*`: the `kmsload activate --discover` output, human and JSON.
//!
//! Without dnsmasq each test prints one line and passes, except under `CI=true`.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use crate::util::dnsmasq::Dnsmasq;
use kmsload::catalog;
use kmsload::client::{Client, ClientOptions, Outcome};
use kmsload::discover::{
    ClientDiscovery, Discovery, DiscoveryConfig, DnsCause, HostClients, HostGate, SrvOrder,
    first_choice_shares,
};
use kmsload::host::{self, HostHandle, ServerOptions};
use kmsload::wire::RequestBase;
use rand::SeedableRng;
use rand::rngs::StdRng;

const DOMAIN: &str = "kms.test";

fn base() -> RequestBase {
    let p = catalog::lookup::find("Windows 10/11 Enterprise").unwrap();
    kmsload::client::volume_request(
        p,
        6,
        uuid::Uuid::new_v4(),
        crate::util::now(),
        "discover-test.kms.test",
    )
}

use crate::util::dead_port;

fn srv(target: &str, port: u16, priority: u16, weight: u16) -> String {
    format!("srv-host=_vlmcs._tcp.{DOMAIN},{target},{port},{priority},{weight}")
}

fn config(dns: &Dnsmasq) -> DiscoveryConfig {
    DiscoveryConfig {
        dns_server: Some(dns.addr()),
        dns_timeout: Duration::from_secs(3),
        ..DiscoveryConfig::new(DOMAIN)
    }
}

fn options() -> ClientOptions {
    ClientOptions {
        connect_timeout: Duration::from_secs(3),
        bind_timeout: Duration::from_secs(3),
        request_timeout: Duration::from_secs(3),
        ..ClientOptions::default()
    }
}

type Clients = HostClients<kmsload::client::TcpConnector, fn(SocketAddr) -> Client>;

fn clients() -> Clients {
    let make: fn(SocketAddr) -> Client = |addr| Client::new(addr, options());
    HostClients::new(make, base(), [7; 16])
}

async fn reference_host() -> HostHandle {
    host::start(ServerOptions::default()).await.unwrap()
}

/// dnsmasq with `lines` plus `local=/kms.test/` (so other names under it are NXDOMAIN).
fn dns(lines: &[String]) -> Option<Dnsmasq> {
    let mut all: Vec<&str> = vec!["local=/kms.test/"];
    all.extend(lines.iter().map(String::as_str));
    Dnsmasq::start(&all)
}

#[tokio::test]
async fn priority_order_comes_from_the_records() {
    let (a, b) = (reference_host().await, reference_host().await);
    let lines = [
        "host-record=kms-a.kms.test,127.0.0.1".to_owned(),
        "host-record=kms-b.kms.test,127.0.0.1".to_owned(),
        srv("kms-c.kms.test", dead_port(), 20, 0),
        srv("kms-b.kms.test", b.addr().port(), 10, 100),
        srv("kms-a.kms.test", a.addr().port(), 0, 0),
    ];
    let Some(dns) = dns(&lines) else { return };
    let d = Discovery::new(config(&dns), HostGate::default()).unwrap();
    let answer = d.resolver().srv(DOMAIN).await.unwrap();
    let prios: Vec<u16> = answer.records.iter().map(|r| r.priority).collect();
    assert_eq!(prios, [0, 10, 20], "sorted by kmsload");
    assert_eq!(answer.ttl, Duration::from_secs(60));
    // Ten clients, each its own draw: all go to priority 0 first.
    for seed in 0..10 {
        let mut state = ClientDiscovery::default();
        let out = d
            .attempt(&mut state, &mut clients(), &mut StdRng::seed_from_u64(seed))
            .await;
        assert_eq!(out.host.as_ref().unwrap().target, "kms-a.kms.test");
        assert!(out.tried.is_empty() && out.queried);
        assert_eq!(
            out.verdict().outcome,
            Outcome::NotActivated,
            "fresh host: count 1"
        );
    }
}

#[tokio::test]
async fn weights_split_first_tries_within_a_statistical_bound() {
    let (a, b) = (reference_host().await, reference_host().await);
    let lines = [
        "host-record=heavy.kms.test,127.0.0.1".to_owned(),
        "host-record=light.kms.test,127.0.0.1".to_owned(),
        srv("heavy.kms.test", a.addr().port(), 0, 75),
        srv("light.kms.test", b.addr().port(), 0, 25),
    ];
    let Some(dns) = dns(&lines) else { return };
    let cfg = DiscoveryConfig {
        host_cache: false,
        ..config(&dns)
    };
    let d = Discovery::new(cfg, HostGate::default()).unwrap();
    let mut rng = StdRng::seed_from_u64(2026);
    let mut hosts = clients();
    let mut state = ClientDiscovery::default();
    let draws = 600u32;
    let mut heavy = 0u32;
    let mut queries = 0u32;
    for _ in 0..draws {
        let out = d.attempt(&mut state, &mut hosts, &mut rng).await;
        assert!(out.tried.is_empty(), "both hosts answer");
        queries += u32::from(out.queried);
        if out.host.unwrap().target == "heavy.kms.test" {
            heavy += 1;
        }
    }
    let answer = state.answer().unwrap();
    let share = first_choice_shares(&answer.records, SrvOrder::Rfc2782)[0];
    let expected = f64::from(draws) * share;
    let sd = (f64::from(draws) * share * (1.0 - share)).sqrt();
    assert!(
        (f64::from(heavy) - expected).abs() < 5.0 * sd,
        "heavy {heavy} of {draws}, expected {expected:.0} ± {:.0}",
        5.0 * sd
    );
    assert_eq!(queries, 1, "the answer is kept for its TTL (60 s)");
    let served = a.stats().requests + b.stats().requests;
    assert_eq!(served, u64::from(draws));
}

#[tokio::test]
async fn a_dead_first_host_fails_over_to_the_next() {
    let live = reference_host().await;
    let dead = dead_port();
    let lines = [
        "host-record=kms1.kms.test,127.0.0.1".to_owned(),
        "host-record=kms2.kms.test,127.0.0.1".to_owned(),
        srv("kms1.kms.test", dead, 0, 0),
        srv("kms2.kms.test", live.addr().port(), 5, 0),
    ];
    let Some(dns) = dns(&lines) else { return };
    let d = Discovery::new(config(&dns), HostGate::default()).unwrap();
    let mut state = ClientDiscovery::default();
    let out = d
        .attempt(&mut state, &mut clients(), &mut StdRng::seed_from_u64(1))
        .await;
    assert_eq!(out.tried.len(), 1, "{:?}", out.tried);
    assert_eq!(out.tried[0].host, format!("kms1.kms.test:{dead}"));
    assert_eq!(out.tried[0].cause, "connect_refused");
    assert_eq!(out.tried[0].verdict.hresult, 0xC004_F074);
    assert_eq!(out.host.as_ref().unwrap().target, "kms2.kms.test");
    assert!(out.failed_over());
    assert_eq!(out.verdict().outcome, Outcome::NotActivated);
    assert_eq!(state.cached_host().unwrap().target, "kms2.kms.test");
}

#[tokio::test]
async fn every_host_dead_is_0xc004f074() {
    let lines = [
        "host-record=kms1.kms.test,127.0.0.1".to_owned(),
        srv("kms1.kms.test", dead_port(), 0, 0),
        srv("kms1.kms.test", dead_port(), 1, 0),
    ];
    let Some(dns) = dns(&lines) else { return };
    let d = Discovery::new(config(&dns), HostGate::default()).unwrap();
    let out = d
        .attempt(
            &mut ClientDiscovery::default(),
            &mut clients(),
            &mut StdRng::seed_from_u64(1),
        )
        .await;
    assert_eq!(out.tried.len(), 2);
    let v = out.verdict();
    assert_eq!((v.outcome, v.hresult), (Outcome::Failed, 0xC004_F074));
    assert_eq!(v.cause_code, Some(0x8007_274D), "the last host's cause");
}

#[tokio::test]
async fn nxdomain_is_0x8007232b() {
    let Some(dns) = dns(&["host-record=other.kms.test,127.0.0.1".to_owned()]) else {
        return;
    };
    let d = Discovery::new(config(&dns), HostGate::default()).unwrap();
    let out = d
        .attempt(
            &mut ClientDiscovery::default(),
            &mut clients(),
            &mut StdRng::seed_from_u64(1),
        )
        .await;
    let e = out.dns_error.as_ref().expect("no record");
    assert_eq!(e.cause, DnsCause::NxDomain, "{e}");
    assert_eq!(e.name, "_vlmcs._tcp.kms.test.");
    let v = out.verdict();
    assert_eq!((v.outcome, v.hresult), (Outcome::Failed, 0x8007_232B));
    assert_eq!(v.cause.label(), "dns:nxdomain");
    assert!(out.tried.is_empty() && out.host.is_none());
}

#[tokio::test]
async fn an_empty_answer_is_its_own_cause() {
    // The name exists (it has a TXT record) but holds no SRV record.
    let Some(dns) = dns(&["txt-record=_vlmcs._tcp.kms.test,\"not here\"".to_owned()]) else {
        return;
    };
    let d = Discovery::new(config(&dns), HostGate::default()).unwrap();
    let e = d.resolver().srv(DOMAIN).await.unwrap_err();
    assert_eq!(e.cause, DnsCause::NoRecords, "{e}");
    assert_eq!(e.verdict().hresult, 0x8007_251D);
}

/// A domain the server neither holds nor forwards: dnsmasq answers REFUSED (also what it
/// relays when its upstream refuses), which is `dns:refused` 0x8007232D, not NXDOMAIN.
///
/// SERVFAIL has no test against dnsmasq: it relays an upstream's REFUSED as REFUSED, answers
/// REFUSED for forwarding loops, lets a dead upstream time out (`dns:timeout`, tested below),
/// and with `dnssec` and the root trust anchor still answered an unsigned local zone with
/// NOERROR; no configuration of dnsmasq 2.90 alone was found that answers SERVFAIL.
#[tokio::test]
async fn a_refused_query_is_its_own_cause() {
    let Some(dns) = dns(&["host-record=kms1.kms.test,127.0.0.1".to_owned()]) else {
        return;
    };
    let d = Discovery::new(
        DiscoveryConfig {
            dns_server: Some(dns.addr()),
            dns_timeout: Duration::from_secs(3),
            ..DiscoveryConfig::new("elsewhere.example")
        },
        HostGate::default(),
    )
    .unwrap();
    let out = d
        .attempt(
            &mut ClientDiscovery::default(),
            &mut clients(),
            &mut StdRng::seed_from_u64(1),
        )
        .await;
    let e = out.dns_error.as_ref().expect("refused");
    assert_eq!(e.cause, DnsCause::Refused, "{e}");
    let v = out.verdict();
    assert_eq!((v.outcome, v.hresult), (Outcome::Failed, 0x8007_232D));
    assert_eq!(v.cause.label(), "dns:refused");
    assert!(out.tried.is_empty() && out.host.is_none());
}

#[tokio::test]
async fn a_target_that_does_not_resolve_is_skipped() {
    let live = reference_host().await;
    let lines = [
        "host-record=kms2.kms.test,127.0.0.1".to_owned(),
        srv("ghost.kms.test", 1688, 0, 0),
        srv("kms2.kms.test", live.addr().port(), 1, 0),
    ];
    let Some(dns) = dns(&lines) else { return };
    let d = Discovery::new(config(&dns), HostGate::default()).unwrap();
    let out = d
        .attempt(
            &mut ClientDiscovery::default(),
            &mut clients(),
            &mut StdRng::seed_from_u64(1),
        )
        .await;
    assert_eq!(out.tried.len(), 1);
    assert_eq!(out.tried[0].cause, "resolve_failed");
    assert_eq!(out.tried[0].verdict.cause_code, Some(0x8007_2AF9));
    assert!(out.tried[0].addr.is_none());
    assert!(
        out.tried[0].detail.contains("dns:nxdomain"),
        "{}",
        out.tried[0].detail
    );
    assert_eq!(out.host.unwrap().target, "kms2.kms.test");
}

#[tokio::test]
async fn a_silent_dns_server_ends_at_the_deadline() {
    // A socket that receives the query and never answers: a DNS server that is down
    // without the host telling (no ICMP).
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let cfg = DiscoveryConfig {
        dns_server: Some(silent.local_addr().unwrap()),
        dns_timeout: Duration::from_millis(400),
        ..DiscoveryConfig::new(DOMAIN)
    };
    let d = Discovery::new(cfg, HostGate::default()).unwrap();
    let started = Instant::now();
    let out = d
        .attempt(
            &mut ClientDiscovery::default(),
            &mut clients(),
            &mut StdRng::seed_from_u64(1),
        )
        .await;
    let took = started.elapsed();
    let e = out.dns_error.as_ref().unwrap();
    assert_eq!(e.cause, DnsCause::Timeout, "{e}");
    assert_eq!(out.verdict().hresult, 0x8007_05B4);
    assert!(took >= Duration::from_millis(400), "{took:?}");
    assert!(
        took < Duration::from_secs(3),
        "bounded by the deadline: {took:?}"
    );
}

#[tokio::test]
async fn the_cached_host_is_reused_then_forgotten_when_it_fails() {
    let (a, b) = (reference_host().await, reference_host().await);
    let lines = [
        "host-record=kms1.kms.test,127.0.0.1".to_owned(),
        "host-record=kms2.kms.test,127.0.0.1".to_owned(),
        srv("kms1.kms.test", a.addr().port(), 0, 50),
        srv("kms2.kms.test", b.addr().port(), 0, 50),
    ];
    let Some(dns) = dns(&lines) else { return };
    // A TTL of 0 makes every draw ask DNS, so "no query" can only mean "the cached host".
    let cfg = DiscoveryConfig {
        dns_ttl: Some(Duration::ZERO),
        ..config(&dns)
    };
    let d = Discovery::new(cfg, HostGate::default()).unwrap();
    let mut state = ClientDiscovery::default();
    let mut rng = StdRng::seed_from_u64(5);
    let mut hosts = clients();
    let first = d.attempt(&mut state, &mut hosts, &mut rng).await;
    assert!(first.queried && !first.from_cache);
    let chosen = first.host.clone().unwrap();
    for _ in 0..20 {
        let out = d.attempt(&mut state, &mut hosts, &mut rng).await;
        assert!(
            out.from_cache && !out.queried,
            "cached host first, no DNS query"
        );
        assert_eq!(out.host.as_ref(), Some(&chosen));
    }
    // The cached host goes away: the client tries it, forgets it, asks DNS, fails over.
    let (gone, other) = if chosen.target == "kms1.kms.test" {
        (a, b)
    } else {
        (b, a)
    };
    gone.shutdown().await;
    hosts.disconnect_all();
    let out = d.attempt(&mut state, &mut hosts, &mut rng).await;
    assert!(out.from_cache && out.queried);
    assert_eq!(out.tried.len(), 1);
    assert_eq!(out.tried[0].host, chosen.host());
    assert_eq!(out.host.as_ref().unwrap().port, other.addr().port());
    assert_eq!(state.cached_host().unwrap().port, other.addr().port());

    // Without the cache every attempt draws again (and asks DNS, TTL 0).
    let cfg = DiscoveryConfig {
        host_cache: false,
        dns_ttl: Some(Duration::ZERO),
        ..config(&dns)
    };
    let d = Discovery::new(cfg, HostGate::default()).unwrap();
    let mut state = ClientDiscovery::default();
    for _ in 0..3 {
        let out = d.attempt(&mut state, &mut hosts, &mut rng).await;
        assert!(!out.from_cache && out.queried);
    }
    assert!(state.cached_host().is_none());
}

#[tokio::test]
async fn a_non_loopback_host_is_not_contacted_unless_confirmed() {
    let live = reference_host().await;
    let lines = [
        // TEST-NET-1 (RFC 5737): never routed; nothing may be sent there anyway.
        "host-record=remote.kms.test,192.0.2.10".to_owned(),
        "host-record=kms2.kms.test,127.0.0.1".to_owned(),
        srv("remote.kms.test", 1688, 0, 0),
        srv("kms2.kms.test", live.addr().port(), 1, 0),
    ];
    let Some(dns) = dns(&lines) else { return };
    let d = Discovery::new(config(&dns), HostGate::default()).unwrap();
    let started = Instant::now();
    let out = d
        .attempt(
            &mut ClientDiscovery::default(),
            &mut clients(),
            &mut StdRng::seed_from_u64(1),
        )
        .await;
    assert_eq!(out.tried[0].cause, "not_confirmed");
    assert!(out.tried[0].detail.contains("192.0.2.10"));
    assert_eq!(out.host.unwrap().target, "kms2.kms.test");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "no connect was attempted"
    );
}

// -------------------------------------------------------------------------------------------
// kmsload activate --discover
// -------------------------------------------------------------------------------------------

fn kmsload(args: &[&str]) -> (i32, String, String) {
    let out = crate::util::kmsload(args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn activate_discover_fails_over_and_says_so() {
    let live = host::start_background(
        ServerOptions {
            host: host::HostConfig {
                charged: true,
                ..host::HostConfig::default()
            },
            ..ServerOptions::default()
        },
        1,
    )
    .unwrap();
    let dead = dead_port();
    let lines = [
        "host-record=kms1.kms.test,127.0.0.1".to_owned(),
        "host-record=kms2.kms.test,127.0.0.1".to_owned(),
        srv("kms1.kms.test", dead, 0, 0),
        srv("kms2.kms.test", live.addr().port(), 10, 0),
    ];
    let Some(dns) = dns(&lines) else { return };
    let server = dns.arg();
    let (code, out, err) = kmsload(&["activate", "--discover", DOMAIN, "--dns-server", &server]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("_vlmcs._tcp.kms.test"), "{out}");
    assert!(
        out.contains(&format!("kms1.kms.test:{dead} (priority 0, weight 0)")),
        "{out}"
    );
    assert!(
        out.contains(&format!("kms1.kms.test:{dead}: connect_refused")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "Answered by:         kms2.kms.test:{}",
            live.addr().port()
        )),
        "{out}"
    );

    let (code, out, err) = kmsload(&[
        "activate",
        "--discover",
        DOMAIN,
        "--dns-server",
        &server,
        "--json",
        "--srv-order",
        "ordered",
        "--no-host-cache",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let disc = &v["discovery"];
    assert_eq!(disc["domain"], DOMAIN);
    assert_eq!(disc["records"].as_array().unwrap().len(), 2);
    assert_eq!(disc["records"][0]["target"], "kms1.kms.test");
    assert_eq!(disc["records"][0]["port"], dead);
    assert_eq!(disc["records"][1]["priority"], 10);
    assert_eq!(disc["tried"][0]["host"], format!("kms1.kms.test:{dead}"));
    assert_eq!(disc["tried"][0]["cause"], "connect_refused");
    let answered = format!("kms2.kms.test:{}", live.addr().port());
    assert_eq!(disc["host"], answered);
    assert_eq!(v["host"], answered);
    assert_eq!(v["outcome"], "activated");
}

#[test]
fn activate_discover_without_a_record_is_0x8007232b() {
    let Some(dns) = dns(&["host-record=kms1.kms.test,127.0.0.1".to_owned()]) else {
        return;
    };
    let (code, out, err) = kmsload(&["activate", "--discover", DOMAIN, "--dns-server", &dns.arg()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("0x8007232B"), "{out}");
    assert!(out.contains("dns:nxdomain"), "{out}");
    let (code, out, _) = kmsload(&[
        "activate",
        "--discover",
        DOMAIN,
        "--dns-server",
        &dns.arg(),
        "--json",
    ]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(v["hresult"], "0x8007232B");
    assert_eq!(v["cause"], "dns:nxdomain");
    assert_eq!(v["discovery"]["records"].as_array().unwrap().len(), 0);
    assert!(v["host"].is_null());
}

#[test]
fn activate_discover_input_errors_exit_2() {
    for args in [
        &["activate", "--discover", "bad domain"][..],
        &[
            "activate",
            "--discover",
            "kms.test",
            "--dns-server",
            "dns.example",
        ],
        &[
            "activate",
            "--discover",
            "kms.test",
            "--srv-order",
            "weighted",
        ],
        &["activate", "127.0.0.1", "--discover", "kms.test"],
        &["activate", "--dns-server", "127.0.0.1"],
    ] {
        let (code, out, err) = kmsload(args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(!err.trim().is_empty());
    }
}

// -------------------------------------------------------------------------------------------
// kmsload run with discover = "DOMAIN"
// -------------------------------------------------------------------------------------------

/// 400 attempts of 40 renewing clients over three records: a dead priority-0 host and two
/// live priority-1 hosts weighted 75/25. Every client's first attempt fails over from the
/// dead host; with the host cache, later attempts go straight to the cached host; the split
/// of clients follows the weights.
#[test]
fn run_discovers_per_client_and_splits_by_host() {
    let charged = || ServerOptions {
        host: host::HostConfig {
            charged: true,
            ..host::HostConfig::default()
        },
        ..ServerOptions::default()
    };
    let heavy = host::start_background(charged(), 1).unwrap();
    let light = host::start_background(charged(), 1).unwrap();
    let dead = dead_port();
    let lines = [
        "host-record=dead.kms.test,127.0.0.1".to_owned(),
        "host-record=heavy.kms.test,127.0.0.1".to_owned(),
        "host-record=light.kms.test,127.0.0.1".to_owned(),
        srv("dead.kms.test", dead, 0, 0),
        srv("heavy.kms.test", heavy.addr().port(), 1, 75),
        srv("light.kms.test", light.addr().port(), 1, 25),
    ];
    let Some(dns) = dns(&lines) else { return };
    let dir = crate::util::temp_dir("discover-run");
    let (o, results) = crate::util::run_text(
        &dir,
        &format!(
            r#"
name = "discover-run"
discover = "{DOMAIN}"
dns_server = "{}"
[fleet]
size = 40
products = [{{ product = "Windows 10/11 Enterprise" }}]
[load]
model = "closed"
clients = 4
attempts = 400
"#,
            dns.arg()
        ),
    );
    assert_eq!(o.status.code(), Some(0), "{}", crate::util::show(&o));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(s["attempts"], 400);
    assert_eq!(s["target"]["address"], format!("discover:{DOMAIN}"));
    let by_host = s["by_host"].as_array().expect("by_host");
    let find = |name: &str| {
        by_host
            .iter()
            .find(|h| h["host"].as_str().unwrap().starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {by_host:?}"))
    };
    let (h, l, d) = (find("heavy"), find("light"), find("dead"));
    assert_eq!(d["attempts"], 0, "the dead host answered nothing");
    // Each client fails over once (its first attempt), then uses its cached host.
    assert_eq!(d["failed_tries"], 40, "{d}");
    let failovers = h["failovers_in"].as_u64().unwrap() + l["failovers_in"].as_u64().unwrap();
    assert_eq!(failovers, 40);
    assert!(h["failover_cost_us_mean"].as_u64().is_some());
    let (ha, la) = (
        h["attempts"].as_u64().unwrap(),
        l["attempts"].as_u64().unwrap(),
    );
    assert_eq!(ha + la, 400);
    assert_eq!(
        h["activated"].as_u64().unwrap() + l["activated"].as_u64().unwrap(),
        400
    );
    // 40 clients choose once each: share 76/101 (RFC 2782's inclusive draw), binomial
    // sd ~2.7 clients, 10 attempts per client: heavy gets 301 ± 5 sd ≈ ±137 attempts.
    assert!(ha > 164 && ha < 400, "heavy {ha}, light {la}");
    let md = std::fs::read_to_string(results.join("report.md")).unwrap();
    assert!(md.contains("## Hosts found by discovery"), "{md}");
    assert!(md.contains("40 attempts failed over"), "{md}");
}

#[test]
fn run_refuses_discovery_keys_without_discover_and_a_bad_domain() {
    let dir = crate::util::temp_dir("discover-bad");
    for (text, key) in [
        ("dns_server = \"127.0.0.1\"\n", "dns_server"),
        ("discover = \"bad domain\"\n", "discover"),
        (
            "discover = \"kms.test\"\nsrv_order = \"weighted\"\n",
            "srv_order",
        ),
        (
            "discover = \"kms.test\"\nconfirm_discovered = \"other.test\"\n",
            "confirm_discovered",
        ),
        (
            "discover = \"kms.test\"\ntarget = \"127.0.0.1\"\n",
            "discover",
        ),
    ] {
        let (o, _) = crate::util::run_text(&dir, &format!("{text}[load]\nattempts = 1\n"));
        assert_eq!(
            o.status.code(),
            Some(2),
            "{text}: {}",
            crate::util::show(&o)
        );
        assert!(
            crate::util::stderr(&o).contains(key),
            "{text}: {}",
            crate::util::show(&o)
        );
    }
}
