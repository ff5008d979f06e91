//! The presence and typing part of the [`Handle`]: questions and commands for the
//! presence actor (`crate::presence`), through its bounded inbox.

use communitas_types::Address;
use tokio::sync::oneshot;

use crate::commands::presence::Command;
use crate::presence::{Presence, SETTING, Status};
use crate::{Handle, SendError};

impl Handle {
    async fn ask_presence<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, SendError> {
        self.inner.presence.ask(make).await.map_err(|_| SendError::ShuttingDown)
    }

    /// A contact we talk to: presence and typing go to accepted, unblocked contacts
    /// only (issue 15 item 5).
    async fn require_contact(&self, address: Address) -> Result<(), SendError> {
        if self.inner.consent.is_blocked(&address) {
            return Err(SendError::Blocked(address));
        }
        match self.inner.pinned.keys(&self.inner.store, address).await? {
            Some(_) => Ok(()),
            None => Err(SendError::NotAContact(address)),
        }
    }

    /// Sets our own status (kept across restarts) and tells every contact.
    pub async fn set_presence(&self, status: Status) -> Result<(), SendError> {
        self.inner.store.set_setting(SETTING, status.as_str().to_owned()).await?;
        self.ask_presence(|reply| Command::Set { status, reply }).await
    }

    /// A contact's presence.
    pub async fn presence(&self, address: Address) -> Result<Presence, SendError> {
        self.require_contact(address).await?;
        self.ask_presence(|reply| Command::Get { address, reply }).await
    }

    /// Our own status and every contact's presence.
    pub async fn presence_all(&self) -> Result<(Status, Vec<(Address, Presence)>), SendError> {
        self.ask_presence(|reply| Command::All { reply }).await
    }

    /// Tells a contact that we are typing to them (or stopped). Best effort: not
    /// queued, not retried; repeated "typing" within 3 s is sent once.
    pub async fn typing(&self, to: Address, typing: bool) -> Result<(), SendError> {
        self.require_contact(to).await?;
        let typing = Command::Typing { to, typing };
        self.inner.presence.tell(typing).await.map_err(|_| SendError::ShuttingDown)
    }
}
