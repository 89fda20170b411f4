//! The one mapping from what happened in an attempt to what a real client reports
//! (spec 7.6, 8.1, 8.3, 8.4). Every later part of kmsload (the `activate` output, the
//! recorder, reports, gates) reuses [`classify`]; the matches below have no wildcard arm on
//! kmsload's own error types, so a new failure kind does not build until someone decides its
//! code.
//!
//! | what happened | outcome | code shown | cause code |
//! |---|---|---|---|
//! | valid response, count ≥ N | activated | 0x00000000 | |
//! | valid response, count < N | not_activated | 0xC004F038 | |
//! | HRESULT in the response stub | not_activated | that HRESULT | |
//! | host name does not resolve | failed | 0xC004F074 | 0x80072AF9 |
//! | connect refused / timed out / failed | failed | 0xC004F074 | 0x8007274D / 0x8007274C / 0x800706BA |
//! | no free local port, too many open files (kmsload's own limits) | failed | 0xC004F074 | 0x800706BA |
//! | bind refused, malformed bind_ack, closed in bind | failed | 0xC004F074 | 0x800706BA |
//! | reset / timeout in any phase | failed | 0xC004F074 | 0x80072746 / 0x8007274C |
//! | closed after the request was sent | failed | 0xC004F074 | 0x800706BE |
//! | fault PDU | failed | 0xC004F074 | 0x800706B5 / 0x800706D1 / 0x800706C0 |
//! | bytes that are not DCE/RPC, malformed response PDU | failed | 0xC004F074 | 0x800706C0 |
//! | response fails checks 2-13 | failed | 0x8007000D | |
//!
//! Windows reports 0xC004F074 when no host could be used and logs the RPC/socket error
//! underneath (spec 8.3); which Win32 code Windows logs for each network condition is the
//! spec's convention (8.4), not an observation.
//!
//! A connect that fails because the *load generator* ran out of something (a free local
//! port, a file descriptor) is shown with the code a real client in that state would show,
//! but gets its own cause, [`Cause::LocalLimit`], labelled `local:...`, with a fix in
//! [`local_limit_hint`]: such failures say nothing about the host, and a capacity figure
//! must not count them against it.

use std::io;

use serde::Serialize;

use super::{ClientError, Phase, Reply};
use crate::catalog::hresult::code;
use crate::wire::rpc::NcaStatus;
use crate::wire::session::SessionError;

/// How an attempt ended: the three outcomes of [`classify`], and the one outcome type the
/// recorder, the reports and the gates use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The host answered and the client would be activated.
    Activated,
    /// The host answered, and the client is not activated (a refusal code, or a count below
    /// the client's N: 0xC004F038).
    NotActivated,
    /// No usable answer: transport, RPC or protocol failure, timeout.
    Failed,
}

impl Outcome {
    /// All outcomes, in summary order.
    pub const ALL: [Self; 3] = [Self::Activated, Self::NotActivated, Self::Failed];

    /// The name used in JSON and CSV.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Activated => "activated",
            Self::NotActivated => "not_activated",
            Self::Failed => "failed",
        }
    }

    /// Position in [`Outcome::ALL`], for arrays kept per outcome (the recorder's).
    pub(crate) fn index(self) -> usize {
        match self {
            Self::Activated => 0,
            Self::NotActivated => 1,
            Self::Failed => 2,
        }
    }
}

/// Why an attempt ended the way it did, finer than the code a user sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cause {
    /// Count at or above the threshold.
    Activated,
    /// Count below the client's required count.
    LowCount,
    /// The host refused with an HRESULT.
    HostRefused,
    /// The host name did not resolve.
    ResolveFailed,
    /// Nothing listens (TCP RST on connect).
    ConnectRefused,
    /// Connect did not complete in time.
    ConnectTimeout,
    /// Connect failed otherwise (unreachable, ...).
    ConnectFailed,
    /// kmsload itself ran out of a local resource before the connect left the machine.
    LocalLimit(LocalLimit),
    /// A phase after connect ran out of time.
    Timeout(Phase),
    /// The connection was reset.
    Reset(Phase),
    /// The host closed the connection before answering.
    Closed(Phase),
    /// The host closed the connection in the middle of a PDU.
    Truncated(Phase),
    /// The host's bytes are not DCE/RPC, or a PDU is malformed.
    ProtocolError(Phase),
    /// bind_nak, or no usable transfer syntax.
    BindRefused,
    /// A fault PDU with this NCA status.
    Fault(u32),
    /// The response failed this check of spec 7.6.
    InvalidResponse(u8),
    /// The request could not be encoded.
    NotEncodable,
    /// Discovery's DNS lookup failed (see [`crate::discover`]).
    Dns(super::DnsCause),
    /// Every host discovery found is outside loopback and none was confirmed: nothing was
    /// sent.
    NotConfirmed,
}

impl Cause {
    /// A short label for tallies and event rows, e.g. `timeout:request`.
    pub fn label(self) -> &'static str {
        use Phase::{Bind, Connect, Request};
        match self {
            Self::Activated => "activated",
            Self::LowCount => "count_below_threshold",
            Self::HostRefused => "host_refused",
            Self::ResolveFailed => "resolve_failed",
            Self::ConnectRefused => "connect_refused",
            Self::ConnectTimeout | Self::Timeout(Connect) => "timeout:connect",
            Self::ConnectFailed => "connect_failed",
            Self::LocalLimit(LocalLimit::NoFreePort) => "local:no_free_port",
            Self::LocalLimit(LocalLimit::TooManyOpenFiles) => "local:too_many_open_files",
            Self::Timeout(Bind) => "timeout:bind",
            Self::Timeout(Request) => "timeout:request",
            Self::Reset(Connect) | Self::Reset(Bind) => "reset:bind",
            Self::Reset(Request) => "reset:request",
            Self::Closed(Connect) | Self::Closed(Bind) => "closed:bind",
            Self::Closed(Request) => "closed:request",
            Self::Truncated(Connect) | Self::Truncated(Bind) => "truncated:bind",
            Self::Truncated(Request) => "truncated:request",
            Self::ProtocolError(Connect) | Self::ProtocolError(Bind) => "protocol_error:bind",
            Self::ProtocolError(Request) => "protocol_error:request",
            Self::BindRefused => "bind_refused",
            Self::Fault(_) => "rpc_fault",
            Self::InvalidResponse(_) => "invalid_response",
            Self::NotEncodable => "not_encodable",
            Self::Dns(dns) => dns.label(),
            Self::NotConfirmed => "not_confirmed",
        }
    }
}

/// A limit of the machine kmsload runs on, not of the host under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LocalLimit {
    /// EADDRNOTAVAIL / EADDRINUSE: every local port towards the target is taken (many in
    /// TIME_WAIT after new-connection runs).
    NoFreePort,
    /// EMFILE / ENFILE: the process or system open-file limit is reached.
    TooManyOpenFiles,
}

/// The sentence reports print under the cause table for `count` attempts with a `local:...`
/// cause label (as [`Cause::label`] writes it): that they are kmsload's failures and what
/// fixes them. `None` for every other label.
pub fn local_limit_note(label: &str, count: u64) -> Option<String> {
    local_limit_hint(label).map(|hint| {
        format!("{count} attempts failed on kmsload's side, not the host's ({label}): {hint}.")
    })
}

/// What to do about a `local:...` cause label; `None` for every other label.
pub fn local_limit_hint(label: &str) -> Option<&'static str> {
    match label {
        "local:no_free_port" => Some(
            "kmsload ran out of local ports towards the target (connections in TIME_WAIT): list \
             more addresses in `source_addresses`, use `connection = \"keep-alive\"`, or lower the rate",
        ),
        "local:too_many_open_files" => Some(
            "kmsload reached its open-file limit: raise it (`ulimit -n`) or lower `max_in_flight`",
        ),
        _ => None,
    }
}

/// Linux (and BSD) errno values the standard library has no stable `ErrorKind` for.
const ENFILE: i32 = 23;
const EMFILE: i32 = 24;

/// The classification of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// activated / not_activated / failed.
    pub outcome: Outcome,
    /// The HRESULT a real client shows (0 on success).
    pub hresult: u32,
    /// The RPC/socket error underneath a 0xC004F074, when there is one.
    pub cause_code: Option<u32>,
    /// Why, in kmsload's terms.
    pub cause: Cause,
}

impl Verdict {
    fn failed(cause: Cause, cause_code: u32) -> Self {
        Self {
            outcome: Outcome::Failed,
            hresult: code::SL_E_VL_BINDING_SERVICE_UNAVAILABLE,
            cause_code: Some(cause_code),
            cause,
        }
    }
}

/// Classifies an attempt's result. Exhaustive: every error kmsload can produce has exactly
/// one code here.
pub fn classify(result: &Result<Reply, ClientError>) -> Verdict {
    match result {
        Ok(Reply::Response(resp)) if resp.is_activated() => Verdict {
            outcome: Outcome::Activated,
            hresult: code::S_OK,
            cause_code: None,
            cause: Cause::Activated,
        },
        Ok(Reply::Response(_)) => Verdict {
            outcome: Outcome::NotActivated,
            hresult: code::SL_E_VL_NOT_ENOUGH_COUNT,
            cause_code: None,
            cause: Cause::LowCount,
        },
        Ok(Reply::Refused(hresult)) => Verdict {
            outcome: Outcome::NotActivated,
            hresult: *hresult,
            cause_code: None,
            cause: Cause::HostRefused,
        },
        Err(e) => classify_error(e),
    }
}

fn classify_error(e: &ClientError) -> Verdict {
    match e {
        ClientError::Resolve { .. } => {
            Verdict::failed(Cause::ResolveFailed, code::WSAHOST_NOT_FOUND)
        }
        ClientError::Connect { kind, os_error, .. } => match (kind, os_error) {
            (io::ErrorKind::ConnectionRefused, _) => {
                Verdict::failed(Cause::ConnectRefused, code::WSAECONNREFUSED)
            }
            (io::ErrorKind::TimedOut, _) => {
                Verdict::failed(Cause::ConnectTimeout, code::WSAETIMEDOUT)
            }
            (io::ErrorKind::AddrNotAvailable | io::ErrorKind::AddrInUse, _) => Verdict::failed(
                Cause::LocalLimit(LocalLimit::NoFreePort),
                code::RPC_S_SERVER_UNAVAILABLE,
            ),
            (_, Some(EMFILE | ENFILE)) => Verdict::failed(
                Cause::LocalLimit(LocalLimit::TooManyOpenFiles),
                code::RPC_S_SERVER_UNAVAILABLE,
            ),
            _ => Verdict::failed(Cause::ConnectFailed, code::RPC_S_SERVER_UNAVAILABLE),
        },
        ClientError::Timeout {
            phase: Phase::Connect,
            ..
        } => Verdict::failed(Cause::ConnectTimeout, code::WSAETIMEDOUT),
        ClientError::Timeout { phase, .. } => {
            Verdict::failed(Cause::Timeout(*phase), code::WSAETIMEDOUT)
        }
        ClientError::Io { phase, kind, .. } => match kind {
            io::ErrorKind::TimedOut => Verdict::failed(Cause::Timeout(*phase), code::WSAETIMEDOUT),
            _ => Verdict::failed(Cause::Reset(*phase), code::WSAECONNRESET),
        },
        ClientError::Closed { phase, partial } => {
            let cause = if *partial {
                Cause::Truncated(*phase)
            } else {
                Cause::Closed(*phase)
            };
            let cause_code = match phase {
                Phase::Request => code::RPC_S_CALL_FAILED,
                Phase::Connect | Phase::Bind => code::RPC_S_SERVER_UNAVAILABLE,
            };
            Verdict::failed(cause, cause_code)
        }
        ClientError::Framing { phase, .. } => {
            Verdict::failed(Cause::ProtocolError(*phase), code::RPC_S_PROTOCOL_ERROR)
        }
        ClientError::Rpc { phase, error } => classify_rpc(*phase, error),
        ClientError::Verify(error) => Verdict {
            outcome: Outcome::Failed,
            hresult: code::ERROR_INVALID_DATA,
            cause_code: None,
            cause: Cause::InvalidResponse(error.check()),
        },
        ClientError::Encode(_) => Verdict {
            outcome: Outcome::Failed,
            hresult: code::ERROR_INVALID_DATA,
            cause_code: None,
            cause: Cause::NotEncodable,
        },
    }
}

/// Faults map to the Win32 RPC error of spec 8.1; a bind the host would not complete is
/// "RPC server unavailable"; anything else malformed is a protocol error.
fn classify_rpc(phase: Phase, error: &SessionError) -> Verdict {
    let refused = || Verdict::failed(Cause::BindRefused, code::RPC_S_SERVER_UNAVAILABLE);
    let malformed = || Verdict::failed(Cause::ProtocolError(phase), code::RPC_S_PROTOCOL_ERROR);
    match error {
        SessionError::Fault { status, .. } => {
            Verdict::failed(Cause::Fault(status.0), fault_hresult(*status))
        }
        // The host would not complete the bind: nothing usable is listening (spec 8.4).
        SessionError::BindRejected { .. }
        | SessionError::AbstractSyntaxRejected { .. }
        | SessionError::NoTransferSyntax => refused(),
        // Malformed or out-of-sequence answers.
        SessionError::Pdu(_)
        | SessionError::Stub(_)
        | SessionError::UnexpectedPdu { .. }
        | SessionError::CallIdMismatch { .. }
        | SessionError::ResultCount { .. }
        | SessionError::UnexpectedResult { .. }
        | SessionError::ContextMismatch { .. }
        | SessionError::CancelCount(_)
        | SessionError::EmptyResponse => malformed(),
        // Our own request could not be sent as the host negotiated: the call never left.
        SessionError::PayloadTooLarge { .. } | SessionError::OutOfOrder { .. } => {
            Verdict::failed(Cause::ProtocolError(phase), code::RPC_S_CALL_FAILED)
        }
    }
}

/// The Win32 RPC error (as an HRESULT) for a fault's NCA status (spec 8.1).
pub fn fault_hresult(status: NcaStatus) -> u32 {
    match status {
        NcaStatus::UNK_IF => code::RPC_S_UNKNOWN_IF,
        NcaStatus::OP_RNG_ERROR => code::RPC_S_PROCNUM_OUT_OF_RANGE,
        NcaStatus::PROTO_ERROR => code::RPC_S_PROTOCOL_ERROR,
        _ => code::RPC_S_CALL_FAILED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect_error(e: io::Error) -> ClientError {
        ClientError::Connect {
            kind: e.kind(),
            os_error: e.raw_os_error(),
            detail: e.to_string(),
        }
    }

    fn verdict_of(e: io::Error) -> Verdict {
        classify(&Err(connect_error(e)))
    }

    #[test]
    fn connect_errors_keep_the_clients_code_and_name_kmsloads_own_limits() {
        let refused = verdict_of(io::Error::from(io::ErrorKind::ConnectionRefused));
        assert_eq!(refused.cause, Cause::ConnectRefused);
        assert_eq!(refused.cause_code, Some(code::WSAECONNREFUSED));

        // EADDRNOTAVAIL (99 on Linux) as the OS reports it.
        let no_port = verdict_of(io::Error::from(io::ErrorKind::AddrNotAvailable));
        assert_eq!(no_port.cause, Cause::LocalLimit(LocalLimit::NoFreePort));
        assert_eq!(no_port.cause.label(), "local:no_free_port");

        for errno in [EMFILE, ENFILE] {
            let files = verdict_of(io::Error::from_raw_os_error(errno));
            assert_eq!(files.cause, Cause::LocalLimit(LocalLimit::TooManyOpenFiles));
            assert_eq!(files.cause.label(), "local:too_many_open_files");
        }

        let unreachable = verdict_of(io::Error::from(io::ErrorKind::NetworkUnreachable));
        assert_eq!(unreachable.cause, Cause::ConnectFailed);

        // Whatever the cause, a real client in that state shows 0xC004F074 and the attempt
        // counts as failed.
        for v in [no_port, unreachable] {
            assert_eq!(v.outcome, Outcome::Failed);
            assert_eq!(v.hresult, code::SL_E_VL_BINDING_SERVICE_UNAVAILABLE);
            assert_eq!(v.cause_code, Some(code::RPC_S_SERVER_UNAVAILABLE));
        }
    }

    #[test]
    fn only_local_limits_have_a_hint() {
        assert!(
            local_limit_hint("local:no_free_port")
                .unwrap()
                .contains("source_addresses")
        );
        assert!(
            local_limit_hint("local:too_many_open_files")
                .unwrap()
                .contains("ulimit -n")
        );
        assert_eq!(local_limit_hint("connect_failed"), None);
        assert_eq!(local_limit_hint("timeout:request"), None);
        let note = local_limit_note("local:too_many_open_files", 7).unwrap();
        assert!(
            note.starts_with(
                "7 attempts failed on kmsload's side, not the host's (local:too_many_open_files): "
            ),
            "{note}"
        );
        assert_eq!(local_limit_note("connect_failed", 7), None);
    }
}
