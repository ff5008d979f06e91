//! The randomness a machine is handed.
//!
//! Machines draw jitter, nonces and choices from a [`Random`] passed to `handle`, never
//! from the OS, so that a simulation replays exactly from its seed. The node passes
//! the operating system's source (a CSPRNG; nonces need one); tests and the simulator
//! pass [`Seeded`].

/// A source of random bits.
pub trait Random {
    /// Fills `out` with random bytes.
    fn fill(&mut self, out: &mut [u8]);

    /// A uniformly random `u64`.
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill(&mut b);
        u64::from_le_bytes(b)
    }

    /// `N` random bytes.
    fn bytes<const N: usize>(&mut self) -> [u8; N]
    where
        Self: Sized,
    {
        let mut b = [0u8; N];
        self.fill(&mut b);
        b
    }

    /// A number in `0..n` (`0` when `n` is 0). The modulo bias is below 2^-32 for the
    /// ranges machines use (milliseconds of a backoff, indices of a few holders).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
}

impl<R: Random + ?Sized> Random for &mut R {
    fn fill(&mut self, out: &mut [u8]) {
        (**self).fill(out)
    }
}

/// A deterministic source for tests and simulations (SplitMix64). **Not** for keys or
/// nonces a real peer sees: it is predictable by design.
#[derive(Debug, Clone)]
pub struct Seeded(u64);

impl Seeded {
    /// A source that yields the same sequence for the same seed.
    pub const fn new(seed: u64) -> Self {
        Self(seed)
    }
}

impl Random for Seeded {
    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(word.get(..chunk.len()).unwrap_or(&word));
        }
    }

    fn next_u64(&mut self) -> u64 {
        // SplitMix64 (Steele, Lea, Flood 2014): one add, three xor-shift-multiplies.
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_sources_replay_and_differ_by_seed() {
        let (mut a, mut b, mut c) = (Seeded::new(7), Seeded::new(7), Seeded::new(8));
        let xs: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..4).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
        let mut odd = [0u8; 13];
        a.fill(&mut odd);
        assert_ne!(odd, [0u8; 13]);
        assert!(a.below(10) < 10);
        assert_eq!(a.below(0), 0);
    }
}
