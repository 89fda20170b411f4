//! `validate --discover DOMAIN`: the DNS path Windows clients take (`dns.*`), every host it
//! leads to checked on its own (the single-host checks of [`super::checks`], one line per
//! check for all hosts together), and `kms.failover`.
//!
//! DNS goes through [`crate::discover`] (hickory-resolver, the lookup deadline, the causes
//! NXDOMAIN / empty / SERVFAIL / timeout told apart); the failover attempt goes through
//! [`Discovery::attempt`], the same path `activate --discover` and `run` use, with the first
//! host in order excluded by a connector that refuses its address: what a client sees when
//! that host is down.
//!
//! Where the spec is silent validate decides: "the next one in order" is the next record of
//! the sorted list (priority, then weight), so the failover check is the same on every run;
//! a host is a target's first address (as clients try only that one); two records leading to
//! the same address and port count as one host.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::checks::{check_host, request};
use super::{Check, CheckName, CheckStatus, ValidateOptions, fixed_cmid};
use crate::client::{Client, Connector, TcpConnector};
use crate::discover::{
    ClientDiscovery, Discovery, DiscoveryConfig, HostClients, HostGate, SrvOrder, SrvRecord,
    first_choice_shares,
};

/// Where and how to look the domain up.
#[derive(Debug, Clone)]
pub struct DnsOptions {
    /// The domain; the name asked is `_vlmcs._tcp.<domain>`.
    pub domain: String,
    /// The DNS server; `None`: the system's configuration.
    pub dns_server: Option<SocketAddr>,
    /// The order clients try the records in (for `dns.order`'s shares).
    pub order: SrvOrder,
    /// Deadline of each lookup.
    pub dns_timeout: Duration,
}

/// Runs the selected checks for every host `_vlmcs._tcp.<domain>` leads to, in run order.
/// `dns.srv` is included whenever it fails, selected or not: nothing else can run then.
pub async fn check_domain(dns: &DnsOptions, options: &ValidateOptions) -> Vec<Check> {
    let mut out = Vec::new();
    let config = DiscoveryConfig {
        dns_server: dns.dns_server,
        order: SrvOrder::Ordered,
        host_cache: false,
        dns_timeout: dns.dns_timeout,
        ..DiscoveryConfig::new(&dns.domain)
    };
    // validate names no host of its own, so it sends only where DNS points (as `activate
    // --discover` does): the user named the domain.
    let discovery = match Discovery::new(config, HostGate::open()) {
        Ok(d) => d,
        Err(e) => {
            out.push(Check::not_passed(
                CheckName::DnsSrv,
                CheckStatus::Fail,
                "no DNS resolver",
                e,
                "give one with --dns-server IP[:PORT]",
            ));
            return skip_rest(
                out,
                options,
                "no DNS resolver (dns.srv)",
                "fix dns.srv first",
            );
        }
    };
    let resolver = discovery.resolver();
    let answer = match resolver.srv(&dns.domain).await {
        Ok(a) => a,
        Err(e) => {
            out.push(Check::not_passed(
                CheckName::DnsSrv,
                CheckStatus::Fail,
                format!(
                    "{} {}",
                    crate::catalog::hresult::hex(e.cause.code()),
                    e.cause.label()
                ),
                e.to_string(),
                e.cause.hint(),
            ));
            return skip_rest(
                out,
                options,
                &format!("no SRV record for {} (dns.srv)", e.name),
                "fix dns.srv first",
            );
        }
    };
    let records = answer.records.clone();
    if options.runs(CheckName::DnsSrv) {
        out.push(Check::pass(
            CheckName::DnsSrv,
            format!(
                "{} record{} for {}",
                records.len(),
                if records.len() == 1 { "" } else { "s" },
                answer.name
            ),
            format!(
                "{} (TTL {} s)",
                list(records.iter().map(ToString::to_string)),
                answer.ttl.as_secs()
            ),
        ));
    }

    // dns.targets: each record's target to its first address.
    let mut hosts: Vec<(SrvRecord, SocketAddr)> = Vec::new();
    let mut unresolved = Vec::new();
    for r in &records {
        match resolver.addresses(&r.target, r.port).await {
            Ok(addrs) => hosts.push((r.clone(), addrs[0])),
            Err(e) => unresolved.push(format!("{}: {} ({})", r.target, e.cause.label(), e.detail)),
        }
    }
    if options.runs(CheckName::DnsTargets) {
        let resolved = list(hosts.iter().map(|(r, a)| format!("{} → {a}", r.host())));
        out.push(if unresolved.is_empty() {
            Check::pass(
                CheckName::DnsTargets,
                format!("{} of {} targets resolve", hosts.len(), records.len()),
                resolved,
            )
        } else {
            Check::not_passed(
                CheckName::DnsTargets,
                CheckStatus::Fail,
                list(unresolved.iter().cloned()),
                format!("resolved: {resolved}"),
                "a record points at a name without an A/AAAA record: clients skip it (or fail \
                 with 0xC004F074 when none is left); fix the record or create the host record",
            )
        });
    }
    let mut distinct: Vec<SocketAddr> = hosts.iter().map(|(_, a)| *a).collect();
    distinct.sort();
    distinct.dedup();
    if options.runs(CheckName::DnsRedundancy) {
        out.push(match distinct.len() {
            0 => Check::not_passed(
                CheckName::DnsRedundancy,
                CheckStatus::Fail,
                "no usable host",
                "no record's target resolves (dns.targets)",
                "fix dns.targets first",
            ),
            1 => Check::not_passed(
                CheckName::DnsRedundancy,
                CheckStatus::Warn,
                "1 host",
                format!("every record leads to {}", distinct[0]),
                "when this host is down every client fails with 0xC004F074: publish a second \
                 KMS host (each host publishes its own record by default)",
            ),
            n => Check::pass(
                CheckName::DnsRedundancy,
                format!("{n} hosts"),
                list(distinct.iter().map(ToString::to_string)),
            ),
        });
    }
    if options.runs(CheckName::DnsOrder) {
        out.push(order_check(&records, dns.order));
    }
    if hosts.is_empty() {
        return skip_rest(
            out,
            options,
            "no record's target resolves (dns.targets)",
            "fix dns.targets first",
        );
    }

    // Every host on its own; one line per check for all of them.
    let mut per_host: Vec<(String, Vec<Check>)> = Vec::new();
    for (record, addr) in hosts.iter().filter(|(_, a)| distinct.contains(a)) {
        if per_host.iter().any(|(h, _)| *h == label(record, *addr)) {
            continue;
        }
        per_host.push((label(record, *addr), check_host(*addr, options).await));
    }
    for name in CheckName::ALL.into_iter().filter(|c| !c.needs_discovery()) {
        let found: Vec<(&str, &Check)> = per_host
            .iter()
            .filter_map(|(h, checks)| {
                checks
                    .iter()
                    .find(|c| c.name == name)
                    .map(|c| (h.as_str(), c))
            })
            .collect();
        if !found.is_empty() {
            out.push(merge(name, &found));
        }
    }

    if options.runs(CheckName::KmsFailover) {
        out.push(failover(&discovery, &hosts, &per_host, options).await);
    }
    out.sort_by_key(|c| c.name);
    out
}

/// `target:port (address)`, or `target:port` when the target is the address.
fn label(record: &SrvRecord, addr: SocketAddr) -> String {
    if record.target == addr.ip().to_string() {
        record.host()
    } else {
        format!("{} ({addr})", record.host())
    }
}

fn list(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join("; ")
}

fn skip_rest(mut out: Vec<Check>, options: &ValidateOptions, why: &str, hint: &str) -> Vec<Check> {
    for name in options.checks.iter().copied() {
        if !out.iter().any(|c| c.name == name) {
            out.push(Check::skip(name, why, hint));
        }
    }
    out.sort_by_key(|c| c.name);
    out
}

fn order_check(records: &[SrvRecord], order: SrvOrder) -> Check {
    let shares = first_choice_shares(records, order);
    let best = records.iter().map(|r| r.priority).min().unwrap_or(0);
    let value = list(
        records
            .iter()
            .zip(&shares)
            .filter(|(r, _)| order != SrvOrder::Rfc2782 || r.priority == best)
            .map(|(r, s)| format!("{} {:.0} %", r.host(), s * 100.0)),
    );
    let backups: Vec<String> = records
        .iter()
        .filter(|r| r.priority != best)
        .map(SrvRecord::host)
        .collect();
    let mut detail = format!(
        "first tries per host under {order} order (priority {best} first, shared by weight)"
    );
    if order == SrvOrder::Rfc2782 && !backups.is_empty() {
        detail.push_str(&format!(
            "; tried only when every priority-{best} host fails: {}",
            backups.join(", ")
        ));
    }
    Check::pass(CheckName::DnsOrder, value, detail)
}

/// One line for `name` over every host: the worst status; the values of the hosts that have
/// it (or the common value); every host's detail.
fn merge(name: CheckName, found: &[(&str, &Check)]) -> Check {
    let rank = |s: CheckStatus| match s {
        CheckStatus::Skip => 0,
        CheckStatus::Pass => 1,
        CheckStatus::Warn => 2,
        CheckStatus::Fail => 3,
    };
    let worst = found
        .iter()
        .map(|(_, c)| c.status)
        .max_by_key(|s| rank(*s))
        .unwrap_or(CheckStatus::Skip);
    let same = found.iter().all(|(_, c)| c.value == found[0].1.value);
    let value = if same && found.iter().all(|(_, c)| c.status == worst) {
        if found.len() == 1 {
            format!("{}: {}", found[0].0, found[0].1.value)
        } else {
            format!("all {} hosts: {}", found.len(), found[0].1.value)
        }
    } else {
        list(
            found
                .iter()
                .filter(|(_, c)| c.status == worst)
                .map(|(h, c)| format!("{h}: {}", c.value)),
        )
    };
    let detail = list(
        found
            .iter()
            .filter(|(_, c)| !c.detail.is_empty())
            .map(|(h, c)| format!("{h}: {}", c.detail)),
    );
    let hint = found
        .iter()
        .filter(|(_, c)| c.status == worst)
        .find_map(|(_, c)| c.hint.clone());
    Check {
        name,
        status: worst,
        value,
        detail,
        hint,
    }
}

/// Refuses connections to one address, as a client finds a host that is down; every other
/// address is plain TCP.
#[derive(Debug, Clone, Copy)]
struct Excluding(SocketAddr);

impl Connector for Excluding {
    type Stream = tokio::net::TcpStream;

    async fn connect(&self, addr: SocketAddr) -> io::Result<Self::Stream> {
        if addr == self.0 {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "excluded by validate (kms.failover)",
            ));
        }
        TcpConnector::default().connect(addr).await
    }
}

async fn failover(
    discovery: &Discovery,
    hosts: &[(SrvRecord, SocketAddr)],
    per_host: &[(String, Vec<Check>)],
    options: &ValidateOptions,
) -> Check {
    let name = CheckName::KmsFailover;
    let mut distinct: Vec<&(SrvRecord, SocketAddr)> = Vec::new();
    for h in hosts {
        if !distinct.iter().any(|d| d.1 == h.1) {
            distinct.push(h);
        }
    }
    if distinct.len() < 2 {
        return Check::skip(
            name,
            "one host: nothing to fail over to (dns.redundancy)",
            "publish a second KMS host",
        );
    }
    let failing: Vec<&str> = per_host
        .iter()
        .filter(|(_, checks)| checks.iter().any(|c| c.status == CheckStatus::Fail))
        .map(|(h, _)| h.as_str())
        .collect();
    let Some(&product) = options.products.first() else {
        return Check::skip(name, "no product to ask for", "name one with --product");
    };
    let (first, excluded) = (&distinct[0].0, distinct[0].1);
    let expected = &distinct[1].0;
    let client_options = options.client.clone();
    let mut clients = HostClients::new(
        move |addr| Client::with_connector(Excluding(excluded), addr, client_options.clone()),
        request(product, product.protocol, fixed_cmid(product.family), 0),
        rand::random(),
    );
    let mut state = ClientDiscovery::default();
    // Ordered: no draw is made; the generator only satisfies the signature.
    let mut rng = StdRng::from_rng(&mut rand::rng());
    let found = discovery.attempt(&mut state, &mut clients, &mut rng).await;
    let tried = list(
        found
            .tried
            .iter()
            .map(|t| format!("{}: {}", t.host, t.cause)),
    );
    let answered = found.host.as_ref().map(SrvRecord::host);
    let detail = format!(
        "{} excluded; tried {}; answered: {} after {:.1} ms",
        first.host(),
        if tried.is_empty() {
            "nothing else"
        } else {
            &tried
        },
        answered.as_deref().unwrap_or("none"),
        found.elapsed.as_secs_f64() * 1e3
    );
    if answered.as_deref() != Some(expected.host().as_str()) {
        return Check::not_passed(
            name,
            CheckStatus::Fail,
            format!(
                "with {} down, {} did not answer",
                first.host(),
                expected.host()
            ),
            detail,
            "clients whose first host is down get 0xC004F074 instead of the next host: check \
             that the next record's host is up and reachable (tcp.reach, rpc.bind)",
        );
    }
    if !failing.is_empty() {
        return Check::not_passed(
            name,
            CheckStatus::Fail,
            format!("failed checks on {}", failing.join(", ")),
            detail,
            "every host must pass on its own for clients to fail over to it: fix the failed \
             checks above",
        );
    }
    Check::pass(
        name,
        format!("with {} down, {} answered", first.host(), expected.host()),
        detail,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(status: CheckStatus, value: &str) -> Check {
        Check {
            name: CheckName::KmsClock,
            status,
            value: value.into(),
            detail: "d".into(),
            hint: (status != CheckStatus::Pass).then(|| format!("fix {value}")),
        }
    }

    #[test]
    fn merged_lines_take_the_worst_status_and_name_the_hosts_that_have_it() {
        let pass = check(CheckStatus::Pass, "ok");
        let warn = check(CheckStatus::Warn, "any time");
        let m = merge(CheckName::KmsClock, &[("a", &pass), ("b", &warn)]);
        assert_eq!(m.status, CheckStatus::Warn);
        assert_eq!(m.value, "b: any time");
        assert_eq!(m.hint.as_deref(), Some("fix any time"));
        assert_eq!(m.detail, "a: d; b: d");
        let m = merge(CheckName::KmsClock, &[("a", &pass), ("b", &pass)]);
        assert_eq!(
            (m.status, m.value.as_str()),
            (CheckStatus::Pass, "all 2 hosts: ok")
        );
        assert_eq!(m.hint, None);
    }

    #[test]
    fn order_shows_the_first_priority_shares_and_the_backups() {
        let r = |t: &str, priority, weight| SrvRecord {
            target: t.into(),
            port: 1688,
            priority,
            weight,
        };
        let records = [r("a", 0, 75), r("b", 0, 25), r("c", 10, 0)];
        let c = order_check(&records, SrvOrder::Rfc2782);
        assert!(c.value.contains("a:1688 75 %"), "{}", c.value);
        assert!(c.value.contains("b:1688 25 %"), "{}", c.value);
        assert!(!c.value.contains("c:1688"), "{}", c.value);
        assert!(
            c.detail.contains("priority-0 host fails: c:1688"),
            "{}",
            c.detail
        );
    }
}
