//! The randomness the node hands its protocol machines ([`communitas_proto::Random`]).
//!
//! [`Os`] is a CSPRNG: BLAKE3 in keyed mode over a counter (a PRF, so its output is
//! unpredictable without the key), keyed once from the operating system when the node
//! starts. Drawing from it cannot fail, which is what the machines' `handle` needs;
//! the one fallible step, reading the OS source, happens at construction and is a
//! typed error there. Mailbox nonces and backoff jitter both come from here.

use communitas_crypto::random::{self, RandomError};
use communitas_proto::Random;

/// A CSPRNG keyed from the OS.
pub(crate) struct Os {
    key: [u8; 32],
    counter: u64,
}

impl Os {
    /// A source keyed from the OS random source.
    pub(crate) fn new() -> Result<Self, RandomError> {
        Ok(Self { key: random::bytes::<32>()?, counter: 0 })
    }
}

impl Random for Os {
    fn fill(&mut self, out: &mut [u8]) {
        self.counter = self.counter.wrapping_add(1);
        let mut hasher = blake3::Hasher::new_keyed(&self.key);
        hasher.update(&self.counter.to_le_bytes());
        hasher.finalize_xof().fill(out);
    }
}

impl std::fmt::Debug for Os {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Os").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_differ_and_two_sources_differ() {
        let (mut a, mut b) = (Os::new().expect("os random"), Os::new().expect("os random"));
        let x: [u8; 32] = a.bytes();
        let y: [u8; 32] = a.bytes();
        let z: [u8; 32] = b.bytes();
        assert_ne!(x, y);
        assert_ne!(x, z);
    }
}
