//! What a simulation leaves behind: findings as sentences, gates, and the results directory
//! (summary.json, daily.csv, hourly.csv for the busiest week, report.md), plus the busiest
//! hour exported as a `kmsload run` scenario.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::Path;

use serde_json::{Value, json};

use super::client::LicenceState;
use super::engine::{CODES, Pool, SimOutcome};
use super::spec::{DAY, LifeGate, LifeScenario, show_secs};
use crate::report::gates::GateResult;

/// Version of summary.json's layout.
pub const SCHEMA_VERSION: u32 = 1;

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// `Mon 2026-01-05 09:12` for virtual time `t`.
pub fn when(sc: &LifeScenario, t: i64) -> String {
    let abs = sc.start_unix + t;
    let day = abs.div_euclid(DAY);
    let rem = abs.rem_euclid(DAY);
    let (y, m, d) = crate::wire::base::civil_from_days(day);
    format!(
        "{} {y:04}-{m:02}-{d:02} {:02}:{:02}",
        WEEKDAYS[(day + 3).rem_euclid(7) as usize],
        rem / 3600,
        rem / 60 % 60
    )
}

/// `2026-01-05T09:12:00Z` for virtual time `t`.
pub fn iso(sc: &LifeScenario, t: i64) -> String {
    let abs = sc.start_unix + t;
    let (y, m, d) = crate::wire::base::civil_from_days(abs.div_euclid(DAY));
    let rem = abs.rem_euclid(DAY);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn code_name(code: u32) -> String {
    if code == 0 {
        "ok".to_owned()
    } else {
        format!("0x{code:08X}")
    }
}

/// `1,843`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn app_name(p: &Pool) -> &'static str {
    match p.application {
        crate::host::Application::Windows => "Windows",
        crate::host::Application::Office2010 => "Office 2010",
        crate::host::Application::Office2013 => "Office 2013+",
    }
}

/// `7h32m`, `3d4h`, `42s`: a span in its two largest units.
pub fn span(s: i64) -> String {
    let (d, h, m) = (s / DAY, s % DAY / 3600, s % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h{m:02}m"),
        (d, h, _) => format!("{d}d{h}h"),
    }
}

/// The busiest minute: (minute index, attempts).
pub fn peak_minute(o: &SimOutcome) -> (usize, u64) {
    o.minutes
        .iter()
        .enumerate()
        .max_by_key(|&(i, &n)| (n, std::cmp::Reverse(i)))
        .map_or((0, 0), |(i, &n)| (i, u64::from(n)))
}

/// The busiest hour: (hour index, attempts).
pub fn peak_hour(o: &SimOutcome) -> (usize, u64) {
    o.hours
        .iter()
        .enumerate()
        .map(|(i, h)| (i, h.requests()))
        .max_by_key(|&(i, n)| (n, std::cmp::Reverse(i)))
        .unwrap_or((0, 0))
}

/// The first day of the busiest 7-day window (by attempts).
pub fn busiest_week(o: &SimOutcome) -> usize {
    let days: Vec<u64> = o.days.iter().map(super::engine::Row::requests).collect();
    if days.len() <= 7 {
        return 0;
    }
    (0..=days.len() - 7)
        .max_by_key(|&d| (days[d..d + 7].iter().sum::<u64>(), std::cmp::Reverse(d)))
        .unwrap_or(0)
}

/// The findings, one sentence each, most important first.
pub fn findings(sc: &LifeScenario, o: &SimOutcome) -> Vec<String> {
    let mut out = Vec::new();
    let attempts: u64 = o.totals.iter().sum();
    for (hi, host) in sc.hosts.iter().enumerate() {
        if o.host_requests.get(hi) == Some(&0) {
            out.push(format!(
                "{} received no requests: every client was answered by a host before it in the list",
                host.name
            ));
        }
    }
    for p in &o.pools {
        if o.host_requests.get(p.host) == Some(&0) {
            continue;
        }
        let app = app_name(p);
        match p.reached_at {
            Some(t) => out.push(format!(
                "{}: the {app} count first reaches {} on {}{}",
                p.host_name,
                p.required,
                when(sc, t),
                if t == 0 { " (at the start)" } else { "" }
            )),
            None => {
                let max = o
                    .days
                    .iter()
                    .filter_map(|d| d.counts.get(pool_index(o, p)).copied())
                    .max()
                    .unwrap_or(0);
                out.push(format!(
                    "{}: the {app} count never reaches {} (highest end-of-day count {max}): its {app} clients never activate there",
                    p.host_name, p.required
                ));
            }
        }
        for &(from, to) in &p.dips {
            let until = if to as usize + 1 >= o.days.len() {
                "the end".to_owned()
            } else {
                format!("day {}", to + 1)
            };
            out.push(format!(
                "{}: the {app} count falls below {} on day {from} ({}): clients needing {} get 0xC004F038 until {until}",
                p.host_name,
                p.required,
                when(sc, from * DAY).split(' ').take(2).collect::<Vec<_>>().join(" "),
                p.required
            ));
        }
    }
    let (m, pm) = peak_minute(o);
    let (h, ph) = peak_hour(o);
    if attempts > 0 {
        out.push(format!(
            "peak: {} requests/min on {}; busiest hour {} with {} requests",
            thousands(pm),
            when(sc, m as i64 * 60),
            when(sc, h as i64 * 3600),
            thousands(ph)
        ));
    }
    let never = o.end_states[LicenceState::NeverActivated as usize]
        + o.end_states[LicenceState::Grace as usize];
    let longest = o.longest_without_renewal as f64 / DAY as f64;
    for (hi, host) in sc.hosts.iter().enumerate() {
        for &(f, t) in &host.down {
            let len = show_secs(t.min(sc.duration_secs) - f);
            let lost = if o.lost_activation == 0 {
                "no client lost activation".to_owned()
            } else {
                format!(
                    "{} clients lost activation during the run",
                    thousands(o.lost_activation)
                )
            };
            out.push(format!(
                "{} down for {len} from {}{}: {lost}; the longest a client went without renewal was {longest:.0} days",
                host.name,
                when(sc, f),
                if sc.hosts.len() > 1 && hi == 0 { " (clients fall back to the next host)" } else { "" },
            ));
        }
    }
    if sc.hosts.iter().all(|h| h.down.is_empty()) && o.lost_activation > 0 {
        out.push(format!(
            "{} clients lost activation (validity lapsed); the longest a client went without renewal was {longest:.0} days",
            thousands(o.lost_activation)
        ));
    }
    let share = |n: u64| {
        if o.clients == 0 {
            0.0
        } else {
            100.0 * n as f64 / o.clients as f64
        }
    };
    let s = &o.end_states;
    out.push(format!(
        "at the end ({}): {} activated ({:.1} %), {} in initial grace, {} out of tolerance, {} in notification, {} never activated",
        when(sc, sc.duration_secs),
        thousands(s[0]),
        share(s[0]),
        thousands(s[1]),
        thousands(s[2]),
        thousands(s[3]),
        thousands(s[4]),
    ));
    if never > 0 && o.totals[0] == 0 {
        out.push(format!(
            "nobody activated: {} attempts, all failed",
            thousands(attempts)
        ));
    }
    let failed: u64 = o.totals[1..].iter().sum();
    if failed > 0 {
        let by: Vec<String> = CODES
            .iter()
            .zip(o.totals)
            .skip(1)
            .filter(|(_, n)| *n > 0)
            .map(|(c, n)| format!("{} {}", thousands(n), code_name(*c)))
            .collect();
        out.push(format!(
            "{} of {} attempts failed: {}",
            thousands(failed),
            thousands(attempts),
            by.join(", ")
        ));
    }
    out
}

fn pool_index(o: &SimOutcome, p: &Pool) -> usize {
    o.pools
        .iter()
        .position(|q| q.host == p.host && q.application == p.application)
        .unwrap_or(0)
}

/// Evaluates the scenario's gates.
pub fn evaluate(sc: &LifeScenario, o: &SimOutcome) -> Vec<GateResult> {
    sc.gates
        .iter()
        .map(|g| {
            let name = g.to_string();
            match *g {
                LifeGate::LostActivation(max) => GateResult {
                    name,
                    value: json!(o.lost_activation),
                    limit: json!(max),
                    pass: o.lost_activation <= max,
                    shown: format!("{} clients", o.lost_activation),
                },
                LifeGate::MaxDaysBelowThreshold(max) => {
                    let worst = o.pools.iter().map(|p| p.days_below).max().unwrap_or(0);
                    GateResult {
                        name,
                        value: json!(worst),
                        limit: json!(max),
                        pass: worst <= max,
                        shown: format!("{worst} days"),
                    }
                }
                LifeGate::ThresholdReachedWithin(within) => {
                    // Each application must reach its threshold on some host in time.
                    let mut worst: Option<i64> = Some(0);
                    for app in crate::host::Application::ALL {
                        let best = o
                            .pools
                            .iter()
                            .filter(|p| p.application == app)
                            .map(|p| p.reached_at)
                            .min_by_key(|r| r.unwrap_or(i64::MAX));
                        if let Some(best) = best {
                            worst = match (worst, best) {
                                (Some(w), Some(b)) => Some(w.max(b)),
                                _ => None,
                            };
                        }
                    }
                    GateResult {
                        name,
                        value: json!(worst),
                        limit: json!(within),
                        pass: worst.is_some_and(|w| w <= within),
                        shown: worst.map_or_else(|| "never".to_owned(), span),
                    }
                }
                LifeGate::MaxRequestsPerMinute(max) => {
                    let (_, n) = peak_minute(o);
                    GateResult {
                        name,
                        value: json!(n),
                        limit: json!(max),
                        pass: n <= max,
                        shown: format!("{n}/min"),
                    }
                }
                LifeGate::MinActivatedAtEnd(min) => {
                    let present: u64 = o.end_states.iter().sum();
                    let share = if present == 0 {
                        0.0
                    } else {
                        o.end_states[0] as f64 / present as f64
                    };
                    GateResult {
                        name,
                        value: json!(share),
                        limit: json!(min),
                        pass: share >= min,
                        shown: format!("{:.1} %", share * 100.0),
                    }
                }
            }
        })
        .collect()
}

/// summary.json's content.
pub fn summary(
    sc: &LifeScenario,
    o: &SimOutcome,
    gates: &[GateResult],
    findings: &[String],
) -> Value {
    let (m, pm) = peak_minute(o);
    let (h, ph) = peak_hour(o);
    let by_code: serde_json::Map<String, Value> = CODES
        .iter()
        .zip(o.totals)
        .filter(|(_, n)| *n > 0)
        .map(|(c, n)| (code_name(*c), json!(n)))
        .collect();
    let states: serde_json::Map<String, Value> = LicenceState::ALL
        .iter()
        .map(|s| (s.as_str().to_owned(), json!(o.end_states[*s as usize])))
        .collect();
    json!({
        "schema_version": SCHEMA_VERSION,
        "kind": "simulate",
        "config": config(sc),
        "totals": {
            "attempts": o.totals.iter().sum::<u64>(),
            "activated": o.totals[0],
            "failed": o.totals[1..].iter().sum::<u64>(),
            "by_code": by_code,
        },
        "peak": {
            "requests_per_minute": pm,
            "at": iso(sc, m as i64 * 60),
            "requests_per_hour": ph,
            "hour_at": iso(sc, h as i64 * 3600),
        },
        "pools": o.pools.iter().map(|p| json!({
            "host": p.host_name,
            "application": p.application.as_str(),
            "required": p.required,
            "threshold_reached_at": p.reached_at.map(|t| iso(sc, t)),
            "days_below_threshold": p.days_below,
        })).collect::<Vec<_>>(),
        "clients": states,
        "clients_total": o.clients,
        "lost_activation": o.lost_activation,
        "min_validity_days_left": o.min_validity_days_left.map(|d| (d * 100.0).round() / 100.0),
        "longest_without_renewal_days": (o.longest_without_renewal as f64 / DAY as f64 * 100.0).round() / 100.0,
        "gates": gates.iter().map(|g| json!({
            "name": g.name, "value": g.value, "limit": g.limit, "pass": g.pass, "shown": g.shown,
        })).collect::<Vec<_>>(),
        "findings": findings,
    })
}

fn config(sc: &LifeScenario) -> Value {
    json!({
        "name": sc.name,
        "description": sc.description,
        "source": sc.source.display().to_string(),
        "seed": sc.seed,
        "start": iso(sc, 0),
        "duration": show_secs(sc.duration_secs),
        "hosts": sc.hosts.iter().map(|h| json!({
            "name": h.name,
            "charged": h.charged,
            "host_key": h.host_key.name,
            "time_check": h.time_check,
            "activation_interval_min": h.activation_interval_min,
            "renewal_interval_min": h.renewal_interval_min,
            "down": h.down.iter().map(|&(f, t)| [show_secs(f), show_secs(t)]).collect::<Vec<_>>(),
            "service_rate": h.service_rate,
        })).collect::<Vec<_>>(),
        "groups": sc.groups.iter().map(|g| json!({
            "name": g.name,
            "size": g.size,
            "products": g.products.iter().map(|p| json!({
                "product": p.product.name, "weight": p.weight, "protocol": p.protocol,
            })).collect::<Vec<_>>(),
            "vm_fraction": g.vm_fraction,
            "power": g.power,
            "state": g.state,
            "renewed_within": g.renewed_within.map(show_secs),
            "away": g.away.as_ref().map(|a| json!({
                "share": a.share,
                "windows": a.windows.iter().map(|&(f, t)| [show_secs(f), show_secs(t)]).collect::<Vec<_>>(),
            })),
            "joins": g.joins.iter().map(|w| json!({"at": show_secs(w.at), "count": w.count})).collect::<Vec<_>>(),
            "leaves": g.leaves.iter().map(|w| json!({"at": show_secs(w.at), "count": w.count})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "gates": sc.gates.iter().map(ToString::to_string).collect::<Vec<_>>(),
    })
}

fn pool_column(p: &Pool) -> String {
    format!("count_{}_{}", p.host_name, p.application.as_str())
}

/// daily.csv: one row per virtual day.
pub fn daily_csv(sc: &LifeScenario, o: &SimOutcome) -> String {
    let mut s = String::from("day,date,requests");
    for c in CODES {
        let _ = write!(s, ",{}", code_name(c));
    }
    for p in &o.pools {
        let _ = write!(s, ",{}", pool_column(p));
    }
    for st in LicenceState::ALL {
        let _ = write!(s, ",{}", st.as_str());
    }
    s.push('\n');
    for (d, row) in o.days.iter().enumerate() {
        let _ = write!(
            s,
            "{d},{},{}",
            &iso(sc, d as i64 * DAY)[..10],
            row.requests()
        );
        for n in row.outcomes {
            let _ = write!(s, ",{n}");
        }
        for i in 0..o.pools.len() {
            let _ = write!(s, ",{}", row.counts.get(i).copied().unwrap_or(0));
        }
        for n in row.states {
            let _ = write!(s, ",{n}");
        }
        s.push('\n');
    }
    s
}

/// hourly.csv: one row per hour of the busiest 7-day window.
pub fn hourly_csv(sc: &LifeScenario, o: &SimOutcome) -> String {
    let first = busiest_week(o) * 24;
    let mut s = String::from("hour,time,requests");
    for c in CODES {
        let _ = write!(s, ",{}", code_name(c));
    }
    for p in &o.pools {
        let _ = write!(s, ",{}", pool_column(p));
    }
    s.push('\n');
    for (h, row) in o.hours.iter().enumerate().skip(first).take(7 * 24) {
        let _ = write!(s, "{h},{},{}", iso(sc, h as i64 * 3600), row.requests());
        for n in row.outcomes {
            let _ = write!(s, ",{n}");
        }
        for i in 0..o.pools.len() {
            let _ = write!(s, ",{}", row.counts.get(i).copied().unwrap_or(0));
        }
        s.push('\n');
    }
    s
}

/// report.md.
pub fn markdown(
    sc: &LifeScenario,
    o: &SimOutcome,
    gates: &[GateResult],
    findings: &[String],
) -> String {
    let mut s = format!("# kmsload simulate: {}\n\n", sc.name);
    if let Some(d) = &sc.description {
        let _ = writeln!(s, "{d}\n");
    }
    let _ = writeln!(
        s,
        "Virtual time {} to {} ({}), seed {}, {} clients in {} groups, {} hosts.\n",
        when(sc, 0),
        when(sc, sc.duration_secs),
        show_secs(sc.duration_secs),
        sc.seed,
        thousands(o.clients),
        sc.groups.len(),
        sc.hosts.len()
    );
    s.push_str("## Findings\n\n");
    for f in findings {
        let _ = writeln!(s, "- {f}");
    }
    s.push_str("\n## Counting pools\n\n| host | application | N | threshold reached | days below N |\n|---|---|---|---|---|\n");
    for p in &o.pools {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            p.host_name,
            app_name(p),
            p.required,
            p.reached_at
                .map_or_else(|| "never".to_owned(), |t| when(sc, t)),
            p.days_below
        );
    }
    s.push_str("\n## Attempts by outcome\n\n| outcome | attempts |\n|---|---|\n");
    for (c, n) in CODES.iter().zip(o.totals) {
        if n > 0 {
            let _ = writeln!(s, "| {} | {} |", code_name(*c), thousands(n));
        }
    }
    s.push_str("\n## Clients at the end\n\n| state | clients |\n|---|---|\n");
    for st in LicenceState::ALL {
        let _ = writeln!(
            s,
            "| {} | {} |",
            st.as_str(),
            thousands(o.end_states[st as usize])
        );
    }
    if !gates.is_empty() {
        s.push_str("\n## Gates\n\n| gate | measured | result |\n|---|---|---|\n");
        for g in gates {
            let _ = writeln!(
                s,
                "| {} | {} | {} |",
                g.name,
                g.shown,
                if g.pass { "pass" } else { "FAIL" }
            );
        }
    }
    s.push_str(
        "\nFiles: `summary.json`, `daily.csv` (one row per virtual day), `hourly.csv` (the busiest week), `report.html` (charts).\n",
    );
    s
}

/// Writes summary.json, daily.csv, hourly.csv, report.md and report.html into `dir`.
///
/// # Errors
/// The first I/O error.
pub fn write_dir(
    dir: &Path,
    sc: &LifeScenario,
    o: &SimOutcome,
    gates: &[GateResult],
    findings: &[String],
) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let summary = summary(sc, o, gates, findings);
    fs::write(
        dir.join("summary.json"),
        serde_json::to_string_pretty(&summary).map_err(io::Error::other)? + "\n",
    )?;
    fs::write(dir.join("daily.csv"), daily_csv(sc, o))?;
    fs::write(dir.join("hourly.csv"), hourly_csv(sc, o))?;
    fs::write(dir.join("report.md"), markdown(sc, o, gates, findings))?;
    fs::write(
        dir.join("report.html"),
        super::html::render(sc, o, gates, findings),
    )?;
    Ok(())
}

/// A `kmsload run` scenario that replays the busiest hour's arrivals, minute by minute,
/// `speed` times faster, with the simulated product mix of that hour.
pub fn export_peak(sc: &LifeScenario, o: &SimOutcome, speed: f64) -> String {
    let (h, n) = peak_hour(o);
    let catalog = crate::catalog::products();
    let slots = o.slots.len();
    let mut s = format!(
        "# Exported by `kmsload simulate {}` --export-peak{}: the busiest simulated hour,\n\
         # {} ({} requests), replayed minute by minute{}.\n\
         # Each minute is a 1 ms step to that minute's rate, then a hold.\n",
        sc.source.display(),
        if speed == 1.0 {
            String::new()
        } else {
            format!(" --speed {speed}")
        },
        when(sc, h as i64 * 3600),
        n,
        if speed == 1.0 {
            String::new()
        } else {
            format!(", {speed}× faster")
        }
    );
    let _ = writeln!(s, "name = \"{}-peak\"", sc.name);
    let _ = writeln!(
        s,
        "description = \"busiest hour of {} ({}), {} requests\"\n",
        sc.name,
        when(sc, h as i64 * 3600),
        n
    );
    let reached = o
        .pools
        .iter()
        .all(|p| p.reached_at.is_some_and(|t| t <= h as i64 * 3600));
    let _ = writeln!(
        s,
        "[host]\ncharged = {reached}   # the simulated host {} its thresholds by then\n",
        if reached {
            "had reached"
        } else {
            "had not reached"
        }
    );
    s.push_str("[fleet]\n");
    let _ = writeln!(s, "size = {}", n.max(1));
    s.push_str("products = [\n");
    for (i, &(index, protocol)) in o.slots.iter().enumerate() {
        let k = o.hour_products.get(h * slots + i).copied().unwrap_or(0);
        if k > 0 {
            let _ = writeln!(
                s,
                "  {{ product = \"{}\", weight = {k}, protocol = {protocol} }},",
                catalog[index].name
            );
        }
    }
    if o.hour_products[h * slots..(h + 1) * slots]
        .iter()
        .all(|&k| k == 0)
        && let Some(&(index, _)) = o.slots.first()
    {
        let _ = writeln!(s, "  {{ product = \"{}\" }},", catalog[index].name);
    }
    s.push_str("]\n\n[load]\nstart_rate = 0\nstages = [\n");
    let secs = 60.0 / speed;
    for m in 0..60 {
        let k = o.minutes.get(h * 60 + m).copied().unwrap_or(0);
        let rate = f64::from(k) / secs;
        let rate = (rate * 1000.0).round() / 1000.0;
        let _ = writeln!(
            s,
            "  {{ duration = \"1ms\", rate = {rate} }}, {{ duration = \"{}ms\", rate = {rate} }},  # {} {k} requests",
            ((secs * 1000.0).round() as i64 - 1).max(1),
            when(sc, h as i64 * 3600 + m as i64 * 60)
                .rsplit(' ')
                .next()
                .unwrap_or("")
        );
    }
    s.push_str("]\n");
    s
}
