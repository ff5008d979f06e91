//! Hostile peers for the adversarial suite: each one is a bare libp2p swarm (the
//! network crate's, with no node behind it) that misbehaves in one way against a
//! real node.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use communitas_net::libp2p::{Multiaddr, PeerId, StreamProtocol};
use communitas_proto::file::wire::{MAX_FRAME, Request, Response};
use futures::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::task::JoinSet;

use crate::{BareClient, Transport};

/// A peer that holds as many idle streams on `protocol` as it can: it opens them,
/// sends nothing, and opens another whenever the target closes one. A
/// [`FrameAttack`] with [`Frames::Idle`].
pub struct StreamHoarder(FrameAttack);

#[derive(Default)]
struct Stats {
    /// Streams open now (as far as the attacker can tell).
    open: AtomicUsize,
    /// Streams opened in all.
    opened: AtomicUsize,
    /// Streams the target closed or reset.
    closed: AtomicUsize,
}

/// Wait after the target closed a stream before opening the next one: the attack is
/// holding streams, not a flood of opens.
const REOPEN_AFTER: Duration = Duration::from_secs(1);

impl StreamHoarder {
    /// Dials `target` (at `addrs`) over `transport` and keeps `streams` streams open
    /// on `protocol`, each sending nothing.
    pub async fn start(
        target: PeerId,
        addrs: Vec<Multiaddr>,
        transport: Transport,
        protocol: StreamProtocol,
        streams: usize,
    ) -> Self {
        Self(FrameAttack::start(target, addrs, transport, protocol, streams, Frames::Idle).await)
    }

    /// Streams opened so far (reopened ones count again).
    pub fn opened(&self) -> usize {
        self.0.opened()
    }

    /// Streams open now, as far as the hoarder can tell (the target may have dropped
    /// some it has not noticed yet).
    pub fn open(&self) -> usize {
        self.0.stats.open.load(Ordering::Relaxed)
    }

    /// Streams the target closed or reset.
    pub fn closed(&self) -> usize {
        self.0.closed()
    }

    /// Stops the attack.
    pub async fn stop(self) {
        self.0.stop().await;
    }
}

/// A peer that speaks `/communitas/file/1` by hand, one request at a time: for puts
/// and gets a node's own code would never make (shard squatting, forged uploads).
pub struct FileClient {
    client: BareClient,
    target: PeerId,
    stream: Option<communitas_net::libp2p::Stream>,
}

const FILE_PROTOCOL: StreamProtocol = StreamProtocol::new("/communitas/file/1");

impl FileClient {
    /// A fresh peer (its own PeerId) that will talk to `target` at `addrs`.
    pub async fn connect(target: PeerId, addrs: Vec<Multiaddr>, transport: Transport) -> Self {
        let client = BareClient::start_on(&[], transport);
        client.net.add_addresses(target, addrs).await.unwrap();
        Self { client, target, stream: None }
    }

    /// Sends `request` and reads the answer, over one stream kept open between calls
    /// (a new one if the target closed it).
    pub async fn ask(&mut self, request: &Request) -> Result<Response, String> {
        let stream = match &mut self.stream {
            Some(stream) => stream,
            None => {
                let mut control = self.client.net.streams();
                let stream = control
                    .open_stream(self.target, FILE_PROTOCOL)
                    .await
                    .map_err(|e| e.to_string())?;
                self.stream.insert(stream)
            }
        };
        let answer = exchange(stream, &request.to_bytes()).await;
        if answer.is_err() {
            self.stream = None;
        }
        Response::from_bytes(&answer?).map_err(|e| e.to_string())
    }

    /// Stops the peer.
    pub async fn stop(self) {
        drop(self.stream);
        self.client.stop().await;
    }
}

/// One frame out, one frame back (a `u32` big-endian length, then the body).
async fn exchange(
    stream: &mut communitas_net::libp2p::Stream,
    body: &[u8],
) -> Result<Vec<u8>, String> {
    let len = u32::try_from(body.len()).map_err(|_| "frame too long".to_owned())?;
    stream.write_all(&len.to_be_bytes()).await.map_err(|e| e.to_string())?;
    stream.write_all(body).await.map_err(|e| e.to_string())?;
    stream.flush().await.map_err(|e| e.to_string())?;
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await.map_err(|e| e.to_string())?;
    let len = usize::try_from(u32::from_be_bytes(len)).unwrap_or(usize::MAX);
    if len > MAX_FRAME {
        return Err("answer over the frame limit".into());
    }
    let mut answer = Vec::new();
    (&mut *stream).take(len as u64).read_to_end(&mut answer).await.map_err(|e| e.to_string())?;
    Ok(answer)
}

/// How a [`FrameAttack`] misbehaves on each stream it opens.
#[derive(Debug, Clone, Copy)]
pub enum Frames {
    /// Sends nothing; the stream is only held until the target gives it up.
    Idle,
    /// Declares a frame of `declare` bytes (a `u32` big-endian length, as the msg, mbox
    /// and file protocols frame) and then sends one byte every `every`: the frame is
    /// never finished, the stream only held.
    Slow {
        /// The length the frame declares.
        declare: u32,
        /// The wait between two bytes.
        every: Duration,
    },
    /// Declares `u32::MAX` bytes, sends 64 KiB of them and waits for the target to
    /// give the stream up.
    Oversize,
    /// Sends a frame of `bytes` pseudo-random bytes (well framed for msg, mbox and
    /// file: the length first), closes its side and reads until the target closes;
    /// then opens the next stream at once (a flood of garbage requests).
    Garbage {
        /// How many bytes each stream carries.
        bytes: usize,
    },
}

/// A peer that opens `streams` streams at a time on one protocol and misbehaves on
/// each as [`Frames`] says, opening another whenever the target ends one.
pub struct FrameAttack {
    client: BareClient,
    tasks: JoinSet<()>,
    stats: Arc<Stats>,
}

impl FrameAttack {
    /// Dials `target` (at `addrs`) over `transport` and starts the attack.
    pub async fn start(
        target: PeerId,
        addrs: Vec<Multiaddr>,
        transport: Transport,
        protocol: StreamProtocol,
        streams: usize,
        frames: Frames,
    ) -> Self {
        let client = BareClient::start_on(&[], transport);
        client.net.add_addresses(target, addrs).await.unwrap();
        let stats = Arc::new(Stats::default());
        let mut tasks = JoinSet::new();
        for task in 0..streams {
            let mut control = client.net.streams();
            let stats = stats.clone();
            let protocol = protocol.clone();
            tasks.spawn(async move {
                let mut noise = Noise(0x9e37_79b9_7f4a_7c15 ^ task as u64);
                loop {
                    let Ok(mut stream) = control.open_stream(target, protocol.clone()).await else {
                        tokio::time::sleep(REOPEN_AFTER).await;
                        continue;
                    };
                    stats.opened.fetch_add(1, Ordering::Relaxed);
                    stats.open.fetch_add(1, Ordering::Relaxed);
                    let _ = misbehave(&mut stream, frames, &mut noise).await;
                    stats.open.fetch_sub(1, Ordering::Relaxed);
                    stats.closed.fetch_add(1, Ordering::Relaxed);
                    drop(stream);
                    if !matches!(frames, Frames::Garbage { .. }) {
                        tokio::time::sleep(REOPEN_AFTER).await;
                    }
                }
            });
        }
        Self { client, tasks, stats }
    }

    /// Streams opened so far.
    pub fn opened(&self) -> usize {
        self.stats.opened.load(Ordering::Relaxed)
    }

    /// Streams the target ended (closed, reset or refused).
    pub fn closed(&self) -> usize {
        self.stats.closed.load(Ordering::Relaxed)
    }

    /// Stops the attack.
    pub async fn stop(mut self) {
        self.tasks.shutdown().await;
        self.client.stop().await;
    }
}

/// Misbehaves on one stream; returns when the target ended it.
async fn misbehave(
    stream: &mut communitas_net::libp2p::Stream,
    frames: Frames,
    noise: &mut Noise,
) -> std::io::Result<()> {
    match frames {
        Frames::Idle => {
            let mut byte = [0u8; 1];
            stream.read(&mut byte).await.map(|_| ())
        }
        Frames::Slow { declare, every } => {
            stream.write_all(&declare.to_be_bytes()).await?;
            stream.flush().await?;
            loop {
                tokio::time::sleep(every).await;
                stream.write_all(&[noise.byte()]).await?;
                stream.flush().await?;
            }
        }
        Frames::Oversize => {
            stream.write_all(&u32::MAX.to_be_bytes()).await?;
            stream.write_all(&vec![0u8; 64 << 10]).await?;
            stream.flush().await?;
            let mut sink = Vec::new();
            stream.read_to_end(&mut sink).await.map(|_| ())
        }
        Frames::Garbage { bytes } => {
            let body: Vec<u8> = (0..bytes).map(|_| noise.byte()).collect();
            let len = u32::try_from(bytes).unwrap_or(u32::MAX);
            stream.write_all(&len.to_be_bytes()).await?;
            stream.write_all(&body).await?;
            stream.close().await?;
            let mut sink = Vec::new();
            (&mut *stream).take(1 << 20).read_to_end(&mut sink).await.map(|_| ())
        }
    }
}

/// A xorshift generator: garbage that differs from stream to stream, without a
/// dependency.
struct Noise(u64);

impl Noise {
    fn byte(&mut self) -> u8 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0.to_le_bytes()[0]
    }
}
