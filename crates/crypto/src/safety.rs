//! Safety numbers: 60 digits two people compare to verify each other's keys.
//!
//! Each identity contributes 30 digits taken from a BLAKE3 hash of its public keys (six
//! 5-digit groups, each from 5 hash bytes reduced mod 100000, so ~99.6 bits per side).
//! The two halves are put in ascending order, so both people see the same number, and
//! a change of either key changes it.

use std::fmt;

use crate::identity::PublicIdentity;

const CONTEXT: &str = "communitas 2026-11 safety number v1";
const GROUPS_PER_SIDE: usize = 6;
const DIGITS_PER_GROUP: usize = 5;

/// A 60-digit safety number.
#[derive(Clone, PartialEq, Eq)]
pub struct SafetyNumber(String);

impl SafetyNumber {
    /// The safety number of two identities; the order of the arguments does not matter.
    pub fn new(a: &PublicIdentity, b: &PublicIdentity) -> Self {
        let mut halves = [half(a), half(b)];
        halves.sort();
        Self(halves.concat())
    }

    /// The 60 digits, without spaces.
    pub fn digits(&self) -> &str {
        &self.0
    }
}

fn half(identity: &PublicIdentity) -> String {
    let mut xof = blake3::Hasher::new_derive_key(CONTEXT);
    xof.update(&identity.to_bytes());
    let mut bytes = [0u8; GROUPS_PER_SIDE * 5];
    xof.finalize_xof().fill(&mut bytes);
    bytes
        .chunks_exact(5)
        .map(|chunk| {
            let value = chunk.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
            format!("{:0width$}", value % 100_000, width = DIGITS_PER_GROUP)
        })
        .collect()
}

impl fmt::Display for SafetyNumber {
    /// Twelve groups of five digits, separated by spaces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let groups: Vec<&str> = self
            .0
            .as_bytes()
            .chunks(DIGITS_PER_GROUP)
            .filter_map(|g| std::str::from_utf8(g).ok())
            .collect();
        f.write_str(&groups.join(" "))
    }
}

impl fmt::Debug for SafetyNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SafetyNumber({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    fn id(a: u8, b: u8) -> Identity {
        Identity::from_seed_bytes([a; 32], [b; 32])
    }

    #[test]
    fn sixty_digits_same_on_both_sides() {
        let (alice, bob) = (id(1, 2), id(3, 4));
        let ab = SafetyNumber::new(alice.public(), bob.public());
        let ba = SafetyNumber::new(bob.public(), alice.public());
        assert_eq!(ab, ba);
        assert_eq!(ab.digits().len(), 60);
        assert!(ab.digits().bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(ab.to_string().split(' ').count(), 12);
    }

    #[test]
    fn changes_when_either_key_changes() {
        let (alice, bob) = (id(1, 2), id(3, 4));
        let base = SafetyNumber::new(alice.public(), bob.public());
        for (a, b) in
            [(id(9, 2), id(3, 4)), (id(1, 9), id(3, 4)), (id(1, 2), id(9, 4)), (id(1, 2), id(3, 9))]
        {
            assert_ne!(SafetyNumber::new(a.public(), b.public()), base);
        }
    }
}
