//! Fuzz target: `communitas_proto::fuzz::session` (session message framing, init
//! message, header and body opening, session state) must never panic, and state
//! that decodes must encode back to the same bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = communitas_proto::fuzz::session(data);
});
