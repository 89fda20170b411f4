//! Finding KMS hosts as Windows clients do: the `_vlmcs._tcp.<domain>` SRV records (spec 2.1,
//! RFC 2782), tried in priority/weight order with failover, the host that answered cached
//! and tried first next time.
//!
//! ```text
//!  cached host? ──yes──► try it ──answered──► done (no DNS query)
//!       │                   │ failed: forget it, ask DNS again
//!       no                  ▼
//!       └──────────► SRV answer (per client, re-asked after dns_ttl) ──► try order (order.rs)
//!                          │ DNS failed: 0x8007232B / 0x8007251D / ...     │
//!                          ▼                                              ▼
//!                       failed                 each host: A/AAAA, connect, bind, request
//!                                              connect/bind failed → next host
//!                                              all failed → 0xC004F074, the last cause
//! ```
//!
//! - [`Resolver`] asks DNS (hickory-resolver on tokio, every lookup under a deadline) and sorts
//!   failures into a [`DnsCause`]: NXDOMAIN, an empty answer, SERVFAIL, REFUSED, a timeout and
//!   an unreachable server are different problems with different fixes. [`Resolver::fixed`]
//!   answers from a [`StaticZone`] instead (a scenario's `srv` records naming its in-process
//!   hosts), so such a run needs no DNS server and still goes through the same draw, cache
//!   and failover.
//! - [`order`] is the sans-IO try order (RFC 2782 weighted draw, random, ordered) with an
//!   injected random generator, and the expected share of first tries per host.
//! - [`Discovery::attempt`] is one client's activation through discovery: the cached host,
//!   the failover across the records, and the account of what was tried ([`Discovered`]).
//!   [`ClientDiscovery`] is the per-client state (cached host, last answer and its age); the
//!   activation against one address is the caller's ([`HostAttempt`]).
//! - [`HostGate`]: no traffic to a discovered host that is not loopback unless confirmed.
//!
//! Codes (the values are standard Win32 errors as HRESULTs; which one Windows shows for which
//! DNS condition is the convention of `data/hresults.csv`, not an observation, except
//! 0x8007232B, which slmgr shows when no record exists):
//!
//! | DNS result | cause label | code |
//! |---|---|---|
//! | NXDOMAIN | `dns:nxdomain` | 0x8007232B |
//! | name exists, no SRV record | `dns:no_records` | 0x8007251D |
//! | SERVFAIL | `dns:servfail` | 0x8007232A |
//! | REFUSED | `dns:refused` | 0x8007232D |
//! | no answer within the deadline | `dns:timeout` | 0x800705B4 |
//! | server unreachable (ICMP, TCP refused) | `dns:unreachable` | 0x800705B4 |
//! | anything else (malformed answer) | `dns:error` | 0x8007232A |
//!
//! A target that does not resolve is a failed host like one that refuses the connection
//! (`resolve_failed`, 0x80072AF9 under 0xC004F074) and the client goes on to the next record.
//!
//! Where the spec is silent kmsload decides, and says so here: failover happens on failures
//! before the RPC bind completed (spec 2.1: "until one TCP connect plus RPC bind succeeds");
//! a host that answered anything (even an error code) is the host that answered. Only the
//! first address of a target is tried. A cached host that fails makes the client ask DNS
//! again at once, whatever the TTL. `kmsload`'s own limits (`local:`) do not fail over.

mod clients;
pub mod order;
mod resolve;
mod split;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use serde::{Deserialize, Serialize};

pub use clients::HostClients;
pub use order::{first_choice_shares, try_order};
pub use resolve::{Resolver, StaticZone};
pub use split::{HostOutage, HostSplit, NO_HOST, SplitLatency, SplitRecorder, bucket_width};

use crate::catalog::hresult::code;
pub use crate::client::DnsCause;
use crate::client::outcome::{Cause, Outcome, Verdict, classify};
use crate::client::{Attempt, ClientError, Phase};

/// The service label Windows clients look up under their domain.
pub const SERVICE: &str = "_vlmcs._tcp";

/// The default deadline of one DNS lookup.
pub const DEFAULT_DNS_TIMEOUT: Duration = Duration::from_secs(5);

/// The default port of a DNS server given without one.
pub const DNS_PORT: u16 = 53;

/// `_vlmcs._tcp.<domain>.`, fully qualified.
pub fn srv_name(domain: &str) -> String {
    format!("{SERVICE}.{}.", resolve::normalise(domain))
}

/// The order in which a client tries the records (see [`order`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SrvOrder {
    /// Priority, then RFC 2782's weighted draw (current Microsoft documentation).
    #[default]
    Rfc2782,
    /// Uniformly random, priority and weight ignored (an older Microsoft page).
    Random,
    /// The sorted list, no randomness.
    Ordered,
}

impl SrvOrder {
    /// The name used by `--srv-order` and `srv_order`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rfc2782 => "rfc2782",
            Self::Random => "random",
            Self::Ordered => "ordered",
        }
    }
}

impl std::str::FromStr for SrvOrder {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "rfc2782" => Ok(Self::Rfc2782),
            "random" => Ok(Self::Random),
            "ordered" => Ok(Self::Ordered),
            _ => Err(format!(
                "unknown SRV order {s:?}; use rfc2782 (priority, then weighted draw), random or ordered"
            )),
        }
    }
}

impl fmt::Display for SrvOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One SRV record. Sorted by priority (lowest first), then weight (highest first), then
/// target and port: the order [`SrvOrder::Ordered`] tries them in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SrvRecord {
    /// The host name, lower case, without the trailing dot.
    pub target: String,
    /// The port.
    pub port: u16,
    /// Lower is tried first.
    pub priority: u16,
    /// Relative share within a priority.
    pub weight: u16,
}

impl SrvRecord {
    /// `target:port`, the name kmsload gives the host everywhere.
    pub fn host(&self) -> String {
        format!("{}:{}", self.target, self.port)
    }
}

impl Ord for SrvRecord {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.priority
            .cmp(&other.priority)
            .then(other.weight.cmp(&self.weight))
            .then_with(|| self.target.cmp(&other.target))
            .then(self.port.cmp(&other.port))
    }
}

impl PartialOrd for SrvRecord {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for SrvRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{} (priority {}, weight {})",
            self.target, self.port, self.priority, self.weight
        )
    }
}

/// The records of one SRV answer, sorted, and how long they may be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvAnswer {
    /// The name asked, `_vlmcs._tcp.<domain>.`.
    pub name: String,
    /// The records, sorted, no duplicates, never empty.
    pub records: Vec<SrvRecord>,
    /// The smallest TTL among them.
    pub ttl: Duration,
}

/// A failed DNS lookup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {} ({detail})", cause.label())]
pub struct DnsError {
    /// The name asked.
    pub name: String,
    /// Why it failed.
    pub cause: DnsCause,
    /// The resolver's words.
    pub detail: String,
}

impl DnsError {
    /// The verdict of an attempt that ended here: failed with the DNS code.
    pub fn verdict(&self) -> Verdict {
        Verdict {
            outcome: Outcome::Failed,
            hresult: self.cause.code(),
            cause_code: None,
            cause: Cause::Dns(self.cause),
        }
    }
}

/// How a client discovers: the domain, where to ask, how to order, whether to cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryConfig {
    /// The domain; the name asked is `_vlmcs._tcp.<domain>`.
    pub domain: String,
    /// The DNS server; `None`: the system's configuration.
    pub dns_server: Option<SocketAddr>,
    /// The try order.
    pub order: SrvOrder,
    /// Cache the host that answered and try it first next time (`slmgr /ckhc` turns it off).
    pub host_cache: bool,
    /// Deadline of each DNS lookup.
    pub dns_timeout: Duration,
    /// A client asks DNS again at most this often; `None`: the records' TTL.
    pub dns_ttl: Option<Duration>,
}

impl DiscoveryConfig {
    /// Discovery of `domain` with the defaults: system resolver, RFC 2782 order, host cache
    /// on, 5 s per lookup, the records' TTL.
    pub fn new(domain: &str) -> Self {
        Self {
            domain: resolve::normalise(domain),
            dns_server: None,
            order: SrvOrder::default(),
            host_cache: true,
            dns_timeout: DEFAULT_DNS_TIMEOUT,
            dns_ttl: None,
        }
    }
}

/// Checks a domain given by the user (`--discover`, `discover`): a DNS name of labels of
/// letters, digits and hyphens (underscores allowed), at most 253 characters.
///
/// # Errors
/// What is wrong with it, and the form expected.
pub fn parse_domain(s: &str) -> Result<String, String> {
    let d = resolve::normalise(s.trim());
    let bad = |why: &str| {
        Err(format!(
            "{s:?} is not a DNS domain ({why}); give the clients' domain, e.g. corp.example.com (kmsload looks up {SERVICE}.<domain>)"
        ))
    };
    if d.is_empty() {
        return bad("empty");
    }
    if d.len() > 253 {
        return bad("longer than 253 characters");
    }
    if d.parse::<IpAddr>().is_ok() {
        return bad("an IP address; to use one host directly, give it as HOST[:PORT]");
    }
    for label in d.split('.') {
        if label.is_empty() || label.len() > 63 {
            return bad("a label is empty or longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return bad("only letters, digits, '-' and '_' between the dots");
        }
    }
    Ok(d)
}

/// Parses `IP[:PORT]` of a DNS server (port 53 by default; IPv6 as `[::1]:5353` or bare).
///
/// # Errors
/// What is wrong, and the form expected.
pub fn parse_dns_server(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(addr) = s.parse::<SocketAddr>() {
        if addr.port() == 0 {
            return Err(format!(
                "DNS server {s:?}: port 0 cannot be asked; give 1 to 65535"
            ));
        }
        return Ok(addr);
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, DNS_PORT));
    }
    if let Some((ip, port)) = s.rsplit_once(':')
        && let Ok(ip) = ip.parse::<std::net::Ipv4Addr>()
    {
        return match port.parse::<u16>() {
            Ok(p) if p != 0 => Ok(SocketAddr::new(IpAddr::V4(ip), p)),
            _ => Err(format!(
                "DNS server {s:?}: port {port:?} is not a number from 1 to 65535"
            )),
        };
    }
    Err(format!(
        "DNS server {s:?} is not IP[:PORT]; give an address such as 10.0.0.53 or 127.0.0.1:5353 (names cannot be used: they would need DNS themselves)"
    ))
}

/// Which discovered hosts may receive traffic. Loopback always; others only when confirmed
/// by name or address, or when every discovered host is confirmed (`confirm_discovered`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostGate {
    /// Confirmed hosts: target names (compared without case or trailing dot) or addresses.
    pub confirmed: Vec<String>,
    /// Every host the discovery finds is confirmed.
    pub all: bool,
}

impl HostGate {
    /// A gate that lets everything through (a command whose direct target needs no
    /// confirmation either, such as `activate`).
    pub fn open() -> Self {
        Self {
            confirmed: Vec::new(),
            all: true,
        }
    }

    /// True when traffic may go to `record`'s target at `ip`.
    pub fn allows(&self, record: &SrvRecord, ip: IpAddr) -> bool {
        self.all
            || ip.is_loopback()
            || self.confirmed.iter().any(|c| {
                let c = resolve::normalise(c);
                c == record.target
                    || c == record.host()
                    || c.parse::<IpAddr>().is_ok_and(|x| x == ip)
            })
    }
}

/// One activation against one address; the caller's client (connection reuse, faults,
/// tracing) lives behind it.
pub trait HostAttempt {
    /// Runs one attempt (connect if needed, bind, request) against `addr`.
    fn attempt(&mut self, addr: SocketAddr) -> impl Future<Output = Attempt> + Send;
}

/// A host that was tried and did not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tried {
    /// `target:port`.
    pub host: String,
    /// The address tried, when the target resolved.
    pub addr: Option<SocketAddr>,
    /// The cause label (`connect_refused`, `resolve_failed`, `not_confirmed`, ...).
    pub cause: &'static str,
    /// Its verdict (0xC004F074 and the socket/RPC code under it, for a host that failed).
    pub verdict: Verdict,
    /// The error in words.
    pub detail: String,
    /// Time spent on this host (resolving its name, connecting, binding).
    pub elapsed: Duration,
}

/// Per-client discovery state: the cached host and the last SRV answer with its time.
#[derive(Debug, Clone, Default)]
pub struct ClientDiscovery {
    cached: Option<SrvRecord>,
    answer: Option<(Arc<SrvAnswer>, Instant)>,
}

impl ClientDiscovery {
    /// The host this client will try first, when it has one cached.
    pub fn cached_host(&self) -> Option<&SrvRecord> {
        self.cached.as_ref()
    }

    /// The last SRV answer this client holds.
    pub fn answer(&self) -> Option<&SrvAnswer> {
        self.answer.as_ref().map(|(a, _)| a.as_ref())
    }
}

/// What one attempt through discovery did.
#[derive(Debug)]
pub struct Discovered {
    /// The domain.
    pub domain: String,
    /// The records used (empty when DNS failed, or when the cached host answered before
    /// any answer was held).
    pub records: Vec<SrvRecord>,
    /// True when this attempt asked DNS (false: the cached host answered, or the client's
    /// answer was younger than its TTL).
    pub queried: bool,
    /// True when the first host tried was the cached one.
    pub from_cache: bool,
    /// The DNS failure, when the lookup failed.
    pub dns_error: Option<DnsError>,
    /// The hosts that failed, in the order tried.
    pub tried: Vec<Tried>,
    /// The host that answered.
    pub host: Option<SrvRecord>,
    /// Its address.
    pub addr: Option<SocketAddr>,
    /// The attempt against the host that answered.
    pub attempt: Option<Attempt>,
    /// From the start of discovery to the end of the attempt: DNS, every host tried, the
    /// answer.
    pub elapsed: Duration,
}

impl Discovered {
    /// The verdict a client shows: the answering host's; or, when every host failed,
    /// 0xC004F074 with the last host's cause; or the DNS failure's code.
    pub fn verdict(&self) -> Verdict {
        if let Some(a) = &self.attempt {
            return a.verdict();
        }
        if let Some(t) = self.tried.iter().rev().find(|t| t.cause != "not_confirmed") {
            return t.verdict;
        }
        if let Some(e) = &self.dns_error {
            return e.verdict();
        }
        if !self.tried.is_empty() {
            return not_confirmed_verdict();
        }
        // No record was usable: all of them were the "service not here" target ".".
        DnsError {
            name: srv_name(&self.domain),
            cause: DnsCause::NoRecords,
            detail: String::new(),
        }
        .verdict()
    }

    /// True when at least one host failed before one answered.
    pub fn failed_over(&self) -> bool {
        self.attempt.is_some() && !self.tried.is_empty()
    }
}

fn not_confirmed_verdict() -> Verdict {
    Verdict {
        outcome: Outcome::Failed,
        hresult: code::SL_E_VL_BINDING_SERVICE_UNAVAILABLE,
        cause_code: None,
        cause: Cause::NotConfirmed,
    }
}

/// True when a client goes on to the next host after this verdict: the host did not
/// complete connect and bind (kmsload's own `local:` limits excepted).
pub fn fails_over(v: &Verdict) -> bool {
    use Phase::{Bind, Connect};
    matches!(
        v.cause,
        Cause::ResolveFailed
            | Cause::ConnectRefused
            | Cause::ConnectTimeout
            | Cause::ConnectFailed
            | Cause::BindRefused
            | Cause::Timeout(Connect | Bind)
            | Cause::Reset(Connect | Bind)
            | Cause::Closed(Connect | Bind)
            | Cause::Truncated(Connect | Bind)
            | Cause::ProtocolError(Connect | Bind)
    )
}

/// Discovery for one or many clients: the configuration, one resolver, the gate.
#[derive(Debug, Clone)]
pub struct Discovery {
    config: DiscoveryConfig,
    resolver: Resolver,
    gate: HostGate,
}

impl Discovery {
    /// Sets up the resolver for `config`; traffic goes only where `gate` allows.
    ///
    /// # Errors
    /// The system's DNS configuration cannot be read (no `dns_server` given).
    pub fn new(config: DiscoveryConfig, gate: HostGate) -> Result<Self, String> {
        let resolver = Resolver::new(config.dns_server, config.dns_timeout)?;
        Ok(Self {
            config,
            resolver,
            gate,
        })
    }

    /// Discovery through `resolver` instead of one made from the configuration (a static
    /// zone: see [`Resolver::fixed`]); the draw, cache and failover are the same.
    pub fn with_resolver(config: DiscoveryConfig, gate: HostGate, resolver: Resolver) -> Self {
        Self {
            config,
            resolver,
            gate,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &DiscoveryConfig {
        &self.config
    }

    /// The resolver (for lookups outside an attempt, e.g. `validate`).
    pub fn resolver(&self) -> &Resolver {
        &self.resolver
    }

    /// One activation through discovery for the client whose state is `state`, drawing
    /// with `rng` (the client's own), running attempts through `host`.
    pub async fn attempt<H, R>(
        &self,
        state: &mut ClientDiscovery,
        host: &mut H,
        rng: &mut R,
    ) -> Discovered
    where
        H: HostAttempt + Send,
        R: Rng + Send + ?Sized,
    {
        let started = Instant::now();
        let mut out = Discovered {
            domain: self.config.domain.clone(),
            records: Vec::new(),
            queried: false,
            from_cache: false,
            dns_error: None,
            tried: Vec::new(),
            host: None,
            addr: None,
            attempt: None,
            elapsed: Duration::ZERO,
        };
        let mut force_query = false;
        if self.config.host_cache
            && let Some(cached) = state.cached.clone()
        {
            out.from_cache = true;
            if self.try_host(&cached, host, &mut out).await {
                out.records = state
                    .answer()
                    .map(|a| a.records.clone())
                    .unwrap_or_default();
                out.elapsed = started.elapsed();
                return out;
            }
            // Windows forgets a cached host that failed and asks DNS again.
            state.cached = None;
            force_query = true;
        }
        let answer = match self.answer(state, force_query, &mut out).await {
            Ok(a) => a,
            Err(e) => {
                out.dns_error = Some(e);
                out.elapsed = started.elapsed();
                return out;
            }
        };
        out.records = answer.records.clone();
        let remaining: Vec<SrvRecord> = answer
            .records
            .iter()
            .filter(|r| !out.tried.iter().any(|t| t.host == r.host()))
            .cloned()
            .collect();
        for record in try_order(&remaining, self.config.order, rng) {
            if self.try_host(&record, host, &mut out).await {
                if self.config.host_cache {
                    state.cached = Some(record);
                }
                break;
            }
        }
        out.elapsed = started.elapsed();
        out
    }

    /// The client's SRV answer: the one it holds while younger than the TTL, else a new
    /// lookup (recorded in `out.queried`).
    async fn answer(
        &self,
        state: &mut ClientDiscovery,
        force: bool,
        out: &mut Discovered,
    ) -> Result<Arc<SrvAnswer>, DnsError> {
        if !force && let Some((a, at)) = &state.answer {
            let ttl = self.config.dns_ttl.unwrap_or(a.ttl);
            if at.elapsed() < ttl {
                return Ok(a.clone());
            }
        }
        out.queried = true;
        let a = Arc::new(self.resolver.srv(&self.config.domain).await?);
        state.answer = Some((a.clone(), Instant::now()));
        Ok(a)
    }

    /// Tries one host; true when it answered (the attempt is in `out`), false when it
    /// failed over (recorded in `out.tried`).
    async fn try_host<H: HostAttempt + Send>(
        &self,
        record: &SrvRecord,
        host: &mut H,
        out: &mut Discovered,
    ) -> bool {
        let started = Instant::now();
        let fail = |addr, verdict: Verdict, detail: String, out: &mut Discovered| {
            out.tried.push(Tried {
                host: record.host(),
                addr,
                cause: verdict.cause.label(),
                verdict,
                detail,
                elapsed: started.elapsed(),
            });
            false
        };
        let addr = match self.resolver.addresses(&record.target, record.port).await {
            Ok(addrs) => addrs[0],
            Err(e) => {
                let err = ClientError::Resolve {
                    host: record.target.clone(),
                    detail: e.to_string(),
                };
                return fail(None, classify(&Err(err)), e.to_string(), out);
            }
        };
        if !self.gate.allows(record, addr.ip()) {
            return fail(
                Some(addr),
                not_confirmed_verdict(),
                format!(
                    "{} ({}) is not loopback and not confirmed; nothing was sent",
                    record.host(),
                    addr.ip()
                ),
                out,
            );
        }
        let attempt = host.attempt(addr).await;
        let verdict = attempt.verdict();
        if fails_over(&verdict) {
            let detail = attempt
                .result
                .as_ref()
                .err()
                .map(ToString::to_string)
                .unwrap_or_default();
            return fail(Some(addr), verdict, detail, out);
        }
        out.host = Some(record.clone());
        out.addr = Some(addr);
        out.attempt = Some(attempt);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srv_names_are_fully_qualified_and_lower_case() {
        assert_eq!(srv_name("Corp.Example."), "_vlmcs._tcp.corp.example.");
    }

    #[test]
    fn domains_are_checked() {
        assert_eq!(
            parse_domain("Corp.Example.COM.").unwrap(),
            "corp.example.com"
        );
        assert!(parse_domain("").unwrap_err().contains("empty"));
        assert!(
            parse_domain("10.0.0.1")
                .unwrap_err()
                .contains("HOST[:PORT]")
        );
        assert!(parse_domain("a..b").is_err());
        assert!(parse_domain("bad host.example").is_err());
        assert!(parse_domain(&"a".repeat(64)).is_err());
    }

    #[test]
    fn dns_servers_parse_with_and_without_port() {
        assert_eq!(
            parse_dns_server("10.0.0.53").unwrap(),
            "10.0.0.53:53".parse().unwrap()
        );
        assert_eq!(
            parse_dns_server("127.0.0.1:5353").unwrap(),
            "127.0.0.1:5353".parse().unwrap()
        );
        assert_eq!(
            parse_dns_server("[::1]:5353").unwrap(),
            "[::1]:5353".parse().unwrap()
        );
        assert_eq!(
            parse_dns_server("::1").unwrap(),
            "[::1]:53".parse().unwrap()
        );
        assert!(
            parse_dns_server("dns.example")
                .unwrap_err()
                .contains("IP[:PORT]")
        );
        assert!(
            parse_dns_server("127.0.0.1:0")
                .unwrap_err()
                .contains("port")
        );
        assert!(parse_dns_server("127.0.0.1:x").is_err());
    }

    #[test]
    fn srv_order_names_round_trip() {
        for o in [SrvOrder::Rfc2782, SrvOrder::Random, SrvOrder::Ordered] {
            assert_eq!(o.as_str().parse::<SrvOrder>().unwrap(), o);
        }
        assert!(
            "weighted"
                .parse::<SrvOrder>()
                .unwrap_err()
                .contains("rfc2782")
        );
    }

    #[test]
    fn records_sort_by_priority_then_heavier_first() {
        let r = |t: &str, p, w| SrvRecord {
            target: t.into(),
            port: 1688,
            priority: p,
            weight: w,
        };
        let mut v = [r("c", 1, 0), r("b", 0, 5), r("a", 0, 5), r("d", 0, 50)];
        v.sort();
        let names: Vec<&str> = v.iter().map(|x| x.target.as_str()).collect();
        assert_eq!(names, ["d", "a", "b", "c"]);
    }

    #[test]
    fn the_gate_lets_loopback_and_confirmed_hosts_through() {
        let rec = SrvRecord {
            target: "kms1.corp.example".into(),
            port: 1688,
            priority: 0,
            weight: 0,
        };
        let remote: IpAddr = "10.1.2.3".parse().unwrap();
        let closed = HostGate::default();
        assert!(closed.allows(&rec, "127.0.0.2".parse().unwrap()));
        assert!(closed.allows(&rec, "::1".parse().unwrap()));
        assert!(!closed.allows(&rec, remote));
        for c in ["KMS1.corp.example.", "10.1.2.3", "kms1.corp.example:1688"] {
            let g = HostGate {
                confirmed: vec!["other".into(), c.into()],
                all: false,
            };
            assert!(g.allows(&rec, remote), "{c}");
        }
        assert!(HostGate::open().allows(&rec, remote));
    }

    #[test]
    fn dns_causes_have_distinct_labels_and_the_nxdomain_code() {
        let all = [
            DnsCause::NxDomain,
            DnsCause::NoRecords,
            DnsCause::ServFail,
            DnsCause::Refused,
            DnsCause::Timeout,
            DnsCause::Unreachable,
            DnsCause::Other,
        ];
        let mut labels: Vec<&str> = all.iter().map(|c| c.label()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), all.len());
        assert_eq!(DnsCause::NxDomain.code(), 0x8007_232B);
        for c in all {
            assert!(
                crate::catalog::hresult::hresult(c.code()).is_some(),
                "{c:?}"
            );
        }
    }

    #[test]
    fn only_failures_before_the_bind_completed_fail_over() {
        let v = |cause| Verdict {
            outcome: Outcome::Failed,
            hresult: code::SL_E_VL_BINDING_SERVICE_UNAVAILABLE,
            cause_code: None,
            cause,
        };
        assert!(fails_over(&v(Cause::ConnectRefused)));
        assert!(fails_over(&v(Cause::Timeout(Phase::Bind))));
        assert!(fails_over(&v(Cause::ResolveFailed)));
        assert!(!fails_over(&v(Cause::Timeout(Phase::Request))));
        assert!(!fails_over(&v(Cause::LowCount)));
        assert!(!fails_over(&v(Cause::HostRefused)));
        assert!(!fails_over(&v(Cause::LocalLimit(
            crate::client::outcome::LocalLimit::TooManyOpenFiles
        ))));
    }
}
