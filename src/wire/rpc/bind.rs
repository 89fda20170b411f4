//! bind (ptype 11) and alter_context (ptype 14): the client proposes presentation contexts
//! (spec 4.2, 12.1, 12.3).

use std::fmt;

use super::context::{emitted, fmt_list, read_list, write_list};
use super::*;
use crate::wire::reader::{Reader, WriteLe};

/// A bind (ptype 11) or, wrapped in [`AlterContext`], an alter_context (spec 4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    /// `pfc_flags` (Windows-like: 0x13).
    pub flags: PfcFlags,
    /// `call_id`.
    pub call_id: u32,
    /// `max_xmit_frag` (5840).
    pub max_xmit_frag: u16,
    /// `max_recv_frag` (5840).
    pub max_recv_frag: u16,
    /// `assoc_group_id`, 0 for a new association.
    pub assoc_group_id: u32,
    /// The context items, at most 255 are emitted.
    pub contexts: Vec<ContextElem>,
}

/// An alter_context (ptype 14): the same body as a bind (spec 4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterContext(pub Bind);

impl Body for Bind {
    const PTYPE: Ptype = Ptype::BIND;
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
        let contexts = read_list(
            r,
            ["n_context_elem", "context list reserved"],
            ContextElem::read,
        )?;
        r.finish("bind body")?;
        Ok(Self {
            flags,
            call_id,
            max_xmit_frag,
            max_recv_frag,
            assoc_group_id,
            contexts,
        })
    }
    fn write_body(&self, out: &mut Vec<u8>, _start: usize) {
        out.put_u16(self.max_xmit_frag);
        out.put_u16(self.max_recv_frag);
        out.put_u32(self.assoc_group_id);
        write_list(out, &self.contexts, ContextElem::write);
    }
    fn body_len(&self) -> usize {
        12 + emitted(&self.contexts)
            .iter()
            .map(ContextElem::wire_len)
            .sum::<usize>()
    }
}

impl Bind {
    fn fmt_as(&self, f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
        write!(
            f,
            "{name} call_id={} flags={:?} max_frag={}/{} assoc={:#x} contexts=[",
            self.call_id, self.flags, self.max_xmit_frag, self.max_recv_frag, self.assoc_group_id
        )?;
        fmt_list(f, &self.contexts, ",")?;
        f.write_str("]")
    }
}

impl fmt::Display for Bind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_as(f, "bind")
    }
}

impl fmt::Display for AlterContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt_as(f, "alter_context")
    }
}
