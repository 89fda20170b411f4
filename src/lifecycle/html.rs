//! report.html of a simulation, in the page style of `kmsload run`'s report (the same CSS and
//! SVG charts from [`crate::report`]): the verdict and findings, clients by state over time,
//! requests per hour with outages shaded, and each pool's count against its threshold.
//! Self-contained: inline SVG and CSS, no scripts, no fetches.

use std::fmt::Write as _;

use super::client::LicenceState;
use super::engine::SimOutcome;
use super::results::{thousands, when};
use super::spec::{DAY, LifeScenario, show_secs};
use crate::report::gates::GateResult;
use crate::report::html::{self, gates_table, page_start};
use crate::report::svg::{Axis, Band, Chart, Rule, Series, Unit, esc};

fn figure(h: &mut String, caption: &str, chart: &Chart) {
    html::figure(h, &esc(caption), chart);
}

fn outage_bands(sc: &LifeScenario, per_day: f64) -> Vec<Band> {
    sc.hosts
        .iter()
        .flat_map(|host| {
            host.down.iter().map(move |&(f, t)| Band {
                from: f as f64 / DAY as f64 * per_day,
                to: t.min(sc.duration_secs) as f64 / DAY as f64 * per_day,
                label: format!("{} down {} – {}", host.name, show_secs(f), show_secs(t)),
            })
        })
        .collect()
}

/// The whole page.
pub fn render(
    sc: &LifeScenario,
    o: &SimOutcome,
    gates: &[GateResult],
    findings: &[String],
) -> String {
    let mut h = String::with_capacity(128 * 1024);
    page_start(&mut h, &format!("kmsload simulate: {}", sc.name));
    let failed = gates.iter().filter(|g| !g.pass).count();
    let (class, verdict) = if failed > 0 {
        (
            "bad",
            format!("FAIL: {failed} of {} gates failed", gates.len()),
        )
    } else if gates.is_empty() {
        ("muted", "no gates".to_owned())
    } else {
        ("ok", format!("PASS: all {} gates passed", gates.len()))
    };
    let _ = write!(
        h,
        "<header><h1>{}</h1><p class=\"verdict {class}\" id=\"verdict\">{}</p>",
        esc(&sc.name),
        esc(&verdict)
    );
    if let Some(d) = &sc.description {
        let _ = write!(h, "<p class=\"desc\">{}</p>", esc(d));
    }
    h.push_str("<dl class=\"facts\">");
    for (k, v) in [
        (
            "virtual time",
            format!("{} – {}", when(sc, 0), when(sc, sc.duration_secs)),
        ),
        ("clients", thousands(o.clients)),
        ("attempts", thousands(o.totals.iter().sum())),
        ("lost activation", thousands(o.lost_activation)),
        ("seed", sc.seed.to_string()),
    ] {
        let _ = write!(h, "<div><dt>{}</dt><dd>{}</dd></div>", esc(k), esc(&v));
    }
    h.push_str("</dl>");
    if !gates.is_empty() {
        gates_table(&mut h, gates);
    }
    h.push_str("</header><section id=\"findings\"><h2>Findings</h2><ul>");
    for f in findings {
        let _ = write!(h, "<li>{}</li>", esc(f));
    }
    h.push_str("</ul></section>");

    let days = o.days.len().max(1) as f64;
    let x_days = || Axis::linear("virtual day", Unit::Count, 0.0, days);

    h.push_str("<section id=\"states\"><h2>Clients by state</h2>");
    let max = o
        .days
        .iter()
        .map(|d| d.states.iter().sum::<u64>())
        .max()
        .unwrap_or(1);
    let mut chart = Chart::new(
        "states",
        "clients by licence state at the end of each day",
        x_days(),
        Axis::linear_from_zero("clients", Unit::Count, max as f64),
    );
    for (i, st) in LicenceState::ALL.iter().enumerate() {
        let points: Vec<(f64, f64)> = o
            .days
            .iter()
            .enumerate()
            .map(|(d, row)| ((d + 1) as f64, row.states[*st as usize] as f64))
            .collect();
        if points.iter().any(|p| p.1 > 0.0) {
            chart.series.push(Series::line(st.as_str(), i, points));
        }
    }
    chart.bands = outage_bands(sc, 1.0);
    figure(
        &mut h,
        "Clients by licence state at the end of each virtual day; host outages shaded.",
        &chart,
    );
    h.push_str("</section><section id=\"requests\"><h2>Requests per hour</h2>");
    let max = o
        .hours
        .iter()
        .map(super::engine::Row::requests)
        .max()
        .unwrap_or(1);
    let mut chart = Chart::new(
        "requests",
        "requests per virtual hour",
        x_days(),
        Axis::linear_from_zero("requests per hour", Unit::Count, max as f64),
    );
    chart.series.push(Series::line(
        "all attempts",
        0,
        o.hours
            .iter()
            .enumerate()
            .map(|(i, r)| (i as f64 / 24.0, r.requests() as f64))
            .collect(),
    ));
    chart.series.push(Series::line(
        "failed",
        3,
        o.hours
            .iter()
            .enumerate()
            .map(|(i, r)| (i as f64 / 24.0, r.outcomes[1..].iter().sum::<u64>() as f64))
            .collect(),
    ));
    chart.bands = outage_bands(sc, 1.0);
    figure(
        &mut h,
        "Attempts per virtual hour (x in days), and those that failed; host outages shaded.",
        &chart,
    );
    h.push_str("</section><section id=\"counts\"><h2>Host count against N</h2>");
    for (pi, p) in o.pools.iter().enumerate() {
        let max = o
            .days
            .iter()
            .filter_map(|d| d.counts.get(pi))
            .max()
            .copied()
            .unwrap_or(0)
            .max(p.required * 2);
        let mut chart = Chart::new(
            &format!("count-{pi}"),
            &format!("{} {} count", p.host_name, p.application.as_str()),
            x_days(),
            Axis::linear_from_zero("count", Unit::Count, f64::from(max)),
        );
        chart.series.push(Series::line(
            "count at the end of the day",
            pi,
            o.days
                .iter()
                .enumerate()
                .map(|(d, row)| {
                    (
                        (d + 1) as f64,
                        f64::from(row.counts.get(pi).copied().unwrap_or(0)),
                    )
                })
                .collect(),
        ));
        chart.rules.push(Rule {
            vertical: false,
            at: f64::from(p.required),
            label: format!("N = {}", p.required),
            class: "bad".into(),
        });
        chart.bands = outage_bands(sc, 1.0);
        figure(
            &mut h,
            &format!(
                "{}: {} count at the end of each day against its threshold N = {}.",
                p.host_name,
                p.application.as_str(),
                p.required
            ),
            &chart,
        );
    }
    let _ = write!(
        h,
        "</section><footer>kmsload {} · simulation of <code>{}</code></footer></main></body></html>",
        esc(env!("CARGO_PKG_VERSION")),
        esc(&sc.source.display().to_string())
    );
    h
}
