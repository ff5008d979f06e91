//! This device's prekey secrets (issue 14, decisions 0053 and 0064): made on first
//! use, kept in the store (sealed at rest), rotated weekly by the proto `prekeys`
//! module, turned into the signed bundle the identity record carries, and the source
//! of the one-time prekeys left at our mailbox servers.
//!
//! [`Prekeys`] is their one owner: rotating (the publisher), minting one-time prekeys
//! (the mailbox fetcher) and deleting the ones a session used (after that session is
//! stored) each load, change and save the secrets under one lock, so that none undoes
//! another — a lost rotation would publish a prekey whose secret is gone, a lost mint
//! would hand out keys nobody can open. Accepting a session only reads them.

use communitas_crypto::handshake::InitMessage;
use communitas_crypto::prekey::{OneTimePrekey, PrekeyBundle};
use communitas_proto::Random;
use communitas_proto::session::prekeys::PrekeySecrets;
use communitas_types::Timestamp;

use crate::Inner;

/// Why the prekeys could not be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum PrekeysError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] communitas_store::Error),
    /// The stored bytes are not prekey secrets this build reads.
    #[error("stored prekey secrets do not decode: {0}")]
    Decode(#[from] communitas_types::codec::DecodeError),
}

/// The owner of the prekey secrets (see the module docs).
#[derive(Default)]
pub(crate) struct Prekeys(tokio::sync::Mutex<()>);

impl Prekeys {
    /// The current prekey bundle, signed by this device: loads the secrets (making and
    /// saving them the first time), rotates them when due, and saves them again if
    /// they changed, before the bundle is published.
    pub(crate) async fn current_bundle(
        &self,
        inner: &Inner,
        now: Timestamp,
        rng: &mut impl Random,
    ) -> Result<Option<PrekeyBundle>, PrekeysError> {
        let _one = self.0.lock().await;
        let (mut secrets, mut changed) = load(inner, now, rng).await?;
        changed |= secrets.rotate(now, rng);
        if changed {
            inner.store.save_prekey_secrets(secrets.to_bytes()).await?;
            tracing::debug!("prekey secrets made or rotated");
        }
        Ok(secrets.bundle(&inner.secrets.device))
    }

    /// `count` new one-time prekeys of each kind, signed by this device. Their
    /// secrets are saved before this returns: nothing is handed out that this device
    /// could not open.
    pub(crate) async fn mint(
        &self,
        inner: &Inner,
        count: usize,
        now: Timestamp,
        rng: &mut impl Random,
    ) -> Result<Vec<OneTimePrekey>, PrekeysError> {
        let _one = self.0.lock().await;
        let (mut secrets, _) = load(inner, now, rng).await?;
        let minted = secrets.mint_one_time(&inner.secrets.device, count, rng);
        inner.store.save_prekey_secrets(secrets.to_bytes()).await?;
        Ok(minted)
    }

    /// Deletes the one-time prekey secrets `init` used, once the session it started
    /// is stored (so a crash before that leaves the first message still openable).
    /// True if any was held.
    pub(crate) async fn consume(
        &self,
        inner: &Inner,
        init: &InitMessage,
    ) -> Result<bool, PrekeysError> {
        let _one = self.0.lock().await;
        let Some(bytes) = inner.store.prekey_secrets().await? else { return Ok(false) };
        let mut secrets = PrekeySecrets::from_bytes(&bytes)?;
        let before = secrets.one_time_left();
        secrets.consume(init);
        let used = secrets.one_time_left() != before;
        if used {
            inner.store.save_prekey_secrets(secrets.to_bytes()).await?;
        }
        Ok(used)
    }
}

/// The stored secrets, or new ones (`true`: not saved yet).
async fn load(
    inner: &Inner,
    now: Timestamp,
    rng: &mut impl Random,
) -> Result<(PrekeySecrets, bool), PrekeysError> {
    Ok(match inner.store.prekey_secrets().await? {
        Some(bytes) => (PrekeySecrets::from_bytes(&bytes)?, false),
        None => (PrekeySecrets::new(now, rng), true),
    })
}
