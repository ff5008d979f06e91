//! The one `NetworkBehaviour` of a node: standard libp2p protocols plus ours.

use std::time::Duration;

use libp2p::kad::store::{MemoryStore, MemoryStoreConfig};
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    StreamProtocol, autonat, connection_limits, dcutr, identify, identity, kad, mdns, ping, relay,
    request_response,
};

use crate::Config;
use crate::codec::{MSG_PROTOCOL, MsgCodec};
use crate::mbox::{MBOX_PROTOCOL, MboxCodec};

/// Our Kademlia protocol (ARCHITECTURE §5).
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/communitas/kad/1.0.0");
/// What identify announces as our protocol version.
pub const PROTOCOL_VERSION: &str = "/communitas/1.0.0";

/// How long a message request may take before the sender retries.
const MSG_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) limits: connection_limits::Behaviour,
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
}

impl Behaviour {
    pub(crate) fn new(
        key: &identity::Keypair,
        relay_client: relay::client::Behaviour,
        config: &Config,
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
        }

        let relay_server = config.server.then(|| {
            let relay_config = relay::Config {
                max_circuit_duration: Duration::from_secs(30 * 60),
                max_circuit_bytes: 1 << 30,
                ..relay::Config::default()
            };
            relay::Behaviour::new(peer_id, relay_config)
        });

        let mdns = if config.mdns {
            Some(mdns::tokio::Behaviour::new(mdns::Config::default(), peer_id)?)
        } else {
            None
        };

        let msg = request_response::Behaviour::with_codec(
            MsgCodec,
            [(MSG_PROTOCOL, request_response::ProtocolSupport::Full)],
            request_response::Config::default()
                .with_request_timeout(MSG_TIMEOUT)
                .with_max_concurrent_streams(config.max_concurrent_messages),
        );

        let mbox = request_response::Behaviour::with_codec(
            MboxCodec,
            [(MBOX_PROTOCOL, request_response::ProtocolSupport::Full)],
            request_response::Config::default()
                .with_request_timeout(Duration::from_secs(30))
                .with_max_concurrent_streams(config.max_concurrent_messages),
        );

        Ok(Self {
            mbox,
            limits: connection_limits::Behaviour::new(limits),
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
            ping: ping::Behaviour::new(ping::Config::new().with_interval(Duration::from_secs(15))),
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
        })
    }
}
