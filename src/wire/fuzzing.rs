//! Fuzz harnesses: one function per decoder, shared by the cargo-fuzz targets in `fuzz/`
//! and by `tests/it/fuzz_corpus.rs`, which replays the committed corpus under plain
//! `cargo test`.
//!
//! Each harness takes arbitrary bytes. It must never panic on them, and on whatever the
//! decoder accepts it asserts the properties a decoder owes its callers:
//!
//! - [`rpc_pdu`]: [`check_frame`] agrees with the buffer; a parsed PDU re-emits to bytes that
//!   parse to the same PDU, of the announced length; a [`HostSession`] and a
//!   [`ClientSession`] fed the input as a stream of PDUs never panic and always answer in
//!   one of their documented ways.
//! - [`ndr_stub`]: a parsed stub re-emits to bytes that parse to the same stub.
//! - [`kms_request`]: an accepted request re-encodes to one that decodes the same, and the
//!   response a host builds for it passes every client check.
//! - [`kms_response`]: an accepted response re-encodes (as a host would) to one that decodes
//!   the same.
//!
//! The first input byte of the KMS harnesses picks a mode, so one corpus covers both the
//! envelope (the input is the payload as it arrives) and what lies behind the cipher (the
//! input is plaintext that the harness seals with the real key, MAC, hash and HMAC). The
//! second kind reaches the inner parsers even in a normal build, where MACs are checked; a
//! fuzzing build (`--cfg fuzzing`, see [`super::kms`]) also lets raw inputs past them.

use uuid::Uuid;

use super::base::{FileTime, REQUEST_BASE_LEN, RequestBase, ResponseBase, Version};
use super::crypto::{self, BLOCK_LEN, V6_CIPHER, cbc_encrypt_padded, random_hash, v5_cipher};
use super::kms::{HostRequest, HwId, PendingRequest, Protocol, encode_request, encode_request_raw};
use super::ndr::{RequestStub, ResponseStub, Syntax};
use super::rpc::{Frame, Pdu, ResponseRef, check_frame};
use super::session::{
    BindOutcome, ClientRpcConfig, ClientSession, ClientSessionState, HostAction, HostRpcConfig,
    HostSession, SessionError,
};

/// How many PDUs of one input the session harnesses play: enough for bind, alter_context
/// and a few requests, and a bound on the work per input.
const MAX_PDUS: usize = 16;

/// DCE/RPC: framing, PDU parse/emit, and both session state machines.
/// Returns whether the input parsed as one PDU.
pub fn rpc_pdu(data: &[u8]) -> bool {
    match check_frame(data) {
        Frame::Complete(len) => assert!((16..=data.len()).contains(&len), "frame {len}"),
        Frame::Incomplete { needed } => assert!(needed > 0),
        Frame::Invalid(_) => {}
    }
    let parsed = Pdu::parse(data);
    // The client's in-place reading of a response agrees with the general parser.
    match (ResponseRef::parse(data), &parsed) {
        (Ok(view), Ok(Pdu::Response(resp))) => assert_eq!(&view.to_owned(), resp),
        (Ok(view), other) => panic!("ResponseRef read {view:?}, Pdu::parse {other:?}"),
        (Err(_), Ok(Pdu::Response(resp))) => panic!("ResponseRef refused {resp:?}"),
        (Err(_), _) => {}
    }
    if let Ok(pdu) = &parsed {
        let bytes = pdu.to_bytes();
        assert_eq!(bytes.len(), pdu.buffer_len(), "buffer_len of {pdu:?}");
        assert_eq!(Pdu::parse(&bytes).as_ref(), Ok(pdu), "re-parse of {pdu:?}");
    }
    host_session(data);
    client_session(data);
    parsed.is_ok()
}

/// Splits the front of `data` into whole PDUs, at most [`MAX_PDUS`].
fn frames(mut data: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || match check_frame(data) {
        Frame::Complete(len) => {
            let (pdu, rest) = data.split_at(len);
            data = rest;
            Some(pdu)
        }
        Frame::Incomplete { .. } | Frame::Invalid(_) => None,
    })
    .take(MAX_PDUS)
}

fn host_session(data: &[u8]) {
    let mut host = HostSession::new(HostRpcConfig::default(), 0x1063_bf3f);
    for pdu in frames(data) {
        let action = host.handle_pdu(pdu, |payload| {
            let req = HostRequest::decode(payload).map_err(|_| 0x8007_000D_u32)?;
            Ok(respond(&req))
        });
        match action {
            HostAction::Send(reply) => {
                assert!(matches!(check_frame(&reply), Frame::Complete(n) if n == reply.len()));
                assert!(Pdu::parse(&reply).is_ok(), "host sent an unparsable PDU");
            }
            HostAction::Close(_) => {
                assert!(host.is_closed());
                break;
            }
        }
    }
}

fn client_session(data: &[u8]) {
    let mut client = ClientSession::new(ClientRpcConfig::default());
    client.bind().expect("a new session binds");
    let payload = sample_request(Protocol::V6).0;
    for pdu in frames(data) {
        let step = match client.state() {
            ClientSessionState::ExpectBindAck => client.handle_bind_ack(pdu).map(|outcome| {
                if let BindOutcome::AlterContext(alter) = outcome {
                    assert!(Pdu::parse(&alter).is_ok());
                }
            }),
            ClientSessionState::ExpectAlterContextResp => client.handle_alter_context_resp(pdu),
            ClientSessionState::ExpectResponse => client.handle_response(pdu).map(drop),
            state => unreachable!("fed a PDU in state {state:?}"),
        };
        match step {
            // A fault ends the call, not the association: the next request may follow.
            Err(SessionError::Fault { .. }) if client.state() == ClientSessionState::Ready => {}
            Err(_) => {
                assert_eq!(client.state(), ClientSessionState::Failed);
                break;
            }
            Ok(()) => {}
        }
        if client.state() == ClientSessionState::Ready {
            match client.request(&payload) {
                Ok(request) => assert!(Pdu::parse(&request).is_ok()),
                // The host negotiated fragments too small for a KMS request: the caller
                // fails the attempt (nothing was consumed).
                Err(SessionError::PayloadTooLarge { .. }) => break,
                Err(e) => panic!("a ready session refused a request: {e}"),
            }
        }
    }
}

/// NDR32/NDR64 stubs of `RequestActivation`. Byte 0: bit 0 NDR64, bit 1 response stub.
/// Returns whether the stub parsed.
pub fn ndr_stub(data: &[u8]) -> bool {
    let Some((&mode, stub)) = data.split_first() else {
        return false;
    };
    let syntax = if mode & 1 == 0 {
        Syntax::Ndr32
    } else {
        Syntax::Ndr64
    };
    if mode & 2 == 0 {
        let Ok(parsed) = RequestStub::parse(syntax, stub) else {
            return false;
        };
        let bytes = parsed.to_bytes(syntax);
        assert_eq!(bytes.len(), parsed.buffer_len(syntax));
        assert_eq!(RequestStub::parse(syntax, &bytes), Ok(parsed));
    } else {
        let Ok(parsed) = ResponseStub::parse(syntax, stub) else {
            return false;
        };
        let bytes = parsed.to_bytes(syntax);
        assert_eq!(bytes.len(), parsed.buffer_len(syntax));
        assert_eq!(ResponseStub::parse(syntax, &bytes), Ok(parsed));
    }
    true
}

/// Mode byte, bit 0: the rest is `IV_req` (16 bytes) and a plaintext request base, sealed
/// here; otherwise the rest is the payload as it arrives.
const SEAL: u8 = 1;
/// Mode byte, bit 1 (raw payloads only): keep the clear version as given instead of
/// writing the harness's own (4.0, 5.0 or 6.0) over it.
const KEEP_VERSION: u8 = 2;
/// Mode bytes of [`kms_response`], bits 2-4 (sealed inputs only): repair `RandomHash`,
/// `SaltEcho` and the HMAC so checks 11, 12 and 13 pass in a normal build.
const FIX_HASH: u8 = 4;
const FIX_SALT: u8 = 8;
const FIX_HMAC: u8 = 16;

/// The version each harness speaks.
fn version_of(protocol: Protocol) -> Version {
    match protocol {
        Protocol::V4 => Version::V4,
        Protocol::V5 => Version::V5,
        Protocol::V6 => Version::V6,
    }
}

/// The host's decoder for one protocol version's requests. Returns whether it accepted the
/// request.
pub fn kms_request(protocol: Protocol, data: &[u8]) -> bool {
    let Some((&mode, rest)) = data.split_first() else {
        return false;
    };
    let payload = if mode & SEAL != 0 {
        let (Some((iv, base)), version) =
            (rest.split_first_chunk::<BLOCK_LEN>(), version_of(protocol))
        else {
            return false;
        };
        let Some(base) = base.first_chunk::<REQUEST_BASE_LEN>() else {
            return false;
        };
        let mut out = Vec::new();
        encode_request_raw(version, base, *iv, &mut out).expect("4.0-6.0 have envelopes");
        out
    } else {
        let mut payload = rest.to_vec();
        if mode & KEEP_VERSION == 0 && protocol != Protocol::V4 && payload.len() >= 4 {
            payload[..4].copy_from_slice(&version_of(protocol).to_bytes());
        }
        payload
    };
    let Ok(req) = HostRequest::decode(&payload) else {
        return false;
    };
    assert_eq!(Protocol::for_version(req.version), Some(req.protocol));
    assert_eq!(req.base.version, req.version, "inner and clear versions");

    let (again, pending) = encode_request(&req.base, req.iv).expect("a decoded version encodes");
    assert_eq!(
        HostRequest::decode(&again).as_ref(),
        Ok(&req),
        "re-encoded request"
    );

    // Whatever request the host accepts, the client that sent it accepts the answer.
    let answer = pending
        .decode_response(&respond(&req))
        .expect("the host's own response passes the client's checks");
    assert_eq!(answer.base.client_machine_id, req.base.client_machine_id);
    assert_eq!(answer.base.request_time, req.base.request_time);
    true
}

/// The answer a host gives `req`, with fixed "random" inputs.
fn respond(req: &HostRequest) -> Vec<u8> {
    let base = ResponseBase {
        version: req.version,
        epid: "06401-00206-551-123456-03-1033-26100.0000-3032026".into(),
        client_machine_id: req.base.client_machine_id,
        request_time: req.base.request_time,
        current_count: 50,
        activation_interval: 120,
        renewal_interval: 10080,
    };
    req.encode_response(
        &base,
        HwId([1, 2, 3, 4, 5, 6, 7, 8]),
        [0x5a; 16],
        [0xa5; 16],
    )
}

/// A fixed, valid request of `protocol` and what the client keeps of it.
fn sample_request(protocol: Protocol) -> (Vec<u8>, PendingRequest) {
    let base = RequestBase {
        version: version_of(protocol),
        is_client_vm: 0,
        license_status: 2,
        binding_expiration: 43200,
        application_id: Uuid::from_u128(0x55c9_2734_d682_4d71_983e_d6ec_3f16_059f),
        sku_id: Uuid::from_u128(0x2de6_7392_b7a7_462a_b1ca_108d_d189_f588),
        kms_counted_id: Uuid::from_u128(0x969f_b8d8_3ee0_4f7e_a3c9_ec1d_9c0e_1e40),
        client_machine_id: Uuid::from_u128(0xdb14_d0c7_6d74_473e_ba6c_45af_ecc9_a68e),
        required_client_count: 25,
        request_time: FileTime(134_397_843_810_000_000),
        previous_client_machine_id: Uuid::nil(),
        machine_name: "fuzz.example".into(),
    };
    encode_request(&base, [0x11; BLOCK_LEN]).expect("4.0-6.0 have envelopes")
}

/// The client's decoder and checks for one protocol version's responses, answering the
/// fixed request of `sample_request`. Returns whether the response passed the checks.
pub fn kms_response(protocol: Protocol, data: &[u8]) -> bool {
    let Some((&mode, rest)) = data.split_first() else {
        return false;
    };
    let (request, pending) = sample_request(protocol);
    let payload = if mode & SEAL != 0 {
        seal_response(&pending, mode, rest)
    } else {
        let mut payload = rest.to_vec();
        if mode & KEEP_VERSION == 0 && protocol != Protocol::V4 && payload.len() >= 4 {
            payload[..4].copy_from_slice(&pending.version.to_bytes());
        }
        payload
    };
    let Ok(resp) = pending.decode_response(&payload) else {
        return false;
    };
    assert_eq!(resp.protocol, protocol);
    assert_eq!(resp.base.client_machine_id, pending.client_machine_id);
    assert_eq!(resp.base.request_time, pending.request_time);
    assert_eq!(resp.is_activated(), resp.base.current_count >= 25);

    // A host that meant exactly what the client decoded sends a response that decodes
    // the same.
    let host = HostRequest::decode(&request).expect("the sample request is valid");
    let again = host.encode_response(
        &resp.base,
        resp.hwid.unwrap_or_default(),
        resp.iv,
        resp.random.unwrap_or_default(),
    );
    let mut expected = resp.clone();
    expected.hmac_slot_delta = resp.hmac_slot_delta.map(|_| 0);
    assert_eq!(
        pending.decode_response(&again),
        Ok(expected),
        "re-encoded response"
    );
    true
}

/// Seals a plaintext response body: V4 gets its MAC4; V5/V6 are encrypted under the IV that
/// follows the mode byte (V5: the request's, as the protocol requires), after the repairs
/// `mode` asks for where the body is long enough to hold the fields.
fn seal_response(pending: &PendingRequest, mode: u8, rest: &[u8]) -> Vec<u8> {
    if pending.protocol == Protocol::V4 {
        let mut out = rest.to_vec();
        out.extend_from_slice(&crypto::mac4(rest));
        return out;
    }
    let Some((iv, body)) = rest.split_first_chunk::<BLOCK_LEN>() else {
        return rest.to_vec();
    };
    let iv = if pending.protocol == Protocol::V5 {
        pending.iv
    } else {
        *iv
    };
    let mut body = body.to_vec();
    // Offsets after the response base (spec 7.4, 7.5): RandomXor, RandomHash, HwId,
    // SaltEcho, Hmac.
    let pid_size = body
        .get(4..8)
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .min(1024);
    let after_base = 44 + pid_size;
    if body.len() >= after_base + 48 && mode & FIX_HASH != 0 {
        let mut random = [0u8; BLOCK_LEN];
        random.copy_from_slice(&body[after_base..after_base + BLOCK_LEN]);
        crypto::xor_into(&mut random, &pending.salt);
        body[after_base + 16..after_base + 48].copy_from_slice(&random_hash(&random));
    }
    let mut out = pending.version.to_bytes().to_vec();
    out.extend_from_slice(&iv);
    let start = out.len();
    if pending.protocol == Protocol::V5 {
        out.extend_from_slice(&body);
        cbc_encrypt_padded(v5_cipher(), &iv, &mut out, start);
        return out;
    }
    if body.len() >= after_base + 88 {
        if mode & FIX_SALT != 0 {
            body[after_base + 56..after_base + 72].copy_from_slice(&pending.salt);
        }
        if mode & FIX_HMAC != 0 {
            let time = u64::from_le_bytes(body[24 + pid_size..32 + pid_size].try_into().unwrap());
            let s_resp = crypto::salt(&V6_CIPHER, &iv);
            let hmac = crypto::v6_hmac(FileTime(time), 0, &s_resp, &body[..after_base + 72]);
            body[after_base + 72..after_base + 88].copy_from_slice(&hmac);
        }
    }
    out.extend_from_slice(&body);
    cbc_encrypt_padded(&V6_CIPHER, &iv, &mut out, start);
    out
}

/// Seeds for [`kms_request`] from a captured request payload: the payload as it arrived,
/// and, when it decodes, its `IV_req` and plaintext base for the sealing mode.
pub fn request_seeds(payload: &[u8]) -> Vec<Vec<u8>> {
    let mut seeds = vec![[&[KEEP_VERSION][..], payload].concat()];
    if let Ok(req) = HostRequest::decode_any_version(payload) {
        seeds.push([&[SEAL][..], &req.iv, &req.base.to_bytes()].concat());
    }
    seeds
}

/// Seeds for [`kms_response`] from a captured response: what the captured host would have
/// answered to the harness's own request (same ePID, count, intervals, HwID, IV and `R`),
/// as a payload and as a plaintext body for the sealing mode with every repair on.
pub fn response_seeds(captured: &super::kms::ClientResponse) -> Vec<Vec<u8>> {
    let (request, pending) = sample_request(captured.protocol);
    let host = HostRequest::decode(&request).expect("the sample request is valid");
    let base = ResponseBase {
        version: pending.version,
        client_machine_id: pending.client_machine_id,
        request_time: pending.request_time,
        ..captured.base.clone()
    };
    let payload = host.encode_response(
        &base,
        captured.hwid.unwrap_or_default(),
        captured.iv,
        captured.random.unwrap_or_default(),
    );
    let sealed = match captured.protocol {
        Protocol::V4 => [&[SEAL][..], &payload[..payload.len() - BLOCK_LEN]].concat(),
        Protocol::V5 | Protocol::V6 => {
            let mut body = payload[4 + BLOCK_LEN..].to_vec();
            let len = if captured.protocol == Protocol::V5 {
                crypto::cbc_decrypt_padded(v5_cipher(), &captured.iv, &mut body)
            } else {
                crypto::cbc_decrypt_padded(&V6_CIPHER, &captured.iv, &mut body)
            }
            .expect("a response encoded here decrypts");
            body.truncate(len);
            let mode = SEAL | FIX_HASH | FIX_SALT | FIX_HMAC;
            [&[mode][..], &captured.iv, &body].concat()
        }
    };
    vec![[&[KEEP_VERSION][..], &payload].concat(), sealed]
}
