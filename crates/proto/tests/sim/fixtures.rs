//! What simulated nodes are made of: identities and addresses from their index,
//! letters sealed with seeded randomness (real envelopes, replayable), peer bytes
//! and DHT keys.
//!
//! Addresses are not derived (that is Argon2, seconds per thousand): node `i`'s
//! address is simply `i` in binary, and [`node_of`] reads it back.

use std::sync::OnceLock;

use communitas_crypto::{Envelope, Identity, Kind, Letter};
use communitas_proto::Random;
use communitas_types::{Address, MailboxId, MessageId, Timestamp};

use super::world::NodeId;

/// The binary form of a node's peer id (what the fetch signature covers).
impl From<NodeId> for Vec<u8> {
    fn from(node: NodeId) -> Self {
        [b"sim-peer-".as_slice(), &node.0.to_be_bytes()].concat()
    }
}

/// Node `i`'s identity (its seeds come from `i`, so every run has the same keys).
/// Built once per node per test process: key generation is the costly part.
pub fn identity(node: NodeId) -> &'static Identity {
    static IDS: OnceLock<Vec<Identity>> = OnceLock::new();
    IDS.get_or_init(|| {
        (0..64u16)
            .map(|i| {
                let seed = |tag: u8| {
                    let mut s = [tag; 32];
                    s[..2].copy_from_slice(&i.to_be_bytes());
                    s
                };
                Identity::from_seed_bytes(seed(1), seed(2))
            })
            .collect()
    })
    .get(node.index())
    .expect("at most 64 nodes have identities")
}

/// Node `i`'s mailbox.
pub fn mailbox(node: NodeId) -> MailboxId {
    identity(node).public().mailbox_id()
}

/// Node `i`'s address.
pub fn address(node: NodeId) -> Address {
    let [a, b] = node.0.to_be_bytes();
    Address::from_bytes([0, 0, 0, 0, a, b])
}

/// The node an address of [`address`] names.
pub fn node_of(address: Address) -> NodeId {
    let bytes = address.to_bytes();
    NodeId(u16::from_be_bytes([bytes[4], bytes[5]]))
}

/// A fresh message id drawn from `rng`.
pub fn message_id(rng: &mut impl Random) -> MessageId {
    MessageId::from_bytes(rng.bytes())
}

/// A real envelope from `from` to `to`, sealed with randomness from `rng`.
pub fn seal(
    from: NodeId,
    to: NodeId,
    id: MessageId,
    at: Timestamp,
    kind: Kind,
    body: &[u8],
    rng: &mut impl Random,
) -> Vec<u8> {
    let letter = Letter { message_id: id, timestamp: at, kind, body };
    Envelope::seal_deterministic(
        identity(from),
        identity(to).public(),
        letter,
        &rng.bytes(),
        rng.bytes(),
    )
    .expect("a short letter seals")
    .to_bytes()
}

/// A 32-byte DHT key for anything (the simulator's stand-in for Kademlia's hashing).
pub fn dht_key(bytes: &[u8]) -> [u8; 32] {
    *blake3::hash(bytes).as_bytes()
}

/// A node's DHT key.
pub fn node_key(node: NodeId) -> [u8; 32] {
    dht_key(&Vec::<u8>::from(node))
}

/// The `n` of `servers` nearest to `mailbox` by XOR distance of DHT keys.
pub fn closest(mailbox: MailboxId, servers: &[NodeId], n: usize) -> Vec<NodeId> {
    let target = dht_key(mailbox.as_bytes());
    let mut ranked: Vec<([u8; 32], NodeId)> = servers
        .iter()
        .map(|s| {
            let key = node_key(*s);
            let mut d = [0u8; 32];
            for (o, (a, b)) in d.iter_mut().zip(target.iter().zip(key.iter())) {
                *o = a ^ b;
            }
            (d, *s)
        })
        .collect();
    ranked.sort();
    ranked.into_iter().take(n).map(|(_, s)| s).collect()
}
