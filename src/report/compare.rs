//! Baseline comparison: is this run worse than the last good one? The key figures of two
//! summaries side by side with their change; the changes beyond a tolerance are regressions.
//!
//! ```text
//! metric                      regression when (defaults; all configurable)
//! achieved rate               current < baseline × (1 - 5 %)
//! error rate                  current - baseline > 0.5 percentage points
//! p99 of each phase           current > baseline × (1 + 10 %)  and  current - baseline > 1 ms
//! first activation (per pool) more than 2 clients later than the baseline's, or none where
//!                             the baseline had one
//! gates                       all passed in the baseline, not in the current run
//! new error codes             only with fail_on_new_codes
//! everything else             shown, never a regression: attempts, offered rate, outcome
//!                             shares, p50/p90/p99.9, max count, codes that disappeared
//! ```
//!
//! The 2-client slack on the first activation absorbs concurrency: the figure counts clients
//! *started* up to the activating one, so attempts in flight can move it a little between two
//! runs of the same scenario against the same kind of host.
//!
//! The latency floor keeps a 300 µs → 340 µs p99 (+13 %, noise on a loopback host) from
//! failing a build: a latency change must be relative *and* absolute to count. A metric
//! missing on either side (no samples in a phase) is shown and never a regression, except
//! the first activation, where "never" is worse than any count.
//!
//! Left out: statistical tests across several baseline runs (one baseline, fixed
//! tolerances), and comparing histograms bucket by bucket.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::read::{PHASES, SummaryFile};
use super::svg::fmt_us;
use crate::catalog::Application;
use crate::catalog::hresult;

/// How much worse a figure may get before it is a regression.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Tolerances {
    /// p99 of any phase may rise by this many percent.
    pub p99_pct: f64,
    /// The error rate may rise by this many percentage points.
    pub error_rate_pt: f64,
    /// The achieved rate may fall by this many percent.
    pub rate_pct: f64,
    /// Latency changes smaller than this (µs) are never regressions.
    pub latency_floor_us: u64,
    /// The first activation may come this many distinct clients later.
    pub threshold_clients: u64,
    /// A non-zero code the baseline did not have is a regression.
    pub fail_on_new_codes: bool,
}

impl Default for Tolerances {
    fn default() -> Self {
        Self {
            p99_pct: 10.0,
            error_rate_pt: 0.5,
            rate_pct: 5.0,
            latency_floor_us: 1000,
            threshold_clients: 2,
            fail_on_new_codes: false,
        }
    }
}

/// One compared figure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metric {
    /// `run`, `outcomes`, `latency`, `threshold` or `codes`.
    pub group: &'static str,
    /// Name, e.g. `total p99`.
    pub name: String,
    /// Baseline value (µs for latency, fraction for rates of errors, per second for rates).
    pub baseline: Option<f64>,
    /// Current value.
    pub current: Option<f64>,
    /// Baseline for people.
    pub baseline_text: String,
    /// Current for people.
    pub current_text: String,
    /// The change for people (`+12.3 %`, `+0.62 pt`, `+5`).
    pub change: String,
    /// Beyond the tolerance.
    pub regression: bool,
    /// The rule that decides, when there is one (`limit +10 %`).
    pub rule: Option<String>,
}

/// A code present on one side only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CodeChange {
    /// `0xC004F038`.
    pub code: String,
    /// Symbolic name.
    pub name: String,
    /// Attempts on the side that has it.
    pub count: u64,
}

/// One way the offered load of the two runs differs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadDifference {
    /// `load` (model, rate or clients), `duration`, `attempts` or `connection`.
    pub what: &'static str,
    /// The baseline's, as summary.json's `config` has it.
    pub baseline: String,
    /// The current run's.
    pub current: String,
}

/// The ways the load of `b` and `c` differ. A key an older summary lacks is not compared.
fn load_differences(b: &SummaryFile, c: &SummaryFile) -> Vec<LoadDifference> {
    let (b, c) = (&b.config, &c.config);
    let opt = |v: Option<String>| v.unwrap_or_else(|| "none".to_owned());
    let pairs = [
        ("load", b.load.clone(), c.load.clone()),
        (
            "duration",
            opt(b.max_duration_s.map(|s| format!("{} s", trim(s)))),
            opt(c.max_duration_s.map(|s| format!("{} s", trim(s)))),
        ),
        (
            "attempts",
            opt(b.max_attempts.map(|n| n.to_string())),
            opt(c.max_attempts.map(|n| n.to_string())),
        ),
        ("connection", b.connection.clone(), c.connection.clone()),
    ];
    let older = b.load.is_empty() || c.load.is_empty();
    pairs
        .into_iter()
        .filter(|(_, x, y)| x != y && !older)
        .map(|(what, baseline, current)| LoadDifference {
            what,
            baseline,
            current,
        })
        .collect()
}

/// The result of [`compare`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// How the baseline was named (a path).
    pub baseline: String,
    /// How the current run was named.
    pub current: String,
    /// Scenario names, when they differ (comparing different scenarios is allowed, and said).
    pub scenario_mismatch: Option<(String, String)>,
    /// How the load the two runs offered differs (model and rate or clients, bounds,
    /// connections); empty when it is the same. A "no regression" between different loads
    /// says little, so every output warns about it.
    pub load_differs: Vec<LoadDifference>,
    /// The tolerances applied.
    pub tolerances: Tolerances,
    /// Every compared figure.
    pub metrics: Vec<Metric>,
    /// Non-zero codes only the current run has.
    pub codes_appeared: Vec<CodeChange>,
    /// Non-zero codes only the baseline has.
    pub codes_disappeared: Vec<CodeChange>,
    /// Names of the regressions.
    pub regressions: Vec<String>,
}

/// Compares `current` with `baseline` (see the module docs).
pub fn compare(
    baseline: &SummaryFile,
    current: &SummaryFile,
    names: (&str, &str),
    tol: &Tolerances,
) -> Comparison {
    let mut m = Vec::new();
    m.push(info(
        "run",
        "attempts",
        Some(baseline.recorded.attempts as f64),
        Some(current.recorded.attempts as f64),
        count_text,
        abs_change,
    ));
    m.push(info(
        "run",
        "offered rate",
        baseline.offered_rate,
        current.offered_rate,
        rate_text,
        rel_change,
    ));
    {
        let (b, c) = (baseline.achieved_rate, current.achieved_rate);
        let mut x = info(
            "run",
            "achieved rate",
            Some(b),
            Some(c),
            rate_text,
            rel_change,
        );
        x.regression = c < b * (1.0 - tol.rate_pct / 100.0);
        x.rule = Some(format!("limit -{} %", trim(tol.rate_pct)));
        m.push(x);
    }
    {
        let (b, c) = (baseline.error_rate(), current.error_rate());
        let mut x = info("run", "error rate", Some(b), Some(c), share_text, pt_change);
        // Compared in points, rounded to 1e-9 so 0.5 pt exactly is within the limit.
        x.regression = ((c - b) * 100.0 * 1e9).round() / 1e9 > tol.error_rate_pt;
        x.rule = Some(format!("limit +{} pt", trim(tol.error_rate_pt)));
        m.push(x);
    }
    {
        let passed = |s: &SummaryFile| s.gates.iter().all(|g| g.pass);
        let text = |s: &SummaryFile| {
            let failed = s.gates.iter().filter(|g| !g.pass).count();
            if s.gates.is_empty() {
                "no gates".to_owned()
            } else if failed == 0 {
                "all passed".to_owned()
            } else {
                format!("{failed} of {} failed", s.gates.len())
            }
        };
        m.push(Metric {
            group: "run",
            name: "gates".to_owned(),
            baseline: None,
            current: None,
            baseline_text: text(baseline),
            current_text: text(current),
            change: if passed(baseline) == passed(current) {
                String::new()
            } else if passed(current) {
                "now passing".to_owned()
            } else {
                "now failing".to_owned()
            },
            regression: passed(baseline) && !passed(current),
            rule: Some("all passed before".to_owned()),
        });
    }
    for (name, pick) in [("activated", 0usize), ("not activated", 1), ("failed", 2)] {
        let share = |s: &SummaryFile| {
            let b = &s.recorded.by_outcome;
            let v = [b.activated, b.not_activated, b.failed][pick] as f64;
            (s.recorded.attempts > 0).then(|| v / s.recorded.attempts as f64)
        };
        m.push(info(
            "outcomes",
            &format!("{name} share"),
            share(baseline),
            share(current),
            share_text,
            pt_change,
        ));
    }
    for phase in PHASES {
        let (b, c) = (
            baseline.recorded.latency_us.get(phase),
            current.recorded.latency_us.get(phase),
        );
        for (q, pick) in [("p50", 0usize), ("p90", 1), ("p99", 2), ("p99.9", 3)] {
            let v = |l: Option<crate::record::LatencySummary>| {
                l.map(|l| [l.p50, l.p90, l.p99, l.p999][pick] as f64)
            };
            let mut x = info(
                "latency",
                &format!("{phase} {q}"),
                v(b),
                v(c),
                us_text,
                rel_change,
            );
            if q == "p99" {
                if let (Some(bv), Some(cv)) = (x.baseline, x.current) {
                    x.regression = cv > bv * (1.0 + tol.p99_pct / 100.0)
                        && cv - bv > tol.latency_floor_us as f64;
                }
                x.rule = Some(format!(
                    "limit +{} % and +{}",
                    trim(tol.p99_pct),
                    fmt_us(tol.latency_floor_us as f64)
                ));
            }
            m.push(x);
        }
    }
    // By name, as the report has always listed them.
    let mut pools: Vec<Application> = baseline
        .recorded
        .threshold
        .keys()
        .chain(current.recorded.threshold.keys())
        .copied()
        .collect();
    pools.sort_by_key(|p| p.as_str());
    pools.dedup();
    for pool in pools {
        let first = |s: &SummaryFile| {
            s.recorded
                .threshold
                .get(&pool)
                .map(|t| t.first_activation_after_clients)
        };
        let (b, c) = (first(baseline), first(current));
        let text = |v: Option<Option<u64>>| match v {
            None => "no answers".to_owned(),
            Some(None) => "never".to_owned(),
            Some(Some(k)) => format!("after {k} clients"),
        };
        let regression = match (b, c) {
            (Some(Some(bk)), Some(Some(ck))) => ck > bk.saturating_add(tol.threshold_clients),
            (Some(Some(_)), Some(None)) => true,
            _ => false,
        };
        let change = match (b.flatten(), c.flatten()) {
            (Some(bk), Some(ck)) if bk != ck => format!("{:+}", ck as i64 - bk as i64),
            (Some(_), None) if c.is_some() => "never activated".to_owned(),
            (None, Some(_)) if b.is_some() => "activates now".to_owned(),
            _ => String::new(),
        };
        m.push(Metric {
            group: "threshold",
            name: format!("{} first activation", pool.as_str()),
            baseline: b.flatten().map(|v| v as f64),
            current: c.flatten().map(|v| v as f64),
            baseline_text: text(b),
            current_text: text(c),
            change,
            regression,
            rule: Some(format!("limit +{} clients", tol.threshold_clients)),
        });
    }

    let (bc, cc): (BTreeMap<u32, u64>, BTreeMap<u32, u64>) = (
        baseline.codes().into_iter().filter(|c| c.0 != 0).collect(),
        current.codes().into_iter().filter(|c| c.0 != 0).collect(),
    );
    let change = |code: u32, count: u64| CodeChange {
        code: hresult::hex(code),
        name: hresult::hresult(code).map_or_else(|| "unknown".to_owned(), |h| h.name.clone()),
        count,
    };
    let codes_appeared: Vec<CodeChange> = cc
        .iter()
        .filter(|(k, _)| !bc.contains_key(k))
        .map(|(k, n)| change(*k, *n))
        .collect();
    let codes_disappeared: Vec<CodeChange> = bc
        .iter()
        .filter(|(k, _)| !cc.contains_key(k))
        .map(|(k, n)| change(*k, *n))
        .collect();
    let mut regressions: Vec<String> = m
        .iter()
        .filter(|x| x.regression)
        .map(|x| x.name.clone())
        .collect();
    if tol.fail_on_new_codes {
        regressions.extend(
            codes_appeared
                .iter()
                .map(|c| format!("new code {} {}", c.code, c.name)),
        );
    }
    Comparison {
        baseline: names.0.to_owned(),
        current: names.1.to_owned(),
        scenario_mismatch: (baseline.scenario != current.scenario)
            .then(|| (baseline.scenario.clone(), current.scenario.clone())),
        load_differs: load_differences(baseline, current),
        tolerances: *tol,
        metrics: m,
        codes_appeared,
        codes_disappeared,
        regressions,
    }
}

fn info(
    group: &'static str,
    name: &str,
    baseline: Option<f64>,
    current: Option<f64>,
    text: fn(f64) -> String,
    change: fn(f64, f64) -> String,
) -> Metric {
    let show = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), text);
    Metric {
        group,
        name: name.to_owned(),
        baseline,
        current,
        baseline_text: show(baseline),
        current_text: show(current),
        change: match (baseline, current) {
            (Some(b), Some(c)) => change(b, c),
            _ => String::new(),
        },
        regression: false,
        rule: None,
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn count_text(v: f64) -> String {
    format!("{v:.0}")
}

fn rate_text(v: f64) -> String {
    format!("{v:.1}/s")
}

fn share_text(v: f64) -> String {
    format!("{:.2} %", v * 100.0)
}

fn us_text(v: f64) -> String {
    fmt_us(v)
}

fn abs_change(b: f64, c: f64) -> String {
    if b == c {
        "=".to_owned()
    } else {
        format!("{:+}", c - b)
    }
}

fn rel_change(b: f64, c: f64) -> String {
    if b == c {
        "=".to_owned()
    } else if b == 0.0 {
        "new".to_owned()
    } else {
        format!("{:+.1} %", (c - b) / b * 100.0)
    }
}

fn pt_change(b: f64, c: f64) -> String {
    if b == c {
        "=".to_owned()
    } else {
        format!("{:+.2} pt", (c - b) * 100.0)
    }
}

impl Comparison {
    /// True when at least one figure regressed.
    pub fn regressed(&self) -> bool {
        !self.regressions.is_empty()
    }

    fn verdict(&self) -> String {
        let verdict = match self.regressions.len() {
            0 => "no regression".to_owned(),
            1 => format!("1 regression: {}", self.regressions[0]),
            n => format!("{n} regressions: {}", self.regressions.join(", ")),
        };
        if self.load_differs.is_empty() {
            verdict
        } else {
            format!("{verdict} (under a different load)")
        }
    }

    /// The warning about a different offered load, if it differs.
    fn load_warning(&self) -> Option<String> {
        if self.load_differs.is_empty() {
            return None;
        }
        let list: Vec<String> = self
            .load_differs
            .iter()
            .map(|d| format!("{} {} vs {}", d.what, d.baseline, d.current))
            .collect();
        Some(format!(
            "the runs offered different loads ({}): the figures are not comparable as a \
             regression check",
            list.join("; ")
        ))
    }

    fn codes_lines(&self) -> Vec<String> {
        let list = |v: &[CodeChange]| {
            v.iter()
                .map(|c| format!("{} {} ({})", c.code, c.name, c.count))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut out = Vec::new();
        if !self.codes_appeared.is_empty() {
            out.push(format!(
                "codes new in the current run: {}",
                list(&self.codes_appeared)
            ));
        }
        if !self.codes_disappeared.is_empty() {
            out.push(format!(
                "codes gone since the baseline: {}",
                list(&self.codes_disappeared)
            ));
        }
        out
    }

    /// Aligned plain text for terminals and CI logs.
    pub fn text(&self) -> String {
        let mut s = format!(
            "kmsload compare\n  baseline: {}\n  current:  {}\n",
            self.baseline, self.current
        );
        if let Some((b, c)) = &self.scenario_mismatch {
            let _ = writeln!(s, "  note: different scenarios ({b} vs {c})");
        }
        if let Some(w) = self.load_warning() {
            let _ = writeln!(s, "  warning: {w}");
        }
        let w = self
            .metrics
            .iter()
            .map(|m| m.name.len())
            .max()
            .unwrap_or(6)
            .max(6);
        let _ = writeln!(
            s,
            "\n{:<w$}  {:>16}  {:>16}  {:>10}",
            "metric", "baseline", "current", "change"
        );
        for m in &self.metrics {
            let _ = write!(
                s,
                "{:<w$}  {:>16}  {:>16}  {:>10}",
                m.name, m.baseline_text, m.current_text, m.change
            );
            if m.regression {
                let _ = write!(
                    s,
                    "  REGRESSION{}",
                    m.rule
                        .as_deref()
                        .map_or_else(String::new, |r| format!(" ({r})"))
                );
            }
            s.push('\n');
        }
        for l in self.codes_lines() {
            let _ = writeln!(s, "{l}");
        }
        let _ = writeln!(s, "\nverdict: {}", self.verdict());
        s
    }

    /// GitHub-flavoured Markdown for CI comments.
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "### kmsload compare: {}\n\nbaseline `{}` · current `{}`\n",
            if self.regressed() {
                format!("**{}**", self.verdict())
            } else {
                self.verdict()
            },
            self.baseline.replace('`', "'"),
            self.current.replace('`', "'")
        );
        if let Some((b, c)) = &self.scenario_mismatch {
            let _ = writeln!(s, "\n> different scenarios: `{b}` vs `{c}`");
        }
        if let Some(w) = self.load_warning() {
            let _ = writeln!(s, "\n> **warning:** {w}");
        }
        s.push_str("\n| metric | baseline | current | change | |\n|---|--:|--:|--:|---|\n");
        for m in &self.metrics {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                m.name,
                m.baseline_text,
                m.current_text,
                m.change,
                if m.regression {
                    format!(
                        "**regression**{}",
                        m.rule
                            .as_deref()
                            .map_or_else(String::new, |r| format!(" ({r})"))
                    )
                } else {
                    String::new()
                }
            );
        }
        for l in self.codes_lines() {
            let _ = writeln!(s, "\n{l}");
        }
        s
    }

    /// JSON: this struct.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{HexCode, LatencySummary, ThresholdSummary};
    use crate::report::GateResult;

    fn summary() -> SummaryFile {
        let mut s = SummaryFile {
            schema_version: 1,
            scenario: "smoke".into(),
            achieved_rate: 100.0,
            offered_rate: Some(100.0),
            ..SummaryFile::default()
        };
        s.recorded.attempts = 1000;
        s.recorded.by_outcome.activated = 990;
        s.recorded.by_outcome.failed = 10;
        s.recorded.by_code = [(HexCode(0x0000_0000), 990), (HexCode(0x8007_274D), 10)].into();
        let l = |p99| LatencySummary {
            count: 990,
            p50: 2_000,
            p90: 5_000,
            p99,
            p999: 30_000,
            max: 40_000,
        };
        s.recorded.latency_us.connect = Some(l(300));
        s.recorded.latency_us.total = Some(l(20_000));
        s.recorded.threshold.insert(
            Application::Windows,
            ThresholdSummary {
                required: 25,
                first_activation_after_clients: Some(25),
                ..ThresholdSummary::default()
            },
        );
        s.gates.push(GateResult {
            name: "total p99 < 1s".into(),
            pass: true,
            ..GateResult::default()
        });
        s
    }

    fn run(b: &SummaryFile, c: &SummaryFile) -> Comparison {
        compare(b, c, ("base", "cur"), &Tolerances::default())
    }

    fn metric<'a>(c: &'a Comparison, name: &str) -> &'a Metric {
        c.metrics.iter().find(|m| m.name == name).expect(name)
    }

    #[test]
    fn identical_runs_do_not_regress() {
        let c = run(&summary(), &summary());
        assert!(!c.regressed(), "{}", c.text());
        assert!(c.metrics.iter().all(|m| !m.regression));
        assert_eq!(metric(&c, "total p99").change, "=");
        assert!(
            c.text().ends_with("verdict: no regression\n"),
            "{}",
            c.text()
        );
    }

    #[test]
    fn p99_regresses_beyond_tolerance_and_floor() {
        let b = summary();
        let mut c = summary();
        c.recorded.latency_us.total.as_mut().unwrap().p99 = 22_000; // +10 %: within
        assert!(!run(&b, &c).regressed());
        c.recorded.latency_us.total.as_mut().unwrap().p99 = 22_100; // +10.5 %, +2.1 ms
        let r = run(&b, &c);
        assert_eq!(r.regressions, ["total p99"]);
        assert_eq!(metric(&r, "total p99").change, "+10.5 %");
        // Connect p99 300 µs -> 600 µs is +100 % but only +0.3 ms: under the floor.
        let mut c = summary();
        c.recorded.latency_us.connect.as_mut().unwrap().p99 = 600;
        assert!(!run(&b, &c).regressed());
        let tight = Tolerances {
            latency_floor_us: 0,
            ..Tolerances::default()
        };
        assert!(compare(&b, &c, ("b", "c"), &tight).regressed());
        // p50 doubling is shown but never a regression.
        let mut c = summary();
        c.recorded.latency_us.total.as_mut().unwrap().p50 = 4_000;
        let r = run(&b, &c);
        assert!(!r.regressed());
        assert_eq!(metric(&r, "total p50").change, "+100.0 %");
    }

    #[test]
    fn error_rate_regresses_in_points() {
        let b = summary(); // 1.00 %
        let mut c = summary();
        c.recorded.by_code.insert(HexCode(0x0000_0000), 985);
        c.recorded.by_code.insert(HexCode(0x8007_274D), 15); // 1.50 %: +0.5 pt, within
        assert!(!run(&b, &c).regressed(), "{}", run(&b, &c).text());
        c.recorded.by_code.insert(HexCode(0x0000_0000), 984);
        c.recorded.by_code.insert(HexCode(0x8007_274D), 16); // +0.6 pt
        let r = run(&b, &c);
        assert_eq!(r.regressions, ["error rate"]);
        assert_eq!(metric(&r, "error rate").change, "+0.60 pt");
    }

    #[test]
    fn achieved_rate_regresses_when_it_falls() {
        let b = summary();
        let mut c = summary();
        c.achieved_rate = 95.0;
        assert!(!run(&b, &c).regressed());
        c.achieved_rate = 94.9;
        assert_eq!(run(&b, &c).regressions, ["achieved rate"]);
        c.achieved_rate = 150.0;
        assert!(!run(&b, &c).regressed(), "faster is not a regression");
    }

    #[test]
    fn later_or_missing_activation_and_failing_gates_regress() {
        let b = summary();
        let mut c = summary();
        let set = |c: &mut SummaryFile, k| {
            c.recorded
                .threshold
                .get_mut(&Application::Windows)
                .unwrap()
                .first_activation_after_clients = k;
        };
        set(&mut c, Some(27));
        let r = run(&b, &c);
        assert!(!r.regressed(), "2 clients later is within the slack");
        assert_eq!(metric(&r, "windows first activation").change, "+2");
        set(&mut c, Some(28));
        let r = run(&b, &c);
        assert_eq!(r.regressions, ["windows first activation"]);
        assert!(
            r.text().contains("REGRESSION (limit +2 clients)"),
            "{}",
            r.text()
        );
        c.recorded
            .threshold
            .get_mut(&Application::Windows)
            .unwrap()
            .first_activation_after_clients = None;
        assert_eq!(
            metric(&run(&b, &c), "windows first activation").current_text,
            "never"
        );
        assert!(run(&b, &c).regressed());
        let mut c = summary();
        c.gates[0].pass = false;
        let r = run(&b, &c);
        assert_eq!(r.regressions, ["gates"]);
        assert_eq!(metric(&r, "gates").change, "now failing");
        assert!(
            !run(&c, &b).regressed(),
            "fixing a gate is not a regression"
        );
    }

    #[test]
    fn codes_appearing_and_disappearing_are_listed() {
        let b = summary();
        let mut c = summary();
        c.recorded.by_code.remove(&HexCode(0x8007_274D));
        c.recorded.by_code.insert(HexCode(0xC004_F038), 10);
        let r = run(&b, &c);
        assert!(!r.regressed());
        assert_eq!(r.codes_appeared[0].name, "SL_E_VL_NOT_ENOUGH_COUNT");
        assert_eq!(r.codes_disappeared[0].code, "0x8007274D");
        let strict = Tolerances {
            fail_on_new_codes: true,
            ..Tolerances::default()
        };
        let r = compare(&b, &c, ("b", "c"), &strict);
        assert_eq!(
            r.regressions,
            ["new code 0xC004F038 SL_E_VL_NOT_ENOUGH_COUNT"]
        );
        assert!(
            r.text()
                .contains("codes new in the current run: 0xC004F038")
        );
    }

    #[test]
    fn a_different_load_is_said_in_every_format() {
        let mut b = summary();
        b.config.load = "open, constant 100/s".into();
        b.config.max_duration_s = Some(30.0);
        b.config.connection = "new".into();
        let c = b.clone();
        let same = run(&b, &c);
        assert!(same.load_differs.is_empty());
        assert!(!same.text().contains("warning"), "{}", same.text());
        assert!(!same.json().contains("different load"));

        let mut c = b.clone();
        c.config.load = "open, constant 500/s".into();
        c.config.max_duration_s = Some(10.0);
        let x = run(&b, &c);
        assert!(!x.regressed(), "a different load alone is no regression");
        let whats: Vec<&str> = x.load_differs.iter().map(|d| d.what).collect();
        assert_eq!(whats, ["load", "duration"]);
        let text = x.text();
        assert!(
            text.contains("warning: the runs offered different loads (load open, constant 100/s vs open, constant 500/s; duration 30 s vs 10 s)"),
            "{text}"
        );
        assert!(
            text.contains("verdict: no regression (under a different load)"),
            "{text}"
        );
        assert!(
            x.markdown()
                .contains("> **warning:** the runs offered different loads")
        );
        let json: serde_json::Value = serde_json::from_str(&x.json()).unwrap();
        assert_eq!(json["load_differs"][0]["current"], "open, constant 500/s");
        assert_eq!(json["load_differs"][1]["baseline"], "30 s");

        // A summary from before `config` was written is not guessed at.
        let mut old = b.clone();
        old.config.load = String::new();
        assert!(run(&old, &c).load_differs.is_empty());
    }

    #[test]
    fn formats_say_the_same_thing() {
        let b = summary();
        let mut c = summary();
        c.scenario = "other".into();
        c.achieved_rate = 50.0;
        let r = run(&b, &c);
        let text = r.text();
        assert!(
            text.contains("note: different scenarios (smoke vs other)"),
            "{text}"
        );
        assert!(text.contains("REGRESSION (limit -5 %)"), "{text}");
        let md = r.markdown();
        assert!(
            md.starts_with("### kmsload compare: **1 regression: achieved rate**"),
            "{md}"
        );
        assert!(
            md.contains(
                "| achieved rate | 100.0/s | 50.0/s | -50.0 % | **regression** (limit -5 %) |"
            ),
            "{md}"
        );
        let json: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
        assert_eq!(json["regressions"][0], "achieved rate");
        assert_eq!(json["tolerances"]["p99_pct"], 10.0);
        assert_eq!(json["metrics"].as_array().unwrap().len(), r.metrics.len());
    }
}
