//! Rebuilding the results of a run that was killed (SIGKILL, OOM killer, power loss) before
//! it could write them: `kmsload report DIR` when DIR has events.csv and scenario.toml but no
//! summary.json.
//!
//! ```text
//! scenario.toml ──► Plan (gates, load, fleet as the file says)
//! events.csv ──record::replay──► Recorder (every row flushed before the kill)
//!                                   └──► finish(): summary.json (complete: false, rebuilt),
//!                                        histogram logs, report.md, report.html
//! ```
//!
//! What the rows cannot give back is said in the results' `rebuilt` note: attempts that had
//! not finished, or finished in the last second before the kill (not yet flushed), the
//! command line's overrides (--rate, --duration, --seed, --target: the file's values are
//! shown), the start time (estimated from events.csv's modification time), the offered
//! rate, the load generator's figures, host identity (ePID, HwID) and the in-flight gauge.

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::{CommandError, Finished, RunOptions, finish};
use crate::catalog::lookup;
use crate::record::{GeneratorStats, RunResult, replay};
use crate::report::TargetInfo;
use crate::scenario::{self, Overrides, Target};

/// What [`rebuild`] found, besides the results it wrote.
#[derive(Debug)]
pub struct Rebuilt {
    /// The results written, as a run returns them.
    pub finished: Finished,
    /// Attempts read from events.csv.
    pub attempts: u64,
    /// The last row was half written and left out.
    pub torn_tail: bool,
}

/// Rebuilds summary.json, the histogram logs, report.md and (unless `options.no_html`)
/// report.html in `dir` from its events.csv and scenario.toml. The results are marked
/// incomplete and rebuilt; their gates are evaluated on the attempts found.
///
/// # Errors
/// [`CommandError::Usage`] when `dir` lacks events.csv or scenario.toml, or either cannot be read;
/// [`CommandError::Runtime`] when the results cannot be written.
pub fn rebuild(dir: &Path, options: &RunOptions) -> Result<Rebuilt, CommandError> {
    let usage = |m: String| {
        CommandError::Usage(format!(
            "{}: no summary.json, and the results cannot be rebuilt: {m}",
            dir.display()
        ))
    };
    let scenario_path = dir.join("scenario.toml");
    let text = fs::read_to_string(&scenario_path).map_err(|e| {
        usage(format!(
            "{}: {e} (a run copies its scenario file there when it starts)",
            scenario_path.display()
        ))
    })?;
    let resolve = |s: &str| lookup::find(s).map_err(|e| e.to_string());
    let overrides = Overrides {
        out: Some(dir.to_owned()),
        ..Overrides::default()
    };
    let plan = scenario::parse_str(&text, &scenario_path, &overrides, &resolve)
        .map_err(|e| usage(format!("the scenario no longer validates: {e}")))?;

    let events = dir.join("events.csv");
    let file = fs::File::open(&events).map_err(|e| usage(format!("{}: {e}", events.display())))?;
    let modified = file.metadata().and_then(|m| m.modified()).ok();
    let mut records = Vec::new();
    let end = replay::read_events(
        std::io::BufReader::new(file),
        0,
        &mut replay::Labels::default(),
        true,
        |rec| records.push(rec),
    )
    .map_err(|e| usage(format!("{}: {e}", events.display())))?;
    replay::sort_by_end(&mut records);
    let recorder = replay::record_all(&records);
    let elapsed = Duration::from_micros(records.last().map_or(0, replay::ended_us));
    let started = modified
        .and_then(|m| m.checked_sub(elapsed))
        .unwrap_or(SystemTime::UNIX_EPOCH);

    let target = match &plan.target {
        Target::InProcess(_) => TargetInfo {
            address: "address not recorded".to_owned(),
            in_process: true,
        },
        Target::Remote(r) => TargetInfo {
            address: r.addr(),
            in_process: false,
        },
        Target::Discover(d) => TargetInfo {
            address: format!("discover:{}", d.config.domain),
            in_process: false,
        },
    };
    let attempts = recorder.attempts();
    let note = format!(
        "Rebuilt by `kmsload report` from events.csv ({attempts} attempts{}): the run was \
         killed before it wrote its results. Missing: attempts not finished or not yet \
         flushed when it was killed, command-line overrides (the scenario file's values are \
         shown), the offered rate, the load generator's figures, host identity and the \
         in-flight gauge; the start time is estimated from events.csv's modification time.",
        if end.torn_tail {
            "; a half-written last row was left out"
        } else {
            ""
        }
    );
    let result = RunResult {
        recorder,
        started,
        late_start_us: None,
        elapsed,
        complete: false,
        aborted: None,
        rebuilt: Some(note),
        dispatched: attempts,
        not_started: 0,
        abandoned: 0,
        offered_rate: None,
        achieved_rate: attempts as f64 / elapsed.as_secs_f64().max(1e-9),
        events_error: None,
        generator: GeneratorStats::default(),
        by_host: Vec::new(),
        merge: None,
    };
    let finished = finish(dir, &plan, &target, &result, options)?;
    Ok(Rebuilt {
        finished,
        attempts,
        torn_tail: end.torn_tail,
    })
}
