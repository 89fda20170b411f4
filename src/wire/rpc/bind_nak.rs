//! bind_nak (ptype 13): the host refuses the association (spec 4.4).

use std::fmt;

use super::*;
use crate::wire::reader::{DecodeError, Reader, WriteLe};

/// A bind_nak (ptype 13, spec 4.4). Bytes after the version list (padding, MS-RPCE
/// extended error data) are ignored on input and not written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindNak {
    /// `pfc_flags`.
    pub flags: PfcFlags,
    /// `call_id`.
    pub call_id: u32,
    /// `provider_reject_reason`.
    pub reason: NakReason,
    /// Supported protocol versions, `(major, minor)`; at most 255 are emitted.
    pub versions: Vec<(u8, u8)>,
}

impl BindNak {
    fn version_count(&self) -> usize {
        self.versions.len().min(usize::from(u8::MAX))
    }
}

impl Body for BindNak {
    const PTYPE: Ptype = Ptype::BIND_NAK;
    fn flags(&self) -> PfcFlags {
        self.flags
    }
    fn call_id(&self) -> u32 {
        self.call_id
    }
    fn read_body(flags: PfcFlags, call_id: u32, r: &mut Reader<'_>) -> Result<Self, PduError> {
        let reason = NakReason(r.u16("provider_reject_reason")?);
        // Some senders stop after the reason; a missing version list reads as empty.
        let n = if r.remaining() > 0 {
            r.u8("n_protocols")?
        } else {
            0
        };
        let versions = (0..n)
            .map(|_| Ok((r.u8("protocol major")?, r.u8("protocol minor")?)))
            .collect::<Result<_, DecodeError>>()?;
        Ok(Self {
            flags,
            call_id,
            reason,
            versions,
        })
    }
    fn write_body(&self, out: &mut Vec<u8>, _start: usize) {
        let n = self.version_count();
        out.put_u16(self.reason.0);
        out.push(n as u8); // version_count() is at most u8::MAX
        for &(major, minor) in &self.versions[..n] {
            out.extend_from_slice(&[major, minor]);
        }
    }
    fn body_len(&self) -> usize {
        3 + 2 * self.version_count()
    }
}

impl fmt::Display for BindNak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bind_nak call_id={} reason={:?} versions=[",
            self.call_id, self.reason
        )?;
        for (i, (major, minor)) in self.versions.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{major}.{minor}")?;
        }
        f.write_str("]")
    }
}
