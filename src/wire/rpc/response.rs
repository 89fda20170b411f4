//! response (ptype 2): the answer to one call (spec 4.6, 12.5).

use std::fmt;

use super::*;
use crate::wire::reader::{DecodeError, Reader, WriteLe};

/// A response (ptype 2, spec 4.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// `pfc_flags` (0x03).
    pub flags: PfcFlags,
    /// `call_id`, echo of the request's.
    pub call_id: u32,
    /// `alloc_hint`, the stub length.
    pub alloc_hint: u32,
    /// `p_cont_id`, echo of the request's.
    pub context_id: u16,
    /// `cancel_count`, 0.
    pub cancel_count: u8,
    /// The NDR stub (see [`crate::wire::ndr`]).
    pub stub: Vec<u8>,
}

/// A response PDU read in place: the same fields as [`Response`], the stub lent from the
/// PDU instead of copied (the client's per-request path). [`Response::parse`] is this plus
/// a copy of the stub, so both read the bytes with one decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseRef<'a> {
    /// `pfc_flags`.
    pub flags: PfcFlags,
    /// `call_id`.
    pub call_id: u32,
    /// `alloc_hint`.
    pub alloc_hint: u32,
    /// `p_cont_id`.
    pub context_id: u16,
    /// `cancel_count`.
    pub cancel_count: u8,
    /// The NDR stub, in the PDU.
    pub stub: &'a [u8],
}

impl<'a> ResponseRef<'a> {
    /// Parses one whole response PDU as [`Response::parse`] does, lending the stub.
    ///
    /// # Errors
    /// [`PduError`] naming the field that failed; [`PduError::UnexpectedPtype`] for a PDU
    /// of another type.
    pub fn parse(pdu: &'a [u8]) -> Result<Self, PduError> {
        let (header, mut r) = pdu::open(pdu)?;
        if header.ptype() != Ptype::RESPONSE {
            return Err(PduError::UnexpectedPtype {
                expected: Ptype::RESPONSE,
                found: header.ptype(),
            });
        }
        Self::read_body(header.pfc_flags(), header.call_id(), &mut r)
    }

    fn read_body(flags: PfcFlags, call_id: u32, r: &mut Reader<'a>) -> Result<Self, PduError> {
        let (alloc_hint, context_id, cancel_count) = read_reply_prefix(r, "response reserved")?;
        Ok(Self {
            flags,
            call_id,
            alloc_hint,
            context_id,
            cancel_count,
            stub: r.rest(),
        })
    }

    /// The response with its stub copied.
    pub fn to_owned(&self) -> Response {
        Response {
            flags: self.flags,
            call_id: self.call_id,
            alloc_hint: self.alloc_hint,
            context_id: self.context_id,
            cancel_count: self.cancel_count,
            stub: self.stub.to_vec(),
        }
    }
}

/// Reads the eight bytes a response and a fault begin their body with (spec 4.6, 4.7):
/// `alloc_hint`, `p_cont_id`, `cancel_count` and a reserved byte (`reserved` names it in
/// errors).
pub(super) fn read_reply_prefix(
    r: &mut Reader<'_>,
    reserved: &'static str,
) -> Result<(u32, u16, u8), DecodeError> {
    let alloc_hint = r.u32("alloc_hint")?;
    let context_id = r.u16("p_cont_id")?;
    let cancel_count = r.u8("cancel_count")?;
    r.skip(1, reserved)?;
    Ok((alloc_hint, context_id, cancel_count))
}

/// Writes what [`read_reply_prefix`] reads.
pub(super) fn write_reply_prefix(
    out: &mut Vec<u8>,
    alloc_hint: u32,
    context_id: u16,
    cancel_count: u8,
) {
    out.put_u32(alloc_hint);
    out.put_u16(context_id);
    out.extend_from_slice(&[cancel_count, 0]);
}

impl Body for Response {
    const PTYPE: Ptype = Ptype::RESPONSE;
    fn flags(&self) -> PfcFlags {
        self.flags
    }
    fn call_id(&self) -> u32 {
        self.call_id
    }
    fn read_body(flags: PfcFlags, call_id: u32, r: &mut Reader<'_>) -> Result<Self, PduError> {
        ResponseRef::read_body(flags, call_id, r).map(|v| v.to_owned())
    }
    fn write_body(&self, out: &mut Vec<u8>, _start: usize) {
        write_reply_prefix(out, self.alloc_hint, self.context_id, self.cancel_count);
        out.extend_from_slice(&self.stub);
    }
    fn body_len(&self) -> usize {
        8 + self.stub.len()
    }
}

impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "response call_id={} flags={:?} ctx={} alloc_hint={} stub={}B",
            self.call_id,
            self.flags,
            self.context_id,
            self.alloc_hint,
            self.stub.len()
        )?;
        if self.cancel_count != 0 {
            write!(f, " cancel_count={}", self.cancel_count)?;
        }
        Ok(())
    }
}
