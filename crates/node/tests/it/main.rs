//! In-process multi-node tests over libp2p's memory transport (real Noise and Yamux,
//! no sockets). One test binary (ARCHITECTURE §14).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod memory;

use std::time::Duration;

use communitas_crypto::{KeystorePublic, Secrets, derive_address};
use communitas_net::libp2p::Multiaddr;
use communitas_net::libp2p::multiaddr::Protocol;
use communitas_node::{Config, Node};
use communitas_store::Store;
use communitas_types::Timestamp;

/// A node with a fresh identity in `dir`, on the memory transport.
pub async fn node(
    dir: &std::path::Path,
    name: &str,
    server: bool,
    bootstrap: &[Multiaddr],
) -> Node {
    let secrets = Secrets::generate().unwrap();
    let address = derive_address(secrets.identity.public());
    let public = KeystorePublic {
        name: Some(name.into()),
        identity: secrets.identity.public().clone(),
        address,
        peer_id: secrets.device.peer_id(),
        created_at: Timestamp::now(),
    };
    let store = Store::open(&dir.join(format!("{name}.db")), secrets.storage.clone()).unwrap();
    let port = u64::from_le_bytes(communitas_crypto::random::bytes().unwrap()) >> 1;
    let config = Config {
        net: communitas_net::Config {
            listen: vec![Multiaddr::empty().with(Protocol::Memory(port))],
            bootstrap: bootstrap.to_vec(),
            server,
            transport: communitas_net::Transport::Memory,
            only_global_ips: false,
            ..communitas_net::Config::default()
        },
        ..Config::default()
    };
    Node::start(config, secrets, public, store).await.unwrap()
}

/// Retries `f` until it succeeds or `limit` passes (for conditions another node
/// brings about, like a record being published).
pub async fn eventually<T, E: std::fmt::Debug, F: std::future::Future<Output = Result<T, E>>>(
    limit: Duration,
    mut f: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) if tokio::time::Instant::now() > deadline => {
                panic!("gave up after {limit:?}: {e:?}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
