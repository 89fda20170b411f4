//! Validation of `[load]` (models, schedules, bounds, connections) and the checks across sections.

use super::*;

// ---------------------------------------------------------------------------------------
// [load]

pub(super) fn load(cx: &mut Ctx<'_>, raw: RawLoad, ov: &Overrides) -> Option<Load> {
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

pub(super) fn schedule(
    cx: &mut Ctx<'_>,
    base: &KeyPath,
    raw: &RawLoad,
    ov: &Overrides,
) -> Option<Schedule> {
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

pub(super) fn staged(
    cx: &mut Ctx<'_>,
    path: &KeyPath,
    start_rate: Option<f64>,
    raw: &[crate::scenario::raw::RawStage],
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

pub(super) fn bursts(cx: &mut Ctx<'_>, path: &KeyPath, raw: &RawBursts) -> Option<Schedule> {
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
pub(super) struct DiscoverKeys {
    pub(super) discover: Option<String>,
    pub(super) dns_server: Option<String>,
    pub(super) srv_order: Option<String>,
    pub(super) host_cache: Option<bool>,
    pub(super) dns_ttl: Option<String>,
    pub(super) dns_timeout: Option<String>,
    pub(super) confirm_discovered: Option<String>,
}

impl DiscoverKeys {
    /// The discovery keys mean nothing without `discover` (or with `--target`).
    pub(super) fn refuse_without_discover(&self, cx: &mut Ctx<'_>) {
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
pub(super) fn discover_target(
    cx: &mut Ctx<'_>,
    domain: &str,
    keys: DiscoverKeys,
    confirm: Option<String>,
    ov: &Overrides,
    hosts: Option<Vec<HostOptions>>,
    srv: Option<Vec<crate::scenario::raw::RawSrv>>,
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
pub(super) fn static_srv(
    cx: &mut Ctx<'_>,
    list: &[crate::scenario::raw::RawSrv],
    hosts: &[HostOptions],
) -> Option<Vec<crate::scenario::plan::StaticSrv>> {
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
    let mut out: Vec<crate::scenario::plan::StaticSrv> = Vec::new();
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
        out.push(crate::scenario::plan::StaticSrv {
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
pub(super) fn check_sources(cx: &mut Ctx<'_>, target: &Target, sources: &[IpAddr]) {
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
pub(super) fn check_new_clients(cx: &mut Ctx<'_>, fleet: &FleetPlan, load: &Load) {
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
