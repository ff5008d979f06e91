//! Fuzz target: `communitas_crypto::fuzz::init_message` must never panic, whatever the bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = communitas_crypto::fuzz::init_message(data);
});
