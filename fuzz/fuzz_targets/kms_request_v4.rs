//! `cargo fuzz run kms_request_v4`: see `kmsload::wire::fuzzing::kms_request` for what is checked.
#![no_main]

use kmsload::wire::kms::Protocol;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    kmsload::wire::fuzzing::kms_request(Protocol::V4, data);
});
