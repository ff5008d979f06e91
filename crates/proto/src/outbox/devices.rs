//! Where each recipient's devices were last seen: the outbox's bounded device cache.
//!
//! It answers two questions. "May this attempt skip the lookup?" — yes, with the
//! devices a lookup or a delivery confirmed less than [`DEVICE_TTL`] ago and that no
//! failed attempt has cast doubt on since. "A device just connected: whose is it?" —
//! the peer map, which keeps every device of the last list seen for an address even
//! after that list stopped being trusted for dialling, so that a recipient coming
//! back online makes its messages due at once.
//!
//! Bounds: at most [`MAX_RECIPIENTS`] addresses (the one fetched longest ago goes
//! first) and [`MAX_DEVICES`] devices each, so the peer map holds at most their
//! product; a peer appears in it only while some kept list names it.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

use communitas_types::{Address, Timestamp};

/// A recipient's devices, in the order its identity record lists them: each device's
/// peer and what the driver needs to dial it (its addresses).
pub type Devices<P, D> = Vec<(P, D)>;

/// How long a resolved device list is trusted before a fresh lookup (ARCHITECTURE §6).
pub const DEVICE_TTL: Duration = Duration::from_secs(600);

/// Most recipients whose devices are kept.
pub const MAX_RECIPIENTS: usize = 1024;

/// Most devices kept per recipient: as many as an identity record may list.
pub const MAX_DEVICES: usize = communitas_crypto::record::MAX_DEVICES;

#[derive(Debug, Clone)]
struct Known<P, D> {
    devices: Devices<P, D>,
    fetched: Timestamp,
    /// False once an attempt failed to reach any of them: the next one looks up again.
    trusted: bool,
}

/// The cache: device lists by address, and the address of every device listed.
#[derive(Debug, Clone)]
pub(super) struct Cache<P, D> {
    known: HashMap<Address, Known<P, D>>,
    peers: HashMap<P, Address>,
}

impl<P, D> Default for Cache<P, D> {
    fn default() -> Self {
        Self { known: HashMap::new(), peers: HashMap::new() }
    }
}

impl<P: Copy + Eq + Hash, D: Clone> Cache<P, D> {
    /// A lookup or a delivery found `devices` for `address`: trust them for a while.
    pub(super) fn remember(&mut self, address: Address, devices: Devices<P, D>, now: Timestamp) {
        self.put(address, devices, now, true);
    }

    /// An attempt to `address` reached none of its devices. What it looked up (if it
    /// looked up) still names the devices to watch for, but no longer to dial blind.
    pub(super) fn unreachable(
        &mut self,
        address: Address,
        looked_up: Option<Devices<P, D>>,
        now: Timestamp,
    ) {
        match looked_up {
            Some(devices) => self.put(address, devices, now, false),
            None => {
                if let Some(known) = self.known.get_mut(&address) {
                    known.trusted = false;
                }
            }
        }
    }

    /// The devices an attempt to `address` may use without a lookup.
    pub(super) fn trusted(&self, address: Address, now: Timestamp) -> Option<Devices<P, D>> {
        self.known
            .get(&address)
            .filter(|k| k.trusted && now < k.fetched.saturating_add(DEVICE_TTL))
            .map(|k| k.devices.clone())
    }

    /// Whose device `peer` is, as far as the kept lists say.
    pub(super) fn address_of(&self, peer: &P) -> Option<Address> {
        self.peers.get(peer).copied()
    }

    fn put(&mut self, address: Address, mut devices: Devices<P, D>, now: Timestamp, trusted: bool) {
        devices.truncate(MAX_DEVICES);
        if let Some(old) = self.known.remove(&address) {
            self.unlist(address, &old.devices);
        } else if self.known.len() >= MAX_RECIPIENTS {
            self.evict_oldest();
        }
        for (peer, _) in &devices {
            self.peers.insert(*peer, address);
        }
        self.known.insert(address, Known { devices, fetched: now, trusted });
    }

    fn evict_oldest(&mut self) {
        let oldest = self.known.iter().min_by_key(|(_, k)| k.fetched).map(|(a, _)| *a);
        if let Some(address) = oldest
            && let Some(old) = self.known.remove(&address)
        {
            self.unlist(address, &old.devices);
        }
    }

    /// Drops the peers of `address`'s old list that still point to it.
    fn unlist(&mut self, address: Address, devices: &Devices<P, D>) {
        for (peer, _) in devices {
            if self.peers.get(peer) == Some(&address) {
                self.peers.remove(peer);
            }
        }
    }

    #[cfg(test)]
    pub(super) fn sizes(&self) -> (usize, usize) {
        (self.known.len(), self.peers.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(n: u32) -> Address {
        let b = n.to_be_bytes();
        Address::from_bytes([0, 0, b[0], b[1], b[2], b[3]])
    }

    #[test]
    fn trusted_for_600_seconds_and_not_after_a_failure() {
        let mut cache: Cache<u32, ()> = Cache::default();
        let t0 = Timestamp::from_millis(1_000_000);
        cache.remember(addr(1), vec![(7, ())], t0);
        let just_before = t0.saturating_add(DEVICE_TTL - Duration::from_millis(1));
        assert_eq!(cache.trusted(addr(1), just_before), Some(vec![(7, ())]));
        assert_eq!(cache.trusted(addr(1), t0.saturating_add(DEVICE_TTL)), None);
        cache.unreachable(addr(1), None, t0);
        assert_eq!(cache.trusted(addr(1), t0), None);
        assert_eq!(cache.address_of(&7), Some(addr(1)), "still watched for");
    }

    #[test]
    fn a_new_list_replaces_the_old_peers() {
        let mut cache: Cache<u32, ()> = Cache::default();
        let t0 = Timestamp::from_millis(5);
        cache.remember(addr(1), vec![(7, ()), (8, ())], t0);
        cache.unreachable(addr(1), Some(vec![(9, ())]), t0);
        assert_eq!(cache.address_of(&7), None);
        assert_eq!(cache.address_of(&9), Some(addr(1)));
        assert_eq!(cache.trusted(addr(1), t0), None);
        // A device that moved to another address is not taken from it.
        cache.remember(addr(2), vec![(9, ())], t0);
        cache.remember(addr(1), vec![(10, ())], t0);
        assert_eq!(cache.address_of(&9), Some(addr(2)));
    }

    #[test]
    fn bounded_in_recipients_and_devices() {
        let mut cache: Cache<u32, ()> = Cache::default();
        for n in 0..(MAX_RECIPIENTS as u32 + 50) {
            let devices = (0..10).map(|d| (n * 100 + d, ())).collect();
            cache.remember(addr(n), devices, Timestamp::from_millis(u64::from(n)));
        }
        let (recipients, peers) = cache.sizes();
        assert_eq!(recipients, MAX_RECIPIENTS);
        assert_eq!(peers, MAX_RECIPIENTS * MAX_DEVICES);
        // The oldest went first.
        assert_eq!(cache.address_of(&0), None);
        let last = MAX_RECIPIENTS as u32 + 49;
        assert_eq!(cache.address_of(&(last * 100)), Some(addr(last)));
        assert_eq!(cache.address_of(&(last * 100 + MAX_DEVICES as u32)), None, "cut to the bound");
    }
}
