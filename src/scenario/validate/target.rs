//! Validation of `target`, `discover`, `[host]` and `[[hosts]]`: where the load goes.

use super::*;

// ---------------------------------------------------------------------------------------
// target and [host]

pub(super) fn target(
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
pub(super) fn parse_target(text: &str) -> Result<(String, u16), ValueError> {
    crate::values::parse_target(text).map(|t| (t.host.to_string(), t.port))
}

/// 127.0.0.0/8, ::1 (also IPv4-mapped) and `localhost`. Other names are not resolved here:
/// a name counts as remote even if it points at loopback.
pub(super) fn is_loopback(host: &str) -> bool {
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.to_canonical().is_loopback(),
        Err(_) => {
            let h = host.strip_suffix('.').unwrap_or(host);
            h.eq_ignore_ascii_case("localhost")
        }
    }
}

/// Most `[[hosts]]` entries (each has its own loopback address, 127.0.0.2 upwards).
pub(super) const MAX_HOSTS: usize = 64;

/// Where a host's options come from, and what it gets when the file does not say.
pub(super) struct HostSpot {
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
pub(super) fn in_process_hosts(
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
pub(super) fn outages(
    cx: &mut Ctx<'_>,
    path: &KeyPath,
    raw: &[crate::scenario::raw::RawDown],
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

pub(super) fn host_options(
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

pub(super) fn host_key(
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

pub(super) fn kms_id_names() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = products().iter().map(|p| p.kms_id_name.as_str()).collect();
    v.sort_unstable();
    v.dedup();
    v
}
