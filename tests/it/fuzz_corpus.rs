//! The fuzz corpus in `fuzz/corpus/<target>/` replayed under plain `cargo test`, and kept
//! seeded from every captured exchange in `tests/data/`.
//!
//! Every file of a target's corpus goes through the same harness the fuzzer runs
//! (`kmsload::wire::fuzzing`), so inputs the fuzzer once found interesting, and the
//! regressions it found (`regression-*`), are checked on every test run without
//! cargo-fuzz. `KMSLOAD_WRITE_SEEDS=1 cargo test --test it fuzz_corpus::` (re)writes the
//! `seed-*` files from the captures.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use kmsload::wire::fuzzing;
use kmsload::wire::kms::{HostRequest, Protocol, encode_request};
use kmsload::wire::ndr::{RequestStub, ResponseStub, Syntax};
use kmsload::wire::rpc::Pdu;

const TARGETS: [&str; 8] = [
    "rpc_pdu",
    "ndr_stub",
    "kms_request_v4",
    "kms_request_v5",
    "kms_request_v6",
    "kms_response_v4",
    "kms_response_v5",
    "kms_response_v6",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn harness(target: &str) -> fn(&[u8]) -> bool {
    match target {
        "rpc_pdu" => fuzzing::rpc_pdu,
        "ndr_stub" => fuzzing::ndr_stub,
        "kms_request_v4" => |d| fuzzing::kms_request(Protocol::V4, d),
        "kms_request_v5" => |d| fuzzing::kms_request(Protocol::V5, d),
        "kms_request_v6" => |d| fuzzing::kms_request(Protocol::V6, d),
        "kms_response_v4" => |d| fuzzing::kms_response(Protocol::V4, d),
        "kms_response_v5" => |d| fuzzing::kms_response(Protocol::V5, d),
        "kms_response_v6" => |d| fuzzing::kms_response(Protocol::V6, d),
        other => panic!("no harness for {other}"),
    }
}

/// The KMS target for `kind` ("request" or "response") and a protocol, as named in
/// [`TARGETS`].
fn kms_target(kind: &str, protocol: Protocol) -> &'static str {
    let version = match protocol {
        Protocol::V4 => "v4",
        Protocol::V5 => "v5",
        Protocol::V6 => "v6",
    };
    let name = format!("kms_{kind}_{version}");
    TARGETS
        .into_iter()
        .find(|t| *t == name)
        .unwrap_or_else(|| panic!("no target {name}"))
}

/// The seeds each target gets from the captures, by file name.
fn capture_seeds() -> BTreeMap<&'static str, BTreeMap<String, Vec<u8>>> {
    let mut seeds: BTreeMap<&str, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
    let mut add = |target: &'static str, name: String, bytes: Vec<u8>| {
        seeds.entry(target).or_default().insert(name, bytes);
    };
    let mut files: Vec<_> = fs::read_dir(root().join("tests/data"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    for file in &files {
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        let v: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(file).unwrap()).unwrap();
        for (ci, conn) in v["connections"].as_array().unwrap().iter().enumerate() {
            let mut stream = Vec::new();
            let mut pending: Option<kmsload::wire::kms::PendingRequest> = None;
            for (pi, pdu) in conn["pdus"].as_array().unwrap().iter().enumerate() {
                let bytes = hex::decode(pdu["hex"].as_str().unwrap()).unwrap();
                let name = format!("seed-{stem}-{ci}-{pi}");
                stream.extend_from_slice(&bytes);
                add("rpc_pdu", name.clone(), bytes.clone());
                let (stub, is_response) = match Pdu::parse(&bytes) {
                    Ok(Pdu::Request(r)) => (r.stub, false),
                    Ok(Pdu::Response(r)) => (r.stub, true),
                    _ => continue,
                };
                for (bit, syntax) in [(0u8, Syntax::Ndr32), (1, Syntax::Ndr64)] {
                    let payload = if is_response {
                        match ResponseStub::parse(syntax, &stub) {
                            Ok(ResponseStub::Payload { payload, .. }) => Some(payload),
                            Ok(ResponseStub::Null { .. }) => None,
                            Err(_) => continue,
                        }
                    } else {
                        RequestStub::parse(syntax, &stub).ok().map(|s| s.payload)
                    };
                    let mode = bit | if is_response { 2 } else { 0 };
                    add("ndr_stub", name.clone(), [&[mode][..], &stub].concat());
                    let Some(payload) = payload else { break };
                    if is_response {
                        let Some(pending) = pending.take() else { break };
                        if let Ok(resp) = pending.decode_response(payload) {
                            let target = kms_target("response", resp.protocol);
                            for (i, seed) in fuzzing::response_seeds(&resp).into_iter().enumerate()
                            {
                                add(target, format!("{name}-{i}"), seed);
                            }
                        }
                    } else {
                        let req = HostRequest::decode_any_version(payload);
                        let protocols = match &req {
                            Ok(req) => vec![req.protocol],
                            Err(_) => vec![Protocol::V4, Protocol::V5, Protocol::V6],
                        };
                        for p in protocols {
                            let target = kms_target("request", p);
                            for (i, seed) in fuzzing::request_seeds(payload).into_iter().enumerate()
                            {
                                add(target, format!("{name}-{i}"), seed);
                            }
                        }
                        pending = req
                            .ok()
                            .and_then(|r| encode_request(&r.base, r.iv).ok())
                            .map(|(_, p)| p);
                    }
                    break;
                }
            }
            add("rpc_pdu", format!("seed-{stem}-{ci}-stream"), stream);
        }
    }
    seeds
}

#[test]
fn corpus_holds_a_seed_for_every_capture() {
    let write = std::env::var_os("KMSLOAD_WRITE_SEEDS").is_some();
    let seeds = capture_seeds();
    assert_eq!(
        seeds.keys().copied().collect::<Vec<_>>().len(),
        TARGETS.len(),
        "every target gets seeds from the captures: {:?}",
        seeds.keys()
    );
    for (target, files) in &seeds {
        let dir = root().join("fuzz/corpus").join(target);
        if write {
            fs::create_dir_all(&dir).unwrap();
        }
        for (name, bytes) in files {
            let path = dir.join(name);
            if write {
                fs::write(&path, bytes).unwrap();
                continue;
            }
            let on_disk = fs::read(&path).unwrap_or_else(|e| {
                panic!("{}: {e}; rerun with KMSLOAD_WRITE_SEEDS=1", path.display())
            });
            assert!(
                &on_disk == bytes,
                "{} is stale; rerun with KMSLOAD_WRITE_SEEDS=1",
                path.display()
            );
        }
    }
}

/// Runs every corpus file of `target` through its harness; returns (files, accepted).
fn replay(target: &str) -> (usize, usize) {
    let dir = root().join("fuzz/corpus").join(target);
    let run = harness(target);
    let (mut files, mut accepted) = (0, 0);
    for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let bytes = fs::read(&path).unwrap();
        let result = std::panic::catch_unwind(|| run(&bytes));
        match result {
            Ok(ok) => accepted += usize::from(ok),
            Err(_) => panic!("{target}: {} fails its harness", path.display()),
        }
        files += 1;
    }
    (files, accepted)
}

/// Every seed from a capture is accepted by its decoder: the harness reaches the
/// round-trip checks behind the decoder rather than stopping at the first error.
#[test]
fn capture_seeds_reach_the_round_trip_checks() {
    for (target, files) in capture_seeds() {
        let run = harness(target);
        let accepted = files.values().filter(|bytes| run(bytes)).count();
        assert!(
            accepted * 2 >= files.len(),
            "{target}: only {accepted} of {} seeds accepted",
            files.len()
        );
    }
}

macro_rules! replay_tests {
    ($($name:ident => $target:literal,)*) => {$(
        #[test]
        fn $name() {
            let (files, accepted) = replay($target);
            assert!(files > 0, "{}: empty corpus", $target);
            assert!(accepted > 0, "{}: no corpus file is accepted", $target);
        }
    )*};
}

replay_tests! {
    replay_rpc_pdu => "rpc_pdu",
    replay_ndr_stub => "ndr_stub",
    replay_kms_request_v4 => "kms_request_v4",
    replay_kms_request_v5 => "kms_request_v5",
    replay_kms_request_v6 => "kms_request_v6",
    replay_kms_response_v4 => "kms_response_v4",
    replay_kms_response_v5 => "kms_response_v5",
    replay_kms_response_v6 => "kms_response_v6",
}

#[test]
fn every_target_has_a_harness_and_a_fuzz_binary() {
    let manifest = fs::read_to_string(root().join("fuzz/Cargo.toml")).unwrap();
    for target in TARGETS {
        let _ = harness(target);
        assert!(
            manifest.contains(&format!("name = \"{target}\"")),
            "fuzz/Cargo.toml lacks {target}"
        );
        assert!(
            root()
                .join(format!("fuzz/fuzz_targets/{target}.rs"))
                .exists()
        );
    }
}
