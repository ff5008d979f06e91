//! The one `NetworkBehaviour` of a node: standard libp2p protocols plus ours.

use std::num::NonZeroU32;
use std::time::Duration;

use libp2p::kad::store::{MemoryStore, MemoryStoreConfig};
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    StreamProtocol, autonat, connection_limits, dcutr, identify, identity, kad, mdns,
    memory_connection_limits, ping, relay, request_response,
};

use crate::Config;
use crate::codec::{MSG_PROTOCOL, MsgCodec};
use crate::mbox::{MBOX_PROTOCOL, MboxCodec};
use crate::metrics::NetMetrics;

/// Our Kademlia protocol (ARCHITECTURE §5).
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/communitas/kad/1.0.0");
/// What identify announces as our protocol version.
pub const PROTOCOL_VERSION: &str = "/communitas/1.0.0";

/// How long a message request may take before the sender retries.
const MSG_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) memory: Toggle<memory_connection_limits::Behaviour>,
    pub(crate) relay_client: relay::client::Behaviour,
    pub(crate) relay_server: Toggle<relay::Behaviour>,
    pub(crate) dcutr: dcutr::Behaviour,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
    /// Off when the node announces its addresses (`Config::announce`): they are known,
    /// and a probe's dial-back would open a connection around the announced path.
    pub(crate) autonat: Toggle<autonat::Behaviour>,
    pub(crate) kad: kad::Behaviour<MemoryStore>,
    pub(crate) mdns: Toggle<mdns::tokio::Behaviour>,
    pub(crate) msg: request_response::Behaviour<MsgCodec>,
    pub(crate) mbox: request_response::Behaviour<MboxCodec>,
    /// Raw streams for bulk transfers (`/communitas/file/1`): opened and accepted by the
    /// node through a [`libp2p_stream::Control`], outside the event loop.
    pub(crate) stream: libp2p_stream::Behaviour,
}

impl Behaviour {
    pub(crate) fn new(
        key: &identity::Keypair,
        relay_client: relay::client::Behaviour,
        config: &Config,
        metrics: &NetMetrics,
    ) -> Result<Self, std::io::Error> {
        let peer_id = key.public().to_peer_id();
        let announcing = !config.announce.is_empty();

        let limits = connection_limits::ConnectionLimits::default()
            .with_max_established(Some(config.max_connections))
            .with_max_established_per_peer(Some(config.max_connections_per_peer))
            .with_max_pending_incoming(Some(config.max_connections / 4 + 1));

        let mut kad_config = kad::Config::new(KAD_PROTOCOL);
        // Inbound records go through our validator (signature, address derivation,
        // higher seq) before anything is stored: see `records`.
        kad_config.set_record_filtering(kad::StoreInserts::FilterBoth);
        kad_config.set_query_timeout(Duration::from_secs(30));
        let store_config = MemoryStoreConfig {
            max_records: 100_000,
            max_value_bytes: communitas_crypto::record::MAX_SET_LEN,
            ..MemoryStoreConfig::default()
        };
        let mut kad = kad::Behaviour::with_config(
            peer_id,
            MemoryStore::with_config(peer_id, store_config),
            kad_config,
        );
        if config.server {
            // Without this a local network never forms a DHT (ARCHITECTURE §14).
            kad.set_mode(Some(kad::Mode::Server));
        } else if !config.relays.is_empty() {
            // Behind NAT (ARCHITECTURE §3): a Kademlia client. Left automatic, the
            // confirmed relay circuit address would make it a server that others
            // reach only through the relay.
            kad.set_mode(Some(kad::Mode::Client));
        }

        let relay_server =
            config.server.then(|| relay::Behaviour::new(peer_id, relay_config(config)));
        let memory =
            config.max_memory_bytes.map(memory_connection_limits::Behaviour::with_max_bytes);

        let mdns = if config.mdns {
            Some(mdns::tokio::Behaviour::new(mdns::Config::default(), peer_id)?)
        } else {
            None
        };

        let msg = request_response::Behaviour::with_codec(
            MsgCodec::counting(metrics.clone()),
            [(MSG_PROTOCOL, request_response::ProtocolSupport::Full)],
            request_response::Config::default()
                .with_request_timeout(MSG_TIMEOUT)
                .with_max_concurrent_streams(config.max_concurrent_messages),
        );

        let mbox = request_response::Behaviour::with_codec(
            MboxCodec::counting(metrics.clone()),
            [(MBOX_PROTOCOL, request_response::ProtocolSupport::Full)],
            request_response::Config::default()
                .with_request_timeout(Duration::from_secs(30))
                .with_max_concurrent_streams(config.max_concurrent_messages),
        );

        Ok(Self {
            mbox,
            limits: connection_limits::Behaviour::new(limits),
            memory: memory.into(),
            relay_client,
            relay_server: relay_server.into(),
            dcutr: dcutr::Behaviour::new(peer_id),
            identify: identify::Behaviour::new(
                identify::Config::new(PROTOCOL_VERSION.into(), key.public())
                    .with_agent_version(format!("communitas/{}", env!("CARGO_PKG_VERSION")))
                    // Announced addresses only: identify then tells peers our external
                    // addresses (the announced ones), never where we really listen.
                    .with_hide_listen_addrs(announcing),
            ),
            ping: ping::Behaviour::new(
                ping::Config::new()
                    .with_interval(config.ping_interval)
                    .with_timeout(config.ping_timeout),
            ),
            autonat: (!announcing)
                .then(|| {
                    autonat::Behaviour::new(
                        peer_id,
                        autonat::Config {
                            only_global_ips: config.only_global_ips,
                            ..autonat::Config::default()
                        },
                    )
                })
                .into(),
            kad,
            mdns: mdns.into(),
            msg,
            stream: libp2p_stream::Behaviour::new(),
        })
    }
}

/// The relay server's limits, sized for a server node (issue 8): libp2p's defaults
/// (128 reservations, 16 circuits, 2-minute circuits) suit a volunteer relay, not a
/// community's server. Every user behind NAT holds one reservation and a circuit per
/// live conversation partner that cannot hole-punch, so both scale with connections.
fn relay_config(config: &Config) -> relay::Config {
    let connections = usize::try_from(config.max_connections).unwrap_or(usize::MAX);
    let mut relay_config = relay::Config {
        max_reservations: connections,
        max_reservations_per_peer: 4,
        max_circuits: connections,
        max_circuits_per_peer: 16,
        max_circuit_duration: Duration::from_secs(30 * 60),
        max_circuit_bytes: 1 << 30,
        reservation_rate_limiters: Vec::new(),
        circuit_src_rate_limiters: Vec::new(),
        ..relay::Config::default()
    };
    // Per peer: a burst of 30, then one every 10 s (a reconnecting phone renews its
    // reservation; a peer opening circuits to many contacts at start needs a burst).
    let per_peer = NonZeroU32::new(30).unwrap_or(NonZeroU32::MIN);
    relay_config = relay_config
        .reservation_rate_per_peer(per_peer, Duration::from_secs(10))
        .circuit_src_per_peer(per_peer, Duration::from_secs(10));
    if let Some(burst) = NonZeroU32::new(config.relay_ip_burst) {
        relay_config = relay_config
            .reservation_rate_per_ip(burst, Duration::from_secs(1))
            .circuit_src_per_ip(burst, Duration::from_secs(1));
    }
    relay_config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_slots_scale_with_the_connection_limit_not_libp2p_defaults() {
        let config = Config { max_connections: 5_000, relay_ip_burst: 0, ..Config::default() };
        let relay = relay_config(&config);
        assert_eq!((relay.max_reservations, relay.max_circuits), (5_000, 5_000));
        assert_eq!(relay.max_circuit_duration, Duration::from_secs(30 * 60));
        // Per peer only: the per-IP limiters are off when the burst is 0.
        assert_eq!(relay.reservation_rate_limiters.len(), 1);
        assert_eq!(relay.circuit_src_rate_limiters.len(), 1);
        let with_ip = relay_config(&Config::default());
        assert_eq!(with_ip.reservation_rate_limiters.len(), 2);
        assert_eq!(with_ip.circuit_src_rate_limiters.len(), 2);
    }
}
