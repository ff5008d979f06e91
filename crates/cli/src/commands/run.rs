//! `communitas run`: the daemon.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use std::io::Write;

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
    /// Give out only this address (repeatable): publish it in the identity record,
    /// hide the listen addresses from peers, turn AutoNAT off. For a node behind a
    /// forwarder, e.g. an impairment proxy or a port mapping.
    #[arg(long, value_name = "MULTIADDR")]
    pub(crate) announce: Vec<Multiaddr>,
    /// Server nodes: offer kept mailbox envelopes to the other closest servers every
    /// SECS, so R copies remain when holders leave.
    #[arg(long, value_name = "SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) replicate_every: u64,
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
        let mut config = daemon::node_config(args.listen, args.bootstrap, args.server, args.mdns);
        config.net.announce = args.announce;
        config.mailbox_replicate_every = Duration::from_secs(args.replicate_every);
        let running =
            Running::start(home, secrets, keystore.public().clone(), config, args.api).await?;
        // A daemon must not die because whoever started it stopped reading its
        // output: write errors are ignored (println! would panic on a closed pipe).
        let mut banner = format!(
            "communitas node running{}\naddress    {}\npeer id    {}\n",
            if args.server { " (server)" } else { "" },
            keystore.public().address,
            keystore.public().peer_id
        );
        for addr in running.dial_addrs().await {
            banner.push_str(&format!("listening  {addr}\n"));
        }
        if let Some(url) = &running.login_url {
            banner.push_str(&format!("web UI     {url}  (one-time login link)\n"));
        }
        banner.push_str(&format!("api        {}\n", running.url));
        let mut out = std::io::stdout();
        let _ = out.write_all(banner.as_bytes()).and_then(|()| out.flush());
        daemon::wait_for_signal().await?;
        let _ = writeln!(std::io::stderr(), "communitas: stopping");
        running.stop().await;
        Ok(())
    })
}
