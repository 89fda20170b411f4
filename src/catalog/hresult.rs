//! HRESULT codes (spec section 8, `data/hresults.csv`): name, who produces the code, meaning,
//! typical cause and what to check, embedded in the binary and parsed once on first use.
//!
//! Also here: [`parse_code`], which reads a code the way admins copy it (hex with or without
//! `0x`, or the signed decimal `slmgr` prints), [`summary`], a one-line description of any
//! `u32`, and [`code`], named constants for the codes other modules produce.
//!
//! How a code relates to the wire (spec 8.1):
//!
//! ```text
//! response stub, return value != 0  ─► host code        (origin "host", 8.2)
//! fault PDU, NCA status 0x1C01xxxx  ─► Win32 RPC error  (origin "rpc fault status" → "rpc fault", 8.1/8.4)
//! valid response, checks of 7.6     ─► derived code     (origin "client (derived)", 8.3)
//! socket / connection failure       ─► 0x8007xxxx       (origin "transport", 8.4)
//! ```
//!
//! A raw NCA fault status row names the HRESULT Windows reports for it in its `typical_cause`
//! column (`see 0x800706B5`); [`Hresult::maps_to`] follows that reference and
//! [`Hresult::fault_status`] goes the other way. The mapping itself is spec 8.1; the tests check
//! the CSV against it.
//!
//! Besides the codes of the protocol (spec section 8), the table holds every code of
//! Microsoft's published list of volume-activation error codes ("Troubleshoot Windows
//! activation error codes"): the DNS look-up of the KMS host, Microsoft's activation server
//! (MAK and host keys) and the client's own licensing service. kmsload produces none of
//! those; an admin meets them first, so `kmsload explain` knows them. The `kmsload` column
//! ([`Role`]) says which codes kmsload itself derives, which it reports as a host sent them,
//! and which it never produces.
//!
//! Left out: HRESULTs in neither list. Unknown codes are reported as unknown, with the
//! facility decoded when it is Win32 ([`win32_error`]).

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

const HRESULTS_CSV: &str = include_str!("../../data/hresults.csv");

/// Named codes (spec 8.2–8.4), for the modules that produce them. Each is a row of
/// `data/hresults.csv` with the same name (checked by the tests).
pub mod code {
    /// Activation succeeded.
    pub const S_OK: u32 = 0x0000_0000;
    /// Count below the client's N policy (derived by the client, 8.3).
    pub const SL_E_VL_NOT_ENOUGH_COUNT: u32 = 0xC004_F038;
    /// Request time rejected by the host (8.2).
    pub const SL_E_VL_INVALID_TIMESTAMP: u32 = 0xC004_F06C;
    /// The host will not activate this product (8.2).
    pub const SL_E_VL_KEY_MANAGEMENT_SERVICE_ID_MISMATCH: u32 = 0xC004_F042;
    /// The host could not process the request; also the simulator's code for a response
    /// that fails integrity checks (8.2, 8.3).
    pub const ERROR_INVALID_DATA: u32 = 0x8007_000D;
    /// No KMS host could be contacted (8.3).
    pub const SL_E_VL_BINDING_SERVICE_UNAVAILABLE: u32 = 0xC004_F074;
    /// vlmcsd `-M1` client table full (8.2).
    pub const SL_REMAPPING_SP_STATUS_INVALIDARG: u32 = 0xC004_D104;
    /// KMS not enabled on the host (8.2, Windows hosts only).
    pub const SL_E_VL_BINDING_SERVICE_NOT_ENABLED: u32 = 0xC004_F039;
    /// The KMS host itself is not activated (8.2, Windows hosts only).
    pub const SL_E_VL_KEY_MANAGEMENT_SERVICE_NOT_ACTIVATED: u32 = 0xC004_F041;
    /// TCP connection refused (8.4).
    pub const WSAECONNREFUSED: u32 = 0x8007_274D;
    /// Connection reset by the host (8.4).
    pub const WSAECONNRESET: u32 = 0x8007_2746;
    /// Connect or receive timed out (8.4).
    pub const WSAETIMEDOUT: u32 = 0x8007_274C;
    /// Host name did not resolve (8.4).
    pub const WSAHOST_NOT_FOUND: u32 = 0x8007_2AF9;
    /// DNS name does not exist: no `_vlmcs._tcp` record (NXDOMAIN, 2.1).
    pub const DNS_ERROR_RCODE_NAME_ERROR: u32 = 0x8007_232B;
    /// The DNS server answered SERVFAIL (2.1).
    pub const DNS_ERROR_RCODE_SERVER_FAILURE: u32 = 0x8007_232A;
    /// The DNS server answered REFUSED (2.1).
    pub const DNS_ERROR_RCODE_REFUSED: u32 = 0x8007_232D;
    /// The name exists but has no record of the type asked for (empty answer, 2.1).
    pub const DNS_INFO_NO_RECORDS: u32 = 0x8007_251D;
    /// The DNS query ran past its deadline (2.1).
    pub const ERROR_TIMEOUT: u32 = 0x8007_05B4;
    /// RPC server unavailable: connect or bind failed (8.4).
    pub const RPC_S_SERVER_UNAVAILABLE: u32 = 0x8007_06BA;
    /// The call failed after it was sent (8.4).
    pub const RPC_S_CALL_FAILED: u32 = 0x8007_06BE;
    /// Fault `nca_s_unk_if` as Windows reports it (8.1).
    pub const RPC_S_UNKNOWN_IF: u32 = 0x8007_06B5;
    /// Fault `nca_s_op_rng_error` as Windows reports it (8.1).
    pub const RPC_S_PROCNUM_OUT_OF_RANGE: u32 = 0x8007_06D1;
    /// Fault `nca_s_proto_error` as Windows reports it (8.1).
    pub const RPC_S_PROTOCOL_ERROR: u32 = 0x8007_06C0;
    /// Raw fault status: unknown interface or context (4.7).
    pub const NCA_S_UNK_IF: u32 = 0x1C01_0003;
    /// Raw fault status: opnum out of range (4.7).
    pub const NCA_S_OP_RNG_ERROR: u32 = 0x1C01_0002;
    /// Raw fault status: protocol error (4.7).
    pub const NCA_S_PROTO_ERROR: u32 = 0x1C01_000B;
}

/// Who produces a code (the CSV's `origin` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
pub enum Origin {
    /// Sent by the KMS host in the response stub (8.2).
    #[serde(rename = "host")]
    Host,
    /// Derived by the client from a valid response; never on the wire (8.3).
    #[serde(rename = "client (derived)")]
    Client,
    /// A socket-level failure seen by the client (8.4).
    #[serde(rename = "transport")]
    Transport,
    /// The Win32 error Windows reports for an RPC fault PDU (8.1).
    #[serde(rename = "rpc fault")]
    RpcFault,
    /// The raw NCA status carried in a fault PDU (4.7, 8.1).
    #[serde(rename = "rpc fault status")]
    RpcFaultStatus,
    /// The client's DNS look-up of its KMS host (SRV record `_vlmcs._tcp`, spec 2.1).
    #[serde(rename = "dns")]
    Dns,
    /// The Software Protection service on the client machine, apart from any KMS exchange
    /// (product keys, grace periods, genuine checks).
    #[serde(rename = "licensing service")]
    LicensingService,
    /// Microsoft's online activation service (MAK and KMS host key activation).
    #[serde(rename = "activation server")]
    ActivationServer,
}

impl Origin {
    /// The spelling in the CSV and in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Host => "host",
            Self::Client => "client (derived)",
            Self::Transport => "transport",
            Self::RpcFault => "rpc fault",
            Self::RpcFaultStatus => "rpc fault status",
            Self::Dns => "dns",
            Self::LicensingService => "licensing service",
            Self::ActivationServer => "activation server",
        }
    }

    /// A short form for tables, at most 12 characters.
    pub fn short(self) -> &'static str {
        match self {
            Self::Host => "host",
            Self::Client => "client",
            Self::Transport => "transport",
            Self::RpcFault => "rpc fault",
            Self::RpcFaultStatus => "fault status",
            Self::Dns => "dns",
            Self::LicensingService => "licensing",
            Self::ActivationServer => "act. server",
        }
    }

    /// A sentence fragment saying who produces the code, for people.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Host => "the KMS host, in its response",
            Self::Client => {
                "the client, from what the KMS hosts it tried answered (or failed to); never \
                 sent by a host"
            }
            Self::Transport => "the client's network stack; no KMS response arrived",
            Self::RpcFault => "the client's RPC runtime, for a fault PDU from the host",
            Self::RpcFaultStatus => "the host's RPC layer, as the status in a fault PDU",
            Self::Dns => "the client's DNS look-up of its KMS host; no host was contacted",
            Self::LicensingService => {
                "the licensing service on the client machine itself, apart from any KMS \
                 exchange"
            }
            Self::ActivationServer => {
                "Microsoft's online activation server (MAK or KMS host key activation); never \
                 a KMS host"
            }
        }
    }
}

/// What kmsload itself does with a code (the CSV's `kmsload` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
pub enum Role {
    /// kmsload's client works the code out itself from what it saw, as a real client would;
    /// no host sent it.
    #[serde(rename = "derived")]
    Derived,
    /// A host sends the code (the reference host or a real one); kmsload reports it as
    /// received.
    #[serde(rename = "relayed")]
    Relayed,
    /// Both: hosts send it, and kmsload's client also derives it in some cases.
    #[serde(rename = "derived or relayed")]
    DerivedOrRelayed,
    /// kmsload never produces the code: it belongs to a part of activation kmsload does not
    /// play (MAK activation, the client's own licensing service), or is a DNS code its
    /// discovery does not report.
    #[serde(rename = "not produced")]
    NotProduced,
}

impl Role {
    /// The spelling in the CSV and in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Derived => "derived",
            Self::Relayed => "relayed",
            Self::DerivedOrRelayed => "derived or relayed",
            Self::NotProduced => "not produced",
        }
    }

    /// A short form for tables: `derives`, `relays`, `both` or `-`.
    pub fn short(self) -> &'static str {
        match self {
            Self::Derived => "derives",
            Self::Relayed => "relays",
            Self::DerivedOrRelayed => "both",
            Self::NotProduced => "-",
        }
    }

    /// A sentence fragment saying what kmsload does with the code, for people.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Derived => {
                "derived by kmsload's client itself from what it saw, as a real client would; \
                 no host sent it"
            }
            Self::Relayed => {
                "sent by a host (the reference host or a real one); kmsload shows it as received"
            }
            Self::DerivedOrRelayed => {
                "sent by hosts, and also derived by kmsload's client in some cases (see the \
                 cause)"
            }
            Self::NotProduced => {
                "never produced by kmsload: it comes from a part of activation kmsload does not \
                 play"
            }
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of `data/hresults.csv`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Hresult {
    /// The code.
    #[serde(deserialize_with = "hex_code")]
    pub code: u32,
    /// Symbolic name, e.g. `SL_E_VL_NOT_ENOUGH_COUNT`.
    pub name: String,
    /// Who produces it.
    pub origin: Origin,
    /// What kmsload does with it.
    pub kmsload: Role,
    /// What it means.
    pub meaning: String,
    /// The usual reasons; `None` where the CSV says `-`.
    #[serde(deserialize_with = "dash_as_none")]
    pub typical_cause: Option<String>,
    /// What to look at; `None` where the CSV says `-`.
    #[serde(deserialize_with = "dash_as_none")]
    pub what_to_check: Option<String>,
    /// Where the row's facts come from (observed, documented, convention, source).
    pub evidence: String,
}

impl Hresult {
    /// For a raw fault status row: the HRESULT Windows reports for it (spec 8.1), found from
    /// the row's `see 0x…` reference. `None` for every other row.
    pub fn maps_to(&self) -> Option<&'static Self> {
        if self.origin != Origin::RpcFaultStatus {
            return None;
        }
        let target = self.typical_cause.as_deref()?.strip_prefix("see ")?;
        hresult(parse_code(target).ok()?)
    }

    /// For an RPC fault row: the raw fault status that maps to it. `None` for every other row.
    pub fn fault_status(&self) -> Option<&'static Self> {
        if self.origin != Origin::RpcFault {
            return None;
        }
        hresults()
            .iter()
            .find(|h| h.maps_to().is_some_and(|m| m.code == self.code))
    }

    /// Whether the code has a published symbolic name; rows without one say
    /// `(no symbolic name)` in the name column.
    pub fn has_symbol(&self) -> bool {
        !self.name.starts_with('(')
    }

    /// The code as `0xC004F038`.
    pub fn hex(&self) -> String {
        hex(self.code)
    }
}

fn hex_code<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let s = String::deserialize(d)?;
    let digits = s
        .strip_prefix("0x")
        .ok_or_else(|| serde::de::Error::custom(format!("code {s:?} lacks 0x")))?;
    u32::from_str_radix(digits, 16).map_err(serde::de::Error::custom)
}

fn dash_as_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    Ok((s != "-" && !s.is_empty()).then_some(s))
}

/// All codes, in the CSV's order.
pub fn hresults() -> &'static [Hresult] {
    static HRESULTS: OnceLock<Vec<Hresult>> = OnceLock::new();
    HRESULTS.get_or_init(|| {
        csv::Reader::from_reader(HRESULTS_CSV.as_bytes())
            .deserialize()
            .collect::<Result<Vec<Hresult>, _>>()
            // The CSV is compiled in and checked by `tests::every_row_parses`.
            .expect("embedded hresults.csv is valid")
    })
}

/// The row for `code`, if the catalog knows it.
pub fn hresult(code: u32) -> Option<&'static Hresult> {
    hresults().iter().find(|h| h.code == code)
}

/// The row whose symbolic name is `name` (any case), e.g. `sl_e_vl_not_enough_count`.
pub fn hresult_by_name(name: &str) -> Option<&'static Hresult> {
    let name = name.trim();
    hresults()
        .iter()
        .filter(|h| h.has_symbol())
        .find(|h| h.name.eq_ignore_ascii_case(name))
}

/// `code` as eight upper-case hex digits with `0x`, e.g. `0xC004F038`.
pub fn hex(code: u32) -> String {
    format!("0x{code:08X}")
}

/// One line for any code: `0xC004F038 SL_E_VL_NOT_ENOUGH_COUNT: <meaning>`, or
/// `0x12345678 (unknown code)`.
pub fn summary(code: u32) -> String {
    match hresult(code) {
        Some(h) => format!("{} {}: {}", hex(code), h.name, h.meaning),
        None => format!("{} (unknown code)", hex(code)),
    }
}

/// The Win32 error inside an HRESULT of facility `FACILITY_WIN32` (`0x8007xxxx`), e.g. 1717
/// for `0x800706B5`. `None` for any other code.
pub fn win32_error(code: u32) -> Option<u16> {
    // Truncation is the point: the low 16 bits are the Win32 error.
    (code & 0xFFFF_0000 == 0x8007_0000).then_some((code & 0xFFFF) as u16)
}

/// Why a user's code could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeParseError {
    /// Nothing was given.
    #[error("no code given; expected e.g. 0xC004F038, C004F038 or -1073418184")]
    Empty,
    /// Hex digits were expected (after `0x`, or eight of them) and something else came.
    #[error("'{input}' is not a hex code; expected up to 8 hex digits, e.g. 0xC004F038")]
    BadHex {
        /// What the user typed.
        input: String,
    },
    /// A number that does not fit in 32 bits.
    #[error(
        "'{input}' is out of range; a code is 32 bits: -2147483648..=4294967295 in decimal, \
         0x0..=0xFFFFFFFF in hex"
    )]
    OutOfRange {
        /// What the user typed.
        input: String,
    },
    /// Neither hex nor decimal.
    #[error(
        "'{input}' is not a code; expected hex (0xC004F038 or C004F038) or the decimal \
         slmgr prints (-1073418184)"
    )]
    NotANumber {
        /// What the user typed.
        input: String,
    },
}

/// Reads a code as admins copy it:
///
/// - `0xC004F038` / `0XC004F038`: hex, 1 to 8 digits, any case;
/// - `C004F038`, `80070005`: exactly 8 hex digits without `0x` (any case) are hex, even when
///   they are all decimal digits, because HRESULTs are conventionally written that way;
/// - `-1073418184`: the signed decimal `slmgr` and event logs print (two's complement);
/// - `3221549112`, `0`: unsigned decimal (any digit string that is not 8 long).
///
/// # Errors
/// [`CodeParseError`] naming the problem and the expected form.
pub fn parse_code(input: &str) -> Result<u32, CodeParseError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(CodeParseError::Empty);
    }
    let bad_hex = || CodeParseError::BadHex {
        input: s.to_owned(),
    };
    let out_of_range = || CodeParseError::OutOfRange {
        input: s.to_owned(),
    };
    if let Some(digits) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad_hex());
        }
        if digits.trim_start_matches('0').len() > 8 {
            return Err(out_of_range());
        }
        return u32::from_str_radix(digits, 16).map_err(|_| out_of_range());
    }
    if s.len() == 8 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return u32::from_str_radix(s, 16).map_err(|_| bad_hex());
    }
    let (negative, digits) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        // u64 holds any digit string up to 19 digits; longer ones are out of range anyway.
        let value: u64 = digits.parse().map_err(|_| out_of_range())?;
        return if negative {
            if value > 1 << 31 {
                return Err(out_of_range());
            }
            // Two's complement of a value in 0..=2^31 fits in u32.
            Ok((value as u32).wrapping_neg())
        } else {
            u32::try_from(value).map_err(|_| out_of_range())
        };
    }
    if s.bytes().all(|b| b.is_ascii_hexdigit()) {
        // Hex without 0x but not 8 digits long, e.g. "C004F38": say it is hex gone wrong.
        return Err(bad_hex());
    }
    Err(CodeParseError::NotANumber {
        input: s.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_parses() {
        let all = hresults();
        assert_eq!(all.len(), 47);
        let mut codes: Vec<u32> = all.iter().map(|h| h.code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len(), "codes are unique");
        for h in all {
            assert!(!h.name.is_empty() && !h.meaning.is_empty(), "{}", h.hex());
        }
    }

    /// Every code of Microsoft's published list of volume-activation error codes
    /// ("Troubleshoot Windows activation error codes", and 0xC004E003 from its older form),
    /// each with a meaning, a cause and what to check (issue 12, item 12).
    #[test]
    fn microsoft_activation_error_list_is_covered() {
        let listed = [
            0x8004_FE21,
            0x8007_0005,
            0x8007_007B,
            0x8007_0490,
            0x8007_06BA,
            0x8007_232A,
            0x8007_232B,
            0x8007_251D,
            0x8009_2328,
            0xC004_B100,
            0xC004_C001,
            0xC004_C003,
            0xC004_C008,
            0xC004_C020,
            0xC004_C021,
            0xC004_E003,
            0xC004_F009,
            0xC004_F00F,
            0xC004_F014,
            0xC004_F02C,
            0xC004_F035,
            0xC004_F038,
            0xC004_F039,
            0xC004_F041,
            0xC004_F042,
            0xC004_F050,
            0xC004_F051,
            0xC004_F064,
            0xC004_F065,
            0xC004_F06C,
            0xC004_F074,
        ];
        for c in listed {
            let h = hresult(c).unwrap_or_else(|| panic!("{} is not in hresults.csv", hex(c)));
            assert!(h.typical_cause.is_some(), "{}: no cause", h.hex());
            assert!(h.what_to_check.is_some(), "{}: nothing to check", h.hex());
        }
    }

    #[test]
    fn no_host_reachable_is_not_described_as_a_response() {
        // 0xC004F074 is what a client shows when no host could be reached or all of them
        // returned errors; no valid response exists then.
        let h = hresult(code::SL_E_VL_BINDING_SERVICE_UNAVAILABLE).unwrap();
        let text = format!("{} {}", h.meaning, h.origin.describe());
        assert!(!text.contains("valid response"), "{text}");
        assert!(h.meaning.contains("could be reached"), "{}", h.meaning);
        assert!(h.meaning.contains("returned an error"), "{}", h.meaning);
    }

    #[test]
    fn codes_kmsload_derives_are_marked() {
        // Every code `client::outcome` derives (spec 8.3, 8.4) is marked derived; codes only
        // hosts send are marked relayed.
        for c in [
            code::S_OK,
            code::SL_E_VL_NOT_ENOUGH_COUNT,
            code::SL_E_VL_BINDING_SERVICE_UNAVAILABLE,
            code::WSAECONNREFUSED,
            code::WSAECONNRESET,
            code::WSAETIMEDOUT,
            code::WSAHOST_NOT_FOUND,
            code::RPC_S_SERVER_UNAVAILABLE,
            code::RPC_S_CALL_FAILED,
            code::RPC_S_UNKNOWN_IF,
            code::RPC_S_PROCNUM_OUT_OF_RANGE,
            code::RPC_S_PROTOCOL_ERROR,
        ] {
            assert_eq!(hresult(c).unwrap().kmsload, Role::Derived, "{}", hex(c));
        }
        assert_eq!(
            hresult(code::ERROR_INVALID_DATA).unwrap().kmsload,
            Role::DerivedOrRelayed
        );
        for c in [
            code::SL_E_VL_INVALID_TIMESTAMP,
            code::SL_E_VL_KEY_MANAGEMENT_SERVICE_ID_MISMATCH,
            code::SL_E_VL_BINDING_SERVICE_NOT_ENABLED,
            code::NCA_S_UNK_IF,
        ] {
            assert_eq!(hresult(c).unwrap().kmsload, Role::Relayed, "{}", hex(c));
        }
        // kmsload's SRV discovery derives the DNS codes it can tell apart.
        for c in [
            code::DNS_ERROR_RCODE_NAME_ERROR,
            code::DNS_ERROR_RCODE_SERVER_FAILURE,
            code::DNS_ERROR_RCODE_REFUSED,
            code::DNS_INFO_NO_RECORDS,
            code::ERROR_TIMEOUT,
        ] {
            assert_eq!(hresult(c).unwrap().kmsload, Role::Derived, "{}", hex(c));
        }
        // Codes of the parts of activation kmsload does not play are never kmsload's.
        for h in hresults() {
            let elsewhere = matches!(
                h.origin,
                Origin::LicensingService | Origin::ActivationServer
            );
            if elsewhere {
                assert_eq!(h.kmsload, Role::NotProduced, "{}", h.hex());
            }
            if h.kmsload == Role::NotProduced {
                let other = elsewhere || h.origin == Origin::Dns;
                assert!(other, "{} is kmsload's own kind of code", h.hex());
            }
        }
    }

    #[test]
    fn named_constants_match_the_csv() {
        let named = [
            (code::S_OK, "S_OK"),
            (code::SL_E_VL_NOT_ENOUGH_COUNT, "SL_E_VL_NOT_ENOUGH_COUNT"),
            (code::SL_E_VL_INVALID_TIMESTAMP, "SL_E_VL_INVALID_TIMESTAMP"),
            (
                code::SL_E_VL_KEY_MANAGEMENT_SERVICE_ID_MISMATCH,
                "SL_E_VL_KEY_MANAGEMENT_SERVICE_ID_MISMATCH",
            ),
            (code::ERROR_INVALID_DATA, "ERROR_INVALID_DATA"),
            (
                code::SL_E_VL_BINDING_SERVICE_UNAVAILABLE,
                "SL_E_VL_BINDING_SERVICE_UNAVAILABLE",
            ),
            (
                code::SL_REMAPPING_SP_STATUS_INVALIDARG,
                "SL_REMAPPING_SP_STATUS_INVALIDARG",
            ),
            (
                code::SL_E_VL_BINDING_SERVICE_NOT_ENABLED,
                "SL_E_VL_BINDING_SERVICE_NOT_ENABLED",
            ),
            (
                code::SL_E_VL_KEY_MANAGEMENT_SERVICE_NOT_ACTIVATED,
                "SL_E_VL_KEY_MANAGEMENT_SERVICE_NOT_ACTIVATED",
            ),
            (code::WSAECONNREFUSED, "WSAECONNREFUSED"),
            (code::WSAECONNRESET, "WSAECONNRESET"),
            (code::WSAETIMEDOUT, "WSAETIMEDOUT"),
            (code::WSAHOST_NOT_FOUND, "WSAHOST_NOT_FOUND"),
            (
                code::DNS_ERROR_RCODE_NAME_ERROR,
                "DNS_ERROR_RCODE_NAME_ERROR",
            ),
            (
                code::DNS_ERROR_RCODE_SERVER_FAILURE,
                "DNS_ERROR_RCODE_SERVER_FAILURE",
            ),
            (code::DNS_ERROR_RCODE_REFUSED, "DNS_ERROR_RCODE_REFUSED"),
            (code::DNS_INFO_NO_RECORDS, "DNS_INFO_NO_RECORDS"),
            (code::ERROR_TIMEOUT, "ERROR_TIMEOUT"),
            (code::RPC_S_SERVER_UNAVAILABLE, "RPC_S_SERVER_UNAVAILABLE"),
            (code::RPC_S_CALL_FAILED, "RPC_S_CALL_FAILED"),
            (code::RPC_S_UNKNOWN_IF, "RPC_S_UNKNOWN_IF"),
            (
                code::RPC_S_PROCNUM_OUT_OF_RANGE,
                "RPC_S_PROCNUM_OUT_OF_RANGE",
            ),
            (code::RPC_S_PROTOCOL_ERROR, "RPC_S_PROTOCOL_ERROR"),
            (code::NCA_S_UNK_IF, "nca_s_unk_if"),
            (code::NCA_S_OP_RNG_ERROR, "nca_s_op_rng_error"),
            (code::NCA_S_PROTO_ERROR, "nca_s_proto_error"),
        ];
        let produced = hresults()
            .iter()
            .filter(|h| h.kmsload != Role::NotProduced)
            .count();
        assert_eq!(
            named.len(),
            produced,
            "every code kmsload produces has a constant"
        );
        for (value, name) in named {
            let h = hresult(value).unwrap_or_else(|| panic!("{name} not in CSV"));
            assert_eq!(h.name, name);
        }
    }

    #[test]
    fn origins_follow_spec_sections() {
        let origin = |c| hresult(c).unwrap().origin;
        assert_eq!(origin(code::SL_E_VL_NOT_ENOUGH_COUNT), Origin::Client);
        assert_eq!(origin(code::SL_E_VL_INVALID_TIMESTAMP), Origin::Host);
        assert_eq!(origin(code::WSAETIMEDOUT), Origin::Transport);
        assert_eq!(origin(code::RPC_S_UNKNOWN_IF), Origin::RpcFault);
        assert_eq!(origin(code::NCA_S_UNK_IF), Origin::RpcFaultStatus);
    }

    #[test]
    fn fault_statuses_map_as_spec_8_1_says() {
        // Spec 8.1: nca_s_unk_if → 1717, nca_s_op_rng_error → 1745, nca_s_proto_error → 1728.
        let pairs = [
            (code::NCA_S_UNK_IF, code::RPC_S_UNKNOWN_IF, 1717),
            (
                code::NCA_S_OP_RNG_ERROR,
                code::RPC_S_PROCNUM_OUT_OF_RANGE,
                1745,
            ),
            (code::NCA_S_PROTO_ERROR, code::RPC_S_PROTOCOL_ERROR, 1728),
        ];
        for (status, mapped, win32) in pairs {
            let s = hresult(status).unwrap();
            assert_eq!(s.maps_to().map(|h| h.code), Some(mapped), "{}", s.name);
            let m = hresult(mapped).unwrap();
            assert_eq!(m.fault_status().map(|h| h.code), Some(status), "{}", m.name);
            assert_eq!(win32_error(mapped), Some(win32));
        }
        let statuses = hresults()
            .iter()
            .filter(|h| h.origin == Origin::RpcFaultStatus)
            .count();
        assert_eq!(statuses, 3, "every fault status row is covered above");
    }

    #[test]
    fn non_fault_rows_have_no_mapping() {
        let h = hresult(code::SL_E_VL_NOT_ENOUGH_COUNT).unwrap();
        assert_eq!(h.maps_to(), None);
        assert_eq!(h.fault_status(), None);
        assert_eq!(hresult(code::WSAETIMEDOUT).unwrap().fault_status(), None);
    }

    #[test]
    fn dash_cells_are_none() {
        let ok = hresult(code::S_OK).unwrap();
        assert_eq!(ok.typical_cause, None);
        assert_eq!(ok.what_to_check, None);
        assert!(
            hresult(code::SL_E_VL_NOT_ENOUGH_COUNT)
                .unwrap()
                .typical_cause
                .is_some()
        );
    }

    #[test]
    fn parse_accepts_the_forms_admins_copy() {
        for input in [
            "0xC004F038",
            "0xc004f038",
            "0XC004F038",
            "C004F038",
            "c004f038",
            "-1073418184",
            "3221549112",
            "  0xC004F038 ",
        ] {
            assert_eq!(parse_code(input), Ok(0xC004_F038), "{input}");
        }
        assert_eq!(parse_code("0"), Ok(0));
        assert_eq!(parse_code("0x0"), Ok(0));
        assert_eq!(parse_code("00000000"), Ok(0));
        assert_eq!(parse_code("+5"), Ok(5));
        assert_eq!(parse_code("0x00000000C004F038"), Ok(0xC004_F038));
        assert_eq!(parse_code("-2147483648"), Ok(0x8000_0000));
        assert_eq!(parse_code("4294967295"), Ok(u32::MAX));
        assert_eq!(parse_code("-1"), Ok(u32::MAX));
    }

    #[test]
    fn eight_digits_are_hex_even_when_decimal_looking() {
        assert_eq!(parse_code("80070005"), Ok(0x8007_0005));
        assert_eq!(parse_code("1C010003"), Ok(code::NCA_S_UNK_IF));
        // Not eight long: decimal.
        assert_eq!(parse_code("1717"), Ok(1717));
    }

    #[test]
    fn parse_rejects_empty() {
        assert_eq!(parse_code(""), Err(CodeParseError::Empty));
        assert_eq!(parse_code("   "), Err(CodeParseError::Empty));
    }

    #[test]
    fn parse_rejects_bad_hex() {
        assert!(matches!(
            parse_code("0x"),
            Err(CodeParseError::BadHex { .. })
        ));
        assert!(matches!(
            parse_code("0xC004G038"),
            Err(CodeParseError::BadHex { .. })
        ));
        assert!(matches!(
            parse_code("C004F38"),
            Err(CodeParseError::BadHex { .. })
        ));
    }

    #[test]
    fn parse_rejects_out_of_range() {
        for input in [
            "0x1C004F038",
            "4294967296",
            "-2147483649",
            "99999999999999999999999",
        ] {
            assert!(
                matches!(parse_code(input), Err(CodeParseError::OutOfRange { .. })),
                "{input}"
            );
        }
    }

    #[test]
    fn parse_rejects_words() {
        for input in ["not-enough", "-", "--5", "12.5", "0x-5"] {
            let err = parse_code(input).unwrap_err();
            assert!(
                matches!(
                    err,
                    CodeParseError::NotANumber { .. } | CodeParseError::BadHex { .. }
                ),
                "{input}: {err:?}"
            );
        }
        let msg = parse_code("hello").unwrap_err().to_string();
        assert!(
            msg.contains("'hello'") && msg.contains("0xC004F038"),
            "{msg}"
        );
    }

    #[test]
    fn summary_names_known_and_unknown_codes() {
        assert_eq!(
            summary(0xC004_F038),
            format!(
                "0xC004F038 SL_E_VL_NOT_ENOUGH_COUNT: {}",
                hresult(0xC004_F038).unwrap().meaning
            )
        );
        assert_eq!(summary(0x1234_5678), "0x12345678 (unknown code)");
        assert_eq!(summary(5), "0x00000005 (unknown code)");
    }

    #[test]
    fn lookup_by_name_ignores_case() {
        assert_eq!(
            hresult_by_name("sl_e_vl_not_enough_count").map(|h| h.code),
            Some(0xC004_F038)
        );
        assert_eq!(
            hresult_by_name("NCA_S_UNK_IF").map(|h| h.code),
            Some(code::NCA_S_UNK_IF)
        );
        assert_eq!(hresult_by_name("E_FAIL"), None);
        assert_eq!(
            hresult_by_name("DNS_ERROR_RCODE_NAME_ERROR").map(|h| h.code),
            Some(0x8007_232B)
        );
        // Rows without a published name are not found by their placeholder.
        assert_eq!(hresult_by_name("(no symbolic name)"), None);
    }

    #[test]
    fn win32_facility_only() {
        assert_eq!(win32_error(0x8007_0005), Some(5));
        assert_eq!(win32_error(0xC004_F038), None);
        assert_eq!(win32_error(0x0007_0005), None);
    }

    proptest::proptest! {
        #[test]
        fn every_printed_form_parses_back(c: u32) {
            proptest::prop_assert_eq!(parse_code(&hex(c)), Ok(c));
            proptest::prop_assert_eq!(parse_code(&format!("{c:08x}")), Ok(c));
            // Decimal, signed as slmgr prints it (reinterpreting the bits is the point) and
            // unsigned; eight digits without a sign read as hex by design.
            for decimal in [(c as i32).to_string(), c.to_string()] {
                if decimal.len() != 8 {
                    proptest::prop_assert_eq!(parse_code(&decimal), Ok(c));
                }
            }
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,24}") {
            let _ = parse_code(&s);
        }
    }
}
