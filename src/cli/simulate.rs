//! `kmsload simulate SCENARIO`: a fleet's life in virtual time on the host model
//! ([`crate::lifecycle`]). Prints the findings, writes the results directory, evaluates the
//! gates (exit 1 when one fails) and optionally exports the busiest hour as a `run` scenario.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use super::{CliError, Status};
use crate::catalog::lookup;
use crate::lifecycle::{self, LifeOverrides, results};
use crate::report;
use crate::values;

/// Options of `kmsload simulate`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kmsload simulate scenarios/lifecycle-branch-office.toml\n  kmsload simulate scenarios/lifecycle-campus-boot-storm.toml --export-peak peak.toml --speed 10\n  kmsload simulate my-fleet.toml --duration 365d --junit gates.xml\n\nScenario keys and result files are documented in scenarios/README.md (\"Simulated fleets\")."
)]
pub struct SimulateArgs {
    /// Scenario file (TOML with [[hosts]] and [[groups]]; see scenarios/README.md).
    pub scenario: PathBuf,

    /// Override the scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,

    /// Override the simulated span, e.g. 90d, 365d.
    #[arg(long, value_parser = values::parse_nonzero_duration)]
    pub duration: Option<Duration>,

    #[command(flatten)]
    pub out: super::OutArg,

    /// Write a `kmsload run` scenario that replays the busiest simulated hour to FILE.
    #[arg(long, value_name = "FILE")]
    pub export_peak: Option<PathBuf>,

    /// With --export-peak: replay the hour K times faster (the same arrivals in 60/K minutes).
    #[arg(
        long,
        value_name = "K",
        default_value_t = 1.0,
        requires = "export_peak"
    )]
    pub speed: f64,

    /// Also write the gates as JUnit XML to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Print only the findings and the gates.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// Runs `kmsload simulate`.
///
/// # Errors
/// [`CliError::Usage`] for a bad scenario or flag (nothing is started);
/// [`CliError::Runtime`] when the results cannot be written.
pub fn run(args: SimulateArgs) -> Result<Status, CliError> {
    if !(args.speed.is_finite() && (1.0..=3600.0).contains(&args.speed)) {
        return Err(CliError::Usage(format!(
            "--speed {}: must be from 1 to 3600 (e.g. --speed 10 replays the hour in 6 minutes)\nnothing was started",
            args.speed
        )));
    }
    let overrides = LifeOverrides {
        seed: args.seed,
        duration: args.duration,
        out: args.out.out.clone(),
    };
    let resolve = |s: &str| lookup::find(s).map_err(|e| e.to_string());
    let sc = lifecycle::load_life(&args.scenario, &overrides, &resolve).map_err(|e| {
        CliError::Usage(format!(
            "{e}\nnothing was started; see scenarios/README.md (\"Simulated fleets\") for every key"
        ))
    })?;
    let began = Instant::now();
    let outcome = lifecycle::simulate(&sc).map_err(CliError::Usage)?;
    let elapsed = began.elapsed();
    let gates = results::evaluate(&sc, &outcome);
    let findings = results::findings(&sc, &outcome);
    let dir = sc
        .out
        .clone()
        .unwrap_or_else(|| report::default_dir(&sc.name, SystemTime::now()));
    results::write_dir(&dir, &sc, &outcome, &gates, &findings).map_err(|e| {
        CliError::Runtime(format!("cannot write results to {}: {e}", dir.display()))
    })?;
    if !args.quiet {
        crate::outln!(
            "kmsload: simulated {} clients for {} in {:.2} s ({} attempts)",
            results::thousands(outcome.clients),
            lifecycle::spec::show_secs(sc.duration_secs),
            elapsed.as_secs_f64(),
            results::thousands(outcome.totals.iter().sum())
        );
    }
    for f in &findings {
        crate::outln!("- {f}");
    }
    for g in &gates {
        crate::outln!(
            "gate {}: {} (measured {})",
            g.name,
            if g.pass { "pass" } else { "FAIL" },
            g.shown
        );
    }
    if let Some(path) = &args.junit {
        report::write_junit(path, &sc.name, &gates, elapsed.as_secs_f64(), None)
            .map_err(|e| CliError::Runtime(format!("cannot write {}: {e}", path.display())))?;
    }
    if let Some(path) = &args.export_peak {
        std::fs::write(path, results::export_peak(&sc, &outcome, args.speed))
            .map_err(|e| CliError::Runtime(format!("cannot write {}: {e}", path.display())))?;
        crate::outln!(
            "peak hour exported to {} (run it with `kmsload run {}`)",
            path.display(),
            path.display()
        );
    }
    crate::outln!("results: {}", dir.display());
    Ok(if gates.iter().all(|g| g.pass) {
        Status::Success
    } else {
        Status::Failure
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn args(scenario: &Path, out: &Path) -> SimulateArgs {
        SimulateArgs {
            scenario: scenario.to_path_buf(),
            seed: None,
            duration: None,
            out: super::super::OutArg {
                out: Some(out.join("results")),
            },
            export_peak: Some(out.join("peak.toml")),
            speed: 10.0,
            junit: Some(out.join("gates.xml")),
            quiet: true,
        }
    }

    #[test]
    fn exit_status_files_and_junit() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let tmp = std::env::temp_dir().join(format!("kmsload-simulate-cli-{}", std::process::id()));
        // A failing gate: exit 1, every file written, the failure in the JUnit file.
        let branch = root.join("scenarios/lifecycle-branch-office.toml");
        assert_eq!(run(args(&branch, &tmp)).unwrap(), Status::Failure);
        for f in [
            "summary.json",
            "daily.csv",
            "hourly.csv",
            "report.md",
            "report.html",
        ] {
            assert!(tmp.join("results").join(f).is_file(), "{f}");
        }
        let junit = std::fs::read_to_string(tmp.join("gates.xml")).unwrap();
        assert!(junit.contains("<failure"), "{junit}");
        let summary: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(tmp.join("results/summary.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(summary["clients"]["never_activated"], 24);
        assert_eq!(
            summary["pools"][0]["threshold_reached_at"],
            serde_json::Value::Null
        );
        assert!(
            std::fs::read_to_string(tmp.join("peak.toml"))
                .unwrap()
                .contains("[load]")
        );
        // Passing gates: exit 0.
        let outage = root.join("scenarios/lifecycle-new-host.toml");
        assert_eq!(run(args(&outage, &tmp)).unwrap(), Status::Success);
        // Bad input: a usage error (exit 2), nothing written.
        let bad = tmp.join("bad.toml");
        std::fs::write(&bad, "[[groups]]\npower = \"nights\"\n").unwrap();
        let e = run(args(&bad, &tmp.join("never"))).unwrap_err();
        assert!(matches!(e, CliError::Usage(_)), "{e}");
        assert!(!tmp.join("never").exists());
        let mut a = args(&outage, &tmp);
        a.speed = 0.5;
        assert!(matches!(run(a), Err(CliError::Usage(_))));
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
