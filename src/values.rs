//! The one grammar for values, used by command-line flags and scenario files alike:
//! durations, clock skews, `HOST[:PORT]`, `on|off` and counts. `--duration 5s` on the command
//! line and `duration = "5s"` in a file go through the same function and get the same message.
//!
//! ```text
//! duration  250ms  5s  2m  1h  1d  1.5s  1h30m  800us  800µs  0
//! skew      -5h  +30m  90s  -4h1m  0  -1.5h                (whole seconds, signed)
//! target    127.0.0.1  127.0.0.1:1688  [::1]:1688  ::1  kms.example.com:1688  (port 1688)
//! on|off    on  off  (also true/false, yes/no, 1/0; any case)
//! count     10  10k  1.5k  1m  2g  1_000_000            (k = 10^3, m = 10^6, g = 10^9)
//! ```
//!
//! A duration or skew needs a unit: in a load test `5` could mean seconds or milliseconds, and
//! guessing wrong silently changes the test, so a bare number is refused with the fix
//! (`write 5s or 5ms`); only `0` needs none. Microseconds (`us`, `µs`) are accepted because
//! the reports print latencies in µs. Compound values list units from largest to smallest,
//! each once (`1h30m`, not `30m1h`). A skew has one-second resolution, as the synthetic
//! clients' clocks do ([`crate::sim`]): `500ms` or `1.5s` is refused, never truncated.
//! In a count `m` is a million, not minutes. Host names are kept as typed; resolving them is
//! the client's job. Every error names the offending part and the expected form.
//!
//! Left out: ISO 8601 durations, nanoseconds, IPv6 zone ids (`fe80::1%eth0`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use crate::wire::KMS_PORT;

const NS_PER_US: u128 = 1_000;
const NS_PER_MS: u128 = 1_000 * NS_PER_US;
const NS_PER_S: u128 = 1_000 * NS_PER_MS;
/// Units in the order a compound value lists them. `µs` is written with the micro sign
/// (U+00B5) or the Greek mu (U+03BC); both are the same unit as `us`.
const DURATION_UNITS: &[(&str, u128)] = &[
    ("d", 86_400 * NS_PER_S),
    ("h", 3_600 * NS_PER_S),
    ("m", 60 * NS_PER_S),
    ("s", NS_PER_S),
    ("ms", NS_PER_MS),
    ("us", NS_PER_US),
];
/// The longest duration a flag takes: `i64::MAX` nanoseconds (about 292 years), the bound
/// scenario files have. Anything longer is a typo, and an instant that far ahead overflows
/// (`--idle-timeout 200000000000000d` made every host connection panic; issue 12, item 15).
const MAX_DURATION_NS: u128 = i64::MAX as u128;
const SKEW_UNITS: &[(&str, u128)] = &[
    ("d", 86_400 * NS_PER_S),
    ("h", 3_600 * NS_PER_S),
    ("m", 60 * NS_PER_S),
    ("s", NS_PER_S),
];

/// What kind of value a [`ValueError`] is about; decides the "expected" part of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// [`parse_duration`].
    Duration,
    /// [`parse_skew`].
    Skew,
    /// [`parse_target`].
    HostPort,
    /// [`parse_minutes`].
    Minutes,
    /// [`parse_on_off`].
    OnOff,
    /// [`parse_count`].
    Count,
}

impl ValueKind {
    /// The expected form, as the error message shows it.
    pub fn expected(self) -> &'static str {
        match self {
            Self::Duration => {
                "a number and a unit (d, h, m, s, ms, us), e.g. 250ms, 5s, 1.5s, 2m or 1h30m"
            }
            Self::Skew => {
                "a signed offset in whole seconds with a unit, e.g. -5h, +30m, 90s or -4h1m"
            }
            Self::HostPort => "HOST[:PORT], e.g. 127.0.0.1, kms.example.com:1688 or [::1]:1688",
            Self::Minutes => {
                "minutes as the wire carries them (120), or whole minutes with a unit (2h, 7d, 1h30m)"
            }
            Self::OnOff => "on or off",
            Self::Count => "a count such as 500, 10k, 1.5k or 1m (k = thousand, m = million)",
        }
    }
}

/// Why a value could not be read: the problem, then the expected form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{problem}; expected {}", kind.expected())]
pub struct ValueError {
    /// What was being read.
    pub kind: ValueKind,
    /// What is wrong, naming the offending part.
    pub problem: String,
}

impl ValueError {
    fn new(kind: ValueKind, problem: impl Into<String>) -> Self {
        Self {
            kind,
            problem: problem.into(),
        }
    }
}

/// Reads a non-negative duration (see the module docs): a unit is required except for `0`.
///
/// # Errors
/// [`ValueError`] for an empty or negative value, a number without a unit, an unknown or
/// repeated unit, units out of order, or a value over about 292 years.
pub fn parse_duration(s: &str) -> Result<Duration, ValueError> {
    let err = |p: String| ValueError::new(ValueKind::Duration, p);
    let t = s.trim();
    if t.starts_with('-') {
        return Err(err(format!("'{t}' is negative; a duration cannot be")));
    }
    let ns = parse_parts(t, DURATION_UNITS).map_err(err)?;
    if ns > MAX_DURATION_NS {
        return Err(err(format!(
            "'{t}' is too large (at most about 292 years, as in scenario files)"
        )));
    }
    let secs = u64::try_from(ns / NS_PER_S).map_err(|_| err(format!("'{t}' is too large")))?;
    // The remainder of a division by 10^9 fits in u32.
    Ok(Duration::new(secs, (ns % NS_PER_S) as u32))
}

/// Like [`parse_duration`], but zero is refused (timeouts, intervals).
///
/// # Errors
/// As [`parse_duration`], and for a zero duration.
pub fn parse_nonzero_duration(s: &str) -> Result<Duration, ValueError> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err(ValueError::new(
            ValueKind::Duration,
            format!("'{}' is zero", s.trim()),
        ));
    }
    Ok(d)
}

/// Reads a signed clock skew in whole seconds (see the module docs): `-5h` → -18000.
///
/// # Errors
/// [`ValueError`] for an empty value, a number without a unit, an unknown or repeated unit
/// (milliseconds included: a skew has one-second resolution), units out of order, a fraction
/// that is not whole seconds, or a value over about 292 years.
pub fn parse_skew(s: &str) -> Result<i64, ValueError> {
    let err = |p: String| ValueError::new(ValueKind::Skew, p);
    let t = s.trim();
    let (negative, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if body.starts_with(['-', '+']) {
        return Err(err(format!("'{t}' has two signs")));
    }
    let sub_second = ["ms", "us", "\u{b5}s", "\u{3bc}s"];
    let lower = body.to_ascii_lowercase();
    if sub_second.iter().any(|u| lower.ends_with(u)) {
        return Err(err(format!(
            "'{t}' is below a second; a skew has one-second resolution"
        )));
    }
    let ns = parse_parts(body, SKEW_UNITS).map_err(err)?;
    if ns > MAX_DURATION_NS {
        return Err(err(format!("'{t}' is too large (at most about 292 years)")));
    }
    if ns % NS_PER_S != 0 {
        return Err(err(format!("'{t}' is not a whole number of seconds")));
    }
    let secs = i64::try_from(ns / NS_PER_S).map_err(|_| err(format!("'{t}' is too large")))?;
    Ok(if negative { -secs } else { secs })
}

/// Shows a duration the way flags and files write it (`1h30m`, `250ms`, `800us`, `0s`), so
/// that what kmsload prints can be pasted back; [`parse_duration`] reads it back exactly
/// (to the microsecond).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DisplayDuration(pub Duration);

impl fmt::Display for DisplayDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0.as_micros();
        if rest == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [
            ("d", 86_400_000_000),
            ("h", 3_600_000_000),
            ("m", 60_000_000),
            ("s", 1_000_000),
            ("ms", 1_000),
            ("us", 1),
        ] {
            if rest >= size {
                write!(f, "{}{unit}", rest / size)?;
                rest %= size;
            }
        }
        Ok(())
    }
}

/// Shows a skew in seconds as [`parse_skew`] reads it: `-6h`, `+1m30s`, `0s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DisplaySkew(pub i64);

impl fmt::Display for DisplaySkew {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0s");
        }
        let sign = if self.0 < 0 { '-' } else { '+' };
        let size = Duration::from_secs(self.0.unsigned_abs());
        write!(f, "{sign}{}", DisplayDuration(size))
    }
}

/// Parts of a duration: `<number>[.<digits>]<unit>` repeated, units from `units` in the
/// table's order, each at most once; only a lone zero may omit the unit. Returns
/// nanoseconds, rounded down below a nanosecond.
fn parse_parts(s: &str, units: &[(&str, u128)]) -> Result<u128, String> {
    if s.is_empty() {
        return Err("the value is empty".into());
    }
    if s.contains(char::is_whitespace) {
        return Err(format!(
            "'{s}' contains a space; write each unit right after its number (1h30m)"
        ));
    }
    let mut rest = s;
    let mut total: u128 = 0;
    let mut last_unit: Option<usize> = None;
    let too_large = || format!("'{s}' is too large");
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let unit_len = after
            .find(|c: char| !(c.is_ascii_alphabetic() || is_micro(c)))
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        if number.is_empty() {
            let bad = after
                .chars()
                .next()
                .map_or_else(|| unit.to_owned(), String::from);
            return Err(format!("'{bad}' in '{s}' is not a number"));
        }
        let (scale, tenths) =
            decimal(number).map_err(|why| format!("'{number}' in '{s}' {why}"))?;
        let unit_ns = if unit.is_empty() {
            let alone = last_unit.is_none() && after.is_empty();
            if alone && scale == 0 {
                return Ok(0);
            }
            if alone {
                return Err(format!(
                    "'{s}' has no unit; write {s}s for seconds or {s}ms for milliseconds"
                ));
            }
            return Err(format!("'{number}' in '{s}' has no unit"));
        } else {
            let names = units.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ");
            let unit = unit.replace(is_micro, "u");
            let Some(i) = units
                .iter()
                .position(|(n, _)| n.eq_ignore_ascii_case(&unit))
            else {
                return Err(format!("unknown unit '{unit}' in '{s}' (use {names})"));
            };
            if last_unit.is_some_and(|l| i <= l) {
                return Err(format!(
                    "unit '{unit}' in '{s}' is repeated or out of order (largest first, e.g. 1h30m)"
                ));
            }
            last_unit = Some(i);
            units[i].1
        };
        let part = scale.checked_mul(unit_ns).ok_or_else(too_large)? / tenths;
        total = total.checked_add(part).ok_or_else(too_large)?;
        rest = after;
    }
    Ok(total)
}

/// The micro sign (U+00B5) or the Greek small mu (U+03BC), both read as the `u` of `us`.
fn is_micro(c: char) -> bool {
    matches!(c, '\u{b5}' | '\u{3bc}')
}

/// A decimal number as (digits without the point, 10^fraction digits): "1.5" → (15, 10).
/// At most 9 fraction digits and 30 digits in all, so that products with the unit sizes above
/// fit in u128 or fail a checked multiplication. The error completes "'<s>' ...".
fn decimal(s: &str) -> Result<(u128, u128), &'static str> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits_only = |x: &str| x.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits_only(int) || !digits_only(frac) {
        return Err("is not a number");
    }
    if frac.len() > 9 {
        return Err("has more than 9 decimal places");
    }
    if int.len() + frac.len() > 30 {
        return Err("has too many digits");
    }
    let value: u128 = format!("{int}{frac}")
        .parse()
        .map_err(|_| "is not a number")?;
    // frac.len() <= 9 was checked above.
    Ok((value, 10u128.pow(frac.len() as u32)))
}

/// Reads a KMS interval in minutes, as `slmgr /sai` and `/sri` and the wire take it: a bare
/// number is minutes (the one place a bare number has a unit, because the protocol and every
/// KMS tool give these in minutes), otherwise a duration of whole minutes (`2h`, `7d`).
///
/// # Errors
/// [`ValueError`] for a malformed duration, a part of a minute, or more than `u32` minutes.
pub fn parse_minutes(s: &str) -> Result<u32, ValueError> {
    let err = |p: String| ValueError::new(ValueKind::Minutes, p);
    let t = s.trim();
    let minutes = if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        t.parse::<u64>()
            .map_err(|_| err(format!("'{t}' is too large")))?
    } else {
        let d = parse_duration(t).map_err(|e| err(e.problem))?;
        if d.as_secs() % 60 != 0 || d.subsec_nanos() != 0 {
            return Err(err(format!("'{t}' is not a whole number of minutes")));
        }
        d.as_secs() / 60
    };
    u32::try_from(minutes).map_err(|_| err(format!("'{t}' is more minutes than the wire carries")))
}

/// Reads `on`/`off` (also `true`/`false`, `yes`/`no`, `1`/`0`), any case.
///
/// # Errors
/// [`ValueError`] for anything else.
pub fn parse_on_off(s: &str) -> Result<bool, ValueError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        other => Err(ValueError::new(
            ValueKind::OnOff,
            format!("'{other}' is neither on nor off"),
        )),
    }
}

/// Reads a count with an optional suffix: `k` thousand, `m` million, `g` billion (any case);
/// `_` may separate digits; a fraction is allowed when the result is whole (`1.5k`).
///
/// # Errors
/// [`ValueError`] for an empty or negative value, an unknown suffix, a fraction that does not
/// give a whole number, or a value beyond `u64`.
pub fn parse_count(s: &str) -> Result<u64, ValueError> {
    let err = |p: String| ValueError::new(ValueKind::Count, p);
    let t = s.trim();
    if t.is_empty() {
        return Err(err("the value is empty".into()));
    }
    if t.starts_with('-') {
        return Err(err(format!("'{t}' is negative; a count cannot be")));
    }
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (number, suffix) = t.split_at(split);
    let multiplier: u128 = match suffix.to_ascii_lowercase().as_str() {
        "" => 1,
        "k" => 1_000,
        "m" => 1_000_000,
        "g" => 1_000_000_000,
        other => {
            return Err(err(format!(
                "unknown suffix '{other}' in '{t}' (use k, m or g)"
            )));
        }
    };
    let digits = number.replace('_', "");
    if number.starts_with('_') || number.ends_with('_') || number.contains("__") {
        return Err(err(format!("'{t}' has a misplaced '_'")));
    }
    let (scaled, tenths) =
        decimal(&digits).map_err(|why| err(format!("'{number}' in '{t}' {why}")))?;
    let value = scaled * multiplier;
    if !value.is_multiple_of(tenths) {
        return Err(err(format!("'{t}' is not a whole number")));
    }
    u64::try_from(value / tenths).map_err(|_| err(format!("'{t}' is too large")))
}

/// Like [`parse_count`], but zero is refused (`-n 0` would do nothing).
///
/// # Errors
/// As [`parse_count`], and for zero.
pub fn parse_positive_count(s: &str) -> Result<u64, ValueError> {
    match parse_count(s)? {
        0 => Err(ValueError::new(
            ValueKind::Count,
            format!("'{}' is zero", s.trim()),
        )),
        n => Ok(n),
    }
}

/// A KMS host as the user named it: an address, or a name to resolve later.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// An IPv4 or IPv6 address.
    Ip(IpAddr),
    /// A DNS name, as typed (checked for shape only).
    Name(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(ip) => write!(f, "{ip}"),
            Self::Name(name) => f.write_str(name),
        }
    }
}

/// `HOST[:PORT]` with the port defaulting to [`KMS_PORT`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// The host.
    pub host: Host,
    /// The TCP port (never 0).
    pub port: u16,
}

impl HostPort {
    /// The socket address when the host is an address; `None` for a name (resolve it).
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self.host {
            Host::Ip(ip) => Some(SocketAddr::new(ip, self.port)),
            Host::Name(_) => None,
        }
    }
}

impl fmt::Display for HostPort {
    /// `127.0.0.1:1688`, `[::1]:1688`, `kms.example.com:1688`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
            _ => write!(f, "{}:{}", self.host, self.port),
        }
    }
}

impl FromStr for HostPort {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_target(s)
    }
}

/// Reads `HOST[:PORT]` (see the module docs); the port defaults to 1688. An IPv6 address with
/// a port needs brackets (`[::1]:1688`); a bare IPv6 address takes the default port.
///
/// # Errors
/// [`ValueError`] for an empty value, a URL, a malformed address, name or port, or port 0.
pub fn parse_target(s: &str) -> Result<HostPort, ValueError> {
    let err = |p: String| ValueError::new(ValueKind::HostPort, p);
    let t = s.trim();
    if t.is_empty() {
        return Err(err("the value is empty".into()));
    }
    if t.contains("://") || t.contains('/') {
        return Err(err(format!("'{t}' looks like a URL or path")));
    }
    if let Some(inner) = t.strip_prefix('[') {
        let Some((addr, after)) = inner.split_once(']') else {
            return Err(err(format!("'{t}' lacks the closing ']'")));
        };
        let ip: Ipv6Addr = addr
            .parse()
            .map_err(|_| err(format!("'{addr}' is not an IPv6 address")))?;
        let port = match after {
            "" => KMS_PORT,
            _ => match after.strip_prefix(':') {
                Some(p) => parse_port(p, t).map_err(err)?,
                None => return Err(err(format!("'{after}' after ']' in '{t}' is not ':PORT'"))),
            },
        };
        return Ok(HostPort {
            host: Host::Ip(IpAddr::V6(ip)),
            port,
        });
    }
    if let Ok(ip) = t.parse::<Ipv6Addr>() {
        return Ok(HostPort {
            host: Host::Ip(IpAddr::V6(ip)),
            port: KMS_PORT,
        });
    }
    let (host, port) = match t.split_once(':') {
        None => (t, KMS_PORT),
        Some((_, p)) if p.contains(':') => {
            return Err(err(format!(
                "'{t}' is not an IPv6 address; with a port, put the address in brackets: [::1]:1688"
            )));
        }
        Some((h, p)) => (h, parse_port(p, t).map_err(err)?),
    };
    if host.is_empty() {
        return Err(err(format!("'{t}' has no host before ':'")));
    }
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok(HostPort {
            host: Host::Ip(IpAddr::V4(ip)),
            port,
        });
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(err(format!("'{host}' is not an IPv4 address")));
    }
    check_host_name(host).map_err(err)?;
    Ok(HostPort {
        host: Host::Name(host.to_owned()),
        port,
    })
}

fn parse_port(p: &str, whole: &str) -> Result<u16, String> {
    if p.is_empty() {
        return Err(format!("'{whole}' has no port after ':'"));
    }
    match p.parse::<u16>() {
        Ok(0) => Err(format!(
            "port 0 in '{whole}' is not a port a host listens on"
        )),
        Ok(port) => Ok(port),
        Err(_) => Err(format!(
            "port '{p}' in '{whole}' is not a number in 1..=65535"
        )),
    }
}

/// Whether `name` has the shape of a DNS host name (see [`parse_target`]); an address such
/// as `127.0.0.1` also has it.
pub fn is_host_name(name: &str) -> bool {
    check_host_name(name).is_ok()
}

/// DNS shape (RFC 1123, plus `_` which SRV-style names use): labels of 1..=63 letters, digits,
/// `-` or `_`, not starting or ending with `-`; 253 characters at most; one trailing dot allowed.
fn check_host_name(name: &str) -> Result<(), String> {
    let body = name.strip_suffix('.').unwrap_or(name);
    if body.len() > 253 {
        return Err(format!("host name '{name}' is longer than 253 characters"));
    }
    for label in body.split('.') {
        let ok = (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(format!(
                "'{name}' is not a valid host name (bad label '{label}')"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(ms(250)));
        assert_eq!(parse_duration("5s"), Ok(ms(5_000)));
        assert_eq!(parse_duration("2m"), Ok(ms(120_000)));
        assert_eq!(parse_duration("1h"), Ok(ms(3_600_000)));
        assert_eq!(parse_duration("1d"), Ok(ms(86_400_000)));
        assert_eq!(parse_duration("1.5s"), Ok(ms(1_500)));
        assert_eq!(parse_duration(".5s"), Ok(ms(500)));
        assert_eq!(parse_duration("1.5ms"), Ok(Duration::from_micros(1_500)));
        assert_eq!(parse_duration("1h30m"), Ok(ms(5_400_000)));
        assert_eq!(parse_duration("1m0.5s"), Ok(ms(60_500)));
        assert_eq!(parse_duration("2s500ms"), Ok(ms(2_500)));
        assert_eq!(parse_duration("5S"), Ok(ms(5_000)));
        assert_eq!(parse_duration(" 5s "), Ok(ms(5_000)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0.000000001s"), Ok(Duration::from_nanos(1)));
    }

    #[test]
    fn microseconds_in_every_spelling() {
        let us = Duration::from_micros;
        assert_eq!(parse_duration("800us"), Ok(us(800)));
        assert_eq!(parse_duration("800\u{b5}s"), Ok(us(800)));
        assert_eq!(parse_duration("800\u{3bc}s"), Ok(us(800)));
        assert_eq!(parse_duration("1ms250us"), Ok(us(1_250)));
        assert_eq!(parse_duration("1.5us"), Ok(Duration::from_nanos(1_500)));
    }

    /// Issue 12, item 11: a bare number means neither seconds nor milliseconds, in a flag or
    /// in a file; the message says how to write each. Zero needs no unit.
    #[test]
    fn bare_numbers_are_refused_except_zero() {
        let e = problem(parse_duration("5"));
        assert_eq!(
            e,
            "'5' has no unit; write 5s for seconds or 5ms for milliseconds"
        );
        assert!(problem(parse_duration("0.25")).contains("write 0.25s"));
        assert!(problem(parse_duration("1m30")).contains("'30' in '1m30' has no unit"));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0.0"), Ok(Duration::ZERO));
        assert!(problem(parse_skew("-90")).contains("no unit"));
        assert_eq!(parse_skew("-0"), Ok(0));
    }

    fn problem<T: fmt::Debug>(r: Result<T, ValueError>) -> String {
        r.expect_err("should be rejected").problem
    }

    #[test]
    fn duration_rejections() {
        assert_eq!(problem(parse_duration("")), "the value is empty");
        assert!(problem(parse_duration("-5s")).contains("negative"));
        assert!(problem(parse_duration("5x")).contains("unknown unit 'x'"));
        assert!(problem(parse_duration("5 s")).contains("contains a space"));
        assert!(problem(parse_duration("s")).contains("not a number"));
        assert!(problem(parse_duration("30m1h")).contains("out of order"));
        // Bounded like scenario durations (issue 12, item 15).
        assert!(problem(parse_duration("200000000000000d")).contains("too large"));
        assert!(problem(parse_duration("106752d")).contains("too large"));
        assert_eq!(
            parse_duration("106751d"),
            Ok(Duration::from_secs(106_751 * 86_400))
        );
        assert!(problem(parse_duration("1s1s")).contains("repeated"));
        assert!(problem(parse_duration("1h30")).contains("no unit"));
        assert!(problem(parse_duration("1.2.3s")).contains("not a number"));
        assert!(problem(parse_duration(".s")).contains("not a number"));
        assert!(problem(parse_duration("0.0000000001s")).contains("more than 9 decimal places"));
        assert!(problem(parse_duration("99999999999999999999999d")).contains("too large"));
        assert!(
            problem(parse_duration(&format!("{}s", "9".repeat(31)))).contains("too many digits")
        );
        assert!(problem(parse_nonzero_duration("0ms")).contains("zero"));
        let msg = parse_duration("5x").unwrap_err().to_string();
        assert!(msg.contains("expected a number and a unit"), "{msg}");
        assert!(msg.contains("(use d, h, m, s, ms, us)"), "{msg}");
    }

    #[test]
    fn skews() {
        assert_eq!(parse_skew("-5h"), Ok(-18_000));
        assert_eq!(parse_skew("+30m"), Ok(1_800));
        assert_eq!(parse_skew("90s"), Ok(90));
        assert_eq!(parse_skew("-4h1m"), Ok(-14_460));
        assert_eq!(parse_skew("0"), Ok(0));
        assert_eq!(parse_skew("-90s"), Ok(-90));
        assert_eq!(parse_skew("-1.5h"), Ok(-5_400));
        assert_eq!(parse_skew("2d"), Ok(172_800));
    }

    #[test]
    fn skew_rejections() {
        assert_eq!(problem(parse_skew("")), "the value is empty");
        assert_eq!(problem(parse_skew("-")), "the value is empty");
        assert!(problem(parse_skew("--5h")).contains("two signs"));
        assert!(problem(parse_skew("500ms")).contains("one-second resolution"));
        assert!(problem(parse_skew("-20us")).contains("one-second resolution"));
        assert!(problem(parse_skew("1.5s")).contains("whole number of seconds"));
        assert!(problem(parse_skew("5y")).contains("unknown unit 'y'"));
        assert!(problem(parse_skew("1m1h")).contains("out of order"));
        assert!(problem(parse_skew("999999999999999999999d")).contains("too large"));
        let msg = parse_skew("5y").unwrap_err().to_string();
        assert!(
            msg.contains("expected a signed offset in whole seconds with a unit, e.g. -5h"),
            "{msg}"
        );
    }

    fn target(host: Host, port: u16) -> HostPort {
        HostPort { host, port }
    }

    #[test]
    fn targets() {
        let v4 = |a, b, c, d| Host::Ip(IpAddr::V4(Ipv4Addr::new(a, b, c, d)));
        let v6_local = Host::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(
            parse_target("127.0.0.1"),
            Ok(target(v4(127, 0, 0, 1), 1688))
        );
        assert_eq!(
            parse_target("127.0.0.1:1689"),
            Ok(target(v4(127, 0, 0, 1), 1689))
        );
        assert_eq!(
            parse_target("[::1]:1688"),
            Ok(target(v6_local.clone(), 1688))
        );
        assert_eq!(parse_target("[::1]:9"), Ok(target(v6_local.clone(), 9)));
        assert_eq!(parse_target("[::1]"), Ok(target(v6_local.clone(), 1688)));
        assert_eq!(parse_target("::1"), Ok(target(v6_local, 1688)));
        assert_eq!(
            parse_target("kms.example.com:1688"),
            Ok(target(Host::Name("kms.example.com".into()), 1688))
        );
        assert_eq!(
            parse_target("localhost"),
            Ok(target(Host::Name("localhost".into()), 1688))
        );
        assert_eq!(
            parse_target("KMS-01.corp."),
            Ok(target(Host::Name("KMS-01.corp.".into()), 1688))
        );
        assert_eq!(parse_target("_vlmcs._tcp.corp").map(|t| t.port), Ok(1688));
        assert_eq!("127.0.0.1".parse::<HostPort>().map(|t| t.port), Ok(1688));
    }

    #[test]
    fn target_display_round_trips() {
        for s in [
            "127.0.0.1:1688",
            "[::1]:1688",
            "kms.example.com:99",
            "[fe80::1:2]:1688",
        ] {
            let t = parse_target(s).unwrap();
            assert_eq!(t.to_string(), s);
            assert_eq!(parse_target(&t.to_string()), Ok(t));
        }
        assert_eq!(
            parse_target("[::1]:1688").unwrap().socket_addr(),
            Some("[::1]:1688".parse().unwrap())
        );
        assert_eq!(parse_target("localhost").unwrap().socket_addr(), None);
    }

    #[test]
    fn target_rejections() {
        assert_eq!(problem(parse_target("")), "the value is empty");
        assert!(problem(parse_target("tcp://host:1688")).contains("URL"));
        assert!(problem(parse_target("host:")).contains("no port"));
        assert!(problem(parse_target(":1688")).contains("no host"));
        assert!(problem(parse_target("host:0")).contains("port 0"));
        assert!(problem(parse_target("host:70000")).contains("1..=65535"));
        assert!(problem(parse_target("host:http")).contains("1..=65535"));
        assert!(problem(parse_target("[::1")).contains("closing ']'"));
        assert!(problem(parse_target("[::1]1688")).contains("not ':PORT'"));
        assert!(problem(parse_target("[host]:1688")).contains("not an IPv6 address"));
        assert!(problem(parse_target("fe80::1::2:1688")).contains("brackets"));
        assert!(problem(parse_target("300.1.1.1")).contains("not an IPv4 address"));
        assert!(problem(parse_target("bad host")).contains("not a valid host name"));
        assert!(problem(parse_target("-bad.example")).contains("bad label '-bad'"));
        assert!(problem(parse_target("a..b")).contains("bad label ''"));
        assert!(problem(parse_target(&"a".repeat(64))).contains("bad label"));
        assert!(problem(parse_target(&format!("{}.com", "a.".repeat(130)))).contains("253"));
        let msg = parse_target("host:0").unwrap_err().to_string();
        assert!(msg.contains("expected HOST[:PORT]"), "{msg}");
    }

    #[test]
    fn on_off() {
        for s in ["on", "ON", "true", "yes", "1", " On "] {
            assert_eq!(parse_on_off(s), Ok(true), "{s}");
        }
        for s in ["off", "Off", "false", "no", "0"] {
            assert_eq!(parse_on_off(s), Ok(false), "{s}");
        }
        let e = parse_on_off("maybe").unwrap_err();
        assert_eq!(
            e.to_string(),
            "'maybe' is neither on nor off; expected on or off"
        );
    }

    #[test]
    fn counts() {
        assert_eq!(parse_count("10"), Ok(10));
        assert_eq!(parse_count("10k"), Ok(10_000));
        assert_eq!(parse_count("10K"), Ok(10_000));
        assert_eq!(parse_count("1m"), Ok(1_000_000));
        assert_eq!(parse_count("1.5k"), Ok(1_500));
        assert_eq!(parse_count("2g"), Ok(2_000_000_000));
        assert_eq!(parse_count("1_000_000"), Ok(1_000_000));
        assert_eq!(parse_count("0"), Ok(0));
        assert_eq!(parse_count("18446744073709551615"), Ok(u64::MAX));
    }

    #[test]
    fn count_rejections() {
        assert_eq!(problem(parse_count("")), "the value is empty");
        assert!(problem(parse_count("-5")).contains("negative"));
        assert!(problem(parse_count("5x")).contains("unknown suffix 'x'"));
        assert!(problem(parse_count("5kk")).contains("unknown suffix 'kk'"));
        assert!(problem(parse_count("1.5")).contains("not a whole number"));
        assert!(problem(parse_count("1.0005k")).contains("not a whole number"));
        assert!(problem(parse_count("k")).contains("not a number"));
        assert!(
            problem(parse_count("1,000")).contains("unknown suffix")
                || problem(parse_count("1,000")).contains("not a number")
        );
        assert!(problem(parse_count("_1")).contains("misplaced '_'"));
        assert!(problem(parse_count("18446744073709551616")).contains("too large"));
        assert!(problem(parse_positive_count("0")).contains("zero"));
        let msg = parse_count("5x").unwrap_err().to_string();
        assert!(msg.contains("expected a count such as 500, 10k"), "{msg}");
    }

    #[test]
    fn parsers_plug_into_clap() {
        use clap::Parser;
        #[derive(Debug, Parser)]
        struct DurationOpts {
            #[arg(long, value_parser = parse_duration)]
            timeout: Duration,
            #[arg(long, value_parser = parse_skew, allow_hyphen_values = true)]
            skew: i64,
            #[arg(value_parser = parse_target)]
            target: HostPort,
            #[arg(short = 'n', value_parser = parse_count)]
            n: u64,
            #[arg(long, value_parser = parse_on_off, action = clap::ArgAction::Set)]
            multiplex: bool,
        }
        let o = DurationOpts::try_parse_from([
            "x",
            "--timeout",
            "250ms",
            "--skew",
            "-5h",
            "[::1]:1688",
            "-n",
            "10k",
            "--multiplex",
            "off",
        ])
        .unwrap();
        assert_eq!(
            (o.timeout, o.skew, o.n, o.multiplex),
            (ms(250), -18_000, 10_000, false)
        );
        assert_eq!(o.target.port, 1688);
        let e = DurationOpts::try_parse_from([
            "x",
            "--timeout",
            "5x",
            "--skew",
            "0",
            "h",
            "-n",
            "1",
            "--multiplex",
            "on",
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown unit 'x'"), "{e}");
    }

    #[test]
    fn product_flag_resolves_through_lookup() {
        // How `activate`/`run` can take `--product`: the catalog lookup is the value parser.
        use clap::Parser;

        use crate::catalog::{Product, lookup};
        #[derive(Debug, Parser)]
        struct ProductOpts {
            #[arg(long, value_parser = lookup::find)]
            product: &'static Product,
        }
        let o = ProductOpts::try_parse_from(["x", "--product", "Windows 11 Pro"]).unwrap();
        assert_eq!(
            o.product.gvlk.as_deref(),
            Some("W269N-WFGWX-YVC9B-4J6C9-T83GX")
        );
        let e = ProductOpts::try_parse_from(["x", "--product", "Windows Sever 2022 Datacenter"])
            .unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(
            e.to_string()
                .contains("did you mean: 'Windows Server 2022 Datacenter'"),
            "{e}"
        );
    }

    proptest::proptest! {
        #[test]
        fn millisecond_durations_round_trip(n in 0u64..10_000_000_000) {
            proptest::prop_assert_eq!(parse_duration(&format!("{n}ms")), Ok(ms(n)));
        }

        #[test]
        fn skews_round_trip(h in 0i64..1000, m in 0i64..60, s in 0i64..60, neg: bool) {
            let text = format!("{}{h}h{m}m{s}s", if neg { "-" } else { "+" });
            let secs = h * 3600 + m * 60 + s;
            proptest::prop_assert_eq!(parse_skew(&text), Ok(if neg { -secs } else { secs }));
        }

        #[test]
        fn displayed_durations_read_back(us in 0u64..100_000_000_000_000) {
            let d = Duration::from_micros(us);
            proptest::prop_assert_eq!(parse_duration(&DisplayDuration(d).to_string()), Ok(d));
        }

        #[test]
        fn displayed_skews_read_back(secs in -9_000_000_000i64..9_000_000_000) {
            proptest::prop_assert_eq!(parse_skew(&DisplaySkew(secs).to_string()), Ok(secs));
        }

        #[test]
        fn parsers_never_panic(s in "\\PC{0,40}") {
            let _ = parse_duration(&s);
            let _ = parse_skew(&s);
            let _ = parse_target(&s);
            let _ = parse_count(&s);
            let _ = parse_on_off(&s);
        }
    }
}
