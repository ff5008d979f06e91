//! The sender's pass over a file: stripe digests and whole-file hash, in one read.

use std::fs::File;
use std::io::Read as _;
use std::path::Path;

use communitas_proto::file::{
    Manifest, SEGMENT_LEN, UploadKey, encode_stripe, segment_range, stripe_count,
};

use super::FileError;

/// What the pass found.
pub(crate) struct Prepared {
    pub(crate) manifest: Manifest,
}

/// Reads `path` once and builds its manifest. Blocking: run it on a blocking thread.
/// `progress` is called with the bytes read so far after each segment.
pub(crate) fn prepare(
    path: &Path,
    max_size: u64,
    caption: String,
    source: Vec<u8>,
    mut progress: impl FnMut(u64, u64),
) -> Result<Prepared, FileError> {
    let shown = path.display().to_string();
    let unreadable =
        |e: std::io::Error| FileError::Unreadable { path: shown.clone(), reason: e.to_string() };
    let mut file = File::open(path).map_err(unreadable)?;
    let meta = file.metadata().map_err(unreadable)?;
    if !meta.is_file() {
        return Err(FileError::NotAFile(shown));
    }
    let size = meta.len();
    // Refused before any work (issue 5 §6).
    if size > max_size {
        return Err(FileError::TooLarge { size, max: max_size });
    }
    let key = communitas_crypto::random::bytes().map_err(|_| FileError::Unreadable {
        path: shown.clone(),
        reason: "no randomness".into(),
    })?;
    // The id commits to the file's upload key: only we can put its shards on server
    // nodes (decision 0043).
    let file_id = UploadKey::from_file_key(&key).file_id();

    let mut whole = blake3::Hasher::new();
    let mut digests = Vec::with_capacity(usize::try_from(stripe_count(size)).unwrap_or(0));
    let mut buf = vec![0u8; SEGMENT_LEN as usize];
    for index in 0..stripe_count(size) {
        let (offset, len) = segment_range(size, index)
            .map_err(|e| FileError::Unreadable { path: shown.clone(), reason: e.to_string() })?;
        let segment = &mut buf[..len];
        file.read_exact(segment).map_err(|e| FileError::Unreadable {
            path: shown.clone(),
            reason: format!("{e} (did the file shrink while being read?)"),
        })?;
        whole.update(segment);
        let stripe = encode_stripe(&key, file_id, size, index, segment)
            .map_err(|e| FileError::Unreadable { path: shown.clone(), reason: e.to_string() })?;
        digests.push(stripe.digest());
        progress(offset + len as u64, size);
    }
    let name = file_name_bytes(path);
    let manifest = Manifest {
        file_id,
        key,
        size,
        blake3: *whole.finalize().as_bytes(),
        media_type: media_type(&name).to_owned(),
        name,
        source,
        caption,
        digests,
    };
    Ok(Prepared { manifest })
}

/// The file's name as raw bytes (not necessarily UTF-8).
fn file_name_bytes(path: &Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt as _;
    path.file_name().map(|n| n.as_bytes().to_vec()).unwrap_or_else(|| b"file".to_vec())
}

/// A media type from the extension, for the UI's preview; `application/octet-stream`
/// when unknown. Never trusted for anything else.
fn media_type(name: &[u8]) -> &'static str {
    let name = String::from_utf8_lossy(name).to_ascii_lowercase();
    let ext = name.rsplit('.').next().unwrap_or("");
    match ext {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "pdf" => "application/pdf",
        "txt" | "md" => "text/plain",
        "mp3" => "audio/mpeg",
        "ogg" | "opus" => "audio/ogg",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}
