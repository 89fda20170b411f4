//! The single-host checks: `tcp.reach`, `rpc.bind` and `kms.*` against one address.
//!
//! Order of work: a TCP probe (when it fails, every other check is skipped: nothing is
//! there to ask); the binds, whose first request also tells whether the host answers KMS at
//! all (when it does not, the rest are skipped, so a silent host costs one step's deadline);
//! a survey of each product (two requests with its family's fixed CMID: acceptance, count,
//! ePID and HwID stability, intervals); then the protocol versions and the clock.
//! `kms.integrity` judges every response any of them received. The whole run makes about 20
//! requests, sequentially, each under the client's deadlines.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use uuid::Uuid;

use super::{Check, CheckName, CheckStatus, ValidateOptions, fixed_cmid};
use crate::catalog::hresult::{self, code};
use crate::catalog::{Family, Product, lookup};
use crate::client::{Attempt, Client, ClientError, ClientOptions, Phase, Reply};
use crate::host::keys::kms_id;
use crate::host::{Epid, EpidIssue};
use crate::wire::kms::ClientResponse;
use crate::wire::session::{AlterOutcome, BtfnOutcome, ClientRpcConfig, NegotiationMode};
use crate::wire::{FileTime, RequestBase, Version};

const HOUR: i64 = 3600;
/// Shortest and longest interval a Windows client accepts, minutes (15 min to 30 days).
const INTERVAL_RANGE: std::ops::RangeInclusive<u32> = 15..=43_200;
/// Windows' defaults (spec 10.3).
const DEFAULT_INTERVALS: (u32, u32) = (120, 10_080);
/// The workstation name validate sends.
const WORKSTATION: &str = "kmsload-validate";

/// Runs the selected single-host checks against `addr` and returns them in run order.
/// `tcp.reach` is included whenever it fails, selected or not: every other check depends on
/// it. Never hangs: every step runs under the deadlines of `options.client`.
pub async fn check_host(addr: SocketAddr, options: &ValidateOptions) -> Vec<Check> {
    let mut out = Vec::new();
    let reach = tcp_reach(addr, options.client.connect_timeout).await;
    let reachable = reach.status == CheckStatus::Pass;
    if options.runs(CheckName::TcpReach) || !reachable {
        out.push(reach);
    }
    let host_checks = CheckName::ALL
        .into_iter()
        .filter(|c| !c.needs_discovery() && *c != CheckName::TcpReach && options.runs(*c));
    if !reachable {
        out.extend(host_checks.map(|c| {
            Check::skip(
                c,
                format!("{addr} does not accept TCP connections (tcp.reach)"),
                "fix tcp.reach first",
            )
        }));
        return out;
    }
    let mut probe = Probe::new(addr, options);
    // The binds go first: when the host does not answer a KMS request at all, nothing else
    // can be learned, and skipping the rest bounds a silent host to one step's deadline.
    let (bind, answered) = probe.rpc_bind().await;
    if options.runs(CheckName::RpcBind) || !answered {
        out.push(bind);
    }
    if !answered {
        out.extend(host_checks.filter(|c| *c != CheckName::RpcBind).map(|c| {
            Check::skip(
                c,
                format!("{addr} did not answer a KMS request (rpc.bind)"),
                "fix rpc.bind first",
            )
        }));
        return out;
    }
    let needs_survey = [
        CheckName::KmsProducts,
        CheckName::KmsThreshold,
        CheckName::KmsIdentity,
        CheckName::KmsIntervals,
        CheckName::KmsIntegrity,
        CheckName::KmsProtocols,
        CheckName::KmsClock,
    ]
    .into_iter()
    .any(|c| options.runs(c));
    let survey = if needs_survey {
        probe.survey().await
    } else {
        Vec::new()
    };
    for name in host_checks {
        let check = match name {
            CheckName::KmsProtocols => probe.protocols(&survey).await,
            CheckName::KmsProducts => products(&survey),
            CheckName::KmsThreshold => probe.threshold(&survey).await,
            CheckName::KmsIdentity => identity(&survey, &probe.v6_hwids),
            CheckName::KmsIntervals => intervals(&survey),
            CheckName::KmsClock => probe.clock(&survey).await,
            // rpc.bind ran first; kms.integrity is judged last, over every response the others
            // received.
            _ => continue,
        };
        out.push(check);
    }
    if options.runs(CheckName::KmsIntegrity) {
        let at = out
            .iter()
            .position(|c| c.name > CheckName::KmsIntegrity)
            .unwrap_or(out.len());
        out.insert(at, probe.integrity());
    }
    out
}

async fn tcp_reach(addr: SocketAddr, limit: Duration) -> Check {
    let name = CheckName::TcpReach;
    let started = Instant::now();
    match tokio::time::timeout(limit, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Check::pass(
            name,
            format!("connected in {}", ms(started.elapsed())),
            format!("TCP connect to {addr}"),
        ),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Check::not_passed(
            name,
            CheckStatus::Fail,
            "connection refused",
            format!(
                "nothing listens on {addr} (0x8007274D WSAECONNREFUSED; clients show 0xC004F074)"
            ),
            "is the Software Protection service running and KMS enabled on this port on the host \
             (`slmgr /dlv` shows the port)? Right address and port?",
        ),
        Ok(Err(e)) => Check::not_passed(
            name,
            CheckStatus::Fail,
            format!("connect failed: {e}"),
            format!(
                "TCP connect to {addr} failed after {}",
                ms(started.elapsed())
            ),
            "check the route to the host and that it is up",
        ),
        Err(_) => Check::not_passed(
            name,
            CheckStatus::Fail,
            format!("no answer within {}", secs(limit)),
            format!(
                "TCP connect to {addr} timed out (0x8007274C WSAETIMEDOUT; clients show 0xC004F074)"
            ),
            "a firewall drops the traffic or the host is down: allow TCP 1688 in (rule \"Key \
             Management Service (TCP-In)\") and check routing",
        ),
    }
}

/// What one request got back, kept for several checks.
#[derive(Debug, Clone)]
enum Answer {
    /// A response that passed the client's checks 2-13.
    Response(Box<ClientResponse>),
    /// An HRESULT in the response stub.
    Refused(u32),
    /// No usable answer: the code a client shows and why.
    Failed {
        /// What a real client would show.
        hresult: u32,
        /// The error.
        detail: String,
    },
}

impl Answer {
    fn of(attempt: &Attempt) -> Self {
        match &attempt.result {
            Ok(Reply::Response(r)) => Self::Response(Box::new(r.clone())),
            Ok(Reply::Refused(c)) => Self::Refused(*c),
            Err(e) => Self::Failed {
                hresult: attempt.verdict().hresult,
                detail: e.to_string(),
            },
        }
    }

    fn response(&self) -> Option<&ClientResponse> {
        match self {
            Self::Response(r) => Some(r),
            _ => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Response(r) => format!(
                "response V{}, count {}",
                r.version.major, r.base.current_count
            ),
            Self::Refused(c) => hresult::summary(*c),
            Self::Failed { hresult, detail } => {
                format!("{} ({detail})", hresult::summary(*hresult))
            }
        }
    }
}

/// The survey of one product: two requests with its family's fixed CMID.
#[derive(Debug, Clone)]
struct Surveyed {
    product: &'static Product,
    first: Answer,
    second: Answer,
}

impl Surveyed {
    fn accepted(&self) -> bool {
        self.first.response().is_some()
    }
}

/// Every response's integrity verdict, for `kms.integrity`.
#[derive(Debug, Default)]
struct Integrity {
    /// Responses that passed, per protocol major.
    verified: BTreeMap<u16, u32>,
    /// V6 responses whose IV was the request's.
    iv_reused: Vec<String>,
    /// Responses that failed a check: what was asked and the error.
    rejected: Vec<String>,
}

struct Probe<'a> {
    addr: SocketAddr,
    options: &'a ValidateOptions,
    integrity: Integrity,
    /// HwIDs of every V6 response, for `kms.identity`.
    v6_hwids: Vec<(String, Option<String>)>,
}

impl<'a> Probe<'a> {
    fn new(addr: SocketAddr, options: &'a ValidateOptions) -> Self {
        Self {
            addr,
            options,
            integrity: Integrity::default(),
            v6_hwids: Vec::new(),
        }
    }

    fn client(&self, rpc: ClientRpcConfig, keep_alive: bool) -> Client {
        Client::new(
            self.addr,
            ClientOptions {
                rpc,
                keep_alive,
                ..self.options.client.clone()
            },
        )
    }

    /// One request on a new connection, as real clients send them.
    async fn ask(
        &mut self,
        label: &str,
        product: &Product,
        version: u16,
        cmid: Uuid,
        skew: i64,
    ) -> Answer {
        let mut client = self.client(self.options.client.rpc, false);
        let attempt = client
            .activate(&request(product, version, cmid, skew), rand::random())
            .await;
        self.record(label, &attempt);
        Answer::of(&attempt)
    }

    fn record(&mut self, label: &str, attempt: &Attempt) {
        match &attempt.result {
            Ok(Reply::Response(r)) => {
                *self.integrity.verified.entry(r.version.major).or_default() += 1;
                if r.iv_reused {
                    self.integrity.iv_reused.push(label.to_owned());
                }
                if r.version.major >= 6 {
                    self.v6_hwids
                        .push((label.to_owned(), r.hwid.map(|h| h.to_string())));
                }
            }
            Err(e @ ClientError::Verify(_)) => {
                self.integrity.rejected.push(format!("{label}: {e}"));
            }
            _ => {}
        }
    }

    async fn survey(&mut self) -> Vec<Surveyed> {
        let mut out = Vec::new();
        for &product in &self.options.products {
            let cmid = fixed_cmid(product.family);
            let label = format!("{} V{}", product.name, product.protocol);
            let first = self.ask(&label, product, product.protocol, cmid, 0).await;
            let second = self.ask(&label, product, product.protocol, cmid, 0).await;
            out.push(Surveyed {
                product,
                first,
                second,
            });
        }
        out
    }

    /// The `rpc.bind` check, and whether the first request got any answer from the KMS
    /// layer (a response or a refusal).
    async fn rpc_bind(&mut self) -> (Check, bool) {
        let name = CheckName::RpcBind;
        let Some(&product) = self.options.products.first() else {
            return (
                Check::skip(name, "no product to ask for", "name one with --product"),
                false,
            );
        };
        let base = request(product, product.protocol, fixed_cmid(product.family), 0);
        let windows = ClientRpcConfig::default();
        let mut client = self.client(windows, true);
        let first = client.activate(&base, rand::random()).await;
        self.record("Windows-style bind", &first);
        let negotiated = client.negotiated().cloned();
        if let Err(e) = &first.result {
            let check = Check::not_passed(
                name,
                CheckStatus::Fail,
                "Windows-style bind failed",
                format!("bind with NDR32 + NDR64 + BTFN, then one request: {e}"),
                bind_hint(e),
            );
            return (check, false);
        }
        let second = client.activate(&base, rand::random()).await;
        self.record("second request on one connection", &second);
        if let Err(e) = &second.result {
            return (
                Check::not_passed(
                    name,
                    CheckStatus::Fail,
                    "second request failed",
                    format!("a second request after a good one: {e}"),
                    "the host fails requests after the first: compare with `kmsload activate -n 2 -v`",
                ),
                true,
            );
        }
        let closed = second.reconnected || second.times.connect.is_some();

        let ndr32 = ClientRpcConfig {
            mode: NegotiationMode::Ndr32Only,
            btfn: false,
            ..ClientRpcConfig::default()
        };
        let mut client = self.client(ndr32, false);
        let plain = client.activate(&base, rand::random()).await;
        self.record("NDR32-only bind", &plain);
        if let Err(e) = &plain.result {
            return (
                Check::not_passed(
                    name,
                    CheckStatus::Fail,
                    "NDR32-only bind failed",
                    format!("bind with NDR32 only, no BTFN, then one request: {e}"),
                    bind_hint(e),
                ),
                true,
            );
        }
        let windows_found = negotiated.map_or_else(
            || "accepted".to_owned(),
            |n| {
                let syntax = match (n.ndr64.is_some(), n.ndr32.is_some()) {
                    (true, true) => "NDR32 and NDR64 accepted",
                    (true, false) => "NDR64 only",
                    (false, _) => "NDR32 only (NDR64 refused)",
                };
                let btfn = match n.btfn {
                    BtfnOutcome::Acknowledged { .. } => "BTFN acknowledged",
                    _ => "BTFN refused",
                };
                let alter = match n.alter_context {
                    AlterOutcome::Accepted => ", alter_context accepted",
                    AlterOutcome::Refused => ", alter_context refused",
                    AlterOutcome::NotSent => "",
                };
                format!("{syntax}, {btfn}{alter}")
            },
        );
        let detail = format!(
            "Windows-style bind (NDR32 + NDR64 + BTFN): {windows_found}; NDR32-only bind: accepted; \
             second request on the same connection: {}",
            if closed {
                "the host had closed the connection after the first response"
            } else {
                "answered on the kept connection"
            }
        );
        let check = if closed {
            Check::not_passed(
                name,
                CheckStatus::Warn,
                "host closes the connection after each response",
                detail,
                "Windows clients open one connection per activation, so they are not affected; \
                 a genuine Windows KMS host keeps the connection (py-kms and vlmcsd -d close it): \
                 make sure this is the host you mean to roll out",
            )
        } else {
            Check::pass(name, "Windows-style and NDR32-only binds accepted", detail)
        };
        (check, true)
    }

    async fn protocols(&mut self, survey: &[Surveyed]) -> Check {
        let name = CheckName::KmsProtocols;
        let mut findings = Vec::new();
        let mut failed = Vec::new();
        let mut untested = Vec::new();
        for version in [4u16, 5, 6] {
            let Some(product) = protocol_product(version, survey, &self.options.products) else {
                untested.push(format!("V{version}: no product to ask for"));
                continue;
            };
            let label = format!("{} V{version}", product.name);
            let answer = self
                .ask(&label, product, version, fixed_cmid(product.family), 0)
                .await;
            match &answer {
                Answer::Response(r) if r.version.major == version => {
                    findings.push(format!("V{version} ({}): answered", product.name));
                }
                Answer::Refused(code::SL_E_VL_KEY_MANAGEMENT_SERVICE_ID_MISMATCH) => {
                    untested.push(format!(
                        "V{version}: the host key does not cover {}, the product used",
                        product.name
                    ));
                }
                other => failed.push(format!(
                    "V{version} ({}): {}",
                    product.name,
                    other.describe()
                )),
            }
        }
        // An unsupported version: any product, fixed CMID.
        if let Some(product) = survey
            .iter()
            .find(|s| s.accepted())
            .map(|s| s.product)
            .or_else(|| self.options.products.first().copied())
        {
            let base = RequestBase {
                version: Version::new(7),
                ..request(product, 6, fixed_cmid(product.family), 0)
            };
            let mut client = self.client(self.options.client.rpc, false);
            let attempt = client.activate(&base, rand::random()).await;
            match Answer::of(&attempt) {
                Answer::Refused(code::ERROR_INVALID_DATA) => {
                    findings.push("V7: refused with 0x8007000D".into());
                }
                other => failed.push(format!(
                    "V7 (unsupported): {}, expected 0x8007000D",
                    other.describe()
                )),
            }
        }
        let mut detail = findings.join("; ");
        for u in &untested {
            detail.push_str(&format!("; {u}"));
        }
        if !failed.is_empty() {
            let v6 = failed.iter().any(|f| f.starts_with("V6"));
            Check::not_passed(
                name,
                CheckStatus::Fail,
                failed.join("; "),
                detail,
                if v6 {
                    "a host that does not answer V6 runs Windows Server 2012 or older: Windows \
                     8.1 and later, Server 2012 R2 and later and Office 2016 and later need V6; \
                     move KMS to Server 2012 R2 or newer"
                } else {
                    "the host answers a protocol version wrongly: compare with `kmsload \
                     activate --protocol N -v` and update the host"
                },
            )
        } else if !untested.is_empty() {
            Check::not_passed(
                name,
                CheckStatus::Warn,
                format!("{} of 3 versions checked", 3 - untested.len()),
                detail,
                "name a product of each version the host covers with --product (see `kmsload \
                 products`)",
            )
        } else {
            Check::pass(name, "V4, V5, V6 answered; V7 refused", detail)
        }
    }

    async fn threshold(&mut self, survey: &[Surveyed]) -> Check {
        let name = CheckName::KmsThreshold;
        let accepted: Vec<&Surveyed> = survey.iter().filter(|s| s.accepted()).collect();
        if accepted.is_empty() {
            return Check::skip(
                name,
                "no product was accepted (kms.products)",
                "fix kms.products first",
            );
        }
        let mut notes = Vec::new();
        let mut charge_problems = Vec::new();
        let mut counts: Vec<(&'static Product, u32)> = accepted
            .iter()
            .filter_map(|s| {
                let r = s.second.response().or(s.first.response())?;
                Some((s.product, r.base.current_count))
            })
            .collect();
        if let Some(n) = self.options.charge {
            // One product per counting application: the one with the largest N.
            let mut by_app: BTreeMap<Uuid, (&'static Product, u32)> = BTreeMap::new();
            for (p, count) in &counts {
                let e = by_app.entry(p.app_id).or_insert((p, *count));
                if p.n_policy > e.0.n_policy {
                    *e = (p, *count);
                }
            }
            for (product, _) in by_app.into_values() {
                let (note, problem) = self.charge(product, n).await;
                notes.push(note);
                charge_problems.extend(problem);
            }
            // The counts after charging, with each product's own fixed CMID (already known).
            counts.clear();
            for s in &accepted {
                let label = format!("{} after charging", s.product.name);
                let answer = self
                    .ask(
                        &label,
                        s.product,
                        s.product.protocol,
                        fixed_cmid(s.product.family),
                        0,
                    )
                    .await;
                if let Some(r) = answer.response() {
                    counts.push((s.product, r.base.current_count));
                }
            }
        }
        let below: Vec<String> = counts
            .iter()
            .filter(|(p, c)| *c < p.n_policy)
            .map(|(p, c)| format!("{}: count {c} of {}", p.name, p.n_policy))
            .collect();
        let all: Vec<String> = counts
            .iter()
            .map(|(p, c)| format!("{}: count {c} (needs {})", p.name, p.n_policy))
            .collect();
        let mut detail = all.join("; ");
        if !notes.is_empty() {
            detail = format!("{}; {detail}", notes.join("; "));
        }
        if !charge_problems.is_empty() {
            Check::not_passed(
                name,
                CheckStatus::Fail,
                charge_problems.join("; "),
                detail,
                "the host does not count distinct clients as a KMS host must (one per new CMID, \
                 none for a repeated one, at most 2 × N): it is not a conforming host",
            )
        } else if !below.is_empty() {
            Check::not_passed(
                name,
                CheckStatus::Fail,
                below.join("; "),
                detail,
                "a new host activates nobody until it has seen 25 distinct Windows clients or 5 \
                 Server/Office clients: let real clients try (they retry every 2 hours), or on a \
                 test host add synthetic ones with `--charge 25` (they stay counted for 30 days)",
            )
        } else {
            Check::pass(name, "every product's count meets its N", detail)
        }
    }

    /// Sends up to `n` new CMIDs for `product` (stopping when the count reaches its cap,
    /// 2 × N) and checks that each raises the count by one and a repeated one does not.
    async fn charge(&mut self, product: &'static Product, n: u32) -> (String, Option<String>) {
        let cap = product.n_policy.saturating_mul(2);
        // The count right now: other products of the same application may have added their
        // family's fixed CMID since the survey.
        let label = format!("{} before charging", product.name);
        let cmid = fixed_cmid(product.family);
        let now = self.ask(&label, product, product.protocol, cmid, 0).await;
        let Some(start) = now.response().map(|r| r.base.current_count) else {
            return (
                format!("{}: not charged", product.name),
                Some(format!("{}: {}", product.name, now.describe())),
            );
        };
        let mut count = start;
        let mut sent = 0u32;
        let mut last = None;
        while sent < n && count < cap {
            let cmid = Uuid::new_v4();
            let label = format!("{} new client {}", product.name, sent + 1);
            let answer = self.ask(&label, product, product.protocol, cmid, 0).await;
            sent += 1;
            let Some(r) = answer.response() else {
                return (
                    format!("{}: charging stopped", product.name),
                    Some(format!(
                        "{}: new client {sent} got {}",
                        product.name,
                        answer.describe()
                    )),
                );
            };
            let got = r.base.current_count;
            if got != count + 1 {
                return (
                    format!("{}: charging stopped", product.name),
                    Some(format!(
                        "{}: new client {sent} moved the count from {count} to {got}, expected {}",
                        product.name,
                        count + 1
                    )),
                );
            }
            count = got;
            last = Some(cmid);
        }
        if let Some(cmid) = last {
            let label = format!("{} repeated client", product.name);
            let answer = self.ask(&label, product, product.protocol, cmid, 0).await;
            match answer.response().map(|r| r.base.current_count) {
                Some(c) if c == count => {}
                Some(c) => {
                    return (
                        format!("{}: charged {sent} new clients", product.name),
                        Some(format!(
                            "{}: a repeated CMID moved the count from {count} to {c}",
                            product.name
                        )),
                    );
                }
                None => {
                    return (
                        format!("{}: charged {sent} new clients", product.name),
                        Some(format!(
                            "{}: a repeated CMID got {}",
                            product.name,
                            answer.describe()
                        )),
                    );
                }
            }
        }
        (
            format!(
                "{}: {sent} new clients raised the count {start} → {count} (cap {cap}), a repeated one did not",
                product.name
            ),
            None,
        )
    }

    async fn clock(&mut self, survey: &[Surveyed]) -> Check {
        let name = CheckName::KmsClock;
        let Some(product) = survey.iter().find(|s| s.accepted()).map(|s| s.product) else {
            return Check::skip(
                name,
                "no product was accepted (kms.products)",
                "fix kms.products first",
            );
        };
        let cmid = fixed_cmid(product.family);
        let mut near = Vec::new();
        let mut far = Vec::new();
        for skew in [-3 * HOUR, 3 * HOUR] {
            let label = format!("{} {:+} h", product.name, skew / HOUR);
            let a = self
                .ask(&label, product, product.protocol, cmid, skew)
                .await;
            near.push((skew, a));
        }
        for skew in [-5 * HOUR, 5 * HOUR] {
            let label = format!("{} {:+} h", product.name, skew / HOUR);
            let a = self
                .ask(&label, product, product.protocol, cmid, skew)
                .await;
            far.push((skew, a));
        }
        let shown = |v: &[(i64, Answer)]| {
            v.iter()
                .map(|(s, a)| format!("{:+} h: {}", s / HOUR, a.describe()))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let detail = format!("{}; {}", shown(&near), shown(&far));
        let near_ok = near.iter().all(|(_, a)| a.response().is_some());
        let far_refused = far
            .iter()
            .filter(|(_, a)| matches!(a, Answer::Refused(code::SL_E_VL_INVALID_TIMESTAMP)))
            .count();
        let far_accepted = far.iter().filter(|(_, a)| a.response().is_some()).count();
        if near_ok && far_refused == 2 {
            Check::pass(name, "±3 h accepted, ±5 h refused (0xC004F06C)", detail)
        } else if near_ok && far_accepted == 2 {
            Check::not_passed(
                name,
                CheckStatus::Warn,
                "host accepts any time",
                detail,
                "genuine hosts refuse clients more than 4 h off with 0xC004F06C; this one checks \
                 no time (vlmcsd and py-kms by default): clients with wrong clocks will activate \
                 here and fail on a genuine host",
            )
        } else {
            Check::not_passed(
                name,
                CheckStatus::Fail,
                "time check not as a genuine host's",
                detail,
                "one side accepted and the other refused: this machine's clock and the host's \
                 differ by an hour or more; sync both (`w32tm /query /status` on the host)",
            )
        }
    }

    fn integrity(&self) -> Check {
        let name = CheckName::KmsIntegrity;
        let i = &self.integrity;
        let total: u32 = i.verified.values().sum();
        let by_version = i
            .verified
            .iter()
            .map(|(v, n)| format!("V{v}: {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        if !i.rejected.is_empty() {
            return Check::not_passed(
                name,
                CheckStatus::Fail,
                format!("{} responses failed verification", i.rejected.len()),
                i.rejected.join("; "),
                "clients reject these responses (0x8007000D): the host's KMS implementation is \
                 broken or something on the path rewrites packets; capture with `kmsload \
                 activate -v`",
            );
        }
        if total == 0 {
            return Check::skip(
                name,
                "no response to verify",
                "fix the checks above that got no response",
            );
        }
        if !i.iv_reused.is_empty() {
            return Check::not_passed(
                name,
                CheckStatus::Warn,
                "V6 response IV equals the request IV: a KMS emulator",
                format!(
                    "{total} responses passed every check ({by_version}); the V6 IV was echoed in: {}",
                    i.iv_reused.join(", ")
                ),
                "a genuine Windows KMS host sends a fresh IV (vlmcs flags the same); make sure \
                 this is the licensed host you mean to roll out",
            );
        }
        Check::pass(
            name,
            format!("{total} responses verified"),
            format!("MAC, salt/IV, CMID and time echo, HMAC checked ({by_version})"),
        )
    }
}

fn bind_hint(e: &ClientError) -> &'static str {
    match e {
        ClientError::Rpc {
            phase: Phase::Bind, ..
        }
        | ClientError::Closed {
            phase: Phase::Bind, ..
        } => {
            "the host refuses the bind Windows clients send: it is not a KMS host, or an RPC \
              filter blocks the KMS interface; compare with `kmsload activate -v`"
        }
        _ => "the host did not complete bind and request: compare with `kmsload activate -v`",
    }
}

fn products(survey: &[Surveyed]) -> Check {
    let name = CheckName::KmsProducts;
    let detail = survey
        .iter()
        .map(|s| format!("{}: {}", s.product.name, s.first.describe()))
        .collect::<Vec<_>>()
        .join("; ");
    let refused: Vec<&Surveyed> = survey.iter().filter(|s| !s.accepted()).collect();
    if refused.is_empty() {
        return Check::pass(
            name,
            format!("{} of {} products accepted", survey.len(), survey.len()),
            detail,
        );
    }
    let key = refused.iter().any(|s| {
        matches!(
            s.first,
            Answer::Refused(code::SL_E_VL_KEY_MANAGEMENT_SERVICE_ID_MISMATCH)
        )
    });
    let value = refused
        .iter()
        .map(|s| match s.first {
            Answer::Refused(c) => format!("{}: {}", s.product.name, hresult::hex(c)),
            _ => format!("{}: no answer", s.product.name),
        })
        .collect::<Vec<_>>()
        .join("; ");
    Check::not_passed(
        name,
        CheckStatus::Fail,
        value,
        detail,
        if key {
            "0xC004F042: the host key (CSVLK) does not cover the product; install a host key of \
             the newest product line you run (e.g. the Windows Server 2025 CSVLK covers every \
             Windows edition before it; Office needs its own key), then `slmgr /ato` on the host"
        } else {
            "look the code up with `kmsload explain CODE`"
        },
    )
}

fn identity(survey: &[Surveyed], v6_hwids: &[(String, Option<String>)]) -> Check {
    let name = CheckName::KmsIdentity;
    let now = FileTime::from_unix(now_unix(), 0);
    let mut fails = Vec::new();
    let mut warns = Vec::new();
    let mut seen = Vec::new();
    for s in survey {
        let (Some(a), Some(b)) = (s.first.response(), s.second.response()) else {
            continue;
        };
        let p = s.product;
        let epid = &a.base.epid;
        if *epid != b.base.epid {
            fails.push(format!(
                "{}: ePID changed between two requests ({epid} then {})",
                p.name, b.base.epid
            ));
        }
        seen.push(format!("{}: {epid}", p.name));
        let parsed = match Epid::parse(epid) {
            Ok(e) => e,
            Err(e) => {
                fails.push(format!("{}: {e}", p.name));
                continue;
            }
        };
        for issue in parsed.issues(Some(now)) {
            match issue {
                EpidIssue::ActivatedInFuture { .. } | EpidIssue::InvalidActivationDate { .. } => {
                    fails.push(format!("{}: {issue}", p.name));
                }
                _ => warns.push(format!("{}: {issue}", p.name)),
            }
        }
        match (parsed.csvlk(), kms_id(p.kms_id)) {
            (Some(key), Some(info)) if !key.covers(info, false) => warns.push(format!(
                "{}: ePID names a {} host key, which does not cover this product",
                p.name, key.name
            )),
            (None, _) => warns.push(format!(
                "{}: ePID group {} / key id {} is no known host key",
                p.name, parsed.group_id, parsed.key_id
            )),
            _ => {}
        }
    }
    let hwids: Vec<&String> = v6_hwids.iter().filter_map(|(_, h)| h.as_ref()).collect();
    if let Some((label, _)) = v6_hwids.iter().find(|(_, h)| h.is_none()) {
        fails.push(format!("{label}: V6 response without HwID"));
    }
    if hwids.windows(2).any(|w| w[0] != w[1]) {
        let mut distinct: Vec<&String> = hwids.clone();
        distinct.dedup();
        fails.push(format!(
            "HwID changed between responses: {}",
            distinct
                .iter()
                .map(|h| h.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if seen.is_empty() {
        return Check::skip(
            name,
            "no product was answered twice (kms.products)",
            "fix kms.products first",
        );
    }
    let mut detail = seen.join("; ");
    if let Some(h) = hwids.first() {
        detail.push_str(&format!("; HwID {h} in {} V6 responses", hwids.len()));
    }
    if !fails.is_empty() {
        Check::not_passed(
            name,
            CheckStatus::Fail,
            fails.join("; "),
            detail,
            "a genuine host keeps one ePID per host key and one HwID, with a past activation \
             date: an identity that changes or is malformed marks an emulator or a broken host",
        )
    } else if !warns.is_empty() {
        Check::not_passed(
            name,
            CheckStatus::Warn,
            warns.join("; "),
            detail,
            "the ePID is not one a genuine host with these products would send: check which \
             host key is installed (`slmgr /dlv` on the host)",
        )
    } else {
        Check::pass(name, "ePID and HwID well-formed and stable", detail)
    }
}

fn intervals(survey: &[Surveyed]) -> Check {
    let name = CheckName::KmsIntervals;
    let mut pairs: Vec<(u32, u32)> = survey
        .iter()
        .flat_map(|s| [s.first.response(), s.second.response()])
        .flatten()
        .map(|r| (r.base.activation_interval, r.base.renewal_interval))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    let Some(&(activation, renewal)) = pairs.first() else {
        return Check::skip(name, "no response (kms.products)", "fix kms.products first");
    };
    let value = format!("activation {activation} min, renewal {renewal} min");
    let detail = if pairs.len() > 1 {
        format!(
            "responses differ: {}",
            pairs
                .iter()
                .map(|(a, r)| format!("{a}/{r}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        String::from("the same in every response")
    };
    let out_of_range = pairs
        .iter()
        .any(|(a, r)| !INTERVAL_RANGE.contains(a) || !INTERVAL_RANGE.contains(r));
    if out_of_range {
        Check::not_passed(
            name,
            CheckStatus::Fail,
            value,
            detail,
            "Windows clients accept 15 minutes to 30 days: set them back with `slmgr /sai 120` \
             and `slmgr /sri 10080` on the host",
        )
    } else if pairs.len() > 1 || pairs[0] != DEFAULT_INTERVALS {
        Check::not_passed(
            name,
            CheckStatus::Warn,
            value,
            detail,
            "not Windows' defaults (120 / 10080 min): fine if chosen on purpose; otherwise \
             `slmgr /sai 120` and `slmgr /sri 10080` on the host",
        )
    } else {
        Check::pass(name, value, detail)
    }
}

/// The product to try protocol `version` with: a listed product of that version the host
/// accepted, else a listed one of that version, else a default of that version in the family
/// of an accepted (or the first listed) product.
fn protocol_product(
    version: u16,
    survey: &[Surveyed],
    listed: &[&'static Product],
) -> Option<&'static Product> {
    if let Some(s) = survey
        .iter()
        .find(|s| s.product.protocol == version && s.accepted())
    {
        return Some(s.product);
    }
    if let Some(p) = listed.iter().find(|p| p.protocol == version) {
        return Some(p);
    }
    let families = survey
        .iter()
        .filter(|s| s.accepted())
        .map(|s| s.product.family)
        .chain(listed.iter().map(|p| p.family));
    for family in families {
        if let Some(p) = version_default(version, family) {
            return Some(p);
        }
    }
    None
}

/// A representative product of each protocol version and family.
fn version_default(version: u16, family: Family) -> Option<&'static Product> {
    let name = match (version, family) {
        (4, Family::WindowsClient) => "Windows 7 Enterprise",
        (4, Family::WindowsServer) => "Windows Server 2008 R2 Enterprise",
        (4, Family::Office) => "Office Professional Plus 2010",
        (5, Family::WindowsClient) => "Windows 8 Enterprise",
        (5, Family::WindowsServer) => "Windows Server 2012 Standard",
        (5, Family::Office) => "Office Professional Plus 2013",
        (6, Family::WindowsClient) => "Windows 10/11 Enterprise",
        (6, Family::WindowsServer) => "Windows Server 2025 Standard",
        (6, Family::Office) => "Office LTSC Professional Plus 2024",
        _ => return None,
    };
    lookup::find(name).ok()
}

/// The request validate sends: `product` as its version-`version` client with `cmid`, the
/// time `skew` seconds off this machine's clock.
pub(super) fn request(product: &Product, version: u16, cmid: Uuid, skew: i64) -> RequestBase {
    let time = FileTime::from_unix(now_unix().saturating_add(skew), 0);
    crate::client::volume_request(product, version, cmid, time, WORKSTATION)
}

fn now_unix() -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_secs()).unwrap_or(i64::MAX)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn secs(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_version_default_is_in_the_catalog_with_its_version_and_family() {
        for version in [4, 5, 6] {
            for family in Family::ALL {
                let p = version_default(version, family)
                    .unwrap_or_else(|| panic!("V{version} {family}: not in the catalog"));
                assert_eq!((p.protocol, p.family), (version, family), "{}", p.name);
            }
        }
    }

    #[test]
    fn protocol_products_prefer_the_list_then_a_default_of_a_listed_family() {
        let office = lookup::find("Office LTSC Professional Plus 2024").unwrap();
        let listed = [office];
        let p = protocol_product(4, &[], &listed).unwrap();
        assert_eq!(p.name, "Office Professional Plus 2010");
        let p = protocol_product(6, &[], &listed).unwrap();
        assert_eq!(p.name, office.name);
    }
}
