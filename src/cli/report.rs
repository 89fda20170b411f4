//! `kmsload report RESULTS_DIR [-o FILE]`: the self-contained HTML page of a results
//! directory (see [`crate::report::html`]). `kmsload run` writes the same page at its end
//! ([`crate::run`]).
//!
//! ```text
//! $ kmsload report results/capacity-ramp-20261122T012621Z
//! report: results/capacity-ramp-20261122T012621Z/report.html
//! this host sustains 5000 activations/s with p99 < 500 ms (...)
//! ```
//!
//! When summary.json is missing but events.csv and scenario.toml are there (a run killed
//! with SIGKILL, or by the OOM killer, never wrote its results), the results are first rebuilt
//! from events.csv ([`crate::run::rebuild()`]): summary.json, the histogram logs, report.md and
//! the page, marked incomplete and rebuilt, and a line says so.
//!
//! Exit status: 0 written, 1 the page could not be written (or the results were rebuilt: they
//! are incomplete), 2 the directory cannot be read (no summary.json and nothing to rebuild
//! it from, not a kmsload summary, from a newer kmsload).

use std::path::PathBuf;

use super::{CliError, Status};
use crate::report::{analysis, html, read};

/// Options of `kmsload report`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kmsload report results/smoke-20261122T012621Z\n  kmsload report results/ramp -o /tmp/ramp.html\n\nThe page needs nothing but a browser: no network, no scripts."
)]
pub struct ReportArgs {
    /// A results directory written by `kmsload run` (summary.json, events.csv, ...).
    #[arg(value_name = "RESULTS_DIR")]
    pub dir: PathBuf,
    /// Where to write the page (default: RESULTS_DIR/report.html).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Runs `kmsload report`.
///
/// # Errors
/// [`CliError::Usage`] when the directory cannot be read; [`CliError::Runtime`] when the
/// page cannot be written.
pub fn run(args: ReportArgs) -> Result<Status, CliError> {
    let summary = args.dir.join("summary.json");
    if args.dir.is_dir() && !summary.exists() && args.dir.join("events.csv").is_file() {
        return rebuild(&args);
    }
    let r = read::read_dir(&args.dir).map_err(|e| CliError::Usage(e.to_string()))?;
    for n in &r.notes {
        crate::errln!("note: {n}");
    }
    let path = html::write(&r, args.output.as_deref()).map_err(|e| {
        CliError::Runtime(format!(
            "cannot write {}: {e}",
            args.output
                .as_deref()
                .unwrap_or(&r.dir.join(html::FILE_NAME))
                .display()
        ))
    })?;
    crate::outln!("report: {}", path.display());
    if let Some(k) = analysis::knee(&r).filter(|k| k.is_ramp()) {
        crate::outln!("{}", k.sentence());
    }
    Ok(Status::Success)
}

/// summary.json is missing: rebuilds the results from events.csv, then writes the page
/// where asked.
fn rebuild(args: &ReportArgs) -> Result<Status, CliError> {
    crate::errln!(
        "kmsload report: {} has no summary.json (the run was killed before writing its \
         results): rebuilding them from events.csv; they are marked incomplete",
        args.dir.display()
    );
    let options = crate::run::RunOptions {
        no_html: args.output.is_some(),
        ..crate::run::RunOptions::default()
    };
    let rebuilt = crate::run::rebuild(&args.dir, &options).map_err(|e| match e {
        crate::run::CommandError::Usage(m) => CliError::Usage(m),
        crate::run::CommandError::Runtime(m) => CliError::Runtime(m),
    })?;
    let f = &rebuilt.finished;
    crate::errln!(
        "kmsload report: rebuilt summary.json and report.md from {} attempts in events.csv{}",
        rebuilt.attempts,
        if rebuilt.torn_tail {
            " (its half-written last row was left out)"
        } else {
            ""
        }
    );
    if let Some(e) = &f.report_error {
        return Err(CliError::Runtime(e.to_string()));
    }
    let page =
        match &args.output {
            Some(out) => {
                let r = read::read_dir(&args.dir).map_err(|e| CliError::Runtime(e.to_string()))?;
                Some(html::write(&r, Some(out)).map_err(|e| {
                    CliError::Runtime(format!("cannot write {}: {e}", out.display()))
                })?)
            }
            None => f.page.clone(),
        };
    crate::outln!("{}", f.markdown);
    crate::outln!("results: {}", f.dir.display());
    if let Some(page) = page {
        crate::outln!("report: {}", page.display());
    }
    // Rebuilt results are incomplete: they never pass.
    Ok(Status::Failure)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    #[test]
    fn arguments() {
        let cli =
            Cli::try_parse_from(["kmsload", "report", "results/x", "-o", "/tmp/x.html"]).unwrap();
        let Command::Report(a) = cli.command else {
            panic!("report")
        };
        assert_eq!(a.dir, Path::new("results/x"));
        assert_eq!(a.output.as_deref(), Some(Path::new("/tmp/x.html")));
        assert!(Cli::try_parse_from(["kmsload", "report"]).is_err());
    }

    #[test]
    fn a_missing_directory_is_a_usage_error() {
        let e = run(ReportArgs {
            dir: "/nonexistent/kmsload-results".into(),
            output: None,
        })
        .unwrap_err();
        assert!(
            matches!(&e, CliError::Usage(m) if m.contains("not found")),
            "{e}"
        );
    }
}
