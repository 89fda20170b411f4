//! Connection-oriented DCE/RPC 5.0 PDUs as KMS uses them (`kms-protocol.md` sections 4.1-4.7
//! and 4.10; C706 chapter 12; MS-RPCE for bind-time feature negotiation).
//!
//! What is here:
//! - [`Header`], a typed view over the 16-byte common header with named field offsets
//!   ([`field`]) and the receiver checks of spec 4.1 ([`Header::check`]);
//! - one decoded representation per PDU ([`Bind`], [`AlterContext`], [`BindAck`],
//!   [`AlterContextResp`], [`BindNak`], [`Request`], [`Response`], [`Fault`]), each with
//!   `parse`, `emit` and `buffer_len`, and the enum [`Pdu`] over all of them, which keeps
//!   PDUs of unknown type as data ([`UnknownPdu`]);
//! - presentation contexts, transfer syntaxes (NDR32, NDR64, bind-time feature negotiation)
//!   and context results;
//! - [`check_frame`], which finds PDU boundaries in a byte stream without parsing.
//!
//! What is not: authentication (an `auth_length` other than 0 is rejected), multi-fragment
//! PDUs (FIRST_FRAG and LAST_FRAG must both be set; every KMS PDU fits in one fragment, spec
//! 4.10), PDU types KMS never uses (kept as [`UnknownPdu`]), the NDR stubs (see
//! [`super::ndr`]) and the order PDUs come in (see [`super::session`]).
//!
//! One file per spec section and per PDU: `header.rs` (4.1), `code.rs` (code points),
//! `frame.rs` (stream framing, decode errors), `context.rs` (presentation contexts),
//! `bind.rs` (4.2), `bind_ack.rs` (4.3), `bind_nak.rs` (4.4), `request.rs` (4.5),
//! `response.rs` (4.6), `fault.rs` (4.7), `pdu.rs` (any PDU, unknown types).
//!
//! ```text
//! common header (spec 4.1)              bind / alter_context body (spec 4.2)
//!  0 u8  rpc_vers = 5                   16 u16 max_xmit_frag     18 u16 max_recv_frag
//!  1 u8  rpc_vers_minor = 0             20 u32 assoc_group_id
//!  2 u8  ptype                          24 u8  n_context_elem    25 u8 + 26 u16 reserved
//!  3 u8  pfc_flags                      28 n_context_elem context items:
//!  4 4   drep = 10 00 00 00                  0 u16 p_cont_id  2 u8 n_transfer_syn  3 u8 reserved
//!  8 u16 frag_length (whole PDU)             4 16 abstract syntax UUID, 20 u16 major, 22 u16 minor
//! 10 u16 auth_length = 0                    24 n_transfer_syn x (16 UUID, u32 version)
//! 12 u32 call_id
//!
//! bind_ack / alter_context_resp (4.3)   request (4.5)            response (4.6)   fault (4.7)
//! 16 u16 max_xmit_frag                  16 u32 alloc_hint        16 u32 alloc_hint (all three)
//! 18 u16 max_recv_frag                  20 u16 p_cont_id         20 u16 p_cont_id (all three)
//! 20 u32 assoc_group_id                 22 u16 opnum             22 u8 cancel_count  23 u8 rsvd
//! 24 u16 sec_addr_len                  [24 16 object UUID, only  24 .. stub         24 u32 status
//! 26 sec_addr_len bytes (ASCII + NUL)        with PFC_OBJECT_UUID]                   28 u32 rsvd
//! .. pad to a multiple of 4 from PDU start   24 .. stub                              32 .. stub
//! p  u8 n_results, u8 + u16 reserved
//! p+4 n_results x (u16 result, u16 reason, 16 UUID, u32 version)
//!
//! bind_nak (4.4): 16 u16 provider_reject_reason, 18 u8 n_protocols, 19 n x (u8 major, u8 minor)
//! ```
//!
//! Where the captures decided what the spec leaves open:
//! - The pad bytes after the secondary address are arbitrary: vlmcsd leaves two bytes of
//!   garbage (`31 32`, i.e. "12") there in every alter_context_resp it sends. They are skipped
//!   on input and written as zeros.
//! - vlmcsd's fault PDU carries garbage in `cancel_count` and the reserved byte after it
//!   (vector `vlmcsd-unknown-context-fault`: `ad 26`). `cancel_count` is kept as data; the
//!   reserved bytes are skipped on input and written as zeros.
//! - `drep` bytes 1-3 are not checked (spec 4.1 names byte 0 only) and are written as zeros.

mod bind;
mod bind_ack;
mod bind_nak;
mod code;
mod context;
mod fault;
mod frame;
mod header;
mod pdu;
mod request;
mod response;
#[cfg(test)]
pub(super) mod tests;

pub use bind::{AlterContext, Bind};
pub use bind_ack::{AlterContextResp, BindAck};
pub use bind_nak::BindNak;
pub use code::{NakReason, NcaStatus, PfcFlags, Ptype, RejectReason};
pub use context::{
    BTFN_KEEP_CONNECTION_ON_ORPHAN, BTFN_SECURITY_CONTEXT_MULTIPLEXING, BTFN_WINDOWS_FEATURES,
    ContextElem, ContextResult, InterfaceId, KMS_INTERFACE, NDR32, NDR64, SecondaryAddress,
    SyntaxId, TransferSyntax,
};
pub use fault::Fault;
pub use frame::{Frame, FrameError, PduError, check_frame};
pub use header::{
    DEFAULT_MAX_FRAG, DREP_LITTLE_ENDIAN, HEADER_LEN, Header, MAX_FRAG_LENGTH, field,
};
use pdu::{Body, pad_from};
pub use pdu::{Pdu, UnknownPdu};
pub use request::Request;
pub use response::{Response, ResponseRef};
