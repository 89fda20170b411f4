//! Presentation contexts (spec 4.2, 4.3, 4.9): syntax and interface ids, the transfer
//! syntaxes KMS uses (NDR32, NDR64, bind-time feature negotiation), context items and
//! results, and the bind_ack's secondary address.

use std::borrow::Cow;
use std::fmt;

use uuid::Uuid;

use super::*;
use crate::wire::ndr::Syntax;
use crate::wire::reader::{DecodeError, Reader, WriteLe};

/// A syntax identifier as carried in context items and results: a UUID in GUID byte order
/// (spec 5.1) and a 32-bit version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SyntaxId {
    /// The syntax UUID.
    pub uuid: Uuid,
    /// The version.
    pub version: u32,
}

impl SyntaxId {
    /// The all-zero syntax hosts put in a rejection or a negotiate_ack.
    pub const NIL: Self = Self {
        uuid: Uuid::nil(),
        version: 0,
    };

    fn read(r: &mut Reader<'_>, field: &'static str) -> Result<Self, DecodeError> {
        Ok(Self {
            uuid: r.guid(field)?,
            version: r.u32(field)?,
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.put_guid(&self.uuid);
        out.put_u32(self.version);
    }
}

impl fmt::Display for SyntaxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} v{}", self.uuid, self.version)
    }
}

/// An interface (abstract syntax): UUID and major.minor version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InterfaceId {
    /// The interface UUID.
    pub uuid: Uuid,
    /// Major version.
    pub major: u16,
    /// Minor version.
    pub minor: u16,
}

impl InterfaceId {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            uuid: r.guid("abstract syntax")?,
            major: r.u16("abstract syntax major version")?,
            minor: r.u16("abstract syntax minor version")?,
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.put_guid(&self.uuid);
        out.put_u16(self.major);
        out.put_u16(self.minor);
    }
}

impl fmt::Display for InterfaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} v{}.{}", self.uuid, self.major, self.minor)
    }
}

/// The KMS interface, `51c82175-844e-4750-b0d8-ec255555bc06` v1.0 (spec 4).
pub const KMS_INTERFACE: InterfaceId = InterfaceId {
    uuid: Uuid::from_u128(0x51c8_2175_844e_4750_b0d8_ec25_5555_bc06),
    major: 1,
    minor: 0,
};

/// The NDR32 transfer syntax, `8a885d04-1ceb-11c9-9fe8-08002b104860` v2 (spec 4).
pub const NDR32: SyntaxId = SyntaxId {
    uuid: Uuid::from_u128(0x8a88_5d04_1ceb_11c9_9fe8_0800_2b10_4860),
    version: 2,
};

/// The NDR64 transfer syntax, `71710533-beba-4937-8319-b5dbef9ccc36` v1 (spec 4).
pub const NDR64: SyntaxId = SyntaxId {
    uuid: Uuid::from_u128(0x7171_0533_beba_4937_8319_b5db_ef9c_cc36),
    version: 1,
};

/// Fields 1-3 of the bind-time feature negotiation UUID, `6cb71c2c-9812-4540-…` (spec 4); the
/// last 8 bytes are the feature bits.
const BTFN_FIELDS: (u32, u16, u16) = (0x6cb7_1c2c, 0x9812, 0x4540);

/// The version bind-time feature negotiation is proposed with.
const BTFN_VERSION: u32 = 1;

/// BTFN feature bit 0: security context multiplexing (spec 4).
pub const BTFN_SECURITY_CONTEXT_MULTIPLEXING: u64 = 0x1;
/// BTFN feature bit 1: keep the connection on orphan (spec 4).
pub const BTFN_KEEP_CONNECTION_ON_ORPHAN: u64 = 0x2;
/// The features Windows-like clients request and hosts acknowledge: 0x3.
pub const BTFN_WINDOWS_FEATURES: u64 =
    BTFN_SECURITY_CONTEXT_MULTIPLEXING | BTFN_KEEP_CONNECTION_ON_ORPHAN;

/// A transfer syntax proposed in a context item or accepted in a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransferSyntax {
    /// NDR 2.0 (32-bit), [`NDR32`].
    Ndr32,
    /// NDR64, [`NDR64`].
    Ndr64,
    /// Bind-time feature negotiation: `6cb71c2c-9812-4540-` + the feature bits as a
    /// little-endian u64 in the last 8 bytes, version 1.
    Btfn {
        /// Requested feature bits (Windows: 0x3).
        features: u64,
    },
    /// Any other syntax, or a known UUID with another version.
    Other(SyntaxId),
}

impl TransferSyntax {
    /// Classifies a syntax identifier. Inverse of [`TransferSyntax::id`].
    pub fn from_id(id: SyntaxId) -> Self {
        if id == NDR32 {
            return Self::Ndr32;
        }
        if id == NDR64 {
            return Self::Ndr64;
        }
        let (d1, d2, d3, d4) = id.uuid.as_fields();
        if (d1, d2, d3) == BTFN_FIELDS && id.version == BTFN_VERSION {
            return Self::Btfn {
                features: u64::from_le_bytes(*d4),
            };
        }
        Self::Other(id)
    }

    /// The identifier on the wire.
    pub fn id(self) -> SyntaxId {
        match self {
            Self::Ndr32 => NDR32,
            Self::Ndr64 => NDR64,
            Self::Btfn { features } => {
                let (d1, d2, d3) = BTFN_FIELDS;
                SyntaxId {
                    uuid: Uuid::from_fields(d1, d2, d3, &features.to_le_bytes()),
                    version: BTFN_VERSION,
                }
            }
            Self::Other(id) => id,
        }
    }

    /// The stub encoding this syntax selects, for NDR32 and NDR64.
    pub fn stub_syntax(self) -> Option<Syntax> {
        match self {
            Self::Ndr32 => Some(Syntax::Ndr32),
            Self::Ndr64 => Some(Syntax::Ndr64),
            Self::Btfn { .. } | Self::Other(_) => None,
        }
    }
}

impl From<Syntax> for TransferSyntax {
    fn from(s: Syntax) -> Self {
        match s {
            Syntax::Ndr32 => Self::Ndr32,
            Syntax::Ndr64 => Self::Ndr64,
        }
    }
}

impl fmt::Display for TransferSyntax {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ndr32 => f.write_str("NDR32"),
            Self::Ndr64 => f.write_str("NDR64"),
            Self::Btfn { features } => write!(f, "BTFN({features:#x})"),
            Self::Other(id) => write!(f, "{id}"),
        }
    }
}

/// The items a one-byte count can describe: the first 255 of `items`.
pub(super) fn emitted<T>(items: &[T]) -> &[T] {
    &items[..items.len().min(usize::from(u8::MAX))]
}

/// Reads a context list (p_cont_list_t) or result list (p_result_list_t): a one-byte count,
/// three reserved bytes, then the items (spec 4.2, 4.3). `fields` names the count and the
/// reserved bytes in errors.
pub(super) fn read_list<T>(
    r: &mut Reader<'_>,
    fields: [&'static str; 2],
    item: fn(&mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let n = r.u8(fields[0])?;
    r.skip(3, fields[1])?;
    (0..n).map(|_| item(r)).collect()
}

/// Writes a list as [`read_list`] reads it, at most 255 items.
pub(super) fn write_list<T>(out: &mut Vec<u8>, items: &[T], item: fn(&T, &mut Vec<u8>)) {
    let items = emitted(items);
    out.push(items.len() as u8); // emitted() is at most u8::MAX
    out.extend_from_slice(&[0; 3]);
    for i in items {
        item(i, out);
    }
}

/// Writes `items` separated by `sep`.
pub(super) fn fmt_list<T: fmt::Display>(
    f: &mut fmt::Formatter<'_>,
    items: &[T],
    sep: &str,
) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        write!(f, "{item}")?;
    }
    Ok(())
}

/// A presentation context item of a bind or alter_context (spec 4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextElem {
    /// `p_cont_id`, the id requests name the context by.
    pub context_id: u16,
    /// The interface (always [`KMS_INTERFACE`] from a KMS client).
    pub abstract_syntax: InterfaceId,
    /// The transfer syntaxes proposed for it, in preference order (KMS clients: exactly one).
    /// At most 255 are emitted.
    pub transfer_syntaxes: Vec<TransferSyntax>,
}

impl ContextElem {
    /// A KMS context item with one transfer syntax.
    pub fn kms(context_id: u16, syntax: TransferSyntax) -> Self {
        Self {
            context_id,
            abstract_syntax: KMS_INTERFACE,
            transfer_syntaxes: vec![syntax],
        }
    }

    pub(super) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let context_id = r.u16("p_cont_id")?;
        let n = r.u8("n_transfer_syn")?;
        r.skip(1, "context item reserved")?;
        let abstract_syntax = InterfaceId::read(r)?;
        let transfer_syntaxes = (0..n)
            .map(|_| SyntaxId::read(r, "transfer syntax").map(TransferSyntax::from_id))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            context_id,
            abstract_syntax,
            transfer_syntaxes,
        })
    }

    pub(super) fn write(&self, out: &mut Vec<u8>) {
        let syntaxes = emitted(&self.transfer_syntaxes);
        out.put_u16(self.context_id);
        out.push(syntaxes.len() as u8); // emitted() is at most u8::MAX
        out.push(0);
        self.abstract_syntax.write(out);
        for ts in syntaxes {
            ts.id().write(out);
        }
    }

    pub(super) fn wire_len(&self) -> usize {
        24 + 20 * emitted(&self.transfer_syntaxes).len()
    }
}

impl fmt::Display for ContextElem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.context_id)?;
        if self.abstract_syntax != KMS_INTERFACE {
            write!(f, "{}:", self.abstract_syntax)?;
        }
        fmt_list(f, &self.transfer_syntaxes, "/")
    }
}

/// The host's answer to one context item (spec 4.3). The canonical forms are typed;
/// anything else (a rejection carrying a syntax, an unknown result code) is kept raw in
/// [`ContextResult::Other`], so every result re-emits byte for byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContextResult {
    /// result 0, reason 0: the context is usable with the echoed syntax.
    Acceptance(TransferSyntax),
    /// result 1 with a zero syntax (not used by KMS hosts).
    UserRejection(RejectReason),
    /// result 2 with a zero syntax: the context was refused.
    ProviderRejection(RejectReason),
    /// result 3 with a zero syntax: bind-time feature negotiation understood; `reason` holds
    /// the feature bits the host accepts.
    NegotiateAck {
        /// Accepted feature bits (both references and Windows: 0x3).
        features: u16,
    },
    /// Any other combination.
    Other {
        /// `result`.
        result: u16,
        /// `reason`.
        reason: u16,
        /// The transfer syntax fields.
        syntax: SyntaxId,
    },
}

impl ContextResult {
    /// Classifies the three raw fields of a result.
    pub fn from_raw(result: u16, reason: u16, syntax: SyntaxId) -> Self {
        match (result, reason, syntax == SyntaxId::NIL) {
            (0, 0, _) => Self::Acceptance(TransferSyntax::from_id(syntax)),
            (1, _, true) => Self::UserRejection(RejectReason(reason)),
            (2, _, true) => Self::ProviderRejection(RejectReason(reason)),
            (3, features, true) => Self::NegotiateAck { features },
            _ => Self::Other {
                result,
                reason,
                syntax,
            },
        }
    }

    /// The raw `(result, reason, syntax)` fields.
    pub fn to_raw(self) -> (u16, u16, SyntaxId) {
        match self {
            Self::Acceptance(ts) => (0, 0, ts.id()),
            Self::UserRejection(r) => (1, r.0, SyntaxId::NIL),
            Self::ProviderRejection(r) => (2, r.0, SyntaxId::NIL),
            Self::NegotiateAck { features } => (3, features, SyntaxId::NIL),
            Self::Other {
                result,
                reason,
                syntax,
            } => (result, reason, syntax),
        }
    }

    pub(super) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let result = r.u16("result")?;
        let reason = r.u16("reason")?;
        let syntax = SyntaxId::read(r, "result transfer syntax")?;
        Ok(Self::from_raw(result, reason, syntax))
    }

    pub(super) fn write(&self, out: &mut Vec<u8>) {
        let (result, reason, syntax) = self.to_raw();
        out.put_u16(result);
        out.put_u16(reason);
        syntax.write(out);
    }
}

impl fmt::Display for ContextResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Acceptance(ts) => write!(f, "accept {ts}"),
            Self::UserRejection(r) => write!(f, "user-reject({})", r.0),
            Self::ProviderRejection(r) => write!(f, "reject({})", r.0),
            Self::NegotiateAck { features } => write!(f, "btfn-ack({features:#x})"),
            Self::Other {
                result,
                reason,
                syntax,
            } => {
                write!(f, "result({result},reason={reason},{syntax})")
            }
        }
    }
}

/// The secondary address of a bind_ack: the bytes on the wire, including the terminating NUL
/// (spec 4.3: the host's listening port in ASCII decimal, e.g. `"1688\0"`; empty in
/// vlmcsd's alter_context_resp).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct SecondaryAddress(pub Vec<u8>);

impl SecondaryAddress {
    /// `text` followed by a NUL.
    pub fn new(text: &str) -> Self {
        let mut bytes = text.as_bytes().to_vec();
        bytes.push(0);
        Self(bytes)
    }

    /// A TCP port in ASCII decimal, NUL-terminated, as hosts write it.
    pub fn port(port: u16) -> Self {
        Self::new(&port.to_string())
    }

    /// The text without the terminating NUL; invalid UTF-8 is replaced.
    pub fn text(&self) -> Cow<'_, str> {
        let bytes = self.0.strip_suffix(&[0]).unwrap_or(&self.0);
        String::from_utf8_lossy(bytes)
    }

    /// The bytes that go on the wire: at most `u16::MAX`.
    pub(super) fn wire(&self) -> &[u8] {
        &self.0[..self.0.len().min(usize::from(u16::MAX))]
    }
}

impl fmt::Display for SecondaryAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.text())
    }
}
