//! Contacts and our own name on the [`Handle`] (issue 23 item 3): add, rename,
//! verify and remove contacts; change our display name after setup.
//!
//! Each change is written to the store first, then told: the pinned-keys cache and
//! the presence actor follow a removal, the publisher a new name, and every client of
//! this node hears an [`Event::Contact`] or [`Event::Profile`], so a contact added
//! from the CLI shows in an open web UI at once.

use communitas_crypto::SafetyNumber;
use communitas_store::{Contact, IdentityRow};
use communitas_types::Address;

use crate::commands::presence::Command;
use crate::{ContactChange, Event, Handle, SendError, check_name, send};

impl Handle {
    fn contact_changed(&self, address: Address, change: ContactChange) {
        self.inner.emit(Event::Contact { address, change });
    }

    /// Every contact.
    pub async fn contacts(&self) -> Result<Vec<Contact>, communitas_store::Error> {
        self.inner.store.contacts().await
    }

    /// Adds a contact by address: looks its keys up in the DHT and pins them. Without
    /// `name`, the name it publishes is kept, if any.
    pub async fn add_contact(
        &self,
        address: Address,
        name: Option<String>,
    ) -> Result<Contact, SendError> {
        if let Some(name) = &name {
            check_name(name)?;
        }
        let contact = send::add_contact(&self.inner, address, name).await?;
        self.contact_changed(address, ContactChange::Added);
        Ok(contact)
    }

    /// Renames a contact; `None` clears the name (the address shows instead).
    pub async fn rename_contact(
        &self,
        address: Address,
        name: Option<String>,
    ) -> Result<Contact, SendError> {
        if let Some(name) = &name {
            check_name(name)?;
        }
        if !self.inner.store.rename_contact(address, name).await? {
            return Err(SendError::NotAContact(address));
        }
        let contact =
            self.inner.store.contact(address).await?.ok_or(SendError::NotAContact(address))?;
        self.contact_changed(address, ContactChange::Renamed);
        Ok(contact)
    }

    /// Removes a contact: its keys, name and verified mark go, its conversation stays
    /// (decision 0060). Messages already queued to it are still delivered; presence
    /// and typing stop. If it writes again, that is a message request.
    pub async fn remove_contact(&self, address: Address) -> Result<(), SendError> {
        if !self.inner.store.remove_contact(address).await? {
            return Err(SendError::NotAContact(address));
        }
        self.inner.pinned.forget(address);
        let _ = self.inner.presence.tell(Command::ContactRemoved(address)).await;
        self.contact_changed(address, ContactChange::Removed);
        Ok(())
    }

    /// The safety number with a contact; with `confirm`, marks the contact verified.
    pub async fn verify_contact(
        &self,
        address: Address,
        confirm: bool,
    ) -> Result<SafetyNumber, SendError> {
        let contact =
            self.inner.store.contact(address).await?.ok_or(SendError::NotAContact(address))?;
        if confirm {
            self.inner.store.set_verified(address, true).await?;
            self.contact_changed(address, ContactChange::Verified);
        }
        Ok(SafetyNumber::new(self.inner.secrets.identity.public(), &contact.identity))
    }

    /// Changes our display name (`None`: none), kept across restarts and published
    /// with the next identity record, which is made now. Contacts who added us keep
    /// the name they saved.
    pub async fn set_name(&self, name: Option<String>) -> Result<Option<String>, SendError> {
        if let Some(name) = &name {
            check_name(name)?;
        }
        let public = &self.inner.public;
        let row = IdentityRow {
            address: public.address,
            fingerprint: public.identity.fingerprint(),
            name: name.clone(),
            created_at: public.created_at,
        };
        self.inner.store.set_identity(row).await?;
        self.inner.name.send_replace(name.clone());
        // Full means a publish is due already; it reads the name then.
        let _ = self.inner.republish.try_send(());
        self.inner.emit(Event::Profile { name: name.clone() });
        Ok(name)
    }
}
