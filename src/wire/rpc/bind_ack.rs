//! bind_ack (ptype 12) and alter_context_resp (ptype 15): the host's result per proposed
//! context and its secondary address (spec 4.3, 12.2, 12.3).

use std::fmt;

use super::context::{emitted, fmt_list, read_list, write_list};
use super::*;
use crate::wire::reader::{Reader, WriteLe};

/// A bind_ack (ptype 12) or, wrapped in [`AlterContextResp`], an alter_context_resp (spec
/// 4.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindAck {
    /// `pfc_flags` (the bind's CONC_MPX bit mirrored, spec 4.10).
    pub flags: PfcFlags,
    /// `call_id`, echo of the bind's.
    pub call_id: u32,
    /// `max_xmit_frag`.
    pub max_xmit_frag: u16,
    /// `max_recv_frag`.
    pub max_recv_frag: u16,
    /// `assoc_group_id`, chosen by the host.
    pub assoc_group_id: u32,
    /// The secondary address.
    pub sec_addr: SecondaryAddress,
    /// One result per proposed context item, in order. At most 255 are emitted.
    pub results: Vec<ContextResult>,
}

/// An alter_context_resp (ptype 15): the same body as a bind_ack (spec 4.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterContextResp(pub BindAck);

impl Body for BindAck {
    const PTYPE: Ptype = Ptype::BIND_ACK;
    fn flags(&self) -> PfcFlags {
        self.flags
    }
    fn call_id(&self) -> u32 {
        self.call_id
    }
    fn read_body(flags: PfcFlags, call_id: u32, r: &mut Reader<'_>) -> Result<Self, PduError> {
        let max_xmit_frag = r.u16("max_xmit_frag")?;
        let max_recv_frag = r.u16("max_recv_frag")?;
        let assoc_group_id = r.u32("assoc_group_id")?;
        let sec_addr_len = r.u16("sec_addr_len")?;
        let sec_addr = SecondaryAddress(r.take(usize::from(sec_addr_len), "sec_addr")?.to_vec());
        // Spec 4.3: the results start at the next multiple of 4 counted from the PDU start;
        // the pad bytes are arbitrary (vlmcsd leaves garbage).
        r.align(4, "sec_addr pad")?;
        let results = read_list(
            r,
            ["n_results", "result list reserved"],
            ContextResult::read,
        )?;
        r.finish("bind_ack body")?;
        Ok(Self {
            flags,
            call_id,
            max_xmit_frag,
            max_recv_frag,
            assoc_group_id,
            sec_addr,
            results,
        })
    }
    fn write_body(&self, out: &mut Vec<u8>, start: usize) {
        let addr = self.sec_addr.wire();
        out.put_u16(self.max_xmit_frag);
        out.put_u16(self.max_recv_frag);
        out.put_u32(self.assoc_group_id);
        out.put_u16(addr.len() as u16); // wire() is at most u16::MAX bytes
        out.extend_from_slice(addr);
        pad_from(out, start, 4);
        write_list(out, &self.results, ContextResult::write);
    }
    fn body_len(&self) -> usize {
        let addr_end = field::SEC_ADDR + self.sec_addr.wire().len();
        let results = addr_end.next_multiple_of(4);
        results + 4 + 24 * emitted(&self.results).len() - HEADER_LEN
    }
}

impl BindAck {
    fn fmt_as(&self, f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
        write!(
            f,
            "{name} call_id={} flags={:?} max_frag={}/{} assoc={:#x} sec_addr={} results=[",
            self.call_id,
            self.flags,
            self.max_xmit_frag,
            self.max_recv_frag,
            self.assoc_group_id,
            self.sec_addr
        )?;
        fmt_list(f, &self.results, ",")?;
        f.write_str("]")
    }
}

impl fmt::Display for BindAck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_as(f, "bind_ack")
    }
}

impl fmt::Display for AlterContextResp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt_as(f, "alter_context_resp")
    }
}
