//! `communitas bench flood` (issue 15 item 4, decision 0062): real processes on
//! loopback — a server node, alice, bob (contacts both ways) and carol (a stranger to
//! bob) — and, in this process, an attacker with its own libp2p client.
//!
//! 1. Quiet: alice sends `--messages` texts to bob one at a time; each one's time from
//!    `POST /v1/messages` to its `delivered` event.
//! 2. Flood: the attacker writes to bob from `--identities` fresh identities (one
//!    version-1 envelope each, so no proof of work; each refused one sent again every
//!    second, as a real attacker would) through `--peers` libp2p clients of its own
//!    (PeerIds cost nothing, so none is a contact's device), while alice sends the same number of texts
//!    again and carol writes to bob for the first time: alice's latencies, how long
//!    until carol's request is in bob's list, and bob's CPU over each phase (its
//!    `/proc/PID/stat` user + system time over the wall time), and this process's
//!    (the attacker's) over the flood — on this machine it shares bob's cores.
//!
//! Each phase also reports its five slowest texts with when they were sent, and its
//! p99 after the first second. At 100 texts a phase lasts well under a second, so it
//! measures the flood's opening (20 connections and 200 envelopes at once); thousands
//! (`--messages 2000`, five seconds) also cover its rounds. `--identities 0
//! --no-carol` is the control whose two phases differ in nothing.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use communitas_crypto::keystore::KdfParams;
use communitas_crypto::{Envelope, Identity, Kind, Letter};
use communitas_net::Receipt;
use communitas_types::{Address, MessageId, Timestamp};
use serde_json::{Value, json};

use crate::client::Api;
use crate::commands::bench::{
    Trio, add_contact, delivered_events, percentile, spawn, stop, wait_for,
};
use crate::commands::init;

/// `bench flood`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct FloodArgs {
    /// Fresh identities that write to bob during the flood.
    #[arg(long, default_value_t = 200)]
    pub(crate) identities: usize,
    /// Texts alice sends in each phase (one at a time; ~2.5 ms each on loopback).
    #[arg(long, default_value_t = 100)]
    pub(crate) messages: usize,
    /// The attacker's libp2p clients (PeerIds) the envelopes are spread over.
    #[arg(long, default_value_t = 20)]
    pub(crate) peers: usize,
    /// Leave carol's first contact out of the flood phase (a control: with
    /// `--identities 0` too, the second phase differs from the first in nothing).
    #[arg(long)]
    pub(crate) no_carol: bool,
    /// Print the figures as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Seconds of CPU (user + system) a process has used, from `/proc/PID/stat`.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command's closing parenthesis; utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).context("unreadable stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks =
        |i: usize| -> Result<f64> { Ok(fields.get(i).context("short stat")?.parse::<f64>()?) };
    // Linux reports clock ticks of 1/100 s (USER_HZ) on every architecture we run on.
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}

/// One of alice's texts: when it was sent (from the phase's start) and how long until
/// it was delivered.
#[derive(Clone, Copy)]
struct Sample {
    at: Duration,
    took: Duration,
}

/// Alice's texts to bob, one at a time, in the order sent.
async fn texts(alice: &Api, bob: Address, n: usize, label: &str) -> Result<Vec<Sample>> {
    let mut delivered = delivered_events(alice).await?;
    let mut samples = Vec::with_capacity(n);
    let phase = Instant::now();
    for i in 0..n {
        let start = Instant::now();
        let queued: Value = alice
            .post("/v1/messages", &json!({ "to": bob, "text": format!("{label} {i}") }))
            .await?;
        let id = queued["id"].as_str().context("no id")?.to_owned();
        samples
            .push(Sample { at: start - phase, took: wait_for(&mut delivered, &id).await? - start });
    }
    Ok(samples)
}

/// The latencies, sorted.
fn sorted(samples: &[Sample]) -> Vec<Duration> {
    let mut took: Vec<Duration> = samples.iter().map(|s| s.took).collect();
    took.sort();
    took
}

/// The five slowest texts, as `[sent at ms, took ms]`: whether the tail is the flood's
/// start (its connections opening) or spread over its rounds.
fn slowest(samples: &[Sample]) -> Vec<[f64; 2]> {
    let mut by_time = samples.to_vec();
    by_time.sort_by_key(|s| std::cmp::Reverse(s.took));
    let ms = |d: Duration| (d.as_secs_f64() * 10_000.0).round() / 10.0;
    by_time.iter().take(5).map(|s| [ms(s.at), ms(s.took)]).collect()
}

pub(crate) fn flood(args: FloodArgs) -> Result<()> {
    anyhow::ensure!(args.messages > 0, "--messages must be positive");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let trio = Trio::start().await?;
        let carol_home = trio.dir.path().join("carol");
        let (_, carol_public) =
            init::create(&carol_home, None, b"bench", KdfParams::INSECURE_FOR_TESTS).await?;
        let carol = spawn(&trio.exe, &carol_home, false, Some(&trio.server.dial)).await?;
        let result = measure(&args, &trio, &carol_home, carol_public.address).await;
        stop(carol).await;
        let Trio { alice, bob, server, .. } = trio;
        for p in [alice, bob, server] {
            stop(p).await;
        }
        let figures = result?;
        if args.json {
            println!("{figures}");
        } else {
            println!("{}", serde_json::to_string_pretty(&figures)?);
        }
        Ok(())
    })
}

async fn measure(
    args: &FloodArgs,
    trio: &Trio,
    carol_home: &std::path::Path,
    carol: Address,
) -> Result<Value> {
    let (alice, bob) = (trio.addresses[1], trio.addresses[2]);
    let alice_api = Api::for_home(&trio.homes[1])?;
    let bob_api = Api::for_home(&trio.homes[2])?;
    let carol_api = Api::for_home(carol_home)?;
    add_contact(&alice_api, bob).await?;
    add_contact(&bob_api, alice).await?;
    let bob_pid = trio.bob.child.id().context("bob has no pid")?;

    // The attacker: libp2p clients of its own, bob's keys and addresses from the DHT.
    let stop_attacker = tokio_util::sync::CancellationToken::new();
    let mut nets = Vec::with_capacity(args.peers);
    // Their event channels stay open (and unread) for as long as they run.
    let mut events = Vec::with_capacity(args.peers);
    for _ in 0..args.peers {
        let config = communitas_net::Config {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse()?],
            bootstrap: vec![trio.server.dial.parse()?],
            only_global_ips: false,
            dial_any_peer_addr: true,
            ..communitas_net::Config::default()
        };
        let key = communitas_net::libp2p::identity::Keypair::generate_ed25519();
        let (net, net_events, event_loop) = communitas_net::new(key, config)?;
        tokio::spawn(event_loop.run(stop_attacker.clone()));
        nets.push(net);
        events.push(net_events);
    }
    let net = nets.first().context("--peers must be positive")?.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    let record = loop {
        match net.resolve(bob).await {
            Ok(mut records) if !records.is_empty() => break records.remove(0),
            _ if Instant::now() > deadline => bail!("the attacker never found bob's record"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    let device = record.devices.first().context("bob's record lists no device")?;
    let bob_addrs: Vec<communitas_net::libp2p::Multiaddr> = device
        .addrs
        .iter()
        .filter_map(|a| communitas_net::libp2p::Multiaddr::try_from(a.clone()).ok())
        .collect();
    let bob_peer = device.peer_id;
    let bob_keys = record.identity.clone();

    // Warm-up, then the quiet phase.
    texts(&alice_api, bob, 10, "warm-up").await?;
    let (cpu0, t0) = (cpu_seconds(bob_pid)?, Instant::now());
    let quiet_samples = texts(&alice_api, bob, args.messages, "quiet").await?;
    let quiet = sorted(&quiet_samples);
    let quiet_cpu = (cpu_seconds(bob_pid)? - cpu0) / t0.elapsed().as_secs_f64();

    // The flood: every identity's envelope, again each second until taken.
    let envelopes: Vec<Vec<u8>> = (0..args.identities)
        .map(|n| {
            let fresh = Identity::generate()?;
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&(n as u64).to_be_bytes());
            let letter = Letter {
                message_id: MessageId::from_bytes(id),
                timestamp: Timestamp::now(),
                kind: Kind::Text,
                body: b"cheap watches",
            };
            Ok(Envelope::seal(&fresh, &bob_keys, letter)?.to_bytes())
        })
        .collect::<Result<_>>()?;
    let flooding = {
        let (addrs, stop) = (bob_addrs.clone(), stop_attacker.clone());
        tokio::spawn(async move {
            let mut left = envelopes;
            let (mut sent, mut taken) = (0u64, 0u64);
            while !left.is_empty() && !stop.is_cancelled() {
                let round =
                    left.iter().enumerate().map(|(i, e)| {
                        let (net, addrs) = (nets[i % nets.len()].clone(), addrs.clone());
                        let e = e.clone();
                        async move {
                            matches!(net.send(bob_peer, addrs, e).await, Ok(Receipt::Delivered))
                        }
                    });
                let answers = futures::future::join_all(round).await;
                sent += answers.len() as u64;
                let mut next = Vec::new();
                for (envelope, ok) in left.into_iter().zip(answers) {
                    if ok {
                        taken += 1;
                    } else {
                        next.push(envelope);
                    }
                }
                left = next;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            (sent, taken)
        })
    };
    let (cpu1, t1) = (cpu_seconds(bob_pid)?, Instant::now());
    // This process: the attacker's clients (and alice's API calls), on the same cores.
    let own_cpu1 = cpu_seconds(std::process::id())?;
    // Carol's first contact, at the start of the flood.
    let carol_task = {
        let (carol_api, bob_api) = (carol_api, Api::for_home(&trio.homes[2])?);
        let skip = args.no_carol;
        tokio::spawn(async move {
            if skip {
                return Ok(Duration::ZERO);
            }
            let start = Instant::now();
            let _: Value = carol_api
                .post("/v1/messages", &json!({ "to": bob, "text": "hello bob, carol here" }))
                .await?;
            loop {
                let list: Vec<Value> = bob_api.get("/v1/requests").await?;
                if list.iter().any(|r| r["address"] == carol.to_string().as_str()) {
                    return Ok::<_, anyhow::Error>(start.elapsed());
                }
                if start.elapsed() > Duration::from_secs(120) {
                    bail!("carol's request never showed");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let flooded_samples = texts(&alice_api, bob, args.messages, "flooded").await?;
    let flooded = sorted(&flooded_samples);
    let carol_latency = carol_task.await??;
    let flood_cpu = (cpu_seconds(bob_pid)? - cpu1) / t1.elapsed().as_secs_f64();
    let attacker_cpu = (cpu_seconds(std::process::id())? - own_cpu1) / t1.elapsed().as_secs_f64();
    stop_attacker.cancel();
    let (sent, taken) = flooding.await?;
    let metrics = match bob_api.get_raw("/metrics").await {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    let outcomes: Vec<&str> =
        metrics.lines().filter(|l| l.starts_with("communitas_first_contacts_total")).collect();
    let lane: Vec<&str> =
        metrics.lines().filter(|l| l.starts_with("communitas_stranger_lane_total")).collect();

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    // After the flood's first second: its connections are open, and what is left is
    // its rounds (null when the phase was shorter).
    let later = |samples: &[Sample]| {
        let rest: Vec<Sample> =
            samples.iter().copied().filter(|s| s.at >= Duration::from_secs(1)).collect();
        (!rest.is_empty()).then(|| ms(percentile(&sorted(&rest), 99.0)))
    };
    let phase = |s: &[Duration], samples: &[Sample], cpu: f64| {
        json!({
            "duration_ms": samples.last().map_or(0.0, |l| ms(l.at + l.took)),
            "slowest": slowest(samples),
            "p50_ms": ms(percentile(s, 50.0)),
            "p99_ms": ms(percentile(s, 99.0)),
            "p99_after_1s_ms": later(samples),
            "max_ms": ms(percentile(s, 100.0)),
            "bob_cpu_cores": cpu,
        })
    };
    Ok(json!({
        "identities": args.identities,
        "attacker_peers": args.peers,
        "messages": args.messages,
        "quiet": phase(&quiet, &quiet_samples, quiet_cpu),
        "flood": phase(&flooded, &flooded_samples, flood_cpu),
        "p50_ratio": ms(percentile(&flooded, 50.0)) / ms(percentile(&quiet, 50.0)).max(1e-9),
        "p99_ratio": ms(percentile(&flooded, 99.0)) / ms(percentile(&quiet, 99.0)).max(1e-9),
        "carol_request_ms": (!args.no_carol).then(|| ms(carol_latency)),
        "attacker_cpu_cores": attacker_cpu,
        "attacker_envelopes_sent": sent,
        "attacker_envelopes_taken": taken,
        "bob_first_contacts": outcomes,
        "bob_stranger_lane": lane,
    }))
}
