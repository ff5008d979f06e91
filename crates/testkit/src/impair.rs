//! An impairment proxy: delay, jitter, reordering and loss between two endpoints on
//! real sockets. The kernels we test on have no `netem` (ARCHITECTURE §11 item 4), so
//! a node reaches another through one of these instead of directly.
//!
//! - [`UdpProxy`] receives datagrams on its own socket (127.0.0.1:0 unless
//!   [`UdpProxy::start_on`] says otherwise) and sends each on to the target from an
//!   upstream socket of its own, one per client address, so each reply goes back to
//!   the client whose upstream socket it came in on. Every datagram, in each
//!   direction, is dropped with probability `loss`, or held for `delay` ± uniform
//!   `jitter` and then sent; with jitter, a datagram can overtake an earlier one.
//! - [`TcpProxy`] accepts connections, opens one to the target for each, and copies
//!   bytes both ways, holding each chunk it reads for `delay` ± `jitter` but never
//!   letting a chunk overtake the one before it.
//!
//! What it simulates: one-way propagation delay and its variation, reordering of UDP
//! datagrams (a consequence of jitter), and independent (Bernoulli) loss of UDP
//! datagrams, reproducible from a seed.
//!
//! What it does not simulate:
//! - loss on TCP. The proxy terminates TCP on both sides and cannot lose bytes; a real
//!   link that loses a segment costs a retransmission (≥ 200 ms on Linux), which this
//!   proxy does not add. `loss` is ignored by [`TcpProxy`].
//! - bandwidth limits or queueing delay growing with load (`tc tbf` does caps); bursty
//!   (correlated) loss; duplication; corruption; MTU limits; ICMP errors.
//! - addresses: the target sees the proxy's upstream address, never the client's, and
//!   nothing rewrites addresses inside payloads. A peer that learns the target's real
//!   address some other way (a DHT record, identify) can go around the proxy.
//!
//! Shape: each proxy is one actor task that owns its sockets and its delay line (a
//! heap ordered by due time, bounded); helper tasks (one reader per UDP client, one
//! task per TCP connection) live in its `JoinSet` and stop on its
//! [`CancellationToken`]. The handle reads counters from atomics. Dropping the handle,
//! or [`UdpProxy::shutdown`], stops everything.
//!
//! Determinism: each direction draws from its own generator seeded from `seed`, in the
//! order datagrams arrive in that direction, so the same datagrams sent in the same
//! order meet the same fate on every run (with one client; with several, their
//! interleaving decides). Timing is the real clock.

// The crate allows these for its test helpers; this module is meant to run unattended
// inside other tests and scripts, so it handles every failure instead.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The largest UDP payload over IPv4 (65,535 − 20 IP − 8 UDP header bytes).
const MAX_DATAGRAM: usize = 65_507;
/// Datagrams held in one UDP proxy's delay line; more are dropped, as a router's full
/// queue drops them. At 50 ms delay this holds ~80k datagrams/s.
const DELAY_LINE: usize = 4_096;
/// Client addresses one UDP proxy serves; datagrams from further clients are dropped.
const MAX_CLIENTS: usize = 64;
/// Replies from the target waiting for the UDP actor; more are dropped.
const REPLY_QUEUE: usize = 1_024;
/// TCP connections open at once through one proxy; more are closed when accepted.
const MAX_TCP_CONNECTIONS: usize = 256;
/// The most one TCP read takes.
const TCP_CHUNK: usize = 64 * 1024;
/// Chunks held per TCP direction (≤ 4 MiB). When full the reader waits, which the
/// sender sees as TCP flow control, not loss.
const TCP_CHUNKS_HELD: usize = 64;

/// How a link is impaired. The default impairs nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Impairment {
    /// One-way delay added to every datagram or chunk.
    pub delay: Duration,
    /// Each datagram's or chunk's delay is `delay` ± a uniform draw up to this (never
    /// below zero).
    pub jitter: Duration,
    /// The probability, `0.0..=1.0`, that a UDP datagram is dropped (each direction
    /// independently). Ignored for TCP.
    pub loss: f64,
    /// Seeds the generators, so that a run can be repeated.
    pub seed: u64,
}

impl Default for Impairment {
    fn default() -> Self {
        Self { delay: Duration::ZERO, jitter: Duration::ZERO, loss: 0.0, seed: 0 }
    }
}

impl Impairment {
    /// Checks that `loss` is a probability (`InvalidInput` if not).
    pub fn validate(&self) -> io::Result<()> {
        if (0.0..=1.0).contains(&self.loss) {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("loss must be within 0.0..=1.0, got {}", self.loss),
            ))
        }
    }

    /// How long to hold the next datagram or chunk: `delay` ± uniform `jitter`.
    fn hold(&self, rng: &mut Rng) -> Duration {
        if self.jitter.is_zero() {
            return self.delay;
        }
        (self.delay + self.jitter.mul_f64(2.0 * rng.next_f64())).saturating_sub(self.jitter)
    }

    /// Whether to drop the next datagram.
    fn lose(&self, rng: &mut Rng) -> bool {
        rng.next_f64() < self.loss
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): small, fast, and good enough to decide fates;
/// not for anything secret.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    /// Independent streams from one seed: `stream` is hashed in, so that streams are
    /// not shifted copies of each other.
    fn new(seed: u64, stream: u64) -> Self {
        Self(seed ^ mix(stream.wrapping_add(0x6A09_E667_F3BC_C909)))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in `[0, 1)`.
    fn next_f64(&mut self) -> f64 {
        // The top 53 bits fit an f64's mantissa exactly, so the cast loses nothing.
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Items waiting for their due time, earliest first, in arrival order among equals.
#[derive(Debug)]
struct DelayLine<T> {
    heap: BinaryHeap<Held<T>>,
    next_seq: u64,
    capacity: usize,
}

#[derive(Debug)]
struct Held<T> {
    due: Instant,
    seq: u64,
    item: T,
}

// Ordered by (due, seq) only, reversed: `BinaryHeap` is a max-heap.
impl<T> Ord for Held<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        other.due.cmp(&self.due).then_with(|| other.seq.cmp(&self.seq))
    }
}
impl<T> PartialOrd for Held<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> PartialEq for Held<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl<T> Eq for Held<T> {}

impl<T> DelayLine<T> {
    fn new(capacity: usize) -> Self {
        Self { heap: BinaryHeap::new(), next_seq: 0, capacity }
    }

    /// Holds `item` until `due`; hands it back if the line is full.
    fn push(&mut self, due: Instant, item: T) -> Result<(), T> {
        if self.heap.len() >= self.capacity {
            return Err(item);
        }
        self.heap.push(Held { due, seq: self.next_seq, item });
        self.next_seq += 1;
        Ok(())
    }

    fn next_due(&self) -> Option<Instant> {
        self.heap.peek().map(|h| h.due)
    }

    /// The earliest item if it is due at `now`.
    fn pop_due(&mut self, now: Instant) -> Option<T> {
        if self.heap.peek()?.due > now {
            return None;
        }
        self.heap.pop().map(|h| h.item)
    }
}

/// Sleeps until `due`, or forever if there is nothing to wait for.
async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

/// Socket errors that say something about one datagram or peer, not the socket.
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// Counts for one direction of a UDP proxy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flow {
    /// Datagrams that came in.
    pub received: u64,
    /// Datagrams sent on.
    pub forwarded: u64,
    /// Datagrams dropped: by `loss`, a full queue, too many clients, or a failed send.
    pub dropped: u64,
}

impl Flow {
    /// Datagrams still held (exact once traffic has stopped).
    pub fn in_flight(&self) -> u64 {
        self.received.saturating_sub(self.forwarded + self.dropped)
    }
}

/// A snapshot of a [`UdpProxy`]'s counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UdpStats {
    /// Client → target.
    pub to_target: Flow,
    /// Target → client.
    pub to_client: Flow,
}

#[derive(Debug, Default)]
struct FlowCounters {
    received: AtomicU64,
    forwarded: AtomicU64,
    dropped: AtomicU64,
}

impl FlowCounters {
    fn snapshot(&self) -> Flow {
        // Outcomes first: every outcome is counted after its arrival, so this order
        // never shows more outcomes than arrivals.
        let forwarded = self.forwarded.load(Relaxed);
        let dropped = self.dropped.load(Relaxed);
        Flow { received: self.received.load(Relaxed), forwarded, dropped }
    }
}

#[derive(Debug, Default)]
struct UdpCounters {
    to_target: FlowCounters,
    to_client: FlowCounters,
}

/// A running UDP impairment proxy. Stops when dropped or [shut down](Self::shutdown).
///
/// ```no_run
/// # async fn f(node: std::net::SocketAddr) -> std::io::Result<()> {
/// use std::time::Duration;
/// use communitas_testkit::impair::{Impairment, UdpProxy};
///
/// let wan = Impairment { delay: Duration::from_millis(50), loss: 0.01, ..Impairment::default() };
/// let proxy = UdpProxy::start(node, wan).await?;
/// // Dial proxy.local_addr() instead of `node`.
/// println!("dropped {} of {}", proxy.dropped(), proxy.received());
/// proxy.shutdown().await
/// # }
/// ```
#[derive(Debug)]
pub struct UdpProxy {
    local_addr: SocketAddr,
    target: SocketAddr,
    counters: Arc<UdpCounters>,
    cancel: CancellationToken,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl UdpProxy {
    /// Listens on 127.0.0.1 (any free port) and forwards to `target`.
    pub async fn start(target: SocketAddr, impairment: Impairment) -> io::Result<Self> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), target, impairment).await
    }

    /// Listens on `listen` and forwards to `target`; upstream sockets bind to the same
    /// IP as `listen`.
    pub async fn start_on(
        listen: SocketAddr,
        target: SocketAddr,
        impairment: Impairment,
    ) -> io::Result<Self> {
        impairment.validate()?;
        let front = Arc::new(UdpSocket::bind(listen).await?);
        let local_addr = front.local_addr()?;
        let counters = Arc::new(UdpCounters::default());
        let cancel = CancellationToken::new();
        let (replies_tx, replies) = mpsc::channel(REPLY_QUEUE);
        let actor = UdpActor {
            front,
            target,
            impairment,
            clients: HashMap::new(),
            readers: JoinSet::new(),
            replies_tx,
            replies,
            line: DelayLine::new(DELAY_LINE),
            rng_to_target: Rng::new(impairment.seed, 0),
            rng_to_client: Rng::new(impairment.seed, 1),
            counters: counters.clone(),
            cancel: cancel.clone(),
        };
        let task = tokio::spawn(actor.run());
        Ok(Self { local_addr, target, counters, cancel, task: Some(task) })
    }

    /// Where clients send: the proxy's own socket.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where datagrams go.
    pub fn target(&self) -> SocketAddr {
        self.target
    }

    /// Both directions' counters.
    pub fn stats(&self) -> UdpStats {
        UdpStats {
            to_target: self.counters.to_target.snapshot(),
            to_client: self.counters.to_client.snapshot(),
        }
    }

    /// Datagrams received, both directions.
    pub fn received(&self) -> u64 {
        let s = self.stats();
        s.to_target.received + s.to_client.received
    }

    /// Datagrams sent on, both directions.
    pub fn forwarded(&self) -> u64 {
        let s = self.stats();
        s.to_target.forwarded + s.to_client.forwarded
    }

    /// Datagrams dropped, both directions.
    pub fn dropped(&self) -> u64 {
        let s = self.stats();
        s.to_target.dropped + s.to_client.dropped
    }

    /// Stops the proxy and waits until its sockets are closed. Held datagrams are
    /// discarded. Returns the socket error that stopped the proxy early, if one did.
    pub async fn shutdown(mut self) -> io::Result<()> {
        self.cancel.cancel();
        join(self.task.take()).await
    }
}

impl Drop for UdpProxy {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn join(task: Option<JoinHandle<io::Result<()>>>) -> io::Result<()> {
    match task {
        Some(task) => task.await.map_err(io::Error::other)?,
        None => Ok(()),
    }
}

/// Which way a datagram goes.
#[derive(Debug, Clone, Copy)]
enum Direction {
    ToTarget,
    ToClient,
}

/// A datagram in the delay line.
#[derive(Debug)]
struct Datagram {
    direction: Direction,
    socket: Arc<UdpSocket>,
    dest: SocketAddr,
    bytes: Vec<u8>,
}

/// A datagram from the target, read by a client's reader task.
#[derive(Debug)]
struct Reply {
    client: SocketAddr,
    bytes: Vec<u8>,
    arrived: Instant,
}

/// Owns a UDP proxy's sockets, client table and delay line.
struct UdpActor {
    front: Arc<UdpSocket>,
    target: SocketAddr,
    impairment: Impairment,
    /// Client address → the upstream socket that speaks for it.
    clients: HashMap<SocketAddr, Arc<UdpSocket>>,
    readers: JoinSet<()>,
    replies_tx: mpsc::Sender<Reply>,
    replies: mpsc::Receiver<Reply>,
    line: DelayLine<Datagram>,
    rng_to_target: Rng,
    rng_to_client: Rng,
    counters: Arc<UdpCounters>,
    cancel: CancellationToken,
}

impl UdpActor {
    async fn run(mut self) -> io::Result<()> {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let result = loop {
            let due = self.line.next_due();
            tokio::select! {
                biased;
                () = self.cancel.cancelled() => break Ok(()),
                () = sleep_until(due) => self.handle_due(),
                Some(reply) = self.replies.recv() => self.handle_reply(reply),
                received = self.front.recv_from(&mut buf) => match received {
                    Ok((n, from)) => {
                        let bytes = buf.get(..n).unwrap_or_default();
                        self.handle_from_client(from, bytes).await;
                    }
                    Err(e) if is_transient(&e) => {}
                    Err(e) => break Err(e),
                },
            }
        };
        self.cancel.cancel();
        while self.readers.join_next().await.is_some() {}
        result
    }

    /// Sends every datagram that is due.
    fn handle_due(&mut self) {
        let now = Instant::now();
        while let Some(d) = self.line.pop_due(now) {
            let flow = self.flow(d.direction);
            // Not awaited: a socket buffer that is full drops, as a real link would.
            match d.socket.try_send_to(&d.bytes, d.dest) {
                Ok(_) => flow.forwarded.fetch_add(1, Relaxed),
                Err(_) => flow.dropped.fetch_add(1, Relaxed),
            };
        }
    }

    async fn handle_from_client(&mut self, from: SocketAddr, bytes: &[u8]) {
        let arrived = Instant::now();
        self.counters.to_target.received.fetch_add(1, Relaxed);
        match self.upstream_for(from).await {
            Some(upstream) => {
                let d = Datagram {
                    direction: Direction::ToTarget,
                    socket: upstream,
                    dest: self.target,
                    bytes: bytes.to_vec(),
                };
                self.impair(d, arrived);
            }
            None => {
                self.counters.to_target.dropped.fetch_add(1, Relaxed);
            }
        }
    }

    fn handle_reply(&mut self, reply: Reply) {
        let d = Datagram {
            direction: Direction::ToClient,
            socket: self.front.clone(),
            dest: reply.client,
            bytes: reply.bytes,
        };
        self.impair(d, reply.arrived);
    }

    /// Drops `d` or puts it in the delay line.
    fn impair(&mut self, d: Datagram, arrived: Instant) {
        let rng = match d.direction {
            Direction::ToTarget => &mut self.rng_to_target,
            Direction::ToClient => &mut self.rng_to_client,
        };
        let direction = d.direction;
        let queued = if self.impairment.lose(rng) {
            false
        } else {
            let due = arrived + self.impairment.hold(rng);
            self.line.push(due, d).is_ok()
        };
        if !queued {
            self.flow(direction).dropped.fetch_add(1, Relaxed);
        }
    }

    fn flow(&self, direction: Direction) -> &FlowCounters {
        match direction {
            Direction::ToTarget => &self.counters.to_target,
            Direction::ToClient => &self.counters.to_client,
        }
    }

    /// The upstream socket for `client`, opened (with its reader) on first use; `None`
    /// if the client table is full or no socket can be opened.
    async fn upstream_for(&mut self, client: SocketAddr) -> Option<Arc<UdpSocket>> {
        if let Some(socket) = self.clients.get(&client) {
            return Some(socket.clone());
        }
        if self.clients.len() >= MAX_CLIENTS {
            return None;
        }
        let ip = self.front.local_addr().ok()?.ip();
        let socket = Arc::new(UdpSocket::bind((ip, 0)).await.ok()?);
        self.clients.insert(client, socket.clone());
        self.readers.spawn(read_replies(
            socket.clone(),
            client,
            self.target,
            self.replies_tx.clone(),
            self.counters.clone(),
            self.cancel.child_token(),
        ));
        Some(socket)
    }
}

/// Reads what the target sends to one client's upstream socket and passes it to the
/// actor, stamped with its arrival time so that waiting in the queue adds no delay.
async fn read_replies(
    socket: Arc<UdpSocket>,
    client: SocketAddr,
    target: SocketAddr,
    replies: mpsc::Sender<Reply>,
    counters: Arc<UdpCounters>,
    cancel: CancellationToken,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let received = tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            received = socket.recv_from(&mut buf) => received,
        };
        match received {
            Ok((n, from)) if from == target => {
                counters.to_client.received.fetch_add(1, Relaxed);
                let bytes = buf.get(..n).unwrap_or_default().to_vec();
                let reply = Reply { client, bytes, arrived: Instant::now() };
                if replies.try_send(reply).is_err() {
                    counters.to_client.dropped.fetch_add(1, Relaxed);
                }
            }
            // From someone else: ignored, as a connected socket would.
            Ok(_) => {}
            Err(e) if is_transient(&e) => {}
            Err(_) => return,
        }
    }
}

/// A snapshot of a [`TcpProxy`]'s counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpStats {
    /// Connections accepted.
    pub connections: u64,
    /// Accepted connections closed at once: the target refused, or too many were open.
    pub refused: u64,
    /// Bytes written to the target.
    pub bytes_to_target: u64,
    /// Bytes written back to clients.
    pub bytes_to_client: u64,
}

#[derive(Debug, Default)]
struct TcpCounters {
    connections: AtomicU64,
    refused: AtomicU64,
    bytes_to_target: AtomicU64,
    bytes_to_client: AtomicU64,
}

/// A running TCP impairment proxy: delays, never loses or reorders. Stops when dropped
/// or [shut down](Self::shutdown); open connections are closed.
///
/// ```no_run
/// # async fn f(api: std::net::SocketAddr) -> std::io::Result<()> {
/// use std::time::Duration;
/// use communitas_testkit::impair::{Impairment, TcpProxy};
///
/// let slow = Impairment { delay: Duration::from_millis(50), ..Impairment::default() };
/// let proxy = TcpProxy::start(api, slow).await?;
/// // Connect to proxy.local_addr() instead of `api`.
/// println!("{:?}", proxy.stats());
/// proxy.shutdown().await
/// # }
/// ```
#[derive(Debug)]
pub struct TcpProxy {
    local_addr: SocketAddr,
    target: SocketAddr,
    counters: Arc<TcpCounters>,
    cancel: CancellationToken,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl TcpProxy {
    /// Listens on 127.0.0.1 (any free port) and forwards to `target`.
    pub async fn start(target: SocketAddr, impairment: Impairment) -> io::Result<Self> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), target, impairment).await
    }

    /// Listens on `listen` and forwards to `target`.
    pub async fn start_on(
        listen: SocketAddr,
        target: SocketAddr,
        impairment: Impairment,
    ) -> io::Result<Self> {
        impairment.validate()?;
        let listener = TcpListener::bind(listen).await?;
        let local_addr = listener.local_addr()?;
        let counters = Arc::new(TcpCounters::default());
        let cancel = CancellationToken::new();
        let task = tokio::spawn(accept_loop(
            listener,
            target,
            impairment,
            counters.clone(),
            cancel.clone(),
        ));
        Ok(Self { local_addr, target, counters, cancel, task: Some(task) })
    }

    /// Where clients connect.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where connections go.
    pub fn target(&self) -> SocketAddr {
        self.target
    }

    /// The counters.
    pub fn stats(&self) -> TcpStats {
        let c = &self.counters;
        TcpStats {
            connections: c.connections.load(Relaxed),
            refused: c.refused.load(Relaxed),
            bytes_to_target: c.bytes_to_target.load(Relaxed),
            bytes_to_client: c.bytes_to_client.load(Relaxed),
        }
    }

    /// Connections accepted.
    pub fn connections(&self) -> u64 {
        self.counters.connections.load(Relaxed)
    }

    /// Bytes forwarded, both directions.
    pub fn forwarded_bytes(&self) -> u64 {
        let s = self.stats();
        s.bytes_to_target + s.bytes_to_client
    }

    /// Stops the proxy, closes its connections and waits for that. Returns the socket
    /// error that stopped it early, if one did.
    pub async fn shutdown(mut self) -> io::Result<()> {
        self.cancel.cancel();
        join(self.task.take()).await
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn accept_loop(
    listener: TcpListener,
    target: SocketAddr,
    impairment: Impairment,
    counters: Arc<TcpCounters>,
    cancel: CancellationToken,
) -> io::Result<()> {
    let mut connections = JoinSet::new();
    let mut index = 0u64;
    let result = loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => break Ok(()),
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    counters.connections.fetch_add(1, Relaxed);
                    if connections.len() >= MAX_TCP_CONNECTIONS {
                        counters.refused.fetch_add(1, Relaxed);
                        continue;
                    }
                    // Two streams per connection, after the UDP proxy's 0 and 1.
                    let rngs = (
                        Rng::new(impairment.seed, 2 + 2 * index),
                        Rng::new(impairment.seed, 3 + 2 * index),
                    );
                    index += 1;
                    let conn = connection(client, target, impairment, rngs, counters.clone());
                    let cancel = cancel.child_token();
                    connections.spawn(async move {
                        tokio::select! {
                            biased;
                            () = cancel.cancelled() => {}
                            () = conn => {}
                        }
                    });
                }
                Err(e) if is_transient(&e) => {}
                Err(e) => break Err(e),
            },
        }
    };
    cancel.cancel();
    while connections.join_next().await.is_some() {}
    result
}

/// One proxied connection: connects to the target, then pumps both ways until both
/// sides have closed.
async fn connection(
    client: TcpStream,
    target: SocketAddr,
    impairment: Impairment,
    (rng_to_target, rng_to_client): (Rng, Rng),
    counters: Arc<TcpCounters>,
) {
    let Ok(upstream) = TcpStream::connect(target).await else {
        counters.refused.fetch_add(1, Relaxed);
        return;
    };
    // Nagle would add its own delay on top of ours.
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (upstream_read, upstream_write) = upstream.into_split();
    tokio::join!(
        pump(client_read, upstream_write, impairment, rng_to_target, &counters.bytes_to_target),
        pump(upstream_read, client_write, impairment, rng_to_client, &counters.bytes_to_client),
    );
}

/// Copies `from` to `to`, holding each chunk for `delay` ± `jitter` but never past the
/// chunk before it (TCP delivers in order). At the end of `from`, shuts `to` down so the
/// other side sees the end too.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    impairment: Impairment,
    mut rng: Rng,
    forwarded: &AtomicU64,
) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(TCP_CHUNKS_HELD);
    let read = async move {
        let mut buf = vec![0u8; TCP_CHUNK];
        let mut last_due = Instant::now();
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let due = (Instant::now() + impairment.hold(&mut rng)).max(last_due);
            last_due = due;
            let chunk = buf.get(..n).unwrap_or_default().to_vec();
            if tx.send((due, chunk)).await.is_err() {
                break;
            }
        }
    };
    let write = async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
            forwarded.fetch_add(u64::try_from(chunk.len()).unwrap_or(u64::MAX), Relaxed);
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(read, write);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_is_reproducible_and_its_streams_differ() {
        let draw = |seed, stream| {
            let mut r = Rng::new(seed, stream);
            (0..4).map(|_| r.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(draw(7, 0), draw(7, 0));
        assert_ne!(draw(7, 0), draw(7, 1));
        assert_ne!(draw(7, 0), draw(8, 0));
        // Stream 1 is not stream 0 shifted by one step.
        assert_ne!(draw(7, 1)[..3], draw(7, 0)[1..]);
    }

    #[test]
    fn uniform_draws_fill_the_unit_interval() {
        let mut r = Rng::new(1, 0);
        let draws: Vec<f64> = (0..10_000).map(|_| r.next_f64()).collect();
        assert!(draws.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = draws.iter().sum::<f64>() / 10_000.0;
        assert!((0.48..0.52).contains(&mean), "mean {mean}");
        let low = draws.iter().filter(|&&x| x < 0.1).count();
        assert!((900..1100).contains(&low), "{low} below 0.1");
    }

    #[test]
    fn hold_stays_within_delay_plus_or_minus_jitter() {
        let ms = Duration::from_millis;
        let i = Impairment { delay: ms(50), jitter: ms(20), ..Impairment::default() };
        let mut r = Rng::new(3, 0);
        let holds: Vec<Duration> = (0..1000).map(|_| i.hold(&mut r)).collect();
        assert!(holds.iter().all(|h| (ms(30)..=ms(70)).contains(h)));
        assert!(holds.iter().any(|h| *h < ms(35)) && holds.iter().any(|h| *h > ms(65)));
        // Jitter larger than the delay clamps at zero instead of going negative.
        let i = Impairment { delay: ms(5), jitter: ms(20), ..Impairment::default() };
        assert!((0..1000).map(|_| i.hold(&mut r)).all(|h| h <= ms(25)));
        assert!((0..1000).map(|_| i.hold(&mut r)).any(|h| h.is_zero()));
    }

    #[test]
    fn loss_zero_never_drops_and_one_always_does() {
        let mut r = Rng::new(9, 0);
        let never = Impairment::default();
        let always = Impairment { loss: 1.0, ..Impairment::default() };
        assert!((0..10_000).all(|_| !never.lose(&mut r)));
        assert!((0..10_000).all(|_| always.lose(&mut r)));
    }

    #[test]
    fn loss_outside_zero_to_one_is_refused() {
        for loss in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
            let i = Impairment { loss, ..Impairment::default() };
            assert_eq!(i.validate().unwrap_err().kind(), io::ErrorKind::InvalidInput);
        }
        assert!(Impairment { loss: 1.0, ..Impairment::default() }.validate().is_ok());
    }

    #[test]
    fn the_delay_line_releases_by_due_time_then_arrival_and_is_bounded() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut line = DelayLine::new(4);
        line.push(t0 + ms(30), "c").unwrap();
        line.push(t0 + ms(10), "a").unwrap();
        line.push(t0 + ms(30), "d").unwrap();
        line.push(t0 + ms(20), "b").unwrap();
        assert_eq!(line.push(t0, "full"), Err("full"));
        assert_eq!(line.next_due(), Some(t0 + ms(10)));
        assert_eq!(line.pop_due(t0 + ms(5)), None);
        assert_eq!(line.pop_due(t0 + ms(20)), Some("a"));
        assert_eq!(line.pop_due(t0 + ms(20)), Some("b"));
        assert_eq!(line.pop_due(t0 + ms(20)), None);
        assert_eq!(line.pop_due(t0 + ms(30)), Some("c"));
        assert_eq!(line.pop_due(t0 + ms(30)), Some("d"));
        assert_eq!(line.next_due(), None);
    }
}
