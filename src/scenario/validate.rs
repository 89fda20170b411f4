//! From the file as written ([`super::raw`]) plus command-line overrides to a [`Plan`]:
//! defaults, ranges, units, and the rules that span keys. Every problem is collected (not
//! just the first), each with its file position and key.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use uuid::Uuid;

use super::Overrides;
use super::error::{ScenarioError, closest};
use super::locate::{KeyMap, KeyPath, Position};
use super::plan::{
    Bounds, ClientPlan, ClientReuse, ConnectionPolicy, CutPoint, DEFAULT_SEED, Direction,
    FaultKind, FaultRule, FleetPlan, Gate, GateAbort, HostKeyPlan, HostOptions, Load, LoadModel,
    NdrMode, Plan, ProductShare, RemoteTarget, Schedule, Stage, StallPhase, Target, Timeouts,
    Window,
};
use super::raw::{
    Connection, FaultKindName, Model, RawBursts, RawClient, RawCode, RawFault, RawFleet, RawGates,
    RawHost, RawHostKey, RawLoad, RawScenario, RawSkew, RawTimeouts, SkewKind,
};
use crate::catalog::Application;
use crate::catalog::{Product, products};
use crate::sim::SkewDist;
use crate::values::{DisplayDuration, DisplaySkew, ValueError, parse_duration, parse_skew};

/// Defaults, documented in scenarios/README.md (a test there checks they agree).
pub(crate) mod defaults {
    use std::time::Duration;

    pub(crate) const FLEET_SIZE: u64 = 1000;
    pub(crate) const PRODUCT: &str = "Windows 10/11 Pro";
    pub(crate) const RATE: f64 = 10.0;
    pub(crate) const CLOSED_CLIENTS: u32 = 10;
    pub(crate) const MAX_IN_FLIGHT: u32 = 10_000;
    pub(crate) const CONNECT: Duration = Duration::from_secs(5);
    pub(crate) const BIND: Duration = Duration::from_secs(5);
    pub(crate) const REQUEST: Duration = Duration::from_secs(5);
    pub(crate) const DRAIN: Duration = Duration::from_secs(10);
    pub(crate) const ACTIVATION_INTERVAL: Duration = Duration::from_secs(2 * 3600);
    pub(crate) const RENEWAL_INTERVAL: Duration = Duration::from_secs(7 * 86_400);
}

/// Windows' limits for the activation and renewal intervals (`slmgr /sai`, `/sri`):
/// 15 minutes to 30 days.
const INTERVAL_MIN: Duration = Duration::from_secs(15 * 60);
const INTERVAL_MAX: Duration = Duration::from_secs(30 * 86_400);

const CMID_WARNING: &str = "synthetic CMIDs stay in a real KMS host's client table for 30 days \
     and inflate the counts used for licence reporting";

/// Where a value came from: a key in the file or a command-line flag.
#[derive(Debug, Clone)]
pub(crate) enum At {
    Key(KeyPath),
    Flag(&'static str),
}

impl From<&KeyPath> for At {
    fn from(p: &KeyPath) -> Self {
        Self::Key(p.clone())
    }
}

/// The document being validated and the problems found so far.
pub(crate) struct Ctx<'a> {
    file: &'a Path,
    text: &'a str,
    map: &'a KeyMap,
    errors: Vec<ScenarioError>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(file: &'a Path, text: &'a str, map: &'a KeyMap) -> Self {
        Self {
            file,
            text,
            map,
            errors: Vec::new(),
        }
    }

    pub(crate) fn err(
        &mut self,
        at: impl Into<At>,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        let (position, key) = match at.into() {
            At::Flag(flag) => (None, flag.to_owned()),
            At::Key(path) => {
                let position = self
                    .map
                    .offset_of(&path)
                    .map(|o| Position::of(self.text, o));
                let key = match path.0.as_slice() {
                    [super::locate::Seg::Key(k)] if k == "hosts" => "[[hosts]]".to_owned(),
                    [super::locate::Seg::Key(k)] if is_table_key(k) => {
                        format!("[{k}]")
                    }
                    _ => path.to_string(),
                };
                (position, key)
            }
        };
        self.errors.push(ScenarioError {
            file: self.file.to_path_buf(),
            position,
            key,
            message: message.into(),
            hint,
        });
    }

    /// The problems in order: flags first, then by position in the file.
    pub(crate) fn finish(mut self) -> Vec<ScenarioError> {
        self.errors
            .sort_by_key(|e| e.position.map(|p| (p.line, p.column)));
        self.errors
    }

    pub(crate) fn duration(&mut self, at: impl Into<At>, text: &str) -> Option<Duration> {
        let at = at.into();
        match parse_duration(text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.value_err(at, &e);
                None
            }
        }
    }

    pub(crate) fn positive_duration(&mut self, at: impl Into<At>, text: &str) -> Option<Duration> {
        let at = at.into();
        let d = self.duration(at.clone(), text)?;
        if d.is_zero() {
            self.err(
                at,
                "must be longer than 0s",
                Some(format!(
                    "write {}",
                    crate::values::ValueKind::Duration.expected()
                )),
            );
            return None;
        }
        Some(d)
    }

    /// A clock skew in whole seconds.
    fn offset(&mut self, at: impl Into<At>, text: &str) -> Option<i64> {
        let at = at.into();
        match parse_skew(text) {
            Ok(o) => Some(o),
            Err(e) => {
                self.value_err(at, &e);
                None
            }
        }
    }

    /// A value the grammar refused: its problem, and the form the flag would also name.
    pub(crate) fn value_err(&mut self, at: At, e: &ValueError) {
        self.err(
            at,
            e.problem.clone(),
            Some(format!("write {}", e.kind.expected())),
        );
    }

    pub(crate) fn fraction(&mut self, at: impl Into<At>, v: f64) -> Option<f64> {
        if (0.0..=1.0).contains(&v) {
            Some(v)
        } else {
            self.err(
                at,
                format!("{v} is not between 0 and 1"),
                Some("a fraction, e.g. 0.05 for 5%".to_owned()),
            );
            None
        }
    }

    fn positive_rate(&mut self, at: impl Into<At>, v: f64) -> Option<f64> {
        if v.is_finite() && v > 0.0 {
            Some(v)
        } else {
            self.err(
                at,
                format!("must be > 0, found {v}"),
                Some("rates are attempts per second, e.g. 500".to_owned()),
            );
            None
        }
    }

    fn non_negative_rate(&mut self, at: impl Into<At>, v: f64) -> Option<f64> {
        if v.is_finite() && v >= 0.0 {
            Some(v)
        } else {
            self.err(
                at,
                format!("must be >= 0, found {v}"),
                Some("rates are attempts per second, e.g. 500".to_owned()),
            );
            None
        }
    }

    fn at_least_one<T: PartialOrd + From<u8> + std::fmt::Display>(
        &mut self,
        at: impl Into<At>,
        v: T,
    ) -> Option<T> {
        if v >= T::from(1) {
            Some(v)
        } else {
            self.err(at, format!("must be at least 1, found {v}"), None);
            None
        }
    }
}

/// Table keys of the top level (a bare `load` path names the `[load]` section).
fn is_table_key(k: &str) -> bool {
    matches!(
        k,
        "host" | "fleet" | "client" | "load" | "timeouts" | "gates" | "faults"
    )
}

fn root(k: &str) -> KeyPath {
    KeyPath::root(k)
}

/// Validates a deserialised scenario, with overrides applied first.
pub(crate) fn validate(
    cx: &mut Ctx<'_>,
    raw: RawScenario,
    ov: &Overrides,
    source: Option<&Path>,
    resolve: &dyn Fn(&str) -> Result<&'static Product, String>,
) -> Option<Plan> {
    let name = name(cx, raw.name.as_deref(), source);
    let seed = ov.seed.or(raw.seed).unwrap_or(DEFAULT_SEED);
    let fleet = fleet(cx, raw.fleet.unwrap_or_default(), resolve);
    let load = load(cx, raw.load.unwrap_or_default(), ov);
    let discover_keys = DiscoverKeys {
        discover: raw.discover,
        dns_server: raw.dns_server,
        srv_order: raw.srv_order,
        host_cache: raw.host_cache,
        dns_ttl: raw.dns_ttl,
        dns_timeout: raw.dns_timeout,
        confirm_discovered: raw.confirm_discovered,
    };
    let run_length = load.as_ref().and_then(|l| l.bounds.max_duration);
    if raw.host.is_some() && !raw.hosts.is_empty() {
        cx.err(
            &root("hosts"),
            "[host] and [[hosts]] both configure in-process hosts",
            Some("keep [[hosts]] (one table per host), or [host] for a single host".to_owned()),
        );
    }
    let target = match discover_keys.discover.clone() {
        Some(domain) if ov.target.is_none() => {
            if raw.target.is_some() {
                cx.err(
                    &root("discover"),
                    "`discover` and `target` both say where clients connect",
                    Some(
                        "keep one: `target` for one host, `discover` to find hosts through DNS"
                            .to_owned(),
                    ),
                );
            }
            if raw.host.is_some() {
                cx.err(
                    &root("host"),
                    "[host] configures the in-process host, which is not started when `discover` is set",
                    Some("remove [host], or remove `discover`; in-process hosts behind the domain are [[hosts]] tables".to_owned()),
                );
            }
            let hosts = in_process_hosts(cx, raw.hosts, run_length, resolve);
            discover_target(
                cx,
                &domain,
                discover_keys,
                raw.confirm_target,
                ov,
                hosts,
                raw.srv,
            )
        }
        _ => {
            discover_keys.refuse_without_discover(cx);
            if raw.srv.is_some() && ov.target.is_none() {
                cx.err(
                    &root("srv"),
                    "`srv` lists the SRV records of the `discover` domain, but `discover` is not set",
                    Some("add discover = \"DOMAIN\" (e.g. \"corp.example\"), or remove `srv`".to_owned()),
                );
            }
            if raw.hosts.is_empty() || ov.target.is_some() {
                target(
                    cx,
                    raw.target,
                    raw.confirm_target,
                    raw.host,
                    ov,
                    run_length,
                    resolve,
                )
            } else {
                if raw.target.is_some() {
                    cx.err(
                        &root("hosts"),
                        "[[hosts]] configures in-process hosts, which are not started when `target` is set",
                        Some("remove [[hosts]], or remove `target`".to_owned()),
                    );
                }
                let count = raw.hosts.len();
                let hosts = in_process_hosts(cx, raw.hosts, run_length, resolve);
                if count > 1 {
                    cx.err(
                        &root("hosts"),
                        format!("{count} in-process hosts, but nothing tells the clients how to find them"),
                        Some("clients find several hosts as Windows clients do, through SRV records: add discover = \"corp.example\" and srv = [{ host = \"kms01\" }, { host = \"kms02\", priority = 10 }]".to_owned()),
                    );
                    None
                } else {
                    hosts.and_then(|mut h| h.pop()).map(Target::InProcess)
                }
            }
        }
    };
    let client = client(raw.client.unwrap_or_default());
    let timeouts = timeouts(cx, raw.timeouts.unwrap_or_default());
    let out = match (&ov.out, raw.out) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(s)) if s.trim().is_empty() => {
            cx.err(
                &root("out"),
                "is empty",
                Some("a directory, e.g. out = \"results/smoke\"".to_owned()),
            );
            None
        }
        (None, Some(s)) => Some(PathBuf::from(s)),
        (None, None) => None,
    };
    if let (Some(t), Some(l)) = (&target, &load) {
        check_sources(cx, t, &l.source_addresses);
    }
    if let (Some(f), Some(l)) = (&fleet, &load) {
        check_new_clients(cx, f, l);
    }
    let (gates, gate_abort) = gates(
        cx,
        raw.gates.unwrap_or_default(),
        fleet.as_ref(),
        load.as_ref(),
    );
    let max_duration = load.as_ref().and_then(|l| l.bounds.max_duration);
    let faults = faults(cx, raw.faults, max_duration);

    if !cx.errors.is_empty() {
        return None;
    }
    Some(Plan {
        name: name?,
        description: raw.description,
        source: source.map(Path::to_path_buf),
        seed,
        target: target?,
        fleet: fleet?,
        client,
        load: load?,
        timeouts: timeouts?,
        gates,
        gate_abort,
        faults,
        out,
        events: ov.events.or(raw.events).unwrap_or_default(),
    })
}

fn name(cx: &mut Ctx<'_>, written: Option<&str>, source: Option<&Path>) -> Option<String> {
    let (name, from_key) = match written {
        Some(n) => (n.to_owned(), true),
        None => match source.and_then(Path::file_stem).and_then(|s| s.to_str()) {
            Some(stem) => (stem.to_owned(), false),
            None => ("scenario".to_owned(), false),
        },
    };
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        return Some(name);
    }
    let hint = Some(
        "names become directory names: use letters, digits, '.', '_', '-' (at most 64)".to_owned(),
    );
    if from_key {
        cx.err(
            &root("name"),
            format!("\"{name}\" is not a usable name"),
            hint,
        );
    } else {
        cx.err(
            &root("name"),
            format!("the file name \"{name}\" is not a usable scenario name"),
            Some("set name = \"...\" in the file, with letters, digits, '.', '_', '-'".to_owned()),
        );
    }
    None
}

// ---------------------------------------------------------------------------------------
// target and [host]

fn target(
    cx: &mut Ctx<'_>,
    written: Option<String>,
    confirm: Option<String>,
    host: Option<RawHost>,
    ov: &Overrides,
    run_length: Option<Duration>,
    resolve: &dyn Fn(&str) -> Result<&'static Product, String>,
) -> Option<Target> {
    let (text, at) = match (&ov.target, written) {
        (Some(t), _) => (t.clone(), At::Flag("--target")),
        (None, Some(t)) => (t, At::Key(root("target"))),
        (None, None) => {
            let spot = HostSpot {
                base: root("host"),
                name: "kms01".to_owned(),
                address: std::net::Ipv4Addr::LOCALHOST,
                run_length,
            };
            return host_options(cx, &spot, host.unwrap_or_default(), resolve)
                .map(Target::InProcess);
        }
    };
    if host.is_some() && matches!(at, At::Key(_)) {
        cx.err(
            &root("host"),
            "[host] configures the in-process host, which is not started when `target` is set",
            Some("remove [host], or remove `target` to run against the in-process host".to_owned()),
        );
    }
    let (host_name, port) = match parse_target(&text) {
        Ok(v) => v,
        Err(e) => {
            cx.value_err(at, &e);
            return None;
        }
    };
    let loopback = is_loopback(&host_name);
    let remote = RemoteTarget {
        host: host_name,
        port,
        loopback,
    };
    if loopback {
        return Some(Target::Remote(remote));
    }
    let confirm_at = match (&ov.confirm_target, confirm) {
        (Some(c), _) => Some((c.clone(), At::Flag("--confirm-target"))),
        (None, Some(c)) => Some((c, At::Key(root("confirm_target")))),
        (None, None) => None,
    };
    match confirm_at {
        None => {
            cx.err(
                at,
                format!(
                    "refusing to run against `{}` without confirmation: it is not on loopback",
                    remote.addr()
                ),
                Some(format!(
                    "{CMID_WARNING}; if this host is yours to load, pass --confirm-target {h} \
                     or set confirm_target = \"{h}\", and set [fleet] cmid_pool so repeated \
                     runs reuse the same CMIDs",
                    h = remote.host
                )),
            );
            None
        }
        Some((c, c_at)) => {
            let c_trim = c.trim();
            let matches = c_trim.eq_ignore_ascii_case(&remote.host)
                || c_trim.eq_ignore_ascii_case(&remote.addr())
                || c_trim.eq_ignore_ascii_case(&text);
            if matches {
                Some(Target::Remote(remote))
            } else {
                cx.err(
                    c_at,
                    format!("confirms `{c_trim}`, but the target is `{}`", remote.host),
                    Some(format!(
                        "the confirmation must name the target host: {}",
                        remote.host
                    )),
                );
                None
            }
        }
    }
}

/// `host:port`, `host`, `[v6]:port`, `[v6]` or a bare IPv6 address, read by the grammar
/// `--target` uses; the host as text (an IPv6 address without brackets).
fn parse_target(text: &str) -> Result<(String, u16), ValueError> {
    crate::values::parse_target(text).map(|t| (t.host.to_string(), t.port))
}

/// 127.0.0.0/8, ::1 (also IPv4-mapped) and `localhost`. Other names are not resolved here:
/// a name counts as remote even if it points at loopback.
fn is_loopback(host: &str) -> bool {
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.to_canonical().is_loopback(),
        Err(_) => {
            let h = host.strip_suffix('.').unwrap_or(host);
            h.eq_ignore_ascii_case("localhost")
        }
    }
}

/// Most `[[hosts]]` entries (each has its own loopback address, 127.0.0.2 upwards).
const MAX_HOSTS: usize = 64;

/// Where a host's options come from, and what it gets when the file does not say.
struct HostSpot {
    /// `[host]`, or `hosts[i]`.
    base: KeyPath,
    /// The name it gets without `name`.
    name: String,
    /// The loopback address it listens on.
    address: std::net::Ipv4Addr,
    /// The run's duration bound, for outage windows.
    run_length: Option<Duration>,
}

/// The `[[hosts]]` entries: each checked as `[host]` is, names unique.
fn in_process_hosts(
    cx: &mut Ctx<'_>,
    raw: Vec<RawHost>,
    run_length: Option<Duration>,
    resolve: &dyn Fn(&str) -> Result<&'static Product, String>,
) -> Option<Vec<HostOptions>> {
    if raw.len() > MAX_HOSTS {
        cx.err(
            &root("hosts"),
            format!(
                "{} hosts; at most {MAX_HOSTS} can run in-process",
                raw.len()
            ),
            None,
        );
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for (i, h) in raw.into_iter().enumerate() {
        let spot = HostSpot {
            base: root("hosts").index(i),
            name: format!("kms{:02}", i + 1),
            // At most 64 entries: 127.0.0.2 to 127.0.0.65.
            address: std::net::Ipv4Addr::new(127, 0, 0, 2 + i as u8),
            run_length,
        };
        let named = h.name.is_some();
        match host_options(cx, &spot, h, resolve) {
            Some(o) => {
                if out.iter().any(|p: &HostOptions| p.name == o.name) {
                    let at = if named {
                        spot.base.key("name")
                    } else {
                        spot.base.clone()
                    };
                    cx.err(
                        &at,
                        format!("a second host named `{}`", o.name),
                        Some("give every [[hosts]] entry its own name".to_owned()),
                    );
                    ok = false;
                }
                out.push(o);
            }
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// `down = [{ from = "10s", for = "20s" }, ...]`: sorted, disjoint windows of run time.
fn outages(
    cx: &mut Ctx<'_>,
    path: &KeyPath,
    raw: &[super::raw::RawDown],
    run_length: Option<Duration>,
) -> Option<Vec<Window>> {
    let hint =
        "down = [{ from = \"10s\", for = \"20s\" }]: down from 10 s after the start, for 20 s";
    let mut windows: Vec<(usize, Window)> = Vec::new();
    let mut ok = true;
    for (i, d) in raw.iter().enumerate() {
        let item = path.index(i);
        let from = cx.duration(&item.key("from"), &d.from);
        let length = cx.positive_duration(&item.key("for"), &d.length);
        let (Some(from), Some(length)) = (from, length) else {
            ok = false;
            continue;
        };
        if let Some(len) = run_length.filter(|len| from >= *len) {
            cx.err(
                &item.key("from"),
                format!(
                    "starts at {}, after the run ends ({})",
                    DisplayDuration(from),
                    DisplayDuration(len)
                ),
                Some("move the outage into the run, or lengthen [load] duration".to_owned()),
            );
            ok = false;
            continue;
        }
        windows.push((
            i,
            Window {
                start: from,
                end: from.saturating_add(length),
            },
        ));
    }
    windows.sort_by_key(|(_, w)| w.start);
    for pair in windows.windows(2) {
        let ((_, a), (j, b)) = (pair[0], pair[1]);
        if b.start < a.end {
            cx.err(
                &path.index(j),
                format!(
                    "overlaps the outage from {} to {}",
                    DisplayDuration(a.start),
                    DisplayDuration(a.end)
                ),
                Some(format!(
                    "{hint}; make the windows one, or move this one after {}",
                    DisplayDuration(a.end)
                )),
            );
            ok = false;
        }
    }
    ok.then(|| windows.into_iter().map(|(_, w)| w).collect())
}

fn host_options(
    cx: &mut Ctx<'_>,
    spot: &HostSpot,
    raw: RawHost,
    resolve: &dyn Fn(&str) -> Result<&'static Product, String>,
) -> Option<HostOptions> {
    let base = spot.base.clone();
    let name = match raw.name.as_deref().map(str::trim) {
        None => Some(spot.name.clone()),
        Some(n) if crate::values::is_host_name(n) && n.parse::<IpAddr>().is_err() => {
            Some(n.trim_end_matches('.').to_ascii_lowercase())
        }
        Some(n) => {
            cx.err(
                &base.key("name"),
                format!("`{n}` is not a host name"),
                Some("the name clients look up: letters, digits and '-', dots between labels, e.g. \"kms01\" or \"kms01.corp.example\"".to_owned()),
            );
            None
        }
    };
    let down = match &raw.down {
        None => Some(Vec::new()),
        Some(d) => outages(cx, &base.key("down"), d, spot.run_length),
    };
    let host_key = match raw.host_key {
        None => Some(HostKeyPlan::VolumeOnly),
        Some(k) => host_key(cx, &base.key("host_key"), k, resolve),
    };
    let mut interval = |key: &str, text: Option<&str>, default: Duration| -> Option<Duration> {
        let path = base.key(key);
        let Some(text) = text else {
            return Some(default);
        };
        let d = match crate::values::parse_minutes(text) {
            Ok(m) => Duration::from_secs(u64::from(m) * 60),
            Err(e) => {
                cx.value_err(At::Key(path.clone()), &e);
                return None;
            }
        };
        if d < INTERVAL_MIN || d > INTERVAL_MAX {
            cx.err(
                &path,
                format!("{} is not a whole number of minutes from 15m to 30d", DisplayDuration(d)),
                Some("hosts send these intervals in minutes, within Windows' limits (slmgr /sai, /sri)".to_owned()),
            );
            return None;
        }
        Some(d)
    };
    let activation_interval = interval(
        "activation_interval",
        raw.activation_interval.as_deref(),
        defaults::ACTIVATION_INTERVAL,
    );
    let renewal_interval = interval(
        "renewal_interval",
        raw.renewal_interval.as_deref(),
        defaults::RENEWAL_INTERVAL,
    );
    Some(HostOptions {
        name: name?,
        address: spot.address,
        port: raw.port.unwrap_or(0),
        down: down?,
        charged: raw.charged.unwrap_or(false),
        host_key: host_key?,
        time_check: raw.time_check.unwrap_or(true),
        ndr64: raw.ndr64.unwrap_or(true),
        btfn: raw.btfn.unwrap_or(true),
        close_after_response: raw.close_after_response.unwrap_or(false),
        activation_interval: activation_interval?,
        renewal_interval: renewal_interval?,
    })
}

fn host_key(
    cx: &mut Ctx<'_>,
    path: &KeyPath,
    raw: RawHostKey,
    resolve: &dyn Fn(&str) -> Result<&'static Product, String>,
) -> Option<HostKeyPlan> {
    let names = match raw {
        RawHostKey::Word(w) => {
            return match w.to_ascii_lowercase().as_str() {
                "volume" => Some(HostKeyPlan::VolumeOnly),
                // "all" is the host key group `kmsload host --host-key all` installs: every
                // volume KMS counted ID, and, as on a real host, no retail or preview one.
                _ => match crate::host::HostKey::lookup(&w) {
                    Ok(key) => Some(HostKeyPlan::Group(key)),
                    Err(e) => {
                        let hint = format!(
                            "\"all\", \"volume\", a host key group ({}), or a list of KMS counted IDs such as host_key = [\"{w}\"]",
                            e.valid.join(", ")
                        );
                        cx.err(path, format!("unknown host key \"{w}\""), Some(hint));
                        None
                    }
                },
            };
        }
        RawHostKey::List(names) => names,
    };
    if names.is_empty() {
        cx.err(
            path,
            "an empty host key activates nothing",
            Some("name at least one KMS counted ID, or use \"volume\"".to_owned()),
        );
        return None;
    }
    let mut ids: Vec<Uuid> = Vec::new();
    let mut ok = true;
    for (i, n) in names.iter().enumerate() {
        let by_group = products()
            .iter()
            .find(|p| p.kms_id_name.eq_ignore_ascii_case(n.trim()));
        let id = match by_group {
            Some(p) => p.kms_id,
            None => match resolve(n) {
                Ok(p) => p.kms_id,
                Err(_) => {
                    let groups: Vec<&str> = kms_id_names();
                    let hint = match closest(n, &groups) {
                        Some(best) => format!("did you mean \"{best}\"?"),
                        None => "use a KMS counted ID name from `kmsload products` (e.g. \"Windows Server 2022\", \"Office 2021\") or a product name".to_owned(),
                    };
                    cx.err(
                        &path.index(i),
                        format!("unknown KMS counted ID \"{n}\""),
                        Some(hint),
                    );
                    ok = false;
                    continue;
                }
            },
        };
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ok.then_some(HostKeyPlan::KmsIds(ids))
}

fn kms_id_names() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = products().iter().map(|p| p.kms_id_name.as_str()).collect();
    v.sort_unstable();
    v.dedup();
    v
}

// ---------------------------------------------------------------------------------------
// [fleet]

fn fleet(
    cx: &mut Ctx<'_>,
    raw: RawFleet,
    resolve: &dyn Fn(&str) -> Result<&'static Product, String>,
) -> Option<FleetPlan> {
    let base = root("fleet");
    let size = cx.at_least_one(&base.key("size"), raw.size.unwrap_or(defaults::FLEET_SIZE));
    let forced = match raw.protocol {
        Some(v) => protocol(cx, &base.key("protocol"), v),
        None => Some(None),
    };
    let products = product_mix(
        cx,
        &base,
        raw.products,
        raw.protocol.is_some(),
        forced.flatten(),
        resolve,
    );
    let vm_fraction = cx.fraction(&base.key("vm_fraction"), raw.vm_fraction.unwrap_or(0.0));
    let skew = skew(cx, &base.key("skew"), raw.skew);
    let cmid_pool = match raw.cmid_pool {
        Some(n) => Some(cx.at_least_one(&base.key("cmid_pool"), n)?),
        None => None,
    };
    Some(FleetPlan {
        size: size?,
        products: products?,
        vm_fraction: vm_fraction?,
        skew: skew?,
        reuse: raw.reuse.unwrap_or(ClientReuse::Renew),
        cmid_pool,
    })
}

fn protocol(cx: &mut Ctx<'_>, path: &KeyPath, v: u16) -> Option<Option<u16>> {
    if (4..=6).contains(&v) {
        Some(Some(v))
    } else {
        cx.err(
            path,
            format!("protocol {v} does not exist"),
            Some("KMS protocol versions are 4, 5 and 6".to_owned()),
        );
        None
    }
}

pub(crate) fn product_mix(
    cx: &mut Ctx<'_>,
    base: &KeyPath,
    raw: Option<Vec<super::raw::RawProduct>>,
    fleet_protocol_set: bool,
    forced: Option<u16>,
    resolve: &dyn Fn(&str) -> Result<&'static Product, String>,
) -> Option<Vec<ProductShare>> {
    let path = base.key("products");
    let Some(entries) = raw else {
        let Some(p) = products().iter().find(|p| p.name == defaults::PRODUCT) else {
            // The default is a catalog row; `tests::defaults_are_deterministic` checks it.
            cx.err(
                &path,
                "the default product is missing from the catalog",
                None,
            );
            return None;
        };
        return Some(vec![ProductShare {
            product: p,
            weight: 1.0,
            protocol: forced.unwrap_or(p.protocol),
        }]);
    };
    if entries.is_empty() {
        cx.err(
            &path,
            "the fleet needs at least one product",
            Some("products = [{ product = \"Windows 10/11 Pro\", weight = 1 }]".to_owned()),
        );
        return None;
    }
    let mut shares = Vec::new();
    let mut seen: Vec<(Uuid, usize)> = Vec::new();
    let mut ok = true;
    for (i, e) in entries.into_iter().enumerate() {
        let item = path.index(i);
        let product = match resolve(&e.product) {
            Ok(p) => p,
            Err(message) => {
                cx.err(
                    &item.key("product"),
                    message,
                    Some("`kmsload products` lists every name, GVLK and SKU ID".to_owned()),
                );
                ok = false;
                continue;
            }
        };
        if let Some((_, first)) = seen.iter().find(|(id, _)| *id == product.sku_id) {
            cx.err(
                &item.key("product"),
                format!(
                    "\"{}\" is listed twice (also entry #{})",
                    product.name,
                    first + 1
                ),
                Some("merge the two entries and add their weights".to_owned()),
            );
            ok = false;
            continue;
        }
        seen.push((product.sku_id, i));
        let weight = e.weight.unwrap_or(1.0);
        if !(weight.is_finite() && weight > 0.0) {
            cx.err(
                &item.key("weight"),
                format!("must be > 0, found {weight}"),
                Some("weights are relative, e.g. 3 and 1 for 75% and 25%".to_owned()),
            );
            ok = false;
            continue;
        }
        let own = match e.protocol {
            Some(_) if fleet_protocol_set => {
                cx.err(
                    &item.key("protocol"),
                    "conflicts with [fleet] protocol",
                    Some("[fleet] protocol forces one version on every product; set one or the other".to_owned()),
                );
                ok = false;
                continue;
            }
            Some(v) => match protocol(cx, &item.key("protocol"), v) {
                Some(p) => p,
                None => {
                    ok = false;
                    continue;
                }
            },
            None => None,
        };
        shares.push(ProductShare {
            product,
            weight,
            protocol: forced.or(own).unwrap_or(product.protocol),
        });
    }
    ok.then_some(shares)
}

pub(crate) fn skew(cx: &mut Ctx<'_>, path: &KeyPath, raw: Option<RawSkew>) -> Option<SkewDist> {
    let Some(raw) = raw else {
        return Some(SkewDist::Fixed(0));
    };
    let Some(kind) = raw.kind else {
        cx.err(
            &path.key("kind"),
            "required key `kind` is missing",
            Some("kind = \"none\", \"fixed\", \"uniform\", \"normal\" or \"list\"".to_owned()),
        );
        return None;
    };
    let (name, allowed): (&str, &[&str]) = match kind {
        SkewKind::None => ("none", &[]),
        SkewKind::Fixed => ("fixed", &["offset"]),
        SkewKind::Uniform => ("uniform", &["min", "max"]),
        SkewKind::Normal => ("normal", &["mean", "stddev"]),
        SkewKind::List => ("list", &["offsets"]),
    };
    let set = [
        ("offset", raw.offset.is_some()),
        ("min", raw.min.is_some()),
        ("max", raw.max.is_some()),
        ("mean", raw.mean.is_some()),
        ("stddev", raw.stddev.is_some()),
        ("offsets", raw.offsets.is_some()),
    ];
    let mut ok = true;
    for (key, present) in set {
        if present && !allowed.contains(&key) {
            let keys = if allowed.is_empty() {
                "no other keys".to_owned()
            } else {
                allowed.join(", ")
            };
            cx.err(
                &path.key(key),
                format!("does not apply to kind = \"{name}\""),
                Some(format!("kind = \"{name}\" takes {keys}")),
            );
            ok = false;
        }
    }
    let mut need = |key: &str, v: &Option<String>| -> Option<i64> {
        match v {
            Some(t) => cx.offset(&path.key(key), t),
            None => {
                cx.err(
                    &path.key(key),
                    format!("kind = \"{name}\" needs `{key}`"),
                    Some(format!("kind = \"{name}\" takes {}", allowed.join(", "))),
                );
                None
            }
        }
    };
    let dist = match kind {
        SkewKind::None => Some(SkewDist::Fixed(0)),
        SkewKind::Fixed => need("offset", &raw.offset).map(SkewDist::Fixed),
        SkewKind::Uniform => {
            let min = need("min", &raw.min);
            let max = need("max", &raw.max);
            match (min, max) {
                (Some(lo), Some(hi)) if lo > hi => {
                    cx.err(
                        &path.key("max"),
                        format!(
                            "max ({}) is below min ({})",
                            DisplaySkew(hi),
                            DisplaySkew(lo)
                        ),
                        None,
                    );
                    None
                }
                (Some(min), Some(max)) => Some(SkewDist::Uniform { min, max }),
                _ => None,
            }
        }
        SkewKind::Normal => {
            let mean = need("mean", &raw.mean);
            let stddev = match &raw.stddev {
                Some(t) => cx.duration(&path.key("stddev"), t),
                None => {
                    cx.err(
                        &path.key("stddev"),
                        "kind = \"normal\" needs `stddev`",
                        Some("e.g. stddev = \"1h\"".to_owned()),
                    );
                    None
                }
            };
            Some(SkewDist::Normal {
                mean: mean? as f64,
                stddev: stddev?.as_secs_f64(),
            })
        }
        SkewKind::List => match &raw.offsets {
            None => {
                cx.err(
                    &path.key("offsets"),
                    "kind = \"list\" needs `offsets`",
                    Some("e.g. offsets = [\"-5h\", \"0s\", \"+5h\"]".to_owned()),
                );
                None
            }
            Some(list) if list.is_empty() => {
                cx.err(
                    &path.key("offsets"),
                    "the list is empty",
                    Some("e.g. offsets = [\"-5h\", \"0s\", \"+5h\"]".to_owned()),
                );
                None
            }
            Some(list) => {
                let parsed: Vec<Option<i64>> = list
                    .iter()
                    .enumerate()
                    .map(|(i, t)| cx.offset(&path.key("offsets").index(i), t))
                    .collect();
                parsed
                    .into_iter()
                    .collect::<Option<Vec<_>>>()
                    .map(SkewDist::List)
            }
        },
    };
    if ok { dist } else { None }
}

// ---------------------------------------------------------------------------------------
// [client], [timeouts]

fn client(raw: RawClient) -> ClientPlan {
    ClientPlan {
        ndr: raw.ndr.unwrap_or(NdrMode::Windows),
        btfn: raw.btfn.unwrap_or(true),
    }
}

fn timeouts(cx: &mut Ctx<'_>, raw: RawTimeouts) -> Option<Timeouts> {
    let base = root("timeouts");
    let mut one = |key: &str, v: Option<String>, default: Duration, zero_ok: bool| {
        let path = base.key(key);
        match v {
            None => Some(default),
            Some(t) if zero_ok => cx.duration(&path, &t),
            Some(t) => cx.positive_duration(&path, &t),
        }
    };
    let connect = one("connect", raw.connect, defaults::CONNECT, false);
    let bind = one("bind", raw.bind, defaults::BIND, false);
    let request = one("request", raw.request, defaults::REQUEST, false);
    let drain = one("drain", raw.drain, defaults::DRAIN, true);
    Some(Timeouts {
        connect: connect?,
        bind: bind?,
        request: request?,
        drain: drain?,
    })
}

// ---------------------------------------------------------------------------------------
// [load]

fn load(cx: &mut Ctx<'_>, raw: RawLoad, ov: &Overrides) -> Option<Load> {
    let base = root("load");
    let k = |key: &str| base.key(key);
    let closed = raw.model == Some(Model::Closed);
    let mut ok = true;

    // Keys of the other model.
    let open_keys = [
        ("rate", raw.rate.is_some()),
        ("start_rate", raw.start_rate.is_some()),
        ("stages", raw.stages.is_some()),
        ("bursts", raw.bursts.is_some()),
        ("max_in_flight", raw.max_in_flight.is_some()),
    ];
    let closed_keys = [
        ("clients", raw.clients.is_some()),
        ("think_time", raw.think_time.is_some()),
    ];
    if closed {
        for (key, set) in open_keys {
            if set {
                cx.err(
                    &k(key),
                    "applies to the open model, but model = \"closed\"",
                    Some(format!("remove `{key}`, or use model = \"open\"")),
                );
                ok = false;
            }
        }
    } else {
        for (key, set) in closed_keys {
            if set {
                cx.err(
                    &k(key),
                    "applies to the closed model",
                    Some("add model = \"closed\" to [load]".to_owned()),
                );
                ok = false;
            }
        }
    }

    let model = if closed {
        if ov.rate.is_some() {
            cx.err(
                At::Flag("--rate"),
                "applies to the open model; this scenario uses model = \"closed\"",
                Some("change [load] clients instead".to_owned()),
            );
            ok = false;
        }
        let clients = cx.at_least_one(
            &k("clients"),
            raw.clients.unwrap_or(defaults::CLOSED_CLIENTS),
        );
        let think_time = match &raw.think_time {
            Some(t) => cx.duration(&k("think_time"), t),
            None => Some(Duration::ZERO),
        };
        match (clients, think_time) {
            (Some(clients), Some(think_time)) => Some(LoadModel::Closed {
                clients,
                think_time,
            }),
            _ => None,
        }
    } else {
        schedule(cx, &base, &raw, ov).map(LoadModel::Open)
    };

    // Bounds from the command line replace the file's as a pair: `--rate 500 --duration 30s`
    // on a file capped at 300 attempts means 30 s at 500/s, not 0.6 s.
    let bounds_from_flags = ov.duration.is_some() || ov.attempts.is_some();
    let duration = match (ov.duration, &raw.duration) {
        (None, Some(_)) if bounds_from_flags => None,
        (Some(d), _) if d.is_zero() => {
            cx.err(At::Flag("--duration"), "must be longer than 0s", None);
            ok = false;
            None
        }
        (Some(d), _) => Some(d),
        (None, Some(t)) => {
            let d = cx.positive_duration(&k("duration"), t);
            ok &= d.is_some();
            d
        }
        (None, None) => None,
    };
    let attempts = match (ov.attempts, raw.attempts) {
        (Some(0), _) => {
            cx.err(At::Flag("--attempts"), "must be at least 1", None);
            ok = false;
            None
        }
        (Some(n), _) => Some(n),
        (None, Some(_)) if bounds_from_flags => None,
        (None, Some(n)) => {
            let v = cx.at_least_one(&k("attempts"), n);
            ok &= v.is_some();
            v
        }
        (None, None) => None,
    };
    let natural_end = match &model {
        Some(LoadModel::Open(s)) => s.natural_end(),
        _ => None,
    };
    let max_duration = match (duration, natural_end) {
        (Some(d), Some(end)) => Some(d.min(end)),
        (d, end) => d.or(end),
    };
    if model.is_some() && ok && max_duration.is_none() && attempts.is_none() {
        cx.err(
            &base,
            "the run has no bound: set `duration`, `attempts` or both",
            Some("e.g. duration = \"30s\" or attempts = 1000 (or pass --duration)".to_owned()),
        );
        ok = false;
    }

    let connection = match raw.connection.unwrap_or(Connection::New) {
        Connection::New => {
            if raw.requests_per_connection.is_some() {
                cx.err(
                    &k("requests_per_connection"),
                    "applies to connection = \"keep-alive\"",
                    Some("add connection = \"keep-alive\", or remove this key".to_owned()),
                );
                ok = false;
            }
            ConnectionPolicy::NewPerActivation
        }
        Connection::KeepAlive => {
            let n = match raw.requests_per_connection {
                Some(n) => {
                    let v = cx.at_least_one(&k("requests_per_connection"), n);
                    ok &= v.is_some();
                    v
                }
                None => None,
            };
            ConnectionPolicy::KeepAlive {
                requests_per_connection: n,
            }
        }
    };

    let mut sources: Vec<IpAddr> = Vec::new();
    // `--source-address` replaces the key (shards of one run may each have their own).
    let (listed, from_flag) = match &ov.source_addresses {
        Some(list) => (Some(list), true),
        None => (raw.source_addresses.as_ref(), false),
    };
    for (i, s) in listed.into_iter().flatten().enumerate() {
        let path: At = if from_flag {
            At::Flag("--source-address")
        } else {
            At::Key(k("source_addresses").index(i))
        };
        match s.trim().parse::<IpAddr>() {
            Ok(ip) if ip.is_unspecified() => {
                cx.err(
                    path.clone(),
                    format!("{ip} is the unspecified address"),
                    Some("name a local address, e.g. \"127.0.0.2\"".to_owned()),
                );
                ok = false;
            }
            Ok(ip) if sources.contains(&ip) => {
                cx.err(path.clone(), format!("{ip} is listed twice"), None);
                ok = false;
            }
            Ok(ip) => sources.push(ip),
            Err(_) => {
                cx.err(
                    path.clone(),
                    format!("\"{s}\" is not an IP address"),
                    Some(
                        "source addresses are IP addresses without a port, e.g. \"127.0.0.2\""
                            .to_owned(),
                    ),
                );
                ok = false;
            }
        }
    }

    let max_in_flight = match (&model, raw.max_in_flight) {
        (Some(LoadModel::Closed { clients, .. }), _) => *clients,
        (_, Some(n)) => match cx.at_least_one(&k("max_in_flight"), n) {
            Some(v) => v,
            None => {
                ok = false;
                0
            }
        },
        (_, None) => defaults::MAX_IN_FLIGHT,
    };

    if !ok {
        return None;
    }
    Some(Load {
        model: model?,
        bounds: Bounds {
            max_duration,
            max_attempts: attempts,
        },
        connection,
        source_addresses: sources,
        max_in_flight,
        shard: crate::load::Shard::WHOLE,
        start_at: None,
        run_id: None,
        overrides: crate::load::shard::RunOverrides::default(),
    })
}

fn schedule(cx: &mut Ctx<'_>, base: &KeyPath, raw: &RawLoad, ov: &Overrides) -> Option<Schedule> {
    let k = |key: &str| base.key(key);
    if let Some(rate) = ov.rate {
        return cx
            .positive_rate(At::Flag("--rate"), rate)
            .map(|rate| Schedule::Constant { rate });
    }
    let given: Vec<&str> = [
        ("rate", raw.rate.is_some()),
        ("stages", raw.stages.is_some()),
        ("bursts", raw.bursts.is_some()),
    ]
    .into_iter()
    .filter(|(_, set)| *set)
    .map(|(key, _)| key)
    .collect();
    if given.len() > 1 {
        cx.err(
            &k(given[1]),
            format!(
                "`{}` and `{}` both set the arrival schedule",
                given[0], given[1]
            ),
            Some("use one of rate, stages or bursts".to_owned()),
        );
        return None;
    }
    if raw.start_rate.is_some() && raw.stages.is_none() {
        cx.err(
            &k("start_rate"),
            "applies to `stages`",
            Some("remove it, or describe the load with stages".to_owned()),
        );
        return None;
    }
    if let Some(stages) = &raw.stages {
        return staged(cx, &k("stages"), raw.start_rate, stages);
    }
    if let Some(b) = &raw.bursts {
        return bursts(cx, &k("bursts"), b);
    }
    let rate = raw.rate.unwrap_or(defaults::RATE);
    cx.positive_rate(&k("rate"), rate)
        .map(|rate| Schedule::Constant { rate })
}

fn staged(
    cx: &mut Ctx<'_>,
    path: &KeyPath,
    start_rate: Option<f64>,
    raw: &[super::raw::RawStage],
) -> Option<Schedule> {
    let start = cx.non_negative_rate(
        &path.parent().unwrap_or_default().key("start_rate"),
        start_rate.unwrap_or(0.0),
    );
    if raw.is_empty() {
        cx.err(
            path,
            "needs at least one stage",
            Some("stages = [{ duration = \"10s\", rate = 500 }]".to_owned()),
        );
        return None;
    }
    let mut stages = Vec::new();
    let mut ok = start.is_some();
    for (i, s) in raw.iter().enumerate() {
        let item = path.index(i);
        let duration = match cx.duration(&item.key("duration"), &s.duration) {
            Some(d) if d.is_zero() => {
                cx.err(
                    &item.key("duration"),
                    "a stage must last longer than 0s",
                    Some(
                        "for a step, put a short ramp stage (e.g. \"1s\") before a hold stage"
                            .to_owned(),
                    ),
                );
                None
            }
            d => d,
        };
        let rate = cx.non_negative_rate(&item.key("rate"), s.rate);
        match (duration, rate) {
            (Some(duration), Some(target_rate)) => stages.push(Stage {
                duration,
                target_rate,
            }),
            _ => ok = false,
        }
    }
    if !ok {
        return None;
    }
    let start_rate = start?;
    if start_rate == 0.0 && stages.iter().all(|s| s.target_rate == 0.0) {
        cx.err(path, "every stage has rate 0: nothing would be sent", None);
        return None;
    }
    Some(Schedule::Stages { start_rate, stages })
}

fn bursts(cx: &mut Ctx<'_>, path: &KeyPath, raw: &RawBursts) -> Option<Schedule> {
    let base_rate = cx.non_negative_rate(&path.key("base_rate"), raw.base_rate.unwrap_or(0.0));
    let burst_rate = cx.positive_rate(&path.key("burst_rate"), raw.burst_rate);
    let every = cx.positive_duration(&path.key("every"), &raw.every);
    let length = cx.positive_duration(&path.key("length"), &raw.length);
    let (base_rate, burst_rate, every, length) = (base_rate?, burst_rate?, every?, length?);
    let mut ok = true;
    if length >= every {
        cx.err(
            &path.key("length"),
            format!(
                "a burst of {} does not fit in a period of {}",
                DisplayDuration(length),
                DisplayDuration(every)
            ),
            Some(
                "`length` must be shorter than `every`; for a constant rate use `rate`".to_owned(),
            ),
        );
        ok = false;
    }
    if burst_rate <= base_rate {
        cx.err(
            &path.key("burst_rate"),
            format!("{burst_rate} is not above base_rate ({base_rate})"),
            None,
        );
        ok = false;
    }
    ok.then_some(Schedule::Bursts {
        base_rate,
        burst_rate,
        every,
        length,
    })
}

/// The discovery keys of the top level.
struct DiscoverKeys {
    discover: Option<String>,
    dns_server: Option<String>,
    srv_order: Option<String>,
    host_cache: Option<bool>,
    dns_ttl: Option<String>,
    dns_timeout: Option<String>,
    confirm_discovered: Option<String>,
}

impl DiscoverKeys {
    /// The discovery keys mean nothing without `discover` (or with `--target`).
    fn refuse_without_discover(&self, cx: &mut Ctx<'_>) {
        let set = [
            ("dns_server", self.dns_server.is_some()),
            ("srv_order", self.srv_order.is_some()),
            ("host_cache", self.host_cache.is_some()),
            ("dns_ttl", self.dns_ttl.is_some()),
            ("dns_timeout", self.dns_timeout.is_some()),
            ("confirm_discovered", self.confirm_discovered.is_some()),
        ];
        for (key, present) in set {
            if present && self.discover.is_none() {
                cx.err(
                    &root(key),
                    format!("`{key}` applies to discovery, but `discover` is not set"),
                    Some("add discover = \"DOMAIN\", or remove the key".to_owned()),
                );
            }
        }
    }
}

/// `discover = "DOMAIN"` with its keys into a [`Target::Discover`].
fn discover_target(
    cx: &mut Ctx<'_>,
    domain: &str,
    keys: DiscoverKeys,
    confirm: Option<String>,
    ov: &Overrides,
    hosts: Option<Vec<HostOptions>>,
    srv: Option<Vec<super::raw::RawSrv>>,
) -> Option<Target> {
    use crate::discover::{self, DiscoveryConfig, HostGate, SrvOrder};
    let domain = match discover::parse_domain(domain) {
        Ok(d) => d,
        Err(e) => {
            cx.err(&root("discover"), e, None);
            return None;
        }
    };
    let mut config = DiscoveryConfig::new(&domain);
    let mut ok = true;
    if let Some(s) = &keys.dns_server {
        match discover::parse_dns_server(s) {
            Ok(a) => config.dns_server = Some(a),
            Err(e) => {
                cx.err(&root("dns_server"), e, None);
                ok = false;
            }
        }
    }
    if let Some(s) = &keys.srv_order {
        match s.parse::<SrvOrder>() {
            Ok(o) => config.order = o,
            Err(e) => {
                cx.err(&root("srv_order"), e, None);
                ok = false;
            }
        }
    }
    config.host_cache = keys.host_cache.unwrap_or(true);
    if let Some(s) = &keys.dns_ttl {
        match cx.duration(&root("dns_ttl"), s) {
            Some(d) => config.dns_ttl = Some(d),
            None => ok = false,
        }
    }
    if let Some(s) = &keys.dns_timeout {
        match cx.positive_duration(&root("dns_timeout"), s) {
            Some(d) => config.dns_timeout = d,
            None => ok = false,
        }
    }
    let mut gate = HostGate::default();
    if let Some(c) = ov.confirm_target.clone().or(confirm) {
        gate.confirmed = c
            .split(',')
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .collect();
    }
    if let Some(c) = &keys.confirm_discovered {
        if discover::parse_domain(c).is_ok_and(|c| c == domain) {
            gate.all = true;
        } else {
            cx.err(
                &root("confirm_discovered"),
                format!("confirms `{c}`, but the scenario discovers `{domain}`"),
                Some(format!(
                    "{CMID_WARNING}; to send traffic to every host found under it, name the domain: confirm_discovered = \"{domain}\""
                )),
            );
            ok = false;
        }
    }
    let hosts = hosts?;
    let srv = match srv {
        None => {
            // Through DNS: the records must name the hosts' addresses and ports.
            for (i, h) in hosts.iter().enumerate() {
                if h.port == 0 {
                    cx.err(
                        &root("hosts").index(i),
                        format!("`{}` has no fixed `port`, so no DNS record can name it", h.name),
                        Some(format!(
                            "give it the port of its SRV record (and an A record {} for its target), or list the records in the scenario: srv = [{{ host = \"{}\" }}]",
                            h.address, h.name
                        )),
                    );
                    ok = false;
                }
            }
            None
        }
        Some(list) => {
            let records = static_srv(cx, &list, &hosts);
            if keys.dns_server.is_some() {
                cx.err(
                    &root("dns_server"),
                    "no DNS server is asked: `srv` gives the records",
                    Some("remove `dns_server` to use `srv`, or remove `srv` (and [[hosts]]' need for it) to ask DNS".to_owned()),
                );
                ok = false;
            }
            Some(records?)
        }
    };
    ok.then_some(Target::Discover(crate::scenario::DiscoverTarget {
        config,
        gate,
        hosts,
        srv,
    }))
}

/// `srv = [{ host, priority, weight }, ...]`: each names a `[[hosts]]` entry, once; every
/// entry is named.
fn static_srv(
    cx: &mut Ctx<'_>,
    list: &[super::raw::RawSrv],
    hosts: &[HostOptions],
) -> Option<Vec<super::plan::StaticSrv>> {
    let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    if hosts.is_empty() {
        cx.err(
            &root("srv"),
            "`srv` names in-process hosts, but there is no [[hosts]] table",
            Some("add one [[hosts]] table per record, e.g. [[hosts]] name = \"kms01\"; to ask DNS for the records instead, remove `srv`".to_owned()),
        );
        return None;
    }
    if list.is_empty() {
        cx.err(
            &root("srv"),
            "is empty: clients would find no host",
            Some("srv = [{ host = \"kms01\" }, { host = \"kms02\", priority = 10 }]".to_owned()),
        );
        return None;
    }
    let mut out: Vec<super::plan::StaticSrv> = Vec::new();
    let mut ok = true;
    for (i, r) in list.iter().enumerate() {
        let wanted = r.host.trim().trim_end_matches('.').to_ascii_lowercase();
        let Some(host) = names.iter().position(|n| *n == wanted) else {
            let hint = match closest(&wanted, &names) {
                Some(best) => format!("did you mean \"{best}\"?"),
                None => format!("the [[hosts]] names are: {}", names.join(", ")),
            };
            cx.err(
                &root("srv").index(i).key("host"),
                format!("no [[hosts]] entry is named `{}`", r.host),
                Some(hint),
            );
            ok = false;
            continue;
        };
        if out.iter().any(|o| o.host == host) {
            cx.err(
                &root("srv").index(i).key("host"),
                format!("a second record for `{wanted}`"),
                Some("one record per host; priority and weight say how clients pick".to_owned()),
            );
            ok = false;
            continue;
        }
        out.push(super::plan::StaticSrv {
            host,
            priority: r.priority.unwrap_or(0),
            weight: r.weight.unwrap_or(0),
        });
    }
    for (i, h) in hosts.iter().enumerate() {
        if ok && !out.iter().any(|o| o.host == i) {
            cx.err(
                &root("hosts").index(i),
                format!(
                    "no `srv` record leads to `{}`: no client would reach it",
                    h.name
                ),
                Some(format!(
                    "add {{ host = \"{}\" }} to srv, or remove the host",
                    h.name
                )),
            );
            ok = false;
        }
    }
    ok.then_some(out)
}

// ---------------------------------------------------------------------------------------
// cross-section checks

/// Local addresses must be able to reach the target.
fn check_sources(cx: &mut Ctx<'_>, target: &Target, sources: &[IpAddr]) {
    for (i, ip) in sources.iter().enumerate() {
        let path = root("load").key("source_addresses").index(i);
        let canonical = ip.to_canonical();
        let problem = match target {
            Target::InProcess(_) if !(canonical.is_ipv4() && canonical.is_loopback()) => Some((
                format!("{ip} cannot reach the in-process host on 127.0.0.1"),
                "use 127.0.0.x addresses".to_owned(),
            )),
            Target::Remote(r) if r.loopback && !canonical.is_loopback() => Some((
                format!(
                    "{ip} is not a loopback address, but the target `{}` is",
                    r.addr()
                ),
                "use loopback source addresses, e.g. \"127.0.0.2\"".to_owned(),
            )),
            Target::Remote(r) if !r.loopback && canonical.is_loopback() => Some((
                format!("the loopback address {ip} cannot reach `{}`", r.addr()),
                "use addresses of this machine's network interfaces".to_owned(),
            )),
            Target::Remote(r) => match r.host.parse::<IpAddr>() {
                Ok(t) if t.is_ipv4() != canonical.is_ipv4() => Some((
                    format!(
                        "{ip} and the target `{}` are of different IP versions",
                        r.addr()
                    ),
                    "use source addresses of the target's IP version".to_owned(),
                )),
                _ => None,
            },
            Target::InProcess(_) | Target::Discover(_) => None,
        };
        if let Some((message, hint)) = problem {
            cx.err(&path, message, Some(hint));
        }
    }
}

/// With reuse = "new", the fleet cannot make more attempts than it has clients.
fn check_new_clients(cx: &mut Ctx<'_>, fleet: &FleetPlan, load: &Load) {
    if fleet.reuse != ClientReuse::New {
        return;
    }
    if let Some(n) = load.bounds.max_attempts
        && n > fleet.size
    {
        cx.err(
            &root("load").key("attempts"),
            format!(
                "{n} attempts need {n} new clients, but the fleet has {}",
                fleet.size
            ),
            Some("raise [fleet] size, or set [fleet] reuse = \"renew\"".to_owned()),
        );
    }
}

// ---------------------------------------------------------------------------------------
// [gates]

/// Abort checks wait this long by default (`[gates] abort_grace`).
const ABORT_GRACE: Duration = Duration::from_secs(5);

fn gates(
    cx: &mut Ctx<'_>,
    raw: RawGates,
    fleet: Option<&FleetPlan>,
    load: Option<&Load>,
) -> (Vec<Gate>, Option<GateAbort>) {
    let base = root("gates");
    let mut out = Vec::new();
    let grace = raw
        .abort_grace
        .as_deref()
        .and_then(|g| cx.duration(&base.key("abort_grace"), g));
    if raw.abort_grace.is_some() && raw.abort != Some(true) {
        cx.err(
            &base.key("abort_grace"),
            "has no effect without `abort = true`",
            Some("add `abort = true` to [gates], or remove abort_grace".to_owned()),
        );
    }
    let gate_abort = (raw.abort == Some(true)).then(|| GateAbort {
        grace: grace.unwrap_or(ABORT_GRACE),
    });
    for (i, g) in raw.latency.iter().flatten().enumerate() {
        let item = base.key("latency").index(i);
        let p = g.percentile;
        let percentile = if p.is_finite() && p > 0.0 && p <= 100.0 {
            Some(p)
        } else {
            cx.err(
                &item.key("percentile"),
                format!("{p} is not a percentile"),
                Some("a number above 0 and at most 100, e.g. 99 or 99.9".to_owned()),
            );
            None
        };
        let below = cx.positive_duration(&item.key("below"), &g.below);
        if let (Some(percentile), Some(below)) = (percentile, below) {
            out.push(Gate::Latency {
                phase: g.phase.unwrap_or(crate::record::Phase::Total),
                of: g.of.unwrap_or_default(),
                percentile,
                below,
            });
        }
    }
    if let Some(r) = raw.max_error_rate
        && let Some(r) = cx.fraction(&base.key("max_error_rate"), r)
    {
        out.push(Gate::MaxErrorRate(r));
    }
    if let Some(t) = raw.threshold {
        let path = base.key("threshold");
        let within = cx.at_least_one(&path.key("within"), t.within);
        let apps: Vec<Application> = fleet
            .map(|f| {
                f.products
                    .iter()
                    .filter_map(|s| Application::from_app_id(s.product.app_id))
                    .collect()
            })
            .unwrap_or_default();
        let app_ok = match (t.application, fleet) {
            (Some(app), Some(_)) if !apps.contains(&app) => {
                cx.err(
                    &path.key("application"),
                    format!("the fleet has no {} products", app.as_str()),
                    Some("name an application the fleet uses, or add such products".to_owned()),
                );
                false
            }
            _ => true,
        };
        if let (Some(clients), true) = (within, app_ok) {
            out.push(Gate::ThresholdWithin {
                application: t.application,
                clients,
            });
        }
    }
    if let Some(codes) = raw.allowed_codes {
        let path = base.key("allowed_codes");
        if codes.is_empty() {
            cx.err(
                &path,
                "an empty list allows no outcome at all",
                Some("list the codes you accept, 0 for success: [0, \"0xC004F038\"]".to_owned()),
            );
        }
        let parsed: Vec<Option<u32>> = codes
            .iter()
            .enumerate()
            .map(|(i, c)| code(cx, &path.index(i), c))
            .collect();
        if let (false, Some(mut list)) = (
            codes.is_empty(),
            parsed.into_iter().collect::<Option<Vec<u32>>>(),
        ) {
            let mut seen = HashSet::new();
            list.retain(|c| seen.insert(*c));
            out.push(Gate::AllowedCodes(list));
        }
    }
    if let Some(r) = raw.min_achieved_rate {
        let path = base.key("min_achieved_rate");
        if let Some(r) = cx.positive_rate(&path, r) {
            match load.map(|l| &l.model) {
                Some(LoadModel::Open(s)) if r > s.peak_rate() => cx.err(
                    &path,
                    format!(
                        "can never pass: the schedule never offers more than {}/s",
                        s.peak_rate()
                    ),
                    Some("lower the gate or raise the rate".to_owned()),
                ),
                _ => out.push(Gate::MinAchievedRate(r)),
            }
        }
    }
    if gate_abort.is_some() && out.is_empty() {
        cx.err(
            &base.key("abort"),
            "there is no gate to abort on",
            Some("add a gate (e.g. max_error_rate = 0.01), or remove `abort`".to_owned()),
        );
    }
    (out, gate_abort)
}

fn code(cx: &mut Ctx<'_>, path: &KeyPath, raw: &RawCode) -> Option<u32> {
    let hint =
        Some("write HRESULTs as in `kmsload explain`: \"0xC004F038\", or 0 for success".to_owned());
    match raw {
        RawCode::Number(n) => match u32::try_from(*n) {
            Ok(v) => Some(v),
            Err(_) => {
                cx.err(path, format!("{n} is not a 32-bit HRESULT"), hint);
                None
            }
        },
        RawCode::Text(t) => match parse_code_text(t) {
            Some(v) => Some(v),
            None => {
                cx.err(path, format!("\"{t}\" is not an HRESULT"), hint);
                None
            }
        },
    }
}

fn parse_code_text(t: &str) -> Option<u32> {
    let t = t.trim();
    if t.eq_ignore_ascii_case("S_OK") || t.eq_ignore_ascii_case("ok") {
        return Some(0);
    }
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) if !hex.is_empty() && hex.len() <= 8 => u32::from_str_radix(hex, 16).ok(),
        Some(_) => None,
        None => t.parse::<u32>().ok(),
    }
}

// ---------------------------------------------------------------------------------------
// [[faults]]

fn faults(cx: &mut Ctx<'_>, raw: Vec<RawFault>, run_length: Option<Duration>) -> Vec<FaultRule> {
    let mut out = Vec::new();
    for (i, f) in raw.into_iter().enumerate() {
        let item = root("faults").index(i);
        if let Some(rule) = fault(cx, &item, f, run_length) {
            out.push(rule);
        }
    }
    out
}

fn fault(
    cx: &mut Ctx<'_>,
    item: &KeyPath,
    f: RawFault,
    run_length: Option<Duration>,
) -> Option<FaultRule> {
    let k = |key: &str| item.key(key);
    let name = f.kind.as_str();
    let allowed = f.kind.params();
    let mut ok = true;
    for key in f.params_set() {
        if !allowed.contains(&key) {
            let takes = if allowed.is_empty() {
                "no parameters".to_owned()
            } else {
                allowed.join(", ")
            };
            cx.err(
                &k(key),
                format!("does not apply to kind = \"{name}\""),
                Some(format!(
                    "kind = \"{name}\" takes {takes} (besides probability and window)"
                )),
            );
            ok = false;
        }
    }
    let probability = cx.fraction(&k("probability"), f.probability.unwrap_or(1.0));
    let window = match &f.window {
        None => Some(None),
        Some(w) => window(cx, &k("window"), w, run_length).map(Some),
    };
    let missing = |cx: &mut Ctx<'_>, key: &str, example: &str| {
        cx.err(
            &k(key),
            format!("kind = \"{name}\" needs `{key}`"),
            Some(format!("e.g. {key} = {example}")),
        );
    };
    let kind = match f.kind {
        FaultKindName::Delay => {
            let on = f.on;
            if on.is_none() {
                missing(cx, "on", "\"receive\" (or \"connect\", \"send\")");
            }
            let delay = match &f.delay {
                Some(t) => cx.duration(&k("delay"), t),
                None => {
                    missing(cx, "delay", "\"200ms\"");
                    None
                }
            };
            let jitter = match &f.jitter {
                Some(t) => cx.duration(&k("jitter"), t),
                None => Some(Duration::ZERO),
            };
            match (on, delay, jitter) {
                (Some(_), Some(d), Some(j)) if d.is_zero() && j.is_zero() => {
                    cx.err(
                        &k("delay"),
                        "a delay of 0s with no jitter does nothing",
                        None,
                    );
                    None
                }
                (Some(on), Some(delay), Some(jitter)) => {
                    Some(FaultKind::Delay { on, delay, jitter })
                }
                _ => None,
            }
        }
        FaultKindName::Refuse => Some(FaultKind::Refuse),
        FaultKindName::Blackhole => Some(FaultKind::Blackhole),
        FaultKindName::Reset | FaultKindName::Truncate => {
            let at = f.after_bytes.map_or(CutPoint::MidPdu, CutPoint::AfterBytes);
            Some(if f.kind == FaultKindName::Reset {
                FaultKind::Reset { at }
            } else {
                FaultKind::Truncate { at }
            })
        }
        FaultKindName::Corrupt => {
            let bytes = cx.at_least_one(&k("bytes"), f.bytes.unwrap_or(1));
            match (f.region, bytes) {
                (None, _) => {
                    missing(cx, "region", "\"payload\" (or \"rpc-header\", \"stub\")");
                    None
                }
                (Some(region), Some(bytes)) => Some(FaultKind::Corrupt { region, bytes }),
                _ => None,
            }
        }
        FaultKindName::Stall => {
            let duration = match &f.duration {
                Some(t) => cx.positive_duration(&k("duration"), t).map(Some),
                None => Some(None),
            };
            duration.map(|duration| FaultKind::Stall {
                phase: f.phase.unwrap_or(StallPhase::Request),
                duration,
            })
        }
        FaultKindName::Trickle => {
            let on = match f.on.unwrap_or(Direction::Receive) {
                Direction::Connect => {
                    cx.err(
                        &k("on"),
                        "a trickle applies to bytes: \"send\" or \"receive\"",
                        None,
                    );
                    None
                }
                d => Some(d),
            };
            let chunk = cx.at_least_one(&k("bytes"), f.bytes.unwrap_or(1));
            let every = match &f.every {
                Some(t) => cx.positive_duration(&k("every"), t),
                None => {
                    missing(cx, "every", "\"50ms\"");
                    None
                }
            };
            match (on, chunk, every) {
                (Some(on), Some(chunk), Some(every)) => {
                    Some(FaultKind::Trickle { on, chunk, every })
                }
                _ => None,
            }
        }
    };
    if !ok {
        return None;
    }
    Some(FaultRule {
        kind: kind?,
        probability: probability?,
        window: window?,
    })
}

fn window(
    cx: &mut Ctx<'_>,
    path: &KeyPath,
    w: &[String],
    run_length: Option<Duration>,
) -> Option<Window> {
    let hint = Some("window = [\"20s\", \"40s\"]: from 20 s to 40 s after the start".to_owned());
    let [start, end] = w else {
        cx.err(
            path,
            format!("needs two durations (start, end), found {}", w.len()),
            hint,
        );
        return None;
    };
    let start = cx.duration(&path.index(0), start);
    let end = cx.duration(&path.index(1), end);
    let (start, end) = (start?, end?);
    if end <= start {
        cx.err(
            path,
            format!(
                "ends ({}) before it starts ({})",
                DisplayDuration(end),
                DisplayDuration(start)
            ),
            hint,
        );
        return None;
    }
    if let Some(len) = run_length
        && start >= len
    {
        cx.err(
            &path.index(0),
            format!(
                "starts at {}, after the run ends ({})",
                DisplayDuration(start),
                DisplayDuration(len)
            ),
            Some("move the window into the run, or lengthen [load] duration".to_owned()),
        );
        return None;
    }
    Some(Window { start, end })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        assert_eq!(
            parse_target("kms.example.com:1700"),
            Ok(("kms.example.com".into(), 1700))
        );
        assert_eq!(parse_target("kms"), Ok(("kms".into(), 1688)));
        assert_eq!(parse_target("127.0.0.1"), Ok(("127.0.0.1".into(), 1688)));
        assert_eq!(parse_target("[::1]:1689"), Ok(("::1".into(), 1689)));
        assert_eq!(parse_target("[::1]"), Ok(("::1".into(), 1688)));
        assert_eq!(parse_target("::1"), Ok(("::1".into(), 1688)));
        assert!(parse_target("").is_err());
        assert!(parse_target("host:0").is_err());
        assert!(parse_target("host:70000").is_err());
        assert!(parse_target("host:").is_err());
        assert!(parse_target("fe80::1:99999").is_err());
        assert!(parse_target("[::1").is_err());
        assert!(parse_target("[nope]:1").is_err());
        assert!(parse_target("bad host:1688").is_err());
        assert!(parse_target("-x.com").is_err());
    }

    #[test]
    fn loopback_is_127_8_and_ipv6_one_and_localhost() {
        for h in [
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "::ffff:127.0.0.1",
            "localhost",
            "LOCALHOST.",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "10.0.0.1",
            "128.0.0.1",
            "::2",
            "kms",
            "localhost.example.com",
            "0.0.0.0",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    #[test]
    fn codes_parse() {
        assert_eq!(parse_code_text("0xC004F038"), Some(0xC004_F038));
        assert_eq!(parse_code_text("0Xc004f06c"), Some(0xC004_F06C));
        assert_eq!(parse_code_text("S_OK"), Some(0));
        assert_eq!(parse_code_text("0"), Some(0));
        assert_eq!(parse_code_text("0x"), None);
        assert_eq!(parse_code_text("0x1C004F038"), None);
        assert_eq!(parse_code_text("SL_E_VL_NOT_ENOUGH_COUNT"), None);
    }
}
