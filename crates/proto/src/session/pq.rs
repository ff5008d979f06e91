//! The post-quantum ratchet step (decision 0051): now and then one side *offers* a
//! fresh ML-KEM-768 encapsulation key in the headers of a sending chain; the other
//! *answers* in the headers of its next sending chain with a ciphertext to it; both
//! mix the shared secret into the root KDF of that chain. A thief who stole the
//! state and breaks X25519 (a quantum attacker) still lacks that secret, so the
//! session heals against it too.
//!
//! Cadence: a side offers when no offer of either side is open and either
//! [`PQ_EVERY_CHAINS`] of its sending chains have started since the last
//! post-quantum step or [`PQ_EVERY`] has passed. The first [`OFFER_MESSAGES`]
//! headers of an offering chain carry the key (1,184 bytes) and every header of an
//! answering chain the ciphertext (1,088 bytes): any one message of an answering
//! chain is enough to follow it, since its keys depend on the answer. An offer stays
//! open — repeated in each new chain — until its answer arrives.
//!
//! Why this works with loss and reordering: chains are strictly sequential (a side
//! starts a new chain only after it has read a message of the other side's last
//! chain), so the answer is always to the one open offer.

use std::time::Duration;

use communitas_crypto::mlkem::{CT_LEN, EK_LEN, KemPublic, KemSecret, SS_LEN};
use communitas_types::Timestamp;
use zeroize::Zeroizing;

use super::DecryptError;
use crate::Random;

/// A side offers a post-quantum step after this many of its sending chains without
/// one. In a conversation taking turns every message starts a chain, so this is
/// one step per ~64 messages: ~35 bytes a message on average (decision 0051).
pub const PQ_EVERY_CHAINS: u32 = 32;
/// ... or after this long without one, whichever comes first.
pub const PQ_EVERY: Duration = Duration::from_secs(24 * 3600);
/// An offer rides the first this-many messages of its chain, not a whole long
/// monologue: a receiver that sees none of them (all lost) never answers, and the
/// offer, still open, rides the next chain.
pub const OFFER_MESSAGES: u32 = 8;

/// What a post-quantum step's fields in one sending chain are.
pub(crate) type ChainFields =
    (Option<Box<[u8; EK_LEN]>>, Option<Box<[u8; CT_LEN]>>, Option<Zeroizing<[u8; SS_LEN]>>);

/// The post-quantum half of the state.
#[derive(Clone, Debug)]
pub(crate) struct Pq {
    /// Our open offer's secret.
    pub(crate) own_offer: Option<KemSecret>,
    /// The peer's offer we will answer in our next sending chain.
    pub(crate) peer_offer: Option<KemPublic>,
    /// Our sending chains since the last post-quantum step.
    pub(crate) chains_since: u32,
    /// When the last post-quantum step (or the handshake) happened.
    pub(crate) last_at: Timestamp,
}

impl Pq {
    /// The state right after the handshake, whose ML-KEM secret counts as a step.
    pub(crate) fn new(now: Timestamp) -> Self {
        Self { own_offer: None, peer_offer: None, chains_since: 0, last_at: now }
    }

    fn completed(&mut self, now: Timestamp) {
        self.chains_since = 0;
        self.last_at = now;
    }

    fn due(&self, now: Timestamp) -> bool {
        self.chains_since >= PQ_EVERY_CHAINS || now >= self.last_at.saturating_add(PQ_EVERY)
    }

    /// A sending chain starts: answer the peer's offer, or repeat or make ours.
    /// Returns the chain's key, ciphertext, and the secret to mix into its root KDF.
    pub(crate) fn on_send_step(&mut self, now: Timestamp, rng: &mut impl Random) -> ChainFields {
        if let Some(peer) = self.peer_offer.take() {
            let (ct, ss) = peer.encapsulate(&rng.bytes());
            self.completed(now);
            return (None, Some(ct), Some(ss));
        }
        self.chains_since = self.chains_since.saturating_add(1);
        if self.own_offer.is_none() && self.due(now) {
            self.own_offer = Some(KemSecret::from_seed(rng.bytes()));
        }
        let ek = self.own_offer.as_ref().map(|sk| Box::new(*sk.public().as_bytes()));
        (ek, None, None)
    }

    /// A receiving chain starts with these header fields: decapsulate an answer,
    /// keep an offer. Returns the secret to mix into its root KDF.
    pub(crate) fn on_receive_step(
        &mut self,
        ct: Option<&[u8; CT_LEN]>,
        offer: Option<KemPublic>,
        now: Timestamp,
    ) -> Result<Option<Zeroizing<[u8; SS_LEN]>>, DecryptError> {
        let ss = match (ct, &self.own_offer) {
            (None, _) => None,
            (Some(ct), Some(sk)) => Some(sk.decapsulate(ct)),
            (Some(_), None) => return Err(DecryptError::UnexpectedKemCiphertext),
        };
        if ss.is_some() {
            self.own_offer = None;
            self.completed(now);
        }
        if offer.is_some() {
            self.peer_offer = offer;
        }
        Ok(ss)
    }
}
