//! `communitas testnet`: N server nodes on 127.0.0.1, bootstrapped to each other.

use std::path::Path;

use anyhow::{Context, Result};
use communitas_crypto::{KeystorePublic, Secrets, derive_address};
use communitas_net::libp2p::Multiaddr;
use communitas_node::Node;
use communitas_store::Store;
use communitas_types::Timestamp;

use crate::daemon;

/// Starts `count` server nodes with throwaway identities, stores under `dir`. Each
/// bootstraps from the ones before it. Ports from `base_port` up (TCP, and QUIC on
/// the same number), or any free port.
pub(crate) async fn start(
    dir: &Path,
    count: usize,
    base_port: Option<u16>,
) -> Result<(Vec<Node>, Vec<Multiaddr>)> {
    let mut nodes = Vec::with_capacity(count);
    let mut dial: Vec<Multiaddr> = Vec::new();
    for i in 0..count {
        let port = base_port.map_or(Ok(0), |p| {
            u16::try_from(i).ok().and_then(|i| p.checked_add(i)).context("port out of range")
        })?;
        let listen = vec![
            format!("/ip4/127.0.0.1/tcp/{port}").parse()?,
            format!("/ip4/127.0.0.1/udp/{port}/quic-v1").parse()?,
        ];
        let config = daemon::node_config(listen, dial.clone(), true, false);
        let secrets = Secrets::generate()?;
        let identity = secrets.identity.public().clone();
        let address = tokio::task::spawn_blocking(move || derive_address(&identity)).await?;
        let public = KeystorePublic {
            name: Some(format!("server-{i}")),
            identity: secrets.identity.public().clone(),
            address,
            peer_id: secrets.device.peer_id(),
            created_at: Timestamp::now(),
        };
        let store = Store::open(&dir.join(format!("server-{i}.db")), secrets.storage.clone())?;
        let node = Node::start(config, secrets, public, store)
            .await
            .with_context(|| format!("server {i} did not start"))?;
        let handle = node.handle();
        let mut addrs = Vec::new();
        for _ in 0..50 {
            addrs = handle.dial_addrs().await.unwrap_or_default();
            if !addrs.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        // TCP first: it connects in a millisecond where QUIC takes tens.
        addrs.sort_by_key(|a| a.to_string().contains("quic"));
        dial.extend(addrs.into_iter().take(1));
        nodes.push(node);
    }
    Ok((nodes, dial))
}

pub(crate) fn run(count: usize, base_port: Option<u16>) -> Result<()> {
    anyhow::ensure!((1..=64).contains(&count), "--nodes must be between 1 and 64");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        daemon::init_logging("warn");
        let dir = tempfile::Builder::new().prefix("communitas-testnet-").tempdir()?;
        let (nodes, dial) = start(dir.path(), count, base_port).await?;
        println!("{count} server nodes on 127.0.0.1; bootstrap from any of:");
        for addr in &dial {
            println!("{addr}");
        }
        println!("Ctrl-C stops them.");
        daemon::wait_for_signal().await?;
        for node in nodes {
            node.shutdown().await;
        }
        Ok(())
    })
}
