//! Fuzz target: `communitas_proto::fuzz::presence` (the presence and typing bodies)
//! must never panic, and whatever decodes must encode back to the same bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = communitas_proto::fuzz::presence(data);
});
