//! `communitas bench latency`: real processes on loopback, end to end.
//!
//! Starts one server node, alice and bob as `communitas run` child processes (this
//! same binary), makes them contacts, then measures from alice's API:
//!
//! - latency: one message at a time, from `POST /v1/messages` to the `delivered`
//!   event on alice's `/v1/events` WebSocket (the receipt is sent only after bob's
//!   database commit, and `delivered` only after alice's);
//! - throughput: many messages with `--concurrency` requests in flight, from the first
//!   request to the last `delivered` event.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use communitas_crypto::keystore::KdfParams;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::client::Api;
use crate::commands::init;

/// `bench latency`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct LatencyArgs {
    /// Messages sent one at a time for the latency figures.
    #[arg(long, default_value_t = 1000)]
    pub(crate) messages: usize,
    /// Messages for the throughput run.
    #[arg(long, default_value_t = 5000)]
    pub(crate) burst: usize,
    /// Requests in flight during the throughput run.
    #[arg(long, default_value_t = 64)]
    pub(crate) concurrency: usize,
    /// Print the figures as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) struct Proc {
    pub(crate) child: Child,
    pub(crate) dial: String,
}

/// A server node, alice and bob: fresh identities in a temporary folder (deleted with
/// it), each running as a `communitas run` process of this same binary (or of the one
/// `COMMUNITAS_BENCH_NODE` names, for a paired run against an earlier build), alice and
/// bob bootstrapped to the server. What every `bench` over real processes starts from.
pub(crate) struct Trio {
    pub(crate) exe: PathBuf,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) homes: Vec<PathBuf>,
    pub(crate) addresses: Vec<communitas_types::Address>,
    pub(crate) server: Proc,
    pub(crate) alice: Proc,
    pub(crate) bob: Proc,
}

impl Trio {
    pub(crate) async fn start() -> Result<Self> {
        let exe = match std::env::var_os("COMMUNITAS_BENCH_NODE") {
            Some(path) => PathBuf::from(path),
            None => std::env::current_exe()?,
        };
        let dir = tempfile::Builder::new().prefix("communitas-bench-").tempdir()?;
        let homes: Vec<PathBuf> =
            ["server", "alice", "bob"].iter().map(|n| dir.path().join(n)).collect();
        let mut addresses = Vec::new();
        for home in &homes {
            let (_, public) =
                init::create(home, None, b"bench", KdfParams::INSECURE_FOR_TESTS).await?;
            addresses.push(public.address);
        }
        let server = spawn(&exe, &homes[0], true, None).await?;
        let alice = spawn(&exe, &homes[1], false, Some(&server.dial)).await?;
        let bob = spawn(&exe, &homes[2], false, Some(&server.dial)).await?;
        Ok(Self { exe, dir, homes, addresses, server, alice, bob })
    }
}

pub(crate) async fn spawn(
    exe: &Path,
    home: &Path,
    server: bool,
    bootstrap: Option<&str>,
) -> Result<Proc> {
    let mut cmd = Command::new(exe);
    cmd.arg("--home").arg(home).args(["run", "--listen", "/ip4/127.0.0.1/tcp/0"]);
    cmd.env("COMMUNITAS_PASSPHRASE", "bench").env_remove("COMMUNITAS_HOME");
    if server {
        cmd.arg("--server");
    }
    if let Some(b) = bootstrap {
        cmd.args(["--bootstrap", b]);
    }
    if let Ok(n) = std::env::var("COMMUNITAS_BENCH_FILE_STREAMS") {
        cmd.args(["--file-streams", &n]);
    }
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).kill_on_drop(true).spawn()?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let mut dial = None;
    while let Some(line) = lines.next_line().await? {
        if let Some(addr) = line.strip_prefix("listening  ") {
            dial.get_or_insert_with(|| addr.to_owned());
        }
        if line.starts_with("api ") {
            break;
        }
    }
    let dial = dial.context("the node printed no address")?;
    Ok(Proc { child, dial })
}

pub(crate) async fn stop(mut p: Proc) {
    if let Some(pid) = p.child.id() {
        let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), p.child.wait()).await;
}

/// Collects `delivered` events from alice's WebSocket into a channel of message ids.
pub(crate) async fn delivered_events(api: &Api) -> Result<mpsc::Receiver<(String, Instant)>> {
    let url = api.url("/v1/events").replacen("http://", "ws://", 1);
    let mut request = url.into_client_request()?;
    request.headers_mut().insert("authorization", format!("Bearer {}", api.token()).parse()?);
    let (mut socket, _) =
        tokio_tungstenite::connect_async(request).await.context("cannot open /v1/events")?;
    let (tx, rx) = mpsc::channel(100_000);
    tokio::spawn(async move {
        while let Some(Ok(frame)) = socket.next().await {
            let now = Instant::now();
            let Ok(text) = frame.to_text() else { continue };
            let Ok(event) = serde_json::from_str::<Value>(text) else { continue };
            if event["type"] == "status_changed"
                && event["status"] == "delivered"
                && let Some(id) = event["id"].as_str()
                && tx.send((id.to_owned(), now)).await.is_err()
            {
                break;
            }
        }
        let _ = socket.close(None).await;
    });
    Ok(rx)
}

/// Adds `address` as a contact through `api`, trying again for up to 30 s while its
/// record is not in the DHT yet.
pub(crate) async fn add_contact(api: &Api, address: communitas_types::Address) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Err(e) = api.post::<Value>("/v1/contacts", &json!({ "address": address })).await {
        if Instant::now() > deadline {
            return Err(e).context("the contact was never found");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

pub(crate) fn latency(args: LatencyArgs) -> Result<()> {
    anyhow::ensure!(
        args.messages > 0 && args.concurrency > 0,
        "--messages and --concurrency must be positive"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let Trio { dir: _dir, homes, addresses, server, alice, bob, .. } = Trio::start().await?;
        let result = measure(&args, &homes[1], &homes[2], addresses[1], addresses[2]).await;
        for p in [alice, bob, server] {
            stop(p).await;
        }
        let figures = result?;
        if args.json {
            println!("{figures}");
        } else {
            println!("latency over {} messages (send → delivered receipt):", args.messages);
            for key in ["p50_ms", "p90_ms", "p99_ms", "max_ms"] {
                println!("  {key:7} {:.3}", figures[key].as_f64().unwrap_or(0.0));
            }
            println!(
                "throughput: {} messages, {} in flight: {:.0} msg/s",
                args.burst,
                args.concurrency,
                figures["throughput_msg_per_s"].as_f64().unwrap_or(0.0)
            );
        }
        Ok(())
    })
}

async fn measure(
    args: &LatencyArgs,
    alice_home: &Path,
    bob_home: &Path,
    alice: communitas_types::Address,
    bob: communitas_types::Address,
) -> Result<Value> {
    let api = Api::for_home(alice_home)?;
    add_contact(&api, bob).await.context("alice could not find bob")?;
    // Each other's contacts: a stranger's messages would be a bounded request
    // (issue 15), not a conversation.
    let bob_api = Api::for_home(bob_home)?;
    add_contact(&bob_api, alice).await.context("bob could not find alice")?;
    let mut delivered = delivered_events(&api).await?;
    let send = |text: String| {
        let api = &api;
        async move {
            let queued: Value =
                api.post("/v1/messages", &json!({ "to": bob, "text": text })).await?;
            queued["id"].as_str().map(str::to_owned).context("no id")
        }
    };
    // Warm-up: the connection is dialled and every cache filled.
    for i in 0..20 {
        let id = send(format!("warm-up {i}")).await?;
        wait_for(&mut delivered, &id).await?;
    }

    let mut samples = Vec::with_capacity(args.messages);
    for i in 0..args.messages {
        let text = format!("latency {i} {}", "x".repeat(200));
        let start = Instant::now();
        let id = send(text).await?;
        let at = wait_for(&mut delivered, &id).await?;
        samples.push(at - start);
    }
    samples.sort();

    let start = Instant::now();
    let mut outstanding: HashMap<String, ()> = HashMap::new();
    let mut sent = 0;
    let mut in_flight = futures::stream::FuturesUnordered::new();
    while sent < args.burst || !in_flight.is_empty() {
        while sent < args.burst && in_flight.len() < args.concurrency {
            in_flight.push(send(format!("burst {sent}")));
            sent += 1;
        }
        if let Some(id) = in_flight.next().await {
            outstanding.insert(id?, ());
        }
    }
    let mut done = 0;
    let burst_deadline = Instant::now() + Duration::from_secs(120);
    while done < args.burst {
        let remaining = burst_deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, delivered.recv()).await {
            Ok(Some((id, _))) => {
                if outstanding.remove(&id).is_some() {
                    done += 1;
                }
            }
            _ => bail!(
                "{} of {} burst messages not delivered within 120 s",
                args.burst - done,
                args.burst
            ),
        }
    }
    let elapsed = start.elapsed();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Ok(json!({
        "messages": args.messages,
        "p50_ms": ms(percentile(&samples, 50.0)),
        "p90_ms": ms(percentile(&samples, 90.0)),
        "p99_ms": ms(percentile(&samples, 99.0)),
        "max_ms": ms(percentile(&samples, 100.0)),
        "burst": args.burst,
        "concurrency": args.concurrency,
        "throughput_msg_per_s": args.burst as f64 / elapsed.as_secs_f64(),
    }))
}

pub(crate) async fn wait_for(
    events: &mut mpsc::Receiver<(String, Instant)>,
    id: &str,
) -> Result<Instant> {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), events.recv()).await {
            Ok(Some((got, at))) if got == id => return Ok(at),
            Ok(Some(_)) => {}
            _ => bail!("message {id} not delivered within 30 s"),
        }
    }
}
