//! Fuzz target: `communitas_proto::receipts::Receipt::from_bytes` must never panic, and
//! whatever it accepts must encode back to the same bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(receipt) = communitas_proto::receipts::Receipt::from_bytes(data) {
        assert_eq!(receipt.to_bytes(), data);
    }
});
