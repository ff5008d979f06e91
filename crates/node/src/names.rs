//! Display names: one rule for our own name and for what the user calls a contact
//! (issue 23 item 3), the same at the CLI, the API and the web UI.

use communitas_crypto::keystore::MAX_NAME_LEN;

/// Why a display name cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// Empty, or only spaces.
    #[error("the name is empty")]
    Empty,
    /// Longer than a name may be.
    #[error("the name is {len} bytes, the limit is {max}")]
    TooLong {
        /// Its length in bytes (UTF-8).
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A line break, tab or other control character.
    #[error("the name contains control characters")]
    ControlCharacter,
}

/// Checks a display name: not blank, at most [`MAX_NAME_LEN`] bytes (what an
/// identity record carries), no control characters.
pub fn check_name(name: &str) -> Result<(), NameError> {
    if name.trim().is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong { len: name.len(), max: MAX_NAME_LEN });
    }
    if name.chars().any(char::is_control) {
        return Err(NameError::ControlCharacter);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert_eq!(check_name("Ada Lovelace"), Ok(()));
        assert_eq!(check_name("  "), Err(NameError::Empty));
        assert_eq!(check_name("a\nb"), Err(NameError::ControlCharacter));
        let long = "é".repeat(65);
        assert_eq!(check_name(&long), Err(NameError::TooLong { len: 130, max: 128 }));
        assert_eq!(check_name(&"a".repeat(128)), Ok(()));
    }
}
