//! Where a contact's devices are: the one copy of "identity record → devices to dial",
//! and of resolving it through the DHT with the pinned keys (ARCHITECTURE §3, §6).
//!
//! The outbox, presence and file fetching all dial a contact's devices. They share
//! this resolution so that one rule holds everywhere: only a record carrying the keys
//! we pinned for that address is believed, and addresses that do not parse are
//! skipped rather than failing the whole record.

use communitas_crypto::{IdentityRecord, PublicIdentity};
use communitas_net::libp2p::{Multiaddr, PeerId};
use communitas_types::Address;

use crate::Inner;

/// One device and the addresses it published.
pub(crate) type Device = (PeerId, Vec<Multiaddr>);

/// A contact's devices, in the order its record lists them.
pub(crate) type Devices = Vec<Device>;

/// The devices a record lists, with the addresses that parse.
pub(crate) fn of(record: &IdentityRecord) -> Devices {
    record
        .devices
        .iter()
        .map(|d| {
            let addrs = d.addrs.iter().filter_map(|a| Multiaddr::try_from(a.clone()).ok());
            (d.peer_id, addrs.collect())
        })
        .collect()
}

/// Why a contact's devices could not be found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ResolveError {
    /// The DHT lookup failed.
    #[error("lookup failed: {0}")]
    Lookup(#[from] communitas_net::Error),
    /// Records exist, but none carries the keys pinned for the address.
    #[error("the address's published keys differ from the pinned keys")]
    KeysDiffer,
}

/// Looks `address` up and returns the devices of the record that carries `pinned`
/// (any record, when nothing is pinned yet).
pub(crate) async fn resolve(
    inner: &Inner,
    address: Address,
    pinned: Option<&PublicIdentity>,
) -> Result<Devices, ResolveError> {
    let records = inner.net.resolve(address).await?;
    let record = records
        .iter()
        .find(|r| pinned.is_none_or(|keys| *keys == r.identity))
        .ok_or(ResolveError::KeysDiffer)?;
    // Its prekey bundle, and one-time prekeys, for the next letter's session.
    if pinned.is_some() {
        inner.sessions.learn(address, record);
        inner.sessions.claim_one_time(address, &record.identity);
    }
    Ok(of(record))
}
