//! The 16-byte common header of every PDU (spec 4.1): named field offsets ([`field`]), the
//! typed view [`Header`] and the receiver checks.

use super::*;
use crate::wire::reader::DecodeError;

/// Named byte offsets of the fixed fields of every PDU (spec 4.1-4.7), counted from the first
/// byte of the PDU.
pub mod field {
    /// A half-open byte range.
    pub type Field = core::ops::Range<usize>;

    /// `rpc_vers`, must be 5.
    pub const RPC_VERS: usize = 0;
    /// `rpc_vers_minor`, must be 0.
    pub const RPC_VERS_MINOR: usize = 1;
    /// `ptype`, see [`super::Ptype`].
    pub const PTYPE: usize = 2;
    /// `pfc_flags`, see [`super::PfcFlags`].
    pub const PFC_FLAGS: usize = 3;
    /// `packed_drep`, the data representation label.
    pub const DREP: Field = 4..8;
    /// `frag_length`, the length of the whole PDU including the header.
    pub const FRAG_LENGTH: Field = 8..10;
    /// `auth_length`, must be 0.
    pub const AUTH_LENGTH: Field = 10..12;
    /// `call_id`.
    pub const CALL_ID: Field = 12..16;

    /// bind, alter_context, bind_ack, alter_context_resp: `max_xmit_frag`.
    pub const MAX_XMIT_FRAG: Field = 16..18;
    /// bind, alter_context, bind_ack, alter_context_resp: `max_recv_frag`.
    pub const MAX_RECV_FRAG: Field = 18..20;
    /// bind, alter_context, bind_ack, alter_context_resp: `assoc_group_id`.
    pub const ASSOC_GROUP_ID: Field = 20..24;
    /// bind, alter_context: `n_context_elem` (followed by 3 reserved bytes).
    pub const N_CONTEXT_ELEM: usize = 24;
    /// bind, alter_context: first context item.
    pub const CONTEXT_ITEMS: usize = 28;
    /// bind_ack, alter_context_resp: `sec_addr_len`.
    pub const SEC_ADDR_LEN: Field = 24..26;
    /// bind_ack, alter_context_resp: first byte of the secondary address.
    pub const SEC_ADDR: usize = SEC_ADDR_LEN.end;

    /// request, response, fault: `alloc_hint`.
    pub const ALLOC_HINT: Field = 16..20;
    /// request, response, fault: `p_cont_id`.
    pub const P_CONT_ID: Field = 20..22;
    /// request: `opnum`.
    pub const OPNUM: Field = 22..24;
    /// response, fault: `cancel_count`.
    pub const CANCEL_COUNT: usize = 22;
    /// response, fault: reserved byte after `cancel_count`.
    pub const RESERVED: usize = 23;
    /// request, response: first stub byte (request without object UUID).
    pub const STUB: usize = OPNUM.end;
    /// fault: `status`, the NCA status code.
    pub const STATUS: Field = 24..28;
    /// fault: reserved word after the status; the PDU ends here.
    pub const FAULT_RESERVED: Field = 28..32;

    /// bind_nak: `provider_reject_reason`.
    pub const REJECT_REASON: Field = 16..18;
}

/// Length of the common header, from its last field.
pub const HEADER_LEN: usize = field::CALL_ID.end;

/// The fragment size a Windows-like client proposes and hosts echo (spec 4.2).
pub const DEFAULT_MAX_FRAG: u16 = 5840;

/// The largest `frag_length` [`check_frame`] accepts: twice the fragment size clients
/// propose. The largest KMS PDU is about 312 bytes (spec 4.10); anything this long is not a
/// KMS exchange, and refusing it keeps a confused peer from making us buffer 64 KiB.
pub const MAX_FRAG_LENGTH: u16 = 2 * DEFAULT_MAX_FRAG;

/// The `drep` a little-endian, ASCII, IEEE sender writes (spec 4.1).
pub const DREP_LITTLE_ENDIAN: [u8; 4] = [0x10, 0, 0, 0];

/// A typed view over the common header at the start of `buffer` (spec 4.1).
///
/// [`Header::new_checked`] guarantees that no accessor panics; [`Header::check`] then applies
/// the receiver checks of spec 4.1 against the whole buffer. Setters exist for mutable
/// buffers and are what the emitters use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Header<T> {
    /// Wraps `buffer` without checking its length; accessors panic if it is shorter than
    /// [`HEADER_LEN`].
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer` after [`Header::check_len`].
    ///
    /// # Errors
    /// [`DecodeError::Truncated`] when the buffer is shorter than the header.
    pub fn new_checked(buffer: T) -> Result<Self, PduError> {
        let header = Self::new_unchecked(buffer);
        header.check_len()?;
        Ok(header)
    }

    /// Checks that the buffer holds the whole common header.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`] naming the header.
    pub fn check_len(&self) -> Result<(), PduError> {
        let available = self.buffer.as_ref().len();
        if available < HEADER_LEN {
            return Err(DecodeError::Truncated {
                field: "common header",
                needed: HEADER_LEN,
                available,
            }
            .into());
        }
        Ok(())
    }

    /// The receiver checks of spec 4.1, in this order: version 5.0, `frag_length` equal to
    /// the buffer length, `drep[0]` = 0x10, `auth_length` = 0, FIRST_FRAG and LAST_FRAG set.
    /// The expected `ptype` and `call_id` are the caller's to check.
    ///
    /// # Errors
    /// The [`PduError`] variant naming the first field that failed.
    pub fn check(&self) -> Result<(), PduError> {
        self.check_len()?;
        if self.rpc_vers() != 5 || self.rpc_vers_minor() != 0 {
            return Err(PduError::Version {
                major: self.rpc_vers(),
                minor: self.rpc_vers_minor(),
            });
        }
        let buffer = self.buffer.as_ref().len();
        if usize::from(self.frag_length()) != buffer {
            return Err(PduError::FragLength {
                frag_length: self.frag_length(),
                buffer,
            });
        }
        if self.drep()[0] != DREP_LITTLE_ENDIAN[0] {
            return Err(PduError::DataRepresentation(self.drep()[0]));
        }
        if self.auth_length() != 0 {
            return Err(PduError::AuthLength(self.auth_length()));
        }
        if !self.pfc_flags().contains(PfcFlags::SINGLE) {
            return Err(PduError::Fragmented(self.pfc_flags()));
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn bytes<const N: usize>(&self, at: field::Field) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buffer.as_ref()[at]);
        out
    }

    /// `rpc_vers`.
    pub fn rpc_vers(&self) -> u8 {
        self.buffer.as_ref()[field::RPC_VERS]
    }
    /// `rpc_vers_minor`.
    pub fn rpc_vers_minor(&self) -> u8 {
        self.buffer.as_ref()[field::RPC_VERS_MINOR]
    }
    /// `ptype`.
    pub fn ptype(&self) -> Ptype {
        Ptype(self.buffer.as_ref()[field::PTYPE])
    }
    /// `pfc_flags`.
    pub fn pfc_flags(&self) -> PfcFlags {
        PfcFlags(self.buffer.as_ref()[field::PFC_FLAGS])
    }
    /// `packed_drep`.
    pub fn drep(&self) -> [u8; 4] {
        self.bytes(field::DREP)
    }
    /// `frag_length`.
    pub fn frag_length(&self) -> u16 {
        u16::from_le_bytes(self.bytes(field::FRAG_LENGTH))
    }
    /// `auth_length`.
    pub fn auth_length(&self) -> u16 {
        u16::from_le_bytes(self.bytes(field::AUTH_LENGTH))
    }
    /// `call_id`.
    pub fn call_id(&self) -> u32 {
        u32::from_le_bytes(self.bytes(field::CALL_ID))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Header<T> {
    /// Sets `rpc_vers`.
    pub fn set_rpc_vers(&mut self, v: u8) {
        self.buffer.as_mut()[field::RPC_VERS] = v;
    }
    /// Sets `rpc_vers_minor`.
    pub fn set_rpc_vers_minor(&mut self, v: u8) {
        self.buffer.as_mut()[field::RPC_VERS_MINOR] = v;
    }
    /// Sets `ptype`.
    pub fn set_ptype(&mut self, v: Ptype) {
        self.buffer.as_mut()[field::PTYPE] = v.0;
    }
    /// Sets `pfc_flags`.
    pub fn set_pfc_flags(&mut self, v: PfcFlags) {
        self.buffer.as_mut()[field::PFC_FLAGS] = v.0;
    }
    /// Sets `packed_drep`.
    pub fn set_drep(&mut self, v: [u8; 4]) {
        self.buffer.as_mut()[field::DREP].copy_from_slice(&v);
    }
    /// Sets `frag_length`.
    pub fn set_frag_length(&mut self, v: u16) {
        self.buffer.as_mut()[field::FRAG_LENGTH].copy_from_slice(&v.to_le_bytes());
    }
    /// Sets `auth_length`.
    pub fn set_auth_length(&mut self, v: u16) {
        self.buffer.as_mut()[field::AUTH_LENGTH].copy_from_slice(&v.to_le_bytes());
    }
    /// Sets `call_id`.
    pub fn set_call_id(&mut self, v: u32) {
        self.buffer.as_mut()[field::CALL_ID].copy_from_slice(&v.to_le_bytes());
    }
}
