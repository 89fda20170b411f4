//! The KMS payloads of protocol V4, V5 and V6 (spec 7.2-7.5) in both directions, and the
//! client's acceptance checks (spec 7.6).
//!
//! - client: [`encode_request`] gives the payload and a [`PendingRequest`];
//!   [`PendingRequest::decode_response`] checks the answer and gives a [`ClientResponse`].
//! - host: [`HostRequest::decode`] gives a [`HostRequest`];
//!   [`HostRequest::encode_response`] builds the answer.
//!
//! Random inputs (the request IV, the response IV and the host's random `R`) are passed in
//! by the caller; nothing here draws randomness or reads a clock.
//!
//! ```text
//! V4 request (252)              V5/V6 request (260)
//!   0 236 request base            0   4 version in clear (00 00 05 00 / 00 00 06 00)
//! 236  16 MAC4(base)              4  16 IV_req
//!                                20 240 CBC(K, IV_req, request base || 04 04 04 04)
//!
//! V4 response (60+P)            V5/V6 response (20 + 16k)
//!   0 44+P response base          0   4 version in clear
//! 44+P 16 MAC4(base)              4  16 IV_resp (V5: = IV_req; V6: fresh)
//!                                20 16k CBC(K, IV_resp, body || PKCS#7)
//!
//! V5 body (92+P)                V6 body (132+P)
//!   0  44+P response base         0  44+P response base
//! 44+P 16 RandomXor = R ^ S_req  44+P 16 RandomXor     60+P 32 RandomHash = SHA-256(R)
//! 60+P 32 RandomHash            92+P  8 HwId          100+P 16 SaltEcho = S_req
//!                              116+P 16 Hmac (spec 7.5)
//! ```
//!
//! (`P` = PIDSize; `S_req = D_K(IV_req)`, `S_resp = D_K(IV_resp)`, spec 6.3.)
//!
//! # Which key for which version (spec 7.3)
//!
//! The clear major version picks the envelope: 4 → V4 (the "clear" version of V4 is the
//! first four bytes of the plaintext base), 5 → V5, 6 **and above** → V6. The spec only
//! says that vlmcsd uses the V6 key for any major above 5; the captured `7.0` requests of
//! `vlmcsd-bad-protocol-version` and `pykms-bad-protocol-version` confirm that clients
//! encrypt unknown newer versions with the V6 key, so [`HostRequest::decode_any_version`]
//! decrypts them that way (for logging what was sent), while the strict
//! [`HostRequest::decode`] answers [`RequestError::UnsupportedVersion`] for anything but
//! 4.0/5.0/6.0 before touching the ciphertext (the host then replies 0x8007000D, spec 8.2).
//! Majors below 4 have no envelope at all.
//!
//! # Client checks
//!
//! [`PendingRequest::decode_response`] applies checks 2-13 of spec 7.6 in order and returns
//! the first failure as its own [`ResponseError`] variant ([`ResponseError::check`] gives
//! the check number). Deviations from the spec table, all deliberate:
//! - check 4' (V6 response IV equal to the request IV) is not an error but
//!   [`ClientResponse::iv_reused`];
//! - check 6 (exact length) is an error although vlmcs only warns;
//! - check 14 (count below the requirement) is not an error: the response is valid and
//!   [`ClientResponse::is_activated`] says whether the count suffices.
//!
//! Left out: the RPC/NDR layers around the payload (check 1), and any HRESULT mapping; the
//! spec's convention (0x8007000D for checks 2-13) belongs to the client's outcome mapping.
//!
//! # Fuzzing
//!
//! When built with `--cfg fuzzing`, the MAC4 comparisons (host request and client check 7),
//! the `RandomHash` comparison (check 11) and the V6 HMAC comparison (check 13, reported as
//! slot delta 0) always succeed, so a fuzzer reaches the parsers behind them. Normal builds
//! are unaffected.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use super::base::{FileTime, REQUEST_BASE_LEN, RequestBase, ResponseBase, Version};
use super::crypto::{
    self, BLOCK_LEN, BlockCipher128, CryptoError, V6_CIPHER, cbc_decrypt, cbc_encrypt_padded, mac4,
    random_hash, v5_cipher, v6_hmac,
};
use super::reader::{DecodeError, Reader};

/// V4 request payload length: base + MAC4 (spec 7.2).
pub const V4_REQUEST_LEN: usize = REQUEST_BASE_LEN + BLOCK_LEN;
/// V5/V6 request payload length: version + IV + 240 bytes of ciphertext (spec 7.3).
pub const ENCRYPTED_REQUEST_LEN: usize = 4 + BLOCK_LEN + ENCRYPTED_REQUEST_CIPHERTEXT_LEN;
/// Ciphertext length of a V5/V6 request: the base plus four `04` padding bytes.
const ENCRYPTED_REQUEST_CIPHERTEXT_LEN: usize = REQUEST_BASE_LEN + 4;
/// Offset of the ciphertext in a V5/V6 payload (after version and IV).
const CIPHERTEXT_OFFSET: usize = 4 + BLOCK_LEN;
/// Longest ciphertext of a valid response: V6 body with `P = 128` (260 bytes) plus a
/// block of padding, rounded: 272. Longer ones are decrypted on the heap.
const MAX_RESPONSE_CIPHERTEXT: usize = 272;

/// The payload envelope a version uses (spec 7.1, 7.3): which key, which layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Plaintext base + MAC4 (spec 7.2).
    V4,
    /// AES-128 CBC, IV echoed, `RandomXor`/`RandomHash` (spec 7.3, 7.4).
    V5,
    /// AES-128 with the V6 schedule change, CBC, `HwId`, `SaltEcho`, HMAC (spec 7.3, 7.5).
    V6,
}

impl Protocol {
    /// The envelope for `version`: major 4 → V4, 5 → V5, 6 and above → V6 (as vlmcsd does
    /// for majors above 5, see the module docs); `None` below 4.
    pub fn for_version(version: Version) -> Option<Self> {
        match version.major {
            4 => Some(Self::V4),
            5 => Some(Self::V5),
            6.. => Some(Self::V6),
            _ => None,
        }
    }

    /// Request payload length: 252 for V4, 260 for V5/V6.
    pub fn request_len(self) -> usize {
        match self {
            Self::V4 => V4_REQUEST_LEN,
            Self::V5 | Self::V6 => ENCRYPTED_REQUEST_LEN,
        }
    }

    /// Response payload length for a given `PIDSize` (spec 7.7): V4 `60 + P`, V5/V6 the
    /// clear version and IV plus the padded body.
    pub fn response_len(self, pid_size: usize) -> usize {
        match self {
            Self::V4 => self.response_body_len(pid_size),
            Self::V5 | Self::V6 => {
                let body = self.response_body_len(pid_size);
                CIPHERTEXT_OFFSET + BLOCK_LEN * (body / BLOCK_LEN + 1)
            }
        }
    }

    /// Unpadded response body length (spec 7.6 check 6): V4 `60 + P` (the whole payload),
    /// V5 `92 + P`, V6 `132 + P`.
    pub fn response_body_len(self, pid_size: usize) -> usize {
        pid_size.saturating_add(match self {
            Self::V4 => 60,
            Self::V5 => 92,
            Self::V6 => 132,
        })
    }
}

/// A KMS host's hardware id: 8 bytes, sent only in V6 responses (spec 10.6). Displays as 16
/// uppercase hex digits in wire order, e.g. `3A1C049600B60076`.
///
/// This is the one HwID type of the crate: the client reads it from V6 responses, the
/// reference host ([`crate::host`]) sends it and takes it from `--hwid` and `--state` files.
///
/// [`HwId::default`] is [`HwId::VLMCSD_DEFAULT`], not eight zero bytes: the reference host sends
/// it when none is configured, as vlmcsd does, so clients see the value a real emulator host
/// shows, and no other part of kmsload needs a "no HwID" value (a response without one is an
/// `Option<HwId>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HwId(pub [u8; 8]);

impl HwId {
    /// vlmcsd's default HwID, `3A1C049600B60076` (spec 10.6).
    pub const VLMCSD_DEFAULT: Self = Self([0x3A, 0x1C, 0x04, 0x96, 0x00, 0xB6, 0x00, 0x76]);
}

impl Default for HwId {
    fn default() -> Self {
        Self::VLMCSD_DEFAULT
    }
}

/// 16 upper-case hex digits in wire order.
impl fmt::Display for HwId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02X}"))
    }
}

/// A string that is not a [`HwId`]; it carries the text given, for the user's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid HwID {0:?}: expected 16 hex digits in wire order, e.g. 3A1C049600B60076")]
pub struct HwIdError(pub String);

/// 16 hex digits in wire order, either case; surrounding whitespace is ignored (`--hwid`,
/// `--state` files).
impl FromStr for HwId {
    type Err = HwIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let err = || HwIdError(s.to_owned());
        if t.len() != 16 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(err());
        }
        let mut out = [0u8; 8];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&t[2 * i..2 * i + 2], 16).map_err(|_| err())?;
        }
        Ok(Self(out))
    }
}

// ---------------------------------------------------------------------------------------
// Client side

/// Why a request could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The base's major version is below 4: no envelope exists for it.
    #[error("no KMS envelope for version {version} (major must be 4 or above)")]
    UnsupportedVersion {
        /// The version in the request base.
        version: Version,
    },
}

/// What the client must remember about a request it sent to check the response (spec 7.6).
/// Small and `Copy`: keep it beside the connection until the response arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingRequest {
    /// Envelope used.
    pub protocol: Protocol,
    /// Version of the request (clear and inner; they are the same when encoded here).
    pub version: Version,
    /// CMID sent (check 9).
    pub client_machine_id: Uuid,
    /// RequestTime sent (check 10).
    pub request_time: FileTime,
    /// RequiredClientCount sent (check 14, see [`ClientResponse::is_activated`]).
    pub required_client_count: u32,
    /// `IV_req` (checks 4 and 4'); all zero for V4, which has none.
    pub iv: [u8; BLOCK_LEN],
    /// `S_req = D_K(IV_req)` (checks 11 and 12); all zero for V4.
    pub salt: [u8; BLOCK_LEN],
}

/// Encodes a request payload for `base` (spec 7.2, 7.3), with the envelope its
/// `base.version` selects ([`Protocol::for_version`]). `iv` is `IV_req`, 16 random bytes
/// from the caller; V4 ignores it.
///
/// # Errors
/// [`EncodeError::UnsupportedVersion`] for a major version below 4.
pub fn encode_request(
    base: &RequestBase,
    iv: [u8; BLOCK_LEN],
) -> Result<(Vec<u8>, PendingRequest), EncodeError> {
    let mut out = Vec::with_capacity(ENCRYPTED_REQUEST_LEN);
    let pending = encode_request_into(base, iv, &mut out)?;
    Ok((out, pending))
}

/// Like [`encode_request`], appending the payload to `out` (nothing is appended on error).
///
/// # Errors
/// [`EncodeError::UnsupportedVersion`] for a major version below 4.
pub fn encode_request_into(
    base: &RequestBase,
    iv: [u8; BLOCK_LEN],
    out: &mut Vec<u8>,
) -> Result<PendingRequest, EncodeError> {
    let protocol = request_protocol(base)?;
    let start = begin_request(protocol, base.version, &iv, out);
    base.emit(out);
    let (iv, salt) = finish_request(protocol, iv, out, start);
    Ok(PendingRequest {
        protocol,
        version: base.version,
        client_machine_id: base.client_machine_id,
        request_time: base.request_time,
        required_client_count: base.required_client_count,
        iv,
        salt,
    })
}

/// The envelope `base` is encoded in: what [`encode_request_into`] checks before it writes,
/// for a caller that encodes later (the client, once it has a connection).
///
/// # Errors
/// [`EncodeError::UnsupportedVersion`] for a major version below 4.
pub fn request_protocol(base: &RequestBase) -> Result<Protocol, EncodeError> {
    Protocol::for_version(base.version).ok_or(EncodeError::UnsupportedVersion {
        version: base.version,
    })
}

/// Wraps an already encoded 236-byte request base in the envelope `clear` selects, appending
/// the payload to `out`. For captures and fault injection: the base bytes are sent as they
/// are (vlmcs, for one, leaves stale bytes after the machine name's NUL, which
/// [`RequestBase`] does not keep). `clear` is the version written in clear (V5/V6) and the
/// one the response is checked against; for V4 the base's own first four bytes are the
/// version on the wire.
///
/// # Errors
/// [`EncodeError::UnsupportedVersion`] when `clear` has a major version below 4.
pub fn encode_request_raw(
    clear: Version,
    base: &[u8; REQUEST_BASE_LEN],
    iv: [u8; BLOCK_LEN],
    out: &mut Vec<u8>,
) -> Result<PendingRequest, EncodeError> {
    let protocol =
        Protocol::for_version(clear).ok_or(EncodeError::UnsupportedVersion { version: clear })?;
    let start = begin_request(protocol, clear, &iv, out);
    out.extend_from_slice(base);
    let (iv, salt) = finish_request(protocol, iv, out, start);
    let le32 = |at: usize| u32::from_le_bytes([base[at], base[at + 1], base[at + 2], base[at + 3]]);
    let mut cmid = [0u8; 16];
    cmid.copy_from_slice(&base[64..80]);
    Ok(PendingRequest {
        protocol,
        version: clear,
        client_machine_id: Uuid::from_bytes_le(cmid),
        request_time: FileTime(u64::from(le32(84)) | (u64::from(le32(88)) << 32)),
        required_client_count: le32(80),
        iv,
        salt,
    })
}

/// Appends what precedes the base (V5/V6: clear version and IV); returns where the base
/// starts.
fn begin_request(
    protocol: Protocol,
    clear: Version,
    iv: &[u8; BLOCK_LEN],
    out: &mut Vec<u8>,
) -> usize {
    if protocol != Protocol::V4 {
        out.extend_from_slice(&clear.to_bytes());
        out.extend_from_slice(iv);
    }
    out.len()
}

/// Seals the base at `out[start..]`: V4 appends MAC4, V5/V6 encrypt it with
/// `04 04 04 04` padding. Returns `(IV_req, S_req)`, both zero for V4.
fn finish_request(
    protocol: Protocol,
    iv: [u8; BLOCK_LEN],
    out: &mut Vec<u8>,
    start: usize,
) -> ([u8; BLOCK_LEN], [u8; BLOCK_LEN]) {
    match protocol {
        Protocol::V4 => {
            let mac = mac4(&out[start..]);
            out.extend_from_slice(&mac);
            ([0; BLOCK_LEN], [0; BLOCK_LEN])
        }
        Protocol::V5 => (iv, encrypt_request(v5_cipher(), &iv, out, start)),
        Protocol::V6 => (iv, encrypt_request(&V6_CIPHER, &iv, out, start)),
    }
}

/// Encrypts the base at `out[start..]` and returns `S_req`.
fn encrypt_request<C: BlockCipher128 + ?Sized>(
    cipher: &C,
    iv: &[u8; BLOCK_LEN],
    out: &mut Vec<u8>,
    start: usize,
) -> [u8; BLOCK_LEN] {
    // 236 bytes of base get exactly the `04 04 04 04` of spec 7.3 as PKCS#7 padding.
    cbc_encrypt_padded(cipher, iv, out, start);
    crypto::salt(cipher, iv)
}

/// A response that passed checks 2-13 of spec 7.6, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientResponse {
    /// Envelope of the response (that of the request).
    pub protocol: Protocol,
    /// Version in clear (for V4, the base's version).
    pub version: Version,
    /// The response base: ePID, echoes, count and intervals.
    pub base: ResponseBase,
    /// RequiredClientCount of the request, for [`ClientResponse::is_activated`].
    pub required_client_count: u32,
    /// `IV_resp`; all zero for V4.
    pub iv: [u8; BLOCK_LEN],
    /// The host's random `R = RandomXor ^ S_req` (V5/V6).
    pub random: Option<[u8; BLOCK_LEN]>,
    /// `S_resp = D_K6(IV_resp)` (V6).
    pub s_resp: Option<[u8; BLOCK_LEN]>,
    /// The host's hardware id (V6).
    pub hwid: Option<HwId>,
    /// The HMAC time-slot delta `d` that matched (V6; hosts use 0).
    pub hmac_slot_delta: Option<i8>,
    /// Check 4' warning (V6): the response IV equals the request IV, as a host built with V5
    /// rules would send (vlmcs calls such hosts "emulators"). Always false for V4/V5.
    pub iv_reused: bool,
}

impl ClientResponse {
    /// The host's `CurrentCount`.
    pub fn current_count(&self) -> u32 {
        self.base.current_count
    }

    /// Check 14 of spec 7.6: `CurrentCount >= RequiredClientCount`. False means the client
    /// reports 0xC004F038 and retries after the activation interval.
    pub fn is_activated(&self) -> bool {
        self.base.current_count >= self.required_client_count
    }
}

/// Why a response was rejected: one variant per check of spec 7.6, in check order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// Check 2/3: the payload is too short for its clear version (4 bytes) or, for V5/V6,
    /// its IV (20 bytes).
    #[error("response payload of {actual} bytes is shorter than {needed}")]
    TooShort {
        /// Bytes needed.
        needed: usize,
        /// Bytes received.
        actual: usize,
    },
    /// Check 2: the clear major version is not the request's.
    #[error("response version {clear} does not match request version {expected}")]
    VersionMismatch {
        /// Version in clear in the response.
        clear: Version,
        /// Version of the request.
        expected: Version,
    },
    /// Check 3: the ciphertext is empty or not a whole number of blocks.
    #[error("response ciphertext length {len} is not a non-zero multiple of 16")]
    BadCiphertextLength {
        /// Ciphertext length in bytes.
        len: usize,
    },
    /// Check 3: the decrypted PKCS#7 padding is invalid (wrong key or corruption).
    #[error("response has invalid PKCS#7 padding after decryption")]
    BadPadding,
    /// Check 4 (V5): the response IV is not the request IV.
    #[error("V5 response IV does not echo the request IV")]
    IvNotEchoed,
    /// Check 5: `PIDSize` or the ePID is malformed (or `PIDSize` is missing).
    #[error("response ePID: {0}")]
    Pid(DecodeError),
    /// Check 6: the payload (V4) or body (V5/V6) length is not what `PIDSize` implies.
    #[error("response length {actual} does not match the {expected} bytes its PIDSize implies")]
    LengthMismatch {
        /// Length implied by `PIDSize`.
        expected: usize,
        /// Length received.
        actual: usize,
    },
    /// Check 7 (V4): the MAC4 over the response base does not match.
    #[error("V4 response MAC does not match")]
    Mac4Mismatch,
    /// Check 8: the version in the response base differs from the request's or the clear one.
    #[error("response base version {inner} does not match request {expected} / clear {clear}")]
    InnerVersionMismatch {
        /// Version inside the response base.
        inner: Version,
        /// Version of the request.
        expected: Version,
        /// Version in clear in the response.
        clear: Version,
    },
    /// Check 9: the echoed CMID is not the request's.
    #[error("response CMID {actual} does not echo request CMID {expected}")]
    CmidMismatch {
        /// CMID of the request.
        expected: Uuid,
        /// CMID in the response.
        actual: Uuid,
    },
    /// Check 10: the echoed RequestTime is not the request's.
    #[error("response RequestTime {} does not echo request time {}", actual.0, expected.0)]
    RequestTimeMismatch {
        /// RequestTime of the request.
        expected: FileTime,
        /// RequestTime in the response.
        actual: FileTime,
    },
    /// Check 11 (V5/V6): `SHA-256(RandomXor ^ S_req) != RandomHash`: the host could not
    /// decrypt the request.
    #[error("response RandomHash does not match SHA-256(RandomXor ^ S_req)")]
    RandomHashMismatch,
    /// Check 12 (V6): `SaltEcho != S_req`.
    #[error("V6 response SaltEcho is not the request salt")]
    SaltEchoMismatch,
    /// Check 13 (V6): the HMAC matches for none of the slot deltas -1, 0, +1.
    #[error("V6 response HMAC does not match for any time slot")]
    HmacMismatch,
}

impl ResponseError {
    /// Number of the spec 7.6 check that failed (2..=13).
    pub fn check(&self) -> u8 {
        match self {
            Self::TooShort { needed, .. } => {
                if *needed <= 4 {
                    2
                } else {
                    3
                }
            }
            Self::VersionMismatch { .. } => 2,
            Self::BadCiphertextLength { .. } | Self::BadPadding => 3,
            Self::IvNotEchoed => 4,
            Self::Pid(_) => 5,
            Self::LengthMismatch { .. } => 6,
            Self::Mac4Mismatch => 7,
            Self::InnerVersionMismatch { .. } => 8,
            Self::CmidMismatch { .. } => 9,
            Self::RequestTimeMismatch { .. } => 10,
            Self::RandomHashMismatch => 11,
            Self::SaltEchoMismatch => 12,
            Self::HmacMismatch => 13,
        }
    }
}

impl PendingRequest {
    /// Decodes a response payload to this request and applies checks 2-13 of spec 7.6 in
    /// order (see the module docs for check 4', 6 and 14).
    ///
    /// # Errors
    /// The first failing check as a [`ResponseError`].
    ///
    /// # Fuzzing
    /// Under `cfg(fuzzing)` checks 7, 11 and 13 always pass.
    pub fn decode_response(&self, payload: &[u8]) -> Result<ClientResponse, ResponseError> {
        // Check 2.
        let Some(clear) = payload.first_chunk::<4>() else {
            return Err(ResponseError::TooShort {
                needed: 4,
                actual: payload.len(),
            });
        };
        let clear = Version::from_bytes(*clear);
        if clear.major != self.version.major {
            return Err(ResponseError::VersionMismatch {
                clear,
                expected: self.version,
            });
        }
        match self.protocol {
            Protocol::V4 => self.decode_v4(payload, clear),
            Protocol::V5 => self.decode_encrypted(v5_cipher(), payload, clear),
            Protocol::V6 => self.decode_encrypted(&V6_CIPHER, payload, clear),
        }
    }

    fn decode_v4(&self, payload: &[u8], clear: Version) -> Result<ClientResponse, ResponseError> {
        // Checks 5 and 6.
        let mut r = Reader::new(payload);
        let (base, pid_size) = read_response_base(&mut r, Protocol::V4)?;
        // Check 7.
        let signed = &payload[..r.position()];
        let mac = r
            .array::<BLOCK_LEN>("response.mac")
            .map_err(|_| length(Protocol::V4, pid_size, payload))?;
        if !authentic(mac4(signed) == mac) {
            return Err(ResponseError::Mac4Mismatch);
        }
        self.check_echoes(&base, clear)?;
        Ok(ClientResponse {
            protocol: Protocol::V4,
            version: clear,
            base,
            required_client_count: self.required_client_count,
            iv: [0; BLOCK_LEN],
            random: None,
            s_resp: None,
            hwid: None,
            hmac_slot_delta: None,
            iv_reused: false,
        })
    }

    fn decode_encrypted<C: BlockCipher128 + ?Sized>(
        &self,
        cipher: &C,
        payload: &[u8],
        clear: Version,
    ) -> Result<ClientResponse, ResponseError> {
        let protocol = self.protocol;
        // Check 3.
        let (Some(iv), Some(ciphertext)) = (
            payload.get(4..CIPHERTEXT_OFFSET),
            payload.get(CIPHERTEXT_OFFSET..),
        ) else {
            return Err(ResponseError::TooShort {
                needed: CIPHERTEXT_OFFSET,
                actual: payload.len(),
            });
        };
        let mut iv_resp = [0u8; BLOCK_LEN];
        iv_resp.copy_from_slice(iv);
        let mut stack = [0u8; MAX_RESPONSE_CIPHERTEXT];
        let mut heap;
        let buf: &mut [u8] = if ciphertext.len() <= MAX_RESPONSE_CIPHERTEXT {
            &mut stack[..ciphertext.len()]
        } else {
            heap = vec![0u8; ciphertext.len()];
            &mut heap
        };
        buf.copy_from_slice(ciphertext);
        let body_len = crypto::cbc_decrypt_padded(cipher, &iv_resp, buf).map_err(|e| match e {
            CryptoError::BadLength { len } => ResponseError::BadCiphertextLength { len },
            CryptoError::BadPadding => ResponseError::BadPadding,
        })?;
        let body = &buf[..body_len];
        // Check 4 / 4'.
        let iv_reused = iv_resp == self.iv;
        if protocol == Protocol::V5 && !iv_reused {
            return Err(ResponseError::IvNotEchoed);
        }
        // Checks 5 and 6.
        let mut r = Reader::new(body);
        let (base, pid_size) = read_response_base(&mut r, protocol)?;
        let bad_len = |_| length(protocol, pid_size, body);
        let random_xor = r
            .array::<BLOCK_LEN>("response.random_xor")
            .map_err(bad_len)?;
        let hash = r.array::<32>("response.random_hash").map_err(bad_len)?;
        // Checks 8 to 10.
        self.check_echoes(&base, clear)?;
        // Check 11.
        let mut random = random_xor;
        crypto::xor_into(&mut random, &self.salt);
        if !authentic(random_hash(&random) == hash) {
            return Err(ResponseError::RandomHashMismatch);
        }
        let mut out = ClientResponse {
            protocol,
            version: clear,
            base,
            required_client_count: self.required_client_count,
            iv: iv_resp,
            random: Some(random),
            s_resp: None,
            hwid: None,
            hmac_slot_delta: None,
            iv_reused: false,
        };
        if protocol == Protocol::V5 {
            return Ok(out);
        }
        let hwid = HwId(r.array("response.hwid").map_err(bad_len)?);
        let salt_echo = r
            .array::<BLOCK_LEN>("response.salt_echo")
            .map_err(bad_len)?;
        let signed = &body[..r.position()];
        let hmac = r.array::<16>("response.hmac").map_err(bad_len)?;
        // Check 12.
        if salt_echo != self.salt {
            return Err(ResponseError::SaltEchoMismatch);
        }
        // Check 13: hosts use d = 0, so try it first.
        let s_resp = crypto::salt(cipher, &iv_resp);
        let t = out.base.request_time;
        let delta = [0i8, -1, 1]
            .into_iter()
            .find(|&d| v6_hmac(t, d, &s_resp, signed) == hmac)
            .or(fuzzing().then_some(0))
            .ok_or(ResponseError::HmacMismatch)?;
        out.s_resp = Some(s_resp);
        out.hwid = Some(hwid);
        out.hmac_slot_delta = Some(delta);
        out.iv_reused = iv_reused;
        Ok(out)
    }

    /// Checks 8, 9 and 10.
    fn check_echoes(&self, base: &ResponseBase, clear: Version) -> Result<(), ResponseError> {
        if base.version != self.version || base.version != clear {
            return Err(ResponseError::InnerVersionMismatch {
                inner: base.version,
                expected: self.version,
                clear,
            });
        }
        if base.client_machine_id != self.client_machine_id {
            return Err(ResponseError::CmidMismatch {
                expected: self.client_machine_id,
                actual: base.client_machine_id,
            });
        }
        if base.request_time != self.request_time {
            return Err(ResponseError::RequestTimeMismatch {
                expected: self.request_time,
                actual: base.request_time,
            });
        }
        Ok(())
    }
}

/// Reads the response base from the front of `r` (whose buffer is the V4 payload or the
/// V5/V6 body) and applies checks 5 and 6; returns the base and `PIDSize`.
fn read_response_base(
    r: &mut Reader<'_>,
    protocol: Protocol,
) -> Result<(ResponseBase, usize), ResponseError> {
    let all = r.clone().rest();
    // PIDSize first, so a truncation can say which length PIDSize implies. A missing
    // PIDSize fails check 5.
    let mut peek = r.clone();
    peek.skip(4, "response.version")
        .map_err(ResponseError::Pid)?;
    let pid_size = peek.u32("response.pid_size").map_err(ResponseError::Pid)? as usize;
    let base = ResponseBase::read(r).map_err(|e| match e {
        DecodeError::Truncated { .. } => length(protocol, pid_size, all),
        other => ResponseError::Pid(other),
    })?;
    if all.len() != protocol.response_body_len(pid_size) {
        return Err(length(protocol, pid_size, all));
    }
    Ok((base, pid_size))
}

fn length(protocol: Protocol, pid_size: usize, body: &[u8]) -> ResponseError {
    ResponseError::LengthMismatch {
        expected: protocol.response_body_len(pid_size),
        actual: body.len(),
    }
}

// ---------------------------------------------------------------------------------------
// Host side

/// Why a request payload was refused by the host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Fewer than 4 bytes: no version to read.
    #[error("request payload of {actual} bytes has no version")]
    TooShort {
        /// Bytes received.
        actual: usize,
    },
    /// A version the host does not speak. The host answers 0x8007000D (spec 8.2).
    #[error("unsupported KMS protocol version {version}")]
    UnsupportedVersion {
        /// The clear version (for V4, the base's).
        version: Version,
    },
    /// The payload is not 252 (V4) or 260 (V5/V6) bytes long.
    #[error("request payload is {actual} bytes, expected {expected}")]
    BadSize {
        /// Length the version requires.
        expected: usize,
        /// Length received.
        actual: usize,
    },
    /// The decrypted V5/V6 request does not end in `04 04 04 04` (wrong key or corruption).
    #[error("request padding is not 04 04 04 04 after decryption")]
    BadPadding,
    /// The V4 MAC4 over the request base does not match.
    #[error("V4 request MAC does not match")]
    Mac4Mismatch,
    /// The version inside the decrypted base differs from the clear version.
    #[error("request base version {inner} does not match clear version {clear}")]
    InnerVersionMismatch {
        /// Version in clear.
        clear: Version,
        /// Version inside the base.
        inner: Version,
    },
    /// The base did not parse (cannot happen for a payload of the right size; kept so the
    /// decoder never panics).
    #[error("request base: {0}")]
    Base(#[from] DecodeError),
}

/// A request as the host decoded it (spec 7.2, 7.3), with what the response needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRequest {
    /// Envelope the request came in.
    pub protocol: Protocol,
    /// Version in clear (for V4, the base's).
    pub version: Version,
    /// The decoded request base.
    pub base: RequestBase,
    /// `IV_req`; all zero for V4.
    pub iv: [u8; BLOCK_LEN],
    /// `S_req = D_K(IV_req)`; all zero for V4.
    pub salt: [u8; BLOCK_LEN],
}

impl HostRequest {
    /// Decodes a request payload as a host that speaks exactly 4.0, 5.0 and 6.0.
    ///
    /// Order: version (any other → [`RequestError::UnsupportedVersion`], so the host can
    /// answer 0x8007000D), size, then the V4 MAC or the V5/V6 decryption and padding, then
    /// the inner version.
    ///
    /// # Errors
    /// [`RequestError`] naming what failed.
    ///
    /// # Fuzzing
    /// Under `cfg(fuzzing)` the V4 MAC check always passes.
    pub fn decode(payload: &[u8]) -> Result<Self, RequestError> {
        let version = clear_version(payload)?;
        if !version.is_known() {
            return Err(RequestError::UnsupportedVersion { version });
        }
        Self::decode_any_version(payload)
    }

    /// Decodes a request of any version that has an envelope (major 4 and above, see
    /// [`Protocol::for_version`]), e.g. to log what a `7.0` client sent. A host decides
    /// separately whether it answers that version.
    ///
    /// # Errors
    /// As [`HostRequest::decode`], with [`RequestError::UnsupportedVersion`] only for
    /// majors below 4.
    pub fn decode_any_version(payload: &[u8]) -> Result<Self, RequestError> {
        let version = clear_version(payload)?;
        let protocol =
            Protocol::for_version(version).ok_or(RequestError::UnsupportedVersion { version })?;
        if payload.len() != protocol.request_len() {
            return Err(RequestError::BadSize {
                expected: protocol.request_len(),
                actual: payload.len(),
            });
        }
        match protocol {
            Protocol::V4 => {
                let (base, mac) = payload.split_at(REQUEST_BASE_LEN);
                if !authentic(mac4(base) == mac) {
                    return Err(RequestError::Mac4Mismatch);
                }
                Ok(Self {
                    protocol,
                    version,
                    base: RequestBase::parse(base)?,
                    iv: [0; BLOCK_LEN],
                    salt: [0; BLOCK_LEN],
                })
            }
            Protocol::V5 => Self::decrypt(v5_cipher(), protocol, version, payload),
            Protocol::V6 => Self::decrypt(&V6_CIPHER, protocol, version, payload),
        }
    }

    /// V5/V6: `payload` is exactly [`ENCRYPTED_REQUEST_LEN`] bytes.
    fn decrypt<C: BlockCipher128 + ?Sized>(
        cipher: &C,
        protocol: Protocol,
        version: Version,
        payload: &[u8],
    ) -> Result<Self, RequestError> {
        let mut r = Reader::new(payload);
        r.skip(4, "request.clear_version")?;
        let iv = r.array::<BLOCK_LEN>("request.iv")?;
        let mut plain = r.array::<ENCRYPTED_REQUEST_CIPHERTEXT_LEN>("request.ciphertext")?;
        r.finish("request payload")?;
        // 240 is a non-zero multiple of 16, so this cannot fail with BadLength.
        cbc_decrypt(cipher, &iv, &mut plain).map_err(|_| RequestError::BadPadding)?;
        let (base, padding) = plain.split_at(REQUEST_BASE_LEN);
        if padding != [4; 4] {
            return Err(RequestError::BadPadding);
        }
        let base = RequestBase::parse(base)?;
        if base.version != version {
            return Err(RequestError::InnerVersionMismatch {
                clear: version,
                inner: base.version,
            });
        }
        Ok(Self {
            protocol,
            version,
            base,
            iv,
            salt: crypto::salt(cipher, &iv),
        })
    }

    /// Encodes the response payload to this request (spec 7.2, 7.4, 7.5).
    ///
    /// `base` is written as given (its version normally echoes the request's; a different
    /// one lets tests play a misbehaving host). `iv` is `IV_resp` (V6 only: V5 echoes
    /// `IV_req`, V4 has none) and `random` the host's `R` (V5/V6); `hwid` is used by V6
    /// only. The HMAC uses slot delta 0 and `base.request_time`, as both reference hosts do.
    pub fn encode_response(
        &self,
        base: &ResponseBase,
        hwid: HwId,
        iv: [u8; BLOCK_LEN],
        random: [u8; BLOCK_LEN],
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.protocol.response_len(base.pid_size()));
        self.encode_response_into(base, hwid, iv, random, &mut out);
        out
    }

    /// Like [`HostRequest::encode_response`], appending to `out`.
    pub fn encode_response_into(
        &self,
        base: &ResponseBase,
        hwid: HwId,
        iv: [u8; BLOCK_LEN],
        random: [u8; BLOCK_LEN],
        out: &mut Vec<u8>,
    ) {
        match self.protocol {
            Protocol::V4 => {
                let start = out.len();
                base.emit(out);
                let mac = mac4(&out[start..]);
                out.extend_from_slice(&mac);
            }
            Protocol::V5 => self.encrypt_response(v5_cipher(), base, None, &self.iv, random, out),
            Protocol::V6 => self.encrypt_response(&V6_CIPHER, base, Some(hwid), &iv, random, out),
        }
    }

    /// V5 (`hwid` None) and V6 (`hwid` Some) bodies, encrypted.
    fn encrypt_response<C: BlockCipher128 + ?Sized>(
        &self,
        cipher: &C,
        base: &ResponseBase,
        hwid: Option<HwId>,
        iv: &[u8; BLOCK_LEN],
        random: [u8; BLOCK_LEN],
        out: &mut Vec<u8>,
    ) {
        out.extend_from_slice(&self.version.to_bytes());
        out.extend_from_slice(iv);
        let start = out.len();
        base.emit(out);
        let mut random_xor = random;
        crypto::xor_into(&mut random_xor, &self.salt);
        out.extend_from_slice(&random_xor);
        out.extend_from_slice(&random_hash(&random));
        if let Some(hwid) = hwid {
            out.extend_from_slice(&hwid.0);
            out.extend_from_slice(&self.salt);
            let s_resp = crypto::salt(cipher, iv);
            let hmac = v6_hmac(base.request_time, 0, &s_resp, &out[start..]);
            out.extend_from_slice(&hmac);
        }
        cbc_encrypt_padded(cipher, iv, out, start);
    }
}

fn clear_version(payload: &[u8]) -> Result<Version, RequestError> {
    payload
        .first_chunk::<4>()
        .map(|b| Version::from_bytes(*b))
        .ok_or(RequestError::TooShort {
            actual: payload.len(),
        })
}

/// Whether a MAC/hash comparison counts as a match: its result, or always under
/// `cfg(fuzzing)` (see the module's `# Fuzzing` section).
#[inline]
fn authentic(matches: bool) -> bool {
    matches || fuzzing()
}

const fn fuzzing() -> bool {
    cfg!(fuzzing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::crypto::{cbc_decrypt_padded, v6_time_slot};
    use proptest::prelude::*;

    const IV_REQ: [u8; 16] = [0x11; 16];
    const IV_RESP: [u8; 16] = [0x22; 16];
    const RANDOM: [u8; 16] = [0x33; 16];

    fn request_base(version: Version) -> RequestBase {
        RequestBase {
            version,
            is_client_vm: 0,
            license_status: 2,
            binding_expiration: 43200,
            application_id: "55c92734-d682-4d71-983e-d6ec3f16059f".parse().unwrap(),
            sku_id: "2de67392-b7a7-462a-b1ca-108dd189f588".parse().unwrap(),
            kms_counted_id: "58e2134f-8e11-4d17-9cb2-91069c151148".parse().unwrap(),
            client_machine_id: "db14d0c7-6d74-473e-ba6c-45afecc9a68e".parse().unwrap(),
            required_client_count: 25,
            request_time: FileTime(134_397_843_810_000_000),
            previous_client_machine_id: Uuid::nil(),
            machine_name: "mail.windows.cn".into(),
        }
    }

    fn response_base(req: &RequestBase, count: u32) -> ResponseBase {
        ResponseBase {
            version: req.version,
            epid: "03612-00206-568-579566-03-1063-14393.0000-2062020".into(),
            client_machine_id: req.client_machine_id,
            request_time: req.request_time,
            current_count: count,
            activation_interval: 120,
            renewal_interval: 10080,
        }
    }

    /// Client request → host decode → host response payload.
    fn exchange(major: u16) -> (PendingRequest, HostRequest, Vec<u8>) {
        exchange_with(major, |_| {})
    }

    fn exchange_with(
        major: u16,
        edit: impl FnOnce(&mut ResponseBase),
    ) -> (PendingRequest, HostRequest, Vec<u8>) {
        let base = request_base(Version::new(major));
        let (payload, pending) = encode_request(&base, IV_REQ).unwrap();
        let host = HostRequest::decode(&payload).unwrap();
        let mut resp = response_base(&host.base, 50);
        edit(&mut resp);
        let out = host.encode_response(&resp, HwId::VLMCSD_DEFAULT, IV_RESP, RANDOM);
        (pending, host, out)
    }

    fn cipher_for(protocol: Protocol) -> &'static dyn BlockCipher128 {
        match protocol {
            Protocol::V4 => &crypto::V4_CIPHER,
            Protocol::V5 => v5_cipher(),
            Protocol::V6 => &V6_CIPHER,
        }
    }

    /// Re-builds a response with its (decrypted, unpadded) body edited; V4 edits the payload.
    fn reseal(protocol: Protocol, payload: &[u8], edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        if protocol == Protocol::V4 {
            let mut v = payload.to_vec();
            edit(&mut v);
            return v;
        }
        let cipher = cipher_for(protocol);
        let iv: [u8; 16] = payload[4..20].try_into().unwrap();
        let mut body = payload[20..].to_vec();
        let n = cbc_decrypt_padded(cipher, &iv, &mut body).unwrap();
        body.truncate(n);
        edit(&mut body);
        let mut out = payload[..20].to_vec();
        out.extend_from_slice(&body);
        cbc_encrypt_padded(cipher, &iv, &mut out, 20);
        out
    }

    fn pid(body: &[u8]) -> usize {
        u32::from_le_bytes(body[4..8].try_into().unwrap()) as usize
    }

    /// Flips a bit of the body byte at `fixed + P`.
    fn flip(body: &mut [u8], fixed: usize) {
        let at = fixed + pid(body);
        body[at] ^= 1;
    }

    fn reject(major: u16, edit: impl FnOnce(&mut Vec<u8>)) -> ResponseError {
        let (pending, _, payload) = exchange(major);
        let bad = reseal(pending.protocol, &payload, edit);
        pending.decode_response(&bad).unwrap_err()
    }

    // --- client: happy paths ------------------------------------------------------------

    #[test]
    fn v4_exchange_round_trips() {
        let (pending, host, payload) = exchange(4);
        assert_eq!(pending.protocol, Protocol::V4);
        assert_eq!((pending.iv, pending.salt), ([0; 16], [0; 16]));
        assert_eq!(host.base, request_base(Version::V4));
        assert_eq!(payload.len(), Protocol::V4.response_len(100));
        let resp = pending.decode_response(&payload).unwrap();
        assert_eq!(resp.base, response_base(&host.base, 50));
        assert_eq!(
            (resp.random, resp.hwid, resp.hmac_slot_delta),
            (None, None, None)
        );
        assert!(resp.is_activated());
    }

    #[test]
    fn v5_exchange_echoes_the_request_iv() {
        let (pending, host, payload) = exchange(5);
        assert_eq!(host.iv, IV_REQ);
        assert_eq!(payload[4..20], IV_REQ, "V5 ignores IV_resp");
        assert_eq!(payload.len(), Protocol::V5.response_len(100));
        let resp = pending.decode_response(&payload).unwrap();
        assert_eq!(resp.random, Some(RANDOM));
        assert_eq!(resp.hwid, None);
        assert!(!resp.iv_reused, "4' is a V6 warning only");
    }

    #[test]
    fn v6_exchange_carries_hwid_and_hmac_delta() {
        let (pending, host, payload) = exchange(6);
        assert_eq!(pending.salt, host.salt);
        assert_eq!(payload.len(), Protocol::V6.response_len(100));
        let resp = pending.decode_response(&payload).unwrap();
        assert_eq!(resp.hwid.unwrap().to_string(), "3A1C049600B60076");
        assert_eq!(resp.hmac_slot_delta, Some(0));
        assert_eq!(resp.iv, IV_RESP);
        assert_eq!(resp.s_resp, Some(crypto::salt(&V6_CIPHER, &IV_RESP)));
        assert_eq!(resp.random, Some(RANDOM));
        assert!(!resp.iv_reused);
    }

    #[test]
    fn check_4_prime_reused_iv_is_a_warning() {
        let base = request_base(Version::V6);
        let (payload, pending) = encode_request(&base, IV_REQ).unwrap();
        let host = HostRequest::decode(&payload).unwrap();
        let out = host.encode_response(&response_base(&base, 50), HwId::default(), IV_REQ, RANDOM);
        let resp = pending.decode_response(&out).unwrap();
        assert!(resp.iv_reused);
    }

    #[test]
    fn check_13_accepts_neighbouring_slots_only() {
        for (d, ok) in [(-1i8, true), (1, true), (2, false), (-2, false)] {
            let (pending, _, payload) = exchange(6);
            let bad = reseal(Protocol::V6, &payload, |body| {
                let p = pid(body);
                let s_resp = crypto::salt(&V6_CIPHER, &IV_RESP);
                let mac = v6_hmac(pending.request_time, d, &s_resp, &body[..116 + p]);
                body[116 + p..132 + p].copy_from_slice(&mac);
            });
            match pending.decode_response(&bad) {
                Ok(resp) => assert!(ok && resp.hmac_slot_delta == Some(d), "d = {d}"),
                Err(e) => assert!(!ok && e == ResponseError::HmacMismatch, "d = {d}: {e}"),
            }
        }
        assert_ne!(v6_time_slot(FileTime(0), 1), v6_time_slot(FileTime(0), 0));
    }

    #[test]
    fn check_14_low_count_is_valid_but_not_activated() {
        for major in [4, 5, 6] {
            let (pending, _, payload) = exchange_with(major, |b| b.current_count = 24);
            let resp = pending.decode_response(&payload).unwrap();
            assert_eq!((resp.current_count(), resp.required_client_count), (24, 25));
            assert!(!resp.is_activated());
            let (pending, _, payload) = exchange_with(major, |b| b.current_count = 25);
            assert!(pending.decode_response(&payload).unwrap().is_activated());
        }
    }

    // --- client: one test per rejection, in check order ---------------------------------

    #[test]
    fn check_2_too_short_for_version() {
        let (pending, _, _) = exchange(6);
        let err = pending.decode_response(&[0, 0, 6]).unwrap_err();
        assert_eq!(
            err,
            ResponseError::TooShort {
                needed: 4,
                actual: 3
            }
        );
        assert_eq!(err.check(), 2);
    }

    #[test]
    fn check_2_version_mismatch() {
        let (pending, _, mut payload) = exchange(6);
        payload[2] = 5;
        let err = pending.decode_response(&payload).unwrap_err();
        assert_eq!(
            err,
            ResponseError::VersionMismatch {
                clear: Version::V5,
                expected: Version::V6
            }
        );
        assert_eq!(err.check(), 2);
    }

    #[test]
    fn check_3_too_short_for_iv() {
        let (pending, _, payload) = exchange(5);
        let err = pending.decode_response(&payload[..19]).unwrap_err();
        assert_eq!(
            err,
            ResponseError::TooShort {
                needed: 20,
                actual: 19
            }
        );
        assert_eq!(err.check(), 3);
    }

    #[test]
    fn check_3_bad_ciphertext_length() {
        let (pending, _, payload) = exchange(6);
        let n = payload.len();
        assert_eq!(
            pending.decode_response(&payload[..n - 1]),
            Err(ResponseError::BadCiphertextLength { len: n - 21 })
        );
        assert_eq!(
            pending.decode_response(&payload[..20]),
            Err(ResponseError::BadCiphertextLength { len: 0 })
        );
    }

    #[test]
    fn check_3_bad_padding() {
        for major in [5, 6] {
            let (pending, _, mut payload) = exchange(major);
            let n = payload.len();
            // Flipping a byte of the second-to-last ciphertext block flips the same byte of
            // the last plaintext block: the final padding byte.
            payload[n - 17] ^= 0x40;
            assert_eq!(
                pending.decode_response(&payload),
                Err(ResponseError::BadPadding)
            );
        }
    }

    #[test]
    fn check_3_wrong_key_is_bad_padding() {
        // A V6 request answered with V5 rules: clear version 6, but encrypted with the V5 key.
        let (pending, _, payload) = exchange(6);
        let mut body = payload[20..].to_vec();
        let n = cbc_decrypt_padded(&V6_CIPHER, &IV_RESP, &mut body).unwrap();
        body.truncate(n);
        let mut forged = payload[..20].to_vec();
        forged.extend_from_slice(&body);
        cbc_encrypt_padded(v5_cipher(), &IV_RESP, &mut forged, 20);
        assert_eq!(
            pending.decode_response(&forged),
            Err(ResponseError::BadPadding)
        );
    }

    #[test]
    fn check_4_v5_iv_not_echoed() {
        let (pending, _, mut payload) = exchange(5);
        payload[4] ^= 1;
        let err = pending.decode_response(&payload).unwrap_err();
        assert_eq!(err, ResponseError::IvNotEchoed);
        assert_eq!(err.check(), 4);
    }

    #[test]
    fn check_5_pid_size_odd_or_too_large() {
        for major in [4, 5, 6] {
            let err = reject(major, |b| b[4] = 99);
            assert!(
                matches!(
                    &err,
                    ResponseError::Pid(DecodeError::InvalidValue {
                        field: "response.pid_size",
                        value: 99,
                        ..
                    })
                ),
                "V{major}: {err:?}"
            );
            let err = reject(major, |b| b[4..8].copy_from_slice(&130u32.to_le_bytes()));
            assert!(matches!(
                &err,
                ResponseError::Pid(DecodeError::InvalidValue { value: 130, .. })
            ));
            assert_eq!(err.check(), 5);
        }
    }

    #[test]
    fn check_5_epid_with_early_nul() {
        for major in [4, 5, 6] {
            let err = reject(major, |b| b[8..10].copy_from_slice(&[0, 0]));
            assert!(
                matches!(
                    &err,
                    ResponseError::Pid(DecodeError::InvalidValue {
                        field: "response.epid",
                        ..
                    })
                ),
                "V{major}: {err:?}"
            );
        }
    }

    #[test]
    fn check_5_missing_pid_size() {
        let err = reject(6, |b| b.truncate(6));
        assert!(matches!(
            err,
            ResponseError::Pid(DecodeError::Truncated {
                field: "response.pid_size",
                ..
            })
        ));
        let (pending, _, payload) = exchange(4);
        assert!(matches!(
            pending.decode_response(&payload[..7]),
            Err(ResponseError::Pid(_))
        ));
    }

    #[test]
    fn check_6_length_mismatch() {
        for (major, fixed) in [(4, 60), (5, 92), (6, 132)] {
            let err = reject(major, |b| b.push(0));
            assert_eq!(
                err,
                ResponseError::LengthMismatch {
                    expected: fixed + 100,
                    actual: fixed + 101
                },
                "V{major}"
            );
            assert_eq!(err.check(), 6);
            // Cut inside the ePID.
            let err = reject(major, |b| b.truncate(50));
            assert_eq!(
                err,
                ResponseError::LengthMismatch {
                    expected: fixed + 100,
                    actual: 50
                }
            );
            // Cut after the base.
            let err = reject(major, |b| b.truncate(b.len() - 1));
            assert_eq!(
                err,
                ResponseError::LengthMismatch {
                    expected: fixed + 100,
                    actual: fixed + 99
                }
            );
        }
    }

    #[test]
    fn check_7_v4_mac_mismatch() {
        // One ePID character changed ...
        let err = reject(4, |b| b[8] ^= 1);
        assert_eq!(err, ResponseError::Mac4Mismatch);
        assert_eq!(err.check(), 7);
        // ... or the MAC itself.
        let err = reject(4, |b| *b.last_mut().unwrap() ^= 1);
        assert_eq!(err, ResponseError::Mac4Mismatch);
    }

    #[test]
    fn check_8_inner_version_mismatch() {
        for major in [4, 5, 6] {
            let inner = Version { major, minor: 1 };
            let (pending, _, payload) = exchange_with(major, |b| b.version = inner);
            let err = pending.decode_response(&payload).unwrap_err();
            let clear = if major == 4 {
                inner
            } else {
                Version::new(major)
            };
            assert_eq!(
                err,
                ResponseError::InnerVersionMismatch {
                    inner,
                    expected: Version::new(major),
                    clear
                },
                "V{major}"
            );
            assert_eq!(err.check(), 8);
        }
        // Inner version right but the clear version's minor differs.
        let (pending, _, mut payload) = exchange(6);
        payload[0] = 1;
        assert!(matches!(
            pending.decode_response(&payload),
            Err(ResponseError::InnerVersionMismatch {
                clear: Version { major: 6, minor: 1 },
                ..
            })
        ));
    }

    #[test]
    fn check_9_cmid_mismatch() {
        for major in [4, 5, 6] {
            let (pending, _, payload) = exchange_with(major, |b| b.client_machine_id = Uuid::nil());
            let err = pending.decode_response(&payload).unwrap_err();
            assert_eq!(
                err,
                ResponseError::CmidMismatch {
                    expected: pending.client_machine_id,
                    actual: Uuid::nil()
                }
            );
            assert_eq!(err.check(), 9);
        }
    }

    #[test]
    fn check_10_request_time_mismatch() {
        for major in [4, 5, 6] {
            let (pending, _, payload) = exchange_with(major, |b| b.request_time.0 += 1);
            let err = pending.decode_response(&payload).unwrap_err();
            assert_eq!(
                err,
                ResponseError::RequestTimeMismatch {
                    expected: pending.request_time,
                    actual: FileTime(pending.request_time.0 + 1)
                }
            );
            assert_eq!(err.check(), 10);
        }
    }

    #[test]
    fn check_11_random_hash_mismatch() {
        for major in [5, 6] {
            // RandomXor starts at 44 + P, RandomHash at 60 + P.
            let err = reject(major, |b| flip(b, 44));
            assert_eq!(err, ResponseError::RandomHashMismatch);
            let err = reject(major, |b| flip(b, 60));
            assert_eq!(err, ResponseError::RandomHashMismatch);
            assert_eq!(err.check(), 11);
        }
        // A host that saw another IV: S_req differs, so R does too.
        let (mut pending, _, payload) = exchange(5);
        pending.salt[0] ^= 1;
        assert_eq!(
            pending.decode_response(&payload),
            Err(ResponseError::RandomHashMismatch)
        );
    }

    #[test]
    fn check_12_salt_echo_mismatch() {
        let err = reject(6, |b| flip(b, 100));
        assert_eq!(err, ResponseError::SaltEchoMismatch);
        assert_eq!(err.check(), 12);
    }

    #[test]
    fn check_13_hmac_mismatch() {
        let err = reject(6, |b| flip(b, 116));
        assert_eq!(err, ResponseError::HmacMismatch);
        assert_eq!(err.check(), 13);
        // The HwID is covered only by the HMAC.
        assert_eq!(reject(6, |b| flip(b, 92)), ResponseError::HmacMismatch);
        // So is a V6 body whose ePID was changed.
        assert_eq!(reject(6, |b| b[8] ^= 1), ResponseError::HmacMismatch);
    }

    #[test]
    fn v5_epid_bit_flip_goes_undetected() {
        // Spec 7.6: nothing authenticates the V5 response base beyond the echoes.
        let (pending, _, payload) = exchange(5);
        let bad = reseal(Protocol::V5, &payload, |b| b[8] ^= 1);
        assert_eq!(
            pending.decode_response(&bad).unwrap().base.epid.as_bytes()[0],
            b'1'
        );
    }

    // --- encode and host rejections ------------------------------------------------------

    #[test]
    fn request_lengths_and_layout() {
        for (major, len) in [(4, 252), (5, 260), (6, 260), (7, 260)] {
            let base = request_base(Version::new(major));
            let (payload, pending) = encode_request(&base, IV_REQ).unwrap();
            assert_eq!(payload.len(), len);
            assert_eq!(payload[..4], Version::new(major).to_bytes());
            if major == 4 {
                assert_eq!(payload[..236], base.to_bytes()[..]);
                assert_eq!(payload[236..], mac4(&base.to_bytes()));
            } else {
                assert_eq!(payload[4..20], IV_REQ);
                assert_eq!(
                    pending.salt,
                    crypto::salt(cipher_for(pending.protocol), &IV_REQ)
                );
            }
        }
    }

    #[test]
    fn encode_rejects_major_below_4() {
        let base = request_base(Version::new(3));
        assert_eq!(
            encode_request(&base, IV_REQ).unwrap_err(),
            EncodeError::UnsupportedVersion {
                version: Version::new(3)
            }
        );
        let mut out = vec![1];
        assert!(encode_request_into(&base, IV_REQ, &mut out).is_err());
        assert_eq!(out, [1]);
    }

    #[test]
    fn host_rejects_short_payload() {
        assert_eq!(
            HostRequest::decode(&[0, 0, 6]),
            Err(RequestError::TooShort { actual: 3 })
        );
    }

    #[test]
    fn host_rejects_unsupported_versions() {
        let (v7, _) = encode_request(&request_base(Version::new(7)), IV_REQ).unwrap();
        assert_eq!(
            HostRequest::decode(&v7),
            Err(RequestError::UnsupportedVersion {
                version: Version::new(7)
            })
        );
        let any = HostRequest::decode_any_version(&v7).unwrap();
        assert_eq!(
            (any.protocol, any.base.version),
            (Protocol::V6, Version::new(7))
        );

        let (mut v61, _) = encode_request(&request_base(Version::V6), IV_REQ).unwrap();
        v61[0] = 1;
        assert!(matches!(
            HostRequest::decode(&v61),
            Err(RequestError::UnsupportedVersion {
                version: Version { major: 6, minor: 1 }
            })
        ));
        let v3 = [0, 0, 3, 0];
        for decode in [HostRequest::decode, HostRequest::decode_any_version] {
            assert_eq!(
                decode(&v3),
                Err(RequestError::UnsupportedVersion {
                    version: Version::new(3)
                })
            );
        }
    }

    #[test]
    fn host_rejects_bad_size() {
        let (v4, _) = encode_request(&request_base(Version::V4), IV_REQ).unwrap();
        assert_eq!(
            HostRequest::decode(&v4[..251]),
            Err(RequestError::BadSize {
                expected: 252,
                actual: 251
            })
        );
        let (mut v6, _) = encode_request(&request_base(Version::V6), IV_REQ).unwrap();
        v6.extend_from_slice(&[0; 16]);
        assert_eq!(
            HostRequest::decode(&v6),
            Err(RequestError::BadSize {
                expected: 260,
                actual: 276
            })
        );
    }

    #[test]
    fn host_rejects_bad_padding() {
        for major in [5, 6] {
            let (mut p, _) = encode_request(&request_base(Version::new(major)), IV_REQ).unwrap();
            p[260 - 17] ^= 1; // last padding byte
            assert_eq!(HostRequest::decode(&p), Err(RequestError::BadPadding));
        }
        // V6 request relabelled as V5: decrypted with the wrong key.
        let (mut p, _) = encode_request(&request_base(Version::V6), IV_REQ).unwrap();
        p[2] = 5;
        assert_eq!(HostRequest::decode(&p), Err(RequestError::BadPadding));
    }

    #[test]
    fn host_rejects_v4_mac_mismatch() {
        let (mut p, _) = encode_request(&request_base(Version::V4), IV_REQ).unwrap();
        p[100] ^= 1;
        assert_eq!(HostRequest::decode(&p), Err(RequestError::Mac4Mismatch));
        let (mut p, _) = encode_request(&request_base(Version::V4), IV_REQ).unwrap();
        p[251] ^= 1;
        assert_eq!(HostRequest::decode(&p), Err(RequestError::Mac4Mismatch));
    }

    #[test]
    fn host_rejects_inner_version_mismatch() {
        let (mut p, _) = encode_request(&request_base(Version::V6), IV_REQ).unwrap();
        p[2] = 7; // still the V6 key, but the base says 6.0
        assert_eq!(
            HostRequest::decode_any_version(&p),
            Err(RequestError::InnerVersionMismatch {
                clear: Version::new(7),
                inner: Version::V6
            })
        );
    }

    #[test]
    fn hwid_display_and_parse() {
        assert_eq!(HwId::VLMCSD_DEFAULT.to_string(), "3A1C049600B60076");
        assert_eq!(HwId::default(), HwId::VLMCSD_DEFAULT);
        assert_eq!("3a1c049600b60076".parse::<HwId>(), Ok(HwId::VLMCSD_DEFAULT));
        assert_eq!(
            " 7992FDFA8B644C99\n".parse::<HwId>().unwrap().to_string(),
            "7992FDFA8B644C99"
        );
        for bad in [
            "",
            "3A1C049600B6007",
            "3A1C049600B600760",
            "3A1C049600B6007G",
            "3A1C049600B6007é",
            "+A1C049600B60076",
        ] {
            assert_eq!(bad.parse::<HwId>(), Err(HwIdError(bad.to_owned())), "{bad}");
        }
    }

    #[test]
    fn response_lengths_match_spec_7_7() {
        assert_eq!(Protocol::V4.response_len(98), 158);
        assert_eq!(Protocol::V5.response_len(98), 212);
        assert_eq!(Protocol::V6.response_len(98), 260);
        assert_eq!(Protocol::V6.response_len(128), 20 + MAX_RESPONSE_CIPHERTEXT);
    }

    #[test]
    fn oversized_ciphertext_is_decoded_on_the_heap() {
        // 300 bytes of ciphertext: valid padding, wrong length → check 6, not a panic.
        let err = reject(6, |b| b.extend_from_slice(&[0; 64]));
        assert!(matches!(err, ResponseError::LengthMismatch { .. }));
    }

    // --- golden vectors --------------------------------------------------------------------

    fn jstr<'a>(v: &'a serde_json::Value, key: &str) -> &'a str {
        v[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} missing in {v}"))
    }

    fn ju64(v: &serde_json::Value, key: &str) -> u64 {
        v[key]
            .as_u64()
            .unwrap_or_else(|| panic!("{key} missing in {v}"))
    }

    fn h16(s: &str) -> [u8; 16] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    fn plaintext(protocol: Protocol, payload: &[u8]) -> Vec<u8> {
        let mut buf = payload[20..].to_vec();
        cbc_decrypt(
            cipher_for(protocol),
            &h16(&hex::encode(&payload[4..20])),
            &mut buf,
        )
        .unwrap();
        buf
    }

    fn check_request(
        ctx: &str,
        kms: &serde_json::Value,
        payload: &[u8],
        dirty: &mut usize,
    ) -> HostRequest {
        let req = HostRequest::decode_any_version(payload).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        let protocol_num = match req.protocol {
            Protocol::V4 => 4,
            Protocol::V5 => 5,
            Protocol::V6 => 6,
        };
        assert_eq!(protocol_num, ju64(kms, "protocol"), "{ctx}");
        assert_eq!(req.version.to_string(), jstr(kms, "outer_version"), "{ctx}");
        let r = &kms["request"];
        let b = &req.base;
        assert_eq!(b.version.to_string(), jstr(r, "version"), "{ctx}");
        assert_eq!(u64::from(b.is_client_vm), ju64(r, "is_client_vm"), "{ctx}");
        assert_eq!(
            u64::from(b.license_status),
            ju64(r, "license_status"),
            "{ctx}"
        );
        assert_eq!(
            u64::from(b.binding_expiration),
            ju64(r, "binding_expiration_min"),
            "{ctx}"
        );
        assert_eq!(
            b.application_id.to_string(),
            jstr(r, "application_id"),
            "{ctx}"
        );
        assert_eq!(b.sku_id.to_string(), jstr(r, "sku_id"), "{ctx}");
        assert_eq!(
            b.kms_counted_id.to_string(),
            jstr(r, "kms_counted_id"),
            "{ctx}"
        );
        assert_eq!(
            b.client_machine_id.to_string(),
            jstr(r, "client_machine_id"),
            "{ctx}"
        );
        assert_eq!(
            u64::from(b.required_client_count),
            ju64(r, "required_client_count"),
            "{ctx}"
        );
        assert_eq!(b.request_time.0, ju64(r, "request_time"), "{ctx}");
        assert_eq!(
            b.previous_client_machine_id.to_string(),
            jstr(r, "previous_client_machine_id"),
            "{ctx}"
        );
        assert_eq!(b.machine_name, jstr(r, "machine_name"), "{ctx}");
        if req.protocol == Protocol::V4 {
            assert_eq!(hex::encode(&payload[236..]), jstr(kms, "mac"), "{ctx}");
            assert_eq!(kms["mac_ok"], true, "{ctx}");
        } else {
            assert_eq!(hex::encode(req.iv), jstr(kms, "iv"), "{ctx}");
            assert_eq!(hex::encode(req.salt), jstr(kms, "s_req"), "{ctx}");
            assert_eq!(
                hex::encode(plaintext(req.protocol, payload)),
                jstr(kms, "plaintext")
            );
            assert_eq!(kms["padding_ok"], true, "{ctx}");
            assert_eq!(kms["inner_version_matches"], true, "{ctx}");
        }
        // Strict decoding accepts exactly the versions a host answers.
        match HostRequest::decode(payload) {
            Ok(strict) => assert_eq!(strict, req, "{ctx}"),
            Err(e) => {
                assert!(!req.version.is_known(), "{ctx}: {e}");
                assert_eq!(
                    e,
                    RequestError::UnsupportedVersion {
                        version: req.version
                    }
                );
            }
        }
        // Re-encoding the captured base bytes reproduces the captured payload ...
        let plain_base: [u8; REQUEST_BASE_LEN] = if req.protocol == Protocol::V4 {
            payload[..236].try_into().unwrap()
        } else {
            plaintext(req.protocol, payload)[..236].try_into().unwrap()
        };
        let mut raw = Vec::new();
        let pending = encode_request_raw(req.version, &plain_base, req.iv, &mut raw).unwrap();
        assert_eq!(
            hex::encode(&raw),
            hex::encode(payload),
            "{ctx}: re-encoded raw request"
        );
        let (again, typed) = encode_request(&req.base, req.iv).unwrap();
        assert_eq!(pending, typed, "{ctx}");
        // ... and so does re-encoding the decoded base, except where the client left stale
        // bytes after the machine name's NUL (vlmcs does): RequestBase zero-fills them.
        let mut clean = plain_base;
        let nul = (108..236)
            .step_by(2)
            .find(|&i| clean[i..i + 2] == [0, 0])
            .unwrap();
        if clean[nul..].iter().any(|&b| b != 0) {
            *dirty += 1;
            clean[nul..].fill(0);
        }
        let mut expected = Vec::new();
        encode_request_raw(req.version, &clean, req.iv, &mut expected).unwrap();
        assert_eq!(
            hex::encode(again),
            hex::encode(expected),
            "{ctx}: re-encoded request"
        );
        req
    }

    fn check_response(ctx: &str, kms: &serde_json::Value, payload: &[u8], host: &HostRequest) {
        let (_, pending) = encode_request(&host.base, host.iv).unwrap();
        let decoded = pending.decode_response(payload);
        assert_eq!(
            decoded.is_ok(),
            kms["all_checks_ok"] == true,
            "{ctx}: {decoded:?}"
        );
        let resp = decoded.unwrap();
        assert_eq!(
            resp.version.to_string(),
            jstr(kms, "outer_version"),
            "{ctx}"
        );
        let r = &kms["response"];
        let b = &resp.base;
        assert_eq!(b.version.to_string(), jstr(r, "version"), "{ctx}");
        assert_eq!(b.pid_size() as u64, ju64(r, "epid_size"), "{ctx}");
        assert_eq!(b.epid, jstr(r, "epid"), "{ctx}");
        assert_eq!(
            b.client_machine_id.to_string(),
            jstr(r, "client_machine_id"),
            "{ctx}"
        );
        assert_eq!(b.request_time.0, ju64(r, "request_time"), "{ctx}");
        assert_eq!(
            u64::from(b.current_count),
            ju64(r, "current_count"),
            "{ctx}"
        );
        assert_eq!(
            u64::from(b.activation_interval),
            ju64(r, "vl_activation_interval_min"),
            "{ctx}"
        );
        assert_eq!(
            u64::from(b.renewal_interval),
            ju64(r, "vl_renewal_interval_min"),
            "{ctx}"
        );
        let verdict = jstr(kms, "client_verdict");
        assert_eq!(
            resp.is_activated(),
            verdict == "activated",
            "{ctx}: {verdict}"
        );
        let checks = &kms["checks"];
        match resp.protocol {
            Protocol::V4 => {
                assert_eq!(
                    hex::encode(&payload[payload.len() - 16..]),
                    jstr(kms, "mac")
                );
                assert_eq!(checks["mac_ok"], true, "{ctx}");
            }
            Protocol::V5 | Protocol::V6 => {
                assert_eq!(hex::encode(resp.iv), jstr(kms, "iv"), "{ctx}");
                assert_eq!(
                    hex::encode(resp.random.unwrap()),
                    jstr(kms, "random"),
                    "{ctx}"
                );
                assert_eq!(
                    hex::encode(plaintext(resp.protocol, payload)),
                    jstr(kms, "plaintext")
                );
                assert_eq!(checks["random_hash_ok"], true, "{ctx}");
            }
        }
        if resp.protocol == Protocol::V6 {
            assert_eq!(resp.hwid.unwrap().to_string(), jstr(kms, "hwid"), "{ctx}");
            assert_eq!(
                hex::encode(resp.s_resp.unwrap()),
                jstr(kms, "s_resp"),
                "{ctx}"
            );
            assert_eq!(
                resp.hmac_slot_delta.map(i64::from),
                kms["hmac_slot_delta"].as_i64(),
                "{ctx}"
            );
            assert_eq!(
                !resp.iv_reused,
                checks["iv_differs_from_request"] == true,
                "{ctx}"
            );
        }
        // Re-encoding from the host side with the recorded random inputs reproduces the bytes.
        let again = host.encode_response(
            b,
            resp.hwid.unwrap_or_default(),
            resp.iv,
            resp.random.unwrap_or_default(),
        );
        assert_eq!(
            hex::encode(again),
            hex::encode(payload),
            "{ctx}: re-encoded response"
        );
    }

    #[test]
    fn golden_vectors() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        assert!(files.len() >= 32, "vectors missing in {}", dir.display());
        let (mut requests, mut responses, mut dirty) = (0, 0, 0);
        for file in &files {
            let name = file.file_name().unwrap().to_string_lossy();
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
            for (ci, conn) in v["connections"].as_array().unwrap().iter().enumerate() {
                let mut host: Option<HostRequest> = None;
                for (pi, pdu) in conn["pdus"].as_array().unwrap().iter().enumerate() {
                    let exp = &v["expected"][ci][pi];
                    let Some(kms) = exp.get("kms") else { continue };
                    let ctx = format!("{name} conn {ci} pdu {pi}");
                    let bytes = hex::decode(jstr(pdu, "hex")).unwrap();
                    let ndr64 = match jstr(exp, "transfer_syntax") {
                        "NDR32" => false,
                        "NDR64" => true,
                        other => panic!("{ctx}: transfer syntax {other}"),
                    };
                    if jstr(exp, "dir") == "c2s" {
                        let len = ju64(&exp["stub"], "request_size") as usize;
                        let at = 24 + if ndr64 { 16 } else { 8 };
                        host = Some(check_request(&ctx, kms, &bytes[at..at + len], &mut dirty));
                        requests += 1;
                    } else {
                        let len = ju64(&exp["stub"], "response_size") as usize;
                        let at = 24 + if ndr64 { 24 } else { 12 };
                        let req = host.take().unwrap_or_else(|| panic!("{ctx}: no request"));
                        check_response(&ctx, kms, &bytes[at..at + len], &req);
                        responses += 1;
                    }
                }
            }
        }
        // 107 KMS payloads in the 32 vectors: 59 requests and 48 responses with a payload.
        assert_eq!((requests, responses), (59, 48));
        // vlmcs requests with stale bytes after the machine name (module docs).
        assert_eq!(dirty, 12);
    }

    // --- property tests -------------------------------------------------------------------

    fn text(max: usize) -> impl Strategy<Value = String> {
        // BMP without NUL: one UTF-16 unit per char, so `max` units always fit.
        prop::collection::vec(prop::char::range('\u{1}', '\u{FFFF}'), 0..=max)
            .prop_map(String::from_iter)
    }

    fn uuid() -> impl Strategy<Value = Uuid> {
        any::<[u8; 16]>().prop_map(Uuid::from_bytes)
    }

    prop_compose! {
        fn any_request_base()(
            major in 4u16..=6,
            is_client_vm in any::<u32>(),
            license_status in any::<u32>(),
            binding_expiration in any::<u32>(),
            ids in (uuid(), uuid(), uuid(), uuid(), uuid()),
            required_client_count in any::<u32>(),
            request_time in any::<u64>(),
            machine_name in text(63),
        ) -> RequestBase {
            RequestBase {
                version: Version::new(major),
                is_client_vm,
                license_status,
                binding_expiration,
                application_id: ids.0,
                sku_id: ids.1,
                kms_counted_id: ids.2,
                client_machine_id: ids.3,
                required_client_count,
                request_time: FileTime(request_time),
                previous_client_machine_id: ids.4,
                machine_name,
            }
        }
    }

    proptest! {
        #[test]
        fn request_round_trips(base in any_request_base(), iv in any::<[u8; 16]>()) {
            let (payload, pending) = encode_request(&base, iv).unwrap();
            let host = HostRequest::decode(&payload).unwrap();
            prop_assert_eq!(&host.base, &base);
            prop_assert_eq!(host.version, base.version);
            prop_assert_eq!((host.iv, host.salt), (pending.iv, pending.salt));
        }

        #[test]
        fn response_round_trips(
            req in any_request_base(),
            req_iv in any::<[u8; 16]>(),
            epid in text(63),
            counts in any::<(u32, u32, u32)>(),
            resp_iv in any::<[u8; 16]>(),
            random in any::<[u8; 16]>(),
            hwid in any::<[u8; 8]>(),
        ) {
            let (payload, pending) = encode_request(&req, req_iv).unwrap();
            let host = HostRequest::decode(&payload).unwrap();
            let base = ResponseBase {
                version: req.version,
                epid,
                client_machine_id: req.client_machine_id,
                request_time: req.request_time,
                current_count: counts.0,
                activation_interval: counts.1,
                renewal_interval: counts.2,
            };
            let out = host.encode_response(&base, HwId(hwid), resp_iv, random);
            prop_assert_eq!(out.len(), pending.protocol.response_len(base.pid_size()));
            let resp = pending.decode_response(&out).unwrap();
            prop_assert_eq!(&resp.base, &base);
            prop_assert_eq!(resp.is_activated(), counts.0 >= req.required_client_count);
            match pending.protocol {
                Protocol::V4 => prop_assert_eq!(resp.random, None),
                Protocol::V5 => {
                    prop_assert_eq!(resp.random, Some(random));
                    prop_assert_eq!(resp.iv, req_iv);
                }
                Protocol::V6 => {
                    prop_assert_eq!(resp.random, Some(random));
                    prop_assert_eq!(resp.hwid, Some(HwId(hwid)));
                    prop_assert_eq!(resp.hmac_slot_delta, Some(0));
                    prop_assert_eq!(resp.iv_reused, resp_iv == req_iv);
                }
            }
        }

        #[test]
        fn decoders_never_panic(
            bytes in prop::collection::vec(any::<u8>(), 0..400),
            major in 4u16..=6,
        ) {
            let _ = HostRequest::decode_any_version(&bytes);
            let (_, pending) = encode_request(&request_base(Version::new(major)), IV_REQ).unwrap();
            let mut payload = Version::new(major).to_bytes().to_vec();
            payload.extend_from_slice(&bytes);
            let _ = pending.decode_response(&payload);
            let _ = pending.decode_response(&bytes);
        }
    }
}
