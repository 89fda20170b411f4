//! [`Pdu`], any PDU parsed by its type, [`UnknownPdu`] for types KMS does not use, and what every
//! PDU representation shares: the `Body` trait behind `parse`/`emit`/`buffer_len`, header
//! writing with `frag_length` patched after the body.

use std::fmt;

use super::*;
use crate::wire::reader::Reader;

/// A PDU of a type KMS does not use, kept as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownPdu {
    /// `ptype`.
    pub ptype: Ptype,
    /// `pfc_flags`.
    pub flags: PfcFlags,
    /// `call_id`.
    pub call_id: u32,
    /// Everything after the common header.
    pub body: Vec<u8>,
}

/// Any PDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pdu {
    /// ptype 0.
    Request(Request),
    /// ptype 2.
    Response(Response),
    /// ptype 3.
    Fault(Fault),
    /// ptype 11.
    Bind(Bind),
    /// ptype 12.
    BindAck(BindAck),
    /// ptype 13.
    BindNak(BindNak),
    /// ptype 14.
    AlterContext(AlterContext),
    /// ptype 15.
    AlterContextResp(AlterContextResp),
    /// Any other ptype.
    Unknown(UnknownPdu),
}

/// What each PDU body implements; the public `parse`/`emit`/`buffer_len` are built on it.
pub(super) trait Body: Sized {
    const PTYPE: Ptype;
    fn flags(&self) -> PfcFlags;
    fn call_id(&self) -> u32;
    /// Reads the body; `r` is positioned after the header, offsets count from the PDU start.
    fn read_body(flags: PfcFlags, call_id: u32, r: &mut Reader<'_>) -> Result<Self, PduError>;
    /// Appends the body; `start` is where the PDU begins in `out`.
    fn write_body(&self, out: &mut Vec<u8>, start: usize);
    fn body_len(&self) -> usize;

    fn emit_pdu(&self, out: &mut Vec<u8>) {
        write_pdu(
            out,
            Self::PTYPE,
            self.flags(),
            self.call_id(),
            |out, start| self.write_body(out, start),
        );
    }

    fn parse_pdu(pdu: &[u8]) -> Result<Self, PduError> {
        let (header, mut r) = open(pdu)?;
        if header.ptype() != Self::PTYPE {
            return Err(PduError::UnexpectedPtype {
                expected: Self::PTYPE,
                found: header.ptype(),
            });
        }
        Self::read_body(header.pfc_flags(), header.call_id(), &mut r)
    }
}

/// Checks the common header of a whole PDU and returns a reader positioned after it.
pub(super) fn open(pdu: &[u8]) -> Result<(Header<&[u8]>, Reader<'_>), PduError> {
    let header = Header::new_checked(pdu)?;
    header.check()?;
    let mut r = Reader::new(pdu);
    r.skip(HEADER_LEN, "common header")?;
    Ok((header, r))
}

/// Writes a header with a placeholder `frag_length`, the body, then patches `frag_length`.
/// A PDU longer than 65535 bytes cannot be described; its `frag_length` saturates at 65535
/// and the receiver rejects it (sessions bound payloads long before that).
pub(super) fn write_pdu(
    out: &mut Vec<u8>,
    ptype: Ptype,
    flags: PfcFlags,
    call_id: u32,
    body: impl FnOnce(&mut Vec<u8>, usize),
) {
    let start = out.len();
    out.resize(start + HEADER_LEN, 0);
    let mut header = Header::new_unchecked(&mut out[start..]);
    header.set_rpc_vers(5);
    header.set_rpc_vers_minor(0);
    header.set_ptype(ptype);
    header.set_pfc_flags(flags);
    header.set_drep(DREP_LITTLE_ENDIAN);
    header.set_auth_length(0);
    header.set_call_id(call_id);
    body(out, start);
    let len = u16::try_from(out.len() - start).unwrap_or(u16::MAX);
    Header::new_unchecked(&mut out[start..]).set_frag_length(len);
}

/// Zero bytes up to the next multiple of `align` counted from `start`.
pub(super) fn pad_from(out: &mut Vec<u8>, start: usize, align: usize) {
    let pad = (align - (out.len() - start) % align) % align;
    out.resize(out.len() + pad, 0);
}

macro_rules! pdu_methods {
    ($ty:ty) => {
        impl $ty {
            /// Parses one whole PDU of this type: the header checks of spec 4.1, the type,
            /// then the body.
            ///
            /// # Errors
            /// [`PduError`] naming the field that failed; [`PduError::UnexpectedPtype`] for
            /// a PDU of another type.
            pub fn parse(pdu: &[u8]) -> Result<Self, PduError> {
                <Self as Body>::parse_pdu(pdu)
            }

            /// Appends the PDU to `out`, `frag_length` patched after the body.
            pub fn emit(&self, out: &mut Vec<u8>) {
                <Self as Body>::emit_pdu(self, out)
            }

            /// The PDU as a new vector.
            pub fn to_bytes(&self) -> Vec<u8> {
                let mut out = Vec::with_capacity(self.buffer_len());
                self.emit(&mut out);
                out
            }

            /// The length [`Self::emit`] writes, header included.
            pub fn buffer_len(&self) -> usize {
                HEADER_LEN + <Self as Body>::body_len(self)
            }
        }
    };
}

/// [`Body`] for a PDU that is another's body under its own ptype (alter_context is a bind,
/// alter_context_resp a bind_ack: spec 4.2, 4.3), as a newtype of it.
macro_rules! body_of {
    ($twin:ty = $inner:ty, $ptype:expr) => {
        impl Body for $twin {
            const PTYPE: Ptype = $ptype;
            fn flags(&self) -> PfcFlags {
                self.0.flags()
            }
            fn call_id(&self) -> u32 {
                self.0.call_id()
            }
            fn read_body(
                flags: PfcFlags,
                call_id: u32,
                r: &mut Reader<'_>,
            ) -> Result<Self, PduError> {
                <$inner as Body>::read_body(flags, call_id, r).map(Self)
            }
            fn write_body(&self, out: &mut Vec<u8>, start: usize) {
                self.0.write_body(out, start)
            }
            fn body_len(&self) -> usize {
                self.0.body_len()
            }
        }
    };
}

body_of!(AlterContext = Bind, Ptype::ALTER_CONTEXT);
body_of!(AlterContextResp = BindAck, Ptype::ALTER_CONTEXT_RESP);

pdu_methods!(Bind);
pdu_methods!(AlterContext);
pdu_methods!(BindAck);
pdu_methods!(AlterContextResp);
pdu_methods!(BindNak);
pdu_methods!(Request);
pdu_methods!(Response);
pdu_methods!(Fault);

impl UnknownPdu {
    fn emit(&self, out: &mut Vec<u8>) {
        write_pdu(out, self.ptype, self.flags, self.call_id, |out, _| {
            out.extend_from_slice(&self.body)
        });
    }
}

impl fmt::Display for UnknownPdu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} call_id={} flags={:?} body={}B",
            self.ptype,
            self.call_id,
            self.flags,
            self.body.len()
        )
    }
}

impl Pdu {
    /// Parses one whole PDU (exactly `frag_length` bytes, see [`check_frame`]).
    ///
    /// # Errors
    /// [`PduError`] naming the header field (spec 4.1) or body field that failed.
    pub fn parse(pdu: &[u8]) -> Result<Self, PduError> {
        let (header, mut r) = open(pdu)?;
        let (flags, call_id) = (header.pfc_flags(), header.call_id());
        let r = &mut r;
        Ok(match header.ptype() {
            Ptype::REQUEST => Self::Request(Request::read_body(flags, call_id, r)?),
            Ptype::RESPONSE => Self::Response(Response::read_body(flags, call_id, r)?),
            Ptype::FAULT => Self::Fault(Fault::read_body(flags, call_id, r)?),
            Ptype::BIND => Self::Bind(Bind::read_body(flags, call_id, r)?),
            Ptype::BIND_ACK => Self::BindAck(BindAck::read_body(flags, call_id, r)?),
            Ptype::BIND_NAK => Self::BindNak(BindNak::read_body(flags, call_id, r)?),
            Ptype::ALTER_CONTEXT => Self::AlterContext(AlterContext::read_body(flags, call_id, r)?),
            Ptype::ALTER_CONTEXT_RESP => {
                Self::AlterContextResp(AlterContextResp::read_body(flags, call_id, r)?)
            }
            ptype => Self::Unknown(UnknownPdu {
                ptype,
                flags,
                call_id,
                body: r.rest().to_vec(),
            }),
        })
    }

    /// Appends the PDU to `out`, `frag_length` patched after the body.
    pub fn emit(&self, out: &mut Vec<u8>) {
        match self {
            Self::Request(p) => p.emit(out),
            Self::Response(p) => p.emit(out),
            Self::Fault(p) => p.emit(out),
            Self::Bind(p) => p.emit(out),
            Self::BindAck(p) => p.emit(out),
            Self::BindNak(p) => p.emit(out),
            Self::AlterContext(p) => p.emit(out),
            Self::AlterContextResp(p) => p.emit(out),
            Self::Unknown(p) => p.emit(out),
        }
    }

    /// The PDU as a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.buffer_len());
        self.emit(&mut out);
        out
    }

    /// The length [`Pdu::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        match self {
            Self::Request(p) => p.buffer_len(),
            Self::Response(p) => p.buffer_len(),
            Self::Fault(p) => p.buffer_len(),
            Self::Bind(p) => p.buffer_len(),
            Self::BindAck(p) => p.buffer_len(),
            Self::BindNak(p) => p.buffer_len(),
            Self::AlterContext(p) => p.buffer_len(),
            Self::AlterContextResp(p) => p.buffer_len(),
            Self::Unknown(p) => HEADER_LEN + p.body.len(),
        }
    }

    /// The PDU type.
    pub fn ptype(&self) -> Ptype {
        match self {
            Self::Request(_) => Ptype::REQUEST,
            Self::Response(_) => Ptype::RESPONSE,
            Self::Fault(_) => Ptype::FAULT,
            Self::Bind(_) => Ptype::BIND,
            Self::BindAck(_) => Ptype::BIND_ACK,
            Self::BindNak(_) => Ptype::BIND_NAK,
            Self::AlterContext(_) => Ptype::ALTER_CONTEXT,
            Self::AlterContextResp(_) => Ptype::ALTER_CONTEXT_RESP,
            Self::Unknown(p) => p.ptype,
        }
    }

    /// `call_id`.
    pub fn call_id(&self) -> u32 {
        match self {
            Self::Request(p) => p.call_id,
            Self::Response(p) => p.call_id,
            Self::Fault(p) => p.call_id,
            Self::Bind(p) | Self::AlterContext(AlterContext(p)) => p.call_id,
            Self::BindAck(p) | Self::AlterContextResp(AlterContextResp(p)) => p.call_id,
            Self::BindNak(p) => p.call_id,
            Self::Unknown(p) => p.call_id,
        }
    }

    /// `pfc_flags` as they are written.
    pub fn flags(&self) -> PfcFlags {
        match self {
            Self::Request(p) => Body::flags(p),
            Self::Response(p) => p.flags,
            Self::Fault(p) => p.flags,
            Self::Bind(p) | Self::AlterContext(AlterContext(p)) => p.flags,
            Self::BindAck(p) | Self::AlterContextResp(AlterContextResp(p)) => p.flags,
            Self::BindNak(p) => p.flags,
            Self::Unknown(p) => p.flags,
        }
    }
}

impl fmt::Display for Pdu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Request(p) => p.fmt(f),
            Self::Response(p) => p.fmt(f),
            Self::Fault(p) => p.fmt(f),
            Self::Bind(p) => p.fmt(f),
            Self::BindAck(p) => p.fmt(f),
            Self::BindNak(p) => p.fmt(f),
            Self::AlterContext(p) => p.fmt(f),
            Self::AlterContextResp(p) => p.fmt(f),
            Self::Unknown(p) => p.fmt(f),
        }
    }
}
