//! Read state (issue 6): the user reads a conversation, and — unless they turned
//! read receipts off — the sender hears of it and shows its messages `read`.
//!
//! A read receipt is an ordinary sealed `Receipt` message (type 2, `receipts`), sent
//! through the outbox like a delivery receipt, so it survives restarts and may go
//! through a mailbox. The setting lives in the store (`read_receipts`, on by default).

use communitas_types::Address;
use serde::Serialize;

use crate::{Handle, SendError};

const SETTING: &str = "read_receipts";

/// The user's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Settings {
    /// Send read receipts (on by default).
    pub read_receipts: bool,
}

impl Handle {
    /// The user's settings.
    pub async fn settings(&self) -> Result<Settings, SendError> {
        let read_receipts = self.inner.store.setting(SETTING).await?.as_deref() != Some("off");
        Ok(Settings { read_receipts })
    }

    /// Turns read receipts on or off (kept across restarts).
    pub async fn set_read_receipts(&self, on: bool) -> Result<Settings, SendError> {
        let value = if on { "on" } else { "off" };
        self.inner.store.set_setting(SETTING, value.to_owned()).await?;
        Ok(Settings { read_receipts: on })
    }

    /// Marks every message from `peer` read; tells `peer` unless read receipts are
    /// off, or `peer` is a message request or blocked: read receipts go to accepted
    /// contacts only (issue 15). Returns how many messages were newly read.
    pub async fn mark_read(&self, peer: Address) -> Result<usize, SendError> {
        let keys = match self.inner.pinned.keys(&self.inner.store, peer).await? {
            Some(keys) => Some(keys),
            None if self.inner.store.request(peer).await?.is_some() => None,
            None => return Err(SendError::NotAContact(peer)),
        };
        let ids = self.inner.store.read_incoming(peer).await?;
        if !ids.is_empty() {
            // Every client of this node clears its unread count (issue 23 item 5).
            self.inner.emit(crate::Event::Read { peer, count: ids.len() });
        }
        let tell = keys.filter(|_| !self.inner.consent.is_blocked(&peer));
        if let Some(keys) = tell
            && !ids.is_empty()
            && self.settings().await?.read_receipts
        {
            let kind = communitas_proto::receipts::Kind::Read;
            if let Err(e) = crate::receipts::send_kind(&self.inner, peer, &keys, kind, &ids).await {
                // The messages are read here either way; the sender shows them unread.
                tracing::warn!(error = %e, "cannot queue a read receipt");
                return Err(SendError::ShuttingDown);
            }
        }
        Ok(ids.len())
    }
}
