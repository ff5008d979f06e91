//! `communitas bench file`: one file, alice to bob, direct, real processes on loopback.
//!
//! Measures from the moment alice's node is asked to send (its first read of the
//! file) to the `done` event on bob's `/v1/events` (whole-file BLAKE3 checked, file
//! renamed into `downloads/`), and the peak RSS (`VmHWM`) of both nodes. The file is
//! written (and so in the page cache) before the clock starts, as it would be for
//! magic-wormhole in `scripts/bench-files`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use futures::StreamExt as _;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

use crate::client::Api;
use crate::commands::bench::{Trio, add_contact, stop};

/// `bench file`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct FileArgs {
    /// File size in MiB.
    #[arg(long, default_value_t = 100)]
    pub(crate) size_mib: u64,
    /// Where to write the test file (default: a temporary folder).
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
    /// Print the figures as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Peak resident memory of a process, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
}

pub(crate) fn file(args: FileArgs) -> Result<()> {
    anyhow::ensure!(args.size_mib > 0, "--size-mib must be positive");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let Trio { dir, homes, addresses, server, alice, bob, .. } = Trio::start().await?;
        let data_dir = args.dir.clone().unwrap_or_else(|| dir.path().to_path_buf());
        let path = data_dir.join(format!("bench-{}MiB.bin", args.size_mib));
        let size = args.size_mib << 20;
        let expected = write_file(&path, size)?;
        let pids = (alice.child.id(), bob.child.id());
        let idle = (pids.0.and_then(peak_rss_kib), pids.1.and_then(peak_rss_kib));
        let result =
            measure(&homes[1], &homes[2], addresses[1], addresses[2], &path, expected).await;
        let rss = (pids.0.and_then(peak_rss_kib), pids.1.and_then(peak_rss_kib));
        for p in [alice, bob, server] {
            stop(p).await;
        }
        if args.dir.is_some() {
            let _ = std::fs::remove_file(&path);
        }
        let (seconds, prepared) = result?;
        let mib = |kib: Option<u64>| kib.map(|k| k as f64 / 1024.0);
        let figures = json!({
            "size_mib": args.size_mib,
            "seconds": seconds,
            "prepare_seconds": prepared,
            "mb_per_s": size as f64 / 1e6 / seconds,
            "sender_peak_rss_mib": mib(rss.0),
            "receiver_peak_rss_mib": mib(rss.1),
            "sender_rss_before_mib": mib(idle.0),
            "receiver_rss_before_mib": mib(idle.1),
        });
        if args.json {
            println!("{figures}");
        } else {
            println!(
                "{} MiB direct, alice → bob, first read → verified file on disk: {:.2} s ({:.0} MB/s)",
                args.size_mib,
                seconds,
                figures["mb_per_s"].as_f64().unwrap_or(0.0)
            );
            println!("  of which the sender's pass over the file (manifest): {prepared:.2} s");
            println!(
                "peak RSS: sender {:.1} MiB, receiver {:.1} MiB (before the transfer: {:.1}, {:.1})",
                mib(rss.0).unwrap_or(0.0),
                mib(rss.1).unwrap_or(0.0),
                mib(idle.0).unwrap_or(0.0),
                mib(idle.1).unwrap_or(0.0)
            );
        }
        Ok(())
    })
}

/// Incompressible bytes; returns their BLAKE3 (hex).
fn write_file(path: &Path, size: u64) -> Result<String> {
    use std::io::Write as _;
    let mut reader = blake3::Hasher::new().update(b"communitas bench file").finalize_xof();
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?,
    );
    let mut whole = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = usize::try_from(left.min(1 << 20)).unwrap_or(1 << 20);
        reader.fill(&mut buf[..n]);
        whole.update(&buf[..n]);
        file.write_all(&buf[..n])?;
        left -= n as u64;
    }
    file.flush()?;
    Ok(whole.finalize().to_hex().to_string())
}

async fn measure(
    alice_home: &Path,
    bob_home: &Path,
    alice_address: communitas_types::Address,
    bob: communitas_types::Address,
    path: &Path,
    expected: String,
) -> Result<(f64, f64)> {
    let alice = Api::for_home(alice_home)?;
    let bob_api = Api::for_home(bob_home)?;
    add_contact(&alice, bob).await.context("alice could not find bob")?;
    // Bob accepts alice: a stranger's files are not fetched (issue 15).
    add_contact(&bob_api, alice_address).await.context("bob could not find alice")?;
    // Warm the connection with one message, as a user would have.
    alice.post::<Value>("/v1/messages", &json!({ "to": bob, "text": "file coming" })).await?;

    let url = bob_api.url("/v1/events").replacen("http://", "ws://", 1);
    let mut request = url.into_client_request()?;
    request.headers_mut().insert("authorization", format!("Bearer {}", bob_api.token()).parse()?);
    let (mut events, _) = tokio_tungstenite::connect_async(request).await?;

    let start = Instant::now();
    let queued: Value =
        alice.post("/v1/files", &json!({ "to": bob, "path": path, "text": "" })).await?;
    let file_id = queued["file_id"].as_str().context("no file id")?.to_owned();
    let prepared = start.elapsed().as_secs_f64();
    let done = tokio::time::timeout(Duration::from_secs(600), async {
        while let Some(Ok(frame)) = events.next().await {
            let Ok(text) = frame.to_text() else { continue };
            let Ok(event) = serde_json::from_str::<Value>(text) else { continue };
            if event["type"] == "file_progress" && event["file_id"] == file_id.as_str() {
                match event["status"].as_str() {
                    Some("done") => return Ok(Instant::now()),
                    Some("failed") => bail!("the transfer failed"),
                    _ => {}
                }
            }
        }
        bail!("bob's event stream ended")
    })
    .await
    .context("not received within 600 s")??;
    let seconds = (done - start).as_secs_f64();
    let received: Value = bob_api.get(&format!("/v1/files/{file_id}")).await?;
    if received["blake3"] != expected.as_str() {
        bail!("the received file's hash differs");
    }
    let saved = received["path"].as_str().context("no path")?;
    let on_disk = tokio::task::spawn_blocking({
        let saved = saved.to_owned();
        move || -> Result<String> {
            let mut hasher = blake3::Hasher::new();
            std::io::copy(&mut std::fs::File::open(&saved)?, &mut hasher)?;
            Ok(hasher.finalize().to_hex().to_string())
        }
    })
    .await??;
    if on_disk != expected {
        bail!("the file on bob's disk differs from alice's");
    }
    Ok((seconds, prepared))
}
