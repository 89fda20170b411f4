//! request (ptype 0): one call carrying the `RequestActivation` stub (spec 4.5, 12.4).

use std::fmt;

use uuid::Uuid;

use super::*;
use crate::wire::reader::{Reader, WriteLe};

/// A request (ptype 0, spec 4.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `pfc_flags` (0x03). The OBJECT_UUID bit is written from `object`, whatever it holds
    /// here.
    pub flags: PfcFlags,
    /// `call_id`.
    pub call_id: u32,
    /// `alloc_hint`, the stub length for KMS.
    pub alloc_hint: u32,
    /// `p_cont_id`: the negotiated context whose syntax encodes the stub.
    pub context_id: u16,
    /// `opnum`, 0 for RequestActivation.
    pub opnum: u16,
    /// The object UUID, present when PFC_OBJECT_UUID is set (never from KMS clients).
    pub object: Option<Uuid>,
    /// The NDR stub (see [`crate::wire::ndr`]).
    pub stub: Vec<u8>,
}

impl Body for Request {
    const PTYPE: Ptype = Ptype::REQUEST;
    fn flags(&self) -> PfcFlags {
        self.flags
            .with(PfcFlags::OBJECT_UUID, self.object.is_some())
    }
    fn call_id(&self) -> u32 {
        self.call_id
    }
    fn read_body(flags: PfcFlags, call_id: u32, r: &mut Reader<'_>) -> Result<Self, PduError> {
        let alloc_hint = r.u32("alloc_hint")?;
        let context_id = r.u16("p_cont_id")?;
        let opnum = r.u16("opnum")?;
        let object = if flags.contains(PfcFlags::OBJECT_UUID) {
            Some(r.guid("object")?)
        } else {
            None
        };
        let stub = r.rest().to_vec();
        Ok(Self {
            flags,
            call_id,
            alloc_hint,
            context_id,
            opnum,
            object,
            stub,
        })
    }
    fn write_body(&self, out: &mut Vec<u8>, _start: usize) {
        out.put_u32(self.alloc_hint);
        out.put_u16(self.context_id);
        out.put_u16(self.opnum);
        if let Some(object) = &self.object {
            out.put_guid(object);
        }
        out.extend_from_slice(&self.stub);
    }
    fn body_len(&self) -> usize {
        8 + if self.object.is_some() { 16 } else { 0 } + self.stub.len()
    }
}

impl Request {
    /// Appends a request PDU whose stub `stub` writes in place, with no object UUID:
    /// the same bytes as [`Request::emit`] of a `Request` holding that stub and
    /// `alloc_hint = stub_len`, without building the stub apart (the client's per-request
    /// path). `stub` must append exactly `stub_len` bytes.
    pub fn emit_in_place(
        out: &mut Vec<u8>,
        flags: PfcFlags,
        call_id: u32,
        context_id: u16,
        opnum: u16,
        stub_len: usize,
        stub: impl FnOnce(&mut Vec<u8>),
    ) {
        pdu::write_pdu(
            out,
            Ptype::REQUEST,
            flags.with(PfcFlags::OBJECT_UUID, false),
            call_id,
            |out, _| {
                // A stub longer than u32 cannot be framed anyway (frag_length is a u16).
                out.put_u32(u32::try_from(stub_len).unwrap_or(u32::MAX));
                out.put_u16(context_id);
                out.put_u16(opnum);
                stub(out);
            },
        );
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "request call_id={} flags={:?} ctx={} opnum={} alloc_hint={} stub={}B",
            self.call_id,
            Body::flags(self),
            self.context_id,
            self.opnum,
            self.alloc_hint,
            self.stub.len()
        )?;
        if let Some(object) = &self.object {
            write!(f, " object={object}")?;
        }
        Ok(())
    }
}
