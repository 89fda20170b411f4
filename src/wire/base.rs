//! The plaintext KMS structures every protocol version carries: the 236-byte request base
//! (spec 5.2) and the variable-size response base (spec 5.3), plus their field encodings
//! (spec 5.1): version, FILETIME, UTF-16LE names.
//!
//! Encryption, MACs and the per-version envelopes live in [`super::kms`]; this module only
//! knows the bytes inside them.
//!
//! ```text
//! request base (236 bytes)                    response base (44 + P bytes)
//!   0 u16 minor  2 u16 major                    0 u16 minor  2 u16 major
//!   4 u32 IsClientVM                            4 u32 PIDSize = P (even, 2..=128)
//!   8 u32 LicenseStatus                         8 P   KmsEPID, UTF-16LE, NUL-terminated
//!  12 u32 BindingExpiration                   8+P GUID ClientMachineID (echo)
//!  16 GUID ApplicationID                     24+P FILETIME RequestTime (echo)
//!  32 GUID SkuID                             32+P u32 CurrentCount
//!  48 GUID KmsCountedID                      36+P u32 VLActivationInterval
//!  64 GUID ClientMachineID                   40+P u32 VLRenewalInterval
//!  80 u32 RequiredClientCount
//!  84 FILETIME RequestTime
//!  92 GUID PreviousClientMachineID
//! 108 128 MachineName, 64 UTF-16LE units, NUL-terminated, zero-filled
//! ```

use std::fmt;

use uuid::Uuid;

use super::reader::{DecodeError, Reader, WriteLe};

/// A KMS protocol version as carried on the wire: `minor (u16) || major (u16)` (spec 5.1).
///
/// Any value decodes; whether a version is *supported* is decided by the caller, so an
/// unknown version is data to report (e.g. `7.0` → the host answers 0x8007000D).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version {
    /// Major version: 4, 5 or 6 for real clients.
    pub major: u16,
    /// Minor version: always 0 for real clients.
    pub minor: u16,
}

impl Version {
    /// Protocol V4 (Vista/7, Server 2008/R2, Office 2010).
    pub const V4: Self = Self { major: 4, minor: 0 };
    /// Protocol V5 (Windows 8, Server 2012, Office 2013).
    pub const V5: Self = Self { major: 5, minor: 0 };
    /// Protocol V6 (Windows 8.1 and later, Server 2012 R2 and later, Office 2016 and later).
    pub const V6: Self = Self { major: 6, minor: 0 };

    /// The version with major `major` and minor 0.
    pub const fn new(major: u16) -> Self {
        Self { major, minor: 0 }
    }

    /// Decodes the 4 wire bytes.
    pub fn from_bytes(b: [u8; 4]) -> Self {
        Self {
            minor: u16::from_le_bytes([b[0], b[1]]),
            major: u16::from_le_bytes([b[2], b[3]]),
        }
    }

    /// The 4 wire bytes.
    pub fn to_bytes(self) -> [u8; 4] {
        let mut out = [0u8; 4];
        out[..2].copy_from_slice(&self.minor.to_le_bytes());
        out[2..].copy_from_slice(&self.major.to_le_bytes());
        out
    }

    /// True for 4.0, 5.0 and 6.0, the versions real clients and hosts speak.
    pub fn is_known(self) -> bool {
        self.minor == 0 && (4..=6).contains(&self.major)
    }

    fn read(r: &mut Reader<'_>, field: &'static str) -> Result<Self, DecodeError> {
        Ok(Self::from_bytes(r.array(field)?))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// A Windows FILETIME: 100 ns intervals since 1601-01-01T00:00:00Z (spec 5.1).
///
/// `wire` never reads a clock; callers convert their own `now` with [`FileTime::from_unix`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct FileTime(pub u64);

impl FileTime {
    /// Seconds between 1601-01-01 and 1970-01-01.
    pub const UNIX_EPOCH_SECS: u64 = 11_644_473_600;
    /// FILETIME ticks per second.
    pub const TICKS_PER_SEC: u64 = 10_000_000;

    /// Converts Unix time (seconds and nanoseconds since 1970, may be negative seconds of
    /// skew applied by the caller) to a FILETIME, saturating at the ends of the range.
    pub fn from_unix(secs: i64, nanos: u32) -> Self {
        let ticks = (i128::from(secs) + i128::from(Self::UNIX_EPOCH_SECS))
            * i128::from(Self::TICKS_PER_SEC)
            + i128::from(nanos / 100);
        Self(ticks.clamp(0, i128::from(u64::MAX)) as u64)
    }

    /// Seconds since the Unix epoch (may be negative for times before 1970).
    pub fn unix_secs(self) -> i64 {
        (self.0 / Self::TICKS_PER_SEC) as i64 - Self::UNIX_EPOCH_SECS as i64
    }

    /// Adds a signed number of seconds, saturating.
    pub fn offset_secs(self, secs: i64) -> Self {
        let delta = i128::from(secs) * i128::from(Self::TICKS_PER_SEC);
        Self((i128::from(self.0) + delta).clamp(0, i128::from(u64::MAX)) as u64)
    }

    /// Signed difference `self - other` in whole seconds.
    pub fn secs_since(self, other: Self) -> i64 {
        ((i128::from(self.0) - i128::from(other.0)) / i128::from(Self::TICKS_PER_SEC)) as i64
    }
}

/// Size of the request base in bytes (spec 5.2).
pub const REQUEST_BASE_LEN: usize = 236;
/// Size of the `MachineName` field in bytes: 64 UTF-16 code units.
pub const MACHINE_NAME_LEN: usize = 128;
/// Longest machine name that fits with its NUL terminator, in UTF-16 code units.
pub const MACHINE_NAME_MAX_UNITS: usize = MACHINE_NAME_LEN / 2 - 1;
/// Largest `PIDSize` a response may carry (spec 7.6 check 5).
pub const MAX_PID_SIZE: usize = 128;

/// The request base (spec 5.2), decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestBase {
    /// Protocol version inside the base (must equal the clear version for V5/V6).
    pub version: Version,
    /// `IsClientVM`: 0 physical, 1 virtual machine; other values kept as sent.
    pub is_client_vm: u32,
    /// `LicenseStatus`: 0 unlicensed .. 6 extended grace; other values kept as sent.
    pub license_status: u32,
    /// `BindingExpiration`, minutes left in the current licence state.
    pub binding_expiration: u32,
    /// `ApplicationID`: Windows, Office 2010 or Office 2013+.
    pub application_id: Uuid,
    /// `SkuID` (activation ID) of the edition.
    pub sku_id: Uuid,
    /// `KmsCountedID`: the product group the host counts and licenses by.
    pub kms_counted_id: Uuid,
    /// `ClientMachineID` (CMID).
    pub client_machine_id: Uuid,
    /// `RequiredClientCount` (N policy).
    pub required_client_count: u32,
    /// `RequestTime`, the client's clock.
    pub request_time: FileTime,
    /// `PreviousClientMachineID`, zero unless the CMID changed.
    pub previous_client_machine_id: Uuid,
    /// `MachineName`, decoded up to the first NUL. Unpaired surrogates decode lossily.
    pub machine_name: String,
}

impl RequestBase {
    /// Parses exactly [`REQUEST_BASE_LEN`] bytes.
    ///
    /// # Errors
    /// [`DecodeError`] naming the field when `bytes` is not exactly 236 bytes long.
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let base = Self {
            version: Version::read(&mut r, "request.version")?,
            is_client_vm: r.u32("request.is_client_vm")?,
            license_status: r.u32("request.license_status")?,
            binding_expiration: r.u32("request.binding_expiration")?,
            application_id: r.guid("request.application_id")?,
            sku_id: r.guid("request.sku_id")?,
            kms_counted_id: r.guid("request.kms_counted_id")?,
            client_machine_id: r.guid("request.client_machine_id")?,
            required_client_count: r.u32("request.required_client_count")?,
            request_time: FileTime(r.u64("request.request_time")?),
            previous_client_machine_id: r.guid("request.previous_client_machine_id")?,
            machine_name: machine_name(r.take(MACHINE_NAME_LEN, "request.machine_name")?)?,
        };
        r.finish("request base")?;
        Ok(base)
    }

    /// Appends the 236 bytes of this base to `out`. A machine name longer than
    /// [`MACHINE_NAME_MAX_UNITS`] UTF-16 units is cut so the terminating NUL always fits.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.version.to_bytes());
        out.put_u32(self.is_client_vm);
        out.put_u32(self.license_status);
        out.put_u32(self.binding_expiration);
        out.put_guid(&self.application_id);
        out.put_guid(&self.sku_id);
        out.put_guid(&self.kms_counted_id);
        out.put_guid(&self.client_machine_id);
        out.put_u32(self.required_client_count);
        out.put_u64(self.request_time.0);
        out.put_guid(&self.previous_client_machine_id);
        let start = out.len();
        for unit in self
            .machine_name
            .encode_utf16()
            .take(MACHINE_NAME_MAX_UNITS)
        {
            out.put_u16(unit);
        }
        out.resize(start + MACHINE_NAME_LEN, 0);
    }

    /// The base as a fresh 236-byte vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(REQUEST_BASE_LEN);
        self.emit(&mut out);
        out
    }
}

/// The response base (spec 5.3), decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseBase {
    /// Version echoed from the request.
    pub version: Version,
    /// The host's ePID (spec 10.5), without its NUL.
    pub epid: String,
    /// CMID echoed from the request.
    pub client_machine_id: Uuid,
    /// RequestTime echoed from the request (not the host's clock).
    pub request_time: FileTime,
    /// `CurrentCount`: the host's count for this application (spec 10.2).
    pub current_count: u32,
    /// `VLActivationInterval`, minutes.
    pub activation_interval: u32,
    /// `VLRenewalInterval`, minutes.
    pub renewal_interval: u32,
}

impl ResponseBase {
    /// `PIDSize` of this base's ePID: UTF-16 bytes plus the NUL.
    pub fn pid_size(&self) -> usize {
        2 * (self.epid.encode_utf16().count() + 1)
    }

    /// Encoded length: 44 + PIDSize.
    pub fn buffer_len(&self) -> usize {
        44 + self.pid_size()
    }

    /// Parses a response base from the front of `r`, leaving the reader after it.
    ///
    /// Applies check 5 of spec 7.6: `PIDSize` even, 2..=128, and the ePID NUL-terminated
    /// with no earlier NUL.
    ///
    /// # Errors
    /// [`DecodeError`] naming the field.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = Version::read(r, "response.version")?;
        let pid_size = r.u32("response.pid_size")?;
        if pid_size % 2 != 0 || !(2..=MAX_PID_SIZE as u32).contains(&pid_size) {
            return Err(DecodeError::InvalidValue {
                field: "response.pid_size",
                value: pid_size.into(),
                reason: "must be even and 2..=128",
            });
        }
        let raw = r.take(pid_size as usize, "response.epid")?;
        // PIDSize is at most MAX_PID_SIZE (checked above): the units fit on the stack.
        let mut buf = [0u16; MAX_PID_SIZE / 2];
        let units = &mut buf[..raw.len() / 2];
        for (u, c) in units.iter_mut().zip(raw.chunks_exact(2)) {
            *u = u16::from_le_bytes([c[0], c[1]]);
        }
        let Some((&0, text)) = units.split_last() else {
            return Err(DecodeError::InvalidValue {
                field: "response.epid",
                value: 0,
                reason: "ePID is not NUL-terminated",
            });
        };
        if text.contains(&0) {
            return Err(DecodeError::InvalidValue {
                field: "response.epid",
                value: 0,
                reason: "ePID has a NUL before its end",
            });
        }
        Ok(Self {
            version,
            epid: utf16_lossy(text.iter().copied(), text.len()),
            client_machine_id: r.guid("response.client_machine_id")?,
            request_time: FileTime(r.u64("response.request_time")?),
            current_count: r.u32("response.current_count")?,
            activation_interval: r.u32("response.activation_interval")?,
            renewal_interval: r.u32("response.renewal_interval")?,
        })
    }

    /// Appends the encoded base to `out`. An ePID longer than 63 UTF-16 units is cut so
    /// `PIDSize` stays within 128.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let units = || self.epid.encode_utf16().take(MAX_PID_SIZE / 2 - 1);
        out.extend_from_slice(&self.version.to_bytes());
        out.put_u32(2 * (units().count() as u32 + 1));
        for u in units() {
            out.put_u16(u);
        }
        out.put_u16(0);
        out.put_guid(&self.client_machine_id);
        out.put_u64(self.request_time.0);
        out.put_u32(self.current_count);
        out.put_u32(self.activation_interval);
        out.put_u32(self.renewal_interval);
    }
}

/// `MachineName` (spec 5.2): at most 63 units and a NUL within the 64. A field with no NUL
/// is refused rather than read as 64 characters: no client sends one, and accepting it
/// would decode a name that [`RequestBase::emit`] cannot write back (found by fuzzing).
fn machine_name(raw: &[u8]) -> Result<String, DecodeError> {
    if !raw.chunks_exact(2).any(|c| c == [0, 0]) {
        return Err(DecodeError::InvalidValue {
            field: "request.machine_name",
            value: MACHINE_NAME_LEN as u64 / 2,
            reason: "no NUL terminator within 64 UTF-16 units",
        });
    }
    Ok(utf16_until_nul(raw))
}

fn utf16_until_nul(raw: &[u8]) -> String {
    let units = raw
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0);
    utf16_lossy(units, raw.len() / 2)
}

/// `String::from_utf16_lossy` of `units` without collecting them first: one allocation,
/// sized for `len` ASCII characters (the usual case; more grows it).
fn utf16_lossy(units: impl Iterator<Item = u16>, len: usize) -> String {
    let mut out = String::with_capacity(len);
    out.extend(char::decode_utf16(units).map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER)));
    out
}

// ---- civil dates ----------------------------------------------------------------------
// Proleptic Gregorian calendar arithmetic for day counts since 1970-01-01: the dates in an
// ePID and the UTC dates kmsload prints. Pure functions, no clock.

/// Days since 1970-01-01 of a proleptic Gregorian date. Counts in 400-year eras starting on
/// 1 March, so that the leap day is the last day of the (shifted) year.
pub fn days_from_civil(year: u16, month: u8, day: u8) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (i64::from(month) + 9) % 12;
    let day_of_shifted_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_shifted_year;
    era * 146_097 + day_of_era - 719_468
}

/// Inverse of [`days_from_civil`]; the year is returned as i64 so any day count works.
pub fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_shifted_year =
        day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_shifted_year + 2) / 153;
    let day = day_of_shifted_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // month is 1..=12 and day 1..=31 by the arithmetic above.
    (year, month as u8, day as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Plaintext of the first request in vector vlmcsd-v6-windows10-pro (spec 12.4), minus
    // the 4 padding bytes.
    const REQ: &str = "000006000000000002000000c0a800003427c95582d6714d983ed6ec3f16059f9273e62da7b72a46\
        b1ca108dd189f5884f13e258118e174d9cb291069c151148c7d014db746d3e47ba6c45afecc9a68e\
        19000000809cdf7a207add01000000000000000000000000000000006d00610069006c002e007700\
        69006e0064006f00770073002e0063006e0000000000000000000000000000000000000000000000\
        00000000000000000000000000000000000000000000000000000000000000000000000000000000\
        000000000000000000000000000000000000000000000000000000000000000000000000";

    #[test]
    fn request_base_parse_and_emit_match_spec_12_4() {
        let bytes = hex::decode(REQ).unwrap();
        assert_eq!(bytes.len(), REQUEST_BASE_LEN);
        let base = RequestBase::parse(&bytes).unwrap();
        assert_eq!(base.version, Version::V6);
        assert_eq!(base.license_status, 2);
        assert_eq!(base.binding_expiration, 43200);
        assert_eq!(
            base.sku_id.to_string(),
            "2de67392-b7a7-462a-b1ca-108dd189f588"
        );
        assert_eq!(
            base.client_machine_id.to_string(),
            "db14d0c7-6d74-473e-ba6c-45afecc9a68e"
        );
        assert_eq!(base.required_client_count, 25);
        assert_eq!(base.request_time, FileTime(134_397_843_810_000_000));
        assert_eq!(base.machine_name, "mail.windows.cn");
        assert_eq!(base.to_bytes(), bytes);
    }

    #[test]
    fn request_base_rejects_wrong_length() {
        let bytes = hex::decode(REQ).unwrap();
        assert!(matches!(
            RequestBase::parse(&bytes[..235]),
            Err(DecodeError::Truncated {
                field: "request.machine_name",
                ..
            })
        ));
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(
            RequestBase::parse(&long),
            Err(DecodeError::TrailingData { .. })
        ));
    }

    #[test]
    fn request_base_refuses_machine_name_without_nul() {
        let mut bytes = hex::decode(REQ).unwrap();
        let name = REQUEST_BASE_LEN - MACHINE_NAME_LEN;
        bytes[name..].fill(b'a');
        assert!(matches!(
            RequestBase::parse(&bytes),
            Err(DecodeError::InvalidValue {
                field: "request.machine_name",
                ..
            })
        ));
        // 63 characters and the NUL in the last unit: the longest legal name.
        bytes[REQUEST_BASE_LEN - 2..].fill(0);
        let base = RequestBase::parse(&bytes).unwrap();
        assert_eq!(
            base.machine_name.encode_utf16().count(),
            MACHINE_NAME_MAX_UNITS
        );
        assert_eq!(base.to_bytes(), bytes);
    }

    #[test]
    fn filetime_conversions() {
        // 2026-11-22T01:26:21Z
        let ft = FileTime::from_unix(1_795_310_781, 0);
        assert_eq!(ft, FileTime(134_397_843_810_000_000));
        assert_eq!(ft.unix_secs(), 1_795_310_781);
        assert_eq!(ft.offset_secs(3600).secs_since(ft), 3600);
        assert_eq!(FileTime::from_unix(i64::MIN, 0), FileTime(0));
    }

    #[test]
    fn response_base_rejects_bad_pid_size() {
        let base = ResponseBase {
            version: Version::V4,
            epid: "x".into(),
            client_machine_id: Uuid::nil(),
            request_time: FileTime(1),
            current_count: 1,
            activation_interval: 120,
            renewal_interval: 10080,
        };
        let mut bytes = Vec::new();
        base.emit(&mut bytes);
        assert_eq!(bytes.len(), base.buffer_len());
        assert_eq!(ResponseBase::read(&mut Reader::new(&bytes)).unwrap(), base);
        bytes[4] = 3;
        assert!(matches!(
            ResponseBase::read(&mut Reader::new(&bytes)),
            Err(DecodeError::InvalidValue {
                field: "response.pid_size",
                ..
            })
        ));
        bytes[4] = 4;
        bytes[8] = 0; // ePID "\0\0": NUL before the end
        assert!(matches!(
            ResponseBase::read(&mut Reader::new(&bytes)),
            Err(DecodeError::InvalidValue {
                field: "response.epid",
                ..
            })
        ));
    }
}
