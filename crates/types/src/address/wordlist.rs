//! The 4096-word list (EFF long list, filtered; see `WORDS-LICENSE.md`).
//!
//! Invariants checked by the tests below: exactly 4096 lowercase ASCII words, sorted,
//! unique in their first five letters, none a prefix of another.

use std::sync::LazyLock;

/// Number of words in the list: 2^12, so one word carries 12 bits.
pub const WORD_COUNT: usize = 4096;

/// Letters that identify a word uniquely.
const UNIQUE_PREFIX: usize = 5;

static WORDS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| include_str!("words.txt").lines().collect());

/// The whole list, sorted.
pub fn words() -> &'static [&'static str] {
    &WORDS
}

/// The word at `index`. Indices come from masked 12-bit values, so they are always in
/// range; an out-of-range index maps to the empty string rather than panicking.
pub fn word(index: u16) -> &'static str {
    WORDS.get(usize::from(index)).copied().unwrap_or("")
}

/// The index of a lowercase word, also accepting a word cut after its first five
/// letters or more (`"abdom"` → `"abdomen"`).
pub fn word_index(typed: &str) -> Option<u16> {
    let list = words();
    let found = match list.binary_search(&typed) {
        Ok(i) => Some(i),
        Err(i) if typed.len() >= UNIQUE_PREFIX => {
            list.get(i).filter(|w| w.starts_with(typed)).map(|_| i)
        }
        Err(_) => None,
    };
    found.and_then(|i| u16::try_from(i).ok())
}

/// The word of the list to suggest for `typed`: a word that starts with it if there
/// is one (the user stopped typing early: "amul" → "amulet", issue 23 item 6), else
/// the closest by edit distance. Ties go to the first in alphabetical order.
pub fn closest_word(typed: &str) -> &'static str {
    let lowered = typed.to_ascii_lowercase();
    if !lowered.is_empty()
        && let Some(word) = words().iter().copied().find(|w| w.starts_with(&lowered))
    {
        // The list is sorted and no word is a prefix of another: the first match is
        // as good as any, and the shortest of a contiguous run.
        return word;
    }
    let typed: Vec<char> = lowered.chars().take(64).collect();
    words().iter().copied().min_by_key(|w| edit_distance(&typed, w)).unwrap_or("")
}

/// Levenshtein distance, two rows.
fn edit_distance(a: &[char], b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn list_has_4096_lowercase_ascii_words_unique_in_five_letters() {
        let list = words();
        assert_eq!(list.len(), WORD_COUNT);
        assert!(list.iter().all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase())));
        assert!(list.windows(2).all(|p| p[0] < p[1]), "sorted and unique");
        let prefixes: HashSet<&str> = list.iter().map(|w| &w[..w.len().min(5)]).collect();
        assert_eq!(prefixes.len(), WORD_COUNT);
        for pair in list.windows(2) {
            assert!(!pair[1].starts_with(pair[0]), "{} is a prefix of {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn lookup_accepts_whole_words_and_five_letter_prefixes() {
        let i = word_index("abdomen").unwrap();
        assert_eq!(word(i), "abdomen");
        assert_eq!(word_index("abdom"), Some(i));
        assert_eq!(word_index("abdo"), None, "four letters are not enough");
        assert_eq!(word_index("abdomens"), None);
        assert_eq!(word_index(""), None);
    }

    #[test]
    fn closest_word_suggests_a_typo_fix() {
        assert_eq!(closest_word("zebbra"), "zebra");
        assert_eq!(closest_word("abdomin"), "abdomen");
    }

    #[test]
    fn closest_word_prefers_a_word_that_starts_with_what_was_typed() {
        // By edit distance alone (ties alphabetical) "amul" gets another word.
        let typed: Vec<char> = "amul".chars().collect();
        let by_distance = words().iter().copied().min_by_key(|w| edit_distance(&typed, w));
        assert_ne!(by_distance, Some("amulet"), "the test needs another word to win on distance");
        assert_eq!(closest_word("amul"), "amulet");
        assert_eq!(closest_word("AMUL"), "amulet");
        assert_eq!(closest_word("zebbra"), "zebra", "no word starts with it: edit distance");
    }

    #[test]
    fn edit_distance_matches_known_values() {
        let d = |a: &str, b: &str| edit_distance(&a.chars().collect::<Vec<_>>(), b);
        assert_eq!(d("kitten", "sitting"), 3);
        assert_eq!(d("", "abc"), 3);
        assert_eq!(d("same", "same"), 0);
    }
}
