//! Hostile peers for the adversarial suite: each one is a bare libp2p swarm (the
//! network crate's, with no node behind it) that misbehaves in one way against a
//! real node.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use communitas_net::libp2p::{Multiaddr, PeerId, StreamProtocol};
use futures::AsyncReadExt as _;
use tokio::task::JoinSet;

use crate::{BareClient, Transport};

/// A peer that holds as many idle streams on `protocol` as it can: it opens them,
/// sends nothing, and opens another whenever the target closes one.
pub struct StreamHoarder {
    client: BareClient,
    tasks: JoinSet<()>,
    stats: Arc<Stats>,
}

#[derive(Default)]
struct Stats {
    /// Streams open now (as far as the hoarder can tell).
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
        let client = BareClient::start_on(&[], transport);
        client.net.add_addresses(target, addrs).await.unwrap();
        let stats = Arc::new(Stats::default());
        let mut tasks = JoinSet::new();
        for _ in 0..streams {
            let mut control = client.net.streams();
            let stats = stats.clone();
            let protocol = protocol.clone();
            tasks.spawn(async move {
                loop {
                    let Ok(mut stream) = control.open_stream(target, protocol.clone()).await else {
                        tokio::time::sleep(REOPEN_AFTER).await;
                        continue;
                    };
                    stats.opened.fetch_add(1, Ordering::Relaxed);
                    stats.open.fetch_add(1, Ordering::Relaxed);
                    // Nothing is sent; a read ends when the target gives the stream up.
                    let mut byte = [0u8; 1];
                    let _ = stream.read(&mut byte).await;
                    stats.open.fetch_sub(1, Ordering::Relaxed);
                    stats.closed.fetch_add(1, Ordering::Relaxed);
                    drop(stream);
                    tokio::time::sleep(REOPEN_AFTER).await;
                }
            });
        }
        Self { client, tasks, stats }
    }

    /// Streams opened so far (reopened ones count again).
    pub fn opened(&self) -> usize {
        self.stats.opened.load(Ordering::Relaxed)
    }

    /// Streams open now, as far as the hoarder can tell (the target may have dropped
    /// some it has not noticed yet).
    pub fn open(&self) -> usize {
        self.stats.open.load(Ordering::Relaxed)
    }

    /// Streams the target closed or reset.
    pub fn closed(&self) -> usize {
        self.stats.closed.load(Ordering::Relaxed)
    }

    /// Stops the attack.
    pub async fn stop(mut self) {
        self.tasks.shutdown().await;
        self.client.stop().await;
    }
}
