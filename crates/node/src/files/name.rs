//! Turning a name from the network into a safe file name in `downloads/`.

use std::path::{Path, PathBuf};

/// Longest saved name, in bytes (most file systems allow 255).
const MAX_LEN: usize = 200;

/// A safe file name for `raw`: no directory parts, no control characters, no leading
/// dots, no characters Windows refuses, at most [`MAX_LEN`] bytes; never empty.
pub(crate) fn sanitise(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    // Only the last path component counts, whichever separator the sender used.
    let last = text.rsplit(['/', '\\']).next().unwrap_or("");
    let mut name: String = last
        .chars()
        .map(|c| match c {
            c if c.is_control() => '_',
            '<' | '>' | ':' | '"' | '|' | '?' | '*' => '_',
            // Bidirectional overrides can disguise an extension (`txt.exe`).
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => '_',
            c => c,
        })
        .collect();
    let trimmed = name.trim_start_matches(['.', ' ']).trim_end_matches([' ', '.']).to_owned();
    name = trimmed;
    if name.len() > MAX_LEN {
        // Keep the extension if it is short.
        let ext = name.rfind('.').map(|i| name[i..].to_owned()).filter(|e| e.len() <= 16);
        let ext = ext.unwrap_or_default();
        let mut cut = MAX_LEN - ext.len();
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        name = format!("{}{ext}", &name[..cut]);
    }
    if name.is_empty() { "file".to_owned() } else { name }
}

/// A path in `dir` named `name` (or `name (2)`, `name (3)`...) that does not exist yet.
pub(crate) fn unused_path(dir: &Path, name: &str) -> PathBuf {
    let first = dir.join(name);
    if !first.exists() {
        return first;
    }
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    (2u32..).map(|n| dir.join(format!("{stem} ({n}){ext}"))).find(|p| !p.exists()).unwrap_or(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_become_plain_names() {
        assert_eq!(sanitise(b"../../etc/passwd"), "passwd");
        assert_eq!(sanitise(b"..\\..\\boot.ini"), "boot.ini");
        assert_eq!(sanitise(b"/abs/path.txt"), "path.txt");
        assert_eq!(sanitise(b".."), "file");
        assert_eq!(sanitise(b""), "file");
        assert_eq!(sanitise(b".hidden"), "hidden");
        assert_eq!(sanitise(b"a\nb\x07c.txt"), "a_b_c.txt");
        assert_eq!(sanitise(b"con:name?.txt"), "con_name_.txt");
        assert_eq!(sanitise("evil\u{202e}txt.exe".as_bytes()), "evil_txt.exe");
        assert_eq!(sanitise(b"caf\xe9.txt"), "caf\u{fffd}.txt");
        assert_eq!(sanitise("日本語.pdf".as_bytes()), "日本語.pdf");
        let long = format!("{}.jpeg", "é".repeat(300));
        let s = sanitise(long.as_bytes());
        assert!(s.len() <= MAX_LEN && s.ends_with(".jpeg"), "{s}");
    }

    #[test]
    fn existing_files_are_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let a = unused_path(dir.path(), "a.txt");
        assert_eq!(a, dir.path().join("a.txt"));
        std::fs::write(&a, b"x").unwrap();
        let b = unused_path(dir.path(), "a.txt");
        assert_eq!(b, dir.path().join("a (2).txt"));
        std::fs::write(&b, b"x").unwrap();
        assert_eq!(unused_path(dir.path(), "a.txt"), dir.path().join("a (3).txt"));
        std::fs::write(dir.path().join("noext"), b"x").unwrap();
        assert_eq!(unused_path(dir.path(), "noext"), dir.path().join("noext (2)"));
    }
}
