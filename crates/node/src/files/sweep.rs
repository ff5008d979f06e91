//! The uploads folder: files sent through the API's upload route are kept there (each
//! in its own folder) so the node can serve them to the recipient. A recipient may
//! fetch for as long as the message lives ([`MESSAGE_TTL`](crate::MESSAGE_TTL)), so a
//! folder is removed once it is older than that, plus a day for late clocks.

use std::path::Path;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

/// How long an uploaded file is kept.
pub(crate) const KEEP: Duration = Duration::from_secs(31 * 24 * 3600);
/// How often the folder is looked at.
const EVERY: Duration = Duration::from_secs(6 * 3600);

/// Sweeps `dir` at start and every six hours until `shutdown`.
pub(crate) async fn run(dir: std::path::PathBuf, shutdown: CancellationToken) {
    loop {
        let swept = tokio::task::spawn_blocking({
            let dir = dir.clone();
            move || sweep(&dir, KEEP, SystemTime::now())
        })
        .await
        .unwrap_or(0);
        if swept > 0 {
            tracing::info!(swept, "removed uploaded files past their messages' lifetime");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(EVERY) => {}
        }
    }
}

/// Marks an upload's folder as new again (its message was sent again, with a new
/// lifetime).
pub(crate) fn renew(folder: &Path) {
    let renewed = std::fs::File::open(folder).and_then(|f| f.set_modified(SystemTime::now()));
    if let Err(e) = renewed {
        tracing::warn!(error = %e, "cannot renew an upload's folder");
    }
}

/// Removes the folders in `dir` last changed more than `keep` before `now`; returns
/// how many. Anything unreadable is left alone.
pub(crate) fn sweep(dir: &Path, keep: Duration, now: SystemTime) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut removed = 0;
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        let old = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age > keep);
        if meta.is_dir() && old {
            match std::fs::remove_dir_all(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) => tracing::warn!(error = %e, "cannot remove an old upload"),
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(dir: &Path, name: &str, age: Duration) {
        let folder = dir.join(name);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("film.mp4"), b"bytes").unwrap();
        let when = SystemTime::now() - age;
        std::fs::File::open(&folder).unwrap().set_modified(when).unwrap();
    }

    #[test]
    fn only_uploads_older_than_the_message_lifetime_go() {
        let dir = tempfile::tempdir().unwrap();
        upload(dir.path(), "old", KEEP + Duration::from_secs(60));
        upload(dir.path(), "recent", KEEP - Duration::from_secs(3600));
        std::fs::write(dir.path().join("stray-file"), b"not ours to judge").unwrap();
        assert_eq!(sweep(dir.path(), KEEP, SystemTime::now()), 1);
        assert!(!dir.path().join("old").exists());
        assert!(dir.path().join("recent/film.mp4").exists());
        assert!(dir.path().join("stray-file").exists());
        assert_eq!(sweep(&dir.path().join("missing"), KEEP, SystemTime::now()), 0);
        // A folder renewed (its message retried) stays.
        upload(dir.path(), "retried", KEEP + Duration::from_secs(60));
        renew(&dir.path().join("retried"));
        assert_eq!(sweep(dir.path(), KEEP, SystemTime::now()), 0);
    }
}
