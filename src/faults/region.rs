//! The bytes of a response PDU that each corruption region covers. Only DCE/RPC and NDR
//! layout is known here (spec 4.1, 4.6, 4.8); what the KMS payload means is not.
//!
//! ```text
//! response PDU (spec 4.6, 4.8)           region       positions a corruption may hit
//!  0 u8  rpc_vers                        rpc-header   0
//!  1 u8  rpc_vers_minor                  rpc-header   1
//!  2 u8  ptype                           rpc-header   2
//!  3 u8  pfc_flags                       -            (a flipped flag may be legal)
//!  4 4   drep                            rpc-header   4 only (bytes 5-7 are not checked)
//!  8 u16 frag_length                     -            (kept, so framing survives)
//! 10 u16 auth_length                     rpc-header   10, 11
//! 12 u32 call_id                         rpc-header   12-15
//! 16 u32 alloc_hint                      -            (a hint; nobody checks it)
//! 20 u16 p_cont_id                       stub         20, 21
//! 22 u8  cancel_count                    stub         22
//! 23 u8  reserved                        -
//! 24 stub, NDR32:  u32 size, u32 referent, u32 conformance, payload, pad, u32 return
//!      NDR64:  u32 size, 4 pad, u64 referent, u64 conformance, payload, pad, u32 return
//!                                        stub         size and conformance
//!                                        payload      every payload byte
//! ```
//!
//! Why these and not every byte: a region is meant to produce one predictable effect, so the
//! positions are those a receiver is bound to check. Bytes nobody reads (alloc_hint, pads,
//! drep 1-3) would leave the attempt unharmed; a referent id stays valid whatever non-zero
//! value it holds; `frag_length` would turn the corruption into a framing stall (a timeout)
//! or a desynchronised stream; and a flipped return value would read as a host refusal with
//! a made-up HRESULT. With the positions above, `rpc-header` and `stub` corruption always
//! shows as a protocol error. `payload` corruption shows as a failed response check (spec
//! 7.6) in V4 (MAC) and V6 (CBC padding, hash, HMAC), which authenticate every byte; V5
//! authenticates only the random/hash pair and the echoes, so a flip that lands in the ePID
//! is accepted with a garbled ePID, as a real V5 client would accept it (spec 7.6, "note on
//! V5 integrity").
//!
//! The NDR flavour is recognised from the lengths: `responseSize` M at stub offset 0 and a
//! stub of `align4(12 + M) + 4` bytes (NDR32) or `align4(24 + M) + 4` bytes (NDR64) with a
//! non-zero referent. Anything else (a refusal with a NULL pointer, a stub that matches
//! neither) has no payload region, and its stub region is the body fields at 20-22 only.

use std::ops::Range;

use crate::faults::Region;
use crate::wire::rpc::{Ptype, field};

/// Where the stub starts in a response PDU (spec 4.6).
const STUB: usize = field::STUB;

/// Header bytes the receiver checks, except `frag_length` (see the module docs).
const HEADER_CHECKED: [Range<usize>; 4] = [0..3, 4..5, 10..12, 12..16];

/// The positions of `region` in the response PDU `pdu`, as ranges in offset order; empty
/// when `pdu` is not a whole response PDU or has no such region.
pub(crate) fn positions(region: Region, pdu: &[u8]) -> Vec<Range<usize>> {
    if pdu.len() < STUB || pdu[field::PTYPE] != Ptype::RESPONSE.0 {
        return Vec::new();
    }
    match region {
        Region::RpcHeader => HEADER_CHECKED.to_vec(),
        Region::Stub => {
            // p_cont_id and cancel_count.
            let body = field::P_CONT_ID.start..field::CANCEL_COUNT + 1;
            let mut out = Vec::with_capacity(3);
            out.push(body);
            if let Some(layout) = Layout::of(pdu) {
                out.push(STUB..STUB + 4);
                out.push(layout.conformance);
            }
            out
        }
        Region::Payload => Layout::of(pdu).map(|l| l.payload).into_iter().collect(),
    }
}

/// The `n`-th position (0-based) of `ranges`.
pub(crate) fn nth(ranges: &[Range<usize>], mut n: usize) -> Option<usize> {
    for r in ranges {
        if n < r.len() {
            return Some(r.start + n);
        }
        n -= r.len();
    }
    None
}

/// Where the conformance and the payload of a response stub with a non-NULL pointer are.
struct Layout {
    conformance: Range<usize>,
    payload: Range<usize>,
}

impl Layout {
    fn of(pdu: &[u8]) -> Option<Self> {
        let stub = pdu.get(STUB..)?;
        let word = |at: usize| -> Option<u32> {
            let b = stub.get(at..at + 4)?;
            Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        let size = usize::try_from(word(0)?).ok()?;
        if size == 0 {
            return None;
        }
        let framed = |fixed: usize| (fixed + size).next_multiple_of(4) + 4;
        if stub.len() == framed(12) && word(4)? != 0 {
            Some(Self {
                conformance: STUB + 8..STUB + 12,
                payload: STUB + 12..STUB + 12 + size,
            })
        } else if stub.len() == framed(24) && (word(8)? != 0 || word(12)? != 0) {
            Some(Self {
                conformance: STUB + 16..STUB + 24,
                payload: STUB + 24..STUB + 24 + size,
            })
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The PDUs of a captured exchange, in order (`tests/data/*.json`).
    fn pdus(json: &str) -> Vec<Vec<u8>> {
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        v["connections"][0]["pdus"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| hex::decode(p["hex"].as_str().unwrap()).unwrap())
            .collect()
    }

    fn v6() -> Vec<Vec<u8>> {
        pdus(include_str!(
            "../../tests/data/vlmcsd-v6-windows10-pro.json"
        ))
    }

    #[test]
    fn ndr32_response_regions() {
        // Spec 12.5: 300 bytes, NDR32 stub of 276 = 12 + 260 + 4.
        let resp = &v6()[5];
        assert_eq!(resp.len(), 300);
        assert_eq!(positions(Region::RpcHeader, resp), HEADER_CHECKED.to_vec());
        assert_eq!(positions(Region::Stub, resp), vec![20..23, 24..28, 32..36]);
        assert_eq!(positions(Region::Payload, resp), vec![36..296]);
    }

    #[test]
    fn ndr64_response_regions() {
        // The second request of the connection is answered in NDR64: 24 + 260 + 4.
        let resp = &v6()[7];
        assert_eq!(resp.len(), 24 + 24 + 260 + 4);
        assert_eq!(positions(Region::Stub, resp), vec![20..23, 24..28, 40..48]);
        assert_eq!(positions(Region::Payload, resp), vec![48..308]);
    }

    #[test]
    fn refusal_has_no_payload_region() {
        let pdus = pdus(include_str!(
            "../../tests/data/vlmcsd-K1-unknown-kmsid-rejected.json"
        ));
        let resp = pdus
            .iter()
            .rev()
            .find(|p| p[2] == Ptype::RESPONSE.0)
            .unwrap();
        assert!(positions(Region::Payload, resp).is_empty());
        assert_eq!(positions(Region::Stub, resp), vec![20..23]);
        assert_eq!(positions(Region::RpcHeader, resp).len(), 4);
    }

    #[test]
    fn other_pdus_have_no_regions() {
        let bind_ack = &v6()[1];
        for region in [Region::RpcHeader, Region::Stub, Region::Payload] {
            assert!(positions(region, bind_ack).is_empty());
            assert!(positions(region, &bind_ack[..10]).is_empty());
            assert!(positions(region, &[]).is_empty());
        }
    }

    #[test]
    fn stub_matching_neither_layout_has_no_payload() {
        let mut resp = v6()[5].clone();
        resp.truncate(296); // drop the return value: the length fits neither layout
        assert!(positions(Region::Payload, &resp).is_empty());
        assert_eq!(positions(Region::Stub, &resp), vec![20..23]);
    }

    #[test]
    fn nth_walks_the_ranges() {
        let r = vec![0..3, 10..12];
        let got: Vec<_> = (0..6).map(|n| nth(&r, n)).collect();
        assert_eq!(got, [Some(0), Some(1), Some(2), Some(10), Some(11), None]);
    }
}
