//! `cargo fuzz run ndr_stub`: see `kmsload::wire::fuzzing::ndr_stub` for what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    kmsload::wire::fuzzing::ndr_stub(data);
});
