//! End to end: `kmsload validate --json` against `kmsload host` in each configuration a
//! rollout can meet (issue 13): the verdict and the check that decides it are what a reader
//! of the issue expects. Every host is a child process on 127.0.0.1:0. The `discover` tests
//! put the hosts behind a real DNS server (dnsmasq, `tests/it/util/dnsmasq.rs`); without dnsmasq
//! they print one line and pass, except under `CI=true`.

use std::collections::BTreeMap;
use std::io::BufReader;
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::command;

/// `kmsload host --listen 127.0.0.1:0 -q ARGS`, killed on drop.
struct HostProcess {
    child: Child,
    addr: String,
}

impl HostProcess {
    fn start(args: &[&str]) -> Self {
        let mut child = command()
            .args(["host", "--listen", "127.0.0.1:0", "-q"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kmsload host starts");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let addr = crate::util::listening_addr(&mut stderr);
        // The rest of stderr (a few start-up lines, -q silences the per-request log) is left
        // in the pipe; it stays far below the pipe's capacity.
        std::mem::forget(stderr);
        Self { child, addr }
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `kmsload validate ADDR --json ARGS`: the exit code, the report and each check's status.
struct Validated {
    code: Option<i32>,
    report: Value,
    status: BTreeMap<String, String>,
}

impl Validated {
    fn check(&self, name: &str) -> &Value {
        self.report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {:#}", self.report))
    }

    fn status(&self, name: &str) -> &str {
        self.status
            .get(name)
            .unwrap_or_else(|| panic!("no {name} in {:#}", self.report))
    }

    fn verdict(&self) -> &str {
        self.report["verdict"].as_str().unwrap()
    }

    /// Every check not named in `except` has `status`.
    fn all_host_checks_are(&self, status: &str, except: &[&str]) {
        for name in HOST_CHECKS.iter().filter(|n| !except.contains(n)) {
            assert_eq!(self.status(name), status, "{name}: {:#}", self.check(name));
        }
    }
}

const HOST_CHECKS: [&str; 9] = [
    "tcp.reach",
    "rpc.bind",
    "kms.protocols",
    "kms.integrity",
    "kms.products",
    "kms.threshold",
    "kms.identity",
    "kms.intervals",
    "kms.clock",
];

fn validate(addr: &str, args: &[&str]) -> Validated {
    let mut all = vec![addr];
    all.extend(args);
    validate_args(&all)
}

/// `kmsload validate --json ARGS`, its exit code, report and each check's status.
fn validate_args(args: &[&str]) -> Validated {
    let out = run(command().args(["validate", "--json"]).args(args));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let status = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    Validated {
        code: out.status.code(),
        report,
        status,
    }
}

/// Runs `cmd`, killing it if it has not finished within 60 s (validate must never hang).
fn run(cmd: &mut Command) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!("kmsload validate still running after 60 s");
        }
    }
}

#[test]
fn a_charged_genuine_like_host_passes_every_check() {
    let host = HostProcess::start(&["--charged"]);
    let v = validate(&host.addr, &[]);
    assert_eq!(v.verdict(), "pass", "{:#}", v.report);
    assert_eq!(v.code, Some(0));
    assert_eq!(v.report["target"], host.addr);
    v.all_host_checks_are("pass", &[]);
    // Without --discover the DNS checks and failover say why they did not run.
    for name in [
        "dns.srv",
        "dns.targets",
        "dns.redundancy",
        "dns.order",
        "kms.failover",
    ] {
        assert_eq!(v.status(name), "skip");
        assert!(
            v.check(name)["value"]
                .as_str()
                .unwrap()
                .contains("--discover")
        );
    }
    assert!(
        v.check("kms.clock")["detail"]
            .as_str()
            .unwrap()
            .contains("0xC004F06C")
    );
    assert_eq!(v.report["host_steps"].as_array().unwrap().len(), 3);
}

#[test]
fn a_fresh_host_fails_the_threshold_and_only_that() {
    let host = HostProcess::start(&[]);
    let v = validate(&host.addr, &[]);
    assert_eq!(v.verdict(), "fail");
    assert_eq!(v.code, Some(1));
    assert_eq!(v.status("kms.threshold"), "fail");
    let value = v.check("kms.threshold")["value"].as_str().unwrap();
    assert!(
        value.contains("Windows 10/11 Enterprise: count 1 of 25"),
        "{value}"
    );
    assert!(
        v.check("kms.threshold")["hint"]
            .as_str()
            .unwrap()
            .contains("--charge")
    );
    v.all_host_checks_are("pass", &["kms.threshold"]);
}

#[test]
fn charging_a_fresh_host_counts_one_per_new_client_up_to_the_threshold() {
    let host = HostProcess::start(&[]);
    let v = validate(&host.addr, &["--check", "kms.threshold", "--charge", "25"]);
    assert_eq!(v.status("kms.threshold"), "pass", "{:#}", v.report);
    let detail = v.check("kms.threshold")["detail"].as_str().unwrap();
    // Windows: the client and server fixed CMIDs count 2; 25 new clients make 27.
    assert!(
        detail.contains("Windows 10/11 Enterprise: 25 new clients raised the count 2 → 27"),
        "{detail}"
    );
    // Office stops at its cap, 2 × 5.
    assert!(detail.contains("(cap 10)"), "{detail}");
    assert!(detail.contains("a repeated one did not"), "{detail}");
    // Only the selected check (tcp.reach and rpc.bind are printed only when they fail).
    assert_eq!(v.status.len(), 1, "{:#}", v.report);
}

#[test]
fn a_host_key_that_does_not_cover_a_product_fails_products() {
    let host = HostProcess::start(&["--charged", "--host-key", "Windows Server 2016"]);
    let v = validate(&host.addr, &[]);
    assert_eq!(v.verdict(), "fail");
    assert_eq!(v.status("kms.products"), "fail");
    let value = v.check("kms.products")["value"].as_str().unwrap();
    assert!(
        value.contains("Windows Server 2025 Standard: 0xC004F042"),
        "{value}"
    );
    assert!(
        value.contains("Office LTSC Professional Plus 2024: 0xC004F042"),
        "{value}"
    );
    assert!(!value.contains("Windows 10/11 Enterprise"), "{value}");
    // A list the key covers passes.
    let v = validate(
        &host.addr,
        &[
            "--product",
            "Windows 10/11 Enterprise",
            "--product",
            "Windows Server 2016 Standard",
        ],
    );
    assert_eq!(v.status("kms.products"), "pass", "{:#}", v.report);
}

#[test]
fn a_host_without_time_check_warns_on_the_clock_and_strict_fails() {
    let host = HostProcess::start(&["--charged", "--no-time-check"]);
    let v = validate(&host.addr, &[]);
    assert_eq!(v.verdict(), "warn");
    assert_eq!(v.code, Some(0));
    assert_eq!(v.status("kms.clock"), "warn");
    assert_eq!(v.check("kms.clock")["value"], "host accepts any time");
    v.all_host_checks_are("pass", &["kms.clock"]);
    let strict = validate(&host.addr, &["--strict", "--check", "kms.clock"]);
    assert_eq!(strict.code, Some(1));
}

#[test]
fn a_host_that_closes_after_each_response_warns_on_the_bind() {
    let host = HostProcess::start(&["--charged", "--close-after-response"]);
    let v = validate(&host.addr, &[]);
    assert_eq!(v.verdict(), "warn", "{:#}", v.report);
    assert_eq!(v.status("rpc.bind"), "warn");
    v.all_host_checks_are("pass", &["rpc.bind"]);
}

#[test]
fn an_emulator_that_echoes_the_v6_iv_is_flagged() {
    let host = HostProcess::start(&["--charged", "--echo-iv"]);
    let v = validate(&host.addr, &[]);
    assert_eq!(v.status("kms.integrity"), "warn", "{:#}", v.report);
    assert!(
        v.check("kms.integrity")["value"]
            .as_str()
            .unwrap()
            .contains("emulator")
    );
    v.all_host_checks_are("pass", &["kms.integrity"]);
}

#[test]
fn other_host_configurations_fail_or_warn_the_check_they_concern() {
    // A Server 2012 host: no V6.
    let host = HostProcess::start(&["--charged", "--max-protocol", "5"]);
    let v = validate(&host.addr, &["--check", "kms.protocols"]);
    assert_eq!(v.status("kms.protocols"), "fail", "{:#}", v.report);
    assert!(
        v.check("kms.protocols")["value"]
            .as_str()
            .unwrap()
            .starts_with("V6")
    );
    drop(host);
    // Non-default intervals.
    let host = HostProcess::start(&["--charged", "--activation-interval", "60"]);
    let v = validate(&host.addr, &["--check", "kms.intervals"]);
    assert_eq!(v.status("kms.intervals"), "warn", "{:#}", v.report);
    drop(host);
    // An ePID whose activation date lies in the future.
    let host = HostProcess::start(&[
        "--charged",
        "--epid",
        "03612-04918-014-532568-03-1033-26100.0000-0012099",
    ]);
    let v = validate(&host.addr, &["--check", "kms.identity"]);
    assert_eq!(v.status("kms.identity"), "fail", "{:#}", v.report);
    assert!(
        v.check("kms.identity")["value"]
            .as_str()
            .unwrap()
            .contains("after today")
    );
}

/// NDR32-only hosts (py-kms, vlmcsd `-N0`), with or without BTFN: Windows clients fall back
/// to NDR32, so every check passes. A host that accepts NDR64 (rejecting NDR32 in the bind)
/// but closes on the alter_context Windows then sends cannot serve Windows clients: the
/// bind fails and nothing else can run.
#[test]
fn ndr32_only_hosts_pass_and_a_host_refusing_alter_context_fails_the_bind() {
    for flags in [
        &["--no-ndr64"][..],
        &["--no-ndr64", "--no-btfn"],
        &["--no-btfn"],
    ] {
        let mut args = vec!["--charged"];
        args.extend_from_slice(flags);
        let host = HostProcess::start(&args);
        let v = validate(&host.addr, &[]);
        assert_eq!(v.verdict(), "pass", "{flags:?}: {:#}", v.report);
        assert_eq!(v.status("rpc.bind"), "pass", "{flags:?}");
        v.all_host_checks_are("pass", &[]);
    }
    let host = HostProcess::start(&["--charged", "--no-alter-context"]);
    let v = validate(&host.addr, &[]);
    assert_eq!(v.verdict(), "fail", "{:#}", v.report);
    assert_eq!(v.status("rpc.bind"), "fail");
    assert_eq!(v.status("kms.protocols"), "skip");
    assert_eq!(v.status("kms.products"), "skip");
}

#[test]
fn nothing_listening_fails_tcp_reach_at_once_and_skips_the_rest() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let started = Instant::now();
    let v = validate(&addr, &[]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(v.verdict(), "fail");
    assert_eq!(v.code, Some(1));
    assert_eq!(v.status("tcp.reach"), "fail");
    assert_eq!(v.check("tcp.reach")["value"], "connection refused");
    v.all_host_checks_are("skip", &["tcp.reach"]);
    // tcp.reach is shown when it fails even if only another check was asked for.
    let v = validate(&addr, &["--check", "kms.clock"]);
    assert_eq!(v.status("tcp.reach"), "fail");
    assert_eq!(v.status("kms.clock"), "skip");
}

#[test]
fn a_silent_host_fails_rpc_bind_within_one_deadline_and_skips_the_rest() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    // Accepts and holds every connection without a byte of answer.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().take(8) {
            held.push(s);
        }
        std::thread::sleep(Duration::from_secs(60));
    });
    let v = validate(&addr, &["--timeout", "1s", "--connect-timeout", "1s"]);
    assert_eq!(v.verdict(), "fail");
    assert_eq!(v.status("tcp.reach"), "pass");
    assert_eq!(v.status("rpc.bind"), "fail");
    assert!(
        v.check("rpc.bind")["detail"]
            .as_str()
            .unwrap()
            .contains("timeout"),
        "{:#}",
        v.report
    );
    v.all_host_checks_are("skip", &["tcp.reach", "rpc.bind"]);
}

#[test]
fn junit_has_one_test_case_per_check() {
    let host = HostProcess::start(&[]);
    let path = std::env::temp_dir().join(format!("kmsload-validate-{}.xml", std::process::id()));
    let v = validate(&host.addr, &["--junit", path.to_str().unwrap()]);
    let xml = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(xml.matches("<testcase ").count(), v.status.len());
    assert!(xml.contains("name=\"kms.threshold\"><failure"), "{xml}");
    assert!(xml.contains("name=\"dns.srv\"><skipped"), "{xml}");
}

#[test]
fn bad_input_exits_2_before_anything_is_sent() {
    let dir = std::env::temp_dir().join(format!("kmsload-validate-in-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let list = dir.join("fleet.txt");
    std::fs::write(&list, "Windows 10/11 Enterprise\nWindows 99 Ultra\n").unwrap();
    let cases: [&[&str]; 6] = [
        &["--check", "kms.clocks"],
        &["--product", "Windows 99 Ultra"],
        &["--products-from", list.to_str().unwrap()],
        &["--products-from", "/nonexistent/fleet.txt"],
        &["--charge", "0"],
        &["--confirm-target", "127.0.0.1"],
    ];
    for args in cases {
        // Port 9 on loopback: nothing would answer, and nothing must be tried.
        let out = run(command().args(["validate", "127.0.0.1:9"]).args(args));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.is_empty(), "{args:?}");
        if args[0] == "--products-from" && !args[1].starts_with("/nonexistent") {
            assert!(err.contains("line 2: unknown product"), "{err}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

mod discover {
    use std::net::UdpSocket;

    use super::*;
    use crate::util::dnsmasq::{self, Dnsmasq};

    /// Held by every test of this module while its dnsmasq runs: the fixture finds a free
    /// port by binding and releasing it, so two servers starting at once can pick the same
    /// one, and a test may then query a server that another test stops.
    static DNS_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn dns_lock() -> std::sync::MutexGuard<'static, ()> {
        DNS_LOCK
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// dnsmasq serving `kms.test` with the host records of kms1 and kms2 and `lines`.
    fn dns(lines: &[String]) -> Option<Dnsmasq> {
        let mut all = vec![
            "local=/kms.test/".to_owned(),
            "host-record=kms1.kms.test,127.0.0.1".to_owned(),
            "host-record=kms2.kms.test,127.0.0.1".to_owned(),
        ];
        all.extend(lines.iter().cloned());
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        Dnsmasq::start(&refs)
    }

    fn srv(target: &str, port: &str, priority: u16, weight: u16) -> String {
        format!("srv-host=_vlmcs._tcp.kms.test,{target},{port},{priority},{weight}")
    }

    fn port(addr: &str) -> &str {
        addr.rsplit(':').next().unwrap()
    }

    fn validate_domain(dns: &Dnsmasq, domain: &str, args: &[&str]) -> Validated {
        let server = dns.arg();
        let mut all = vec!["--discover", domain, "--dns-server", &server];
        all.extend(args);
        validate_args(&all)
    }

    #[test]
    fn two_good_hosts_behind_the_domain_pass_and_fail_over_in_order() {
        let _serial = dns_lock();
        let (h1, h2) = (
            HostProcess::start(&["--charged"]),
            HostProcess::start(&["--charged"]),
        );
        let Some(dns) = dns(&[
            srv("kms1.kms.test", port(&h1.addr), 0, 75),
            srv("kms2.kms.test", port(&h2.addr), 0, 25),
        ]) else {
            return;
        };
        let v = validate_domain(&dns, "kms.test", &[]);
        assert_eq!(v.verdict(), "pass", "{:#}", v.report);
        assert_eq!(v.code, Some(0));
        assert_eq!(v.report["domain"], "kms.test");
        assert!(v.report.get("target").is_none());
        for name in [
            "dns.srv",
            "dns.targets",
            "dns.redundancy",
            "dns.order",
            "kms.failover",
        ] {
            assert_eq!(v.status(name), "pass", "{name}: {:#}", v.check(name));
        }
        v.all_host_checks_are("pass", &[]);
        let order = v.check("dns.order")["value"].as_str().unwrap();
        assert!(
            order.contains(&format!("kms1.kms.test:{} 75 %", port(&h1.addr))),
            "{order}"
        );
        assert!(
            order.contains(&format!("kms2.kms.test:{} 25 %", port(&h2.addr))),
            "{order}"
        );
        let failover = v.check("kms.failover")["value"].as_str().unwrap();
        assert_eq!(
            failover,
            format!(
                "with kms1.kms.test:{} down, kms2.kms.test:{} answered",
                port(&h1.addr),
                port(&h2.addr)
            )
        );
        // Every host was checked: both appear in the merged line, or, when their figures
        // round to the same text, the line says it stands for both.
        let reach = v.check("tcp.reach")["value"].as_str().unwrap();
        assert!(
            (reach.contains(&h1.addr) && reach.contains(&h2.addr))
                || reach.starts_with("all 2 hosts: "),
            "{reach}"
        );
    }

    #[test]
    fn one_host_warns_on_redundancy_and_has_nothing_to_fail_over_to() {
        let _serial = dns_lock();
        let h1 = HostProcess::start(&["--charged"]);
        let Some(dns) = dns(&[srv("kms1.kms.test", port(&h1.addr), 0, 0)]) else {
            return;
        };
        let v = validate_domain(&dns, "kms.test", &[]);
        assert_eq!(v.verdict(), "warn", "{:#}", v.report);
        assert_eq!(v.status("dns.redundancy"), "warn");
        assert_eq!(v.status("kms.failover"), "skip");
        v.all_host_checks_are("pass", &[]);
    }

    #[test]
    fn a_dead_first_host_fails_reach_and_failover_names_it() {
        let _serial = dns_lock();
        let dead = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port().to_string()
        };
        let h2 = HostProcess::start(&["--charged"]);
        let Some(dns) = dns(&[
            srv("kms1.kms.test", &dead, 0, 0),
            srv("kms2.kms.test", port(&h2.addr), 10, 0),
        ]) else {
            return;
        };
        let v = validate_domain(&dns, "kms.test", &[]);
        assert_eq!(v.verdict(), "fail");
        assert_eq!(v.code, Some(1));
        assert_eq!(v.status("tcp.reach"), "fail");
        let reach = v.check("tcp.reach")["value"].as_str().unwrap();
        assert!(reach.contains(&format!("kms1.kms.test:{dead}")), "{reach}");
        assert!(!reach.contains("kms2"), "{reach}");
        assert_eq!(v.status("kms.failover"), "fail");
        let failover = v.check("kms.failover")["value"].as_str().unwrap();
        assert!(
            failover.contains("failed checks on kms1.kms.test"),
            "{failover}"
        );
        // The next host in order did answer.
        let detail = v.check("kms.failover")["detail"].as_str().unwrap();
        assert!(
            detail.contains(&format!("answered: kms2.kms.test:{}", port(&h2.addr))),
            "{detail}"
        );
    }

    #[test]
    fn no_record_is_0x8007232b_and_nothing_else_runs() {
        let _serial = dns_lock();
        let Some(dns) = dns(&[]) else {
            return;
        };
        let v = validate_domain(&dns, "kms.test", &[]);
        assert_eq!(v.verdict(), "fail");
        assert_eq!(v.code, Some(1));
        assert_eq!(v.status("dns.srv"), "fail");
        assert_eq!(v.check("dns.srv")["value"], "0x8007232B dns:nxdomain");
        for (name, status) in &v.status {
            if name != "dns.srv" {
                assert_eq!(status, "skip", "{name}");
            }
        }
    }

    #[test]
    fn a_target_that_does_not_resolve_fails_dns_targets() {
        let _serial = dns_lock();
        let h2 = HostProcess::start(&["--charged"]);
        let Some(dns) = dns(&[
            srv("nowhere.kms.test", "1688", 0, 0),
            srv("kms2.kms.test", port(&h2.addr), 0, 0),
        ]) else {
            return;
        };
        let v = validate_domain(&dns, "kms.test", &["--check", "dns.targets,dns.redundancy"]);
        assert_eq!(v.status("dns.targets"), "fail", "{:#}", v.report);
        assert!(
            v.check("dns.targets")["value"]
                .as_str()
                .unwrap()
                .contains("nowhere.kms.test")
        );
        assert_eq!(v.status("dns.redundancy"), "warn");
    }

    #[test]
    fn a_silent_dns_server_fails_dns_srv_at_its_deadline() {
        if dnsmasq::binary_or_skip("a_silent_dns_server_fails_dns_srv_at_its_deadline").is_none() {
            return;
        }
        // Receives queries and never answers.
        // On 127.0.0.2: a port the dnsmasq fixture just probed and released on 127.0.0.1
        // cannot be taken by this socket while another test starts its server.
        let silent = UdpSocket::bind("127.0.0.2:0").unwrap();
        let addr = silent.local_addr().unwrap().to_string();
        let v = validate_args(&[
            "--discover",
            "kms.test",
            "--dns-server",
            &addr,
            "--dns-timeout",
            "1s",
        ]);
        assert_eq!(v.status("dns.srv"), "fail", "{:#}", v.report);
        assert!(
            v.check("dns.srv")["value"]
                .as_str()
                .unwrap()
                .contains("dns:timeout")
        );
        drop(silent);
    }

    #[test]
    fn discover_with_a_host_or_dns_flags_without_discover_are_bad_input() {
        for args in [
            &["validate", "127.0.0.1:9", "--discover", "kms.test"][..],
            &["validate", "127.0.0.1:9", "--dns-server", "127.0.0.1:53"][..],
            &["validate", "--discover", "bad domain"][..],
        ] {
            let out = run(command().args(args));
            assert_eq!(out.status.code(), Some(2), "{args:?}");
            assert!(out.stdout.is_empty(), "{args:?}");
        }
    }
}

/// A host whose reported count never moves (stuck at 30, past Windows' N but below its
/// 2 × N cap): `--charge` sees a new client leave the count where it was and fails
/// `kms.threshold`, naming the counts. The host is the reference model behind the library's
/// RPC session, with the count of every response overwritten.
#[test]
fn charging_a_host_whose_count_does_not_rise_fails_the_threshold() {
    use kmsload::host::{Decision, HostConfig, HostModel};
    use kmsload::netio::PduReader;
    use kmsload::wire::kms::HostRequest;
    use kmsload::wire::session::{HostAction, HostRpcConfig, HostSession};
    use tokio::io::AsyncWriteExt;

    use crate::util::now;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let config = HostConfig {
                charged: true,
                ..HostConfig::default()
            };
            let model = std::sync::Arc::new(std::sync::Mutex::new(
                HostModel::new(config, now()).unwrap(),
            ));
            loop {
                let (mut stream, _) = tokio::select! {
                    a = listener.accept() => a.unwrap(),
                    _ = stop_rx.changed() => return,
                };
                let model = model.clone();
                tokio::spawn(async move {
                    let mut session = HostSession::new(HostRpcConfig::default(), 1);
                    let mut reader = PduReader::default();
                    while let Ok(Ok(pdu)) =
                        tokio::time::timeout(Duration::from_secs(10), reader.next_pdu(&stream))
                            .await
                    {
                        let action = session.handle_pdu(pdu, |payload| {
                            let request =
                                HostRequest::decode(payload).map_err(|_| 0x8007_000Du32)?;
                            let mut m = model.lock().unwrap();
                            match m.handle(&request.base, now()) {
                                Decision::Respond(mut r) => {
                                    r.base.current_count = 30;
                                    Ok(request.encode_response(&r.base, m.hwid(), [5; 16], [6; 16]))
                                }
                                Decision::Refuse(refusal) => Err(refusal.hresult()),
                            }
                        });
                        match action {
                            HostAction::Send(bytes) => {
                                if stream.write_all(&bytes).await.is_err() {
                                    return;
                                }
                            }
                            HostAction::Close(_) => return,
                        }
                    }
                });
            }
        });
    });
    let v = validate(
        &addr,
        &[
            "--check",
            "kms.threshold",
            "--charge",
            "5",
            "--product",
            "Windows 10/11 Enterprise",
        ],
    );
    let _ = stop_tx.send(true);
    server.join().unwrap();
    assert_eq!(v.status("kms.threshold"), "fail", "{:#}", v.report);
    assert_eq!(v.verdict(), "fail");
    let check = v.check("kms.threshold").to_string();
    assert!(check.contains("charging stopped"), "{check}");
    assert!(
        check.contains("new client 1 moved the count from 30 to 30, expected 31"),
        "{check}"
    );
}
