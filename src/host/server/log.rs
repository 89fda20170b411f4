//! What the server logs: one [`LogEvent`] per answered request and per dropped connection,
//! each printed as one line, and the [`Logger`] they go to (stderr for `kmsload host`,
//! nothing for the in-process host, a closure in tests).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use uuid::Uuid;

use crate::catalog::lookup;
use crate::host::model::Refusal;
use crate::host::model::hresult;
use crate::wire::kms::RequestError;
use crate::wire::rpc::FrameError;
use crate::wire::session::CloseReason;
use crate::wire::{FileTime, Version};

/// Receives the server's log events (one per request, one per dropped connection).
#[derive(Clone)]
pub struct Logger(Arc<dyn Fn(&LogEvent) + Send + Sync>);

impl Logger {
    /// A logger calling `f` for every event.
    pub fn new(f: impl Fn(&LogEvent) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// One line per event on stderr (`kmsload host`).
    pub fn stderr() -> Self {
        Self::new(|event| {
            use std::io::Write;
            let _ = writeln!(io::stderr().lock(), "{event}");
        })
    }

    pub(super) fn log(&self, event: &LogEvent) {
        (self.0)(event);
    }
}

impl fmt::Debug for Logger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Logger")
    }
}

/// Something worth a log line.
#[derive(Debug, Clone)]
pub enum LogEvent {
    /// A KMS request was answered.
    Request(RequestEvent),
    /// A connection was closed for misbehaving (not for a normal close).
    Dropped {
        /// Host time.
        time: FileTime,
        /// The peer.
        peer: SocketAddr,
        /// Why.
        reason: DropReason,
    },
    /// Saving the `--state` file failed; the table in memory is intact and the save is
    /// tried again at the next interval (and at stop).
    SaveFailed {
        /// Host time.
        time: FileTime,
        /// The state file.
        path: std::path::PathBuf,
        /// What went wrong.
        error: String,
    },
    /// Accepting connections failed (e.g. out of file descriptors): at most one event per
    /// second, with the number of failures since the last one.
    AcceptErrors {
        /// Host time.
        time: FileTime,
        /// Failed accepts this event stands for.
        count: u64,
        /// The last failure.
        error: String,
    },
}

/// One answered KMS request.
#[derive(Debug, Clone)]
pub struct RequestEvent {
    /// Host time of the answer.
    pub time: FileTime,
    /// The client's address.
    pub peer: SocketAddr,
    /// The request's version (`None` when the payload was too short to have one).
    pub protocol: Option<Version>,
    /// CMID, SKU ID and KMS counted ID, when the request decoded.
    pub ids: Option<RequestIds>,
    /// What the host answered.
    pub outcome: RequestOutcome,
}

/// The identifiers of a decoded request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestIds {
    /// `ClientMachineID`.
    pub cmid: Uuid,
    /// `SkuID`.
    pub sku_id: Uuid,
    /// `KmsCountedID`.
    pub kms_id: Uuid,
}

/// What the host answered to one request.
#[derive(Debug, Clone)]
pub enum RequestOutcome {
    /// A response with count ≥ N: the client activates.
    Activated {
        /// `CurrentCount` sent.
        count: u32,
        /// The request's `RequiredClientCount`.
        required: u32,
    },
    /// A response with count < N: the client reports 0xC004F038.
    LowCount {
        /// `CurrentCount` sent.
        count: u32,
        /// The request's `RequiredClientCount`.
        required: u32,
    },
    /// The model refused; its HRESULT went into the response stub.
    Refused(Refusal),
    /// The payload did not decode; 0x8007000D went into the response stub.
    Invalid(RequestError),
}

impl RequestOutcome {
    /// The HRESULT on the wire (0 for a response).
    pub fn hresult(&self) -> u32 {
        match self {
            Self::Activated { .. } | Self::LowCount { .. } => 0,
            Self::Refused(r) => r.hresult(),
            Self::Invalid(_) => hresult::INVALID_DATA,
        }
    }
}

/// Why a connection was dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropReason {
    /// No whole PDU within the idle timeout.
    IdleTimeout,
    /// The bytes are not DCE/RPC.
    Framing(FrameError),
    /// The session refused the PDU (malformed, out of order, ...).
    Rejected(CloseReason),
    /// The peer closed in the middle of a PDU.
    Truncated,
    /// A write did not complete within the idle timeout.
    WriteTimeout,
    /// The socket failed (reset, ...).
    Io(io::ErrorKind),
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::IdleTimeout => f.write_str("idle timeout: no whole PDU in time"),
            Self::Framing(e) => write!(f, "not DCE/RPC: {e}"),
            Self::Rejected(r) => write!(f, "{r}"),
            Self::Truncated => f.write_str("peer closed in the middle of a PDU"),
            Self::WriteTimeout => f.write_str("write timed out"),
            Self::Io(kind) => write!(f, "socket error: {kind}"),
        }
    }
}

/// One line: time, peer, protocol, CMID, product, outcome, HRESULT, count (and why, when not
/// activated):
///
/// ```text
/// 2026-11-22T01:26:21Z 127.0.0.1:50112 V6 cmid=… "Windows 10/11 Enterprise" activated 0x00000000 count 25/25
/// 2026-11-22T01:26:21Z 127.0.0.1:50114 V6 cmid=… "Office 2019 Standard" refused 0xC004F042 count - (KMS ID …)
/// 2026-11-22T01:26:22Z 127.0.0.1:50120 connection dropped: idle timeout: no whole PDU in time
/// ```
impl fmt::Display for LogEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Request(r) => {
                write!(f, "{} {} ", Utc(r.time), r.peer)?;
                match r.protocol {
                    Some(v) if v.minor == 0 => write!(f, "V{} ", v.major)?,
                    Some(v) => write!(f, "V{v} ")?,
                    None => f.write_str("V? ")?,
                }
                match &r.ids {
                    Some(ids) => write!(
                        f,
                        "cmid={} \"{}\" ",
                        ids.cmid,
                        ProductLabel(ids.sku_id, ids.kms_id)
                    )?,
                    None => f.write_str("cmid=- - ")?,
                }
                match &r.outcome {
                    RequestOutcome::Activated { count, required } => {
                        write!(f, "activated 0x00000000 count {count}/{required}")
                    }
                    RequestOutcome::LowCount { count, required } => write!(
                        f,
                        "not_activated 0xC004F038 count {count}/{required} (below threshold)"
                    ),
                    RequestOutcome::Refused(refusal) => {
                        // Refusal's Display is "0xCODE: reason"; the code is written first.
                        let text = refusal.to_string();
                        let reason = text.split_once(": ").map_or(text.as_str(), |(_, r)| r);
                        write!(f, "refused 0x{:08X} count - ({reason})", refusal.hresult())
                    }
                    RequestOutcome::Invalid(e) => {
                        write!(f, "refused 0x8007000D count - (undecodable request: {e})")
                    }
                }
            }
            Self::Dropped { time, peer, reason } => {
                write!(f, "{} {peer} connection dropped: {reason}", Utc(*time))
            }
            Self::SaveFailed { time, path, error } => write!(
                f,
                "{} state NOT saved to {}: {error} (the table in memory is intact; the save \
                 is tried again at the next interval)",
                Utc(*time),
                path.display()
            ),
            Self::AcceptErrors { time, count, error } => write!(
                f,
                "{} {count} connection{} not accepted: {error}{}",
                Utc(*time),
                if *count == 1 { "" } else { "s" },
                if error.contains("Too many open files") || error.contains("os error 24") {
                    " (the open-file limit is reached: raise ulimit -n or lower --max-connections)"
                } else {
                    ""
                }
            ),
        }
    }
}

/// The catalog's product name for a SKU ID, else the KMS ID's name, else the SKU ID.
struct ProductLabel(Uuid, Uuid);

impl fmt::Display for ProductLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = lookup::by_sku_id(self.0) {
            f.write_str(&p.name)
        } else if let Some(k) = crate::host::keys::kms_id(self.1) {
            write!(f, "SKU {} of {}", self.0, k.name)
        } else {
            write!(f, "SKU {}", self.0)
        }
    }
}

/// A FILETIME as `YYYY-MM-DDTHH:MM:SSZ`.
struct Utc(FileTime);

impl fmt::Display for Utc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.unix_secs();
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        // Civil date from days since 1970-01-01 (proleptic Gregorian; H. Hinnant's method).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            rem / 3600,
            rem / 60 % 60,
            rem % 60
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_known_dates() {
        assert_eq!(
            Utc(FileTime::from_unix(0, 0)).to_string(),
            "1970-01-01T00:00:00Z"
        );
        // 2026-11-22T01:26:21Z, the model tests' T0.
        assert_eq!(
            Utc(FileTime(134_397_843_810_000_000)).to_string(),
            "2026-11-22T01:26:21Z"
        );
        assert_eq!(
            Utc(FileTime::from_unix(951_782_400, 0)).to_string(),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            Utc(FileTime::from_unix(-1, 0)).to_string(),
            "1969-12-31T23:59:59Z"
        );
    }

    #[test]
    fn request_event_line_names_product_and_outcome() {
        let event = LogEvent::Request(RequestEvent {
            time: FileTime::from_unix(0, 0),
            peer: "127.0.0.1:5000".parse().unwrap(),
            protocol: Some(Version::V6),
            ids: Some(RequestIds {
                cmid: Uuid::nil(),
                sku_id: lookup::find("Windows 10/11 Enterprise").unwrap().sku_id,
                kms_id: Uuid::nil(),
            }),
            outcome: RequestOutcome::LowCount {
                count: 3,
                required: 25,
            },
        });
        assert_eq!(
            event.to_string(),
            "1970-01-01T00:00:00Z 127.0.0.1:5000 V6 cmid=00000000-0000-0000-0000-000000000000 \"Windows 10/11 Enterprise\" not_activated 0xC004F038 count 3/25 (below threshold)"
        );
        let invalid = LogEvent::Request(RequestEvent {
            time: FileTime::from_unix(0, 0),
            peer: "127.0.0.1:5000".parse().unwrap(),
            protocol: None,
            ids: None,
            outcome: RequestOutcome::Invalid(RequestError::TooShort { actual: 2 }),
        });
        assert!(
            invalid
                .to_string()
                .ends_with("V? cmid=- - refused 0x8007000D count - (undecodable request: request payload of 2 bytes has no version)"),
            "{invalid}"
        );
    }
}
