//! `kmsload activate [HOST[:PORT]]`: one client, one or more activations, like `slmgr /ato`
//! or vlmcs, with output an `slmgr /dlv` reader recognises, or one JSON object per attempt.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::ArgAction;
use serde::Serialize;
use uuid::Uuid;

use super::values::{self, Host, Target};
use super::{CliError, Status};
use crate::catalog::hresult;
use crate::catalog::{Product, lookup};
use crate::client::{
    self, Attempt, Client, ClientOptions, Outcome, Reply, TcpConnector, TraceDirection, Verdict,
};
use crate::faults::{FaultHandle, FaultPlan, FaultyConnector};
use crate::wire::rpc::Pdu;
use crate::wire::session::{ClientRpcConfig, NegotiationMode};
use crate::wire::{FileTime, RequestBase, Version};

/// Options of `kmsload activate`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kmsload activate                                  # 127.0.0.1:1688, Windows 10/11 Enterprise\n  kmsload activate kms.lab:1688 --product \"Windows Server 2022 Datacenter\"\n  kmsload activate 127.0.0.1 --product \"Office LTSC 2021 Professional Plus\" -n 10 --json\n  kmsload activate 127.0.0.1 --skew -5h            # expect 0xC004F06C from a host that checks time"
)]
pub struct Args {
    // Help in `help` rather than a doc comment: rustdoc would read `[:PORT]` as a link.
    #[arg(help = "KMS host, HOST[:PORT] (port 1688 by default)")]
    #[arg(value_name = "HOST[:PORT]", default_value = "127.0.0.1:1688", value_parser = values::parse_target)]
    pub target: Target,

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

    /// Deadline for the TCP connect.
    #[arg(long, default_value = "5s", value_parser = values::parse_nonzero_duration)]
    pub connect_timeout: Duration,

    /// Deadline for each later step (bind, each request).
    #[arg(long, default_value = "10s", value_parser = values::parse_nonzero_duration)]
    pub timeout: Duration,

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
pub fn run(args: Args) -> Result<Status, CliError> {
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

async fn activate(args: Args, faults: FaultPlan) -> Result<Status, CliError> {
    let options = ClientOptions {
        rpc: ClientRpcConfig {
            mode: if args.ndr64 {
                NegotiationMode::Windows
            } else {
                NegotiationMode::Ndr32Only
            },
            btfn: args.btfn,
            ..ClientRpcConfig::default()
        },
        connect_timeout: args.connect_timeout,
        bind_timeout: args.timeout,
        request_timeout: args.timeout,
        keep_alive: !args.new_connection,
    };
    let protocol = args.protocol.unwrap_or(args.product.protocol);
    let mut out = std::io::stdout().lock();
    if !args.json {
        print_header(&mut out, &args, protocol);
    }

    let addr = match args.target.socket_addr() {
        Some(addr) => Ok(addr),
        None => match &args.target.host {
            Host::Name(name) => client::resolve(name, args.target.port, args.connect_timeout).await,
            Host::Ip(_) => unreachable!("socket_addr() is Some for every IP target"),
        },
    };
    let handle = FaultHandle::new();
    let connector = FaultyConnector::with_handle(TcpConnector::default(), handle.clone());
    let mut client = match addr {
        Ok(addr) => Client::with_connector(connector, addr, options),
        Err(e) => {
            // Nothing to retry against: every attempt fails the same way.
            let attempt = Attempt {
                result: Err(e),
                times: client::PhaseTimes::default(),
                reconnected: false,
            };
            report(&mut out, &args, 1, None, &attempt, protocol, None);
            return Ok(Status::Failure);
        }
    };
    if args.verbose {
        client.set_tracer(Box::new(|dir, bytes| {
            let arrow = match dir {
                TraceDirection::Sent => ">",
                TraceDirection::Received => "<",
            };
            match Pdu::parse(bytes) {
                Ok(pdu) => eprintln!("{arrow} {pdu}"),
                Err(e) => eprintln!("{arrow} undecodable PDU ({} bytes): {e}", bytes.len()),
            }
        }));
    }

    let mut activated = 0u64;
    let started = std::time::Instant::now();
    for n in 1..=args.count {
        let base = request_base(&args, protocol);
        if args.verbose {
            eprintln!(
                "> kms request V{} cmid={} sku={} n={} time={}",
                base.version,
                base.client_machine_id,
                base.sku_id,
                base.required_client_count,
                base.request_time.0
            );
        }
        let fault = faults.decide(0, n - 1, started.elapsed());
        handle.arm(fault);
        let attempt = client.activate(&base, rand::random()).await;
        handle.arm(None);
        if fault.is_some() {
            client.disconnect();
        }
        if attempt.verdict().outcome == Outcome::Activated {
            activated += 1;
        }
        report(
            &mut out,
            &args,
            n,
            Some(&base),
            &attempt,
            protocol,
            fault.map(|f| f.label()),
        );
    }
    if !args.json && args.count > 1 {
        let _ = writeln!(out, "{} of {} attempts activated", activated, args.count);
    }
    Ok(if activated == args.count {
        Status::Success
    } else {
        Status::Failure
    })
}

fn request_base(args: &Args, protocol: u16) -> RequestBase {
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

fn print_header(out: &mut impl Write, args: &Args, protocol: u16) {
    let p = args.product;
    let _ = writeln!(out, "KMS host:            {}", args.target);
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
    args: &Args,
    n: u64,
    base: Option<&RequestBase>,
    attempt: &Attempt,
    protocol: u16,
    fault: Option<&'static str>,
) {
    let verdict = attempt.verdict();
    let response = match &attempt.result {
        Ok(Reply::Response(r)) => Some(r.as_ref()),
        _ => None,
    };
    let detail = attempt.result.as_ref().err().map(ToString::to_string);
    if args.json {
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
            reconnected: attempt.reconnected,
            fault,
            latency_us: JsonLatency {
                connect: attempt.times.connect.map(micros),
                bind: attempt.times.bind.map(micros),
                request: attempt.times.request.map(micros),
                total: micros(attempt.times.total),
            },
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
        attempt,
        response,
        &verdict,
        detail.as_deref(),
    );
}

#[allow(clippy::too_many_arguments)]
fn print_human(
    out: &mut impl Write,
    args: &Args,
    n: u64,
    base: Option<&RequestBase>,
    attempt: &Attempt,
    response: Option<&crate::wire::kms::ClientResponse>,
    verdict: &Verdict,
    detail: Option<&str>,
) {
    let _ = writeln!(out);
    if args.count > 1 {
        let _ = writeln!(out, "Attempt {n} of {}", args.count);
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
    if let Some(d) = detail {
        let _ = writeln!(out, "Detail:              {d}");
    }
    let t = &attempt.times;
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
        if attempt.reconnected {
            " (host had closed the connection; reconnected)"
        } else {
            ""
        }
    );
}
