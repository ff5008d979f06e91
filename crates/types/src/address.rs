//! The four-word address: 48 bits written as four words of a 4096-word list.
//!
//! The bits themselves come from `communitas_crypto::address` (a memory-hard hash of
//! the identity's public keys); this module only formats and parses them. Parsing is
//! forgiving about case and separators, strict about words: an unknown word is an
//! error that names it and suggests the closest word of the list.

mod wordlist;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use wordlist::{WORD_COUNT, closest_word, word, word_index, words};

/// Bits carried by one word (4096 = 2^12).
const BITS_PER_WORD: u32 = 12;
/// Words in an address.
pub const WORDS_PER_ADDRESS: usize = 4;
/// Bytes of an address in binary form (48 bits).
pub const ADDRESS_LEN: usize = 6;

/// A four-word address. Always valid: each word index is below [`WORD_COUNT`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address([u16; WORDS_PER_ADDRESS]);

/// Why a text is not a four-word address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// The text did not hold exactly four words.
    #[error("an address has 4 words, this has {got}")]
    WordCount {
        /// How many words were found.
        got: usize,
    },
    /// A word is not in the list.
    #[error("\"{word}\" (word {position}) is not an address word; did you mean \"{suggestion}\"?")]
    UnknownWord {
        /// The word as typed (lowercased, cut to 32 characters).
        word: String,
        /// 1-based position of the word in the address.
        position: usize,
        /// The closest word of the list.
        suggestion: &'static str,
    },
}

impl Address {
    /// Builds an address from its 48-bit big-endian binary form.
    pub fn from_bytes(bytes: [u8; ADDRESS_LEN]) -> Self {
        let mut wide = [0u8; 8];
        wide[2..].copy_from_slice(&bytes);
        let bits = u64::from_be_bytes(wide);
        let mut words = [0u16; WORDS_PER_ADDRESS];
        for (i, slot) in words.iter_mut().enumerate() {
            let shift = BITS_PER_WORD * (WORDS_PER_ADDRESS - 1 - i) as u32;
            // Masked to 12 bits, so the cast cannot truncate.
            *slot = ((bits >> shift) & 0xfff) as u16;
        }
        Self(words)
    }

    /// The 48-bit big-endian binary form.
    pub fn to_bytes(&self) -> [u8; ADDRESS_LEN] {
        let bits = self.0.iter().fold(0u64, |acc, &w| (acc << BITS_PER_WORD) | u64::from(w));
        let wide = bits.to_be_bytes();
        let mut out = [0u8; ADDRESS_LEN];
        out.copy_from_slice(&wide[2..]);
        out
    }

    /// The four words, in order.
    pub fn words(&self) -> [&'static str; WORDS_PER_ADDRESS] {
        self.0.map(word)
    }
}

impl fmt::Display for Address {
    /// The canonical form, `word-word-word-word`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.words();
        write!(f, "{a}-{b}-{c}-{d}")
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({self})")
    }
}

impl FromStr for Address {
    type Err = AddressError;

    /// Accepts any case, and spaces, dots, hyphens or underscores between words. A
    /// word may be cut after its first five letters (the list is unique there).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = text
            .split(|c: char| c.is_whitespace() || matches!(c, '-' | '.' | '_'))
            .filter(|p| !p.is_empty())
            .collect();
        if parts.len() != WORDS_PER_ADDRESS {
            return Err(AddressError::WordCount { got: parts.len() });
        }
        let mut words = [0u16; WORDS_PER_ADDRESS];
        for (i, (slot, part)) in words.iter_mut().zip(&parts).enumerate() {
            let typed = part.to_ascii_lowercase();
            *slot = word_index(&typed).ok_or_else(|| AddressError::UnknownWord {
                suggestion: closest_word(&typed),
                word: typed.chars().take(32).collect(),
                position: i + 1,
            })?;
        }
        Ok(Self(words))
    }
}

impl Serialize for Address {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() { s.collect_str(self) } else { self.to_bytes().serialize(s) }
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let text = String::deserialize(d)?;
            text.parse().map_err(serde::de::Error::custom)
        } else {
            <[u8; ADDRESS_LEN]>::deserialize(d).map(Self::from_bytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn canonical_form_round_trips() {
        let a = Address::from_bytes([0x00, 0x01, 0x00, 0x2f, 0xff, 0xff]);
        assert_eq!(
            a.to_string(),
            format!("{}-{}-{}-{}", word(0), word(0x100), word(0x2ff), word(0xfff))
        );
        assert_eq!(a.to_string().parse::<Address>(), Ok(a));
    }

    #[test]
    fn parser_accepts_case_and_separators() {
        let a = Address::from_bytes([1, 2, 3, 4, 5, 6]);
        let [w1, w2, w3, w4] = a.words();
        for text in [
            format!("{w1}-{w2}-{w3}-{w4}"),
            format!("{} {} {} {}", w1.to_uppercase(), w2, w3, w4),
            format!("  {w1}.{w2}. {w3} - {w4}  "),
            format!("{w1}\t{w2}_{w3}--{w4}"),
        ] {
            assert_eq!(text.parse::<Address>(), Ok(a), "{text:?}");
        }
    }

    #[test]
    fn unknown_word_is_named_with_the_closest_suggestion() {
        let err = "abacus zebraa zone zoom".parse::<Address>().unwrap_err();
        assert_eq!(
            err,
            AddressError::UnknownWord { word: "zebraa".into(), position: 2, suggestion: "zebra" }
        );
        assert!(err.to_string().contains("\"zebraa\""));
        assert!(err.to_string().contains("\"zebra\""));
    }

    #[test]
    fn wrong_word_count_is_refused() {
        assert_eq!("abacus zone".parse::<Address>(), Err(AddressError::WordCount { got: 2 }));
        assert_eq!("".parse::<Address>(), Err(AddressError::WordCount { got: 0 }));
        assert_eq!(
            "abacus zone zoom zodiac abide".parse::<Address>(),
            Err(AddressError::WordCount { got: 5 })
        );
    }

    #[test]
    fn serde_uses_the_canonical_string_in_json() {
        let a = Address::from_bytes([9, 8, 7, 6, 5, 4]);
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, format!("\"{a}\""));
        assert_eq!(serde_json::from_str::<Address>(&json).unwrap(), a);
    }

    proptest! {
        #[test]
        fn bytes_round_trip(bytes in any::<[u8; 6]>()) {
            let a = Address::from_bytes(bytes);
            prop_assert_eq!(a.to_bytes(), bytes);
            prop_assert_eq!(a.to_string().parse::<Address>(), Ok(a));
        }

        #[test]
        fn parsing_never_panics(text in ".{0,80}") {
            let _ = text.parse::<Address>();
        }
    }
}
