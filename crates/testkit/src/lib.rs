//! Test harness (dev-only): in-process networks of real nodes over libp2p's memory
//! transport (real Noise and Yamux, no sockets), and a polling helper for conditions
//! that other nodes bring about. [`impair`]: proxies that delay, reorder and drop
//! traffic between real sockets. [`attack`]: hostile peers for the adversarial suite
//! (with [`Network::start_on`] and [`communitas_net::Transport::Sockets`], real TCP on
//! 127.0.0.1).

#![deny(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod attack;
pub mod impair;

pub use impair::{Impairment, TcpProxy, UdpProxy};

use std::path::Path;
use std::time::Duration;

use communitas_crypto::{KeystorePublic, Secrets, derive_address};
pub use communitas_net::Transport;
use communitas_net::libp2p::Multiaddr;
use communitas_net::libp2p::multiaddr::Protocol;
use communitas_node::{Config, Node};
use communitas_store::Store;
use communitas_types::Timestamp;

/// A node with a fresh identity, its database in `dir`, on the memory transport.
pub async fn memory_node(dir: &Path, name: &str, server: bool, bootstrap: &[Multiaddr]) -> Node {
    memory_node_with(dir, name, server, bootstrap, Seeds::random()).await
}

/// The secret bytes a test node is made from, so it can be restarted as itself.
#[derive(Clone, Copy, Debug)]
pub struct Seeds(pub [u8; 32], pub [u8; 32], pub [u8; 32], pub [u8; 32]);

impl Seeds {
    /// Fresh random seeds.
    pub fn random() -> Self {
        let r = || communitas_crypto::random::bytes().unwrap();
        Self(r(), r(), r(), r())
    }

    fn secrets(self) -> Secrets {
        Secrets {
            identity: communitas_crypto::Identity::from_seed_bytes(self.0, self.1),
            device: communitas_crypto::DeviceKey::from_secret_bytes(self.2),
            storage: communitas_crypto::at_rest::StorageKey::from_bytes(self.3),
        }
    }
}

/// A node made from `seeds` (same seeds and `dir`: the same node, restarted).
pub async fn memory_node_with(
    dir: &Path,
    name: &str,
    server: bool,
    bootstrap: &[Multiaddr],
    seeds: Seeds,
) -> Node {
    start(dir, name, server, bootstrap, seeds, Config::default(), Transport::Memory).await
}

/// A node made from `seeds` with the given configuration (its network part is set to
/// the memory transport here); same seeds and `dir`: the same node, restarted.
pub async fn memory_node_seeded(
    dir: &Path,
    name: &str,
    server: bool,
    bootstrap: &[Multiaddr],
    seeds: Seeds,
    config: Config,
) -> Node {
    start(dir, name, server, bootstrap, seeds, config, Transport::Memory).await
}

/// A node with a fresh identity on `transport` (`Sockets`: TCP on 127.0.0.1, a port
/// the system picks).
pub async fn node_on(
    dir: &Path,
    name: &str,
    server: bool,
    bootstrap: &[Multiaddr],
    transport: Transport,
) -> Node {
    start(dir, name, server, bootstrap, Seeds::random(), Config::default(), transport).await
}

/// Where a node on `transport` listens.
fn listen_addr(transport: Transport) -> Multiaddr {
    match transport {
        Transport::Memory => {
            let port = u64::from_le_bytes(communitas_crypto::random::bytes().unwrap()) >> 1;
            Multiaddr::empty().with(Protocol::Memory(port))
        }
        Transport::Sockets => "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
    }
}

/// A node with fresh keys and the given configuration (its network part is set to
/// the memory transport here).
pub async fn memory_node_configured(
    dir: &Path,
    name: &str,
    server: bool,
    bootstrap: &[Multiaddr],
    config: Config,
) -> Node {
    start(dir, name, server, bootstrap, Seeds::random(), config, Transport::Memory).await
}

async fn start(
    dir: &Path,
    name: &str,
    server: bool,
    bootstrap: &[Multiaddr],
    seeds: Seeds,
    base: Config,
    transport: Transport,
) -> Node {
    let secrets = seeds.secrets();
    let identity = secrets.identity.public().clone();
    let address = tokio::task::spawn_blocking(move || derive_address(&identity)).await.unwrap();
    let public = KeystorePublic {
        name: Some(name.into()),
        identity: secrets.identity.public().clone(),
        address,
        peer_id: secrets.device.peer_id(),
        created_at: Timestamp::now(),
    };
    let store = Store::open(&dir.join(format!("{name}.db")), secrets.storage.clone()).unwrap();
    let config = Config {
        net: communitas_net::Config {
            listen: vec![listen_addr(transport)],
            bootstrap: bootstrap.to_vec(),
            server,
            transport,
            only_global_ips: false,
            dial_any_peer_addr: true,
            announce: base.net.announce.clone(),
            ..communitas_net::Config::default()
        },
        files: communitas_node::FilesConfig {
            downloads: dir.join(format!("{name}-downloads")),
            uploads: dir.join(format!("{name}-uploads")),
            ..base.files.clone()
        },
        ..base
    };
    Node::start(config, secrets, public, store).await.unwrap()
}

/// A small network: `servers` server nodes bootstrapped to each other, plus one user
/// node per name, each bootstrapped to a server.
pub struct Network {
    /// The server nodes.
    pub servers: Vec<Node>,
    /// The user nodes, in the order of their names.
    pub users: Vec<Node>,
}

impl Network {
    /// Starts the network (databases in `dir`).
    pub async fn start(dir: &Path, servers: usize, users: &[&str]) -> Self {
        Self::start_on(dir, servers, users, Transport::Memory).await
    }

    /// Starts the network on `transport` (`Sockets`: real TCP on 127.0.0.1).
    pub async fn start_on(
        dir: &Path,
        servers: usize,
        users: &[&str],
        transport: Transport,
    ) -> Self {
        let mut nodes = Vec::new();
        let mut boot: Vec<Multiaddr> = Vec::new();
        for i in 0..servers {
            let server = node_on(dir, &format!("server{i}"), true, &boot, transport).await;
            let handle = server.handle();
            let addrs = eventually(Duration::from_secs(5), || {
                let h = handle.clone();
                async move {
                    let a = h.dial_addrs().await.unwrap();
                    if a.is_empty() { Err("no listen address yet") } else { Ok(a) }
                }
            })
            .await;
            boot.extend(addrs);
            nodes.push(server);
        }
        let mut people = Vec::new();
        for (i, name) in users.iter().enumerate() {
            let entry = boot.get(i % boot.len().max(1)).cloned().into_iter().collect::<Vec<_>>();
            people.push(node_on(dir, name, false, &entry, transport).await);
        }
        Self { servers: nodes, users: people }
    }

    /// Stops every node.
    pub async fn shutdown(self) {
        for node in self.users.into_iter().chain(self.servers) {
            node.shutdown().await;
        }
    }
}

/// The addresses `node` can be dialled on, once its listener is up (a node reports
/// them shortly after it starts).
pub async fn dial_addrs(node: &communitas_node::Handle) -> Vec<Multiaddr> {
    eventually(Duration::from_secs(5), || async {
        let addrs = node.dial_addrs().await.unwrap();
        if addrs.is_empty() { Err("no listen address yet") } else { Ok(addrs) }
    })
    .await
}

/// Retries `f` until it succeeds or `limit` passes, then panics with the last error.
pub async fn eventually<T, E, F>(limit: Duration, mut f: impl FnMut() -> F) -> T
where
    E: std::fmt::Debug,
    F: std::future::Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) if tokio::time::Instant::now() > deadline => {
                panic!("gave up after {limit:?}: {e:?}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// A bare network client on the memory transport, with no node behind it: for tests
/// that speak the wire protocols directly (a misbehaving or hand-driven peer).
pub struct BareClient {
    /// The network handle.
    pub net: communitas_net::Client,
    /// Kept so the event loop can hand events on; nobody reads them.
    _events: tokio::sync::mpsc::Receiver<communitas_net::Event>,
    stop: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl BareClient {
    /// Starts one, joining through `bootstrap` (may be empty).
    pub fn start(bootstrap: &[Multiaddr]) -> Self {
        Self::start_on(bootstrap, Transport::Memory)
    }

    /// Starts one on `transport` (`Sockets`: real TCP on 127.0.0.1).
    pub fn start_on(bootstrap: &[Multiaddr], transport: Transport) -> Self {
        let config = communitas_net::Config {
            listen: vec![listen_addr(transport)],
            bootstrap: bootstrap.to_vec(),
            transport,
            only_global_ips: false,
            dial_any_peer_addr: true,
            ..communitas_net::Config::default()
        };
        let key = communitas_net::libp2p::identity::Keypair::generate_ed25519();
        let (net, events, event_loop) = communitas_net::new(key, config).unwrap();
        let stop = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(event_loop.run(stop.clone()));
        Self { net, _events: events, stop, task }
    }

    /// Stops its event loop.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}
