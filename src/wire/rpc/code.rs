//! Code points of the common header and of results: PTYPE, PFC flags, NCA status codes,
//! provider reject and bind_nak reasons (spec 4.1, 4.3, 4.4, 4.7). Each is a newtype over the
//! wire integer with named constants, so an unknown value is kept and printed in hex.

use std::fmt;

/// A PDU type (spec 4.1). Unknown values are kept; [`Ptype::name`] says whether it is known.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ptype(pub u8);

impl Ptype {
    /// request, client → host (spec 4.5).
    pub const REQUEST: Self = Self(0);
    /// response, host → client (spec 4.6).
    pub const RESPONSE: Self = Self(2);
    /// fault, host → client (spec 4.7).
    pub const FAULT: Self = Self(3);
    /// bind, client → host (spec 4.2).
    pub const BIND: Self = Self(11);
    /// bind_ack, host → client (spec 4.3).
    pub const BIND_ACK: Self = Self(12);
    /// bind_nak, host → client (spec 4.4).
    pub const BIND_NAK: Self = Self(13);
    /// alter_context, client → host (spec 4.2).
    pub const ALTER_CONTEXT: Self = Self(14);
    /// alter_context_resp, host → client (spec 4.3).
    pub const ALTER_CONTEXT_RESP: Self = Self(15);

    /// The specification's name, or `None` for a type KMS does not use.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::REQUEST => "request",
            Self::RESPONSE => "response",
            Self::FAULT => "fault",
            Self::BIND => "bind",
            Self::BIND_ACK => "bind_ack",
            Self::BIND_NAK => "bind_nak",
            Self::ALTER_CONTEXT => "alter_context",
            Self::ALTER_CONTEXT_RESP => "alter_context_resp",
            _ => return None,
        })
    }
}

impl fmt::Debug for Ptype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "ptype({:#04x})", self.0),
        }
    }
}

impl fmt::Display for Ptype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The `pfc_flags` bit mask (spec 4.10).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PfcFlags(pub u8);

impl PfcFlags {
    /// `PFC_FIRST_FRAG`: first fragment of a call.
    pub const FIRST_FRAG: Self = Self(0x01);
    /// `PFC_LAST_FRAG`: last fragment of a call.
    pub const LAST_FRAG: Self = Self(0x02);
    /// `PFC_PENDING_CANCEL` (MS-RPCE: header signing supported, in a bind).
    pub const PENDING_CANCEL: Self = Self(0x04);
    /// Reserved bit 3.
    pub const RESERVED_1: Self = Self(0x08);
    /// `PFC_CONC_MPX`: concurrent multiplexing ("RPC_PF_MULTIPLEX").
    pub const CONC_MPX: Self = Self(0x10);
    /// `PFC_DID_NOT_EXECUTE`: set in a fault when the call was not executed.
    pub const DID_NOT_EXECUTE: Self = Self(0x20);
    /// `PFC_MAYBE`: maybe semantics.
    pub const MAYBE: Self = Self(0x40);
    /// `PFC_OBJECT_UUID`: an object UUID follows the request's fixed fields.
    pub const OBJECT_UUID: Self = Self(0x80);

    /// FIRST_FRAG | LAST_FRAG, 0x03: a request, response or alter_context_resp.
    pub const SINGLE: Self = Self(0x03);
    /// FIRST_FRAG | LAST_FRAG | CONC_MPX, 0x13: a Windows-like bind.
    pub const SINGLE_MPX: Self = Self(0x13);
    /// FIRST_FRAG | LAST_FRAG | DID_NOT_EXECUTE, 0x23: a fault.
    pub const SINGLE_NOT_EXECUTED: Self = Self(0x23);

    const NAMES: [(Self, &'static str); 8] = [
        (Self::FIRST_FRAG, "FIRST"),
        (Self::LAST_FRAG, "LAST"),
        (Self::PENDING_CANCEL, "PENDING_CANCEL"),
        (Self::RESERVED_1, "RESERVED_1"),
        (Self::CONC_MPX, "CONC_MPX"),
        (Self::DID_NOT_EXECUTE, "DID_NOT_EXECUTE"),
        (Self::MAYBE, "MAYBE"),
        (Self::OBJECT_UUID, "OBJECT_UUID"),
    ];

    /// True when every bit of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// These flags with the bits of `other` set or cleared.
    #[must_use]
    pub const fn with(self, other: Self, on: bool) -> Self {
        if on {
            Self(self.0 | other.0)
        } else {
            Self(self.0 & !other.0)
        }
    }
}

impl std::ops::BitOr for PfcFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl fmt::Debug for PfcFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0");
        }
        let mut first = true;
        for (bit, name) in Self::NAMES {
            if self.contains(bit) {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

impl fmt::Display for PfcFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#04x}", self.0)
    }
}

/// A DCE/NCA status code carried by a fault PDU (spec 4.7, 8.1).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NcaStatus(pub u32);

impl NcaStatus {
    /// `nca_s_op_rng_error`: opnum out of range.
    pub const OP_RNG_ERROR: Self = Self(0x1C01_0002);
    /// `nca_s_unk_if`: unknown interface (request on a context that was never negotiated).
    pub const UNK_IF: Self = Self(0x1C01_0003);
    /// `nca_s_proto_error`: protocol error (vlmcsd pedantic builds, RPC version not 5.0).
    pub const PROTO_ERROR: Self = Self(0x1C01_000B);

    /// The specification's name, or `None` for a status not listed in spec 4.7.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::OP_RNG_ERROR => "nca_s_op_rng_error",
            Self::UNK_IF => "nca_s_unk_if",
            Self::PROTO_ERROR => "nca_s_proto_error",
            _ => return None,
        })
    }

    /// The HRESULT Windows reports for this status (spec 8.1: `0x80070000 | Win32 error`):
    /// RPC_S_PROCNUM_OUT_OF_RANGE, RPC_S_UNKNOWN_IF, RPC_S_PROTOCOL_ERROR. `None` for other
    /// statuses.
    pub fn hresult(self) -> Option<u32> {
        Some(match self {
            Self::OP_RNG_ERROR => 0x8007_06D1,
            Self::UNK_IF => 0x8007_06B5,
            Self::PROTO_ERROR => 0x8007_06C0,
            _ => return None,
        })
    }
}

impl fmt::Debug for NcaStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name}({:#010x})", self.0),
            None => write!(f, "{:#010x}", self.0),
        }
    }
}

impl fmt::Display for NcaStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Why a presentation context was rejected (spec 4.3, `reason` of a result 1 or 2).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RejectReason(pub u16);

impl RejectReason {
    /// 0, reason not specified.
    pub const NOT_SPECIFIED: Self = Self(0);
    /// 1, abstract syntax not supported: the host does not implement the KMS interface.
    pub const ABSTRACT_SYNTAX_NOT_SUPPORTED: Self = Self(1);
    /// 2, proposed transfer syntaxes not supported.
    pub const TRANSFER_SYNTAXES_NOT_SUPPORTED: Self = Self(2);
    /// 3, local limit exceeded.
    pub const LOCAL_LIMIT_EXCEEDED: Self = Self(3);
}

impl fmt::Debug for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match *self {
            Self::NOT_SPECIFIED => "not_specified",
            Self::ABSTRACT_SYNTAX_NOT_SUPPORTED => "abstract_syntax_not_supported",
            Self::TRANSFER_SYNTAXES_NOT_SUPPORTED => "transfer_syntaxes_not_supported",
            Self::LOCAL_LIMIT_EXCEEDED => "local_limit_exceeded",
            _ => return write!(f, "{:#06x}", self.0),
        };
        write!(f, "{name}({})", self.0)
    }
}

/// Why a host refused a whole bind (spec 4.4, `provider_reject_reason` of a bind_nak).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NakReason(pub u16);

impl NakReason {
    /// 0, reason not specified.
    pub const NOT_SPECIFIED: Self = Self(0);
    /// 1, temporary congestion.
    pub const TEMPORARY_CONGESTION: Self = Self(1);
    /// 2, local limit exceeded.
    pub const LOCAL_LIMIT_EXCEEDED: Self = Self(2);
    /// 3, called presentation address unknown.
    pub const CALLED_PADDR_UNKNOWN: Self = Self(3);
    /// 4, protocol version not supported.
    pub const PROTOCOL_VERSION_NOT_SUPPORTED: Self = Self(4);
    /// 5, default context not supported.
    pub const DEFAULT_CONTEXT_NOT_SUPPORTED: Self = Self(5);
    /// 6, user data not readable.
    pub const USER_DATA_NOT_READABLE: Self = Self(6);
    /// 7, no PSAP available.
    pub const NO_PSAP_AVAILABLE: Self = Self(7);
}

impl fmt::Debug for NakReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match *self {
            Self::NOT_SPECIFIED => "not_specified",
            Self::TEMPORARY_CONGESTION => "temporary_congestion",
            Self::LOCAL_LIMIT_EXCEEDED => "local_limit_exceeded",
            Self::CALLED_PADDR_UNKNOWN => "called_paddr_unknown",
            Self::PROTOCOL_VERSION_NOT_SUPPORTED => "protocol_version_not_supported",
            Self::DEFAULT_CONTEXT_NOT_SUPPORTED => "default_context_not_supported",
            Self::USER_DATA_NOT_READABLE => "user_data_not_readable",
            Self::NO_PSAP_AVAILABLE => "no_psap_available",
            _ => return write!(f, "{:#06x}", self.0),
        };
        write!(f, "{name}({})", self.0)
    }
}
