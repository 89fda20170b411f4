//! Finding PDU boundaries in a byte stream without parsing ([`check_frame`], spec 2 and 4.1),
//! and the errors of PDU decoding ([`PduError`]).

use super::*;
use crate::wire::reader::DecodeError;

/// Why a PDU was refused. Every variant names the header field or structure that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PduError {
    /// `rpc_vers`.`rpc_vers_minor` is not 5.0 (spec 4.1).
    #[error("rpc_vers: {major}.{minor}, expected 5.0")]
    Version {
        /// `rpc_vers`.
        major: u8,
        /// `rpc_vers_minor`.
        minor: u8,
    },
    /// `frag_length` disagrees with the size of the buffer holding the PDU.
    #[error("frag_length: {frag_length}, but the PDU buffer holds {buffer} bytes")]
    FragLength {
        /// The `frag_length` field.
        frag_length: u16,
        /// The buffer size.
        buffer: usize,
    },
    /// `drep[0]` is not 0x10 (little-endian integers, ASCII characters).
    #[error("drep[0]: {0:#04x}, expected 0x10 (little-endian, ASCII)")]
    DataRepresentation(u8),
    /// `auth_length` is not 0; authenticated PDUs are not supported.
    #[error("auth_length: {0}, expected 0 (no authentication)")]
    AuthLength(u16),
    /// FIRST_FRAG and LAST_FRAG are not both set; multi-fragment PDUs are not supported.
    #[error("pfc_flags: {0:?} lacks FIRST|LAST (multi-fragment PDUs are not supported)")]
    Fragmented(PfcFlags),
    /// A typed parser was given a PDU of another type.
    #[error("ptype: expected {expected}, found {found}")]
    UnexpectedPtype {
        /// The type the parser handles.
        expected: Ptype,
        /// The type in the header.
        found: Ptype,
    },
    /// The body is truncated, too long or holds an invalid value.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// What [`check_frame`] found at the start of a byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// Read at least `needed` more bytes, then check again.
    Incomplete {
        /// A lower bound while the `frag_length` field itself has not arrived, exact after.
        needed: usize,
    },
    /// The first `len` bytes of the buffer are one whole PDU (`len` = `frag_length`).
    Complete(usize),
    /// The stream cannot hold connection-oriented DCE/RPC; close the connection.
    Invalid(FrameError),
}

/// Why a byte stream cannot be split into PDUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The first byte is not 5: the peer does not speak connection-oriented DCE/RPC.
    #[error("rpc_vers: {0}, the peer does not speak connection-oriented DCE/RPC 5")]
    NotRpc(u8),
    /// `frag_length` is shorter than the common header.
    #[error("frag_length: {0} is shorter than the {HEADER_LEN}-byte header")]
    TooShort(u16),
    /// `frag_length` exceeds [`MAX_FRAG_LENGTH`].
    #[error("frag_length: {0} exceeds the maximum of {MAX_FRAG_LENGTH}")]
    TooLong(u16),
}

/// Finds the first PDU in a byte stream without parsing it (mini-redis style check before
/// parse): the caller reads until [`Frame::Complete`], hands that many bytes to
/// [`Pdu::parse`] and drains them. Only `rpc_vers` and `frag_length` are looked at; every
/// other check is the parser's.
pub fn check_frame(buf: &[u8]) -> Frame {
    match buf.first() {
        Some(&vers) if vers != 5 => return Frame::Invalid(FrameError::NotRpc(vers)),
        _ => {}
    }
    let Some(len) = buf.get(field::FRAG_LENGTH) else {
        return Frame::Incomplete {
            needed: HEADER_LEN - buf.len(),
        };
    };
    let frag_length = u16::from_le_bytes([len[0], len[1]]);
    if usize::from(frag_length) < HEADER_LEN {
        Frame::Invalid(FrameError::TooShort(frag_length))
    } else if frag_length > MAX_FRAG_LENGTH {
        Frame::Invalid(FrameError::TooLong(frag_length))
    } else if buf.len() < usize::from(frag_length) {
        Frame::Incomplete {
            needed: usize::from(frag_length) - buf.len(),
        }
    } else {
        Frame::Complete(usize::from(frag_length))
    }
}
