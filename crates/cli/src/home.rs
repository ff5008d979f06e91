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
