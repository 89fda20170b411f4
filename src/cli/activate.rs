//! `kmsload activate [HOST[:PORT]]`: one client, one or more activations, like `slmgr /ato`
//! or vlmcs, with output an `slmgr /dlv` reader recognises, or one JSON object per attempt.
//!
//! `--discover DOMAIN` finds the host as a Windows client does ([`crate::discover`]): the
//! SRV records, the order they were tried in, why each failed, which host answered; the
//! host that answered is tried first by the next attempt (`--no-host-cache` turns that off).

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::ArgAction;
use serde::Serialize;
use uuid::Uuid;

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::{CliError, Status};
use crate::catalog::hresult;
use crate::catalog::{Product, lookup};
use crate::client::{
    Attempt, Client, ClientError, ClientOptions, Outcome, PhaseTimes, Reply, TcpConnector,
    TraceDirection, Verdict,
};
use crate::discover::{
    self, ClientDiscovery, Discovered, Discovery, DiscoveryConfig, HostClients, HostGate, SrvOrder,
};
use crate::faults::{FaultHandle, FaultPlan, FaultyClient, FaultyConnector};
use crate::values::{self, HostPort};
use crate::wire::rpc::Pdu;
use crate::wire::session::{ClientRpcConfig, NegotiationMode};
use crate::wire::{FileTime, RequestBase, Version};

/// Options of `kmsload activate`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kmsload activate                                  # 127.0.0.1:1688, Windows 10/11 Enterprise\n  kmsload activate kms.lab:1688 --product \"Windows Server 2022 Datacenter\"\n  kmsload activate 127.0.0.1 --product \"Office LTSC 2021 Professional Plus\" -n 10 --json\n  kmsload activate 127.0.0.1 --skew -5h            # expect 0xC004F06C from a host that checks time\n  kmsload activate --discover corp.example         # find the host via _vlmcs._tcp.corp.example\n  kmsload activate --discover kms.test --dns-server 127.0.0.1:5353 -n 5"
)]
pub struct ActivateArgs {
    // Help in `help` rather than a doc comment: rustdoc would read `[:PORT]` as a link.
    #[arg(help = "KMS host, HOST[:PORT] (port 1688 by default)")]
    #[arg(value_name = "HOST[:PORT]", default_value = "127.0.0.1:1688", value_parser = values::parse_target, conflicts_with = "discover")]
    pub target: HostPort,

    /// Find the host as Windows clients do: the SRV records of _vlmcs._tcp.DOMAIN, by
    /// priority and weight, failing over to the next (instead of HOST[:PORT]).
    #[arg(long, value_name = "DOMAIN", value_parser = discover::parse_domain)]
    pub discover: Option<String>,

    /// DNS server for --discover, IP[:PORT] (default: the system's resolver configuration).
    #[arg(long, value_name = "IP[:PORT]", value_parser = discover::parse_dns_server, requires = "discover")]
    pub dns_server: Option<std::net::SocketAddr>,

    /// Order of the SRV records: rfc2782 (priority, then weighted draw), random, ordered.
    #[arg(
        long,
        value_name = "ORDER",
        default_value = "rfc2782",
        requires = "discover"
    )]
    pub srv_order: SrvOrder,

    /// Do not try the host that answered last time first (like `slmgr /ckhc`).
    #[arg(long, requires = "discover")]
    pub no_host_cache: bool,

    /// Deadline of each DNS lookup (with --discover).
    #[arg(long, default_value = "5s", value_parser = values::parse_nonzero_duration, requires = "discover")]
    pub dns_timeout: Duration,

    /// Product to activate: edition name as admins say it, GVLK or SKU ID
    /// (see `kmsload products`).
    #[arg(long, short = 'p', default_value = "Windows 10/11 Enterprise", value_parser = lookup::find)]
    pub product: &'static Product,

    /// KMS protocol version (default: the product's).
    #[arg(long, value_parser = clap::value_parser!(u16).range(4..=6))]
    pub protocol: Option<u16>,

    /// Client machine ID (default: a new random one per request).
    #[arg(long)]
    pub cmid: Option<Uuid>,

    /// PreviousClientMachineID to send (default: zero).
    #[arg(long, value_name = "CMID")]
    pub previous_cmid: Option<Uuid>,

    /// Workstation name sent as MachineName (at most 63 characters).
    #[arg(long, short = 'w', default_value = "kmsload-client.example.local")]
    pub workstation: String,

    /// Claim to be a virtual machine (IsClientVM = 1).
    #[arg(long)]
    pub vm: bool,

    /// LicenseStatus: 0 unlicensed, 1 licensed, 2 initial grace, 3 out-of-tolerance grace,
    /// 4 non-genuine grace, 5 notification, 6 extended grace.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=6))]
    pub license_status: u32,

    /// BindingExpiration in minutes (0 = none).
    #[arg(long, default_value_t = 43_200, value_name = "MINUTES")]
    pub binding_expiration: u32,

    /// RequiredClientCount to send (default: the product's N policy, 25 or 5).
    #[arg(long, value_name = "N")]
    pub required_count: Option<u32>,

    /// Offset of the request time from this machine's clock, e.g. -5h, +30m.
    #[arg(long, default_value = "0", allow_hyphen_values = true, value_parser = values::parse_skew)]
    pub skew: i64,

    /// Number of requests (each with a new random CMID unless --cmid is given).
    #[arg(long, short = 'n', default_value = "1", value_parser = values::parse_positive_count)]
    pub count: u64,

    /// Open a new TCP connection for every request (as real clients do) instead of keeping
    /// one connection.
    #[arg(long)]
    pub new_connection: bool,

    /// Offer NDR64 in the bind (Windows-like negotiation with alter_context); off = NDR32 only.
    #[arg(long, default_value = "on", value_name = "on|off", value_parser = values::parse_on_off, action = ArgAction::Set)]
    pub ndr64: bool,

    /// Offer bind-time feature negotiation (BTFN).
    #[arg(long, default_value = "on", value_name = "on|off", value_parser = values::parse_on_off, action = ArgAction::Set)]
    pub btfn: bool,

    /// Deadlines of the network steps.
    #[command(flatten)]
    pub deadlines: super::host_args::DeadlineArgs,

    /// One JSON object per attempt, one per line.
    #[arg(long)]
    pub json: bool,

    /// Print every PDU as one decoded line (to stderr).
    #[arg(long, short = 'v')]
    pub verbose: bool,

    /// Network faults to inject (client side).
    #[command(flatten)]
    pub faults: super::fault_args::FaultArgs,
}

/// Runs `kmsload activate`.
///
/// # Errors
/// [`CliError::Usage`] when the workstation name is too long; failures of the host are
/// reported per attempt and give exit 1.
pub fn run(args: ActivateArgs) -> Result<Status, CliError> {
    if args.workstation.encode_utf16().count() > crate::wire::base::MACHINE_NAME_MAX_UNITS {
        return Err(CliError::Usage(format!(
            "--workstation is {} characters long; a KMS MachineName holds at most 63",
            args.workstation.chars().count()
        )));
    }
    let faults = args.faults.plan().map_err(CliError::Usage)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(activate(args, faults))
}

async fn activate(args: ActivateArgs, faults: FaultPlan) -> Result<Status, CliError> {
    let options = args.deadlines.apply(ClientOptions {
        rpc: ClientRpcConfig {
            mode: if args.ndr64 {
                NegotiationMode::Windows
            } else {
                NegotiationMode::Ndr32Only
            },
            btfn: args.btfn,
            ..ClientRpcConfig::default()
        },
        keep_alive: !args.new_connection,
        ..ClientOptions::default()
    });
    let protocol = args.protocol.unwrap_or(args.product.protocol);
    if let Some(domain) = args.discover.clone() {
        return activate_discovered(&args, &domain, faults, options, protocol).await;
    }
    let mut out = std::io::stdout().lock();
    if !args.json {
        print_header(&mut out, &args, protocol);
    }

    let addr = super::host_args::resolve(&args.target, args.deadlines.connect_timeout).await;
    let mut client = match addr {
        Ok(addr) => FaultyClient::new(addr, None, options),
        Err(e) => {
            // Nothing to retry against: every attempt fails the same way.
            let attempt = Attempt {
                result: Err(e),
                times: PhaseTimes::default(),
                reconnected: false,
            };
            let target = args.target.to_string();
            let shown = Shown::of(&attempt, Some(target), None);
            report(&mut out, &args, 1, None, &shown, protocol, None);
            return Ok(Status::Failure);
        }
    };
    if args.verbose {
        client.set_tracer(Box::new(trace_pdu));
    }

    let mut activated = 0u64;
    let started = std::time::Instant::now();
    for n in 1..=args.count {
        let base = request_base(&args, protocol);
        if args.verbose {
            crate::errln!(
                "> kms request V{} cmid={} sku={} n={} time={}",
                base.version,
                base.client_machine_id,
                base.sku_id,
                base.required_client_count,
                base.request_time.0
            );
        }
        let fault = faults.decide(0, n - 1, started.elapsed());
        let attempt = client.attempt(&base, rand::random(), fault).await;
        if attempt.verdict().outcome == Outcome::Activated {
            activated += 1;
        }
        let shown = Shown::of(&attempt, Some(args.target.to_string()), None);
        report(
            &mut out,
            &args,
            n,
            Some(&base),
            &shown,
            protocol,
            fault.map(|f| f.label()),
        );
    }
    Ok(tally(&mut out, &args, activated))
}

/// The line that sums up several attempts, and the exit status: success when every attempt
/// activated.
fn tally(out: &mut impl Write, args: &ActivateArgs, activated: u64) -> Status {
    if !args.json && args.count > 1 {
        let _ = writeln!(out, "{} of {} attempts activated", activated, args.count);
    }
    if activated == args.count {
        Status::Success
    } else {
        Status::Failure
    }
}

fn request_base(args: &ActivateArgs, protocol: u16) -> RequestBase {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    RequestBase {
        version: Version::new(protocol),
        is_client_vm: u32::from(args.vm),
        license_status: args.license_status,
        binding_expiration: args.binding_expiration,
        application_id: args.product.app_id,
        sku_id: args.product.sku_id,
        kms_counted_id: args.product.kms_id,
        client_machine_id: args.cmid.unwrap_or_else(Uuid::new_v4),
        required_client_count: args.required_count.unwrap_or(args.product.n_policy),
        request_time: FileTime::from_unix(now.saturating_add(args.skew), 0),
        previous_client_machine_id: args.previous_cmid.unwrap_or(Uuid::nil()),
        machine_name: args.workstation.clone(),
    }
}

fn print_header(out: &mut impl Write, args: &ActivateArgs, protocol: u16) {
    let _ = writeln!(out, "KMS host:            {}", args.target);
    print_product(out, args, protocol);
}

fn print_product(out: &mut impl Write, args: &ActivateArgs, protocol: u16) {
    let p = args.product;
    let _ = writeln!(out, "Product:             {} ({})", p.name, p.family);
    let _ = writeln!(out, "SKU ID:              {}", p.sku_id);
    let _ = writeln!(out, "KMS counted ID:      {} ({})", p.kms_id, p.kms_id_name);
    let _ = writeln!(
        out,
        "Protocol:            V{protocol}{}",
        if protocol == p.protocol {
            ""
        } else {
            " (forced)"
        }
    );
    if args.skew != 0 {
        let _ = writeln!(out, "Clock skew:          {:+} s", args.skew);
    }
}

/// One attempt as JSON (`--json`); fields that do not apply are null.
#[derive(Serialize)]
struct JsonAttempt<'a> {
    attempt: u64,
    outcome: &'static str,
    hresult: String,
    hresult_name: Option<&'static str>,
    cause: &'static str,
    cause_code: Option<String>,
    cause_name: Option<&'static str>,
    detail: Option<String>,
    product: &'a str,
    sku_id: Uuid,
    cmid: Option<Uuid>,
    protocol: u16,
    current_count: Option<u32>,
    required_count: Option<u32>,
    epid: Option<&'a str>,
    hwid: Option<String>,
    activation_interval_min: Option<u32>,
    renewal_interval_min: Option<u32>,
    reconnected: bool,
    fault: Option<&'static str>,
    latency_us: JsonLatency,
    /// The host actually used (`target:port`; with --discover, the one that answered).
    host: Option<String>,
    /// With --discover: what discovery found and tried.
    #[serde(skip_serializing_if = "Option::is_none")]
    discovery: Option<JsonDiscovery<'a>>,
}

#[derive(Serialize)]
struct JsonDiscovery<'a> {
    domain: &'a str,
    /// True when this attempt asked DNS (false: the cached host or a held answer).
    queried: bool,
    records: &'a [discover::SrvRecord],
    tried: Vec<JsonTried<'a>>,
    host: Option<String>,
    dns_error: Option<JsonDnsError<'a>>,
    elapsed_us: u64,
}

#[derive(Serialize)]
struct JsonTried<'a> {
    host: &'a str,
    addr: Option<std::net::SocketAddr>,
    cause: &'static str,
    cause_code: Option<String>,
    detail: &'a str,
    elapsed_us: u64,
}

#[derive(Serialize)]
struct JsonDnsError<'a> {
    name: &'a str,
    cause: &'static str,
    code: String,
    detail: &'a str,
}

/// What one attempt shows, whether it reached a host or ended in DNS.
struct Shown<'a> {
    verdict: Verdict,
    result: Option<&'a Result<Reply, ClientError>>,
    times: PhaseTimes,
    reconnected: bool,
    host: Option<String>,
    discovery: Option<&'a Discovered>,
}

impl<'a> Shown<'a> {
    fn of(attempt: &'a Attempt, host: Option<String>, discovery: Option<&'a Discovered>) -> Self {
        Self {
            verdict: attempt.verdict(),
            result: Some(&attempt.result),
            times: attempt.times,
            reconnected: attempt.reconnected,
            host,
            discovery,
        }
    }

    fn discovered(d: &'a Discovered) -> Self {
        match &d.attempt {
            Some(a) => Self::of(a, d.host.as_ref().map(discover::SrvRecord::host), Some(d)),
            None => Self {
                verdict: d.verdict(),
                result: None,
                times: PhaseTimes {
                    total: d.elapsed,
                    ..PhaseTimes::default()
                },
                reconnected: false,
                host: None,
                discovery: Some(d),
            },
        }
    }

    fn detail(&self) -> Option<String> {
        if let Some(Err(e)) = self.result {
            return Some(e.to_string());
        }
        let d = self.discovery?;
        if self.result.is_some() {
            return None;
        }
        d.tried
            .last()
            .map(|t| t.detail.clone())
            .or_else(|| d.dns_error.as_ref().map(ToString::to_string))
    }
}

#[derive(Serialize)]
struct JsonLatency {
    connect: Option<u64>,
    bind: Option<u64>,
    request: Option<u64>,
    total: u64,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn report(
    out: &mut impl Write,
    args: &ActivateArgs,
    n: u64,
    base: Option<&RequestBase>,
    shown: &Shown<'_>,
    protocol: u16,
    fault: Option<&'static str>,
) {
    let verdict = shown.verdict;
    let response = match shown.result {
        Some(Ok(Reply::Response(r))) => Some(r),
        _ => None,
    };
    let detail = shown.detail();
    if args.json {
        let discovery = shown.discovery.map(|d| JsonDiscovery {
            domain: &d.domain,
            queried: d.queried,
            records: &d.records,
            tried: d
                .tried
                .iter()
                .map(|t| JsonTried {
                    host: &t.host,
                    addr: t.addr,
                    cause: t.cause,
                    cause_code: t.verdict.cause_code.map(hresult::hex),
                    detail: &t.detail,
                    elapsed_us: micros(t.elapsed),
                })
                .collect(),
            host: d.host.as_ref().map(discover::SrvRecord::host),
            dns_error: d.dns_error.as_ref().map(|e| JsonDnsError {
                name: &e.name,
                cause: e.cause.label(),
                code: hresult::hex(e.cause.code()),
                detail: &e.detail,
            }),
            elapsed_us: micros(d.elapsed),
        });
        let line = JsonAttempt {
            attempt: n,
            outcome: verdict.outcome.as_str(),
            hresult: hresult::hex(verdict.hresult),
            hresult_name: hresult::hresult(verdict.hresult).map(|h| h.name.as_str()),
            cause: verdict.cause.label(),
            cause_code: verdict.cause_code.map(hresult::hex),
            cause_name: verdict
                .cause_code
                .and_then(hresult::hresult)
                .map(|h| h.name.as_str()),
            detail,
            product: &args.product.name,
            sku_id: args.product.sku_id,
            cmid: base.map(|b| b.client_machine_id),
            protocol,
            current_count: response.map(|r| r.base.current_count),
            required_count: base.map(|b| b.required_client_count),
            epid: response.map(|r| r.base.epid.as_str()),
            hwid: response.and_then(|r| r.hwid).map(|h| h.to_string()),
            activation_interval_min: response.map(|r| r.base.activation_interval),
            renewal_interval_min: response.map(|r| r.base.renewal_interval),
            reconnected: shown.reconnected,
            fault,
            latency_us: JsonLatency {
                connect: shown.times.connect.map(micros),
                bind: shown.times.bind.map(micros),
                request: shown.times.request.map(micros),
                total: micros(shown.times.total),
            },
            host: shown.host.clone(),
            discovery,
        };
        // serde_json cannot fail on this plain struct.
        let _ = serde_json::to_writer(&mut *out, &line);
        let _ = writeln!(out);
        return;
    }
    print_human(
        out,
        args,
        n,
        base,
        shown,
        response,
        &verdict,
        detail.as_deref(),
    );
}

#[allow(clippy::too_many_arguments)]
fn print_human(
    out: &mut impl Write,
    args: &ActivateArgs,
    n: u64,
    base: Option<&RequestBase>,
    shown: &Shown<'_>,
    response: Option<&crate::wire::kms::ClientResponse>,
    verdict: &Verdict,
    detail: Option<&str>,
) {
    let _ = writeln!(out);
    if args.count > 1 {
        let _ = writeln!(out, "Attempt {n} of {}", args.count);
    }
    if let Some(d) = shown.discovery {
        print_discovery(out, d);
    }
    if let Some(b) = base {
        let _ = writeln!(out, "Client machine ID:   {}", b.client_machine_id);
    }
    if let Some(r) = response {
        let _ = writeln!(out, "KMS host ePID:       {}", r.base.epid);
        if let Some(hwid) = r.hwid {
            let _ = writeln!(out, "KMS host HwID:       {hwid}");
        }
        let _ = writeln!(
            out,
            "Current count:       {} (required {})",
            r.base.current_count, r.required_client_count
        );
        let _ = writeln!(
            out,
            "Activation interval: {} minutes",
            r.base.activation_interval
        );
        let _ = writeln!(
            out,
            "Renewal interval:    {} minutes",
            r.base.renewal_interval
        );
    }
    let name = hresult::summary(verdict.hresult);
    let _ = writeln!(
        out,
        "Result:              {} — {}",
        verdict.outcome.as_str().replace('_', " "),
        name
    );
    if let Some(cause) = verdict.cause_code {
        let _ = writeln!(out, "Cause:               {}", hresult::summary(cause));
    }
    let dns_failed = shown.result.is_none() && shown.discovery.is_some_and(|d| d.tried.is_empty());
    if let Some(d) = detail.filter(|_| !dns_failed) {
        let _ = writeln!(out, "Detail:              {d}");
    }
    let t = &shown.times;
    let ms = |d: Option<Duration>| {
        d.map_or_else(
            || "-".to_owned(),
            |d| format!("{:.2} ms", d.as_secs_f64() * 1e3),
        )
    };
    let _ = writeln!(
        out,
        "Times:               connect {}, bind {}, request {}, total {}{}",
        ms(t.connect),
        ms(t.bind),
        ms(t.request),
        ms(Some(t.total)),
        if shown.reconnected {
            " (host had closed the connection; reconnected)"
        } else {
            ""
        }
    );
}

/// The discovery lines of one attempt: the records (when DNS was asked), the hosts tried in
/// order with why each failed, the host that answered.
fn print_discovery(out: &mut impl Write, d: &Discovered) {
    if let Some(e) = &d.dns_error {
        let _ = writeln!(
            out,
            "DNS:                 {} — {} ({})",
            e.name,
            e.cause.label(),
            e.detail
        );
        let _ = writeln!(out, "                     {}", e.cause.hint());
    } else if d.queried {
        for (i, r) in d.records.iter().enumerate() {
            let label = if i == 0 { "SRV records:" } else { "" };
            let _ = writeln!(out, "{label:<21}{r}");
        }
    } else if d.from_cache {
        let _ = writeln!(
            out,
            "SRV records:         not asked: the cached host answered"
        );
    } else {
        let _ = writeln!(
            out,
            "SRV records:         the answer held from an earlier lookup ({} records)",
            d.records.len()
        );
    }
    let mut order: Vec<String> = d.tried.iter().map(|t| t.host.clone()).collect();
    if let Some(h) = &d.host {
        order.push(h.host());
    }
    if !order.is_empty() {
        let cached = if d.from_cache {
            " (first: the cached host)"
        } else {
            ""
        };
        let _ = writeln!(out, "Try order:           {}{cached}", order.join(" → "));
    }
    for t in &d.tried {
        let code = t
            .verdict
            .cause_code
            .map(|c| format!(" {}", hresult::summary(c)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "Failed:              {}: {}{code} ({})",
            t.host, t.cause, t.detail
        );
    }
    if let (Some(h), Some(addr), Some(a)) = (&d.host, d.addr, &d.attempt) {
        let before = d.elapsed.saturating_sub(a.times.total);
        let _ = writeln!(
            out,
            "Answered by:         {} ({addr}); DNS and failover before it: {:.2} ms",
            h.host(),
            before.as_secs_f64() * 1e3
        );
    }
}

/// `activate --discover DOMAIN`: every attempt goes through discovery, the client keeping
/// its cached host and its SRV answer between attempts as a Windows client does.
async fn activate_discovered(
    args: &ActivateArgs,
    domain: &str,
    faults: FaultPlan,
    options: ClientOptions,
    protocol: u16,
) -> Result<Status, CliError> {
    let config = DiscoveryConfig {
        dns_server: args.dns_server,
        order: args.srv_order,
        host_cache: !args.no_host_cache,
        dns_timeout: args.dns_timeout,
        ..DiscoveryConfig::new(domain)
    };
    // `activate` needs no confirmation for a direct target either (README, Safety).
    let discovery = Discovery::new(config, HostGate::open()).map_err(CliError::Usage)?;
    let mut out = std::io::stdout().lock();
    if !args.json {
        print_discovery_header(&mut out, args, &discovery, protocol);
    }
    let handle = FaultHandle::new();
    let verbose = args.verbose;
    let make = {
        let handle = handle.clone();
        let options = options.clone();
        move |addr| {
            let connector = FaultyConnector::with_handle(TcpConnector::default(), handle.clone());
            let mut c = Client::with_connector(connector, addr, options.clone());
            if verbose {
                c.set_tracer(Box::new(trace_pdu));
            }
            c
        }
    };
    let mut hosts = HostClients::new(make, request_base(args, protocol), rand::random());
    let mut state = ClientDiscovery::default();
    let mut rng = StdRng::seed_from_u64(rand::random());
    let mut activated = 0u64;
    let started = std::time::Instant::now();
    for n in 1..=args.count {
        let base = request_base(args, protocol);
        hosts.set_request(base.clone(), rand::random());
        let fault = faults.decide(0, n - 1, started.elapsed());
        handle.arm(fault);
        let found = discovery.attempt(&mut state, &mut hosts, &mut rng).await;
        handle.arm(None);
        if fault.is_some() {
            hosts.disconnect_all();
        }
        let shown = Shown::discovered(&found);
        if shown.verdict.outcome == Outcome::Activated {
            activated += 1;
        }
        report(
            &mut out,
            args,
            n,
            Some(&base),
            &shown,
            protocol,
            fault.map(|f| f.label()),
        );
    }
    Ok(tally(&mut out, args, activated))
}

fn print_discovery_header(
    out: &mut impl Write,
    args: &ActivateArgs,
    discovery: &Discovery,
    protocol: u16,
) {
    let c = discovery.config();
    let server = c
        .dns_server
        .map_or_else(|| "the system's resolver".to_owned(), |s| s.to_string());
    let _ = writeln!(
        out,
        "KMS host:            discovered: {} via {server} (order {}, host cache {})",
        discover::srv_name(&c.domain),
        c.order,
        if c.host_cache { "on" } else { "off" }
    );
    print_product(out, args, protocol);
}

fn trace_pdu(dir: TraceDirection, bytes: &[u8]) {
    let arrow = match dir {
        TraceDirection::Sent => ">",
        TraceDirection::Received => "<",
    };
    match Pdu::parse(bytes) {
        Ok(pdu) => crate::errln!("{arrow} {pdu}"),
        Err(e) => crate::errln!("{arrow} undecodable PDU ({} bytes): {e}", bytes.len()),
    }
}
