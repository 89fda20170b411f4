//! `wire`: the KMS protocol without I/O.
//!
//! Bytes in, bytes out. Nothing here opens a socket, reads a clock or draws random numbers:
//! the caller passes `now` and random bytes in, so every encoding is deterministic and every
//! decoder can be fuzzed and checked against the captured vectors in `tests/data/`.
//!
//! Layout:
//! - [`reader`]: the one bounded reader and [`DecodeError`].
//! - [`base`]: request and response bases (spec 5), FILETIME, versions.
//! - [`crypto`]: Rijndael with 128- and 160-bit keys, the V6 key schedule, MAC4, CBC (spec 6).
//! - [`kms`]: V4/V5/V6 request and response payloads and the client's checks (spec 7).
//! - [`rpc`]: DCE/RPC PDUs (spec 4).
//! - [`ndr`]: the NDR32/NDR64 stubs of `RequestActivation` (spec 4.8).
//! - [`session`]: the client's and the host's RPC state machines: bind, negotiation,
//!   alter_context, calls (spec 4.9, 10.10).
//!
//! `fuzzing` (hidden) holds the harnesses that `fuzz/` and `tests/it/fuzz_corpus.rs` share.
#![warn(missing_docs)]

pub mod base;
pub mod crypto;
#[doc(hidden)]
pub mod fuzzing;
pub mod kms;
pub mod ndr;
pub mod reader;
pub mod rpc;
pub mod session;

pub use base::{FileTime, RequestBase, ResponseBase, Version};

/// The TCP port KMS hosts listen on and clients connect to when no port is given (spec 2).
pub const KMS_PORT: u16 = 1688;
pub use reader::{DecodeError, Reader, WriteLe};
