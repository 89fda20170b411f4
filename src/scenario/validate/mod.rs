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

mod faults;
mod fleet;
mod gates;
mod load;
mod target;

pub(crate) use self::fleet::{product_mix, skew};
use self::{faults::*, fleet::*, gates::*, load::*, target::*};

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
