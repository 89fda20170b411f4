//! What the report derives from a results directory beyond the summary's own figures, shared
//! by the HTML page ([`super::html`]), its text twin in report.md ([`twin_markdown`]) and
//! the command line:
//!
//! - [`knee()`]: the capacity knee of an open-model run (see [`super::knee`]), from the
//!   per-second latencies of events.csv;
//! - [`fault_episodes`]: the time ranges to shade — the scenario's fault windows, plus runs
//!   of seconds with faulted attempts outside them (rules without a window);
//! - [`code_rows`]: every code with its count, first and last time seen and the catalog's
//!   explanation.
//!
//! Left out: anything that needs the run itself (the recorder, the plan): this reads files.

use std::fmt::Write as _;

use serde::Serialize;

use super::codes as parse_codes;
use super::knee::{self, DEFAULT_LIMIT_US, Knee, LimitSource, RowMark, SecondLoad};
use super::read::Results;
use super::svg::fmt_us;
use crate::catalog::hresult;

/// The knee of an open-model run whose events.csv was read; `None` otherwise (closed model,
/// or no per-attempt data).
pub fn knee(r: &Results) -> Option<Knee> {
    if !r.summary.is_open_model() {
        return None;
    }
    let events = r.events.as_ref()?;
    // With holds, a second counts only when it lies wholly inside one: the seconds in which
    // a stage ramps from one hold to the next offered a rate nobody asked to measure.
    let holds = &r.summary.config.holds_s;
    let held = |second: u64| {
        holds.is_empty()
            || holds
                .iter()
                .any(|h| second as f64 >= h[0] - 1e-9 && (second + 1) as f64 <= h[1] + 1e-9)
    };
    let ramp_seconds = events
        .seconds
        .iter()
        .filter(|(s, e)| e.started > 0 && !held(**s))
        .count() as u64;
    let seconds: Vec<SecondLoad> = events
        .seconds
        .iter()
        .filter(|(s, _)| held(**s))
        .map(|(&second, s)| SecondLoad {
            second,
            offered: s.started,
            activated: s.activated,
            latency: s.phases[3].clone(),
        })
        .collect();
    let (limit, source) = match r.summary.total_p99_gate() {
        Some((l, name)) => (l, LimitSource::Gate(name.to_owned())),
        None => (DEFAULT_LIMIT_US, LimitSource::Default),
    };
    let mut k = knee::find(&seconds, limit, source, r.summary.max_error_rate_gate());
    k.ramp_seconds = ramp_seconds;
    k.in_process = r.summary.target.in_process;
    Some(k)
}

/// A time range in which faults were injected.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Episode {
    /// Start, s from the run start.
    pub from_s: f64,
    /// End (exclusive), s.
    pub to_s: f64,
    /// `scenario window` or `faulted attempts`.
    pub source: &'static str,
    /// Attempts touched by a fault whose intended start (or, without events.csv, completion)
    /// fell inside.
    pub faulted: u64,
}

/// See the module docs. Sorted by start.
pub fn fault_episodes(r: &Results) -> Vec<Episode> {
    // Faulted attempts per second: by intended start from events.csv, else by completion
    // from the summary's timeline.
    let per_second: Vec<(u64, u64)> = match &r.events {
        Some(e) => e
            .seconds
            .iter()
            .filter(|(_, s)| s.faulted > 0)
            .map(|(k, s)| (*k, s.faulted))
            .collect(),
        None => r
            .summary
            .timeline
            .iter()
            .filter(|t| t.faulted > 0)
            .map(|t| (t.second, t.faulted))
            .collect(),
    };
    let inside = |s: u64, e: &Episode| (s as f64) < e.to_s && (s + 1) as f64 > e.from_s;
    // Rules often share a window: overlapping windows are one episode, so every faulted
    // attempt is counted once and the episodes add up to the faults table.
    let mut windows: Vec<[f64; 2]> = r
        .summary
        .config
        .fault_windows_s
        .iter()
        .filter(|w| w[1] > w[0])
        .copied()
        .collect();
    windows.sort_by(|a, b| a[0].total_cmp(&b[0]));
    let mut out: Vec<Episode> = Vec::new();
    for w in windows {
        match out.last_mut() {
            Some(e) if w[0] <= e.to_s => e.to_s = e.to_s.max(w[1]),
            _ => out.push(Episode {
                from_s: w[0],
                to_s: w[1],
                source: "scenario window",
                faulted: 0,
            }),
        }
    }
    let windows = out.len();
    for &(s, n) in &per_second {
        if let Some(e) = out[..windows].iter_mut().find(|e| inside(s, e)) {
            e.faulted += n;
            continue;
        }
        match out[windows..].last_mut() {
            // Seconds one apart (or touching) belong to one episode.
            Some(e) if (s as f64) <= e.to_s + 1.0 => {
                e.to_s = (s + 1) as f64;
                e.faulted += n;
            }
            _ => out.push(Episode {
                from_s: s as f64,
                to_s: (s + 1) as f64,
                source: "faulted attempts",
                faulted: n,
            }),
        }
    }
    out.sort_by(|a, b| a.from_s.total_cmp(&b.from_s));
    out
}

/// One code of the run, explained.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CodeRow {
    /// The HRESULT.
    pub code: u32,
    /// Symbolic name, or `unknown`.
    pub name: String,
    /// Attempts.
    pub count: u64,
    /// First seen, s from the run start (completion time).
    pub first_s: Option<f64>,
    /// Last seen, s.
    pub last_s: Option<f64>,
    /// What it means.
    pub meaning: String,
    /// The usual reasons.
    pub typical_cause: Option<String>,
    /// What to look at.
    pub what_to_check: Option<String>,
}

/// Every code of the run, S_OK first, then by count (descending). First and last seen come
/// from events.csv (µs precision), else from the timeline (whole seconds).
pub fn code_rows(r: &Results) -> Vec<CodeRow> {
    let mut rows: Vec<CodeRow> = r
        .summary
        .codes()
        .into_iter()
        .map(|(code, count)| {
            let (first_s, last_s) = match r.events.as_ref().and_then(|e| e.codes.get(&code)) {
                Some(seen) => (
                    Some(seen.first_us as f64 / 1e6),
                    Some(seen.last_us as f64 / 1e6),
                ),
                None => {
                    let mut secs = r.summary.timeline.iter().filter(|t| {
                        parse_codes(&t.by_code)
                            .iter()
                            .any(|(c, n)| *c == code && *n > 0)
                    });
                    let first = secs.next().map(|t| t.second as f64);
                    let last = secs.next_back().map(|t| t.second as f64).or(first);
                    (first, last)
                }
            };
            let h = hresult::hresult(code);
            CodeRow {
                code,
                name: h.map_or_else(|| "unknown".to_owned(), |h| h.name.clone()),
                count,
                first_s,
                last_s,
                meaning: h.map_or_else(
                    || {
                        "not in kmsload's catalog (kmsload explain --list shows the known codes)"
                            .to_owned()
                    },
                    |h| h.meaning.clone(),
                ),
                typical_cause: h.and_then(|h| h.typical_cause.clone()),
                what_to_check: h.and_then(|h| h.what_to_check.clone()),
            }
        })
        .collect();
    rows.sort_by_key(|c| (c.code != 0, std::cmp::Reverse(c.count), c.code));
    rows
}

/// `12.3 s`.
pub fn secs(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.2} s")
    } else {
        format!("{s:.1} s")
    }
}

/// The sections report.md gets from the same analysis as the page (its text twin): the
/// knee, codes over time with their explanation, fault episodes, and where the charts are.
pub fn twin_markdown(r: &Results, html: Option<&str>) -> String {
    let mut s = String::new();
    if let Some(k) = knee(r).filter(Knee::is_ramp) {
        let _ = writeln!(s, "\n## Capacity\n\n**{}**\n", k.sentence());
        let _ = writeln!(
            s,
            "p99 limit: {} ({}){}. Offered rates grouped within {:.0} %; a group needs {} fault-free attempts to count.{}\n",
            fmt_us(k.limit_us as f64),
            match &k.limit_source {
                LimitSource::Gate(g) => format!("gate `{g}`"),
                LimitSource::Default => "no `total p99` gate: default".to_owned(),
            },
            k.max_error_rate.map_or_else(String::new, |m| format!(
                "; error limit: {m} (gate `max_error_rate`)"
            )),
            knee::GROUP_TOLERANCE * 100.0,
            knee::MIN_SAMPLES,
            left_out(&k)
        );
        let _ = writeln!(
            s,
            "| {} | |\n|--:|--:|--:|--:|--:|--:|--:|--:|---|",
            Knee::TABLE_HEADER.join(" | ")
        );
        for (cells, mark) in k.table_rows() {
            let note = match mark {
                RowMark::Knee => "**knee**",
                RowMark::HighestWithin => "highest rate offered, within the limits",
                RowMark::FirstOver => "first over the limits",
                RowMark::TooFewSamples => "too few samples",
                RowMark::None => "",
            };
            let _ = writeln!(s, "| {} | {note} |", cells.join(" | "));
        }
    }
    let codes = code_rows(r);
    if codes.iter().any(|c| c.code != 0) {
        let _ = writeln!(
            s,
            "\n## Codes over time\n\n| code | name | count | first seen | last seen | typical cause | what to check |\n|---|---|--:|--:|--:|---|---|"
        );
        for c in codes.iter().filter(|c| c.code != 0) {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} |",
                hresult::hex(c.code),
                c.name,
                c.count,
                c.first_s.map_or_else(|| "-".to_owned(), secs),
                c.last_s.map_or_else(|| "-".to_owned(), secs),
                md_cell(c.typical_cause.as_deref().unwrap_or("-")),
                md_cell(c.what_to_check.as_deref().unwrap_or("-"))
            );
        }
    }
    let episodes = fault_episodes(r);
    if !episodes.is_empty() {
        let _ = writeln!(s, "\n## Fault episodes\n");
        for e in &episodes {
            let _ = writeln!(
                s,
                "- {} – {} ({}): {} touched by a fault",
                secs(e.from_s),
                secs(e.to_s),
                e.source,
                plural(e.faulted, "attempt")
            );
        }
    }
    for n in &r.notes {
        let _ = writeln!(s, "\n> note: {n}");
    }
    if let Some(h) = html {
        let _ = writeln!(s, "\nCharts: {h}");
    }
    s
}

/// `1 second`, `2 seconds`.
pub fn plural(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// What the capacity table leaves out, as a sentence (empty when nothing).
pub fn left_out(k: &Knee) -> String {
    let mut s = String::new();
    if k.ramp_seconds > 0 {
        let _ = write!(
            s,
            " {} in which a stage ramped between two holds {} left out.",
            plural(k.ramp_seconds, "second"),
            if k.ramp_seconds == 1 { "is" } else { "are" }
        );
    }
    if k.ramp_down_seconds > 0 {
        let _ = write!(
            s,
            " {} of ramp-down after the peak {} left out (they carry its backlog).",
            plural(k.ramp_down_seconds, "second"),
            if k.ramp_down_seconds == 1 {
                "is"
            } else {
                "are"
            }
        );
    }
    s
}

fn md_cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{HexCode, TimelineRow};
    use crate::report::SummaryFile;
    use crate::report::read::{EventData, SecondEvents};
    use std::collections::BTreeMap;

    fn results(summary: SummaryFile, events: Option<EventData>) -> Results {
        Results {
            dir: "x".into(),
            summary,
            events,
            histograms: BTreeMap::new(),
            notes: Vec::new(),
        }
    }

    #[test]
    fn episodes_join_windows_and_faulted_seconds() {
        let mut s = SummaryFile::default();
        s.config.fault_windows_s = vec![[20.0, 40.0]];
        let mut e = EventData::default();
        for (sec, n) in [(21u64, 3u64), (39, 1), (50, 2), (51, 1), (53, 1), (60, 4)] {
            e.seconds.insert(
                sec,
                SecondEvents {
                    faulted: n,
                    ..SecondEvents::default()
                },
            );
        }
        let eps = fault_episodes(&results(s, Some(e)));
        let got: Vec<(f64, f64, &str, u64)> = eps
            .iter()
            .map(|e| (e.from_s, e.to_s, e.source, e.faulted))
            .collect();
        assert_eq!(
            got,
            [
                (20.0, 40.0, "scenario window", 4),
                (50.0, 54.0, "faulted attempts", 4),
                (60.0, 61.0, "faulted attempts", 4)
            ]
        );
    }

    #[test]
    fn rules_sharing_a_window_make_one_episode_and_the_counts_add_up() {
        // faults.toml: nine rules with window ["20s", "40s"]; one rule overlapping it.
        let mut s = SummaryFile::default();
        s.config.fault_windows_s = vec![[20.0, 40.0]; 9];
        s.config.fault_windows_s.push([35.0, 45.0]);
        let mut e = EventData::default();
        for (sec, n) in [(21u64, 30u64), (39, 5), (44, 2), (47, 1)] {
            e.seconds.insert(
                sec,
                SecondEvents {
                    faulted: n,
                    ..SecondEvents::default()
                },
            );
        }
        let eps = fault_episodes(&results(s, Some(e)));
        let got: Vec<(f64, f64, u64)> = eps.iter().map(|e| (e.from_s, e.to_s, e.faulted)).collect();
        assert_eq!(got, [(20.0, 45.0, 37), (47.0, 48.0, 1)]);
        assert_eq!(eps.iter().map(|e| e.faulted).sum::<u64>(), 38);
    }

    #[test]
    fn episodes_fall_back_to_the_timeline() {
        let s = SummaryFile {
            timeline: vec![
                TimelineRow {
                    second: 3,
                    faulted: 2,
                    ..TimelineRow::default()
                },
                TimelineRow {
                    second: 4,
                    faulted: 1,
                    ..TimelineRow::default()
                },
            ],
            ..SummaryFile::default()
        };
        let eps = fault_episodes(&results(s, None));
        assert_eq!(eps.len(), 1);
        assert_eq!((eps[0].from_s, eps[0].to_s, eps[0].faulted), (3.0, 5.0, 3));
    }

    #[test]
    fn codes_are_explained_and_timed_from_the_timeline_without_events() {
        let mut s = SummaryFile::default();
        s.recorded.by_code = [
            (HexCode(0x0000_0000), 5),
            (HexCode(0xC004_F038), 7),
            (HexCode(0x1234_5678), 9),
        ]
        .into();
        let row = |second, code: u32| TimelineRow {
            second,
            by_code: [(HexCode(code), 1)].into(),
            ..TimelineRow::default()
        };
        s.timeline = vec![row(1, 0xC004_F038), row(2, 0), row(4, 0xC004_F038)];
        let rows = code_rows(&results(s, None));
        assert_eq!(
            rows.iter().map(|r| r.code).collect::<Vec<_>>(),
            [0, 0x1234_5678, 0xC004_F038]
        );
        let c = &rows[2];
        assert_eq!(c.name, "SL_E_VL_NOT_ENOUGH_COUNT");
        assert_eq!((c.first_s, c.last_s), (Some(1.0), Some(4.0)));
        assert!(c.what_to_check.is_some());
        assert_eq!(rows[1].name, "unknown");
        assert_eq!((rows[1].first_s, rows[1].last_s), (None, None));
    }

    #[test]
    fn closed_runs_and_runs_without_events_have_no_knee() {
        let mut s = SummaryFile::default();
        s.config.load = "closed, 10 clients, think time 0ns".into();
        assert!(knee(&results(s.clone(), Some(EventData::default()))).is_none());
        s.config.load = "open, constant 100/s".into();
        assert!(knee(&results(s.clone(), None)).is_none());
        assert!(knee(&results(s, Some(EventData::default()))).is_some());
    }
}
