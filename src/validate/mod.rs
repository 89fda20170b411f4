//! `validate`: the pre-rollout checklist behind `kmsload validate` (issue 13, part 2).
//!
//! Each check talks to the host only through [`crate::client`] (which uses [`crate::wire`]):
//! this module decides what to send and how to judge what came back, and never encodes a byte
//! itself. A check ends as one [`Check`]: `pass`, `warn`, `fail` or `skip`, the measured value,
//! a detail line and, for anything not passing, what to do.
//!
//! - [`checks`]: the single-host checks (`tcp.reach`, `rpc.bind`, `kms.*`).
//! - [`dns`]: `--discover DOMAIN`: the `dns.*` checks, every host found checked on its own,
//!   and `kms.failover`.
//!
//! # What validate leaves in a host's client table
//!
//! A real host keeps every client machine ID (CMID) it sees for 30 days and counts it in the
//! licence usage it reports. By default validate therefore sends one fixed CMID per product
//! family ([`fixed_cmid`]) and nothing else: the same three IDs on every run, from every
//! machine, so validating a host a hundred times occupies at most one slot per family (they
//! show in the host's event 12290 entries as `6b6d736c-…`, "kmsl"). `--charge N` opts in to N
//! new random CMIDs to watch the count rise; those stay in the host's table for 30 days.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;
use uuid::{Uuid, uuid};

use crate::catalog::{Family, Product, lookup};
use crate::client::ClientOptions;

pub mod checks;
pub mod dns;

pub use checks::check_host;
pub use dns::{DnsOptions, check_domain};

/// One check of the list, in the order they run and print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CheckName {
    /// The `_vlmcs._tcp` SRV record exists.
    DnsSrv,
    /// Every SRV target resolves to an address.
    DnsTargets,
    /// More than one host is published.
    DnsRedundancy,
    /// The order and share each host gets.
    DnsOrder,
    /// Every host accepts TCP within the connect deadline.
    TcpReach,
    /// Windows-style and NDR32-only binds, two requests on one connection.
    RpcBind,
    /// V4, V5, V6 answered; an unsupported version refused with 0x8007000D.
    KmsProtocols,
    /// Every response passes the client's checks; emulator IVs flagged.
    KmsIntegrity,
    /// The host key covers each product.
    KmsProducts,
    /// The count meets each product's N.
    KmsThreshold,
    /// ePID and HwID well-formed, stable and consistent.
    KmsIdentity,
    /// Activation and renewal intervals.
    KmsIntervals,
    /// 3 h off accepted, 5 h off refused.
    KmsClock,
    /// With several discovered hosts, the next one answers when the first is gone.
    KmsFailover,
}

impl CheckName {
    /// Every check, in run order.
    pub const ALL: [Self; 14] = [
        Self::DnsSrv,
        Self::DnsTargets,
        Self::DnsRedundancy,
        Self::DnsOrder,
        Self::TcpReach,
        Self::RpcBind,
        Self::KmsProtocols,
        Self::KmsIntegrity,
        Self::KmsProducts,
        Self::KmsThreshold,
        Self::KmsIdentity,
        Self::KmsIntervals,
        Self::KmsClock,
        Self::KmsFailover,
    ];

    /// The name on the command line and in the output, e.g. `kms.clock`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DnsSrv => "dns.srv",
            Self::DnsTargets => "dns.targets",
            Self::DnsRedundancy => "dns.redundancy",
            Self::DnsOrder => "dns.order",
            Self::TcpReach => "tcp.reach",
            Self::RpcBind => "rpc.bind",
            Self::KmsProtocols => "kms.protocols",
            Self::KmsIntegrity => "kms.integrity",
            Self::KmsProducts => "kms.products",
            Self::KmsThreshold => "kms.threshold",
            Self::KmsIdentity => "kms.identity",
            Self::KmsIntervals => "kms.intervals",
            Self::KmsClock => "kms.clock",
            Self::KmsFailover => "kms.failover",
        }
    }

    /// Reads a check name as [`as_str`](Self::as_str) writes it.
    ///
    /// # Errors
    /// A message listing the valid names.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == t)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|c| c.as_str()).collect();
                format!(
                    "unknown check '{text}'; expected one of {}",
                    names.join(", ")
                )
            })
    }

    /// True for the checks that need `--discover`.
    pub fn needs_discovery(self) -> bool {
        matches!(
            self,
            Self::DnsSrv
                | Self::DnsTargets
                | Self::DnsRedundancy
                | Self::DnsOrder
                | Self::KmsFailover
        )
    }
}

impl std::fmt::Display for CheckName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for CheckName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// How one check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// As a rollout needs it.
    Pass,
    /// Works, but differs from a genuine, default-configured Windows KMS host.
    Warn,
    /// Clients will fail.
    Fail,
    /// Not run; the detail says why.
    Skip,
}

impl CheckStatus {
    /// `PASS`, `WARN`, `FAIL`, `SKIP`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Warn => "WARN",
            Self::Fail => "FAIL",
            Self::Skip => "SKIP",
        }
    }
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Which check.
    pub name: CheckName,
    /// pass / warn / fail / skip.
    pub status: CheckStatus,
    /// What was measured, in one short phrase.
    pub value: String,
    /// What was sent and what came back, enough to reproduce the finding.
    pub detail: String,
    /// What to do (`None` when the check passed).
    pub hint: Option<String>,
}

impl Check {
    /// A passing check.
    pub fn pass(name: CheckName, value: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            name,
            status: CheckStatus::Pass,
            value: value.into(),
            detail: detail.into(),
            hint: None,
        }
    }

    /// A check that did not pass, with what to do.
    pub fn not_passed(
        name: CheckName,
        status: CheckStatus,
        value: impl Into<String>,
        detail: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Self {
            name,
            status,
            value: value.into(),
            detail: detail.into(),
            hint: Some(hint.into()),
        }
    }

    /// A check that did not run, and why (the value; no detail).
    pub fn skip(name: CheckName, why: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::not_passed(name, CheckStatus::Skip, why, "", hint)
    }
}

/// The overall result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChecklistVerdict {
    /// Nothing failed or warned.
    Pass,
    /// Something warned, nothing failed.
    Warn,
    /// A check failed.
    Fail,
}

/// What validate checked and found (`--json` prints it as it is).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The host checked, as given (single-host mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The domain whose `_vlmcs._tcp` record was checked (`--discover`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// One entry per check, in run order.
    pub checks: Vec<Check>,
    /// fail if a check failed, warn if one warned, pass otherwise.
    pub verdict: ChecklistVerdict,
    /// What only someone on the host can check.
    pub host_steps: Vec<&'static str>,
}

/// The checks only someone on the host can do (printed after the list).
pub const HOST_STEPS: [&str; 3] = [
    "Event Viewer > Applications and Services Logs > Key Management Service: one event 12290 \
     per request validate sent (client CMID 6b6d736c-…), with result code 0x0 or the code \
     shown above",
    "Same log, DNS publishing: event 12294 present (the SRV record was published) and 12293 \
     absent (publishing failed: check the host's rights on the DNS zone)",
    "`slmgr /dlv` on the host: License CheckStatus \"Licensed\", KMS enabled, the current count \
     and the port clients use",
];

impl Report {
    /// A report on `checks`, with the verdict computed.
    pub fn new(target: Option<String>, domain: Option<String>, checks: Vec<Check>) -> Self {
        let verdict = verdict(&checks);
        Self {
            target,
            domain,
            checks,
            verdict,
            host_steps: HOST_STEPS.to_vec(),
        }
    }

    /// True when `kmsload validate` should exit 1: a check failed, or (with `strict`) warned.
    pub fn failed(&self, strict: bool) -> bool {
        match self.verdict {
            ChecklistVerdict::Fail => true,
            ChecklistVerdict::Warn => strict,
            ChecklistVerdict::Pass => false,
        }
    }

    /// The checklist as the terminal shows it.
    pub fn human(&self) -> String {
        let mut s = String::new();
        let subject = match (&self.target, &self.domain) {
            (_, Some(d)) => format!("domain {d}"),
            (Some(t), None) => format!("host {t}"),
            (None, None) => String::from("nothing"),
        };
        let _ = writeln!(s, "kmsload validate: {subject}\n");
        for c in &self.checks {
            let _ = writeln!(
                s,
                "{}  {:<15} {}",
                c.status.label(),
                c.name.as_str(),
                c.value
            );
            if !c.detail.is_empty() && c.status != CheckStatus::Pass {
                let _ = writeln!(s, "      {:<15} {}", "", c.detail);
            }
            if let Some(h) = &c.hint {
                let _ = writeln!(s, "      {:<15} what to do: {h}", "");
            }
        }
        let count = |st: CheckStatus| self.checks.iter().filter(|c| c.status == st).count();
        let _ = writeln!(
            s,
            "\nVerdict: {} ({} passed, {} warned, {} failed, {} skipped)",
            match self.verdict {
                ChecklistVerdict::Pass => "PASS",
                ChecklistVerdict::Warn => "WARN",
                ChecklistVerdict::Fail => "FAIL",
            },
            count(CheckStatus::Pass),
            count(CheckStatus::Warn),
            count(CheckStatus::Fail),
            count(CheckStatus::Skip)
        );
        let _ = writeln!(s, "\nStill to check on the host itself:");
        for step in &self.host_steps {
            let _ = writeln!(s, "  - {step}");
        }
        s
    }

    /// The checks as a JUnit XML suite: one test case per check; `skip` is skipped, `fail`
    /// a failure, `warn` a failure only when `strict`.
    pub fn junit(&self, strict: bool) -> String {
        let suite = match (&self.target, &self.domain) {
            (_, Some(d)) => d.clone(),
            (Some(t), None) => t.clone(),
            (None, None) => String::new(),
        };
        let failing =
            |c: &Check| c.status == CheckStatus::Fail || (strict && c.status == CheckStatus::Warn);
        let failures = self.checks.iter().filter(|c| failing(c)).count();
        let skipped = self
            .checks
            .iter()
            .filter(|c| c.status == CheckStatus::Skip)
            .count();
        let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            s,
            "<testsuites><testsuite name=\"kmsload.validate {}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\">",
            xml(&suite),
            self.checks.len()
        );
        for c in &self.checks {
            let _ = write!(
                s,
                "  <testcase classname=\"kmsload.validate\" name=\"{}\">",
                c.name
            );
            let text = match &c.hint {
                Some(h) => format!("{}\nwhat to do: {h}", c.detail),
                None => c.detail.clone(),
            };
            if failing(c) {
                let _ = write!(
                    s,
                    "<failure message=\"{} {}\">{}</failure>",
                    c.status.label(),
                    xml(&c.value),
                    xml(&text)
                );
            } else if c.status == CheckStatus::Skip {
                let _ = write!(s, "<skipped message=\"{}\"/>", xml(&c.value));
            } else {
                let _ = write!(
                    s,
                    "<system-out>{} {}\n{}</system-out>",
                    c.status.label(),
                    xml(&c.value),
                    xml(&text)
                );
            }
            let _ = writeln!(s, "</testcase>");
        }
        s.push_str("</testsuite></testsuites>\n");
        s
    }
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// fail if any check failed, warn if any warned, pass otherwise (skips count for nothing).
pub fn verdict(checks: &[Check]) -> ChecklistVerdict {
    if checks.iter().any(|c| c.status == CheckStatus::Fail) {
        ChecklistVerdict::Fail
    } else if checks.iter().any(|c| c.status == CheckStatus::Warn) {
        ChecklistVerdict::Warn
    } else {
        ChecklistVerdict::Pass
    }
}

/// What to check and how.
#[derive(Debug, Clone)]
pub struct ValidateOptions {
    /// The products to try (`--product`, `--products-from`); never empty.
    pub products: Vec<&'static Product>,
    /// The checks to run, in [`CheckName::ALL`] order.
    pub checks: Vec<CheckName>,
    /// `--charge N`: send up to N new CMIDs per counting application.
    pub charge: Option<u32>,
    /// Deadlines (connect, bind, request).
    pub client: ClientOptions,
}

impl ValidateOptions {
    /// Every check, the default products, no charging, 5 s connect and 10 s step deadlines.
    pub fn new() -> Self {
        Self {
            products: default_products(),
            checks: CheckName::ALL.to_vec(),
            charge: None,
            client: ClientOptions {
                connect_timeout: Duration::from_secs(5),
                ..ClientOptions::default()
            },
        }
    }

    /// True when `name` was selected.
    pub fn runs(&self, name: CheckName) -> bool {
        self.checks.contains(&name)
    }
}

impl Default for ValidateOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// One current product per family: what `kms.products` tries when no list is given.
pub const DEFAULT_PRODUCTS: [&str; 3] = [
    "Windows 10/11 Enterprise",
    "Windows Server 2025 Standard",
    "Office LTSC Professional Plus 2024",
];

/// The [`DEFAULT_PRODUCTS`] from the catalog.
pub fn default_products() -> Vec<&'static Product> {
    DEFAULT_PRODUCTS
        .iter()
        // Fixed names of the embedded catalog; a unit test looks each one up.
        .filter_map(|name| lookup::find(name).ok())
        .collect()
}

/// The CMID validate sends for products of `family` (see the module docs for why it is
/// fixed): `6b6d736c-7661-4c69-8000-00000000000F`, with F = 1 Windows client, 2 Windows
/// Server, 3 Office. Valid version-4 UUIDs, as Windows generates.
pub fn fixed_cmid(family: Family) -> Uuid {
    match family {
        Family::WindowsClient => uuid!("6b6d736c-7661-4c69-8000-000000000001"),
        Family::WindowsServer => uuid!("6b6d736c-7661-4c69-8000-000000000002"),
        Family::Office => uuid!("6b6d736c-7661-4c69-8000-000000000003"),
    }
}

/// Reads a `--products-from` file: one edition name, GVLK or SKU ID per line; blank lines
/// and lines starting with `#` are ignored; duplicates are dropped.
///
/// # Errors
/// `line N: problem` for the first line that names no product, or when the file lists none.
pub fn parse_product_list(text: &str) -> Result<Vec<&'static Product>, String> {
    let mut out: Vec<&'static Product> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let product = lookup::find(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        if !out.iter().any(|p| p.sku_id == product.sku_id) {
            out.push(product);
        }
    }
    if out.is_empty() {
        return Err("lists no product; put one edition name, GVLK or SKU ID per line".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: CheckName, status: CheckStatus) -> Check {
        Check {
            name,
            status,
            value: "v".into(),
            detail: "d".into(),
            hint: None,
        }
    }

    #[test]
    fn default_products_are_one_per_family() {
        let products = default_products();
        assert_eq!(products.len(), DEFAULT_PRODUCTS.len());
        let families: Vec<Family> = products.iter().map(|p| p.family).collect();
        assert_eq!(families, Family::ALL.to_vec());
    }

    #[test]
    fn fixed_cmids_are_distinct_v4_uuids() {
        let ids: Vec<Uuid> = Family::ALL.iter().map(|f| fixed_cmid(*f)).collect();
        for id in &ids {
            assert_eq!(id.get_version_num(), 4);
            assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
        }
        assert_ne!(ids[0], ids[1]);
        assert_ne!(ids[1], ids[2]);
    }

    #[test]
    fn check_names_round_trip_and_unknown_names_list_the_valid_ones() {
        for c in CheckName::ALL {
            assert_eq!(CheckName::parse(c.as_str()), Ok(c));
        }
        let e = CheckName::parse("kms.clocks").unwrap_err();
        assert!(e.contains("kms.clock,"), "{e}");
    }

    #[test]
    fn verdict_is_the_worst_status_and_skips_do_not_count() {
        use CheckStatus::*;
        let v = |s: &[CheckStatus]| {
            verdict(
                &s.iter()
                    .map(|s| check(CheckName::KmsClock, *s))
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(v(&[Pass, Skip]), ChecklistVerdict::Pass);
        assert_eq!(v(&[Pass, Warn, Skip]), ChecklistVerdict::Warn);
        assert_eq!(v(&[Warn, Fail, Pass]), ChecklistVerdict::Fail);
        let warned = Report::new(None, None, vec![check(CheckName::KmsClock, Warn)]);
        assert!(!warned.failed(false));
        assert!(warned.failed(true));
    }

    #[test]
    fn product_lists_take_names_gvlks_and_sku_ids_and_name_the_bad_line() {
        let text = "# our fleet\nWindows 10/11 Enterprise\n\nNPPR9-FWDCX-D2C8J-H872K-2YT43\n\
                    ef6cfc9f-8c5d-44ac-9aad-de6a2ea0ae03\n";
        let list = parse_product_list(text).unwrap();
        // The GVLK names the same edition as line 2.
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].name, "Windows Server 2022 Datacenter");
        let e = parse_product_list("Windows 10/11 Enterprise\nWindows 99 Ultra\n").unwrap_err();
        assert!(e.starts_with("line 2: unknown product"), "{e}");
        assert!(parse_product_list("# nothing\n").is_err());
    }

    #[test]
    fn junit_marks_failures_skips_and_strict_warnings() {
        let r = Report::new(
            Some("127.0.0.1:1688".into()),
            None,
            vec![
                check(CheckName::TcpReach, CheckStatus::Pass),
                check(CheckName::KmsClock, CheckStatus::Warn),
                check(CheckName::KmsThreshold, CheckStatus::Fail),
                check(CheckName::DnsSrv, CheckStatus::Skip),
            ],
        );
        let lax = r.junit(false);
        assert!(
            lax.contains("tests=\"4\" failures=\"1\" skipped=\"1\""),
            "{lax}"
        );
        assert!(lax.contains("name=\"kms.threshold\"><failure"), "{lax}");
        assert!(lax.contains("name=\"dns.srv\"><skipped"), "{lax}");
        let strict = r.junit(true);
        assert!(strict.contains("failures=\"2\""), "{strict}");
        assert!(strict.contains("name=\"kms.clock\"><failure"), "{strict}");
    }
}
