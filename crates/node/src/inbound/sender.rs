//! Who sent an envelope: a contact, a stranger (its message becomes a request), or a
//! blocked address; and the refusal of keys that claim a contact's address.
//!
//! The cheap answers come first: pinned contacts and open requests are found by the
//! fingerprint of the sender's keys. Only keys never seen cost a derivation of their
//! address (~0.3 s of Argon2 CPU, one at a time, at most a few waiting), and only
//! when their letter carries the first-contact proof of work that pays for it
//! (decision 0062); its result then decides:
//! a blocked address (its keys are remembered, so the next envelope is dropped
//! before any of this), a contact's address under other keys (an impostor: refused,
//! counted, shown), or a stranger.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use communitas_crypto::{Opened, PublicIdentity, derive_address};
use communitas_proto::inbound::{Busy, Rejected};
use communitas_proto::work;
use communitas_types::Address;
use tokio::sync::Semaphore;

use super::{Refusal, store_busy};
use crate::{Event, Inner};

/// Address derivations for unknown senders running at once (each ~0.3 s of CPU): one,
/// so that strangers never have more than one core (decision 0062).
static DERIVATIONS: Semaphore = Semaphore::const_new(1);
/// Envelopes of unknown senders waiting for a derivation; past this one more is told
/// `Busy` at once, so that strangers never hold many of the inbound tasks contacts
/// need (`Config::max_inbound`).
pub(crate) const MAX_WAITING: usize = 8;
static WAITING: AtomicUsize = AtomicUsize::new(0);

/// How often a first contact without a proof of work gets a derivation, for all such
/// senders together: at most ~3 % of one core for strangers who paid nothing.
pub(crate) const UNPAID_EVERY: Duration = Duration::from_secs(10);

/// The slow lane of unpaid first contacts (one per node).
#[derive(Default)]
pub(crate) struct Unpaid(std::sync::Mutex<Option<std::time::Instant>>);

impl Unpaid {
    /// Whether an unpaid derivation may run now (and, if so, the lane is taken).
    fn take(&self) -> bool {
        let mut last = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = std::time::Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < UNPAID_EVERY) {
            return false;
        }
        *last = Some(now);
        true
    }
}

/// One waiter counted in [`WAITING`] for as long as it lives.
struct Waiting;

impl Waiting {
    fn enter() -> Option<Self> {
        let before = WAITING.fetch_add(1, Ordering::AcqRel);
        if before >= MAX_WAITING {
            WAITING.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Waiting)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        WAITING.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What the sender of an envelope is to us.
pub(super) enum Sender {
    /// A contact, by its pinned address.
    Contact(Address),
    /// Neither a contact nor blocked: its address, derived or from its request.
    Stranger(Address),
    /// A blocked address (learned now from its derivation).
    Blocked,
}

/// Who sent `opened`, whose letter carried the first-contact proof `work` if any.
/// Envelopes from blocked keys already known never get here.
pub(super) async fn of(
    inner: &Inner,
    opened: &Opened,
    work: Option<u64>,
) -> Result<Sender, Refusal> {
    if let Some(found) = known(inner, &opened.sender).await? {
        return Ok(found);
    }
    // Keys never seen: their sender pays for the derivation with a proof of work; a
    // wrong proof is refused, and a letter without one (a version-1 envelope, from a
    // build without sessions) gets the slow lane: one derivation per
    // UNPAID_EVERY for all of them together.
    match work {
        Some(nonce) => {
            let own = inner.secrets.identity.public().fingerprint();
            let challenge = work::challenge(&own, &opened.sender.fingerprint(), opened.timestamp);
            if !work::check(&challenge, nonce, work::FIRST_CONTACT_BITS) {
                inner.metrics.first_contact("bad_work");
                return Err(Rejected::NoWork.into());
            }
        }
        None => {
            if !inner.unpaid.take() {
                inner.metrics.first_contact("unpaid_later");
                return Err(Busy::NewSenders.into());
            }
            inner.metrics.first_contact("unpaid");
        }
    }
    let Some(_waiting) = Waiting::enter() else {
        inner.metrics.first_contact("busy");
        return Err(Busy::NewSenders.into());
    };
    let permit = tokio::time::timeout(Duration::from_secs(5), DERIVATIONS.acquire())
        .await
        .map_err(|_| Busy::NewSenders)?
        .map_err(|_| Busy::ShuttingDown)?;
    inner.metrics.first_contact("derived");
    // Envelopes from one new sender come in bunches (a mailbox fetch accepts many at
    // once): whoever held the permit before us may have stored its request already.
    // Looking again saves a derivation per envelope (each ~0.27 s of CPU).
    if let Some(found) = known(inner, &opened.sender).await? {
        return Ok(found);
    }
    let address = derive(inner, &opened.sender).await?;
    // The permit is held until the outcome is stored by the caller's next step (a
    // request row), so the next holder usually finds it.
    drop(permit);
    let fingerprint = opened.sender.fingerprint();
    if inner.consent.is_blocked(&address) {
        inner.consent.learn_blocked_keys(fingerprint);
        if let Err(e) = inner.store.set_block_fingerprint(address, fingerprint).await {
            // The mirror has it for this run; the next run derives once more.
            tracing::warn!(error = %e, "cannot record a blocked address's keys");
        }
        return Ok(Sender::Blocked);
    }
    if inner.pinned.keys(&inner.store, address).await.map_err(store_busy)?.is_some() {
        // A contact's address, and not its keys (those were looked up first).
        return Err(impersonation(inner, address, &opened.sender));
    }
    Ok(Sender::Stranger(address))
}

/// A contact or an open request with these keys, without deriving anything.
async fn known(inner: &Inner, identity: &PublicIdentity) -> Result<Option<Sender>, Refusal> {
    if let Some(address) = inner.pinned.address(&inner.store, identity).await.map_err(store_busy)? {
        return Ok(Some(Sender::Contact(address)));
    }
    let request =
        inner.store.request_by_fingerprint(identity.fingerprint()).await.map_err(store_busy)?;
    Ok(request.map(|r| Sender::Stranger(r.address)))
}

/// Refuses `identity` for claiming `address`, which other keys hold: counted, shown
/// as a warning, and remembered so that its next envelope is refused at once.
pub(super) fn impersonation(inner: &Inner, address: Address, identity: &PublicIdentity) -> Refusal {
    // The address is in the event for the user; the log gets no contact id.
    tracing::warn!("other keys claim a pinned address: refused as an impostor");
    inner.metrics.impersonations.inc();
    inner.consent.impostor(identity.fingerprint());
    inner.emit(Event::Impersonation { address });
    Rejected::Impersonating.into()
}

/// The address of `identity`: Argon2 on a blocking thread (or a test's injected one).
async fn derive(inner: &Inner, identity: &PublicIdentity) -> Result<Address, Refusal> {
    #[cfg(any(test, feature = "test-hooks"))]
    if let Some(address) = inner.injected.address(identity) {
        return Ok(address);
    }
    let _ = inner; // Read only by the test hook above.
    let identity = identity.clone();
    tokio::task::spawn_blocking(move || derive_address(&identity))
        .await
        .map_err(|_| Refusal::Busy(Busy::ShuttingDown))
}
