//! Sealing one letter for a contact: the one copy of "fresh id, now, seal, bytes"
//! that messages, receipts, presence and typing share.

use communitas_crypto::{Envelope, Kind, Letter, PublicIdentity, SealError};
use communitas_types::{MessageId, Timestamp};

use crate::Inner;

/// Seals `body` as a letter of `kind` with id `id` and time `now`, from our identity
/// to `to`; returns the envelope's bytes.
pub(crate) fn letter(
    inner: &Inner,
    to: &PublicIdentity,
    id: MessageId,
    now: Timestamp,
    kind: Kind,
    body: &[u8],
) -> Result<Vec<u8>, SealError> {
    let letter = Letter { message_id: id, timestamp: now, kind, body };
    let envelope = Envelope::seal(&inner.secrets.identity, to, letter)?.to_bytes();
    inner.metrics.sealed_v1.inc();
    Ok(envelope)
}

/// The fields of a letter, for a session to seal.
pub(crate) fn parts(id: MessageId, now: Timestamp, kind: Kind, body: &[u8]) -> Letter<'_> {
    Letter { message_id: id, timestamp: now, kind, body }
}

/// A fresh random message id.
pub(crate) fn fresh_id() -> Result<MessageId, SealError> {
    Ok(MessageId::from_bytes(communitas_crypto::random::bytes()?))
}
