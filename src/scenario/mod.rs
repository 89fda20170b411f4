//! `scenario`: the scenario file format (TOML), its defaults and its validation into a
//! [`Plan`], the typed description of a run that [`crate::load`] executes. Nothing here
//! starts anything: no sockets, no clock, no randomness.
//!
//! ```text
//! file text ──► KeyMap::scan (where every key is)
//!     │
//!     └──► toml + serde ──► raw structs (shape: known keys, types, enum names)
//!                               │  + Overrides (--target, --rate, --duration, --seed, --out,
//!                               │               --confirm-target), applied first
//!                               ▼
//!                           validate (defaults, ranges, cross-key rules) ──► Plan
//! ```
//!
//! Every problem becomes a [`ScenarioError`] naming file, line, column and key, with a hint:
//! `scenarios/x.toml:12:1: [load] rate: must be > 0, found -5 (hint: ...)`. Unknown keys get
//! "did you mean" suggestions. Validation collects every problem, not just the first; a
//! syntax or type error stops at that error (the parser cannot go on).
//!
//! The format, every key and its default are documented in `scenarios/README.md`; the tests
//! at the bottom check that every ready scenario in `scenarios/` validates and that the
//! README lists every key the structs accept.
//!
//! Left out on purpose: product *name* matching (the caller passes a resolver; the catalog's
//! fuzzy lookup is plugged in by the CLI, [`resolve_exact`] is the strict fallback), and
//! everything about executing a plan.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::catalog::{Product, products};
use crate::load::shard::RunOverrides;

pub(crate) mod error;
pub(crate) mod locate;
mod plan;
pub(crate) mod raw;
pub(crate) mod validate;

pub use error::{Error, ScenarioError};
pub use locate::Position;
pub use plan::{
    Bounds, ClientPlan, ClientReuse, ConnectionPolicy, CutPoint, DEFAULT_SEED, Direction,
    DiscoverTarget, EventsMode, FaultKind, FaultRule, FleetPlan, Gate, GateAbort, HostKeyPlan,
    HostOptions, LatencyOf, Load, LoadModel, NdrMode, Plan, ProductShare, Region, RemoteTarget,
    Schedule, Stage, StallPhase, StaticSrv, Target, Timeouts, Window,
};

/// Values from the command line that replace keys of the file. They are applied before
/// validation, so a bad value is reported against its flag (`--rate: must be > 0`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    /// `--target HOST[:PORT]`: replaces `target` (the file's `[host]` section is then
    /// ignored, since no in-process host is started).
    pub target: Option<String>,
    /// `--confirm-target HOST`: confirms a non-loopback target; replaces `confirm_target`.
    pub confirm_target: Option<String>,
    /// `--rate R`: a constant open-model rate, replacing `rate`, `stages` or `bursts`.
    /// An error for a closed-model scenario.
    pub rate: Option<f64>,
    /// `--duration D`: replaces `[load] duration`. The command line's bounds replace the
    /// file's together: with `--duration` alone, the file's `attempts` does not apply.
    pub duration: Option<Duration>,
    /// `--attempts N`: replaces `[load] attempts`; alone, the file's `duration` does not
    /// apply (a stages schedule still ends with its last stage).
    pub attempts: Option<u64>,
    /// `--seed N`: replaces `seed`.
    pub seed: Option<u64>,
    /// `--out DIR`: replaces `out`.
    pub out: Option<PathBuf>,
    /// `--source-address ADDR,...`: replaces `[load] source_addresses`.
    pub source_addresses: Option<Vec<String>>,
    /// `--events MODE`: replaces `events`.
    pub events: Option<EventsMode>,
}

impl From<&Overrides> for RunOverrides {
    /// The overrides as summary.json records them (seed and output directory are recorded
    /// elsewhere).
    fn from(o: &Overrides) -> Self {
        Self {
            target: o.target.clone(),
            confirm_target: o.confirm_target.clone(),
            rate: o.rate,
            duration_s: o.duration.map(|d| d.as_secs_f64()),
            attempts: o.attempts,
            events: o.events,
            source_addresses: o.source_addresses.clone(),
        }
    }
}

impl From<&RunOverrides> for Overrides {
    /// The overrides summary.json recorded (seed and output directory unset).
    fn from(r: &RunOverrides) -> Self {
        Self {
            target: r.target.clone(),
            confirm_target: r.confirm_target.clone(),
            rate: r.rate,
            duration: r
                .duration_s
                .and_then(|s| Duration::try_from_secs_f64(s).ok()),
            attempts: r.attempts,
            events: r.events,
            source_addresses: r.source_addresses.clone(),
            ..Self::default()
        }
    }
}

/// Reads and validates a scenario file.
///
/// `resolve` turns a product as written (name, GVLK or SKU ID) into a catalog row, or an
/// error message that is shown as is; [`resolve_exact`] is a strict one.
///
/// # Errors
/// [`Error::Read`] if the file cannot be read, [`Error::Invalid`] with every problem found.
pub fn load_file(
    path: &Path,
    overrides: &Overrides,
    resolve: &dyn Fn(&str) -> Result<&'static Product, String>,
) -> Result<Plan, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        file: path.to_path_buf(),
        source,
    })?;
    parse_str(&text, path, overrides, resolve)
}

/// Validates scenario text; `file` is used in messages, for the default name (its stem) and
/// as [`Plan::source`].
///
/// # Errors
/// [`Error::Invalid`] with every problem found.
pub fn parse_str(
    text: &str,
    file: &Path,
    overrides: &Overrides,
    resolve: &dyn Fn(&str) -> Result<&'static Product, String>,
) -> Result<Plan, Error> {
    let map = locate::KeyMap::scan(text);
    let (raw, found) = deserialize_reporting_every_unknown_key(text, file, &map);
    let Some(raw) = raw else {
        return Err(Error::Invalid(found));
    };
    if !found.is_empty() {
        // Every unknown key is named; the value checks wait until they are fixed, since a
        // misspelt key would otherwise also show up as the key it should have been missing.
        return Err(Error::Invalid(found));
    }
    let mut cx = validate::Ctx::new(file, text, &map);
    match validate::validate(&mut cx, raw, overrides, Some(file), resolve) {
        Some(plan) => Ok(plan),
        None => Err(Error::Invalid(cx.finish())),
    }
}

/// Deserialises the scenario; serde stops at the first unknown key, so each one found is
/// recorded, blanked out of a copy of the text (byte offsets kept, so every position still
/// points into the file as written) and the parse retried. A syntax or type error ends the
/// loop (the parser cannot go on past it); after an unknown key it is left for the next run. Returns the scenario without the unknown keys
/// (if it then parsed) and the problems found.
fn deserialize_reporting_every_unknown_key(
    text: &str,
    file: &Path,
    map: &locate::KeyMap,
) -> (Option<raw::RawScenario>, Vec<ScenarioError>) {
    let mut found = Vec::new();
    let mut work = text.as_bytes().to_vec();
    // Each pass blanks at least one byte range, so the count of keys bounds the passes.
    for _ in 0..=text.len().min(10_000) {
        let attempt = std::str::from_utf8(&work)
            .ok()
            .map(toml::from_str::<raw::RawScenario>);
        let Some(result) = attempt else { break };
        let err = match result {
            Ok(raw) => return (Some(raw), in_file_order(found)),
            Err(e) => e,
        };
        let unknown = err.message().trim_start().starts_with("unknown field ");
        if !unknown && !found.is_empty() {
            // Blanking a key inside an inline table leaves its comma behind; what the parser
            // says after a blanking may be about our edit, not the file, so it waits.
            break;
        }
        found.push(error::from_toml(&err, file.to_path_buf(), text, map));
        let span = err
            .span()
            .and_then(|s| map.entry_span_at(s.start))
            .filter(|r| r.end <= work.len());
        let (true, Some(span)) = (unknown, span) else {
            break;
        };
        if work[span.clone()].iter().all(|b| b.is_ascii_whitespace()) {
            break;
        }
        for b in &mut work[span] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
    }
    (None, in_file_order(found))
}

/// The parser meets unknown keys in its own table order (sorted by name, not by line), so
/// the problems are put back in the order they appear in the file.
fn in_file_order(mut found: Vec<ScenarioError>) -> Vec<ScenarioError> {
    found.sort_by_key(|e| e.position.map_or((usize::MAX, 0), |p| (p.line, p.column)));
    found
}

/// A strict product resolver: exact edition name (ignoring case), GVLK, or SKU ID.
///
/// # Errors
/// A message naming the text that matched nothing.
pub fn resolve_exact(text: &str) -> Result<&'static Product, String> {
    let t = text.trim();
    let all = products();
    if let Some(p) = all.iter().find(|p| p.name.eq_ignore_ascii_case(t)) {
        return Ok(p);
    }
    if let Some(p) = all
        .iter()
        .find(|p| p.gvlk.as_deref().is_some_and(|g| g.eq_ignore_ascii_case(t)))
    {
        return Ok(p);
    }
    if let Ok(id) = uuid::Uuid::parse_str(t)
        && let Some(p) = all.iter().find(|p| p.sku_id == id)
    {
        return Ok(p);
    }
    Err(format!("unknown product \"{t}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "scenarios/t.toml";

    fn parse_with(text: &str, ov: &Overrides) -> Result<Plan, Error> {
        parse_str(text, Path::new(FILE), ov, &resolve_exact)
    }

    fn parse(text: &str) -> Result<Plan, Error> {
        parse_with(text, &Overrides::default())
    }

    fn problems(text: &str, ov: &Overrides) -> Vec<ScenarioError> {
        match parse_with(text, ov) {
            Ok(plan) => panic!("expected an error, got {plan:#?}"),
            Err(e) => e.problems().to_vec(),
        }
    }

    /// Asserts the only problem is at `line`, names `key`, and its text contains `needle`.
    fn assert_error(text: &str, line: usize, key: &str, needle: &str) -> ScenarioError {
        let all = problems(text, &Overrides::default());
        assert_eq!(all.len(), 1, "{all:#?}");
        let e = all.into_iter().next().unwrap();
        let shown = e.to_string();
        assert_eq!(e.position.map(|p| p.line), Some(line), "{shown}");
        assert_eq!(e.key, key, "{shown}");
        assert!(shown.starts_with(&format!("{FILE}:{line}:")), "{shown}");
        assert!(shown.contains(&format!(": {key}: ")), "{shown}");
        assert!(shown.contains(needle), "{shown}");
        e
    }

    const BOUND: &str = "[load]\nduration = \"1s\"\n";

    mod hosts;
    mod shards;

    // ---- errors from the parser -------------------------------------------------------

    #[test]
    fn unknown_key_suggests_the_nearest() {
        let e = assert_error(
            "[load]\ndurration = \"5s\"\n",
            2,
            "[load] durration",
            "unknown key",
        );
        assert_eq!(e.hint.as_deref(), Some("did you mean `duration`?"));
        assert_eq!(e.position.unwrap().column, 1);
        assert_error("sede = 3\n", 1, "sede", "did you mean `seed`?");
        assert_error(
            "[[faults]]\nkind = \"refuse\"\nprobabilty = 0.5\n",
            3,
            "[[faults]] #1 probabilty",
            "did you mean `probability`?",
        );
    }

    #[test]
    fn every_unknown_key_is_reported_in_one_run() {
        let text = "sede = 3\n[load]\nduration = \"1s\"\nrte = 5\n\n[[faults]]\nkind = \"refuse\"\nprobabilty = 0.5\n[fleet.skew]\nknd = \"none\"\n";
        let all = problems(text, &Overrides::default());
        let keys: Vec<&str> = all.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "sede",
                "[load] rte",
                "[[faults]] #1 probabilty",
                "[fleet.skew] knd"
            ],
            "{all:#?}"
        );
        let lines: Vec<usize> = all.iter().map(|e| e.position.unwrap().line).collect();
        assert_eq!(lines, [1, 4, 8, 10]);
    }

    #[test]
    fn unknown_section_with_its_keys_is_one_problem() {
        let all = problems(
            "[lod]\nrate = 5\nduration = \"1s\"\n",
            &Overrides::default(),
        );
        assert!(all[0].to_string().contains("unknown key `lod`"), "{all:#?}");
        assert!(
            all.iter()
                .all(|e| !e.to_string().contains("unknown key `rate`")),
            "{all:#?}"
        );
    }

    #[test]
    fn unknown_key_from_another_section_says_where_it_belongs() {
        assert_error(
            "[fleet]\nrate = 5\n",
            2,
            "[fleet] rate",
            "`rate` belongs in [load]",
        );
        assert_error(
            "[load]\nxyzzy = 5\n",
            2,
            "[load] xyzzy",
            "keys allowed here: model, rate",
        );
    }

    #[test]
    fn unknown_key_in_inline_table() {
        assert_error(
            "[load]\nstages = [\n  { duration = \"1s\", rate = 5 },\n  { duratoin = \"1s\", rate = 5 },\n]\n",
            4,
            "[load] stages #2 duratoin",
            "did you mean `duration`?",
        );
    }

    #[test]
    fn wrong_type_names_what_was_expected() {
        let e = assert_error("[load]\nduration = 5\n", 2, "[load] duration", "wrong type");
        assert!(e.hint.unwrap().contains("\"5s\""));
        assert_error(
            "[load]\nrate = \"fast\"\n",
            2,
            "[load] rate",
            "attempts per second",
        );
        assert_error(
            "[host]\ncharged = \"yes\"\n",
            2,
            "[host] charged",
            "true or false",
        );
        assert_error("seed = -1\n", 1, "seed", "must not be negative");
    }

    #[test]
    fn unknown_enum_value_suggests_the_nearest() {
        assert_error(
            "[load]\nmodel = \"opne\"\n",
            2,
            "[load] model",
            "did you mean \"open\"?",
        );
        assert_error(
            "[fleet]\nreuse = \"always\"\n",
            2,
            "[fleet] reuse",
            "allowed: \"renew\", \"new\"",
        );
    }

    #[test]
    fn missing_required_key_in_a_list_entry() {
        let all = problems(
            "[load]\nstages = [\n  { rate = 5 },\n]\n",
            &Overrides::default(),
        );
        assert_eq!(all.len(), 1);
        let e = &all[0];
        assert_eq!(e.position.map(|p| p.line), Some(3), "{e}");
        assert!(
            e.to_string().contains("required key `duration` is missing"),
            "{e}"
        );
    }

    #[test]
    fn syntax_errors_keep_the_line() {
        let all = problems("seed = 1\n[load\nrate = 5\n", &Overrides::default());
        assert_eq!(all[0].position.map(|p| p.line), Some(2), "{}", all[0]);
    }

    // ---- errors from validation -------------------------------------------------------

    #[test]
    fn impossible_values() {
        assert_error(
            "[load]\nduration = \"1s\"\nrate = -5\n",
            3,
            "[load] rate",
            "must be > 0",
        );
        assert_error(
            "[load]\nduration = \"1s\"\n[[faults]]\nkind = \"refuse\"\nprobability = 1.5\n",
            5,
            "[[faults]] #1 probability",
            "not between 0 and 1",
        );
        assert_error(
            "[load]\nstages = [\n  { duration = \"5s\", rate = 5 },\n  { duration = \"0s\", rate = 50 },\n]\n",
            4,
            "[load] stages #2 duration",
            "longer than 0s",
        );
        assert_error(
            &format!("{BOUND}[fleet]\nvm_fraction = 2.0\n"),
            4,
            "[fleet] vm_fraction",
            "not between 0 and 1",
        );
        assert_error(
            &format!("{BOUND}[fleet]\nprotocol = 7\n"),
            4,
            "[fleet] protocol",
            "4, 5 and 6",
        );
        assert_error(
            &format!("{BOUND}[fleet]\nsize = 0\n"),
            4,
            "[fleet] size",
            "at least 1",
        );
        assert_error(
            &format!("{BOUND}[gates]\nlatency = [{{ percentile = 101, below = \"1s\" }}]\n"),
            4,
            "[gates] latency #1 percentile",
            "not a percentile",
        );
        assert_error(
            "[load]\nduration = \"1m\"\nbursts = { burst_rate = 100, every = \"10s\", length = \"10s\" }\n",
            3,
            "[load.bursts] length",
            "does not fit",
        );
        assert_error(
            &format!("{BOUND}[fleet.skew]\nkind = \"uniform\"\nmin = \"6h\"\nmax = \"-6h\"\n"),
            6,
            "[fleet.skew] max",
            "below min",
        );
        assert_error(
            &format!("{BOUND}[host]\nactivation_interval = \"5m\"\n"),
            4,
            "[host] activation_interval",
            "15m to 30d",
        );
    }

    #[test]
    fn no_bound_is_an_error() {
        assert_error("[load]\nrate = 5\n", 1, "[load]", "no bound");
        let all = problems("", &Overrides::default());
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].position, None);
        assert!(
            all[0]
                .to_string()
                .starts_with("scenarios/t.toml: [load]: the run has no bound")
        );
    }

    #[test]
    fn bad_duration_strings() {
        assert_error(
            "[load]\nduration = \"5 sec\"\n",
            2,
            "[load] duration",
            "contains a space",
        );
        assert_error(
            "[load]\nduration = \"5y\"\n",
            2,
            "[load] duration",
            "unknown unit 'y'",
        );
        assert_error(
            &format!("{BOUND}[[faults]]\nkind = \"refuse\"\nwindow = [\"20s\", \"forty\"]\n"),
            5,
            "[[faults]] #1 window #2",
            "is not a number",
        );
    }

    /// Issue 12 item 11 / issue 11: a file and a flag read values with one grammar, so a bare
    /// number is refused in both with the same words, and microseconds work in both.
    #[test]
    fn a_file_value_reads_as_the_same_flag_value_would() {
        let e = assert_error(
            "[load]\nduration = \"5\"\n",
            2,
            "[load] duration",
            "has no unit",
        );
        let flag = crate::values::parse_duration("5").unwrap_err();
        assert_eq!(e.message, flag.problem);
        assert_eq!(e.hint, Some(format!("write {}", flag.kind.expected())));
        let ov = Overrides::default();
        let plan = parse_with(
            "[load]\nduration = \"1s\"\n[timeouts]\nconnect = \"800us\"\n",
            &ov,
        )
        .unwrap();
        assert_eq!(plan.timeouts.connect, Duration::from_micros(800));
        let skew = problems(
            &format!("{BOUND}[fleet.skew]\nkind = \"fixed\"\noffset = \"1500ms\"\n"),
            &ov,
        );
        assert!(
            skew[0].message.contains("one-second resolution"),
            "{skew:#?}"
        );
        assert_eq!(
            Some(skew[0].message.clone()),
            crate::values::parse_skew("1500ms").err().map(|e| e.problem)
        );
    }

    #[test]
    fn unknown_product_shows_the_resolvers_message() {
        let e = assert_error(
            &format!(
                "{BOUND}[fleet]\nproducts = [\n  {{ product = \"Windows 10/11 Pro\" }},\n  {{ product = \"Windows 12 Ultra\" }},\n]\n"
            ),
            6,
            "[fleet] products #2 product",
            "unknown product \"Windows 12 Ultra\"",
        );
        assert!(e.hint.unwrap().contains("kmsload products"));
        // A resolver's own wording is passed through untouched.
        let custom =
            |s: &str| -> Result<&'static Product, String> { Err(format!("no such thing: {s}")) };
        let err = parse_str(
            &format!("{BOUND}[fleet]\nproducts = [{{ product = \"X\" }}]\n"),
            Path::new(FILE),
            &Overrides::default(),
            &custom,
        )
        .unwrap_err();
        assert!(err.to_string().contains("no such thing: X"), "{err}");
    }

    #[test]
    fn non_loopback_target_needs_confirmation() {
        let e = assert_error(
            &format!("target = \"kms.example.com\"\n{BOUND}"),
            1,
            "target",
            "without confirmation",
        );
        let hint = e.hint.unwrap();
        assert!(
            hint.contains("30 days") && hint.contains("licence"),
            "{hint}"
        );
        assert!(hint.contains("--confirm-target kms.example.com"), "{hint}");

        let plan = parse(&format!(
            "target = \"kms.example.com:1700\"\nconfirm_target = \"kms.example.com\"\n{BOUND}"
        ))
        .unwrap();
        let Target::Remote(r) = plan.target else {
            panic!()
        };
        assert_eq!(
            (r.host.as_str(), r.port, r.loopback),
            ("kms.example.com", 1700, false)
        );

        assert_error(
            &format!(
                "target = \"kms.example.com\"\nconfirm_target = \"other.example.com\"\n{BOUND}"
            ),
            2,
            "confirm_target",
            "but the target is `kms.example.com`",
        );
        // Loopback needs nothing.
        for t in [
            "127.0.0.1:1688",
            "127.0.0.9",
            "[::1]:1688",
            "localhost:1688",
        ] {
            let plan = parse(&format!("target = \"{t}\"\n{BOUND}")).unwrap();
            assert!(
                matches!(
                    plan.target,
                    Target::Remote(RemoteTarget { loopback: true, .. })
                ),
                "{t}"
            );
        }
    }

    #[test]
    fn host_section_with_a_target_is_an_error() {
        assert_error(
            &format!("target = \"127.0.0.1\"\n{BOUND}[host]\ncharged = true\n"),
            4,
            "[host]",
            "not started",
        );
    }

    #[test]
    fn conflicting_keys() {
        assert_error(
            "[load]\nduration = \"1s\"\nrate = 5\nstages = [{ duration = \"1s\", rate = 5 }]\n",
            4,
            "[load] stages",
            "both set the arrival schedule",
        );
        assert_error(
            "[load]\nmodel = \"closed\"\nduration = \"1s\"\nrate = 5\n",
            4,
            "[load] rate",
            "open model",
        );
        assert_error(
            "[load]\nduration = \"1s\"\nclients = 5\n",
            3,
            "[load] clients",
            "add model = \"closed\"",
        );
        assert_error(
            "[load]\nduration = \"1s\"\nrequests_per_connection = 5\n",
            3,
            "[load] requests_per_connection",
            "keep-alive",
        );
        assert_error(
            &format!(
                "{BOUND}[[faults]]\nkind = \"delay\"\non = \"send\"\ndelay = \"1s\"\nregion = \"stub\"\n"
            ),
            7,
            "[[faults]] #1 region",
            "does not apply to kind = \"delay\"",
        );
        assert_error(
            &format!(
                "{BOUND}[fleet]\nprotocol = 5\nproducts = [{{ product = \"Windows 10/11 Pro\", protocol = 6 }}]\n"
            ),
            5,
            "[fleet] products #1 protocol",
            "conflicts",
        );
    }

    #[test]
    fn cross_section_checks() {
        assert_error(
            "[load]\nattempts = 100\n[fleet]\nsize = 60\nreuse = \"new\"\n",
            2,
            "[load] attempts",
            "the fleet has 60",
        );
        assert_error(
            "[load]\nduration = \"1s\"\nsource_addresses = [\"127.0.0.2\", \"10.0.0.1\"]\n",
            3,
            "[load] source_addresses #2",
            "in-process host",
        );
        assert_error(
            "[load]\nduration = \"1m\"\nrate = 100\n[gates]\nmin_achieved_rate = 200\n",
            5,
            "[gates] min_achieved_rate",
            "can never pass",
        );
        assert_error(
            "[load]\nduration = \"30s\"\n[[faults]]\nkind = \"refuse\"\nwindow = [\"40s\", \"50s\"]\n",
            5,
            "[[faults]] #1 window #1",
            "after the run ends",
        );
        assert_error(
            &format!(
                "{BOUND}[gates]\nthreshold = {{ within = 5, application = \"office-2013\" }}\n"
            ),
            4,
            "[gates.threshold] application",
            "no office-2013+ products",
        );
        assert_error(
            &format!(
                "{BOUND}[gates]\nthreshold = {{ within = 5, application = \"office-2013+\" }}\n"
            ),
            4,
            "[gates.threshold] application",
            "no office-2013+ products",
        );
    }

    #[test]
    fn every_problem_is_reported_in_file_order() {
        let all = problems(
            "[fleet]\nvm_fraction = -1\nsize = 0\n[load]\nrate = 0\n",
            &Overrides::default(),
        );
        let lines: Vec<usize> = all
            .iter()
            .filter_map(|e| e.position.map(|p| p.line))
            .collect();
        assert_eq!(lines, vec![2, 3, 5], "{all:#?}");
    }

    // ---- overrides ------------------------------------------------------------------

    #[test]
    fn overrides_replace_file_keys() {
        let text = "seed = 7\nout = \"results/a\"\n[load]\nstages = [{ duration = \"20s\", rate = 100 }]\n";
        let plan = parse(text).unwrap();
        assert_eq!(plan.seed, 7);
        assert_eq!(plan.load.bounds.max_duration, Some(Duration::from_secs(20)));
        let ov = Overrides {
            rate: Some(250.0),
            duration: Some(Duration::from_secs(3)),
            seed: Some(42),
            out: Some(PathBuf::from("/tmp/x")),
            ..Overrides::default()
        };
        let plan = parse_with(text, &ov).unwrap();
        assert_eq!(plan.seed, 42);
        assert_eq!(plan.out, Some(PathBuf::from("/tmp/x")));
        assert_eq!(
            plan.load.model,
            LoadModel::Open(Schedule::Constant { rate: 250.0 })
        );
        assert_eq!(plan.load.bounds.max_duration, Some(Duration::from_secs(3)));
    }

    #[test]
    fn duration_flag_supplies_the_missing_bound() {
        let ov = Overrides {
            duration: Some(Duration::from_secs(2)),
            ..Overrides::default()
        };
        let plan = parse_with("", &ov).unwrap();
        assert_eq!(
            plan.load.bounds,
            Bounds {
                max_duration: Some(Duration::from_secs(2)),
                max_attempts: None
            }
        );
    }

    #[test]
    fn bounds_from_the_command_line_replace_the_files_together() {
        let text = "[load]\nrate = 100\nattempts = 300\nduration = \"5s\"\n";
        let bounds = |ov: Overrides| parse_with(text, &ov).unwrap().load.bounds;
        let secs = Duration::from_secs;
        assert_eq!(
            bounds(Overrides::default()),
            Bounds {
                max_duration: Some(secs(5)),
                max_attempts: Some(300)
            }
        );
        // `--rate 500 --duration 30s`: 30 s at 500/s, not the file's 300 attempts.
        let both = Overrides {
            rate: Some(500.0),
            duration: Some(secs(30)),
            ..Overrides::default()
        };
        assert_eq!(
            bounds(both),
            Bounds {
                max_duration: Some(secs(30)),
                max_attempts: None
            }
        );
        let attempts = Overrides {
            attempts: Some(1000),
            ..Overrides::default()
        };
        assert_eq!(
            bounds(attempts),
            Bounds {
                max_duration: None,
                max_attempts: Some(1000)
            }
        );
        let pair = Overrides {
            attempts: Some(10),
            duration: Some(secs(2)),
            ..Overrides::default()
        };
        assert_eq!(
            bounds(pair),
            Bounds {
                max_duration: Some(secs(2)),
                max_attempts: Some(10)
            }
        );
        // `--rate` alone keeps the file's bounds.
        let rate = Overrides {
            rate: Some(500.0),
            ..Overrides::default()
        };
        assert_eq!(bounds(rate).max_attempts, Some(300));
        let zero = Overrides {
            attempts: Some(0),
            ..Overrides::default()
        };
        let all = problems(text, &zero);
        assert_eq!(all.len(), 1, "{all:#?}");
        assert!(all[0].to_string().contains("--attempts"), "{}", all[0]);
    }

    #[test]
    fn events_mode_from_the_file_and_the_flag() {
        assert_eq!(parse(BOUND).unwrap().events, EventsMode::Full);
        let text = format!("events = \"failures\"\n{BOUND}");
        assert_eq!(parse(&text).unwrap().events, EventsMode::Failures);
        let ov = Overrides {
            events: Some(EventsMode::Off),
            ..Overrides::default()
        };
        assert_eq!(parse_with(&text, &ov).unwrap().events, EventsMode::Off);
        assert_error(&format!("events = \"some\"\n{BOUND}"), 1, "events", "full");
    }

    #[test]
    fn bad_flag_values_name_the_flag() {
        let ov = Overrides {
            rate: Some(-1.0),
            ..Overrides::default()
        };
        let all = problems(BOUND, &ov);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].position, None);
        assert_eq!(
            all[0].to_string(),
            format!(
                "{FILE}: --rate: must be > 0, found -1 (hint: rates are attempts per second, e.g. 500)"
            )
        );
        let closed = "[load]\nmodel = \"closed\"\nduration = \"1s\"\n";
        let ov = Overrides {
            rate: Some(5.0),
            ..Overrides::default()
        };
        assert_eq!(problems(closed, &ov)[0].key, "--rate");
    }

    #[test]
    fn target_flag_overrides_and_needs_its_own_confirmation() {
        let text = format!("target = \"127.0.0.1\"\n{BOUND}");
        let ov = Overrides {
            target: Some("kms.corp:1688".into()),
            ..Overrides::default()
        };
        let all = problems(&text, &ov);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].key, "--target");
        assert!(all[0].to_string().contains("30 days"));
        let ov = Overrides {
            confirm_target: Some("KMS.corp".into()),
            ..ov
        };
        let plan = parse_with(&text, &ov).unwrap();
        assert_eq!(
            plan.target,
            Target::Remote(RemoteTarget {
                host: "kms.corp".into(),
                port: 1688,
                loopback: false
            })
        );
        // --target replaces the in-process host; the file's [host] is then ignored.
        let with_host = format!("{BOUND}[host]\ncharged = true\n");
        let ov = Overrides {
            target: Some("127.0.0.1:1689".into()),
            ..Overrides::default()
        };
        assert!(matches!(
            parse_with(&with_host, &ov).unwrap().target,
            Target::Remote(_)
        ));
    }

    // ---- defaults -------------------------------------------------------------------

    /// Issue 12, item 13: `host_key = "all"` activated retail editions while
    /// `kmsload host --host-key all` refused them. Both are now the `all` host key group, which
    /// like a real host refuses retail and preview KMS IDs.
    #[test]
    fn host_key_all_is_the_host_commands_all_and_refuses_retail() {
        for word in ["all", "ALL"] {
            let p = parse(&format!("{BOUND}\n[host]\nhost_key = \"{word}\"\n")).unwrap();
            let Target::InProcess(h) = &p.target else {
                panic!("{:?}", p.target)
            };
            let HostKeyPlan::Group(key) = &h.host_key else {
                panic!("{:?}", h.host_key)
            };
            assert!(std::ptr::eq(
                *key,
                crate::host::HostKey::lookup("all").unwrap()
            ));
            let home = crate::catalog::lookup::find("Windows 10/11 Home").unwrap();
            assert!(home.kms_id_name.contains("Retail"));
            assert!(!h.host_key.accepts(home), "a real host refuses retail");
        }
    }

    #[test]
    fn defaults_are_deterministic() {
        let a = parse(BOUND).unwrap();
        let b = parse(BOUND).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.name, "t");
        assert_eq!(a.seed, DEFAULT_SEED);
        assert_eq!(a.seed, 1);
        assert_eq!(a.source.as_deref(), Some(Path::new(FILE)));
        let Target::InProcess(h) = &a.target else {
            panic!("{:?}", a.target)
        };
        assert_eq!(
            *h,
            HostOptions {
                name: "kms01".into(),
                address: std::net::Ipv4Addr::LOCALHOST,
                port: 0,
                down: Vec::new(),
                charged: false,
                host_key: HostKeyPlan::VolumeOnly,
                time_check: true,
                ndr64: true,
                btfn: true,
                close_after_response: false,
                activation_interval: Duration::from_secs(7200),
                renewal_interval: Duration::from_secs(604_800),
            }
        );
        assert_eq!(a.fleet.size, 1000);
        assert_eq!(a.fleet.products.len(), 1);
        assert_eq!(a.fleet.products[0].product.name, "Windows 10/11 Pro");
        assert_eq!(a.fleet.products[0].protocol, 6);
        assert_eq!(a.fleet.vm_fraction, 0.0);
        assert_eq!(a.fleet.skew, crate::sim::SkewDist::Fixed(0));
        assert_eq!(a.fleet.reuse, ClientReuse::Renew);
        assert_eq!(a.fleet.cmid_pool, None);
        assert_eq!(
            a.client,
            ClientPlan {
                ndr: NdrMode::Windows,
                btfn: true
            }
        );
        assert_eq!(
            a.load.model,
            LoadModel::Open(Schedule::Constant { rate: 10.0 })
        );
        assert_eq!(a.load.connection, ConnectionPolicy::NewPerActivation);
        assert_eq!(a.load.max_in_flight, 10_000);
        assert!(a.load.source_addresses.is_empty());
        let s = Duration::from_secs;
        assert_eq!(
            a.timeouts,
            Timeouts {
                connect: s(5),
                bind: s(5),
                request: s(5),
                drain: s(10)
            }
        );
        assert!(a.gates.is_empty() && a.faults.is_empty());
        assert_eq!(a.out, None);
        assert_eq!(a.description, None);
    }

    #[test]
    fn a_full_file_becomes_the_expected_plan() {
        let text = r#"
name = "full"
seed = 9
[host]
port = 1700
host_key = ["Windows Server 2022", "Office 2021"]
close_after_response = true
[fleet]
size = 50
cmid_pool = 20
protocol = 5
products = [{ product = "W269N-WFGWX-YVC9B-4J6C9-T83GX", weight = 2 }, { product = "{a80b5abf-76ad-428b-b05d-a47d2dffeebf}" }]
skew = { kind = "list", offsets = ["-5h", "0s", "+5h"] }
[client]
ndr = "ndr32-only"
btfn = false
[load]
model = "closed"
clients = 4
think_time = "100ms"
attempts = 1000
connection = "keep-alive"
requests_per_connection = 10
source_addresses = ["127.0.0.2", "127.0.0.3"]
[timeouts]
drain = "0s"
[gates]
max_error_rate = 0.01
allowed_codes = [0, "0xc004f038", 0]
threshold = { within = 25 }
latency = [{ phase = "bind", percentile = 99.9, below = "50ms" }]
[[faults]]
kind = "corrupt"
region = "stub"
bytes = 2
probability = 0.5
[[faults]]
kind = "stall"
window = ["1s", "2s"]
"#;
        let p = parse(text).unwrap();
        assert_eq!((p.name.as_str(), p.seed), ("full", 9));
        let Target::InProcess(h) = &p.target else {
            panic!()
        };
        assert_eq!(h.port, 1700);
        assert!(h.close_after_response);
        let HostKeyPlan::KmsIds(ids) = &h.host_key else {
            panic!()
        };
        assert_eq!(ids.len(), 2);
        assert_eq!(p.fleet.products[0].product.name, "Windows 10/11 Pro");
        assert_eq!(p.fleet.products[0].weight, 2.0);
        assert_eq!(p.fleet.products[1].product.name, "Windows 10/11 Pro N");
        assert!(p.fleet.products.iter().all(|s| s.protocol == 5));
        assert_eq!(p.fleet.cmid_pool, Some(20));
        assert_eq!(
            p.fleet.skew,
            crate::sim::SkewDist::List(vec![-5 * 3600, 0, 5 * 3600])
        );
        assert_eq!(
            p.client,
            ClientPlan {
                ndr: NdrMode::Ndr32Only,
                btfn: false
            }
        );
        assert_eq!(
            p.load.model,
            LoadModel::Closed {
                clients: 4,
                think_time: Duration::from_millis(100)
            }
        );
        assert_eq!(p.load.max_in_flight, 4);
        assert_eq!(
            p.load.connection,
            ConnectionPolicy::KeepAlive {
                requests_per_connection: Some(10)
            }
        );
        assert_eq!(
            p.load.bounds,
            Bounds {
                max_duration: None,
                max_attempts: Some(1000)
            }
        );
        assert_eq!(p.load.source_addresses.len(), 2);
        assert_eq!(p.timeouts.drain, Duration::ZERO);
        assert_eq!(
            p.gates,
            vec![
                Gate::Latency {
                    phase: crate::record::LatencyPhase::Bind,
                    of: LatencyOf::Activated,
                    percentile: 99.9,
                    below: Duration::from_millis(50)
                },
                Gate::MaxErrorRate(0.01),
                Gate::ThresholdWithin {
                    application: None,
                    clients: 25
                },
                Gate::AllowedCodes(vec![0, 0xC004_F038]),
            ]
        );
        assert_eq!(
            p.faults,
            vec![
                FaultRule {
                    kind: FaultKind::Corrupt {
                        region: Region::Stub,
                        bytes: 2
                    },
                    probability: 0.5,
                    window: None
                },
                FaultRule {
                    kind: FaultKind::Stall {
                        phase: StallPhase::Request,
                        duration: None
                    },
                    probability: 1.0,
                    window: Some(Window {
                        start: Duration::from_secs(1),
                        end: Duration::from_secs(2)
                    }),
                },
            ]
        );
    }

    #[test]
    fn resolve_exact_takes_names_gvlks_and_sku_ids() {
        let pro = resolve_exact("windows 10/11 pro").unwrap();
        assert_eq!(pro.name, "Windows 10/11 Pro");
        assert_eq!(
            resolve_exact("W269N-WFGWX-YVC9B-4J6C9-T83GX").unwrap().name,
            pro.name
        );
        assert_eq!(
            resolve_exact(&pro.sku_id.to_string()).unwrap().name,
            pro.name
        );
        assert_eq!(
            resolve_exact("Windows 11 Pro").unwrap_err(),
            "unknown product \"Windows 11 Pro\""
        );
    }

    // ---- the ready scenarios and their documentation ----------------------------------

    fn scenario_files() -> Vec<PathBuf> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            // lifecycle-*.toml are `kmsload simulate` scenarios (crate::lifecycle tests them).
            .filter(|p| {
                !p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("lifecycle-"))
            })
            .collect();
        files.sort();
        files
    }

    #[test]
    fn every_ready_scenario_validates() {
        let files = scenario_files();
        assert!(files.len() >= 7, "{files:?}");
        for f in files {
            let plan = load_file(&f, &Overrides::default(), &resolve_exact)
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            assert_eq!(
                Some(plan.name.as_str()),
                f.file_stem().and_then(|s| s.to_str())
            );
            assert!(plan.description.is_some(), "{}", f.display());
            // Every ready scenario runs on a fresh machine: in-process hosts only.
            let in_process = match &plan.target {
                Target::InProcess(_) => true,
                Target::Discover(d) => d.srv.is_some(),
                Target::Remote(_) => false,
            };
            assert!(in_process, "{}", f.display());
        }
    }

    #[test]
    fn ready_scenarios_say_what_their_readme_paragraphs_say() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let load = |name: &str| {
            load_file(
                &dir.join(format!("{name}.toml")),
                &Overrides::default(),
                &resolve_exact,
            )
            .unwrap()
        };
        let smoke = load("smoke");
        let LoadModel::Open(s) = &smoke.load.model else {
            panic!()
        };
        let wall = smoke
            .load
            .bounds
            .max_duration
            .unwrap()
            .min(Duration::from_secs_f64(
                smoke.load.bounds.max_attempts.unwrap() as f64 / s.peak_rate(),
            ));
        assert!(wall <= Duration::from_secs(5), "{wall:?}");
        assert!((200..=500).contains(&smoke.load.bounds.max_attempts.unwrap()));
        let protocols: HashSet<u16> = smoke.fleet.products.iter().map(|p| p.protocol).collect();
        assert_eq!(protocols.len(), 3);

        let threshold = load("threshold");
        assert!(matches!(
            threshold.target,
            Target::InProcess(HostOptions { charged: false, .. })
        ));
        assert!(threshold.gates.contains(&Gate::ThresholdWithin {
            application: Some(crate::catalog::Application::Windows),
            clients: 25
        }));

        let skew = load("clock-skew");
        assert!(matches!(
            skew.fleet.skew,
            crate::sim::SkewDist::Uniform { .. }
        ));

        let ramp = load("capacity-ramp");
        let LoadModel::Open(s) = &ramp.load.model else {
            panic!()
        };
        assert_eq!(s.peak_rate(), 20_000.0);
        assert_eq!(s.natural_end(), Some(Duration::from_secs(60)));

        let faults = load("faults");
        assert_eq!(
            faults.load.bounds.max_duration,
            Some(Duration::from_secs(60))
        );
        let w = Window {
            start: Duration::from_secs(20),
            end: Duration::from_secs(40),
        };
        assert!(faults.faults.iter().all(|f| f.window == Some(w)));
        let kinds: HashSet<&str> = faults.faults.iter().map(|f| f.kind.name()).collect();
        assert_eq!(kinds.len(), 8, "{kinds:?}");
    }

    #[test]
    fn readme_documents_every_key_and_scenario() {
        let readme = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/README.md"),
        )
        .unwrap();
        for (section, keys) in raw::SECTIONS {
            for key in *keys {
                let documented = [
                    format!("`{key}`"),
                    format!("`[{key}]`"),
                    format!("`[[{key}]]`"),
                ]
                .iter()
                .any(|form| readme.contains(form.as_str()));
                assert!(documented, "README lacks `{key}` ([{section}])");
            }
        }
        for f in scenario_files() {
            let name = f.file_name().unwrap().to_str().unwrap().to_owned();
            assert!(readme.contains(&format!("`{name}`")), "README lacks {name}");
        }
    }

    /// Every ```toml example in the README is a valid scenario (given a bound, as
    /// `--duration` would supply).
    #[test]
    fn readme_examples_validate() {
        let readme = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/README.md"),
        )
        .unwrap();
        let ov = Overrides {
            duration: Some(Duration::from_secs(60)),
            ..Overrides::default()
        };
        let mut count = 0;
        for block in readme.split("```toml\n").skip(1) {
            let example = block.split("```").next().unwrap();
            if let Err(e) = parse_with(example, &ov) {
                panic!("README example fails:\n{example}\n{e}");
            }
            count += 1;
        }
        assert!(count >= 10, "{count}");
        // The one-line scenario the README opens with needs no flag.
        assert!(parse("load.duration = \"10s\"\n").is_ok());
    }

    /// `raw::SECTIONS` (used for suggestions and the README check) lists exactly the keys
    /// the structs accept: serde's own list of expected keys is compared with it.
    #[test]
    fn key_lists_match_the_structs() {
        let probes = [
            ("", "zzz = 1\n"),
            ("host", "[host]\nzzz = 1\n"),
            ("host.down", "[host]\ndown = [{ zzz = 1 }]\n"),
            ("hosts", "[[hosts]]\nzzz = 1\n"),
            ("hosts.down", "[[hosts]]\ndown = [{ zzz = 1 }]\n"),
            ("srv", "srv = [{ zzz = 1 }]\n"),
            ("fleet", "[fleet]\nzzz = 1\n"),
            ("fleet.products", "[fleet]\nproducts = [{ zzz = 1 }]\n"),
            ("fleet.skew", "[fleet.skew]\nzzz = 1\n"),
            ("client", "[client]\nzzz = 1\n"),
            ("load", "[load]\nzzz = 1\n"),
            ("load.stages", "[load]\nstages = [{ zzz = 1 }]\n"),
            ("load.bursts", "[load.bursts]\nzzz = 1\n"),
            ("timeouts", "[timeouts]\nzzz = 1\n"),
            ("gates", "[gates]\nzzz = 1\n"),
            ("gates.latency", "[gates]\nlatency = [{ zzz = 1 }]\n"),
            ("gates.threshold", "[gates.threshold]\nzzz = 1\n"),
            ("faults", "[[faults]]\nzzz = 1\n"),
        ];
        assert_eq!(probes.len(), raw::SECTIONS.len());
        for (section, text) in probes {
            let e = &problems(text, &Overrides::default())[0];
            let hint = e.hint.as_deref().unwrap_or_default();
            let listed = hint
                .strip_prefix("keys allowed here: ")
                .unwrap_or_else(|| panic!("{e}"));
            let mut from_serde: Vec<&str> = listed.split(", ").collect();
            let mut ours: Vec<&str> = raw::SECTIONS
                .iter()
                .find(|(s, _)| *s == section)
                .unwrap()
                .1
                .to_vec();
            from_serde.sort_unstable();
            ours.sort_unstable();
            assert_eq!(from_serde, ours, "[{section}]");
        }
    }

    #[test]
    fn read_errors_name_the_file() {
        let e = load_file(
            Path::new("scenarios/does-not-exist.toml"),
            &Overrides::default(),
            &resolve_exact,
        )
        .unwrap_err();
        assert!(matches!(e, Error::Read { .. }));
        assert!(
            e.to_string()
                .starts_with("scenarios/does-not-exist.toml: cannot read")
        );
    }

    proptest::proptest! {
        /// Whatever the text, parsing returns a plan or errors; it never panics.
        #[test]
        fn arbitrary_text_never_panics(s in "[\\[\\]{}=,.\"'#a-z0-9_ \n-]{0,120}") {
            let _ = parse(&s);
        }
    }

    use std::collections::HashSet;
}
