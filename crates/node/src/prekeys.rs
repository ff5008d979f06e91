//! This device's prekey secrets (issue 14, decision 0053): made on first use, kept in
//! the store (sealed at rest), rotated weekly by the proto `prekeys` module, and turned
//! into the signed bundle the identity record carries.
//!
//! Only the publisher touches them in this phase. Accepting sessions (which consumes
//! one-time prekeys) will commit them with the session it opened, through the store's
//! `insert_incoming_with_session`; the two must then share one owner.

use communitas_crypto::prekey::PrekeyBundle;
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

/// The current prekey bundle, signed by this device: loads the secrets (making and
/// saving them the first time), rotates them when due, and saves them again if they
/// changed, before the bundle is published.
pub(crate) async fn current_bundle(
    inner: &Inner,
    now: Timestamp,
    rng: &mut impl Random,
) -> Result<Option<PrekeyBundle>, PrekeysError> {
    let (mut secrets, mut changed) = match inner.store.prekey_secrets().await? {
        Some(bytes) => (PrekeySecrets::from_bytes(&bytes)?, false),
        None => (PrekeySecrets::new(now, rng), true),
    };
    changed |= secrets.rotate(now, rng);
    if changed {
        inner.store.save_prekey_secrets(secrets.to_bytes()).await?;
        tracing::debug!("prekey secrets made or rotated");
    }
    Ok(secrets.bundle(&inner.secrets.device))
}
