//! The `kmsload simulate` scenario file: `[[hosts]]`, `[[groups]]` and `[gates]` over a
//! virtual calendar. Same TOML family as `kmsload run`'s scenarios: products, skew, durations
//! and error messages (file:line:column, key, hint) come from [`crate::scenario`]'s grammar,
//! so a group's `products` and `skew` are written exactly as `[fleet]`'s are.
//!
//! Every key and its default is documented in scenarios/README.md ("Simulated fleets").

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::catalog::Product;
use crate::host::HostKey as HostKeyGroup;
use crate::scenario::error::from_toml;
use crate::scenario::locate::{KeyMap, KeyPath};
use crate::scenario::raw::{RawProduct, RawSkew};
use crate::scenario::validate::{Ctx, product_mix, skew};
use crate::scenario::{Error, ProductShare};
use crate::sim::SkewDist;

/// 2026-01-05 00:00 UTC, a Monday: the default `start`.
pub const DEFAULT_START_UNIX: i64 = 1_767_571_200;
/// The default `duration`: 180 days.
pub const DEFAULT_DURATION_SECS: i64 = 180 * DAY;
/// Longest simulated span: 10 years (virtual times are held in 32-bit seconds).
pub const MAX_DURATION_SECS: i64 = 3653 * DAY;
/// Seconds in a day.
pub const DAY: i64 = 86_400;

/// A checked `kmsload simulate` scenario.
#[derive(Debug, Clone)]
pub struct LifeScenario {
    /// `name`, default the file's stem.
    pub name: String,
    /// `description`.
    pub description: Option<String>,
    /// The file it came from.
    pub source: PathBuf,
    /// `seed` (default 1): identities, power times and starting states derive from it.
    pub seed: u64,
    /// `start`: Unix seconds of the virtual clock's zero.
    pub start_unix: i64,
    /// `duration` in seconds.
    pub duration_secs: i64,
    /// `out`: the results directory.
    pub out: Option<PathBuf>,
    /// `[[hosts]]` in the order clients try them.
    pub hosts: Vec<SimHost>,
    /// `[[groups]]`.
    pub groups: Vec<ClientGroup>,
    /// `[gates]`.
    pub gates: Vec<LifeGate>,
}

/// One KMS host of the simulation (`[[hosts]]`), decided by [`crate::host::HostModel`].
#[derive(Debug, Clone)]
pub struct SimHost {
    /// `name`, default `kms1`, `kms2`, ...
    pub name: String,
    /// `charged`: start with every client table one short of its threshold.
    pub charged: bool,
    /// `host_key` (default `all`).
    pub host_key: &'static HostKeyGroup,
    /// `time_check` (default true): refuse clocks more than 4 h off.
    pub time_check: bool,
    /// `activation_interval` in minutes (default 120), sent to clients.
    pub activation_interval_min: u32,
    /// `renewal_interval` in minutes (default 10080), sent to clients.
    pub renewal_interval_min: u32,
    /// `down`: outage windows, seconds from the start, `[from, to)`.
    pub down: Vec<(i64, i64)>,
    /// `service_rate`: requests per second the host answers; beyond it, in the same second,
    /// requests time out. `None`: unlimited.
    pub service_rate: Option<u32>,
}

/// A group of clients (`[[groups]]`).
#[derive(Debug, Clone)]
pub struct ClientGroup {
    /// `name`, default `group1`, ...
    pub name: String,
    /// `size`: clients present at the start.
    pub size: u64,
    /// `products`: as in `[fleet]`.
    pub products: Vec<ProductShare>,
    /// `vm_fraction`.
    pub vm_fraction: f64,
    /// `skew`: as `[fleet.skew]`.
    pub skew: SkewDist,
    /// `power`.
    pub power: PowerPattern,
    /// `state` at the start (and of joiners: always new).
    pub state: StartState,
    /// `renewed_within`: for `state = "activated"`, each machine's last success falls
    /// uniformly within this span before the start (seconds); `None`: the first host's
    /// renewal interval (steady state). `"180d"` spreads validity left uniformly over 0–180 d.
    pub renewed_within: Option<i64>,
    /// `away`: part of the group off site for some windows.
    pub away: Option<Away>,
    /// `joins`: waves of new machines.
    pub joins: Vec<Wave>,
    /// `leaves`: waves of decommissioned machines, lowest indices first.
    pub leaves: Vec<Wave>,
}

impl ClientGroup {
    /// Clients the group ever has: `size` plus every join wave.
    pub fn total(&self) -> u64 {
        self.size + self.joins.iter().map(|w| w.count).sum::<u64>()
    }
}

/// When a group's machines are powered on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PowerPattern {
    /// Always on (servers, VDI hosts).
    Always,
    /// Weekdays: on between 07:30 and 09:00, off between 17:00 and 19:00 (UTC of the
    /// virtual clock), a different time each client and day.
    OfficeHours,
    /// One weekday a week (fixed per client), office hours that day.
    Weekly,
}

/// A group's licence state at the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StartState {
    /// Never activated, in the 30-day initial grace from the start.
    New,
    /// Activated. By default renewing in steady state: the last renewal fell uniformly in the
    /// renewal interval before the start, so validity left is 173 to 180 days;
    /// `renewed_within` widens that span.
    Activated,
}

/// `away = { share = 0.33, windows = [["20d", "50d"]] }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Away {
    /// Fraction of the group that goes away (chosen per client from the seed).
    pub share: f64,
    /// Windows `[from, to)` in seconds from the start.
    pub windows: Vec<(i64, i64)>,
}

/// `{ at = "14d", count = 500 }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wave {
    /// Seconds from the start.
    pub at: i64,
    /// Machines.
    pub count: u64,
}

/// A pass/fail rule on the simulation's outcome.
#[derive(Debug, Clone, PartialEq)]
pub enum LifeGate {
    /// `lost_activation = N`: at most N clients' validity lapsed.
    LostActivation(u64),
    /// `max_days_below_threshold = N`: no (host, pool) spent more than N days below its
    /// threshold after first reaching it... or ever, when it never reached it.
    MaxDaysBelowThreshold(u64),
    /// `threshold_reached_within = "1d"`: every pool with clients reaches its threshold on
    /// some host within this time of the start.
    ThresholdReachedWithin(i64),
    /// `max_requests_per_minute = N`: the busiest minute has at most N attempts.
    MaxRequestsPerMinute(u64),
    /// `min_activated_at_end = 0.95`: at least this fraction of present clients is activated
    /// at the end.
    MinActivatedAtEnd(f64),
}

impl std::fmt::Display for LifeGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::LostActivation(n) => write!(f, "lost_activation <= {n}"),
            Self::MaxDaysBelowThreshold(n) => write!(f, "days below threshold <= {n}"),
            Self::ThresholdReachedWithin(s) => {
                write!(f, "threshold reached within {}", show_secs(*s))
            }
            Self::MaxRequestsPerMinute(n) => write!(f, "peak requests/min <= {n}"),
            Self::MinActivatedAtEnd(x) => write!(f, "activated at end >= {:.1} %", x * 100.0),
        }
    }
}

/// `90d`, `36h`, `15m`, `42s`: the largest whole unit.
pub fn show_secs(s: i64) -> String {
    if s % DAY == 0 {
        format!("{}d", s / DAY)
    } else if s % 3600 == 0 {
        format!("{}h", s / 3600)
    } else if s % 60 == 0 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

// ---------------------------------------------------------------------------------------
// The file as written.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLife {
    name: Option<String>,
    description: Option<String>,
    seed: Option<u64>,
    start: Option<String>,
    duration: Option<String>,
    out: Option<String>,
    #[serde(default)]
    hosts: Vec<RawSimHost>,
    #[serde(default)]
    groups: Vec<RawGroup>,
    gates: Option<RawLifeGates>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSimHost {
    name: Option<String>,
    charged: Option<bool>,
    host_key: Option<String>,
    time_check: Option<bool>,
    activation_interval: Option<String>,
    renewal_interval: Option<String>,
    #[serde(default)]
    down: Vec<[String; 2]>,
    service_rate: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: Option<String>,
    size: Option<u64>,
    products: Option<Vec<RawProduct>>,
    vm_fraction: Option<f64>,
    skew: Option<RawSkew>,
    power: Option<PowerPattern>,
    state: Option<StartState>,
    renewed_within: Option<String>,
    away: Option<RawAway>,
    #[serde(default)]
    joins: Vec<RawWave>,
    #[serde(default)]
    leaves: Vec<RawWave>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAway {
    share: Option<f64>,
    windows: Vec<[String; 2]>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWave {
    at: String,
    count: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLifeGates {
    lost_activation: Option<u64>,
    max_days_below_threshold: Option<u64>,
    threshold_reached_within: Option<String>,
    max_requests_per_minute: Option<u64>,
    min_activated_at_end: Option<f64>,
}

/// Command-line values that replace keys of the file (applied before validation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LifeOverrides {
    /// `--seed`.
    pub seed: Option<u64>,
    /// `--duration`.
    pub duration: Option<Duration>,
    /// `--out`.
    pub out: Option<PathBuf>,
}

/// Reads and validates a simulate scenario.
///
/// # Errors
/// [`Error::Read`] or [`Error::Invalid`] with every problem found.
pub fn load_life(
    path: &Path,
    overrides: &LifeOverrides,
    resolve: &dyn Fn(&str) -> Result<&'static Product, String>,
) -> Result<LifeScenario, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        file: path.to_path_buf(),
        source,
    })?;
    parse_life(&text, path, overrides, resolve)
}

/// Validates simulate-scenario text; `file` names it in messages and gives the default name.
///
/// # Errors
/// [`Error::Invalid`] with every problem found.
pub fn parse_life(
    text: &str,
    file: &Path,
    overrides: &LifeOverrides,
    resolve: &dyn Fn(&str) -> Result<&'static Product, String>,
) -> Result<LifeScenario, Error> {
    let map = KeyMap::scan(text);
    let raw: RawLife = toml::from_str(text)
        .map_err(|e| Error::Invalid(vec![from_toml(&e, file.to_path_buf(), text, &map)]))?;
    let mut cx = Ctx::new(file, text, &map);
    match validate(&mut cx, raw, file, overrides, resolve) {
        Some(s) => Ok(s),
        None => Err(Error::Invalid(cx.finish())),
    }
}

fn root(k: &str) -> KeyPath {
    KeyPath::root(k)
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

fn validate(
    cx: &mut Ctx<'_>,
    raw: RawLife,
    file: &Path,
    ov: &LifeOverrides,
    resolve: &dyn Fn(&str) -> Result<&'static Product, String>,
) -> Option<LifeScenario> {
    let mut ok = true;
    let name = raw.name.unwrap_or_else(|| {
        file.file_stem().map_or_else(
            || "simulate".to_owned(),
            |s| s.to_string_lossy().into_owned(),
        )
    });
    let start_unix = match &raw.start {
        None => Some(DEFAULT_START_UNIX),
        Some(t) => match parse_start(t) {
            Ok(v) => Some(v),
            Err(m) => {
                cx.err(
                    &root("start"),
                    m,
                    Some("a UTC date or time: \"2026-01-05\" or \"2026-01-05T08:00:00Z\"".into()),
                );
                None
            }
        },
    };
    let duration_secs = match (&ov.duration, &raw.duration) {
        (Some(d), _) => Some(secs(*d)),
        (None, None) => Some(DEFAULT_DURATION_SECS),
        (None, Some(t)) => cx.positive_duration(&root("duration"), t).map(secs),
    };
    if let Some(d) = duration_secs
        && (d <= 0 || d > MAX_DURATION_SECS)
    {
        cx.err(
            &root("duration"),
            format!("{} is outside 1s..3653d", show_secs(d)),
            Some("simulate at most 10 years, e.g. duration = \"365d\"".into()),
        );
        ok = false;
    }
    let span = duration_secs.unwrap_or(DEFAULT_DURATION_SECS);

    let mut hosts = Vec::new();
    let raw_hosts = if raw.hosts.is_empty() {
        vec![RawSimHost::default()]
    } else {
        raw.hosts
    };
    for (i, h) in raw_hosts.into_iter().enumerate() {
        match host(cx, i, h, span) {
            Some(h) => hosts.push(h),
            None => ok = false,
        }
    }
    if raw.groups.is_empty() {
        cx.err(
            &root("groups"),
            "the simulation needs at least one [[groups]] table",
            Some("[[groups]] size = 100, products = [{ product = \"Windows 10/11 Pro\" }]".into()),
        );
        ok = false;
    }
    let mut groups = Vec::new();
    for (i, g) in raw.groups.into_iter().enumerate() {
        match group(cx, i, g, span, resolve) {
            Some(g) => groups.push(g),
            None => ok = false,
        }
    }
    let total: u64 = groups.iter().map(ClientGroup::total).sum();
    if total > u64::from(u32::MAX) {
        cx.err(
            &root("groups"),
            format!(
                "{total} clients in all; at most {} can be simulated",
                u32::MAX
            ),
            None,
        );
        ok = false;
    }
    let gates = raw.gates.map_or(Some(Vec::new()), |g| gates(cx, g));
    if !ok {
        return None;
    }
    Some(LifeScenario {
        name,
        description: raw.description,
        source: file.to_path_buf(),
        seed: ov.seed.or(raw.seed).unwrap_or(1),
        start_unix: start_unix?,
        duration_secs: duration_secs?,
        out: ov.out.clone().or(raw.out.map(PathBuf::from)),
        hosts,
        groups,
        gates: gates?,
    })
}

/// `2026-01-05` or `2026-01-05T08:00:00Z` (or `...T08:00Z`) to Unix seconds.
fn parse_start(t: &str) -> Result<i64, String> {
    let bad = || format!("\"{t}\" is not a date (YYYY-MM-DD) or UTC time (YYYY-MM-DDTHH:MM[:SS]Z)");
    let (date, time) = match t.split_once(['T', ' ']) {
        Some((d, tm)) => (d, Some(tm.strip_suffix('Z').ok_or_else(bad)?)),
        None => (t, None),
    };
    let mut parts = date.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let y: u16 = y.parse().map_err(|_| bad())?;
    let m: u8 = m.parse().map_err(|_| bad())?;
    let d: u8 = d.parse().map_err(|_| bad())?;
    if !(1970..=2200).contains(&y) || !(1..=12).contains(&m) || d == 0 || d > days_in(y, m) {
        return Err(bad());
    }
    let mut secs = crate::wire::base::days_from_civil(y, m, d) * DAY;
    if let Some(time) = time {
        let f: Vec<&str> = time.split(':').collect();
        if !(2..=3).contains(&f.len()) {
            return Err(bad());
        }
        let num = |s: &str, max: i64| -> Result<i64, String> {
            let v: i64 = s.parse().map_err(|_| bad())?;
            if (0..=max).contains(&v) && s.len() == 2 {
                Ok(v)
            } else {
                Err(bad())
            }
        };
        secs += num(f[0], 23)? * 3600 + num(f[1], 59)? * 60;
        if let Some(s) = f.get(2) {
            secs += num(s, 59)?;
        }
    }
    Ok(secs)
}

fn days_in(y: u16, m: u8) -> u8 {
    match m {
        2 if (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn windows(
    cx: &mut Ctx<'_>,
    path: &KeyPath,
    raw: &[[String; 2]],
    span: i64,
) -> Option<Vec<(i64, i64)>> {
    let mut out = Vec::new();
    let mut ok = true;
    for (i, [a, b]) in raw.iter().enumerate() {
        let item = path.index(i);
        let from = cx.duration(&item, a).map(secs);
        let to = cx.duration(&item, b).map(secs);
        match (from, to) {
            (Some(f), Some(t)) if f < t => {
                if f >= span {
                    cx.err(
                        &item,
                        format!(
                            "starts at {} , after the simulation ends ({})",
                            show_secs(f),
                            show_secs(span)
                        ),
                        Some(
                            "windows are [from, to] offsets from `start`, e.g. [\"10d\", \"31d\"]"
                                .into(),
                        ),
                    );
                    ok = false;
                }
                out.push((f, t));
            }
            (Some(f), Some(t)) => {
                cx.err(
                    &item,
                    format!(
                        "ends ({}) before it starts ({})",
                        show_secs(t),
                        show_secs(f)
                    ),
                    Some(
                        "windows are [from, to] offsets from `start`, e.g. [\"10d\", \"31d\"]"
                            .into(),
                    ),
                );
                ok = false;
            }
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

fn interval_minutes(
    cx: &mut Ctx<'_>,
    path: &KeyPath,
    raw: Option<&str>,
    default: u32,
) -> Option<u32> {
    let Some(t) = raw else { return Some(default) };
    let d = cx.positive_duration(path, t)?;
    let min = d.as_secs() / 60;
    if d.as_secs() % 60 != 0 || !(15..=43_200).contains(&min) {
        cx.err(
            path,
            format!("{t} is not a whole number of minutes from 15m to 30d"),
            Some(
                "hosts send intervals in minutes, 15 minutes to 30 days (slmgr /sai, /sri)".into(),
            ),
        );
        return None;
    }
    u32::try_from(min).ok()
}

fn host(cx: &mut Ctx<'_>, i: usize, raw: RawSimHost, span: i64) -> Option<SimHost> {
    let base = root("hosts").index(i);
    let host_key = match raw.host_key.as_deref() {
        None => Some(crate::host::keys::all()),
        Some(name) => match HostKeyGroup::lookup(name) {
            Ok(k) => Some(k),
            Err(e) => {
                cx.err(&base.key("host_key"), e.to_string(), None);
                None
            }
        },
    };
    let act = interval_minutes(
        cx,
        &base.key("activation_interval"),
        raw.activation_interval.as_deref(),
        crate::host::config::DEFAULT_ACTIVATION_INTERVAL,
    );
    let renew = interval_minutes(
        cx,
        &base.key("renewal_interval"),
        raw.renewal_interval.as_deref(),
        crate::host::config::DEFAULT_RENEWAL_INTERVAL,
    );
    let down = windows(cx, &base.key("down"), &raw.down, span);
    if raw.service_rate == Some(0) {
        cx.err(
            &base.key("service_rate"),
            "must be at least 1 request per second",
            Some("leave it out for a host without a rate limit".into()),
        );
        return None;
    }
    Some(SimHost {
        name: raw.name.unwrap_or_else(|| format!("kms{}", i + 1)),
        charged: raw.charged.unwrap_or(false),
        host_key: host_key?,
        time_check: raw.time_check.unwrap_or(true),
        activation_interval_min: act?,
        renewal_interval_min: renew?,
        down: down?,
        service_rate: raw.service_rate,
    })
}

fn waves(cx: &mut Ctx<'_>, path: &KeyPath, raw: &[RawWave], span: i64) -> Option<Vec<Wave>> {
    let mut out = Vec::new();
    let mut ok = true;
    for (i, w) in raw.iter().enumerate() {
        let item = path.index(i);
        match cx.duration(&item.key("at"), &w.at).map(secs) {
            Some(at) if at < span => out.push(Wave { at, count: w.count }),
            Some(at) => {
                cx.err(
                    &item.key("at"),
                    format!(
                        "{} is after the simulation ends ({})",
                        show_secs(at),
                        show_secs(span)
                    ),
                    None,
                );
                ok = false;
            }
            None => ok = false,
        }
    }
    out.sort_by_key(|w| w.at);
    ok.then_some(out)
}

fn group(
    cx: &mut Ctx<'_>,
    i: usize,
    raw: RawGroup,
    span: i64,
    resolve: &dyn Fn(&str) -> Result<&'static Product, String>,
) -> Option<ClientGroup> {
    let base = root("groups").index(i);
    let size = raw.size.unwrap_or(100);
    let products = product_mix(cx, &base, raw.products, false, None, resolve);
    let vm_fraction = cx.fraction(&base.key("vm_fraction"), raw.vm_fraction.unwrap_or(0.0));
    let skew = skew(cx, &base.key("skew"), raw.skew);
    let away = match raw.away {
        None => Some(None),
        Some(a) => {
            let share = cx.fraction(&base.key("away").key("share"), a.share.unwrap_or(1.0));
            let w = windows(cx, &base.key("away").key("windows"), &a.windows, span);
            match (share, w) {
                (Some(share), Some(windows)) => Some(Some(Away { share, windows })),
                _ => None,
            }
        }
    };
    let renewed_within = match &raw.renewed_within {
        None => Some(None),
        Some(_) if raw.state == Some(StartState::New) => {
            cx.err(
                &base.key("renewed_within"),
                "applies only to state = \"activated\"",
                Some("new machines have never activated; remove the key or set state = \"activated\"".into()),
            );
            None
        }
        Some(t) => cx
            .positive_duration(&base.key("renewed_within"), t)
            .map(|d| Some(secs(d))),
    };
    let joins = waves(cx, &base.key("joins"), &raw.joins, span);
    let leaves = waves(cx, &base.key("leaves"), &raw.leaves, span);
    let total = size
        + joins
            .as_ref()
            .map_or(0, |j| j.iter().map(|w| w.count).sum());
    if let Some(l) = &leaves {
        let gone: u64 = l.iter().map(|w| w.count).sum();
        if gone > total {
            cx.err(
                &base.key("leaves"),
                format!("{gone} machines leave but the group only ever has {total}"),
                None,
            );
            return None;
        }
    }
    if total == 0 {
        cx.err(
            &base.key("size"),
            "the group has no clients (size 0 and no joins)",
            Some("size = 100".into()),
        );
        return None;
    }
    Some(ClientGroup {
        name: raw.name.unwrap_or_else(|| format!("group{}", i + 1)),
        size,
        products: products?,
        vm_fraction: vm_fraction?,
        skew: skew?,
        power: raw.power.unwrap_or(PowerPattern::Always),
        state: raw.state.unwrap_or(StartState::Activated),
        renewed_within: renewed_within?,
        away: away?,
        joins: joins?,
        leaves: leaves?,
    })
}

fn gates(cx: &mut Ctx<'_>, raw: RawLifeGates) -> Option<Vec<LifeGate>> {
    let base = root("gates");
    let mut out = Vec::new();
    if let Some(n) = raw.lost_activation {
        out.push(LifeGate::LostActivation(n));
    }
    if let Some(n) = raw.max_days_below_threshold {
        out.push(LifeGate::MaxDaysBelowThreshold(n));
    }
    if let Some(t) = &raw.threshold_reached_within {
        out.push(LifeGate::ThresholdReachedWithin(secs(
            cx.duration(&base.key("threshold_reached_within"), t)?,
        )));
    }
    if let Some(n) = raw.max_requests_per_minute {
        out.push(LifeGate::MaxRequestsPerMinute(n));
    }
    if let Some(x) = raw.min_activated_at_end {
        out.push(LifeGate::MinActivatedAtEnd(
            cx.fraction(&base.key("min_activated_at_end"), x)?,
        ));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::resolve_exact;

    fn parse(text: &str) -> Result<LifeScenario, Error> {
        parse_life(
            text,
            Path::new("t.toml"),
            &LifeOverrides::default(),
            &resolve_exact,
        )
    }

    #[test]
    fn defaults_and_start() {
        let s = parse("[[groups]]\nsize = 3\n").unwrap();
        assert_eq!(s.start_unix, DEFAULT_START_UNIX);
        assert_eq!(s.duration_secs, 180 * DAY);
        assert_eq!(s.hosts.len(), 1);
        assert_eq!(s.hosts[0].activation_interval_min, 120);
        assert_eq!(s.hosts[0].renewal_interval_min, 10_080);
        assert_eq!(s.groups[0].products[0].product.name, "Windows 10/11 Pro");
        assert_eq!(s.groups[0].state, StartState::Activated);
        // 2026-01-05 is a Monday: 1970-01-01 was a Thursday.
        assert_eq!((DEFAULT_START_UNIX / DAY + 3) % 7, 0);
        assert_eq!(parse_start("2026-01-05").unwrap(), DEFAULT_START_UNIX);
        assert_eq!(
            parse_start("2026-01-05T08:30Z").unwrap(),
            DEFAULT_START_UNIX + 8 * 3600 + 1800
        );
        assert!(parse_start("2026-02-30").is_err());
        assert!(parse_start("2026-01-05T08:30").is_err());
    }

    #[test]
    fn every_problem_is_reported_with_its_line() {
        let text = "duration = \"90\"\n[[hosts]]\ndown = [[\"31d\", \"10d\"]]\n\
                    [[groups]]\nsize = 5\nproducts = [{ product = \"Windows 99\" }]\n";
        let e = parse(text).unwrap_err().to_string();
        assert!(e.contains("t.toml:1:"), "{e}");
        assert!(e.contains("ends (10d) before it starts (31d)"), "{e}");
        assert!(e.contains("Windows 99"), "{e}");
        let e = parse("[[groups]]\npower = \"nights\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean") || e.contains("allowed"), "{e}");
        let e = parse("dration = \"1d\"\n[[groups]]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean `duration`"), "{e}");
        let e = parse("").unwrap_err().to_string();
        assert!(e.contains("at least one [[groups]]"), "{e}");
    }

    #[test]
    fn groups_hosts_and_gates_parse() {
        let text = r#"
            start = "2026-03-02T06:00:00Z"
            duration = "60d"
            [[hosts]]
            name = "a"
            charged = true
            host_key = "Windows Server 2016"
            down = [["10d", "31d"]]
            service_rate = 50
            renewal_interval = "1d"
            [[groups]]
            size = 10
            power = "office-hours"
            state = "new"
            away = { share = 0.5, windows = [["20d", "50d"]] }
            joins = [{ at = "7d", count = 5 }]
            leaves = [{ at = "14d", count = 3 }]
            skew = { kind = "uniform", min = "-1h", max = "1h" }
            [gates]
            lost_activation = 0
            threshold_reached_within = "1d"
        "#;
        let s = parse(text).unwrap();
        let h = &s.hosts[0];
        assert_eq!(h.down, vec![(10 * DAY, 31 * DAY)]);
        assert_eq!((h.renewal_interval_min, h.service_rate), (1440, Some(50)));
        let g = &s.groups[0];
        assert_eq!(g.total(), 15);
        assert_eq!(g.power, PowerPattern::OfficeHours);
        assert_eq!(g.away.as_ref().unwrap().windows, vec![(20 * DAY, 50 * DAY)]);
        assert_eq!(s.gates.len(), 2);
    }
}
