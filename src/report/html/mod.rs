//! report.html: one self-contained page per results directory, for people who would rather
//! look than read. Opens from disk on an isolated machine: inline CSS and inline SVG, no
//! script, no font, no image, nothing fetched — the page's Content-Security-Policy
//! (`default-src 'none'`) makes a browser refuse any fetch a future edit might add. Light and
//! dark (`prefers-color-scheme`), printable (`@media print`).
//!
//! ```text
//! headline      scenario, verdict, target, host ePID/HwID, duration, attempts, achieved vs
//!               offered rate, gates, the knee sentence
//! #timeline     per second: offered/achieved/activated rate · in flight · p50/p90/p99 per
//!               phase (by intended start; log scale) · errors by code (stacked); fault
//!               episodes shaded in each
//! #latency      per phase: HDR percentile plot (x = -log10(1 - p)), all products and each
//!               product; the summary table
//! #charge       per counting pool: reported count against distinct clients, N and 2N, the
//!               flip point
//! #capacity     open-model ramps: p50/p90/p99 against offered rate, the limit, the knee
//! #codes        code, name, count, first and last seen, meaning, cause, what to check
//! #details      products, faults, causes, configuration, notes
//! ```
//!
//! Chart element ids (stable, tests look them up): `chart-rate`, `chart-inflight`,
//! `chart-latency-<phase>`, `chart-errors`, `chart-hdr-<phase>`, `chart-charge-<pool>`
//! (`windows`, `office-2010`, `office-2013`), `chart-knee`.
//!
//! Left out: interactivity (hover titles are the only affordance), and anything the results
//! directory does not hold.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;

use super::SummaryFile;
use super::analysis::{self, Episode, secs};
use super::codes as parse_codes;
use super::knee::{Knee, LimitSource, MIN_SAMPLES, RowMark};
use super::loghist::LogHist;
use super::read::{ChargeCurve, PHASES, Results};
use super::svg::{Axis, Band, Chart, Kind, Marker, Rule, Series, Unit, esc, fmt_num, fmt_us};
use crate::catalog::Application;
use crate::catalog::hresult;
use crate::record::LatencyPhase;

/// Most time-series points per line; longer runs are averaged into wider bins.
const MAX_TIME_POINTS: u64 = 900;
/// Most points of a charge curve line.
const MAX_CHARGE_POINTS: usize = 1500;

/// The file name `kmsload run` and `kmsload report` write by default.
pub const FILE_NAME: &str = "report.html";

/// Writes the page of `r` to `out` (default: `<dir>/report.html`); returns the path.
///
/// # Errors
/// The I/O error of writing the file.
pub fn write(r: &Results, out: Option<&Path>) -> io::Result<PathBuf> {
    let path = out.map_or_else(|| r.dir.join(FILE_NAME), Path::to_path_buf);
    fs::write(&path, render(r))?;
    Ok(path)
}

/// The whole page.
pub fn render(r: &Results) -> String {
    let s = &r.summary;
    let knee = analysis::knee(r);
    let episodes = analysis::fault_episodes(r);
    let mut h = String::with_capacity(256 * 1024);
    let title = format!("kmsload report: {}", s.scenario);
    page_start(&mut h, &title);
    headline(&mut h, r, knee.as_ref());
    h.push_str(
        "<nav><a href=\"#timeline\">timeline</a> · <a href=\"#latency\">latency</a> · \
         <a href=\"#charge\">charge</a> · <a href=\"#capacity\">capacity</a> · \
         <a href=\"#codes\">codes</a> · <a href=\"#details\">details</a></nav>",
    );
    timeline(&mut h, r, &episodes);
    hosts(&mut h, r);
    latency(&mut h, r);
    charge(&mut h, r);
    capacity(&mut h, r, knee.as_ref());
    codes(&mut h, r);
    if let Some(m) = &s.merge {
        shards(&mut h, m);
    }
    details(&mut h, r, &episodes);
    let _ = writeln!(
        h,
        "<footer>kmsload {} · report of <code>{}</code> (summary written by kmsload {})</footer></main></body></html>",
        esc(env!("CARGO_PKG_VERSION")),
        esc(&r.dir.display().to_string()),
        esc(&s.kmsload_version)
    );
    h
}

fn headline(h: &mut String, r: &Results, knee: Option<&Knee>) {
    let s = &r.summary;
    let failed = s.gates.iter().filter(|g| !g.pass).count();
    let (class, verdict) = if s.rebuilt.is_some() {
        (
            "bad",
            "INCOMPLETE: rebuilt from events.csv after the run was killed".to_owned(),
        )
    } else if !s.complete {
        ("bad", "INCOMPLETE: the run was interrupted".to_owned())
    } else if failed > 0 {
        (
            "bad",
            format!("FAIL: {failed} of {} gates failed", s.gates.len()),
        )
    } else if s.gates.is_empty() {
        ("muted", "no gates".to_owned())
    } else {
        ("ok", format!("PASS: all {} gates passed", s.gates.len()))
    };
    let _ = write!(
        h,
        "<header><h1>{}</h1><p class=\"verdict {class}\" id=\"verdict\">{}</p>",
        esc(&s.scenario),
        esc(&verdict)
    );
    if let Some(d) = &s.config.description {
        let _ = write!(h, "<p class=\"desc\">{}</p>", esc(d));
    }
    if let Some(note) = &s.rebuilt {
        let _ = write!(h, "<p class=\"desc\" id=\"rebuilt\">{}</p>", esc(note));
    }
    h.push_str("<dl class=\"facts\">");
    let mut fact = |k: &str, v: String| {
        let _ = write!(h, "<div><dt>{}</dt><dd>{v}</dd></div>", esc(k));
    };
    fact(
        "target",
        format!(
            "{}{}",
            esc(&s.target.address),
            if s.target.in_process {
                " <span class=\"muted\">(in-process reference host)</span>"
            } else {
                ""
            }
        ),
    );
    fact("host identity", host_identity(s));
    fact(
        "started",
        format!("{} · ran {}", esc(&s.started_utc), esc(&secs(s.elapsed_s))),
    );
    let b = &s.recorded.by_outcome;
    fact(
        "attempts",
        format!(
            "{} <span class=\"muted\">({} activated, {} not activated, {} failed; error rate {:.2} %)</span>",
            s.recorded.attempts,
            b.activated,
            b.not_activated,
            b.failed,
            s.error_rate() * 100.0
        ),
    );
    fact(
        "rate",
        match s.offered_rate {
            Some(o) if o > 0.0 => format!(
                "{:.1}/s achieved of {:.1}/s offered ({:.0} %)",
                s.achieved_rate,
                o,
                s.achieved_rate / o * 100.0
            ),
            _ => format!("{:.1}/s achieved (closed model)", s.achieved_rate),
        },
    );
    fact("load", esc(&s.config.load));
    fact(
        "fleet",
        format!(
            "{} clients, seed {}: {}",
            s.config.fleet_size,
            s.config.seed,
            esc(&s
                .config
                .products
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", "))
        ),
    );
    h.push_str("</dl>");
    if let Some(k) = knee.filter(|k| k.is_ramp()) {
        let _ = write!(h, "<p class=\"knee-sentence\">{}</p>", esc(&k.sentence()));
    }
    if !s.gates.is_empty() {
        gates_table(h, &s.gates);
    }
    h.push_str("</header>");
}

fn host_identity(s: &SummaryFile) -> String {
    if s.recorded.hosts.is_empty() {
        return "<span class=\"muted\">no answer carried an ePID</span>".to_owned();
    }
    let mut out = String::new();
    for host in &s.recorded.hosts {
        let list = |v: &[crate::record::SeenSummary]| {
            if v.is_empty() {
                "-".to_owned()
            } else {
                v.iter()
                    .map(|x| format!("<code>{}</code>", esc(&x.value)))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        let _ = write!(
            out,
            "<div>{}: ePID {} · HwID {}{}</div>",
            esc(host.pool.as_str()),
            list(&host.epids),
            list(&host.hwids),
            if host.changed {
                " <strong class=\"bad\">changed during the run</strong>"
            } else {
                ""
            }
        );
    }
    out
}

/// Seconds grouped into bins of `width` so a line has at most [`MAX_TIME_POINTS`] points.
struct Bins {
    width: u64,
    count: u64,
}

impl Bins {
    fn new(last_second: u64) -> Self {
        let span = last_second + 1;
        let width = span.div_ceil(MAX_TIME_POINTS).max(1);
        Self {
            width,
            count: span.div_ceil(width),
        }
    }

    fn of(&self, second: u64) -> usize {
        (second / self.width) as usize
    }

    /// x of bin `i`: its middle, in seconds.
    fn x(&self, i: usize) -> f64 {
        (i as u64 * self.width) as f64 + self.width as f64 / 2.0
    }
}

fn time_axis(r: &Results) -> (Axis, u64) {
    let s = &r.summary;
    let last_timeline = s.timeline.last().map_or(0, |t| t.second);
    let last_event = r
        .events
        .as_ref()
        .and_then(|e| e.seconds.keys().next_back().copied())
        .unwrap_or(0);
    let last = last_timeline.max(last_event).max(s.elapsed_s.ceil() as u64);
    (
        Axis::linear("time since start", Unit::Seconds, 0.0, (last + 1) as f64),
        last,
    )
}

fn bands(episodes: &[Episode]) -> Vec<Band> {
    episodes
        .iter()
        .map(|e| Band {
            from: e.from_s,
            to: e.to_s,
            label: format!(
                "fault episode {} – {} ({}, {} faulted attempts)",
                secs(e.from_s),
                secs(e.to_s),
                e.source,
                e.faulted
            ),
        })
        .collect()
}

/// A chart with its caption (`caption` is HTML, escaped by the caller).
pub(crate) fn figure(h: &mut String, caption: &str, chart: &Chart) {
    let _ = write!(
        h,
        "<figure>{}<figcaption>{}</figcaption></figure>",
        chart.render(),
        caption
    );
}

/// The start of a page (head with the stylesheet, up to `<main>`) titled `title`: the one
/// page style of report.html and the simulation's report.html.
pub(crate) fn page_start(h: &mut String, title: &str) {
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\
         <meta name=\"color-scheme\" content=\"light dark\">\
         <meta name=\"generator\" content=\"kmsload {}\">\
         <link rel=\"icon\" href=\"data:,\">\
         <title>{}</title><style>{CSS}</style></head><body><main>",
        esc(env!("CARGO_PKG_VERSION")),
        esc(title)
    );
}

/// The gates and their verdicts as a table.
pub(crate) fn gates_table(h: &mut String, gates: &[crate::report::gates::GateResult]) {
    h.push_str(
        "<table class=\"gates\"><thead><tr><th>gate</th><th>measured</th><th>verdict</th></tr></thead><tbody>",
    );
    for g in gates {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
            esc(&g.name),
            esc(&g.shown),
            if g.pass { "ok" } else { "bad" },
            if g.pass { "pass" } else { "FAIL" }
        );
    }
    h.push_str("</tbody></table>");
}

mod capacity;
mod charge;
mod hosts;
mod latency;
mod style;
mod tables;
mod timeline;

pub(crate) use self::style::CSS;
use self::{capacity::*, charge::*, hosts::*, latency::*, tables::*, timeline::*};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_closed_runs_render_without_charts_that_need_data() {
        let mut summary = crate::report::read::parse_summary(
            r#"{"schema_version":1,"scenario":"empty <run>","complete":true,"config":{"load":"closed, 4 clients, think time 0ns"}}"#,
            Path::new("summary.json"),
        )
        .unwrap();
        let r = Results {
            dir: "results/empty".into(),
            summary: summary.clone(),
            events: None,
            histograms: Default::default(),
            notes: vec!["events.csv: gone".into()],
        };
        let page = render(&r);
        assert!(page.contains("empty &lt;run&gt;"));
        assert!(page.contains("<svg id=\"chart-rate\""));
        assert!(page.contains("closed-model run"));
        assert!(page.contains("No answer reported a count."));
        assert!(page.contains("events.csv: gone"));
        assert!(page.contains("no gates"));
        assert!(!page.contains("NaN") && !page.contains("inf\""));
        summary.complete = false;
        let page = render(&Results { summary, ..r });
        assert!(page.contains("INCOMPLETE"));
    }

    #[test]
    fn percentile_curves_stop_at_the_nines_the_data_supports() {
        assert_eq!(nines_for(50), 2);
        assert_eq!(nines_for(3_000), 3);
        assert_eq!(nines_for(10_000_000), 5);
        let h = LogHist::from_values(&(1..=1000).collect::<Vec<_>>());
        let c = percentile_curve(3, |p| h.quantile(p));
        assert_eq!(c.len(), 151);
        assert_eq!(c[0], (0.0, 1.0));
        assert_eq!(c.last().unwrap(), &(3.0, 999.0), "99.9 % of 1..=1000");
    }
}
