//! `cargo fuzz run kms_response_v6`: see `kmsload::wire::fuzzing::kms_response` for what is checked.
#![no_main]

use kmsload::wire::kms::Protocol;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    kmsload::wire::fuzzing::kms_response(Protocol::V6, data);
});
