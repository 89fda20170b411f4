//! `cargo fuzz run rpc_pdu`: see `kmsload::wire::fuzzing::rpc_pdu` for what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    kmsload::wire::fuzzing::rpc_pdu(data);
});
