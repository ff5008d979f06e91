//! The home folder: where an identity's keystore and database live.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use communitas_crypto::Keystore;

/// The keystore's file name inside a home.
pub(crate) const KEYSTORE: &str = "keystore";
/// The database's file name inside a home.
pub(crate) const DATABASE: &str = "communitas.db";

/// `--home`, else `$COMMUNITAS_HOME`, else `<platform data folder>/communitas`, else
/// `./.communitas` on a platform without one.
pub(crate) fn resolve(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| {
        std::env::var_os("COMMUNITAS_HOME").filter(|v| !v.is_empty()).map(PathBuf::from)
    })
    .or_else(|| dirs::data_dir().map(|d| d.join("communitas")))
    .unwrap_or_else(|| PathBuf::from(".communitas"))
}

/// Reads the keystore of `home`, with an error that says what to do when there is none.
pub(crate) fn read_keystore(home: &Path) -> Result<Keystore> {
    let path = home.join(KEYSTORE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            anyhow::bail!("no identity in {} — run `communitas init` first", home.display())
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    Keystore::from_bytes(&bytes)
        .with_context(|| format!("{} is not a usable keystore", path.display()))
}

/// Creates `home` (private to its owner) if it does not exist.
pub(crate) fn create(home: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(home).with_context(|| format!("cannot create {}", home.display()))
}

/// Writes `bytes` to `path` only if nothing is there, atomically: a crash leaves
/// either no file or the whole file, never a partial keystore.
pub(crate) fn write_new_file(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{}.tmp-{}", KEYSTORE, std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    // A hard link fails if the target exists, unlike rename: no identity is ever
    // overwritten, even by two `init`s racing.
    let linked = written.and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    linked.with_context(|| format!("cannot write {}", path.display()))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Replaces the file at `path` with `bytes`, atomically and durably: a crash leaves
/// either the old file or the whole new one, never a partial one (decision 0014).
///
/// The new content goes to a temporary file in the same folder (mode 0600, so the
/// rename stays within one file system and never exposes a readable keystore), is
/// fsynced, renamed over `path` (atomic on POSIX), and then the folder is fsynced so
/// the rename itself survives a power cut.
pub(crate) fn replace_file(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600));
    let write = || -> std::io::Result<()> {
        // Dropped on any error before `persist`: the temporary file is removed.
        let mut tmp = builder.tempfile_in(dir)?;
        tmp.write_all(bytes)?;
        tmp.as_file().sync_all()?;
        tmp.persist(path).map_err(|e| e.error)?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().with_context(|| format!("cannot replace {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_file_swaps_the_content_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEYSTORE);
        write_new_file(&path, b"old").unwrap();
        replace_file(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let names: Vec<_> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, [KEYSTORE]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_failed_replace_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        // Renaming over a non-empty folder fails after the temporary file is written.
        let blocked = dir.path().join("blocked");
        std::fs::create_dir(&blocked).unwrap();
        std::fs::write(blocked.join("x"), b"").unwrap();
        assert!(replace_file(&blocked, b"new").is_err());
        let names: Vec<_> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["blocked"]);
        assert!(blocked.join("x").exists());
    }
}
