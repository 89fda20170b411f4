//! DNS lookups for discovery through hickory-resolver on tokio: the SRV query and the A/AAAA
//! lookup of each target, each under a deadline, each failure sorted into a [`DnsCause`].

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::RData;

use super::{DnsCause, DnsError, SrvAnswer, SrvRecord, srv_name};

/// A DNS resolver for discovery: the system's configuration, one given server, or a static
/// zone standing in for DNS (a scenario's `srv` list naming its in-process hosts).
#[derive(Clone)]
pub struct Resolver {
    inner: AnswerSource,
    timeout: Duration,
    server: Option<SocketAddr>,
}

#[derive(Clone)]
enum AnswerSource {
    Dns(Box<TokioResolver>),
    Static(Arc<StaticZone>),
}

/// The answers a static zone gives: one SRV answer for its domain, and an address per target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticZone {
    /// The domain whose `_vlmcs._tcp` name holds `answer`.
    pub domain: String,
    /// The SRV answer (sorted, non-empty).
    pub answer: SrvAnswer,
    /// Each target's address (`target` as in the records).
    pub addresses: HashMap<String, IpAddr>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("server", &self.server)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Resolver {
    /// A resolver asking `server` (UDP, then TCP for truncated answers), or the servers of the
    /// system's configuration (`/etc/resolv.conf`) when `None`. Every lookup ends within
    /// `timeout`.
    ///
    /// # Errors
    /// The system configuration cannot be read (only when `server` is `None`).
    pub fn new(server: Option<SocketAddr>, timeout: Duration) -> Result<Self, String> {
        let provider = TokioRuntimeProvider::default();
        let mut builder = match server {
            Some(addr) => {
                let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                for c in &mut ns.connections {
                    c.port = addr.port();
                }
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![ns]),
                    provider,
                )
            }
            None => TokioResolver::builder(provider).map_err(|e| {
                format!(
                    "cannot read the system's DNS configuration ({e}); name a server with --dns-server IP[:PORT]"
                )
            })?,
        };
        let mut opts: ResolverOpts = builder.options_mut().clone();
        // One try per server under the whole deadline: the outer timeout is the bound.
        opts.timeout = timeout;
        opts.attempts = 0;
        *builder.options_mut() = opts;
        let inner = builder
            .build()
            .map_err(|e| format!("cannot set up the DNS resolver: {e}"))?;
        Ok(Self {
            inner: AnswerSource::Dns(Box::new(inner)),
            timeout,
            server,
        })
    }

    /// A resolver that asks no server: `zone` answers the SRV query of its domain and the
    /// address lookups of its targets; any other name is NXDOMAIN, as from a DNS server
    /// holding only that zone.
    pub fn fixed(zone: StaticZone, timeout: Duration) -> Self {
        Self {
            inner: AnswerSource::Static(Arc::new(zone)),
            timeout,
            server: None,
        }
    }

    /// The server asked, when one was given.
    pub fn server(&self) -> Option<SocketAddr> {
        self.server
    }

    /// The deadline of every lookup.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The SRV records of `_vlmcs._tcp.<domain>`, sorted (priority, then weight descending,
    /// then target and port), with the smallest TTL among them.
    ///
    /// # Errors
    /// A [`DnsError`] whose cause tells NXDOMAIN, an empty answer, SERVFAIL, REFUSED, a
    /// timeout and an unreachable server apart.
    pub async fn srv(&self, domain: &str) -> Result<SrvAnswer, DnsError> {
        let name = srv_name(domain);
        let dns = match &self.inner {
            AnswerSource::Dns(dns) => dns,
            AnswerSource::Static(zone) if srv_name(&zone.domain) == name => {
                return Ok(zone.answer.clone());
            }
            AnswerSource::Static(_) => return Err(nxdomain(name)),
        };
        let lookup = self.bounded(&name, dns.srv_lookup(name.as_str())).await?;
        let mut ttl = u32::MAX;
        let mut records = Vec::new();
        for r in lookup.answers() {
            if let RData::SRV(srv) = &r.data {
                ttl = ttl.min(r.ttl);
                records.push(SrvRecord {
                    target: normalise(&srv.target.to_ascii()),
                    port: srv.port,
                    priority: srv.priority,
                    weight: srv.weight,
                });
            }
        }
        // RFC 2782: a single record with target "." means "the service is not here".
        records.retain(|r| !r.target.is_empty());
        if records.is_empty() {
            return Err(DnsError {
                name,
                cause: DnsCause::NoRecords,
                detail: "the answer holds no SRV record".into(),
            });
        }
        records.sort();
        records.dedup();
        Ok(SrvAnswer {
            name,
            records,
            ttl: Duration::from_secs(u64::from(ttl)),
        })
    }

    /// The addresses of `target` (A, then AAAA), each with `port`.
    ///
    /// # Errors
    /// A [`DnsError`] as for [`Self::srv`].
    pub async fn addresses(&self, target: &str, port: u16) -> Result<Vec<SocketAddr>, DnsError> {
        if let Ok(ip) = target.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let name = format!("{}.", normalise(target));
        let dns = match &self.inner {
            AnswerSource::Dns(dns) => dns,
            AnswerSource::Static(zone) => {
                return match zone.addresses.get(&normalise(target)) {
                    Some(ip) => Ok(vec![SocketAddr::new(*ip, port)]),
                    None => Err(nxdomain(name)),
                };
            }
        };
        let lookup = self.bounded(&name, dns.lookup_ip(name.as_str())).await?;
        let addrs: Vec<SocketAddr> = lookup.iter().map(|ip| SocketAddr::new(ip, port)).collect();
        if addrs.is_empty() {
            return Err(DnsError {
                name,
                cause: DnsCause::NoRecords,
                detail: "no A or AAAA record".into(),
            });
        }
        Ok(addrs)
    }

    async fn bounded<T>(
        &self,
        name: &str,
        lookup: impl Future<Output = Result<T, NetError>>,
    ) -> Result<T, DnsError> {
        match tokio::time::timeout(self.timeout, lookup).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(DnsError {
                name: name.to_owned(),
                cause: classify(&e),
                detail: describe(&e),
            }),
            Err(_) => Err(DnsError {
                name: name.to_owned(),
                cause: DnsCause::Timeout,
                detail: format!("no answer within {:?}", self.timeout),
            }),
        }
    }
}

fn nxdomain(name: String) -> DnsError {
    DnsError {
        name,
        cause: DnsCause::NxDomain,
        detail: "not in the scenario's static SRV zone".into(),
    }
}

/// A DNS name as kmsload prints and compares it: lower case, no trailing dot.
pub(super) fn normalise(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The resolver's error in a user's words: the response code for a DNS answer.
fn describe(e: &NetError) -> String {
    match e {
        NetError::Dns(HickoryDnsError::NoRecordsFound(nr)) => match nr.response_code {
            ResponseCode::NoError => "the server answered NOERROR with no record".to_owned(),
            code => format!("the server answered {code:?} ({})", code.to_str()),
        },
        NetError::Dns(HickoryDnsError::ResponseCode(code)) => {
            format!("the server answered {code:?} ({})", code.to_str())
        }
        other => other.to_string(),
    }
}

/// Sorts a resolver error into the causes a user must tell apart.
fn classify(e: &NetError) -> DnsCause {
    match e {
        NetError::Dns(HickoryDnsError::NoRecordsFound(nr)) => match nr.response_code {
            ResponseCode::NXDomain => DnsCause::NxDomain,
            ResponseCode::NoError => DnsCause::NoRecords,
            ResponseCode::ServFail => DnsCause::ServFail,
            ResponseCode::Refused => DnsCause::Refused,
            _ => DnsCause::Other,
        },
        NetError::Dns(HickoryDnsError::ResponseCode(code)) => match *code {
            ResponseCode::NXDomain => DnsCause::NxDomain,
            ResponseCode::Refused => DnsCause::Refused,
            ResponseCode::ServFail => DnsCause::ServFail,
            _ => DnsCause::Other,
        },
        NetError::Timeout => DnsCause::Timeout,
        NetError::Io(_) | NetError::NoConnections | NetError::Busy => DnsCause::Unreachable,
        _ => DnsCause::Other,
    }
}
