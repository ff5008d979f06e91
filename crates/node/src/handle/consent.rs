//! Message requests and blocking on the [`Handle`] (issue 15, decision 0052): list,
//! accept, decline and block requests; block and unblock any address.
//!
//! Each call writes the store first (one transaction), then tells the parts that
//! mirror it: the pinned-keys cache, the block mirror inbound reads, the presence
//! actor (a contact accepted is due our presence now; one blocked hears no more),
//! and the files actor (an accepted request's attachments are fetched now).

use communitas_crypto::SafetyNumber;
use communitas_store::{Block, Contact, Request};
use communitas_types::{Address, Timestamp};
use serde::Serialize;

use crate::commands::presence::Command;
use crate::{Handle, SendError, files};

/// A message request as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageRequest {
    /// The stranger's address.
    pub address: Address,
    /// When its first message arrived (our clock, unix ms).
    pub first_at: Timestamp,
    /// When its latest message arrived (our clock, unix ms).
    pub last_at: Timestamp,
    /// Messages kept.
    pub count: u32,
    /// Messages dropped for being over the per-request bound.
    pub dropped: u32,
    /// When it expires unless another message comes (unix ms).
    pub expires_at: Timestamp,
    /// Its first message's text (a file's caption).
    pub first_text: Option<String>,
    /// The first message carries a file.
    pub first_is_file: bool,
    /// The safety number with its keys: what to compare before accepting.
    pub safety_number: String,
    /// The display name the stranger's own signed record gives — what it calls
    /// itself, unverified (issue 23 item 3); `None` if none came with its messages.
    pub name: Option<String>,
}

impl Handle {
    fn request_view(&self, r: Request) -> MessageRequest {
        let safety = SafetyNumber::new(self.inner.secrets.identity.public(), &r.identity);
        let first = r.first.map(|m| m.message);
        let first_is_file =
            first.as_ref().is_some_and(|m| m.kind == communitas_crypto::Kind::File.to_u8());
        let first_text = first.map(|m| match files::manifest_of(&m.body) {
            Some(manifest) if first_is_file => manifest.caption.clone(),
            _ => String::from_utf8_lossy(&m.body).into_owned(),
        });
        MessageRequest {
            address: r.address,
            first_at: r.first_at,
            last_at: r.last_at,
            count: r.count,
            dropped: r.dropped,
            expires_at: r.expires_at,
            first_text,
            first_is_file,
            safety_number: safety.to_string(),
            name: r.name,
        }
    }

    /// Every message request, heard from most recently first.
    pub async fn requests(&self) -> Result<Vec<MessageRequest>, SendError> {
        let list = self.inner.store.requests().await?;
        Ok(list.into_iter().map(|r| self.request_view(r)).collect())
    }

    /// One message request.
    pub async fn request(&self, address: Address) -> Result<MessageRequest, SendError> {
        let r =
            self.inner.store.request(address).await?.ok_or(SendError::NoSuchRequest(address))?;
        Ok(self.request_view(r))
    }

    /// Accepts a request: its keys become a contact, its messages the conversation;
    /// presence starts now and its attachments are fetched.
    /// The contact keeps the name the stranger publishes with these keys: the one its
    /// messages' record gave, else one found within 3 s.
    pub async fn accept_request(&self, address: Address) -> Result<Contact, SendError> {
        // The name its record gave with its messages, if any, spares the lookup.
        let known = self.inner.store.request(address).await?.and_then(|r| r.name);
        let mut contact = self
            .inner
            .store
            .accept_request(address, Timestamp::now())
            .await?
            .ok_or(SendError::NoSuchRequest(address))?;
        crate::consent::accepted(&self.inner, &contact).await;
        let name = match known {
            Some(name) => Some(name),
            None => crate::send::published_name(&self.inner, address, &contact.identity).await,
        };
        if let Some(name) = name
            && self.inner.store.rename_contact(address, Some(name.clone())).await?
        {
            contact.name = Some(name);
        }
        self.inner.emit(crate::Event::Contact { address, change: crate::ContactChange::Added });
        Ok(contact)
    }

    /// Declines a request: it is deleted with its messages; with `block`, its address
    /// is blocked too.
    pub async fn decline_request(&self, address: Address, block: bool) -> Result<(), SendError> {
        if block {
            // Blocking deletes the request in the same transaction.
            let blocked = self.block(address).await?;
            if !blocked.request_deleted {
                return Err(SendError::NoSuchRequest(address));
            }
            return Ok(());
        }
        match self.inner.store.decline_request(address).await? {
            Some(_) => Ok(()),
            None => Err(SendError::NoSuchRequest(address)),
        }
    }

    /// Blocks `address` (a contact, a request or any other): what it sends is dropped
    /// from now on, and it hears nothing more from us. A request from it is deleted.
    pub async fn block(&self, address: Address) -> Result<communitas_store::Blocked, SendError> {
        if address == self.inner.public.address {
            return Err(SendError::OwnAddress(address));
        }
        let blocked = self.inner.store.block(address, Timestamp::now()).await?;
        self.inner.consent.block(&blocked.block);
        let _ = self.inner.presence.tell(Command::ContactRemoved(address)).await;
        Ok(blocked)
    }

    /// Unblocks `address`; a blocked contact is a contact again (presence resumes).
    pub async fn unblock(&self, address: Address) -> Result<(), SendError> {
        let fingerprint = self
            .inner
            .store
            .blocks()
            .await?
            .into_iter()
            .find(|b| b.address == address)
            .and_then(|b| b.fingerprint);
        if !self.inner.store.unblock(address).await? {
            return Err(SendError::NotBlocked(address));
        }
        self.inner.consent.unblock(address, fingerprint);
        if let Some(contact) = self.inner.store.contact(address).await? {
            crate::consent::accepted(&self.inner, &contact).await;
        }
        Ok(())
    }

    /// Every blocked address, newest first.
    pub async fn blocked(&self) -> Result<Vec<Block>, SendError> {
        Ok(self.inner.store.blocks().await?)
    }

    /// Whether `address` is blocked.
    pub fn is_blocked(&self, address: Address) -> bool {
        self.inner.consent.is_blocked(&address)
    }
}
