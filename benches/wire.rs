//! Benchmarks of the sans-IO KMS codec: per protocol version, what a client does per
//! activation (build + encrypt the request, decrypt + verify the response) and what a host
//! does (decode the request, encode the response), plus the primitives underneath.
//!
//! Run with `cargo bench --bench wire`. Inputs mirror the worked example of spec 12: a
//! 49-character ePID (PIDSize 100) and a 15-character machine name.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use kmsload::wire::crypto::{self, V4_CIPHER, V6_CIPHER};
use kmsload::wire::kms::{HostRequest, HwId, encode_request, encode_request_into};
use kmsload::wire::{FileTime, RequestBase, ResponseBase, Version};
use uuid::Uuid;

const IV_REQ: [u8; 16] = [0xb1; 16];
const IV_RESP: [u8; 16] = [0xde; 16];
const RANDOM: [u8; 16] = [0x42; 16];

fn request_base(major: u16) -> RequestBase {
    RequestBase {
        version: Version::new(major),
        is_client_vm: 0,
        license_status: 2,
        binding_expiration: 43200,
        application_id: Uuid::from_u128(0x55c92734_d682_4d71_983e_d6ec3f16059f),
        sku_id: Uuid::from_u128(0x2de67392_b7a7_462a_b1ca_108dd189f588),
        kms_counted_id: Uuid::from_u128(0x58e2134f_8e11_4d17_9cb2_91069c151148),
        client_machine_id: Uuid::from_u128(0xdb14d0c7_6d74_473e_ba6c_45afecc9a68e),
        required_client_count: 25,
        request_time: FileTime(134_397_843_810_000_000),
        previous_client_machine_id: Uuid::nil(),
        machine_name: "mail.windows.cn".into(),
    }
}

fn response_base(req: &RequestBase) -> ResponseBase {
    ResponseBase {
        version: req.version,
        epid: "03612-00206-568-579566-03-1063-14393.0000-2062020".into(),
        client_machine_id: req.client_machine_id,
        request_time: req.request_time,
        current_count: 50,
        activation_interval: 120,
        renewal_interval: 10080,
    }
}

fn payloads(c: &mut Criterion) {
    let versions = [4u16, 5, 6];

    let mut g = c.benchmark_group("client build+encrypt request");
    for major in versions {
        let base = request_base(major);
        let mut buf = Vec::with_capacity(260);
        g.bench_function(format!("V{major}"), |b| {
            b.iter(|| {
                buf.clear();
                black_box(encode_request_into(black_box(&base), IV_REQ, &mut buf).unwrap());
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("client decrypt+verify response");
    for major in versions {
        let (req, pending) = encode_request(&request_base(major), IV_REQ).unwrap();
        let host = HostRequest::decode(&req).unwrap();
        let resp = host.encode_response(
            &response_base(&host.base),
            HwId::VLMCSD_DEFAULT,
            IV_RESP,
            RANDOM,
        );
        g.bench_function(format!("V{major}"), |b| {
            b.iter(|| black_box(pending.decode_response(black_box(&resp)).unwrap()))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("client full exchange crypto");
    for major in versions {
        let base = request_base(major);
        let (req, _) = encode_request(&base, IV_REQ).unwrap();
        let host = HostRequest::decode(&req).unwrap();
        let resp =
            host.encode_response(&response_base(&base), HwId::VLMCSD_DEFAULT, IV_RESP, RANDOM);
        let mut buf = Vec::with_capacity(260);
        g.bench_function(format!("V{major}"), |b| {
            b.iter(|| {
                buf.clear();
                let pending = encode_request_into(black_box(&base), IV_REQ, &mut buf).unwrap();
                black_box(pending.decode_response(black_box(&resp)).unwrap())
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("host decode request");
    for major in versions {
        let (req, _) = encode_request(&request_base(major), IV_REQ).unwrap();
        g.bench_function(format!("V{major}"), |b| {
            b.iter(|| black_box(HostRequest::decode(black_box(&req)).unwrap()))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("host encode response");
    for major in versions {
        let (req, _) = encode_request(&request_base(major), IV_REQ).unwrap();
        let host = HostRequest::decode(&req).unwrap();
        let base = response_base(&host.base);
        let mut buf = Vec::with_capacity(300);
        g.bench_function(format!("V{major}"), |b| {
            b.iter(|| {
                buf.clear();
                host.encode_response_into(
                    black_box(&base),
                    HwId::VLMCSD_DEFAULT,
                    IV_RESP,
                    RANDOM,
                    &mut buf,
                );
                black_box(&buf);
            })
        });
    }
    g.finish();
}

fn primitives(c: &mut Criterion) {
    let mut g = c.benchmark_group("crypto");
    let mut block = [0u8; 16];
    g.bench_function("V6 Rijndael encrypt block", |b| {
        b.iter(|| V6_CIPHER.encrypt(black_box(&mut block)))
    });
    g.bench_function("V6 Rijndael decrypt block", |b| {
        b.iter(|| V6_CIPHER.decrypt(black_box(&mut block)))
    });
    g.bench_function("V4 Rijndael-160 encrypt block", |b| {
        b.iter(|| V4_CIPHER.encrypt(black_box(&mut block)))
    });
    g.bench_function("V5 aes crate encrypt block", |b| {
        let aes = crypto::v5_cipher();
        b.iter(|| crypto::BlockCipher128::encrypt_block(aes, black_box(&mut block)))
    });
    let base = [0u8; 236];
    g.bench_function("MAC4 236 bytes", |b| {
        b.iter(|| crypto::mac4(black_box(&base)))
    });
    let body = [0u8; 216];
    g.bench_function("V6 HMAC 232 bytes", |b| {
        b.iter(|| {
            crypto::v6_hmac(
                FileTime(134_397_843_810_000_000),
                0,
                &[1; 16],
                black_box(&body),
            )
        })
    });
    g.bench_function("SHA-256 random hash", |b| {
        b.iter(|| crypto::random_hash(black_box(&RANDOM)))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = payloads, primitives
}
criterion_main!(benches);
