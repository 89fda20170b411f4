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
use crate::record::Phase;

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
        esc(&title)
    );
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
        h.push_str(
            "<table class=\"gates\"><thead><tr><th>gate</th><th>measured</th><th>verdict</th></tr></thead><tbody>",
        );
        for g in &s.gates {
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

fn figure(h: &mut String, caption: &str, chart: &Chart) {
    let _ = write!(
        h,
        "<figure>{}<figcaption>{}</figcaption></figure>",
        chart.render(),
        caption
    );
}

fn timeline(h: &mut String, r: &Results, episodes: &[Episode]) {
    let s = &r.summary;
    h.push_str("<section id=\"timeline\"><h2>Timeline</h2>");
    if !episodes.is_empty() {
        h.push_str(
            "<p class=\"muted\">Shaded: fault episodes (faults injected on the client side).</p>",
        );
    }
    let (x, last) = time_axis(r);
    let bins = Bins::new(last);
    let n = bins.count as usize;
    let per_s = |v: Vec<f64>| -> Vec<(f64, f64)> {
        v.into_iter()
            .enumerate()
            .map(|(i, y)| (bins.x(i), y / bins.width as f64))
            .collect()
    };
    let (mut offered, mut achieved, mut activated) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    let mut in_flight = vec![f64::NAN; n];
    for t in &s.timeline {
        let i = bins.of(t.second).min(n - 1);
        offered[i] += t.started as f64;
        achieved[i] += t.completed as f64;
        activated[i] += t.activated as f64;
        if let Some(f) = t.in_flight {
            in_flight[i] = if in_flight[i].is_nan() {
                f as f64
            } else {
                in_flight[i].max(f as f64)
            };
        }
    }
    let (offered, achieved, activated) = (per_s(offered), per_s(achieved), per_s(activated));
    let peak = offered
        .iter()
        .chain(&achieved)
        .map(|p| p.1)
        .fold(0.0, f64::max);
    let mut c = Chart::new(
        "chart-rate",
        "Offered and achieved rate per second",
        x.clone(),
        Axis::linear_from_zero("attempts / s", Unit::Count, peak * 1.05),
    );
    c.bands = bands(episodes);
    c.series
        .push(Series::line("offered (intended starts)", 0, offered));
    c.series
        .push(Series::line("achieved (completions)", 1, achieved));
    c.series.push(Series {
        dashed: true,
        ..Series::line("activated", 2, activated)
    });
    figure(
        h,
        &format!(
            "Offered load (attempts whose intended start fell in the second) against completions. {}",
            if bins.width > 1 {
                format!("Averaged over {} s bins.", bins.width)
            } else {
                String::new()
            }
        ),
        &c,
    );

    let fl: Vec<(f64, f64)> = in_flight
        .iter()
        .enumerate()
        .map(|(i, v)| (bins.x(i), *v))
        .collect();
    let top = fl
        .iter()
        .map(|p| p.1)
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let mut c = Chart::new(
        "chart-inflight",
        "Attempts in flight",
        x.clone(),
        Axis::linear_from_zero("in flight", Unit::Count, (top * 1.1).max(1.0)),
    );
    c.height = 220.0;
    c.bands = bands(episodes);
    c.series
        .push(Series::line("in flight (largest sample)", 3, fl));
    figure(
        h,
        "Attempts started and not yet finished: the largest sample of each second. A host that falls behind shows a growing count.",
        &c,
    );

    // Latency per phase per second.
    let gate = s.total_p99_gate();
    for (k, phase) in PHASES.iter().enumerate() {
        let mut lines: [Vec<(f64, f64)>; 3] = Default::default();
        let mut lo = f64::INFINITY;
        let mut hi: f64 = 0.0;
        match &r.events {
            Some(e) => {
                let mut acc = vec![LogHist::new(); n];
                for (sec, se) in &e.seconds {
                    acc[bins.of(*sec).min(n - 1)].merge(&se.phases[k]);
                }
                for (i, hist) in acc.iter().enumerate() {
                    for (j, q) in [0.5, 0.9, 0.99].into_iter().enumerate() {
                        let v = hist.quantile(q).map_or(f64::NAN, |v| v as f64);
                        if v.is_finite() {
                            lo = lo.min(v);
                            hi = hi.max(v);
                        }
                        lines[j].push((bins.x(i), v));
                    }
                }
            }
            None if *phase == Phase::Total => {
                // Without events.csv: the summary's p50/p99 of the total, by completion.
                for t in &s.timeline {
                    for (j, v) in [(0, t.p50_us), (2, t.p99_us)] {
                        let v = v.map_or(f64::NAN, |v| v as f64);
                        if v.is_finite() {
                            lo = lo.min(v);
                            hi = hi.max(v);
                        }
                        lines[j].push((t.second as f64 + 0.5, v));
                    }
                }
            }
            None => continue,
        }
        if hi <= 0.0 {
            continue;
        }
        if *phase == Phase::Total
            && let Some((limit, _)) = gate
        {
            hi = hi.max(limit as f64 * 1.2);
            lo = lo.min(limit as f64);
        }
        let mut c = Chart::new(
            &format!("chart-latency-{phase}"),
            &format!("{phase} latency per second: p50, p90, p99"),
            x.clone(),
            Axis::log(&format!("{phase} time"), Unit::Micros, lo, hi),
        );
        c.height = 240.0;
        c.bands = bands(episodes);
        for (j, (name, color)) in [("p50", 4), ("p90", 5), ("p99", 6)].into_iter().enumerate() {
            if !lines[j].is_empty() {
                c.series
                    .push(Series::line(name, color, std::mem::take(&mut lines[j])));
            }
        }
        if *phase == Phase::Total
            && let Some((limit, name)) = gate
        {
            c.rules.push(Rule {
                vertical: false,
                at: limit as f64,
                label: format!("gate: {name}"),
                class: "bad".into(),
            });
        }
        figure(
            h,
            &format!(
                "<b>{phase}</b>: percentiles of the attempts no fault touched, {}.",
                if r.events.is_some() {
                    "grouped by intended start (a second's latency belongs to the load offered in it)"
                } else {
                    "by completion second (events.csv missing: p90 not available)"
                }
            ),
            &c,
        );
    }

    // Errors per second by code.
    let mut by_code: std::collections::BTreeMap<u32, Vec<f64>> = Default::default();
    for t in &s.timeline {
        for (code, count) in parse_codes(&t.by_code) {
            if code != 0 {
                by_code.entry(code).or_insert_with(|| vec![0.0; n])
                    [bins.of(t.second).min(n - 1)] += count as f64;
            }
        }
    }
    let mut totals = vec![0.0; n];
    for v in by_code.values() {
        for (t, x) in totals.iter_mut().zip(v) {
            *t += x;
        }
    }
    let top = totals.iter().fold(0.0, |a: f64, b| a.max(*b)) / bins.width as f64;
    let mut c = Chart::new(
        "chart-errors",
        "Errors per second by code",
        x,
        Axis::linear_from_zero("errors / s", Unit::Count, (top * 1.1).max(1.0)),
    );
    c.height = 240.0;
    c.bands = bands(episodes);
    for (i, (code, v)) in by_code.into_iter().enumerate() {
        let name = hresult::hresult(code).map_or_else(
            || hresult::hex(code),
            |x| format!("{} {}", hresult::hex(code), x.name),
        );
        c.series.push(Series {
            kind: Kind::StackedBars {
                width: bins.width as f64 * 0.9,
            },
            ..Series::line(&name, i, per_s(v))
        });
    }
    figure(
        h,
        if c.series.is_empty() {
            "No attempt ended with an error code."
        } else {
            "Attempts that did not activate, by the code a real client would show, per completion second (stacked)."
        },
        &c,
    );
    h.push_str("</section>");
}

/// `(x = -log10(1 - p), value)` points of a distribution up to `nines`.
fn percentile_curve(nines: u32, quantile: impl Fn(f64) -> Option<u64>) -> Vec<(f64, f64)> {
    let steps = nines * 50;
    (0..=steps)
        .filter_map(|i| {
            let x = f64::from(i) / 50.0;
            let p = 1.0 - 10f64.powf(-x);
            quantile(p).map(|v| (x, v as f64))
        })
        .collect()
}

/// Nines worth plotting for `count` samples: a 99.9 % point needs about a thousand.
fn nines_for(count: u64) -> u32 {
    ((count.max(1) as f64).log10().floor() as u32).clamp(2, 5)
}

fn latency(h: &mut String, r: &Results) {
    let s = &r.summary;
    h.push_str("<section id=\"latency\"><h2>Latency distribution</h2>");
    h.push_str(
        "<table><thead><tr><th>phase</th><th>count</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr></thead><tbody>",
    );
    for phase in PHASES {
        match s.recorded.latency_us.get(phase) {
            Some(l) => {
                let _ = write!(
                    h,
                    "<tr><td>{phase}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    l.count,
                    fmt_us(l.p50 as f64),
                    fmt_us(l.p90 as f64),
                    fmt_us(l.p99 as f64),
                    fmt_us(l.p999 as f64),
                    fmt_us(l.max as f64)
                );
            }
            None => {
                let _ = write!(
                    h,
                    "<tr><td>{phase}</td><td>0</td><td colspan=\"5\" class=\"muted\">no attempt reached this phase</td></tr>"
                );
            }
        }
    }
    h.push_str(
        "</tbody></table><p class=\"muted\">Attempts no injected fault touched, all outcomes.</p>",
    );
    for (k, phase) in PHASES.iter().enumerate() {
        let mut curves: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
        let all: Option<&Histogram<u64>> = r.histograms.get(phase.as_str());
        let merged: Option<LogHist> = r.events.as_ref().map(|e| {
            let mut m = LogHist::new();
            for p in e.products.values() {
                m.merge(&p.phases[k]);
            }
            m
        });
        let count = all
            .map(Histogram::len)
            .or(merged.as_ref().map(LogHist::len))
            .unwrap_or(0);
        if count == 0 {
            continue;
        }
        let nines = nines_for(count);
        match all {
            Some(hist) => curves.push((
                "all products".to_owned(),
                percentile_curve(nines, |p| Some(hist.value_at_quantile(p))),
            )),
            None => {
                if let Some(m) = &merged {
                    curves.push((
                        "all products".to_owned(),
                        percentile_curve(nines, |p| m.quantile(p)),
                    ));
                }
            }
        }
        if let Some(e) = &r.events {
            let products: Vec<_> = e
                .products
                .iter()
                .filter(|(_, p)| !p.phases[k].is_empty())
                .collect();
            if products.len() > 1 {
                for (name, p) in products {
                    let n = nines_for(p.phases[k].len());
                    curves.push((
                        name.clone(),
                        percentile_curve(n, |q| p.phases[k].quantile(q)),
                    ));
                }
            }
        }
        let values = curves.iter().flat_map(|c| c.1.iter().map(|p| p.1));
        let (lo, hi) = values.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        let mut c = Chart::new(
            &format!("chart-hdr-{phase}"),
            &format!("{phase} latency by percentile"),
            Axis::percentile(nines),
            Axis::log(&format!("{phase} time"), Unit::Micros, lo.max(1.0), hi),
        );
        c.height = 280.0;
        // Products first, the run's distribution last and dashed, so both stay visible.
        let Some(all) = (!curves.is_empty()).then(|| curves.remove(0)) else {
            continue;
        };
        for (i, (name, points)) in curves.into_iter().enumerate() {
            c.series.push(Series::line(&name, i + 1, points));
        }
        c.series.push(Series {
            dashed: true,
            ..Series::line(&all.0, 0, all.1)
        });
        figure(
            h,
            &format!(
                "<b>{phase}</b>: value at each percentile ({count} attempts; the axis gives each nine the same width, so the tail is as visible as the median{}).",
                if r.histograms.contains_key(phase.as_str()) {
                    "; \"all products\" is the run's HDR histogram"
                } else {
                    ""
                }
            ),
            &c,
        );
    }
    h.push_str("</section>");
}

/// The application's name as an HTML id (no `+`).
fn pool_id(pool: Application) -> &'static str {
    pool.as_str().trim_end_matches('+')
}

fn pool_title(pool: Application) -> &'static str {
    match pool {
        Application::Windows => "Windows",
        Application::Office2010 => "Office 2010",
        Application::Office2013 => "Office 2013 and later",
    }
}

fn charge(h: &mut String, r: &Results) {
    let s = &r.summary;
    h.push_str("<section id=\"charge\"><h2>Activation threshold: the charge curve</h2>");
    if s.recorded.threshold.is_empty() {
        h.push_str("<p class=\"muted\">No answer reported a count.</p></section>");
        return;
    }
    for pool in Application::ALL {
        let Some(t) = s.recorded.threshold.get(&pool) else {
            continue;
        };
        let n = f64::from(t.required);
        let sentence = {
            let first = match t.first_activation_after_clients {
                Some(k) => format!("activation began after {k} distinct clients"),
                None => format!(
                    "no activation after {} distinct clients",
                    t.distinct_clients
                ),
            };
            let count = match t.max_count {
                Some(m) if t.distinct_clients > u64::from(m) => format!("count capped at {m}"),
                Some(m) => format!("count reached {m}"),
                None => "no count reported".to_owned(),
            };
            format!("{first}; {count}")
        };
        let _ = write!(
            h,
            "<h3>{} <span class=\"muted\">(N = {})</span></h3><p>{}</p>",
            pool_title(pool),
            t.required,
            esc(&sentence)
        );
        let curve: Option<&ChargeCurve> = r.events.as_ref().and_then(|e| e.charge.get(&pool));
        let Some(curve) = curve.filter(|c| !c.points.is_empty()) else {
            h.push_str("<p class=\"muted\">No per-attempt counts (events.csv) for a curve.</p>");
            continue;
        };
        let flip = t
            .first_activation_after_clients
            .or(curve.first_activation_after);
        let max_x = curve.points.last().map_or(1, |p| p.0) as f64;
        let want = (4.0 * n)
            .max(flip.map_or(0.0, |f| 2.0 * f as f64))
            .max(50.0);
        let shown = max_x.min(want);
        let mut points: Vec<(f64, f64)> = curve
            .points
            .iter()
            .filter(|p| p.0 as f64 <= shown)
            .map(|p| (p.0 as f64, f64::from(p.1)))
            .collect();
        if points.len() > MAX_CHARGE_POINTS {
            let step = points.len().div_ceil(MAX_CHARGE_POINTS);
            let last = points.last().copied();
            points = points.into_iter().step_by(step).collect();
            points.extend(last);
        }
        let top = points.iter().map(|p| p.1).fold(2.0 * n, f64::max) * 1.1;
        let mut c = Chart::new(
            &format!("chart-charge-{}", pool_id(pool)),
            &format!(
                "{} pool: reported count against distinct clients",
                pool_title(pool)
            ),
            Axis::linear_from_zero("distinct clients that reached the host", Unit::Count, shown),
            Axis::linear_from_zero("count reported", Unit::Count, top),
        );
        c.height = 260.0;
        c.series
            .push(Series::line("reported count", 0, points.clone()));
        c.rules.push(Rule {
            vertical: false,
            at: n,
            label: format!("N = {}: clients with this N activate from here", t.required),
            class: "warn".into(),
        });
        c.rules.push(Rule {
            vertical: false,
            at: 2.0 * n,
            label: format!("2N = {}: the host's count cap", 2 * t.required),
            class: "muted".into(),
        });
        if let Some(f) = flip {
            let at = points.iter().find(|p| p.0 >= f as f64).map_or(n, |p| p.1);
            c.rules.push(Rule {
                vertical: true,
                at: f as f64,
                label: String::new(),
                class: "ok".into(),
            });
            c.markers.push(Marker {
                x: f as f64,
                y: at,
                label: format!("flip: first activation after {f} clients"),
                class: "ok".into(),
            });
        }
        figure(
            h,
            &format!(
                "Count the host reported to each answered attempt, in start order, against the distinct clients (CMIDs) that had reached it{}.{}",
                if shown < max_x {
                    format!("; the first {} shown", fmt_num(shown))
                } else {
                    String::new()
                },
                if curve.truncated {
                    format!(
                        " Only the first {} answers of the pool were kept.",
                        super::read::CHARGE_ROWS_MAX
                    )
                } else {
                    String::new()
                }
            ),
            &c,
        );
    }
    h.push_str("</section>");
}

fn capacity(h: &mut String, r: &Results, knee: Option<&Knee>) {
    h.push_str("<section id=\"capacity\"><h2>Capacity: latency against offered load</h2>");
    let Some(k) = knee.filter(|k| k.is_ramp()) else {
        let why = if !r.summary.is_open_model() {
            "closed-model run: the offered rate follows the host, so there is no knee to find"
        } else if r.events.is_none() {
            "events.csv is needed for latency by offered rate"
        } else {
            "the run offered fewer than two distinct rates with enough attempts (a ramp scenario shows the knee)"
        };
        let _ = write!(h, "<p class=\"muted\">Not shown: {why}.</p></section>");
        return;
    };
    let _ = write!(h, "<p class=\"knee-sentence\">{}</p>", esc(&k.sentence()));
    let trusted: Vec<_> = k.buckets.iter().filter(|b| b.enough).collect();
    let rates = k.buckets.iter().map(|b| b.offered_rate);
    let (rlo, rhi) = rates.fold((f64::INFINITY, 0.0f64), |(a, b), r| (a.min(r), b.max(r)));
    let x = if rhi / rlo.max(1e-9) > 20.0 {
        Axis::log("offered attempts / s", Unit::Count, rlo, rhi)
    } else {
        Axis::linear_from_zero("offered attempts / s", Unit::Count, rhi * 1.05)
    };
    let values = k
        .buckets
        .iter()
        .flat_map(|b| [b.p50_us, b.p99_us])
        .flatten()
        .map(|v| v as f64);
    let (lo, hi) = values.fold((f64::INFINITY, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    let limit = k.limit_us as f64;
    let mut c = Chart::new(
        "chart-knee",
        "Total latency percentiles against offered rate",
        x,
        Axis::log(
            "total time",
            Unit::Micros,
            lo.min(limit),
            hi.max(limit * 1.2),
        ),
    );
    c.height = 320.0;
    for (name, color, pick) in [("p50", 4usize, 0usize), ("p90", 5, 1), ("p99", 6, 2)] {
        let points: Vec<(f64, f64)> = trusted
            .iter()
            .filter_map(|b| {
                let v = [b.p50_us, b.p90_us, b.p99_us][pick]?;
                Some((b.offered_rate, v as f64))
            })
            .collect();
        c.series.push(Series::line(name, color, points.clone()));
        c.series.push(Series {
            name: String::new(),
            kind: Kind::Points,
            ..Series::line(name, color, points)
        });
    }
    let thin: Vec<(f64, f64)> = k
        .buckets
        .iter()
        .filter(|b| !b.enough)
        .filter_map(|b| Some((b.offered_rate, b.p99_us? as f64)))
        .collect();
    if !thin.is_empty() {
        c.series.push(Series {
            name: format!("p99 of a group under {MIN_SAMPLES} attempts (not used)"),
            kind: Kind::Points,
            class: "muted".into(),
            dashed: false,
            points: thin,
        });
    }
    c.rules.push(Rule {
        vertical: false,
        at: limit,
        label: match &k.limit_source {
            LimitSource::Gate(g) => format!("limit: gate {g}"),
            LimitSource::Default => {
                format!("limit: {} (default; no total p99 gate)", fmt_us(limit))
            }
        },
        class: "bad".into(),
    });
    if let Some(b) = k.knee.map(|i| &k.buckets[i]) {
        c.rules.push(Rule {
            vertical: true,
            at: b.offered_rate,
            label: String::new(),
            class: "ok".into(),
        });
        c.markers.push(Marker {
            x: b.offered_rate,
            y: b.p99_us.unwrap_or(0) as f64,
            label: format!(
                "{}: {}/s, p99 {}",
                if k.reached() {
                    "knee"
                } else {
                    "highest rate, within the limits"
                },
                fmt_num(b.offered_rate.round()),
                fmt_us(b.p99_us.unwrap_or(0) as f64)
            ),
            class: "ok".into(),
        });
    }
    figure(
        h,
        &format!(
            "Each point is a group of seconds with about the same offered rate (within 10 %); latency of the attempts started in them, no fault touched. The knee is the highest rate whose p99 stays under the limit{}, with every lower rate within the limits too.{}",
            if k.max_error_rate.is_some() {
                " and whose share of attempts not activated is within the error gate"
            } else {
                ""
            },
            analysis::left_out(k)
        ),
        &c,
    );
    h.push_str("<table><thead><tr>");
    for th in Knee::TABLE_HEADER {
        let _ = write!(h, "<th>{th}</th>");
    }
    h.push_str("<th></th></tr></thead><tbody>");
    for (cells, mark) in k.table_rows() {
        let note = match mark {
            RowMark::Knee => "<strong class=\"ok\">knee</strong>",
            RowMark::HighestWithin => {
                "<span class=\"ok\">highest rate offered, within the limits</span>"
            }
            RowMark::FirstOver => "<span class=\"bad\">first over the limits</span>",
            RowMark::TooFewSamples => "<span class=\"muted\">too few samples</span>",
            RowMark::None => "",
        };
        h.push_str("<tr>");
        for c in cells {
            let _ = write!(h, "<td>{c}</td>");
        }
        let _ = write!(h, "<td>{note}</td></tr>");
    }
    h.push_str("</tbody></table></section>");
}

/// `#hosts` (runs through discovery): each host's share, outcomes, latency and failovers;
/// `chart-hosts`, the attempts each host answered per second with the outages shaded; the
/// failover cost.
fn hosts(h: &mut String, r: &Results) {
    let s = &r.summary;
    if s.by_host.is_empty() {
        return;
    }
    h.push_str("<section id=\"hosts\"><h2>Hosts found by discovery</h2>");
    let (x, last) = time_axis(r);
    let bins = Bins::new(last);
    let n = bins.count as usize;
    let series = |v: &[u64]| -> Vec<(f64, f64)> {
        let mut acc = vec![0.0; n];
        for (sec, c) in v.iter().enumerate() {
            acc[bins.of(sec as u64).min(n - 1)] += *c as f64;
        }
        acc.into_iter()
            .enumerate()
            .map(|(i, y)| (bins.x(i), y / bins.width as f64))
            .collect()
    };
    let mut lines: Vec<Series> = s
        .by_host
        .iter()
        .enumerate()
        .map(|(i, split)| Series::line(&split.host, i, series(&split.per_second)))
        .collect();
    let mut failed_over = vec![
        0u64;
        s.by_host
            .iter()
            .map(|x| x.failovers_per_second.len())
            .max()
            .unwrap_or(0)
    ];
    for split in &s.by_host {
        for (i, c) in split.failovers_per_second.iter().enumerate() {
            failed_over[i] += c;
        }
    }
    if failed_over.iter().any(|c| *c > 0) {
        lines.push(Series {
            dashed: true,
            ..Series::line(
                "failed over (all hosts)",
                s.by_host.len(),
                series(&failed_over),
            )
        });
    }
    let peak = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(0.0, f64::max);
    let mut c = Chart::new(
        "chart-hosts",
        "Attempts answered per second, by host",
        x,
        Axis::linear_from_zero("attempts / s", Unit::Count, peak * 1.05),
    );
    c.series = lines;
    c.bands = s
        .outages
        .iter()
        .map(|o| Band {
            from: o.from_s,
            to: o.to_s,
            label: format!("{} down {} – {}", o.host, secs(o.from_s), secs(o.to_s)),
        })
        .collect();
    figure(
        h,
        &format!(
            "Attempts each host answered, by intended start{}; dashed: those that reached it only after another host failed.{}",
            if bins.width > 1 {
                format!(", averaged over {} s bins", bins.width)
            } else {
                String::new()
            },
            if s.outages.is_empty() {
                ""
            } else {
                " Shaded: a host's outage window (its service stopped: connects refused)."
            }
        ),
        &c,
    );
    let total = s.by_host.iter().map(|x| x.attempts).sum::<u64>().max(1) as f64;
    let ms = |us: Option<u64>| us.map_or_else(|| "-".to_owned(), |u| fmt_us(u as f64));
    h.push_str("<table><thead><tr><th>host</th><th>attempts</th><th>share</th><th>activated</th><th>not activated</th><th>failed</th><th>p50</th><th>p99</th><th>failed tries</th><th>failovers to it</th><th>their extra time (mean / max)</th><th>down</th></tr></thead><tbody>");
    for split in &s.by_host {
        let down: Vec<String> = s
            .outages
            .iter()
            .filter(|o| o.is_of(&split.host))
            .map(|o| format!("{} – {}", secs(o.from_s), secs(o.to_s)))
            .collect();
        let _ = write!(
            h,
            "<tr><td><code>{}</code></td><td>{}</td><td>{:.1} %</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} / {}</td><td>{}</td></tr>",
            esc(&split.host),
            split.attempts,
            split.attempts as f64 / total * 100.0,
            split.activated,
            split.not_activated,
            split.failed,
            ms(split.latency_us.map(|l| l.p50)),
            ms(split.latency_us.map(|l| l.p99)),
            split.failed_tries,
            split.failovers_in,
            ms(split.failover_cost_us_mean),
            ms(split.failover_cost_us_max),
            esc(&down.join(", "))
        );
    }
    h.push_str("</tbody></table>");
    if let Some(cost) = super::failover_cost_sentence(&s.by_host) {
        let _ = write!(h, "<p id=\"failover-cost\">{}</p>", esc(&cost));
    }
    h.push_str("</section>");
}

fn codes(h: &mut String, r: &Results) {
    h.push_str("<section id=\"codes\"><h2>Codes</h2>");
    let rows = analysis::code_rows(r);
    if rows.is_empty() {
        h.push_str("<p class=\"muted\">No attempts.</p></section>");
        return;
    }
    let total = r.summary.recorded.attempts.max(1) as f64;
    h.push_str("<table class=\"codes\"><thead><tr><th>code</th><th>name</th><th>count</th><th>share</th><th>first seen</th><th>last seen</th><th>explanation</th></tr></thead><tbody>");
    for c in rows {
        let mut explain = format!("<p>{}</p>", esc(&c.meaning));
        if let Some(t) = &c.typical_cause {
            let _ = write!(explain, "<p><b>typical cause:</b> {}</p>", esc(t));
        }
        if let Some(t) = &c.what_to_check {
            let _ = write!(explain, "<p><b>what to check:</b> {}</p>", esc(t));
        }
        let _ = write!(
            h,
            "<tr class=\"{}\"><td><code>{}</code></td><td>{}</td><td>{}</td><td>{:.2} %</td><td>{}</td><td>{}</td><td>{explain}</td></tr>",
            if c.code == 0 { "ok" } else { "" },
            hresult::hex(c.code),
            esc(&c.name),
            c.count,
            c.count as f64 / total * 100.0,
            c.first_s.map_or_else(|| "-".to_owned(), secs),
            c.last_s.map_or_else(|| "-".to_owned(), secs)
        );
    }
    h.push_str("</tbody></table><p class=\"muted\">First and last seen: completion time since the run start. <code>kmsload explain CODE</code> says more.</p></section>");
}

/// The shards of a merged result (`kmsload merge`), one row each.
fn shards(h: &mut String, m: &crate::record::MergeInfo) {
    let _ = write!(
        h,
        "<section id=\"shards\"><h2>Shards</h2><p>Run <code>{}</code>: {} of {} shards merged.</p>",
        esc(&m.run_id),
        m.shards.len(),
        m.count
    );
    if !m.missing.is_empty() {
        let list: Vec<String> = m.missing.iter().map(u32::to_string).collect();
        let _ = write!(
            h,
            "<p class=\"bad\"><b>INCOMPLETE:</b> shard(s) {} missing; the figures leave their attempts out.</p>",
            list.join(", ")
        );
    }
    for n in &m.notes {
        let _ = write!(h, "<p class=\"muted\">Note: {}.</p>", esc(n));
    }
    h.push_str("<table><thead><tr><th>shard</th><th>attempts</th><th>achieved /s</th><th>max generator lag</th><th>late attempts</th><th>start offset</th><th>late start</th><th>source addresses</th><th>own gates</th></tr></thead><tbody>");
    for s in &m.shards {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.1} ms</td><td>{}</td><td>{:.1} ms</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            s.index,
            s.attempts,
            s.achieved_rate,
            s.max_lag_us as f64 / 1000.0,
            s.late_attempts,
            s.start_offset_us as f64 / 1000.0,
            s.late_start_us
                .map_or("-".to_owned(), |us| format!("{:.1} ms", us as f64 / 1000.0)),
            esc(&if s.source_addresses.is_empty() {
                "-".to_owned()
            } else {
                s.source_addresses.join(", ")
            }),
            if s.failed_gates.is_empty() {
                "pass".to_owned()
            } else {
                format!("FAIL ({})", esc(&s.failed_gates.join(", ")))
            }
        );
    }
    h.push_str("</tbody></table></section>");
}

fn details(h: &mut String, r: &Results, episodes: &[Episode]) {
    let s = &r.summary;
    h.push_str("<section id=\"details\"><h2>Details</h2>");
    if !s.recorded.products.is_empty() {
        h.push_str("<h3>Products</h3><table><thead><tr><th>product</th><th>attempts</th><th>activated</th><th>not activated</th><th>failed</th><th>total p50</th><th>total p99</th></tr></thead><tbody>");
        for p in &s.recorded.products {
            let t = p.latency_us.total;
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(p.name.as_deref().unwrap_or("?")),
                p.attempts,
                p.by_outcome.activated,
                p.by_outcome.not_activated,
                p.by_outcome.failed,
                t.map_or_else(|| "-".to_owned(), |l| fmt_us(l.p50 as f64)),
                t.map_or_else(|| "-".to_owned(), |l| fmt_us(l.p99 as f64))
            );
        }
        h.push_str("</tbody></table>");
    }
    if !episodes.is_empty() || !s.recorded.faults.is_empty() {
        h.push_str("<h3>Faults</h3><ul>");
        for e in episodes {
            let _ = write!(
                h,
                "<li>{} – {} ({}): {} touched by a fault</li>",
                secs(e.from_s),
                secs(e.to_s),
                e.source,
                analysis::plural(e.faulted, "attempt")
            );
        }
        h.push_str("</ul>");
        if !s.recorded.faults.is_empty() {
            h.push_str("<table><thead><tr><th>fault</th><th>attempts</th><th>activated</th><th>not activated</th><th>failed</th><th>codes</th></tr></thead><tbody>");
            for f in &s.recorded.faults {
                let codes: Vec<String> = parse_codes(&f.by_code)
                    .into_iter()
                    .map(|(c, n)| format!("{} ×{n}", hresult::hex(c)))
                    .collect();
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&f.fault),
                    f.attempts,
                    f.by_outcome.activated,
                    f.by_outcome.not_activated,
                    f.by_outcome.failed,
                    esc(&codes.join(", "))
                );
            }
            h.push_str("</tbody></table>");
        }
    }
    if !s.recorded.by_cause.is_empty() {
        h.push_str(
            "<h3>Causes</h3><table><thead><tr><th>cause</th><th>count</th></tr></thead><tbody>",
        );
        for (cause, n) in &s.recorded.by_cause {
            let _ = write!(h, "<tr><td>{}</td><td>{n}</td></tr>", esc(cause));
        }
        h.push_str("</tbody></table>");
        for (cause, n) in &s.recorded.by_cause {
            if let Some(note) = crate::client::outcome::local_limit_note(cause, *n) {
                let _ = write!(h, "<p class=\"warn\">{}</p>", esc(&note));
            }
        }
    }
    let c = &s.config;
    h.push_str("<h3>Configuration</h3><dl class=\"facts\">");
    let mut fact = |k: &str, v: String| {
        if !v.is_empty() {
            let _ = write!(h, "<div><dt>{}</dt><dd>{}</dd></div>", esc(k), esc(&v));
        }
    };
    fact(
        "scenario file",
        c.source
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    );
    fact("connection", c.connection.clone());
    fact("max in flight", c.max_in_flight.to_string());
    fact(
        "timeouts (connect, bind, request, drain)",
        c.timeouts_s
            .iter()
            .map(|t| format!("{t} s"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    fact("gates", c.gates.join("; "));
    fact("faults", c.faults.join("; "));
    fact(
        "attempts dispatched / abandoned",
        format!("{} / {}", s.dispatched, s.abandoned),
    );
    h.push_str("</dl>");
    if !r.notes.is_empty() {
        h.push_str("<h3>Notes</h3><ul class=\"notes\">");
        for n in &r.notes {
            let _ = write!(h, "<li>{}</li>", esc(n));
        }
        h.push_str("</ul>");
    }
    h.push_str("</section>");
}

/// The page's style sheet: light by default, dark with `prefers-color-scheme: dark`, print
/// in black on white with charts kept whole.
pub(crate) const CSS: &str = r#"
:root{--bg:#fff;--fg:#1b1f24;--muted:#5b6570;--grid:#e3e7eb;--frame:#8a949e;--panel:#f5f7f9;
--band:rgba(214,120,0,.14);--ok:#1a7f37;--bad:#c62828;--warn:#9a6700;
--c1:#1f6feb;--c2:#d4500a;--c3:#1a7f37;--c4:#8250df;--c5:#0f8b8d;--c6:#bf8700;--c7:#cf222e;--c8:#57606a;}
@media (prefers-color-scheme:dark){:root{--bg:#0f1419;--fg:#e6edf3;--muted:#9aa6b2;--grid:#262d34;
--frame:#6e7781;--panel:#161b22;--band:rgba(255,166,87,.16);--ok:#3fb950;--bad:#ff7b72;--warn:#d29922;
--c1:#58a6ff;--c2:#ffa657;--c3:#3fb950;--c4:#d2a8ff;--c5:#56d4dd;--c6:#e3b341;--c7:#ff7b72;--c8:#8b949e;}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:1040px;margin:0 auto;padding:24px}
h1{font-size:1.7em;margin:.2em 0}h2{margin-top:1.6em;border-bottom:1px solid var(--grid);padding-bottom:.2em}
h3{margin-bottom:.3em}
a{color:var(--c1)}code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.92em}
.muted{color:var(--muted)}.ok{color:var(--ok)}.bad{color:var(--bad)}.warn{color:var(--warn)}
.verdict{display:inline-block;font-weight:700;padding:.25em .7em;border-radius:4px;border:2px solid currentColor;margin:.2em 0}
.desc{margin:.3em 0 .8em}
.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:.4em 1.5em;margin:.6em 0}
.facts>div{background:var(--panel);padding:.4em .6em;border-radius:4px}
dt{font-size:.8em;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}
.knee-sentence{font-size:1.15em;font-weight:600;border-left:4px solid var(--ok);padding:.3em .8em;background:var(--panel)}
nav{margin:1em 0;color:var(--muted)}
table{border-collapse:collapse;width:100%;margin:.6em 0;font-size:.92em}
th,td{border-bottom:1px solid var(--grid);padding:.3em .5em;text-align:left;vertical-align:top}
th{color:var(--muted);font-weight:600}
td:not(:first-child){font-variant-numeric:tabular-nums}
.codes td p{margin:0 0 .25em}.codes td:not(:last-child){white-space:nowrap}
figure{margin:1em 0 1.6em;break-inside:avoid;page-break-inside:avoid}
figcaption{font-size:.88em;color:var(--muted);margin-top:.2em}
svg.chart{width:100%;height:auto;display:block;font-size:12px}
svg .axis text{fill:var(--muted)}svg .axis .label{fill:var(--fg);font-weight:600}
svg .grid{stroke:var(--grid);stroke-width:1}svg .frame{stroke:var(--frame);stroke-width:1}
svg .band{fill:var(--band)}
svg .line{fill:none;stroke-width:2;stroke-linejoin:round}svg .dashed{stroke-dasharray:6 4}
svg .rule{stroke-width:1.5;stroke-dasharray:5 4}svg .rule-label,svg .marker-label{font-weight:600}
svg .marker{stroke:var(--bg);stroke-width:2}
.c1{stroke:var(--c1);fill:var(--c1);background:var(--c1);color:var(--c1)}.c2{stroke:var(--c2);fill:var(--c2);background:var(--c2);color:var(--c2)}
.c3{stroke:var(--c3);fill:var(--c3);background:var(--c3);color:var(--c3)}.c4{stroke:var(--c4);fill:var(--c4);background:var(--c4);color:var(--c4)}
.c5{stroke:var(--c5);fill:var(--c5);background:var(--c5);color:var(--c5)}.c6{stroke:var(--c6);fill:var(--c6);background:var(--c6);color:var(--c6)}
.c7{stroke:var(--c7);fill:var(--c7);background:var(--c7);color:var(--c7)}.c8{stroke:var(--c8);fill:var(--c8);background:var(--c8);color:var(--c8)}
svg .line.c1,svg .line.c2,svg .line.c3,svg .line.c4,svg .line.c5,svg .line.c6,svg .line.c7,svg .line.c8{fill:none}
svg .ok{stroke:var(--ok);fill:var(--ok)}svg .bad{stroke:var(--bad);fill:var(--bad)}
svg .warn{stroke:var(--warn);fill:var(--warn)}svg .muted{stroke:var(--muted);fill:var(--muted)}
svg text.rule-label,svg text.marker-label{stroke:var(--bg);stroke-width:4px;paint-order:stroke;stroke-linejoin:round}
svg .marker.ok,svg .marker.bad{stroke:var(--bg)}
.legend{list-style:none;padding:0;margin:.2em 0 0 70px;display:flex;flex-wrap:wrap;gap:.2em 1.2em;font-size:.88em}
.legend .swatch{display:inline-block;width:18px;height:4px;margin:0 .4em .2em 0;vertical-align:middle;border-radius:2px}
.legend .swatch.muted{background:var(--muted)}
.legend .swatch.dashed{height:0;background:none;border-top:3px dashed currentColor}
footer{margin-top:3em;font-size:.8em;color:var(--muted)}
@media print{:root{--bg:#fff;--fg:#000;--muted:#444;--grid:#ddd;--panel:#f4f4f4}
body{font-size:11pt}main{max-width:none;padding:0}nav{display:none}
section{break-before:auto}h2{break-after:avoid}a{color:inherit;text-decoration:none}
.legend .swatch,.facts div,.knee-sentence{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
"#;

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
