//! Live progress of `kmsload run` on stderr, for people watching a terminal or a CI log.
//!
//! ```text
//! terminal (redrawn 4 times a second, two lines of at most 100 columns):
//! ████████████░░░░░░░░░░░░  12.0 s of 60 s  20 %  ETA 48 s
//! 498/s of 500/s offered · in flight 12 · activated 5967 · errors 23 · p99 4.1 ms · 0xC004F074 ×20
//!
//! not a terminal (CI logs): one plain line at 1 s, then every 5 s:
//! progress 6.0 s of 60.0 s, 10 %, ETA 54.0 s: 498/s of 500/s offered, in flight 12, ...
//! ```
//!
//! What ends the run first decides the bar: elapsed of `duration`, or attempts of the
//! `attempts` bound (whichever is further along), with its ETA. Rates and p99 are over the
//! last second: achieved (attempts finished), offered (what the schedule asks for now, open
//! model), p99 of the total time of the fault-free attempts that finished in the last whole
//! second; `errors` are the attempts that did not activate (not activated or failed), the
//! most frequent codes follow while they fit. Nothing here measures: the figures come from
//! the runner's [`Live`] counters.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::catalog::hresult;
use crate::load::Live;
use crate::report::gates::format_us;
use crate::scenario::{LoadModel, Plan};

/// Columns a progress line may take.
pub const WIDTH: usize = 100;
/// Characters of the bar on a terminal.
const BAR: usize = 24;
/// Plain lines: the first after this long, ...
pub const PLAIN_FIRST: Duration = Duration::from_secs(1);
/// ... then one every this long.
pub const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// What ends the run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunEnd {
    /// `[load] duration`.
    pub duration: Option<Duration>,
    /// `[load] attempts`.
    pub attempts: Option<u64>,
}

/// One moment of the run, as the progress shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    /// Since the load started.
    pub elapsed: Duration,
    /// Attempts finished.
    pub finished: u64,
    /// Attempts finished per second, over the last second.
    pub achieved: f64,
    /// Arrivals per second the schedule asks for now (open model).
    pub offered: Option<f64>,
    /// Running now.
    pub in_flight: u64,
    /// Finished and activated.
    pub activated: u64,
    /// Finished, not activated.
    pub not_activated: u64,
    /// Finished, failed.
    pub failed: u64,
    /// p99 of the total time over the last whole second, µs.
    pub p99_us: Option<u64>,
    /// Non-zero codes so far, most frequent first.
    pub codes: Vec<(u32, u64)>,
}

/// How far along the run is: a fraction from 0 to 1 and the time left, from whichever bound
/// is further along; `None` without bounds.
pub fn done(b: RunEnd, f: &Figures) -> Option<(f64, Option<Duration>)> {
    let by_time = b.duration.map(|d| {
        let frac = f.elapsed.as_secs_f64() / d.as_secs_f64().max(1e-9);
        (frac, Some(d.saturating_sub(f.elapsed)))
    });
    let by_count = b.attempts.map(|n| {
        let frac = f.finished as f64 / (n.max(1)) as f64;
        let left = n.saturating_sub(f.finished) as f64;
        let eta = (f.achieved > 0.0).then(|| Duration::from_secs_f64(left / f.achieved));
        (frac, eta)
    });
    let pick = match (by_time, by_count) {
        (Some(t), Some(c)) => {
            if c.0 > t.0 {
                c
            } else {
                t
            }
        }
        (t, c) => t.or(c)?,
    };
    Some((pick.0.clamp(0.0, 1.0), pick.1))
}

/// `12.0 s`, `4 min 10 s`: a time for the progress line.
fn span(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 100.0 {
        format!("{s:.1} s")
    } else if s < 3600.0 {
        format!("{} min {:02} s", d.as_secs() / 60, d.as_secs() % 60)
    } else {
        format!("{} h {:02} min", d.as_secs() / 3600, d.as_secs() / 60 % 60)
    }
}

/// The first line after the bar: where the run is against its bound, and the ETA.
pub fn position(b: RunEnd, f: &Figures) -> String {
    let mut s = match (b.duration, b.attempts) {
        (Some(d), _) => format!("{} of {}", span(f.elapsed), span(d)),
        (None, Some(_)) => span(f.elapsed),
        (None, None) => format!("{} (no bound: Ctrl-C stops)", span(f.elapsed)),
    };
    if let Some(n) = b.attempts {
        let _ = write!(s, ", {} of {n} attempts", f.finished);
    }
    if let Some((frac, eta)) = done(b, f) {
        let _ = write!(s, "  {:.0} %", frac * 100.0);
        if let Some(eta) = eta {
            let _ = write!(s, "  ETA {}", span(eta));
        }
    }
    s
}

/// The figures, labelled, in at most `width` columns: codes are added while they fit.
pub fn figures(f: &Figures, width: usize) -> String {
    let mut s = format!("{:.0}/s", f.achieved);
    if let Some(o) = f.offered {
        let _ = write!(s, " of {o:.0}/s offered");
    } else {
        s.push_str(" achieved");
    }
    let _ = write!(
        s,
        " · in flight {} · activated {} · errors {} · p99 {}",
        f.in_flight,
        f.activated,
        f.not_activated.saturating_add(f.failed),
        f.p99_us.map_or_else(|| "-".to_owned(), format_us)
    );
    for (code, n) in &f.codes {
        let more = format!(" · {} ×{n}", hresult::hex(*code));
        if columns(&s) + columns(&more) > width {
            break;
        }
        s.push_str(&more);
    }
    truncate(s, width)
}

/// The one line printed when stderr is not a terminal.
pub fn plain(b: RunEnd, f: &Figures) -> String {
    format!("progress {}: {}", position(b, f), figures(f, usize::MAX))
        .replace("  ", ", ")
        .replace(" · ", ", ")
}

fn columns(s: &str) -> usize {
    s.chars().count()
}

/// Cuts `s` to `width` columns, ending in `…` when cut.
fn truncate(s: String, width: usize) -> String {
    if columns(&s) <= width {
        return s;
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The two terminal lines (bar and position; figures), each at most [`WIDTH`] columns.
pub fn terminal(b: RunEnd, f: &Figures) -> (String, String) {
    let line1 = match done(b, f) {
        Some((frac, _)) => {
            let full = (frac * BAR as f64).round() as usize;
            format!(
                "{}{}  {}",
                "█".repeat(full.min(BAR)),
                "░".repeat(BAR - full.min(BAR)),
                position(b, f)
            )
        }
        None => position(b, f),
    };
    (truncate(line1, WIDTH), figures(f, WIDTH))
}

/// Shows progress until `done` changes: two redrawn lines on a terminal, a plain line at
/// [`PLAIN_FIRST`] and then every [`PLAIN_EVERY`] otherwise.
pub async fn show(live: Arc<Live>, plan: Plan, mut done: tokio::sync::watch::Receiver<bool>) {
    let start = Instant::now();
    let bounds = RunEnd {
        duration: plan.load.bounds.max_duration,
        attempts: plan.load.bounds.max_attempts,
    };
    let shards = f64::from(plan.load.shard.count.max(1));
    let tty = std::io::stderr().is_terminal();
    let bar = tty.then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            // `wide_msg`: the figures are also cut to a terminal narrower than 100 columns.
            indicatif::ProgressStyle::with_template("{prefix}\n{wide_msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar
    });
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut next_plain = start + PLAIN_FIRST;
    // Samples of (when, finished) over the last second or so, for the achieved rate.
    let mut recent: VecDeque<(Instant, u64)> = VecDeque::from([(start, 0)]);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = done.changed() => {
                if let Some(bar) = bar {
                    bar.finish_and_clear();
                }
                return;
            }
        }
        let now = Instant::now();
        let finished = live.completed.load(Ordering::Relaxed);
        recent.push_back((now, finished));
        while recent.len() > 2 && now.duration_since(recent[1].0) >= Duration::from_secs(1) {
            recent.pop_front();
        }
        let (then, before) = recent[0];
        let snap = live.snapshot.lock().map(|s| s.clone()).unwrap_or_default();
        let elapsed = now.duration_since(start);
        let f = Figures {
            elapsed,
            finished,
            achieved: (finished - before) as f64 / now.duration_since(then).as_secs_f64().max(0.25),
            offered: match &plan.load.model {
                LoadModel::Open(s) => Some(s.rate_at(elapsed) / shards),
                LoadModel::Closed { .. } => None,
            },
            in_flight: live.in_flight.load(Ordering::Relaxed),
            activated: live.activated.load(Ordering::Relaxed),
            not_activated: live.not_activated.load(Ordering::Relaxed),
            failed: live.failed.load(Ordering::Relaxed),
            p99_us: snap.last_second_p99_us,
            codes: snap.codes,
        };
        match &bar {
            Some(bar) => {
                let (line1, line2) = terminal(bounds, &f);
                bar.set_prefix(line1);
                bar.set_message(line2);
            }
            None if now >= next_plain => {
                crate::errln!("{}", plain(bounds, &f));
                next_plain += PLAIN_EVERY;
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn busy() -> Figures {
        Figures {
            elapsed: Duration::from_secs(12),
            finished: 5_990,
            achieved: 498.4,
            offered: Some(500.0),
            in_flight: 12,
            activated: 5_967,
            not_activated: 0,
            failed: 23,
            p99_us: Some(4_100),
            codes: vec![(0xC004_F074, 20), (0x8007_2746, 3)],
        }
    }

    #[test]
    fn a_duration_bound_fills_the_bar_with_a_real_eta() {
        let b = RunEnd {
            duration: Some(Duration::from_secs(60)),
            attempts: None,
        };
        let (frac, eta) = done(b, &busy()).unwrap();
        assert!((frac - 0.2).abs() < 1e-9);
        assert_eq!(eta, Some(Duration::from_secs(48)));
        let (l1, l2) = terminal(b, &busy());
        assert_eq!(
            l1,
            format!(
                "{}{}  12.0 s of 60.0 s  20 %  ETA 48.0 s",
                "█".repeat(5),
                "░".repeat(19)
            )
        );
        assert_eq!(
            l2,
            "498/s of 500/s offered · in flight 12 · activated 5967 · errors 23 · p99 4.1 ms · \
             0xC004F074 ×20"
        );
        assert_eq!(span(Duration::from_secs(250)), "4 min 10 s");
    }

    #[test]
    fn the_bound_further_along_decides() {
        // 60 s or 10 000 attempts: at 12 s, 5990 attempts is further along (60 %).
        let b = RunEnd {
            duration: Some(Duration::from_secs(60)),
            attempts: Some(10_000),
        };
        let (frac, eta) = done(b, &busy()).unwrap();
        assert!((frac - 0.599).abs() < 1e-9);
        // 4010 left at 498.4/s.
        assert_eq!(eta.unwrap().as_secs(), 8);
        assert!(position(b, &busy()).contains("5990 of 10000 attempts  60 %  ETA 8.0 s"));
        let none = RunEnd {
            duration: None,
            attempts: None,
        };
        assert_eq!(done(none, &busy()), None);
        assert!(position(none, &busy()).contains("no bound"));
    }

    #[test]
    fn lines_fit_100_columns_whatever_the_figures() {
        let mut f = busy();
        f.elapsed = Duration::from_secs(400_000);
        f.finished = u64::MAX / 3;
        f.achieved = 1e12;
        f.offered = Some(1e12);
        f.in_flight = u64::MAX;
        f.activated = u64::MAX;
        f.not_activated = u64::MAX;
        f.failed = u64::MAX;
        f.p99_us = Some(3_600_000_000);
        f.codes = (0..40)
            .map(|i| (0xC004_F000 + i, u64::MAX - u64::from(i)))
            .collect();
        let b = RunEnd {
            duration: Some(Duration::from_secs(500_000)),
            attempts: Some(u64::MAX),
        };
        let (l1, l2) = terminal(b, &f);
        assert!(columns(&l1) <= WIDTH, "{} columns: {l1}", columns(&l1));
        assert!(columns(&l2) <= WIDTH, "{} columns: {l2}", columns(&l2));
        assert!(!l1.contains('\n') && !l2.contains('\n'));
        // A typical run shows its codes while they fit, whole: here one of two.
        let (_, l2) = terminal(b, &busy());
        assert!(l2.ends_with("· 0xC004F074 ×20"), "{l2}");
        assert!(!l2.contains("0x8007") && !l2.contains('…'), "{l2}");
    }

    #[test]
    fn the_plain_line_labels_every_figure() {
        let b = RunEnd {
            duration: Some(Duration::from_secs(60)),
            attempts: None,
        };
        assert_eq!(
            plain(b, &busy()),
            "progress 12.0 s of 60.0 s, 20 %, ETA 48.0 s: 498/s of 500/s offered, in flight 12, \
             activated 5967, errors 23, p99 4.1 ms, 0xC004F074 ×20, 0x80072746 ×3"
        );
    }
}
