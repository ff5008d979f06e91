//! Fuzz target: `communitas_proto::mbox::fuzz::frames` must never panic, whatever the
//! bytes: both `/communitas/mbox/1` frame decoders, and the server machine behind them.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = communitas_proto::mbox::fuzz::frames(data);
});
