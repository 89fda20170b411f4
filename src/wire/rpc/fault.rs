//! fault (ptype 3): a call failed in the RPC runtime, with an NCA status (spec 4.7).

use std::fmt;

use super::response::{read_reply_prefix, write_reply_prefix};
use super::*;
use crate::wire::reader::{Reader, WriteLe};

/// A fault (ptype 3, spec 4.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// `pfc_flags` (0x23: FIRST|LAST|DID_NOT_EXECUTE).
    pub flags: PfcFlags,
    /// `call_id` (vlmcsd: always 2).
    pub call_id: u32,
    /// `alloc_hint` (vlmcsd: 32, the PDU length).
    pub alloc_hint: u32,
    /// `p_cont_id`.
    pub context_id: u16,
    /// `cancel_count` (vlmcsd: garbage).
    pub cancel_count: u8,
    /// `status`.
    pub status: NcaStatus,
    /// Bytes after the reserved word (stub data; absent from KMS hosts' faults).
    pub stub: Vec<u8>,
}

impl Body for Fault {
    const PTYPE: Ptype = Ptype::FAULT;
    fn flags(&self) -> PfcFlags {
        self.flags
    }
    fn call_id(&self) -> u32 {
        self.call_id
    }
    fn read_body(flags: PfcFlags, call_id: u32, r: &mut Reader<'_>) -> Result<Self, PduError> {
        let (alloc_hint, context_id, cancel_count) = read_reply_prefix(r, "fault reserved")?;
        let status = NcaStatus(r.u32("status")?);
        r.skip(4, "fault reserved word")?;
        let stub = r.rest().to_vec();
        Ok(Self {
            flags,
            call_id,
            alloc_hint,
            context_id,
            cancel_count,
            status,
            stub,
        })
    }
    fn write_body(&self, out: &mut Vec<u8>, _start: usize) {
        write_reply_prefix(out, self.alloc_hint, self.context_id, self.cancel_count);
        out.put_u32(self.status.0);
        out.put_u32(0);
        out.extend_from_slice(&self.stub);
    }
    fn body_len(&self) -> usize {
        16 + self.stub.len()
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "fault call_id={} flags={:?} ctx={} alloc_hint={} status={}",
            self.call_id, self.flags, self.context_id, self.alloc_hint, self.status
        )?;
        if self.cancel_count != 0 {
            write!(f, " cancel_count={}", self.cancel_count)?;
        }
        if !self.stub.is_empty() {
            write!(f, " stub={}B", self.stub.len())?;
        }
        Ok(())
    }
}
