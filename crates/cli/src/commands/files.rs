//! `send --file`, `files get` and `files show`, with progress bars.

use std::io::IsTerminal as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use futures::StreamExt as _;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

use crate::Exit;
use crate::client::Api;

#[derive(Deserialize)]
struct FileQueued {
    id: String,
    file_id: String,
    status: String,
}

#[derive(Deserialize, Debug)]
struct Attachment {
    name: String,
    size: u64,
    status: String,
    progress: u64,
    path: Option<String>,
    error: Option<String>,
    blake3: String,
}

fn bar(size: u64, visible: bool, message: &'static str) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(size);
    let style = ProgressStyle::with_template(
        "{msg:>9} [{bar:32}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(message);
    bar
}

/// Follows `/v1/events` and moves `bar` for our file: first while the node reads and
/// hashes it, then as the recipient fetches it. Best effort: no events, no bar.
/// Every `(file id, bytes, size)` of the recipient's fetching goes to `fetched`.
async fn follow(
    api: &Api,
    path: String,
    bar: ProgressBar,
    fetched: tokio::sync::mpsc::Sender<(String, u64, u64)>,
) {
    let url = api.url("/v1/events").replacen("http://", "ws://", 1);
    let Ok(mut request) = url.into_client_request() else { return };
    let Ok(auth) = format!("Bearer {}", api.token()).parse() else { return };
    request.headers_mut().insert("authorization", auth);
    let Ok((mut socket, _)) = tokio_tungstenite::connect_async(request).await else { return };
    while let Some(Ok(frame)) = socket.next().await {
        let Ok(text) = frame.to_text() else { continue };
        let Ok(event) = serde_json::from_str::<Value>(text) else { continue };
        match event["type"].as_str() {
            Some("file_preparing") if event["path"] == path.as_str() => {
                bar.set_length(event["size"].as_u64().unwrap_or(0));
                bar.set_position(event["bytes"].as_u64().unwrap_or(0));
            }
            Some("file_progress") if event["direction"] == "out" => {
                let id = event["file_id"].as_str().unwrap_or("").to_owned();
                let (bytes, size) =
                    (event["bytes"].as_u64().unwrap_or(0), event["size"].as_u64().unwrap_or(0));
                if fetched.send((id, bytes, size)).await.is_err() {
                    return;
                }
            }
            _ => {}
        }
    }
}

/// `send ADDRESS TEXT --file PATH`.
pub(crate) async fn send(
    home: &Path,
    to: &str,
    text: &str,
    file: &Path,
    wait: Option<u64>,
    json: bool,
) -> Result<()> {
    let api = Api::for_home(home)?;
    // The node may run elsewhere in the file system: give it an absolute path.
    let path =
        std::path::absolute(file).map_err(|e| Exit::usage(format!("{}: {e}", file.display())))?;
    let shown = path.display().to_string();
    let visible = !json && std::io::stderr().is_terminal();
    let progress = bar(0, visible, "reading");
    let (fetched_tx, mut fetched) = tokio::sync::mpsc::channel(256);
    let follower = {
        let api = Api::for_home(home)?;
        let bar = progress.clone();
        let shown = shown.clone();
        tokio::spawn(async move { follow(&api, shown, bar, fetched_tx).await })
    };
    // Let the event stream open before the node starts reading.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let queued: FileQueued =
        api.post("/v1/files", &json!({ "to": to, "path": path, "text": text })).await?;
    progress.set_message("sent");
    progress.set_position(0);
    let mut status = queued.status;
    let mut served_all = false;
    if let Some(secs) = wait {
        let size = api.get::<Attachment>(&format!("/v1/files/{}", queued.file_id)).await?.size;
        progress.set_length(size);
        let mut sent = 0;
        let deadline = Instant::now() + Duration::from_secs(secs);
        let message = format!("/v1/messages/{}", queued.id);
        while Instant::now() < deadline {
            if !matches!(status.as_str(), "delivered" | "read" | "failed") {
                let m: Value = api.get(&message).await?;
                status = m["status"].as_str().unwrap_or("").to_owned();
            }
            while let Ok((id, bytes, _)) = fetched.try_recv() {
                if id == queued.file_id {
                    sent = sent.max(bytes);
                }
            }
            progress.set_position(sent);
            // An empty file has nothing to fetch: delivered is all there is.
            served_all =
                sent >= size && (size > 0 || matches!(status.as_str(), "delivered" | "read"));
            if served_all || status == "failed" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    follower.abort();
    progress.finish_and_clear();
    if json {
        println!("{}", json!({ "id": queued.id, "file_id": queued.file_id, "status": status }));
    } else {
        println!("{}", queued.file_id);
    }
    match wait {
        Some(_) if status == "failed" => Err(Exit::with_code(
            4,
            format!("the file's message {} failed: it will not be retried", queued.id),
        )),
        Some(secs) if !served_all => Err(Exit::with_code(
            3,
            format!(
                "the file was not fetched within {secs} s, but is queued (message status: \
                 {status}): it will be fetched when the recipient is reachable; do not send it \
                 again"
            ),
        )),
        _ => Ok(()),
    }
}

/// `files get FILE_ID [--out PATH]`: fetch (if needed), then copy out.
pub(crate) async fn get(home: &Path, id: &str, out: Option<&Path>, json: bool) -> Result<()> {
    let api = Api::for_home(home)?;
    if let Some(out) = out
        && out.exists()
    {
        return Err(Exit::usage(format!("{} exists; choose another --out", out.display())));
    }
    let mut file: Attachment = api.post(&format!("/v1/files/{id}/fetch"), &json!({})).await?;
    let visible = !json && std::io::stderr().is_terminal();
    let progress = bar(file.size, visible, "fetching");
    while !matches!(file.status.as_str(), "done" | "failed" | "offered") {
        progress.set_position(file.progress);
        tokio::time::sleep(Duration::from_millis(100)).await;
        file = api.get(&format!("/v1/files/{id}")).await?;
    }
    progress.finish_and_clear();
    if file.status == "failed" {
        let why = file.error.unwrap_or_default();
        return Err(Exit::with_code(1, format!("{} could not be fetched: {why}", file.name)));
    }
    let saved = match out {
        Some(out) => {
            copy_out(&api, id, out).await?;
            out.display().to_string()
        }
        None => file.path.clone().unwrap_or_default(),
    };
    if json {
        println!(
            "{}",
            json!({ "file_id": id, "name": file.name, "size": file.size, "blake3": file.blake3, "path": saved })
        );
    } else {
        println!("{saved}");
    }
    Ok(())
}

/// Streams the file's content to `out` through a temporary file, never replacing one.
async fn copy_out(api: &Api, id: &str, out: &Path) -> Result<()> {
    use tokio::io::AsyncWriteExt as _;
    let response = api.get_raw(&format!("/v1/files/{id}/content")).await?;
    let dir = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let temp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    let (std_file, temp_path) = temp.into_parts();
    let mut file = tokio::fs::File::from_std(std_file);
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        file.write_all(&chunk.context("download interrupted")?).await?;
    }
    file.sync_all().await?;
    temp_path
        .persist_noclobber(out)
        .map_err(|e| Exit::usage(format!("cannot write {}: {}", out.display(), e.error)))?;
    Ok(())
}

/// `files show FILE_ID`.
pub(crate) async fn show(home: &Path, id: &str, json: bool) -> Result<()> {
    let api = Api::for_home(home)?;
    let file: Value = api.get(&format!("/v1/files/{id}")).await?;
    if json {
        println!("{file}");
    } else {
        println!(
            "{}  {} bytes  {}  {}/{}",
            file["name"].as_str().unwrap_or(""),
            file["size"],
            file["status"].as_str().unwrap_or(""),
            file["progress"],
            file["size"]
        );
    }
    Ok(())
}
