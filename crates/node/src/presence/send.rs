//! One presence or typing send, as a bounded child task of the presence driver: the
//! recipient's pinned keys, its devices (looked up when the machine had none fresh),
//! one sealed letter, handed to the first device that takes it.

use std::sync::Arc;

use communitas_crypto::{Kind, PublicIdentity, SealError};
use communitas_net::Receipt;
use communitas_proto::presence::Update;
use communitas_types::{Address, Timestamp};

use crate::Inner;
use crate::devices::Devices;

/// How a send ended, for `Input::SendDone`.
pub(super) struct Done {
    pub(super) to: Address,
    pub(super) kind: Update,
    pub(super) delivered: bool,
    /// The devices tried, when worth keeping: `None` if they could not be found or
    /// none answered, so that the next send looks them up again.
    pub(super) devices: Option<Devices>,
}

fn kind(update: Update) -> Kind {
    match update {
        Update::Presence => Kind::Presence,
        Update::Typing => Kind::Typing,
    }
}

/// Seals `body` to `to` and hands it to its first device that takes it.
pub(super) async fn run(
    inner: Arc<Inner>,
    to: Address,
    update: Update,
    body: Vec<u8>,
    devices: Option<Devices>,
) -> Done {
    let done = |delivered, devices| Done { to, kind: update, delivered, devices };
    let keys = match inner.pinned.keys(&inner.store, to).await {
        Ok(Some(keys)) => keys,
        Ok(None) => {
            tracing::debug!("presence not sent: not a contact");
            return done(false, None);
        }
        Err(e) => {
            tracing::debug!(error = %e, "presence not sent: cannot read the contact");
            return done(false, None);
        }
    };
    let devices = match devices {
        Some(d) => d,
        None => match crate::devices::resolve(&inner, to, Some(&keys)).await {
            Ok(d) => d,
            Err(e) => {
                tracing::debug!(error = %e, "presence not delivered: no devices");
                return done(false, None);
            }
        },
    };
    let envelope = match seal(&inner, to, &keys, kind(update), &body).await {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "cannot seal a presence update");
            return done(false, Some(devices));
        }
    };
    for (peer, addrs) in &devices {
        match inner.net.send(*peer, addrs.clone(), envelope.clone()).await {
            Ok(Receipt::Delivered) => {
                inner.familiar.learn(*peer);
                return done(true, Some(devices));
            }
            Ok(other) => tracing::debug!(receipt = ?other, "presence refused by a device"),
            Err(e) => tracing::debug!(error = %e, "presence not delivered to a device"),
        }
    }
    done(false, None)
}

/// Seals a presence or typing letter: with the contact's session when there is one
/// (its state saved before the letter leaves), as version 1 otherwise.
async fn seal(
    inner: &Inner,
    to: Address,
    keys: &PublicIdentity,
    kind: Kind,
    body: &[u8],
) -> Result<Vec<u8>, SealError> {
    let id = crate::seal::fresh_id()?;
    let now = Timestamp::now();
    if let Some(sealed) =
        inner.sessions.seal(inner, to, keys, crate::seal::parts(id, now, kind, body), None).await
    {
        let envelope = sealed.envelope.clone();
        match sealed.commit(inner, |update| inner.store.submit_session(update)).await {
            Ok(()) => {
                if let Some(direct) =
                    communitas_proto::session::letter::direct_from_mailbox(&envelope)
                {
                    return Ok(direct);
                }
            }
            // Not sent with a state we could not keep; version 1 says the same.
            Err(e) => tracing::debug!(error = %e, "cannot save the session; presence as version 1"),
        }
    }
    crate::seal::letter(inner, keys, id, now, kind, body)
}
