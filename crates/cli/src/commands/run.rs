//! `communitas run`: the daemon.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Result;
use communitas_net::libp2p::Multiaddr;

use crate::daemon::{self, Running};
use crate::home;
use crate::passphrase::Source;

/// `run`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// Listen on this multiaddr (repeatable)
    /// [default: /ip4/0.0.0.0/tcp/0 and /ip4/0.0.0.0/udp/0/quic-v1].
    #[arg(long, value_name = "MULTIADDR")]
    pub(crate) listen: Vec<Multiaddr>,
    #[arg(
        long,
        value_name = "MULTIADDR",
        help = "Join the network through this node, /…/p2p/<peer id> (repeatable)."
    )]
    pub(crate) bootstrap: Vec<Multiaddr>,
    /// Serve the local API here.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:0")]
    pub(crate) api: SocketAddr,
    /// Run as a server node: DHT server, relay and mailbox for others.
    #[arg(long)]
    pub(crate) server: bool,
    /// Announce this node on the local network by mDNS (multicast leaves the machine).
    #[arg(long)]
    pub(crate) mdns: bool,
}

pub(crate) fn run(home: &Path, passphrase: Source, args: RunArgs) -> Result<()> {
    let keystore = home::read_keystore(home)?;
    let secrets = {
        let passphrase = passphrase.read(false)?;
        keystore.unlock(passphrase.as_bytes())?
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        daemon::init_logging("warn,communitas_node=info,communitas_net=info,communitas_api=info");
        let config = daemon::node_config(args.listen, args.bootstrap, args.server, args.mdns);
        let running =
            Running::start(home, secrets, keystore.public().clone(), config, args.api).await?;
        println!("communitas node running{}", if args.server { " (server)" } else { "" });
        println!("address    {}", keystore.public().address);
        println!("peer id    {}", keystore.public().peer_id);
        for addr in running.dial_addrs().await {
            println!("listening  {addr}");
        }
        println!("api        {}", running.url);
        if let Some(url) = &running.login_url {
            println!("web UI     {url}  (one-time login link)");
        }
        daemon::wait_for_signal().await?;
        eprintln!("communitas: stopping");
        running.stop().await;
        Ok(())
    })
}
