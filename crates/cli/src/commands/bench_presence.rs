//! `communitas bench presence` (issue 6): real processes on loopback, as `bench
//! latency` starts them (one server node, alice, bob; contacts both ways).
//!
//! - change: bob sets his status (`PUT /v1/presence`, alternating away/online); the
//!   time until the `presence` event with that status arrives on alice's
//!   `/v1/events` WebSocket;
//! - restart: bob is killed with SIGKILL; the time until alice's event says
//!   `offline`; then bob is started again, and the time from starting his process
//!   until alice's event says he is back (`online`), with nothing else done.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::client::Api;
use crate::commands::bench::{Trio, add_contact, percentile, spawn, stop};

/// `bench presence`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct PresenceArgs {
    /// Status changes measured.
    #[arg(long, default_value_t = 200)]
    pub(crate) changes: usize,
    /// SIGKILL + restart rounds measured.
    #[arg(long, default_value_t = 5)]
    pub(crate) restarts: usize,
    /// Print the figures as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Presence events for `who` from a node's WebSocket: (status, when it arrived).
async fn presence_events(api: &Api, who: String) -> Result<mpsc::Receiver<(String, Instant)>> {
    let url = api.url("/v1/events").replacen("http://", "ws://", 1);
    let mut request = url.into_client_request()?;
    request.headers_mut().insert("authorization", format!("Bearer {}", api.token()).parse()?);
    let (mut socket, _) =
        tokio_tungstenite::connect_async(request).await.context("cannot open /v1/events")?;
    let (tx, rx) = mpsc::channel(1024);
    tokio::spawn(async move {
        while let Some(Ok(frame)) = socket.next().await {
            let now = Instant::now();
            let Ok(text) = frame.to_text() else { continue };
            let Ok(event) = serde_json::from_str::<Value>(text) else { continue };
            if event["type"] == "presence"
                && event["address"] == who.as_str()
                && let Some(status) = event["status"].as_str()
                && tx.send((status.to_owned(), now)).await.is_err()
            {
                break;
            }
        }
        let _ = socket.close(None).await;
    });
    Ok(rx)
}

async fn until(events: &mut mpsc::Receiver<(String, Instant)>, status: &str) -> Result<Instant> {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), events.recv()).await {
            Ok(Some((got, at))) if got == status => return Ok(at),
            Ok(Some(_)) => {}
            _ => bail!("no presence event {status:?} within 30 s"),
        }
    }
}

fn summary(samples: &mut [Duration]) -> Value {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    json!({
        "n": samples.len(),
        "p50_ms": ms(percentile(samples, 50.0)),
        "p99_ms": ms(percentile(samples, 99.0)),
        "max_ms": ms(percentile(samples, 100.0)),
    })
}

pub(crate) fn presence(args: PresenceArgs) -> Result<()> {
    anyhow::ensure!(args.changes > 0, "--changes must be positive");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let Trio { exe, dir: _dir, homes, addresses, server, alice, bob } = Trio::start().await?;
        let result = measure(&args, &exe, &homes, &addresses, bob, &server.dial).await;
        for p in [alice, server] {
            stop(p).await;
        }
        let figures = result?;
        if args.json {
            println!("{figures}");
        } else {
            for (name, what) in [
                ("change", "status change → alice's event"),
                ("offline", "SIGKILL → alice's offline event"),
                ("back", "restart → alice's online event"),
            ] {
                let f = &figures[name];
                println!(
                    "{what} (n={}): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                    f["n"],
                    f["p50_ms"].as_f64().unwrap_or(0.0),
                    f["p99_ms"].as_f64().unwrap_or(0.0),
                    f["max_ms"].as_f64().unwrap_or(0.0)
                );
            }
        }
        Ok(())
    })
}

async fn measure(
    args: &PresenceArgs,
    exe: &Path,
    homes: &[PathBuf],
    addresses: &[communitas_types::Address],
    mut bob: crate::commands::bench::Proc,
    boot: &str,
) -> Result<Value> {
    let alice_api = Api::for_home(&homes[1])?;
    add_contact(&alice_api, addresses[2]).await?;
    add_contact(&Api::for_home(&homes[2])?, addresses[1]).await?;
    let mut events = presence_events(&alice_api, addresses[2].to_string()).await?;
    // Bob may have come online before the event stream opened.
    let now: Value = alice_api.get(&format!("/v1/presence/{}", addresses[2])).await?;
    if now["status"] != "online" {
        until(&mut events, "online").await?;
    }

    let mut changes = Vec::with_capacity(args.changes);
    for i in 0..args.changes {
        let status = if i.is_multiple_of(2) { "away" } else { "online" };
        let bob_api = Api::for_home(&homes[2])?;
        let start = Instant::now();
        let _: Value = bob_api.put("/v1/presence", &json!({ "status": status })).await?;
        changes.push(until(&mut events, status).await? - start);
    }
    let last = if args.changes.is_multiple_of(2) { "online" } else { "away" };

    let (mut offline, mut back) = (Vec::new(), Vec::new());
    for _ in 0..args.restarts {
        let killed = Instant::now();
        bob.child.kill().await?;
        offline.push(until(&mut events, "offline").await? - killed);
        let started = Instant::now();
        bob = spawn(exe, &homes[2], false, Some(boot)).await?;
        back.push(until(&mut events, last).await? - started);
    }
    stop(bob).await;
    Ok(json!({
        "change": summary(&mut changes),
        "offline": summary(&mut offline),
        "back": summary(&mut back),
    }))
}
