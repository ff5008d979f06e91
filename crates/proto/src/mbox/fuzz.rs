//! The entry point of the `mbox` fuzz target (`fuzz/fuzz_targets/mbox.rs`), and the
//! seeds of its corpus. The bytes are what a peer sends or answers on
//! `/communitas/mbox/1`: both frame decoders must refuse them with a typed error or
//! decode them to a frame that encodes back to the same bytes; a decoded request then
//! goes through the [server machine](super::server), which must not panic either.
//! Every file under `fuzz/corpus/mbox/` replays through [`frames`] in this module's
//! tests, so what the fuzzer once found stays covered without a fuzzer.

use communitas_types::{MailboxId, Timestamp};

use super::server::{Config, Input, Outcome, Output, PutOutcome, RequestId, Server, Work};
use super::{MboxRequest, MboxResponse, Refusal};
use crate::random::Seeded;

/// A peer for the machine the fuzzer drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct FuzzPeer(u8);

impl From<FuzzPeer> for Vec<u8> {
    fn from(p: FuzzPeer) -> Self {
        vec![0, 0x24, p.0]
    }
}

/// Feeds `bytes` to both frame decoders, and a decoded request to a server machine.
/// Returns how many decoders took the bytes (0, 1 or 2).
///
/// # Panics
///
/// If a decoded frame does not encode back to `bytes`: the frames have one encoding.
#[allow(clippy::panic)]
pub fn frames(bytes: &[u8]) -> usize {
    let mut decoded = 0;
    if let Ok(response) = MboxResponse::decode(bytes) {
        decoded += 1;
        if response.encode() != bytes {
            panic!("a response does not encode back to its bytes: {response:?}");
        }
    }
    if let Ok(request) = MboxRequest::decode(bytes) {
        decoded += 1;
        if request.encode() != bytes {
            panic!("a request does not encode back to its bytes: {request:?}");
        }
        serve(request);
    }
    decoded
}

/// Runs a request through a fresh server, and a store success back through it.
fn serve(request: MboxRequest) {
    let now = Timestamp::from_millis(1_780_000_000_000);
    let mut rng = Seeded::new(1);
    let mut server = Server::new(Config::new(true), FuzzPeer(0), MailboxId::from_bytes([0; 32]));
    let input = Input::Request { peer: FuzzPeer(1), request_id: RequestId(1), request };
    let work: Vec<Work<FuzzPeer>> = server
        .handle(input, now, &mut rng)
        .filter_map(|o| match o {
            Output::Store(work) => Some(work),
            _ => None,
        })
        .collect();
    for job in work {
        let outcome = match job {
            Work::Put { mailbox, .. } => Outcome::Put { mailbox, outcome: PutOutcome::Stored },
            Work::Ack { hashes, .. } => Outcome::Acked(hashes.len()),
            Work::Wanted { hashes, .. } => Outcome::Wanted { hashes, acked: 0 },
            _ => Outcome::Failed,
        };
        let done = Input::StoreDone { request_id: RequestId(1), outcome };
        server.handle(done, now, &mut rng).for_each(drop);
    }
}

/// Valid frames to start the corpus from: `(name, bytes)`.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let mailbox = MailboxId::from_bytes([4; 32]);
    let requests = [
        MboxRequest::Put { envelope: vec![1, 2, 3] },
        MboxRequest::Challenge { mailbox },
        MboxRequest::Fetch {
            identity: vec![5; communitas_crypto::identity::PUBLIC_IDENTITY_LEN],
            nonce: [6; 32],
            signature: [7; 64],
            max_bytes: 4096,
        },
        MboxRequest::Ack { mailbox, hashes: vec![[9; 32], [10; 32]] },
        MboxRequest::Notify { mailbox },
        MboxRequest::Offer { mailbox, hashes: vec![[13; 32]] },
        MboxRequest::Replicate { expires_at: 1_780_000_000_000, envelope: vec![14; 50] },
        MboxRequest::Deposit { mailbox, device: [17; 32], prekeys: vec![vec![18; 102]] },
        MboxRequest::Claim { mailbox, device: [17; 32] },
    ];
    let responses = [
        MboxResponse::Stored,
        MboxResponse::Refused(Refusal::MailboxFull),
        MboxResponse::Nonce([1; 32]),
        MboxResponse::Envelopes(vec![([2; 32], vec![3; 40]), ([4; 32], vec![])]),
        MboxResponse::Acked(7),
        MboxResponse::Wanted(vec![[15; 32], [16; 32]]),
        MboxResponse::Held { dh: 20, kem: 20 },
        MboxResponse::Prekeys(vec![vec![19; 102], vec![20; 1254]]),
    ];
    let requests =
        requests.iter().enumerate().map(|(i, r)| (format!("seed-request-{i}"), r.encode()));
    let responses =
        responses.iter().enumerate().map(|(i, r)| (format!("seed-response-{i}"), r.encode()));
    requests.chain(responses).collect()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn corpus() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/mbox")
    }

    #[test]
    fn the_mbox_corpus_replays() {
        let mut files: Vec<PathBuf> =
            std::fs::read_dir(corpus()).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        assert!(!files.is_empty(), "empty corpus");
        let decoded: usize = files.iter().map(|p| frames(&std::fs::read(p).unwrap())).sum();
        // The seeds are valid frames: the harness really reaches the decoders' ends
        // and the machine.
        assert!(decoded >= seeds().len(), "{decoded}");
    }

    /// Writes the seeds into the corpus (with `COMMUNITAS_WRITE_VECTORS=1`), and checks
    /// that they are there.
    #[test]
    fn seeds_are_in_the_corpus() {
        for (name, bytes) in seeds() {
            let path = corpus().join(&name);
            if std::env::var_os("COMMUNITAS_WRITE_VECTORS").is_some() {
                std::fs::create_dir_all(corpus()).unwrap();
                std::fs::write(&path, &bytes).unwrap();
            }
            assert_eq!(std::fs::read(&path).unwrap(), bytes, "{} is stale", path.display());
        }
    }

    #[test]
    fn flipped_and_truncated_seeds_never_panic() {
        for (_, bytes) in seeds() {
            for cut in 0..bytes.len() {
                frames(&bytes[..cut]);
            }
            for i in 0..bytes.len() {
                for bit in 0..8 {
                    let mut flipped = bytes.clone();
                    flipped[i] ^= 1 << bit;
                    frames(&flipped);
                }
            }
        }
    }
}
