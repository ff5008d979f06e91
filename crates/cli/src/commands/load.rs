//! `communitas bench load`: many users on one server node, measured at the server.
//!
//! 1. Starts one server node as a separate process (`communitas run --server`, this
//!    same binary, on 127.0.0.1, a fresh home).
//! 2. Starts `--users` light clients ([`light`]) in this process, each a real libp2p
//!    peer with its own keys on its own TCP connection; each reserves a relay slot on
//!    the server and proves ownership of its mailbox (so the server notifies it).
//! 3. Pairs them in a ring: user k opens a relayed connection to user k+1 through the
//!    server's relay, and keeps it, as a node keeps one live connection per peer.
//! 4. Sends `--rate` messages a second in total for `--duration` seconds, from random
//!    users: `--mailbox-percent` of them sealed (X-Wing + XChaCha20-Poly1305, as the
//!    node seals) and left in the server's mailbox for another random user, who
//!    fetches when notified; the rest over the sender's relayed connection.
//! 5. Waits for every accepted message, sweeps the mailboxes once, and reports
//!    delivery latency (sent → seen by the recipient, one clock: same process), what
//!    was refused and why, what was lost (accepted, never delivered), and the server's
//!    RSS and CPU from `/proc/<pid>` — and the generator's own CPU, so a reader can
//!    tell whether the figures are the server's or the generator's.

mod ledger;
mod light;
mod procstat;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use communitas_crypto::keystore::KdfParams;
use communitas_crypto::{Envelope, Identity, Kind, Letter};
use communitas_net::libp2p::multiaddr::Protocol;
use communitas_net::libp2p::{Multiaddr, PeerId, identity};
use communitas_types::{MessageId, Timestamp};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use self::ledger::{Ledger, Path as Route};
use self::light::Command as ClientCommand;
use crate::commands::init;

/// Joins and dials running at once while the clients start.
const SETUP_AT_ONCE: usize = 64;
/// Commands buffered per client; a full buffer counts as a generator backlog.
const CLIENT_BUFFER: usize = 64;
/// How long to wait for accepted messages after the last send.
const DRAIN: Duration = Duration::from_secs(30);
/// Most messages one run may send (the ledger keeps one entry each).
const MAX_MESSAGES: u64 = 2_000_000;

/// `bench load`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct LoadArgs {
    /// Light clients (users) connected to the server.
    #[arg(long, default_value_t = 100)]
    pub(crate) users: usize,
    /// Messages per second, all users together.
    #[arg(long, default_value_t = 200)]
    pub(crate) rate: u32,
    /// Seconds of sending.
    #[arg(long, default_value_t = 30)]
    pub(crate) duration: u64,
    /// Share of messages that go through the mailbox (the rest are relayed).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub(crate) mailbox_percent: u8,
    /// Bytes of a relayed message (a sealed 200-character text is about this big).
    #[arg(long, default_value_t = 1400)]
    pub(crate) size: usize,
    /// Worker threads of the generator (the server gets what is left of the machine).
    #[arg(long, default_value_t = 1)]
    pub(crate) generator_threads: usize,
    /// Passed to the server's `run --max-connections`.
    #[arg(long)]
    pub(crate) server_max_connections: Option<u32>,
    /// Passed to the server's `run --max-memory-mib`.
    #[arg(long)]
    pub(crate) server_max_memory_mib: Option<usize>,
    /// Print the figures as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

struct Server {
    child: Child,
    pid: String,
    peer: PeerId,
    addr: Multiaddr,
    api: String,
    token: String,
}

struct User {
    identity: Arc<Identity>,
    peer: PeerId,
    commands: mpsc::Sender<ClientCommand>,
}

pub(crate) fn load(args: LoadArgs) -> Result<()> {
    ensure!(args.users >= 2, "--users must be at least 2");
    ensure!(args.rate > 0 && args.duration > 0, "--rate and --duration must be positive");
    ensure!(
        u64::from(args.rate).saturating_mul(args.duration) <= MAX_MESSAGES,
        "--rate × --duration must stay within {MAX_MESSAGES} messages"
    );
    ensure!(args.generator_threads > 0, "--generator-threads must be positive");
    ensure!(
        (64..=communitas_crypto::envelope::MAX_LEN).contains(&args.size),
        "--size out of range"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.generator_threads)
        .enable_all()
        .build()?;
    let figures = runtime.block_on(run(&args))?;
    if args.json {
        println!("{figures}");
    } else {
        print_text(&figures);
    }
    Ok(())
}

async fn run(args: &LoadArgs) -> Result<Value> {
    let dir = tempfile::Builder::new().prefix("communitas-load-").tempdir()?;
    let home = dir.path().join("server");
    init::create(&home, None, b"bench", KdfParams::INSECURE_FOR_TESTS).await?;
    let server = spawn_server(&home, args).await?;
    let result = drive(args, &server).await;
    stop_server(server).await;
    result
}

async fn spawn_server(home: &Path, args: &LoadArgs) -> Result<Server> {
    // A fixed port, so the server can declare it as its external address (the relay
    // serves reservations only once the node has one).
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let listen = format!("/ip4/127.0.0.1/tcp/{port}");
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("--home").arg(home).args(["run", "--server", "--listen", &listen]);
    cmd.args(["--external-addr", &listen, "--relay-ip-burst", "0"]);
    if let Some(n) = args.server_max_connections {
        cmd.args(["--max-connections", &n.to_string()]);
    }
    if let Some(n) = args.server_max_memory_mib {
        cmd.args(["--max-memory-mib", &n.to_string()]);
    }
    cmd.env("COMMUNITAS_PASSPHRASE", "bench").env_remove("COMMUNITAS_HOME");
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).kill_on_drop(true).spawn()?;
    let pid = child.id().context("the server exited at once")?.to_string();
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let (mut addr, mut api) = (None, None);
    while let Some(line) = lines.next_line().await? {
        if let Some(a) = line.strip_prefix("listening  ") {
            addr.get_or_insert_with(|| a.trim().to_owned());
        }
        if let Some(url) = line.strip_prefix("api ") {
            api = Some(url.trim().to_owned());
            break;
        }
    }
    let addr: Multiaddr = addr.context("the server printed no address")?.parse()?;
    let Some(Protocol::P2p(peer)) = addr.iter().last() else {
        bail!("the server's address has no peer id: {addr}");
    };
    let token = std::fs::read_to_string(home.join(crate::daemon::TOKEN_FILE))?;
    Ok(Server { child, pid, peer, addr, api: api.context("no api line")?, token })
}

async fn stop_server(mut server: Server) {
    let _ = Command::new("kill").args(["-TERM", &server.pid]).status().await;
    let _ = tokio::time::timeout(Duration::from_secs(10), server.child.wait()).await;
}

async fn drive(args: &LoadArgs, server: &Server) -> Result<Value> {
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let mut users = Vec::with_capacity(args.users);
    for _ in 0..args.users {
        let key = identity::Keypair::generate_ed25519();
        let peer = key.public().to_peer_id();
        let id = Arc::new(Identity::generate()?);
        let client =
            light::Client::new(key, id.clone(), server.peer, server.addr.clone(), ledger.clone())
                .map_err(anyhow::Error::msg)?;
        let (tx, rx) = mpsc::channel(CLIENT_BUFFER);
        tasks.spawn(client.run(rx, stop.clone()));
        users.push(User { identity: id, peer, commands: tx });
    }
    let gen_start = procstat::sample("self")?;

    // Join: connection, relay reservation, mailbox registration.
    let setup = Instant::now();
    let joins: Vec<(usize, Result<(), String>)> = futures::stream::iter(users.iter().enumerate())
        .map(|(i, u)| async move {
            let r =
                ask(&u.commands, |reply| ClientCommand::Join { reply }, Duration::from_secs(60));
            (i, r.await.and_then(|r| r))
        })
        .buffer_unordered(SETUP_AT_ONCE)
        .collect()
        .await;
    let mut join_failures: BTreeMap<String, u64> = BTreeMap::new();
    let mut ready: Vec<usize> = Vec::new();
    for (i, r) in joins {
        match r {
            Ok(()) => ready.push(i),
            Err(e) => *join_failures.entry(e).or_default() += 1,
        }
    }
    ready.sort_unstable();
    ensure!(ready.len() >= 2, "fewer than 2 users could join: {join_failures:?}");

    // The ring of relayed connections.
    let m = ready.len();
    let dials: Vec<(usize, Result<(), String>)> = futures::stream::iter(0..m)
        .map(|k| {
            let from = &users[ready[k]];
            let to = users[ready[(k + 1) % m]].peer;
            async move {
                let r = ask(
                    &from.commands,
                    |reply| ClientCommand::Dial { peer: to, reply },
                    Duration::from_secs(60),
                );
                (k, r.await.and_then(|r| r))
            }
        })
        .buffer_unordered(SETUP_AT_ONCE)
        .collect()
        .await;
    let mut relayed_to: Vec<Option<PeerId>> = vec![None; m];
    let mut dial_failures: BTreeMap<String, u64> = BTreeMap::new();
    for (k, r) in dials {
        match r {
            Ok(()) => relayed_to[k] = Some(users[ready[(k + 1) % m]].peer),
            Err(e) => *dial_failures.entry(e).or_default() += 1,
        }
    }
    let setup_s = setup.elapsed().as_secs_f64();
    // Let the joins' last handshakes and first pings settle before measuring.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let server_idle = procstat::sample(&server.pid)?;

    // Sending.
    let total = u64::from(args.rate) * args.duration;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(args.rate)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut rng = Rng::new()?;
    let server_before = procstat::sample(&server.pid)?;
    let gen_before = procstat::sample("self")?;
    let body = "x".repeat(200);
    let started = Instant::now();
    for k in 0..total {
        ticker.tick().await;
        let s = rng.below(m);
        let sender = &users[ready[s]];
        let via_mailbox = rng.below(100) < usize::from(args.mailbox_percent);
        match relayed_to[s] {
            Some(to) if !via_mailbox => {
                let mut payload = vec![0u8; args.size];
                payload[..8].copy_from_slice(&k.to_be_bytes());
                payload[8..16].copy_from_slice(&rng.next().to_be_bytes());
                let key = *blake3::hash(&payload).as_bytes();
                record(&ledger).sent(key, Route::Relayed, Instant::now());
                let command = ClientCommand::Direct { to, payload, key };
                if sender.commands.try_send(command).is_err() {
                    record(&ledger).failed(key, "generator backlog");
                }
            }
            _ => {
                let r = (s + 1 + rng.below(m - 1)) % m;
                let recipient = users[ready[r]].identity.public();
                let letter = Letter {
                    message_id: MessageId::from_bytes(communitas_crypto::random::bytes()?),
                    timestamp: Timestamp::now(),
                    kind: Kind::Text,
                    body: body.as_bytes(),
                };
                let envelope = Envelope::seal(&sender.identity, recipient, letter)?.to_bytes();
                let key = *blake3::hash(&envelope).as_bytes();
                record(&ledger).sent(key, Route::Mailbox, Instant::now());
                if sender.commands.try_send(ClientCommand::Put { envelope, key }).is_err() {
                    record(&ledger).failed(key, "generator backlog");
                }
            }
        }
    }
    let send_s = started.elapsed().as_secs_f64();
    let server_after = procstat::sample(&server.pid)?;
    let gen_after = procstat::sample("self")?;

    // Drain, then one sweep of every mailbox for notices that did not come.
    let deadline = Instant::now() + DRAIN;
    while Instant::now() < deadline {
        let (outstanding, unanswered) = {
            let l = record(&ledger);
            (l.outstanding(), l.unanswered())
        };
        if outstanding == 0 && unanswered == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let swept_for = record(&ledger).outstanding();
    if swept_for > 0 {
        futures::stream::iter(ready.iter())
            .map(|&i| {
                ask(
                    &users[i].commands,
                    |reply| ClientCommand::Sweep { reply },
                    Duration::from_secs(30),
                )
            })
            .buffer_unordered(SETUP_AT_ONCE)
            .collect::<Vec<_>>()
            .await;
    }
    let server_end = procstat::sample(&server.pid)?;
    let metrics =
        server_metrics(server).await.unwrap_or_else(|e| json!({ "error": e.to_string() }));

    stop.cancel();
    while tasks.join_next().await.is_some() {}

    let l = record(&ledger);
    let (duplicates, strangers, fetch_failures) = l.oddities();
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    Ok(json!({
        "users": args.users,
        "joined": m,
        "join_failures": join_failures,
        "relayed_pairs": relayed_to.iter().filter(|p| p.is_some()).count(),
        "dial_failures": dial_failures,
        "rate": args.rate,
        "duration_s": args.duration,
        "achieved_rate": total as f64 / send_s,
        "setup_s": setup_s,
        "all": l.figures(None),
        "relayed": l.figures(Some(Route::Relayed)),
        "mailbox": l.figures(Some(Route::Mailbox)),
        "reasons": l.reasons(),
        "duplicates": duplicates,
        "strangers": strangers,
        "fetch_failures": fetch_failures,
        "needed_sweep": swept_for,
        "server": {
            "rss_idle_mib": mib(server_idle.rss),
            "rss_end_mib": mib(server_end.rss),
            "peak_rss_mib": mib(server_end.peak_rss),
            "cpu_percent": server_after.cpu_percent_since(&server_before),
            "cpu_s_per_1000_msgs": server_after.cpu_seconds_since(&server_before) * 1000.0 / total as f64,
            "cpu_s_setup": server_idle.cpu_seconds(),
            "metrics": metrics,
        },
        "generator": {
            "threads": args.generator_threads,
            "cpu_percent": gen_after.cpu_percent_since(&gen_before),
            "cpu_s_setup": gen_before.cpu_seconds_since(&gen_start),
            "peak_rss_mib": mib(gen_after.peak_rss),
        },
    }))
}

fn record(ledger: &Mutex<Ledger>) -> std::sync::MutexGuard<'_, Ledger> {
    // Short synchronous bookkeeping, never held across an await.
    ledger.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Sends a command that answers through a oneshot, with a time limit.
async fn ask<T>(
    to: &mpsc::Sender<ClientCommand>,
    make: impl FnOnce(oneshot::Sender<T>) -> ClientCommand,
    limit: Duration,
) -> Result<T, String> {
    let (reply, answer) = oneshot::channel();
    to.send(make(reply)).await.map_err(|_| "client stopped".to_owned())?;
    match tokio::time::timeout(limit, answer).await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(_)) => Err("client stopped".into()),
        Err(_) => Err("timed out".into()),
    }
}

/// The refusal and load counters of the server's `/metrics`.
async fn server_metrics(server: &Server) -> Result<Value> {
    let text = reqwest::Client::new()
        .get(format!("{}/metrics", server.api))
        .bearer_auth(server.token.trim())
        .send()
        .await?
        .text()
        .await?;
    let mut out = serde_json::Map::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let wanted = [
            "communitas_refused",
            "communitas_rate_limited",
            "communitas_messages_shed",
            "communitas_mailbox_full",
            "communitas_connected_peers",
        ];
        if wanted.iter().any(|w| line.starts_with(w))
            && let Some((name, value)) = line.rsplit_once(' ')
            && let Ok(v) = value.parse::<f64>()
        {
            out.insert(name.to_owned(), json!(v));
        }
    }
    Ok(Value::Object(out))
}

/// xorshift64*: which user sends and to whom; seeded from the OS once.
struct Rng(u64);

impl Rng {
    fn new() -> Result<Self> {
        Ok(Self(u64::from_le_bytes(communitas_crypto::random::bytes()?) | 1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n.max(1)).unwrap_or(1)).unwrap_or(0)
    }
}

fn print_text(f: &Value) {
    let num = |v: &Value| v.as_f64().unwrap_or(0.0);
    println!(
        "users {} (joined {}, relayed pairs {}), {} msg/s for {} s (achieved {:.0} msg/s); setup {:.1} s",
        f["users"],
        f["joined"],
        f["relayed_pairs"],
        f["rate"],
        f["duration_s"],
        num(&f["achieved_rate"]),
        num(&f["setup_s"])
    );
    for path in ["all", "relayed", "mailbox"] {
        let p = &f[path];
        println!(
            "  {path:8} sent {:>7} accepted {:>7} refused {:>5} failed {:>5} delivered {:>7} lost {:>3}  p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.1} ms",
            p["sent"],
            p["accepted"],
            p["refused"],
            p["failed"],
            p["delivered"],
            p["lost"],
            num(&p["p50_ms"]),
            num(&p["p90_ms"]),
            num(&p["p99_ms"]),
            num(&p["max_ms"])
        );
    }
    let s = &f["server"];
    println!(
        "  server   RSS idle {:.1} MiB, end {:.1} MiB, peak {:.1} MiB; CPU {:.1}% of a core while sending ({:.3} CPU-s per 1,000 msgs)",
        num(&s["rss_idle_mib"]),
        num(&s["rss_end_mib"]),
        num(&s["peak_rss_mib"]),
        num(&s["cpu_percent"]),
        num(&s["cpu_s_per_1000_msgs"])
    );
    let g = &f["generator"];
    println!(
        "  generator {} thread(s), CPU {:.1}% while sending, peak RSS {:.0} MiB",
        g["threads"],
        num(&g["cpu_percent"]),
        num(&g["peak_rss_mib"])
    );
    println!("  join failures {}  dial failures {}", f["join_failures"], f["dial_failures"]);
    println!("  refusals/failures {}", f["reasons"]);
    println!("  server /metrics {}", s["metrics"]);
}
