//! Proof of work for first contact (issue 15 item 4, decision 0062): a stranger's
//! first letters cost its sender about what they cost the receiver.
//!
//! A message from keys the receiver has never seen costs it one derivation of their
//! address (Argon2, ~0.27 s of CPU and 64 MiB); making fresh keys costs ~0.1 ms. So a
//! letter that introduces its sender (the session letter's intro, `docs/protocol.md`
//! §11) carries a nonce such that `BLAKE3(challenge ‖ nonce)` starts with
//! [`FIRST_CONTACT_BITS`] zero bits, where the challenge binds the recipient's
//! fingerprint, the sender's fingerprint and the hour of the letter's timestamp —
//! hashcash (Back, 2002) as Session's storage servers use it, bound so that one proof
//! buys one identity's first contact with one recipient for an hour, and no more.
//!
//! The receiver checks it with one hash before it derives anything; keys it already
//! knows (contacts, open requests) need no proof.

use communitas_types::{Fingerprint, Timestamp};

/// Leading zero bits a first-contact proof needs: 2^22 BLAKE3 calls on average,
/// ~0.3–0.5 s on one core of the machines we measure on (docs/benchmarks.md), on the
/// order of the receiver's derivation.
pub const FIRST_CONTACT_BITS: u32 = 22;
const DOMAIN: &[u8] = b"communitas/first-contact-work/v1\0";
const HOUR_MS: u64 = 60 * 60 * 1000;

/// What a proof is bound to.
pub fn challenge(recipient: &Fingerprint, sender: &Fingerprint, timestamp: Timestamp) -> [u8; 32] {
    let hour = timestamp.as_millis() / HOUR_MS;
    let mut h = blake3::Hasher::new();
    h.update(DOMAIN)
        .update(recipient.as_bytes())
        .update(sender.as_bytes())
        .update(&hour.to_be_bytes());
    *h.finalize().as_bytes()
}

/// Whether `nonce` proves `bits` of work on `challenge`.
pub fn check(challenge: &[u8; 32], nonce: u64, bits: u32) -> bool {
    leading_zeros(challenge, nonce) >= bits
}

/// The first nonce from `start` that proves `bits` of work on `challenge` (the caller
/// draws `start` at random, so that two solvers do not repeat each other's work).
pub fn solve(challenge: &[u8; 32], bits: u32, start: u64) -> u64 {
    let mut nonce = start;
    while !check(challenge, nonce, bits) {
        nonce = nonce.wrapping_add(1);
    }
    nonce
}

fn leading_zeros(challenge: &[u8; 32], nonce: u64) -> u32 {
    let mut h = blake3::Hasher::new();
    h.update(challenge).update(&nonce.to_be_bytes());
    let hash = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.as_bytes()[..8]);
    u64::from_be_bytes(first).leading_zeros()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp::from_millis(1_780_000_000_000);

    #[test]
    fn a_proof_holds_for_its_recipient_sender_and_hour_only() {
        let (bob, mallory) = (Fingerprint::from_bytes([1; 32]), Fingerprint::from_bytes([2; 32]));
        let c = challenge(&bob, &mallory, T0);
        // 12 bits keeps the test fast; the rule is the same at 22.
        let nonce = solve(&c, 12, 0);
        assert!(check(&c, nonce, 12));
        let others = [
            challenge(&Fingerprint::from_bytes([3; 32]), &mallory, T0),
            challenge(&bob, &Fingerprint::from_bytes([3; 32]), T0),
            challenge(&bob, &mallory, T0.saturating_add(std::time::Duration::from_secs(3_600))),
        ];
        // Another recipient, sender or hour: the same nonce is (almost surely) no proof.
        assert!(others.iter().filter(|o| check(o, nonce, 12)).count() == 0);
        // Within the hour, the same proof.
        let later = challenge(
            &bob,
            &mallory,
            Timestamp::from_millis(T0.as_millis() / HOUR_MS * HOUR_MS + 1),
        );
        assert_eq!(later, challenge(&bob, &mallory, T0));
    }

    #[test]
    fn work_counts_bits() {
        let c = [7u8; 32];
        let n = solve(&c, 8, 0);
        assert!(check(&c, n, 8) && check(&c, n, 0));
        // Some nonce below it fails 8 bits (else solve would have stopped there).
        assert!(n == 0 || !check(&c, n - 1, 8));
        // 64 bits is never met by chance in a test; checking costs one hash.
        assert!(!check(&c, n, 64));
    }
}
