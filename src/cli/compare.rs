//! `kmsload compare BASELINE CURRENT`: the key figures of two runs side by side, regressions
//! beyond the tolerances flagged (see [`crate::report::compare`] for the rules). BASELINE and
//! CURRENT are results directories or summary.json files.
//!
//! ```text
//! $ kmsload compare results/smoke-good results/smoke-now --format markdown
//! ### kmsload compare: **1 regression: total p99**
//! | metric | baseline | current | change | |
//! | total p99 | 3.1 ms | 4.4 ms | +41.9 % | **regression** (limit +10 % and +1 ms) |
//! ```
//!
//! Exit status: 0 no regression, 1 a regression, 2 an input that cannot be read (missing,
//! not a kmsload summary, from a newer kmsload) or a bad flag. The tolerance flags are shared
//! with `kmsload run --baseline DIR`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{CliError, Status};
use crate::report::compare::{Comparison, Tolerances, compare};
use crate::report::read::{SummaryFile, read_summary};
use crate::values;

/// Output format of a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for terminals and CI logs.
    Text,
    /// A GitHub-flavoured Markdown table, for CI comments.
    Markdown,
    /// Every figure with its verdict, for machines.
    Json,
}

/// How much worse a run may get before it counts as a regression.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct ToleranceArgs {
    /// p99 of any phase may rise by this much (and by more than --latency-floor).
    #[arg(long, value_name = "PERCENT", default_value = "10%", value_parser = parse_percent)]
    pub p99_tolerance: f64,
    /// The error rate may rise by this many percentage points.
    #[arg(long, value_name = "POINTS", default_value = "0.5", value_parser = parse_points)]
    pub error_rate_tolerance: f64,
    /// The achieved rate may fall by this much.
    #[arg(long, value_name = "PERCENT", default_value = "5%", value_parser = parse_percent)]
    pub rate_tolerance: f64,
    /// Latency changes smaller than this are noise, never regressions.
    #[arg(long, value_name = "DURATION", default_value = "1ms", value_parser = values::parse_duration)]
    pub latency_floor: Duration,
    /// The first activation of a pool may come this many distinct clients later (attempts
    /// in flight move it a little between runs).
    #[arg(long, value_name = "CLIENTS", default_value_t = 2)]
    pub threshold_tolerance: u64,
    /// An error code the baseline did not have counts as a regression.
    #[arg(long)]
    pub fail_on_new_codes: bool,
}

impl ToleranceArgs {
    /// The tolerances these flags ask for.
    pub fn tolerances(&self) -> Tolerances {
        Tolerances {
            p99_pct: self.p99_tolerance,
            error_rate_pt: self.error_rate_tolerance,
            rate_pct: self.rate_tolerance,
            latency_floor_us: u64::try_from(self.latency_floor.as_micros()).unwrap_or(u64::MAX),
            threshold_clients: self.threshold_tolerance,
            fail_on_new_codes: self.fail_on_new_codes,
        }
    }
}

/// Options of `kmsload compare`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kmsload compare results/smoke-good results/smoke-20261122T012621Z\n  kmsload compare base/summary.json cur/summary.json --format markdown > comment.md\n  kmsload compare base cur --p99-tolerance 20% --error-rate-tolerance 1 --rate-tolerance 10%\n\nExit status: 0 no regression, 1 a regression, 2 an input cannot be read."
)]
pub struct CompareArgs {
    /// The last good run: a results directory or its summary.json.
    pub baseline: PathBuf,
    /// The run to judge: a results directory or its summary.json.
    pub current: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Tolerances.
    #[command(flatten)]
    pub tolerances: ToleranceArgs,
}

/// Runs `kmsload compare`.
///
/// # Errors
/// [`CliError::Usage`] when an input cannot be read; [`CliError::Runtime`] when stdout
/// cannot be written.
pub fn run(args: CompareArgs) -> Result<Status, CliError> {
    let baseline = load(&args.baseline, "baseline")?;
    let current = load(&args.current, "current run")?;
    let c = judge(
        &baseline,
        &current,
        (&args.baseline, &args.current),
        &args.tolerances,
    );
    let text = match args.format {
        Format::Text => c.text(),
        Format::Markdown => c.markdown(),
        Format::Json => c.json() + "\n",
    };
    super::products::print(&text)?;
    Ok(if c.regressed() {
        Status::Failure
    } else {
        Status::Success
    })
}

/// Reads one side, as a usage error naming `what` when it cannot be.
///
/// # Errors
/// [`CliError::Usage`] with the reader's message.
pub fn load(path: &Path, what: &str) -> Result<SummaryFile, CliError> {
    read_summary(path).map_err(|e| CliError::Usage(format!("{what}: {e}")))
}

/// The comparison of two loaded summaries named by their paths.
pub fn judge(
    baseline: &SummaryFile,
    current: &SummaryFile,
    paths: (&Path, &Path),
    tolerances: &ToleranceArgs,
) -> Comparison {
    compare(
        baseline,
        current,
        (
            &paths.0.display().to_string(),
            &paths.1.display().to_string(),
        ),
        &tolerances.tolerances(),
    )
}

/// Reads a percentage: `10%`, `10 %` or `10`; at least 0.
///
/// # Errors
/// A message naming the value and the expected form.
pub fn parse_percent(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let digits = t.strip_suffix('%').unwrap_or(t).trim();
    match digits.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!(
            "'{t}' is not a percentage; expected e.g. 10% or 2.5"
        )),
    }
}

/// Reads percentage points: `0.5`, `0.5pt` or `0.5 pt`; at least 0.
///
/// # Errors
/// A message naming the value and the expected form.
pub fn parse_points(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let digits = t.strip_suffix("pt").unwrap_or(t).trim();
    match digits.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!(
            "'{t}' is not a number of percentage points; expected e.g. 0.5"
        )),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    #[test]
    fn percentages_and_points() {
        assert_eq!(parse_percent("10%"), Ok(10.0));
        assert_eq!(parse_percent(" 2.5 % "), Ok(2.5));
        assert_eq!(parse_percent("7"), Ok(7.0));
        assert!(parse_percent("-1%").is_err());
        assert!(
            parse_percent("ten")
                .unwrap_err()
                .contains("'ten' is not a percentage")
        );
        assert!(parse_percent("NaN").is_err());
        assert_eq!(parse_points("0.5"), Ok(0.5));
        assert_eq!(parse_points("1pt"), Ok(1.0));
        assert_eq!(parse_points("1 pt"), Ok(1.0));
        assert!(parse_points("1%").is_err());
    }

    #[test]
    fn flags_have_the_documented_defaults() {
        let cli = Cli::try_parse_from(["kmsload", "compare", "a", "b"]).unwrap();
        let Command::Compare(args) = cli.command else {
            panic!("compare")
        };
        assert_eq!(args.format, Format::Text);
        assert_eq!(args.tolerances.tolerances(), Tolerances::default());
        let cli = Cli::try_parse_from([
            "kmsload",
            "compare",
            "a",
            "b",
            "--format",
            "markdown",
            "--p99-tolerance",
            "20%",
            "--error-rate-tolerance",
            "1",
            "--rate-tolerance",
            "2.5",
            "--latency-floor",
            "250ms",
            "--threshold-tolerance",
            "0",
            "--fail-on-new-codes",
        ])
        .unwrap();
        let Command::Compare(args) = cli.command else {
            panic!("compare")
        };
        assert_eq!(args.format, Format::Markdown);
        assert_eq!(
            args.tolerances.tolerances(),
            Tolerances {
                p99_pct: 20.0,
                error_rate_pt: 1.0,
                rate_pct: 2.5,
                latency_floor_us: 250_000,
                threshold_clients: 0,
                fail_on_new_codes: true,
            }
        );
        assert!(Cli::try_parse_from(["kmsload", "compare", "a"]).is_err());
        assert!(Cli::try_parse_from(["kmsload", "compare", "a", "b", "--format", "xml"]).is_err());
        assert!(
            Cli::try_parse_from(["kmsload", "compare", "a", "b", "--p99-tolerance", "x"]).is_err()
        );
    }

    #[test]
    fn unreadable_inputs_are_usage_errors() {
        let e = load(Path::new("/nonexistent/kmsload-base"), "baseline").unwrap_err();
        assert!(
            matches!(&e, CliError::Usage(m) if m.starts_with("baseline: /nonexistent/kmsload-base")),
            "{e}"
        );
    }
}
