//! `communitas run`: the daemon.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use std::io::Write;

use anyhow::{Context as _, Result};
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
    /// Join through the nodes listed in this file: one multiaddr per line, blank lines
    /// and `#` comments skipped. Without --bootstrap or this flag, `<home>/bootstrap`
    /// is read if it exists.
    #[arg(long, value_name = "PATH")]
    pub(crate) bootstrap_file: Option<std::path::PathBuf>,
    /// Serve the local API here. It speaks plain HTTP, so an address other than
    /// loopback (127.0.0.0/8, ::1) is refused unless --api-insecure is given.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:0")]
    pub(crate) api: SocketAddr,
    /// Allow --api on a non-loopback address: the token, session cookies and messages
    /// then cross the network unencrypted (put TLS or an SSH tunnel in front).
    #[arg(long)]
    pub(crate) api_insecure: bool,
    /// Start without a passphrase: the node starts once the identity is unlocked in
    /// the web UI or with `communitas unlock`; on a home without an identity, the web
    /// UI creates one.
    #[arg(long)]
    pub(crate) locked: bool,
    /// Run as a server node: DHT server, relay and mailbox for others.
    #[arg(long)]
    pub(crate) server: bool,
    /// Announce this node on the local network by mDNS (multicast leaves the machine).
    #[arg(long)]
    pub(crate) mdns: bool,
    /// Dial any address peers give, including private, loopback and link-local ones and
    /// DNS names. Off by default unless this node listens only on loopback or a
    /// private network, bootstraps through one, or uses mDNS: on the open network a
    /// hostile peer could otherwise point it at services on your LAN or machine.
    #[arg(long)]
    pub(crate) dial_any_peer_addr: bool,
    /// Largest file sent or accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 30)]
    pub(crate) max_file_size: u64,
    /// Received files up to this size are fetched without asking, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 30)]
    pub(crate) auto_download: u64,
    /// Streams one download pulls over at once.
    #[arg(long, value_name = "N", default_value_t = 4, hide = true)]
    pub(crate) file_streams: usize,
    /// Seconds between presence heartbeats to each contact (0.5–60); contacts show
    /// you offline after three missed ones.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub(crate) presence_heartbeat: f64,
    #[arg(
        long,
        value_name = "MULTIADDR",
        help = "Listen through this relay server, /…/p2p/<peer id> (repeatable): for a node behind NAT."
    )]
    pub(crate) relay: Vec<Multiaddr>,
    /// Seconds between pings on each connection; a failed ping closes it.
    #[arg(long, value_name = "SECS", default_value_t = 15.0)]
    pub(crate) ping_interval: f64,
    /// Seconds a ping may take before the connection counts as dead.
    #[arg(long, value_name = "SECS", default_value_t = 20.0)]
    pub(crate) ping_timeout: f64,
    /// An address others reach this node on (repeatable): a public server node
    /// declares its public IP and port, so its relay serves at once.
    #[arg(long, value_name = "MULTIADDR")]
    pub(crate) external_addr: Vec<Multiaddr>,
    #[command(flatten)]
    pub(crate) limits: ServerLimits,
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

/// Load limits of a node (they matter on server nodes; see docs/deploy.md).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ServerLimits {
    /// Most established connections; more are refused (counted in /metrics as
    /// communitas_refused_total{what="connection_limit"}).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CONNECTIONS)]
    pub(crate) max_connections: u32,
    /// Refuse new connections while the process uses more than this many MiB of memory
    /// (0: no limit).
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_MAX_MEMORY_MIB)]
    pub(crate) max_memory_mib: usize,
    /// Relay reservations and circuits one IP address may open in a burst, then one a
    /// second (0: no per-IP limit).
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub(crate) relay_ip_burst: u32,
    /// Server nodes: envelope bytes kept in all mailboxes together, in MiB; beyond,
    /// puts are refused (communitas_refused_total{what="mailbox_server_full"}). 0: no
    /// limit.
    #[arg(long, value_name = "MIB", default_value_t = 16 * 1024)]
    pub(crate) mailbox_max_mib: u64,
}

/// Connections a node accepts by default. Each connected user costs a server about
/// 100 KiB (docs/benchmarks.md, "Server nodes at scale"), so 3,000 fit well inside
/// the default memory limit; beyond it, users are refused clearly, and counted.
pub(crate) const DEFAULT_MAX_CONNECTIONS: u32 = 3_000;
/// Memory beyond which new connections are refused.
pub(crate) const DEFAULT_MAX_MEMORY_MIB: usize = 1_024;

impl ServerLimits {
    /// Applies the limits to a node's configuration.
    pub(crate) fn apply(&self, config: &mut communitas_node::Config) {
        config.net.max_connections = self.max_connections;
        config.net.max_memory_bytes =
            (self.max_memory_mib > 0).then(|| self.max_memory_mib.saturating_mul(1024 * 1024));
        config.net.relay_ip_burst = self.relay_ip_burst;
        config.mailbox_limits.max_total_bytes = match self.mailbox_max_mib {
            0 => u64::MAX,
            mib => mib.saturating_mul(1024 * 1024),
        };
    }
}

pub(crate) fn run(home: &Path, passphrase: Source, args: RunArgs) -> Result<()> {
    check_api_addr(args.api, args.api_insecure)?;
    // Unlocked before anything starts, so a wrong passphrase changes nothing.
    let unlocked = if args.locked {
        None
    } else {
        let keystore = home::read_keystore(home).map_err(|e| {
            e.context("(or `communitas run --locked` to create the identity in the web UI)")
        })?;
        let passphrase = passphrase.read(false)?;
        let secrets = keystore.unlock(passphrase.as_bytes())?;
        Some((secrets, keystore.public().clone()))
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        daemon::init_logging("warn,communitas_node=info,communitas_net=info,communitas_api=info");
        let server = args.server;
        let api = args.api;
        let config = config(home, args)?;
        let running = match unlocked {
            Some((secrets, public)) => Running::start(home, secrets, public, config, api).await?,
            None => Running::start_locked(home, config, api).await?,
        };
        // A daemon must not die because whoever started it stopped reading its
        // output: write errors are ignored (println! would panic on a closed pipe).
        let mut banner =
            format!("communitas node running{}\n", if server { " (server)" } else { "" });
        match running.handle() {
            Some(node) => {
                banner.push_str(&format!("address    {}\n", node.address()));
                banner.push_str(&format!("peer id    {}\n", node.peer_id()));
            }
            None if home.join(home::KEYSTORE).exists() => {
                banner.push_str("locked     unlock it in the web UI, or with `communitas unlock`\n")
            }
            None => banner.push_str("new        no identity yet: create it in the web UI\n"),
        }
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

/// The bootstrap list `run` reads from the home when given no bootstrap node.
const BOOTSTRAP_FILE: &str = "bootstrap";

/// The multiaddrs of a bootstrap list: one per line; blank lines and `#` comments
/// (whole-line or trailing) are skipped. A line that is not a multiaddr with a
/// `/p2p/<peer id>` is an error naming the line.
fn bootstrap_list(text: &str) -> Result<Vec<Multiaddr>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let addr: Multiaddr =
            line.parse().with_context(|| format!("line {}: not a multiaddr: {line}", n + 1))?;
        if !addr.iter().any(|p| matches!(p, communitas_net::libp2p::multiaddr::Protocol::P2p(_))) {
            anyhow::bail!("line {}: {line} has no /p2p/<peer id>", n + 1);
        }
        out.push(addr);
    }
    Ok(out)
}

/// The node's configuration from `run`'s flags.
fn config(home: &Path, mut args: RunArgs) -> Result<communitas_node::Config> {
    let default_list = home.join(BOOTSTRAP_FILE);
    let list = match args.bootstrap_file.take() {
        Some(path) => Some(path),
        None if args.bootstrap.is_empty() && default_list.exists() => Some(default_list),
        None => None,
    };
    if let Some(path) = list {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the bootstrap list {}", path.display()))?;
        let listed = bootstrap_list(&text)
            .with_context(|| format!("in the bootstrap list {}", path.display()))?;
        args.bootstrap.extend(listed);
    }
    let mut config = daemon::node_config(args.listen, args.bootstrap, args.server, args.mdns);
    config.files.max_size = args.max_file_size;
    config.files.auto_download = args.auto_download;
    config.files.parallel_streams = args.file_streams.max(1);
    config.presence.heartbeat = heartbeat(args.presence_heartbeat)?;
    config.net.relays = args.relay;
    config.net.dial_any_peer_addr |= args.dial_any_peer_addr;
    config.net.ping_interval = seconds("--ping-interval", args.ping_interval)?;
    config.net.ping_timeout = seconds("--ping-timeout", args.ping_timeout)?;
    config.net.external_addrs = args.external_addr;
    args.limits.apply(&mut config);
    config.net.announce = args.announce;
    config.mailbox_replicate_every = Duration::from_secs(args.replicate_every);
    Ok(config)
}

/// The heartbeat flag, checked: a finite number of seconds from 0.5 to 60.
fn heartbeat(secs: f64) -> Result<std::time::Duration> {
    if !(0.5..=60.0).contains(&secs) {
        return Err(crate::Exit::usage(format!(
            "--presence-heartbeat must be between 0.5 and 60 seconds, not {secs}"
        )));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// A positive, finite number of seconds, at most an hour.
fn seconds(flag: &str, secs: f64) -> Result<std::time::Duration> {
    if !(0.1..=3600.0).contains(&secs) {
        return Err(crate::Exit::usage(format!("{flag} must be between 0.1 and 3600 seconds")));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// The API is plain HTTP: only on loopback, unless the user says otherwise.
pub(crate) fn check_api_addr(api: SocketAddr, insecure: bool) -> Result<()> {
    if api.ip().is_loopback() || insecure {
        return Ok(());
    }
    anyhow::bail!(
        "--api {api} is not a loopback address: the API speaks plain HTTP, so its token \
         and your messages would cross the network unencrypted. Use 127.0.0.1:PORT (and \
         an SSH tunnel or a TLS proxy to reach it from elsewhere), or add --api-insecure \
         to serve it there anyway"
    )
}

#[cfg(test)]
mod tests {
    use super::bootstrap_list;

    const PEER: &str = "12D3KooWGYg1vAjNdSmtbsYBS3xfXr9dqYYSVwKoBoKdyVNuNsdh";

    #[test]
    fn a_bootstrap_list_skips_comments_and_names_a_bad_line() {
        let text = format!(
            "# our community's servers\n\n/ip4/10.0.0.1/tcp/4001/p2p/{PEER}\n  \
             /dns4/example.org/udp/4001/quic-v1/p2p/{PEER}  # the backup\n"
        );
        let list = bootstrap_list(&text).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].to_string(), format!("/ip4/10.0.0.1/tcp/4001/p2p/{PEER}"));

        let e = bootstrap_list("# fine\n/ip4/10.0.0.1/tcp/4001\n").unwrap_err();
        assert!(format!("{e:#}").contains("line 2") && format!("{e:#}").contains("/p2p/"), "{e:#}");
        let e = bootstrap_list("not an address\n").unwrap_err();
        assert!(format!("{e:#}").contains("line 1: not a multiaddr"), "{e:#}");
        assert!(bootstrap_list("").unwrap().is_empty());
    }
}
