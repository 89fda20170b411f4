//! `kmsload validate [HOST[:PORT]] [--discover DOMAIN]`: the pre-rollout checklist (see
//! [`crate::validate`]).
//!
//! Exit 0 when no check failed (warnings allowed; `--strict` makes a warning fail), 1 when
//! one failed, 2 for bad input (nothing is sent then).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::{CliError, Status};
use crate::catalog::{Product, lookup};
use crate::client::ClientOptions;
use crate::discover::{self, SrvOrder};
use crate::validate::{self, Check, CheckName, DnsOptions, Report, ValidateOptions};
use crate::values::{self, Host, HostPort};

/// Options of `kmsload validate`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    kmsload validate kms01.corp.example\n  \
    kmsload validate 127.0.0.1:1688 --check kms.products --product \"Office LTSC Professional Plus 2021\"\n  \
    kmsload validate kms01 --products-from fleet.txt --json\n  \
    kmsload validate kms-test:1688 --charge 25      # adds 25 synthetic clients to a test host\n  \
    kmsload validate --discover corp.example        # every host _vlmcs._tcp.corp.example names\n\n\
    Checks: tcp.reach, rpc.bind, kms.protocols, kms.integrity, kms.products, kms.threshold,\n  \
    kms.identity, kms.intervals, kms.clock; dns.srv, dns.targets, dns.redundancy, dns.order and\n  \
    kms.failover need --discover.\n\
    By default validate sends one fixed client machine ID per product family and nothing else,\n  \
    so runs do not inflate the host's count (see README, \"Before a rollout\").")]
pub struct ValidateArgs {
    // Help in `help` rather than a doc comment: rustdoc would read `[:PORT]` as a link.
    #[arg(help = "KMS host to check, HOST[:PORT] (port 1688 by default)")]
    #[arg(value_name = "HOST[:PORT]", default_value = "127.0.0.1:1688", value_parser = values::parse_target, conflicts_with = "discover")]
    pub target: HostPort,

    /// Check the hosts `_vlmcs._tcp.DOMAIN` names, as clients find them, instead of HOST.
    #[arg(long, value_name = "DOMAIN", value_parser = discover::parse_domain)]
    pub discover: Option<String>,

    /// DNS server for --discover, IP[:PORT] (default: the system's resolver configuration).
    #[arg(long, value_name = "IP[:PORT]", value_parser = discover::parse_dns_server, requires = "discover")]
    pub dns_server: Option<SocketAddr>,

    /// The order clients try the records in, for the shares dns.order shows: rfc2782
    /// (priority, then weighted draw), random, ordered.
    #[arg(
        long,
        value_name = "ORDER",
        default_value = "rfc2782",
        requires = "discover"
    )]
    pub srv_order: SrvOrder,

    /// Deadline of each DNS lookup (with --discover).
    #[arg(long, default_value = "5s", value_parser = values::parse_nonzero_duration, requires = "discover")]
    pub dns_timeout: Duration,

    /// Run only this check (repeat or separate with commas; default: every check).
    #[arg(long = "check", value_name = "NAME", value_delimiter = ',', value_parser = CheckName::parse)]
    pub checks: Vec<CheckName>,

    /// A product the host must activate: edition name, GVLK or SKU ID (repeatable; default:
    /// Windows 10/11 Enterprise, Windows Server 2025 Standard, Office LTSC Professional Plus
    /// 2024).
    #[arg(long = "product", short = 'p', value_name = "PRODUCT", value_parser = lookup::find)]
    pub products: Vec<&'static Product>,

    /// Read the products from FILE: one edition name, GVLK or SKU ID per line (`#` comments).
    #[arg(long, value_name = "FILE")]
    pub products_from: Option<PathBuf>,

    /// Send up to N new client machine IDs per counting application and check that each
    /// raises the count by one (a repeated one not), stopping at the 2 × N cap. They stay in
    /// the host's count for 30 days: for test hosts.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub charge: Option<u32>,

    /// With --charge: confirm a host that is not loopback (its name or address as given, or
    /// the --discover domain). Charged clients stay in a real host's count for 30 days.
    #[arg(long, value_name = "HOST|DOMAIN", requires = "charge")]
    pub confirm_target: Option<String>,

    /// Deadlines of the network steps.
    #[command(flatten)]
    pub deadlines: super::host_args::DeadlineArgs,

    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,

    /// Also write the checks as JUnit XML test cases to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Treat warnings as failures (exit 1).
    #[arg(long)]
    pub strict: bool,
}

/// Runs `kmsload validate`.
///
/// # Errors
/// [`CliError::Usage`] for a bad product list; [`CliError::Runtime`] when the JUnit file
/// cannot be written.
pub fn run(args: ValidateArgs) -> Result<Status, CliError> {
    let options = options(&args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the async runtime: {e}")))?;
    let checks = runtime.block_on(checks(&args, &options));
    let report = match &args.discover {
        Some(domain) => Report::new(None, Some(domain.clone()), checks),
        None => Report::new(Some(args.target.to_string()), None, checks),
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        // serde_json cannot fail on these plain structs.
        let _ = serde_json::to_writer_pretty(&mut out, &report);
        let _ = writeln!(out);
    } else {
        let _ = write!(out, "{}", report.human());
    }
    let _ = out.flush();
    if let Some(path) = &args.junit {
        std::fs::write(path, report.junit(args.strict)).map_err(|e| {
            CliError::Runtime(format!("cannot write --junit {}: {e}", path.display()))
        })?;
    }
    Ok(if report.failed(args.strict) {
        Status::Failure
    } else {
        Status::Success
    })
}

/// The validated options: products from `--product` and `--products-from`, the selected
/// checks in run order, deadlines.
///
/// # Errors
/// [`CliError::Usage`] naming the file and line of a product that does not exist.
pub fn options(args: &ValidateArgs) -> Result<ValidateOptions, CliError> {
    if args.discover.is_none() && args.dns_server.is_some() {
        return Err(CliError::Usage(
            "--dns-server needs --discover DOMAIN (it says where to look the domain up)".into(),
        ));
    }
    if args.charge.is_some() {
        check_charge_confirmed(args)?;
    }
    let mut products: Vec<&'static Product> = args.products.clone();
    if let Some(path) = &args.products_from {
        let text = std::fs::read_to_string(path).map_err(|e| {
            CliError::Usage(format!(
                "cannot read --products-from {}: {e}",
                path.display()
            ))
        })?;
        let listed = validate::parse_product_list(&text)
            .map_err(|e| CliError::Usage(format!("--products-from {}: {e}", path.display())))?;
        products.extend(listed);
    }
    let mut unique: Vec<&'static Product> = Vec::new();
    for p in products {
        if !unique.iter().any(|u| u.sku_id == p.sku_id) {
            unique.push(p);
        }
    }
    let mut options = ValidateOptions::new();
    if !unique.is_empty() {
        options.products = unique;
    }
    if !args.checks.is_empty() {
        options.checks = CheckName::ALL
            .into_iter()
            .filter(|c| args.checks.contains(c))
            .collect();
    }
    options.charge = args.charge;
    options.client = args.deadlines.apply(ClientOptions::default());
    Ok(options)
}

/// `--charge` adds clients a real host counts for 30 days (README, Safety): a target that is
/// not a loopback address, or any --discover domain, must be named by --confirm-target.
fn check_charge_confirmed(args: &ValidateArgs) -> Result<(), CliError> {
    let named = match (&args.discover, &args.target.host) {
        (Some(domain), _) => domain.clone(),
        (None, Host::Ip(ip)) if ip.is_loopback() => return Ok(()),
        (None, Host::Ip(ip)) => ip.to_string(),
        (None, Host::Name(name)) => name.clone(),
    };
    let confirmed = args
        .confirm_target
        .as_deref()
        .is_some_and(|c| c.trim().trim_end_matches('.').eq_ignore_ascii_case(&named));
    if confirmed {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "--charge adds synthetic clients that {named} keeps in its count for 30 days; \
             confirm with --confirm-target {named} (or leave --charge out)"
        )))
    }
}

async fn checks(args: &ValidateArgs, options: &ValidateOptions) -> Vec<Check> {
    if let Some(domain) = &args.discover {
        let dns = DnsOptions {
            domain: domain.clone(),
            dns_server: args.dns_server,
            order: args.srv_order,
            dns_timeout: args.dns_timeout,
        };
        return validate::check_domain(&dns, options).await;
    }
    let mut out: Vec<Check> = options
        .checks
        .iter()
        .filter(|c| c.needs_discovery())
        .map(|c| {
            Check::skip(
                *c,
                "needs --discover DOMAIN (DNS discovery)",
                "give the domain your clients use to check their DNS path",
            )
        })
        .collect();
    let addr = super::host_args::resolve(&args.target, args.deadlines.connect_timeout).await;
    let host_checks = match addr {
        Ok(addr) => validate::check_host(addr, options).await,
        Err(e) => vec![Check::not_passed(
            CheckName::TcpReach,
            validate::CheckStatus::Fail,
            "host name does not resolve",
            e.to_string(),
            "check the name, or give the address; clients show 0xC004F074 (cause 0x80072AF9)",
        )],
    };
    out.extend(host_checks);
    out.sort_by_key(|c| c.name);
    out
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn args(line: &[&str]) -> ValidateArgs {
        let mut all = vec!["kmsload", "validate"];
        all.extend(line);
        match Cli::try_parse_from(all).unwrap().command {
            Command::Validate(a) => *a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn charging_a_host_that_is_not_loopback_needs_its_confirmation() {
        assert!(options(&args(&["127.0.0.1", "--charge", "5"])).is_ok());
        let e = options(&args(&["192.0.2.1", "--charge", "5"])).unwrap_err();
        assert!(e.to_string().contains("--confirm-target 192.0.2.1"), "{e}");
        let wrong = args(&["kms.corp", "--charge", "5", "--confirm-target", "kms.other"]);
        assert!(options(&wrong).is_err());
        let named = args(&[
            "KMS.corp:1688",
            "--charge",
            "5",
            "--confirm-target",
            "kms.corp",
        ]);
        assert!(options(&named).is_ok());
        let domain = args(&["--discover", "corp.example", "--charge", "5"]);
        assert!(options(&domain).is_err());
        let domain = args(&[
            "--discover",
            "corp.example",
            "--charge",
            "5",
            "--confirm-target",
            "corp.example",
        ]);
        assert!(options(&domain).is_ok());
        // Without --charge nothing needs confirming: validate sends only its fixed CMIDs.
        assert!(options(&args(&["192.0.2.1"])).is_ok());
    }

    #[test]
    fn selected_checks_run_in_list_order_and_dns_server_needs_discover() {
        let o = options(&args(&[
            "--check",
            "kms.clock,tcp.reach",
            "--check",
            "rpc.bind",
        ]))
        .unwrap();
        assert_eq!(
            o.checks,
            [CheckName::TcpReach, CheckName::RpcBind, CheckName::KmsClock]
        );
        // clap refuses it alone; with a HOST given it lets it through, and options() refuses.
        assert!(
            Cli::try_parse_from(["kmsload", "validate", "--dns-server", "127.0.0.1:53"]).is_err()
        );
        let e = options(&args(&["127.0.0.1", "--dns-server", "127.0.0.1:53"])).unwrap_err();
        assert!(e.to_string().contains("--discover"), "{e}");
    }
}
