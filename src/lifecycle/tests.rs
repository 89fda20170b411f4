//! The rules of the simulation, each against a hand-computed expectation; the shipped
//! scenarios with their gates; and the simulation against a real `kmsload host` on loopback.

use std::path::Path;

use super::client::LicenceState;
use super::engine::{CODES, SimOutcome, host_config, simulate, simulate_logged};
use super::results;
use super::spec::{DAY, LifeOverrides, LifeScenario, parse_life};
use crate::scenario::resolve_exact;

fn scenario(text: &str) -> LifeScenario {
    parse_life(
        text,
        Path::new("test.toml"),
        &LifeOverrides::default(),
        &resolve_exact,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn run(text: &str) -> SimOutcome {
    simulate(&scenario(text)).unwrap()
}

const OK: usize = 0;
const LOW: usize = 1;
const NO_HOST: usize = 2;

#[test]
fn steady_state_renewals_are_fleet_over_renewal_interval() {
    // 1000 always-on activated clients, charged host: each renews every 7 days, so
    // 1000 / 7 ≈ 142.9 renewals a day, all successful.
    let o = run(r#"
        duration = "35d"
        [[hosts]]
        charged = true
        [[groups]]
        size = 1000
        products = [{ product = "Windows 10/11 Enterprise" }]
        power = "always"
        state = "activated"
    "#);
    assert_eq!(o.totals[1..].iter().sum::<u64>(), 0, "{:?}", o.totals);
    let days = &o.days[7..35];
    let mean = days.iter().map(|d| d.requests() as f64).sum::<f64>() / days.len() as f64;
    assert!((mean - 1000.0 / 7.0).abs() < 1.0, "{mean}");
    // A day's renewals are the clients whose 7-day phase falls in it: binomial around
    // 142.9 with a standard deviation of about 11; ±3 σ.
    for d in days {
        assert!((110..=176).contains(&d.requests()), "{}", d.requests());
    }
    assert_eq!(o.end_states[LicenceState::Activated as usize], 1000);
    // Validity never drops below 180 - 7 days.
    let left = o.min_validity_days_left.unwrap();
    assert!((172.9..=173.1).contains(&left), "{left}");
}

#[test]
fn below_threshold_clients_never_activate_and_retry_12_times_a_day() {
    // 24 Windows clients on a fresh host: the count tops out at 24 < 25, so nobody
    // activates, and each retries every 2 hours: 24 × 12 = 288 attempts a day.
    let o = run(r#"
        duration = "40d"
        [[groups]]
        size = 24
        products = [{ product = "Windows 10/11 Enterprise" }]
        power = "always"
        state = "new"
    "#);
    assert_eq!(o.totals[OK], 0);
    assert_eq!(o.totals[LOW], o.totals.iter().sum::<u64>());
    for d in &o.days {
        assert_eq!(d.requests(), 288);
        assert_eq!(d.counts, vec![24]);
    }
    assert_eq!(o.pools[0].reached_at, None);
    assert_eq!(o.pools[0].days_below, 40);
    // Initial grace is 30 days: at day 40 they are all "never activated".
    assert_eq!(o.days[28].states[LicenceState::Grace as usize], 24);
    assert_eq!(o.end_states[LicenceState::NeverActivated as usize], 24);
}

#[test]
fn the_25th_client_reaches_the_threshold_and_the_first_24_succeed_on_retry() {
    let o = run(r#"
        duration = "3h"
        [[groups]]
        size = 30
        products = [{ product = "Windows 10/11 Enterprise" }]
        state = "new"
    "#);
    // All 30 try at t = 0 in index order: 24 get 0xC004F038, 6 activate; the 24 retry at
    // 02:00 and activate.
    assert_eq!(o.totals[LOW], 24);
    assert_eq!(o.totals[OK], 30);
    assert_eq!(o.pools[0].reached_at, Some(0));
    assert_eq!(o.hours[2].outcomes[OK], 24);
}

fn outage(days: i64) -> SimOutcome {
    run(&format!(
        r#"
        duration = "{}d"
        [[hosts]]
        charged = true
        down = [["10d", "{}d"]]
        [[groups]]
        size = 200
        products = [{{ product = "Windows 10/11 Enterprise" }}]
        state = "activated"
    "#,
        10 + days + 5,
        10 + days
    ))
}

#[test]
fn an_outage_shorter_than_173_days_loses_nobody() {
    // Each client renewed at most 7 days before the outage: at least 173 days left.
    let o = outage(172);
    assert_eq!(o.lost_activation, 0);
    assert!(o.totals[NO_HOST] > 0);
    assert_eq!(o.end_states[LicenceState::Activated as usize], 200);
    // A longer one loses everyone: validity ends before the host returns.
    let o = outage(181);
    assert_eq!(o.lost_activation, 200);
    assert_eq!(o.min_validity_days_left, Some(0.0));
}

#[test]
fn a_client_off_for_181_days_is_out_of_tolerance() {
    let o = run(r#"
        duration = "182d"
        [[hosts]]
        charged = true
        [[groups]]
        size = 10
        power = "always"
        away = { share = 1.0, windows = [["0d", "200d"]] }
    "#);
    // The last renewal was 0–7 days before the start; at day 182 it is 182–189 days ago:
    // validity (180 d) over, out-of-tolerance grace (30 d) not.
    assert_eq!(o.totals.iter().sum::<u64>(), 0);
    assert_eq!(o.end_states[LicenceState::OutOfTolerance as usize], 10);
    assert_eq!(o.lost_activation, 10);
}

#[test]
fn intervals_come_from_the_hosts_response() {
    // A host that sends a 1-day renewal interval: 100 clients renew 100 times a day.
    let o = run(r#"
        duration = "10d"
        [[hosts]]
        charged = true
        renewal_interval = "1d"
        [[groups]]
        size = 100
        state = "new"
    "#);
    for d in &o.days[2..] {
        assert_eq!(d.requests(), 100);
    }
}

#[test]
fn a_service_rate_turns_excess_requests_into_timeouts() {
    // 100 new clients boot at once against a host answering 10 requests/s: 10 served at
    // t = 0, 90 see 0xC004F074 and retry 2 hours later, when 10 more are served.
    let o = run(r#"
        duration = "3h"
        [[hosts]]
        charged = true
        service_rate = 10
        [[groups]]
        size = 100
        state = "new"
    "#);
    assert_eq!(o.hours[0].outcomes[OK], 10);
    assert_eq!(o.hours[0].outcomes[NO_HOST], 90);
    assert_eq!(o.hours[2].outcomes[OK], 10);
}

#[test]
fn clients_fall_back_to_the_next_host() {
    let o = run(r#"
        duration = "2d"
        [[hosts]]
        charged = true
        down = [["0d", "5d"]]
        [[hosts]]
        charged = true
        [[groups]]
        size = 50
        state = "new"
    "#);
    assert_eq!(o.totals[OK], 50);
    assert_eq!(o.totals[NO_HOST], 0);
}

#[test]
fn skewed_clocks_are_refused_by_the_host_model() {
    let o = run(r#"
        duration = "1h"
        [[hosts]]
        charged = true
        [[groups]]
        size = 10
        state = "new"
        skew = { kind = "fixed", offset = "+5h" }
    "#);
    assert_eq!(
        o.totals[CODES.iter().position(|&c| c == 0xC004_F06C).unwrap()],
        10
    );
}

#[test]
fn leaving_machines_expire_from_the_count() {
    // 30 clients; 10 decommissioned on day 5. 30 days after their last contact they drop
    // out of the table: the count falls to 20 < 25 and the rest get 0xC004F038.
    let o = run(r#"
        duration = "60d"
        [[hosts]]
        charged = false
        [[groups]]
        size = 30
        state = "new"
        leaves = [{ at = "5d", count = 10 }]
    "#);
    assert_eq!(o.days[10].counts, vec![30]);
    assert_eq!(o.days[59].counts, vec![20]);
    assert!(!o.pools[0].dips.is_empty());
    assert_eq!(
        o.days[59].states.iter().sum::<u64>(),
        20,
        "left machines are not counted"
    );
}

#[test]
fn same_file_same_seed_same_result() {
    let text = r#"
        duration = "20d"
        [[groups]]
        size = 300
        power = "office-hours"
        state = "new"
    "#;
    let sc = scenario(text);
    let a = simulate(&sc).unwrap();
    let b = simulate(&sc).unwrap();
    assert_eq!(results::daily_csv(&sc, &a), results::daily_csv(&sc, &b));
    let mut other = sc.clone();
    other.seed = 99;
    let c = simulate(&other).unwrap();
    assert_ne!(a.minutes, c.minutes, "another seed boots at other times");
}

#[test]
fn monday_boot_storm_is_the_peak_and_exports_as_a_run_scenario() {
    let text = r#"
        duration = "21d"
        [[hosts]]
        charged = true
        [[groups]]
        size = 2000
        power = "office-hours"
    "#;
    let sc = scenario(text);
    let o = simulate(&sc).unwrap();
    let (h, n) = results::peak_hour(&o);
    // Monday (weekday 0) between 07:00 and 09:00.
    let abs = sc.start_unix + h as i64 * 3600;
    assert_eq!((abs / DAY + 3) % 7, 0, "peak on a Monday");
    assert!((7..9).contains(&(abs % DAY / 3600)), "{}", abs % DAY / 3600);
    let exported = results::export_peak(&sc, &o, 10.0);
    let plan = crate::scenario::parse_str(
        &exported,
        Path::new("peak.toml"),
        &crate::scenario::Overrides::default(),
        &resolve_exact,
    )
    .unwrap_or_else(|e| panic!("{e}\n{exported}"));
    // The replay offers the same number of arrivals, in 6 minutes instead of 60.
    let crate::scenario::LoadModel::Open(schedule) = &plan.load.model else {
        panic!("open model expected");
    };
    let arrivals = schedule.expected_arrivals(std::time::Duration::from_secs(3600));
    assert!(
        (arrivals - n as f64).abs() < n as f64 * 0.01 + 2.0,
        "{arrivals} vs {n}"
    );
    assert!(schedule.natural_end().unwrap() <= std::time::Duration::from_secs(361));
}

#[test]
fn gates_pass_and_fail() {
    let sc = scenario(
        r#"
        duration = "2d"
        [[groups]]
        size = 24
        state = "new"
        [gates]
        lost_activation = 0
        threshold_reached_within = "1d"
    "#,
    );
    let o = simulate(&sc).unwrap();
    let g = results::evaluate(&sc, &o);
    assert!(g[0].pass);
    assert!(!g[1].pass, "24 clients never reach 25");
}

/// Every shipped lifecycle scenario validates, runs, and passes its gates — except the
/// branch office, whose gate demonstrates a failure.
#[test]
fn shipped_scenarios_run_with_their_gates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("lifecycle-") {
            continue;
        }
        seen += 1;
        let sc = super::load_life(&path, &LifeOverrides::default(), &|s| {
            crate::catalog::lookup::find(s).map_err(|e| e.to_string())
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let o = simulate(&sc).unwrap();
        let gates = results::evaluate(&sc, &o);
        assert!(!gates.is_empty(), "{name} has gates");
        let pass = gates.iter().all(|g| g.pass);
        assert_eq!(
            pass,
            name != "lifecycle-branch-office.toml",
            "{name}: {gates:?}"
        );
        assert!(!results::findings(&sc, &o).is_empty());
    }
    assert_eq!(seen, 5);
}

/// The same fleet and schedule, sent over loopback to a real `kmsload host` (the tokio
/// server around the same model) with its clock moved to each attempt's virtual time, gets
/// the same outcome for every attempt as the simulation decided.
#[tokio::test(flavor = "current_thread")]
async fn simulation_matches_the_reference_host_attempt_by_attempt() {
    use std::sync::Arc;

    use crate::client::{Client, ClientOptions};
    use crate::host::server::{ServerOptions, VirtualClock, start as start_host};
    use crate::wire::FileTime;

    let sc = scenario(
        r#"
        duration = "1d"
        [[hosts]]
        charged = false
        [[groups]]
        size = 27
        products = [
          { product = "Windows 10/11 Enterprise", weight = 3 },
          { product = "Windows Server 2022 Datacenter" },
          { product = "Office LTSC Professional Plus 2021" },
        ]
        power = "office-hours"
        state = "new"
        skew = { kind = "list", offsets = ["0s", "0s", "0s", "0s", "0s", "0s", "0s", "0s", "+5h"] }
    "#,
    );
    let o = simulate_logged(&sc).unwrap();
    assert!(o.log.len() > 40, "{}", o.log.len());
    let codes: std::collections::BTreeSet<u32> = o.log.iter().map(|a| a.code).collect();
    assert!(codes.len() >= 3, "several outcomes exercised: {codes:?}");

    let start = FileTime::from_unix(sc.start_unix, 0);
    let clock = VirtualClock::new(start);
    let host = start_host(ServerOptions {
        host: host_config(&sc, 0),
        clock: Arc::new(clock.clone()),
        ..ServerOptions::default()
    })
    .await
    .expect("host starts on loopback");
    let mut client = Client::new(host.addr(), ClientOptions::default());
    for (k, a) in o.log.iter().enumerate() {
        clock.set(start.offset_secs(a.t));
        let mut iv = [0u8; 16];
        iv[..8].copy_from_slice(&(k as u64).to_le_bytes());
        let got = client.activate(&a.request, iv).await.verdict().hresult;
        assert_eq!(
            got,
            a.code,
            "attempt {k} (client {} at {}): host says 0x{got:08X}, simulation 0x{:08X}",
            a.client,
            results::when(&sc, a.t),
            a.code
        );
    }
    assert!(CODES.contains(&0));
}

/// The key reference in scenarios/README.md ("Simulated fleets") is a valid scenario.
#[test]
fn readme_reference_block_parses() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/README.md"))
            .unwrap();
    let section = readme.split("## Simulated fleets").nth(1).expect("section");
    let block = section
        .split("```text\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    let sc = scenario(block);
    assert_eq!(sc.hosts[0].down, vec![(10 * DAY, 31 * DAY)]);
    assert_eq!(sc.gates.len(), 5);
    assert_eq!(sc.groups[0].joins.len(), 1);
}

#[test]
fn report_html_shows_states_requests_counts_and_outages() {
    let sc = scenario(
        r#"
        name = "html"
        duration = "20d"
        [[hosts]]
        name = "kmsA"
        charged = true
        down = [["5d", "9d"]]
        [[groups]]
        size = 50
        power = "office-hours"
        [gates]
        lost_activation = 0
    "#,
    );
    let o = simulate(&sc).unwrap();
    let gates = results::evaluate(&sc, &o);
    let findings = results::findings(&sc, &o);
    let page = super::html::render(&sc, &o, &gates, &findings);
    for needle in [
        "id=\"states\"",
        "id=\"requests\"",
        "id=\"count-0\"",
        "kmsA down 5d – 9d",
        "N = 25",
        "PASS: all 1 gates passed",
    ] {
        assert!(page.contains(needle), "{needle}");
    }
    assert!(!page.contains("<script"), "self-contained, no scripts");
    assert!(page.contains(&crate::report::svg::esc(&findings[0])));
}

#[test]
fn renewed_within_spreads_validity_left_over_the_span() {
    // Last success uniform over the 180 days before the start: every machine is past its
    // 7-day renewal except those renewed in the last 7 days, so ≈ 173/180 of them renew at
    // once, at the start; none has lapsed.
    let o = run(r#"
        duration = "2d"
        [[hosts]]
        charged = true
        [[groups]]
        size = 1800
        renewed_within = "180d"
    "#);
    let first_minute = u64::from(o.minutes[0]);
    assert!((1690..=1770).contains(&first_minute), "{first_minute}");
    assert_eq!(o.lost_activation, 0);
    let e = parse_life(
        "[[groups]]\nstate = \"new\"\nrenewed_within = \"9d\"\n",
        Path::new("t.toml"),
        &LifeOverrides::default(),
        &resolve_exact,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("applies only to state = \"activated\""), "{e}");
}
