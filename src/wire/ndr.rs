//! The NDR32 and NDR64 stubs of `RequestActivation` (`kms-protocol.md` section 4.8): the
//! parameters that travel in a request or response PDU around the opaque KMS payload.
//!
//! ```text
//! int RequestActivation([in] int requestSize, [in, size_is(requestSize)] unsigned char *request,
//!                       [out] int *responseSize, [out, size_is(, *responseSize)] unsigned char **response);
//!
//! request, NDR32 (8 + L)           request, NDR64 (16 + L)
//!  0 u32 requestSize = L            0 u32 requestSize = L     4 pad (u64 alignment)
//!  4 u32 max_count = L              8 u64 max_count = L
//!  8 L   payload                   16 L   payload               (no trailing padding)
//!
//! response, NDR32, success          response, NDR64, success
//!  0 u32 responseSize = M           0 u32 responseSize = M    4 pad
//!  4 u32 referent id != 0           8 u64 referent id != 0 (hosts: 0x20000)
//!  8 u32 conformance = M           16 u64 conformance = M
//! 12 M   payload                   24 M   payload
//!  .. 0-3 pad to a multiple of 4    .. 0-3 pad to a multiple of 4
//!  .. u32 return value (0)          .. u32 return value (0)
//!
//! response, error (NULL *response, no array)
//!   NDR32 (12): u32 responseSize (0), u32 referent 0, u32 HRESULT
//!   NDR64 (20): u32 responseSize (0), 4 pad, u64 referent 0, u32 HRESULT
//! ```
//!
//! Offsets count from the stub start, PDU offset 24, which is 8-aligned, so stub-relative
//! alignment equals PDU-relative alignment. A request or response PDU's `alloc_hint` is the
//! stub length ([`RequestStub::buffer_len`], [`ResponseStub::buffer_len`]).
//!
//! Decoders check that `requestSize`/`responseSize` equal the array's conformance and that
//! the stub ends exactly where the layout does (no missing, no extra bytes). Pad bytes are
//! skipped whatever they hold and written as zeros.
//!
//! Alignment of the return value: both reference hosts write the return value straight after
//! the payload and pad after it; NDR (and this encoder) pads first. Because a response with a
//! payload always returns 0, the pad and the return value are all zeros either way and the
//! bytes are identical: every captured response re-encodes byte for byte (spec 4.8). Only a
//! non-zero return value *with* a payload whose length is not a multiple of 4 would differ,
//! and no host sends one.
//!
//! Left out: the KMS payload itself (see [`super::kms`]) and the RPC header around the stub
//! (see [`super::rpc`]).

use std::fmt;
use std::num::NonZeroU64;

use super::reader::{DecodeError, Reader, WriteLe};

/// The NDR flavour a stub is encoded in, chosen by the presentation context of the call
/// (spec 4.9: "a client MUST choose the stub encoding from the context id it sends").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Syntax {
    /// NDR 2.0, 32-bit conformances and referents.
    Ndr32,
    /// NDR64, 64-bit conformances and referents, 8-byte alignment.
    Ndr64,
}

impl fmt::Display for Syntax {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ndr32 => "NDR32",
            Self::Ndr64 => "NDR64",
        })
    }
}

/// The referent id both reference hosts give the `*response` pointer (spec 4.8).
pub const REFERENT_ID: NonZeroU64 = NonZeroU64::new(0x0002_0000).expect("non-zero literal");

/// Why a stub could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StubError {
    /// `requestSize` or `responseSize` differs from the conformance of the array it sizes.
    #[error("{field}: {size} differs from the array's conformance (max_count) {conformance}")]
    SizeMismatch {
        /// `requestSize` or `responseSize`.
        field: &'static str,
        /// The size parameter.
        size: u32,
        /// The conformance.
        conformance: u64,
    },
    /// Truncated stub, trailing bytes, or a payload longer than the stub.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// Writes a length as a u32; a KMS payload is a few hundred bytes, so saturation at 4 GiB
/// never happens in practice (such a PDU could not be framed anyway).
fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// The `[in]` parameters of `RequestActivation`: the KMS request payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestStub<'a> {
    /// The KMS request (opaque here).
    pub payload: &'a [u8],
}

impl<'a> RequestStub<'a> {
    /// Decodes a request stub.
    ///
    /// # Errors
    /// [`StubError::SizeMismatch`] when `requestSize` ≠ `max_count`; [`DecodeError`] when the
    /// stub is shorter or longer than the layout says.
    pub fn parse(syntax: Syntax, stub: &'a [u8]) -> Result<Self, StubError> {
        let mut r = Reader::new(stub);
        let size = r.u32("requestSize")?;
        let conformance = match syntax {
            Syntax::Ndr32 => u64::from(r.u32("request max_count")?),
            Syntax::Ndr64 => {
                r.skip(4, "requestSize pad")?;
                r.u64("request max_count")?
            }
        };
        if conformance != u64::from(size) {
            return Err(StubError::SizeMismatch {
                field: "requestSize",
                size,
                conformance,
            });
        }
        let payload = r.take(size as usize, "request payload")?;
        r.finish("request stub")?;
        Ok(Self { payload })
    }

    /// Appends the stub.
    pub fn emit(&self, syntax: Syntax, out: &mut Vec<u8>) {
        let len = len_u32(self.payload.len());
        out.put_u32(len);
        match syntax {
            Syntax::Ndr32 => out.put_u32(len),
            Syntax::Ndr64 => {
                out.put_u32(0);
                out.put_u64(u64::from(len));
            }
        }
        out.extend_from_slice(self.payload);
    }

    /// The stub as a new vector.
    pub fn to_bytes(&self, syntax: Syntax) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.buffer_len(syntax));
        self.emit(syntax, &mut out);
        out
    }

    /// The stub length, which is also the request's `alloc_hint`: 8 + L (NDR32), 16 + L
    /// (NDR64).
    pub fn buffer_len(&self, syntax: Syntax) -> usize {
        fixed_len(syntax, 8, 16) + self.payload.len()
    }
}

fn fixed_len(syntax: Syntax, ndr32: usize, ndr64: usize) -> usize {
    match syntax {
        Syntax::Ndr32 => ndr32,
        Syntax::Ndr64 => ndr64,
    }
}

/// The `[out]` parameters and return value of `RequestActivation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseStub<'a> {
    /// A non-NULL `*response`: the KMS response payload and the return value (0 from every
    /// host; a client treats anything else as that HRESULT).
    Payload {
        /// The KMS response (opaque here); `responseSize` and the conformance are its length.
        payload: &'a [u8],
        /// The pointer's referent id ([`REFERENT_ID`] from hosts). NDR32 carries 32 bits: a
        /// larger value is written as `u32::MAX`.
        referent_id: NonZeroU64,
        /// The return value.
        return_value: u32,
    },
    /// A NULL `*response` (the host refused the request): no array, the return value is the
    /// HRESULT (spec 8.1, path 1).
    Null {
        /// `responseSize`, 0 from every host.
        response_size: u32,
        /// The return value, an HRESULT such as 0xC004F042.
        return_value: u32,
    },
}

impl<'a> ResponseStub<'a> {
    /// A successful response carrying `payload`, as hosts encode it.
    pub fn success(payload: &'a [u8]) -> Self {
        Self::Payload {
            payload,
            referent_id: REFERENT_ID,
            return_value: 0,
        }
    }

    /// A refusal with `hresult`, as hosts encode it (size 0, NULL pointer).
    pub fn error(hresult: u32) -> Self {
        Self::Null {
            response_size: 0,
            return_value: hresult,
        }
    }

    /// The return value.
    pub fn return_value(&self) -> u32 {
        match *self {
            Self::Payload { return_value, .. } | Self::Null { return_value, .. } => return_value,
        }
    }

    /// Decodes a response stub.
    ///
    /// # Errors
    /// [`StubError::SizeMismatch`] when `responseSize` ≠ the conformance; [`DecodeError`]
    /// when the stub is shorter or longer than the layout says.
    pub fn parse(syntax: Syntax, stub: &'a [u8]) -> Result<Self, StubError> {
        let mut r = Reader::new(stub);
        let size = r.u32("responseSize")?;
        let referent = match syntax {
            Syntax::Ndr32 => u64::from(r.u32("response referent id")?),
            Syntax::Ndr64 => {
                r.skip(4, "responseSize pad")?;
                r.u64("response referent id")?
            }
        };
        let Some(referent_id) = NonZeroU64::new(referent) else {
            let return_value = r.u32("return value")?;
            r.finish("response stub")?;
            return Ok(Self::Null {
                response_size: size,
                return_value,
            });
        };
        let conformance = match syntax {
            Syntax::Ndr32 => u64::from(r.u32("response conformance")?),
            Syntax::Ndr64 => r.u64("response conformance")?,
        };
        if conformance != u64::from(size) {
            return Err(StubError::SizeMismatch {
                field: "responseSize",
                size,
                conformance,
            });
        }
        let payload = r.take(size as usize, "response payload")?;
        r.align(4, "return value pad")?;
        let return_value = r.u32("return value")?;
        r.finish("response stub")?;
        Ok(Self::Payload {
            payload,
            referent_id,
            return_value,
        })
    }

    /// Appends the stub (return value aligned to 4, see the module docs).
    pub fn emit(&self, syntax: Syntax, out: &mut Vec<u8>) {
        let start = out.len();
        match *self {
            Self::Payload {
                payload,
                referent_id,
                return_value,
            } => {
                let len = len_u32(payload.len());
                out.put_u32(len);
                match syntax {
                    Syntax::Ndr32 => {
                        out.put_u32(u32::try_from(referent_id.get()).unwrap_or(u32::MAX));
                        out.put_u32(len);
                    }
                    Syntax::Ndr64 => {
                        out.put_u32(0);
                        out.put_u64(referent_id.get());
                        out.put_u64(u64::from(len));
                    }
                }
                out.extend_from_slice(payload);
                let pad = (4 - (out.len() - start) % 4) % 4;
                out.resize(out.len() + pad, 0);
                out.put_u32(return_value);
            }
            Self::Null {
                response_size,
                return_value,
            } => {
                out.put_u32(response_size);
                match syntax {
                    Syntax::Ndr32 => out.put_u32(0),
                    Syntax::Ndr64 => {
                        out.put_u32(0);
                        out.put_u64(0);
                    }
                }
                out.put_u32(return_value);
            }
        }
    }

    /// The stub as a new vector.
    pub fn to_bytes(&self, syntax: Syntax) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.buffer_len(syntax));
        self.emit(syntax, &mut out);
        out
    }

    /// The stub length, which is also the response's `alloc_hint` (e.g. V6 NDR32:
    /// 12 + 260 + 4 = 276).
    pub fn buffer_len(&self, syntax: Syntax) -> usize {
        match self {
            Self::Payload { payload, .. } => {
                (fixed_len(syntax, 12, 24) + payload.len()).next_multiple_of(4) + 4
            }
            Self::Null { .. } => fixed_len(syntax, 12, 20),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    /// A 6-byte payload, so that the response needs 2 pad bytes before the return value.
    const PAYLOAD: &str = "000006 00b1bb";

    #[test]
    fn request_ndr32_deconstruct_parse_emit() {
        // Spec 12.4: requestSize 260, max_count 260, payload.
        let mut stub = h("04010000 04010000");
        stub.extend(std::iter::repeat_n(0xa5, 260));
        let parsed = RequestStub::parse(Syntax::Ndr32, &stub).unwrap();
        assert_eq!(parsed.payload, &stub[8..]);
        assert_eq!(parsed.buffer_len(Syntax::Ndr32), 268);
        assert_eq!(parsed.to_bytes(Syntax::Ndr32), stub);
    }

    #[test]
    fn request_ndr64_deconstruct_parse_emit() {
        // Spec 12.5, second request: 04 01 00 00 00 00 00 00 04 01 00 00 00 00 00 00 + 260.
        let mut stub = h("04010000 00000000 0401000000000000");
        stub.extend(std::iter::repeat_n(0x5a, 260));
        let parsed = RequestStub::parse(Syntax::Ndr64, &stub).unwrap();
        assert_eq!(parsed.payload.len(), 260);
        assert_eq!(parsed.buffer_len(Syntax::Ndr64), 276);
        assert_eq!(parsed.to_bytes(Syntax::Ndr64), stub);
    }

    #[test]
    fn request_construct_short_payload() {
        let payload = h(PAYLOAD);
        let stub = RequestStub { payload: &payload };
        assert_eq!(
            stub.to_bytes(Syntax::Ndr32),
            h("06000000 06000000 00000600b1bb")
        );
        assert_eq!(
            stub.to_bytes(Syntax::Ndr64),
            h("06000000 00000000 0600000000000000 00000600b1bb")
        );
    }

    #[test]
    fn request_ndr64_pad_is_skipped_whatever_it_holds() {
        let stub = h("02000000 deadbeef 0200000000000000 abcd");
        assert_eq!(
            RequestStub::parse(Syntax::Ndr64, &stub).unwrap().payload,
            [0xab, 0xcd]
        );
    }

    #[test]
    fn request_rejects_size_mismatch() {
        let err = RequestStub::parse(Syntax::Ndr32, &h("02000000 03000000 abcdef")).unwrap_err();
        assert_eq!(
            err,
            StubError::SizeMismatch {
                field: "requestSize",
                size: 2,
                conformance: 3
            }
        );
        let err = RequestStub::parse(Syntax::Ndr64, &h("02000000 00000000 0200000001000000 abcd"))
            .unwrap_err();
        assert_eq!(
            err,
            StubError::SizeMismatch {
                field: "requestSize",
                size: 2,
                conformance: 0x1_0000_0002
            }
        );
        assert!(err.to_string().starts_with("requestSize"));
    }

    #[test]
    fn request_rejects_truncated_payload() {
        let err = RequestStub::parse(Syntax::Ndr32, &h("03000000 03000000 abcd")).unwrap_err();
        assert_eq!(
            err,
            StubError::Decode(DecodeError::Truncated {
                field: "request payload",
                needed: 3,
                available: 2
            })
        );
    }

    #[test]
    fn request_rejects_trailing_bytes() {
        let err = RequestStub::parse(Syntax::Ndr32, &h("01000000 01000000 ab 000000")).unwrap_err();
        assert_eq!(
            err,
            StubError::Decode(DecodeError::TrailingData {
                field: "request stub",
                extra: 3
            })
        );
    }

    #[test]
    fn request_rejects_truncated_conformance() {
        let err = RequestStub::parse(Syntax::Ndr64, &h("01000000 00000000 0100")).unwrap_err();
        assert!(
            matches!(
                err,
                StubError::Decode(DecodeError::Truncated {
                    field: "request max_count",
                    ..
                })
            ),
            "{err}"
        );
    }

    #[test]
    fn response_ndr32_success_parse_emit() {
        // Spec 12.5: responseSize 260, referent 0x20000, conformance 260, payload, S_OK.
        let mut stub = h("04010000 00000200 04010000");
        stub.extend(std::iter::repeat_n(0x11, 260));
        stub.extend(h("00000000"));
        let parsed = ResponseStub::parse(Syntax::Ndr32, &stub).unwrap();
        assert_eq!(parsed, ResponseStub::success(&stub[12..272]));
        assert_eq!(parsed.buffer_len(Syntax::Ndr32), 276);
        assert_eq!(parsed.to_bytes(Syntax::Ndr32), stub);
    }

    #[test]
    fn response_ndr64_success_parse_emit() {
        let mut stub = h("04010000 00000000 0000020000000000 0401000000000000");
        stub.extend(std::iter::repeat_n(0x22, 260));
        stub.extend(h("00000000"));
        let parsed = ResponseStub::parse(Syntax::Ndr64, &stub).unwrap();
        assert_eq!(parsed, ResponseStub::success(&stub[24..284]));
        assert_eq!(parsed.buffer_len(Syntax::Ndr64), 288);
        assert_eq!(parsed.to_bytes(Syntax::Ndr64), stub);
    }

    #[test]
    fn response_pads_before_the_return_value() {
        let payload = h(PAYLOAD);
        let stub = ResponseStub::success(&payload);
        let ndr32 = h("06000000 00000200 06000000 00000600b1bb 0000 00000000");
        let ndr64 =
            h("06000000 00000000 0000020000000000 0600000000000000 00000600b1bb 0000 00000000");
        assert_eq!(stub.to_bytes(Syntax::Ndr32), ndr32);
        assert_eq!(stub.buffer_len(Syntax::Ndr32), ndr32.len());
        assert_eq!(stub.to_bytes(Syntax::Ndr64), ndr64);
        assert_eq!(stub.buffer_len(Syntax::Ndr64), ndr64.len());
        assert_eq!(ResponseStub::parse(Syntax::Ndr32, &ndr32).unwrap(), stub);
        // Garbage in the pad is skipped.
        let dirty = h("06000000 00000200 06000000 00000600b1bb ffff 00000000");
        assert_eq!(ResponseStub::parse(Syntax::Ndr32, &dirty).unwrap(), stub);
    }

    #[test]
    fn response_error_stubs() {
        // vlmcsd-time-skew-rejected: 12-byte NDR32 and 20-byte NDR64 error stubs.
        let ndr32 = h("00000000 00000000 6cf004c0");
        let ndr64 = h("00000000 00000000 0000000000000000 6cf004c0");
        let stub = ResponseStub::error(0xC004_F06C);
        assert_eq!(ResponseStub::parse(Syntax::Ndr32, &ndr32).unwrap(), stub);
        assert_eq!(ResponseStub::parse(Syntax::Ndr64, &ndr64).unwrap(), stub);
        assert_eq!(stub.to_bytes(Syntax::Ndr32), ndr32);
        assert_eq!(stub.to_bytes(Syntax::Ndr64), ndr64);
        assert_eq!(stub.buffer_len(Syntax::Ndr32), 12);
        assert_eq!(stub.buffer_len(Syntax::Ndr64), 20);
        assert_eq!(stub.return_value(), 0xC004_F06C);
    }

    #[test]
    fn response_rejects_size_mismatch() {
        let err = ResponseStub::parse(
            Syntax::Ndr32,
            &h("02000000 00000200 03000000 abcdef00 00000000"),
        )
        .unwrap_err();
        assert_eq!(
            err,
            StubError::SizeMismatch {
                field: "responseSize",
                size: 2,
                conformance: 3
            }
        );
    }

    #[test]
    fn response_rejects_truncated_payload() {
        let err = ResponseStub::parse(
            Syntax::Ndr64,
            &h("08000000 00000000 0000020000000000 0800000000000000 abcd"),
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                StubError::Decode(DecodeError::Truncated {
                    field: "response payload",
                    ..
                })
            ),
            "{err}"
        );
    }

    #[test]
    fn response_rejects_missing_return_value() {
        let err =
            ResponseStub::parse(Syntax::Ndr32, &h("02000000 00000200 02000000 abcd")).unwrap_err();
        assert!(
            matches!(
                err,
                StubError::Decode(DecodeError::Truncated {
                    field: "return value pad",
                    ..
                })
            ),
            "{err}"
        );
        let err = ResponseStub::parse(Syntax::Ndr32, &h("00000000 00000000 6cf0")).unwrap_err();
        assert!(
            matches!(
                err,
                StubError::Decode(DecodeError::Truncated {
                    field: "return value",
                    ..
                })
            ),
            "{err}"
        );
    }

    #[test]
    fn response_rejects_trailing_bytes() {
        let err = ResponseStub::parse(Syntax::Ndr32, &h("00000000 00000000 6cf004c0 00000000"))
            .unwrap_err();
        assert_eq!(
            err,
            StubError::Decode(DecodeError::TrailingData {
                field: "response stub",
                extra: 4
            })
        );
    }

    #[test]
    fn response_rejects_truncated_referent() {
        let err = ResponseStub::parse(Syntax::Ndr64, &h("00000000 00000000 000002")).unwrap_err();
        assert!(
            matches!(
                err,
                StubError::Decode(DecodeError::Truncated {
                    field: "response referent id",
                    ..
                })
            ),
            "{err}"
        );
    }

    proptest! {
        #[test]
        fn request_stubs_round_trip(payload in prop::collection::vec(any::<u8>(), 0..300), ndr64: bool) {
            let syntax = if ndr64 { Syntax::Ndr64 } else { Syntax::Ndr32 };
            let stub = RequestStub { payload: &payload };
            let bytes = stub.to_bytes(syntax);
            prop_assert_eq!(bytes.len(), stub.buffer_len(syntax));
            prop_assert_eq!(RequestStub::parse(syntax, &bytes)?, stub);
        }

        #[test]
        fn response_stubs_round_trip(
            payload in prop::collection::vec(any::<u8>(), 0..300),
            ndr64: bool,
            null: bool,
            referent in 1..=u64::from(u32::MAX),
            size: u32,
            return_value: u32,
        ) {
            let syntax = if ndr64 { Syntax::Ndr64 } else { Syntax::Ndr32 };
            let stub = if null {
                ResponseStub::Null { response_size: size, return_value }
            } else {
                let referent_id = NonZeroU64::new(referent).unwrap();
                ResponseStub::Payload { payload: &payload, referent_id, return_value }
            };
            let bytes = stub.to_bytes(syntax);
            prop_assert_eq!(bytes.len(), stub.buffer_len(syntax));
            prop_assert_eq!(ResponseStub::parse(syntax, &bytes)?, stub);
        }

        #[test]
        fn stub_decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64), ndr64: bool) {
            let syntax = if ndr64 { Syntax::Ndr64 } else { Syntax::Ndr32 };
            if let Ok(s) = RequestStub::parse(syntax, &bytes) {
                let again = s.to_bytes(syntax);
                prop_assert_eq!(RequestStub::parse(syntax, &again)?, s);
            }
            if let Ok(s) = ResponseStub::parse(syntax, &bytes) {
                let again = s.to_bytes(syntax);
                prop_assert_eq!(ResponseStub::parse(syntax, &again)?, s);
            }
        }
    }
}
