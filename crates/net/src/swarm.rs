//! Building the swarm for either transport set.

use std::time::Duration;

use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::{Boxed, MemoryTransport};
use libp2p::core::upgrade::Version;
use libp2p::{PeerId, Swarm, Transport as _, noise, quic, tcp, yamux};

use crate::behaviour::Behaviour;
use crate::dial::{DialPolicy, Guarded};
use crate::metrics::NetMetrics;
use crate::{Cause, Config, Error, Setup, Transport};

/// Addresses dialled at once for one peer. libp2p's default of 8 lets a handful of
/// unreachable addresses (a NATed peer's private ones, over QUIC: each waits for its
/// handshake timeout) hold back its relay circuit addresses for seconds.
const DIAL_CONCURRENCY: std::num::NonZeroU8 = match std::num::NonZeroU8::new(32) {
    Some(n) => n,
    None => std::num::NonZeroU8::MIN,
};

/// Idle connections stay open this long: one live connection per peer is reused for
/// every message (ARCHITECTURE §6), so the second message needs no dial.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

pub(crate) fn build(
    key: libp2p::identity::Keypair,
    config: &Config,
    metrics: &NetMetrics,
) -> Result<Swarm<Behaviour>, Error> {
    let noise_failed = |e: &dyn std::fmt::Display| Error::Transport(Setup::Noise(Cause::other(e)));
    let behaviour_failed =
        |e: &dyn std::fmt::Display| Error::Transport(Setup::Behaviour(Cause::other(e)));
    let swarm = match config.transport {
        Transport::Sockets => {
            let policy = DialPolicy::from_config(config);
            libp2p::SwarmBuilder::with_existing_identity(key)
                .with_tokio()
                .with_other_transport(|key| sockets(key, policy, metrics.clone()))
                .map_err(|e| noise_failed(&e))?
                .with_relay_client(noise::Config::new, yamux::Config::default)
                .map_err(|e| noise_failed(&e))?
                .with_behaviour(|key, relay| {
                    Behaviour::new(key, relay, config, metrics).map_err(boxed)
                })
                .map_err(|e| behaviour_failed(&e))?
                .with_swarm_config(swarm_settings)
                .build()
        }
        Transport::Memory => libp2p::SwarmBuilder::with_existing_identity(key)
            .with_tokio()
            .with_other_transport(|key| {
                let noise = noise::Config::new(key).map_err(boxed)?;
                Ok(MemoryTransport::default()
                    .upgrade(Version::V1)
                    .authenticate(noise)
                    .multiplex(yamux::Config::default())
                    .boxed())
            })
            .map_err(|e| noise_failed(&e))?
            .with_relay_client(noise::Config::new, yamux::Config::default)
            .map_err(|e| noise_failed(&e))?
            .with_behaviour(|key, relay| Behaviour::new(key, relay, config, metrics).map_err(boxed))
            .map_err(|e| behaviour_failed(&e))?
            .with_swarm_config(swarm_settings)
            .build(),
    };
    Ok(swarm)
}

/// TCP (Noise, Yamux) or QUIC, under DNS, under the dial guard: what libp2p's
/// `with_tcp().with_quic().with_dns_config()` builds, with [`Guarded`] around it so
/// that no peer-supplied address or name is dialled against the [`DialPolicy`].
fn sockets(
    key: &libp2p::identity::Keypair,
    policy: DialPolicy,
    metrics: NetMetrics,
) -> Result<Boxed<(PeerId, StreamMuxerBox)>, Box<dyn std::error::Error + Send + Sync>> {
    let tcp = tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
        .upgrade(Version::V1Lazy)
        .authenticate(noise::Config::new(key).map_err(boxed)?)
        .multiplex(yamux::Config::default())
        .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)));
    let quic = quic::tokio::Transport::new(quic::Config::new(key))
        .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)));
    let both = tcp.or_transport(quic).map(|either, _| either.into_inner());
    // `/dns4/…`, `/dns6/…` and `/dns/…` addresses (bootstrap lists).
    let (dns_config, dns_opts) = resolver_config();
    let dns = libp2p::dns::tokio::Transport::custom(both, dns_config, dns_opts);
    Ok(Guarded::new(dns, policy, metrics).boxed())
}

/// Idle timeout and dial concurrency, the same on every transport.
fn swarm_settings(c: libp2p::swarm::Config) -> libp2p::swarm::Config {
    c.with_idle_connection_timeout(IDLE_TIMEOUT).with_dial_concurrency_factor(DIAL_CONCURRENCY)
}

/// The builder takes closure errors as boxed trait objects.
fn boxed(
    e: impl std::error::Error + Send + Sync + 'static,
) -> Box<dyn std::error::Error + Send + Sync> {
    Box::new(e)
}

/// The system's resolver configuration; without one (no `/etc/resolv.conf`), none:
/// names then resolve from the hosts file only, and the node still starts. Never a
/// public resolver the user did not choose.
fn resolver_config() -> (libp2p::dns::ResolverConfig, libp2p::dns::ResolverOpts) {
    hickory_resolver::system_conf::read_system_conf().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "no DNS configuration: DNS names resolve from the hosts file only");
        (libp2p::dns::ResolverConfig::from_parts(None, Vec::new(), Vec::new()), Default::default())
    })
}
