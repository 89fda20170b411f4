//! `kmsload merge DIR... --out DIR`: one result, with one verdict, from the shards of a run.
//! The merge itself is [`crate::report::merge`]; this command parses its flags, writes the
//! merged result as `kmsload run` writes one (summary.json with a `merge` block listing the
//! shards, the histogram logs, events.csv on the merged clock, report.md and report.html
//! with a per-shard table, JUnit, a baseline comparison) and sets the exit code: 2 when the
//! directories are not the shards of one run (nothing is written), 1 when a gate fails or
//! the result is incomplete.

use std::fs;
use std::path::PathBuf;

use super::{CliError, Status};
use crate::report::merge;

/// Options of `kmsload merge`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kmsload merge results/run-7/shard-* --out results/run-7/merged\n  kmsload merge a b c --out merged --allow-missing --junit gates.xml"
)]
pub struct MergeArgs {
    /// The shards' results directories (each written by `kmsload run --shard I/N`).
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,

    /// Where to write the merged result.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Merge even when shards are missing; the result names them and is marked incomplete
    /// (and so does not pass).
    #[arg(long)]
    pub allow_missing: bool,

    /// Also write the gates as JUnit XML to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Do not write report.html.
    #[arg(long)]
    pub no_html: bool,

    /// Compare the merged result with this earlier run, as `kmsload run --baseline` does.
    #[arg(long, value_name = "DIR")]
    pub baseline: Option<PathBuf>,

    /// Tolerances of the --baseline comparison (as for `kmsload compare`).
    #[command(flatten)]
    pub tolerances: super::compare::ToleranceArgs,
}

fn usage(message: String) -> CliError {
    CliError::Usage(format!("{message}\nnothing was merged"))
}

/// Runs `kmsload merge`.
///
/// # Errors
/// [`CliError::Usage`] when the directories are not the shards of one run (nothing is
/// written); [`CliError::Runtime`] when the merged result cannot be written.
pub fn run(args: MergeArgs) -> Result<Status, CliError> {
    let merged = merge::merge(&args.dirs, &args.out, args.allow_missing)
        .map_err(|e| usage(e.to_string()))?;
    fs::create_dir_all(&args.out)
        .map_err(|e| CliError::Runtime(format!("cannot create {}: {e}", args.out.display())))?;
    fs::write(args.out.join("scenario.toml"), &merged.scenario_text)
        .map_err(|e| CliError::Runtime(format!("cannot write {}: {e}", args.out.display())))?;
    merged
        .write_events(&args.out)
        .map_err(|e| CliError::Runtime(format!("cannot write the merged events.csv: {e}")))?;
    let options = crate::run::RunOptions {
        junit: args.junit.clone(),
        no_html: args.no_html,
        baseline: args.baseline.clone(),
        tolerances: args.tolerances.tolerances(),
    };
    let result = &merged.result;
    let mut f = crate::run::finish(&args.out, &merged.plan, &merged.target, result, &options)
        .map_err(from_run)?;
    crate::outln!("{}", f.markdown);
    crate::outln!("results: {}", f.dir.display());
    super::run::print_report(&mut f)?;
    if let Err(e) = result.recorder.invariant_check() {
        return Err(CliError::Runtime(format!(
            "accounting check failed after the merge: {e} (this is a kmsload bug)"
        )));
    }
    if !f.complete {
        crate::errln!("merged result is incomplete: a shard is missing or was interrupted");
        return Ok(Status::Failure);
    }
    Ok(if f.passed() {
        Status::Success
    } else {
        Status::Failure
    })
}

fn from_run(e: crate::run::CommandError) -> CliError {
    match e {
        crate::run::CommandError::Usage(m) => CliError::Usage(m),
        crate::run::CommandError::Runtime(m) => CliError::Runtime(m),
    }
}
