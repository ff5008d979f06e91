//! Entry points for the fuzz targets in `fuzz/` and for the test that replays their
//! corpora (`tests/it/fuzz_corpus.rs`). Each feeds arbitrary bytes to decoders a
//! remote peer can reach; none may panic, whatever the input.

use std::time::Duration;

use crate::presence::{Status, wire};

/// Decodes `bytes` as a presence body and as a typing body (the two bodies a
/// contact's sealed update carries). A body that decodes must encode back to the
/// same bytes (checked with debug assertions, as fuzzing builds have them). Returns
/// which of the two decoded.
pub fn presence(bytes: &[u8]) -> (bool, bool) {
    let presence = wire::decode_presence(bytes);
    if let Ok(body) = &presence {
        debug_assert_eq!(wire::encode_presence(body.status, body.interval), bytes);
    }
    let typing = wire::decode_typing(bytes);
    if let Ok(state) = typing {
        debug_assert_eq!(wire::encode_typing(state), bytes);
    }
    (presence.is_ok(), typing.is_ok())
}

/// Valid inputs to start each corpus from: `(target, name, bytes)`.
pub fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    for (status, secs) in
        [(Status::Online, 30), (Status::Away, 1), (Status::Busy, 60), (Status::Offline, 600)]
    {
        let body = wire::encode_presence(status, Duration::from_secs(secs));
        out.push(("presence", format!("seed-{}-{secs}s", status.as_str()), body));
    }
    out.push(("presence", "seed-typing".into(), wire::encode_typing(true)));
    out.push(("presence", "seed-stopped".into(), wire::encode_typing(false)));
    out
}
