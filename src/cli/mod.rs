//! `cli`: clap types, value parsers and dispatch. Nothing else depends on this module.
//!
//! Exit codes, for every command (design.md): 0 success, 1 the thing under test failed
//! (not activated, a gate failed), 2 the user's input was wrong (nothing was started).
//!
//! The doc comments of the clap types are `--help` text, not rustdoc: their brackets are the
//! help's notation (`HOST[:PORT]`, `[[hosts]]`), not links.
#![allow(rustdoc::broken_intra_doc_links)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod activate;
pub mod compare;
pub mod explain;
pub mod fault_args;
pub mod host;
pub mod host_args;
pub mod merge;
pub mod output;
pub mod products;
pub mod progress;
pub mod report;
pub mod run;
pub mod simulate;
pub mod validate;

/// KMS client simulator and load tester.
#[derive(Debug, Parser)]
#[command(name = "kmsload", version, about, long_about = None)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Activate one client against a KMS host, like `slmgr /ato` or vlmcs.
    Activate(Box<activate::ActivateArgs>),
    /// Run a load-test scenario (with no target: against the built-in host).
    Run(run::RunArgs),
    /// Run the reference KMS host (loopback by default).
    Host(host::HostArgs),
    /// List the product catalog.
    Products(products::ProductsArgs),
    /// Explain an activation error code.
    Explain(explain::ExplainArgs),
    /// Write the self-contained HTML report of a results directory.
    Report(report::ReportArgs),
    /// Compare a run with a baseline run; exit 1 on a regression.
    Compare(compare::CompareArgs),
    /// Merge the shards of a run (kmsload run --shard I/N) into one result and verdict.
    Merge(merge::MergeArgs),
    /// Check a KMS host before a rollout: one PASS/WARN/FAIL/SKIP line per check.
    Validate(Box<validate::ValidateArgs>),
    /// Simulate a fleet's life in virtual time on the host model (renewals, outages, peaks).
    Simulate(simulate::SimulateArgs),
}

/// `--out DIR` of the commands that write a results directory (`run`, `simulate`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct OutArg {
    // Help in `help` rather than a doc comment: rustdoc would read `<scenario>` as HTML.
    #[arg(
        long,
        value_name = "DIR",
        help = "Results directory (default: results/<scenario>-<UTC time>)"
    )]
    pub out: Option<std::path::PathBuf>,
}

/// How a command ended, when it ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Everything under test succeeded (exit 0).
    Success,
    /// The thing under test failed: not activated, a gate failed (exit 1).
    Failure,
}

/// Why a command could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The user's input was wrong; the message names the problem and the fix (exit 2).
    #[error("{0}")]
    Usage(String),
    /// Something failed while running, e.g. results could not be written (exit 1).
    #[error("{0}")]
    Runtime(String),
}

impl Status {
    /// The process exit code.
    pub fn exit_code(self) -> ExitCode {
        match self {
            Self::Success => ExitCode::SUCCESS,
            Self::Failure => ExitCode::from(1),
        }
    }
}

/// Parses the command line, runs the command and returns the exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr.
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match dispatch(cli.command) {
        Ok(status) => status.exit_code(),
        Err(CliError::Usage(msg)) => {
            crate::errln!("error: {msg}");
            ExitCode::from(2)
        }
        Err(CliError::Runtime(msg)) => {
            crate::errln!("error: {msg}");
            ExitCode::from(1)
        }
    }
}

/// Runs one parsed command.
///
/// # Errors
/// [`CliError`] when the input is wrong or the command could not run.
pub fn dispatch(command: Command) -> Result<Status, CliError> {
    match command {
        Command::Activate(args) => activate::run(*args),
        Command::Run(args) => run::run(args),
        Command::Host(args) => host::run(args),
        Command::Products(args) => products::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Report(args) => report::run(args),
        Command::Merge(args) => merge::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Validate(args) => validate::run(*args),
        Command::Simulate(args) => simulate::run(args),
    }
}
