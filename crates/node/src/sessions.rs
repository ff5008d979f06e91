//! Sessions in the node (issue 14, decisions 0050, 0051, 0053): the driver around the
//! proto [`Session`] machine — which session seals a letter, which one opens an
//! envelope, and the rule that a session's new state is committed in the same
//! transaction as the message that moved it.
//!
//! One [`Slot`] per peer device (the store's `sessions` row) holds the session we
//! send on (`current`) and the one before it (`previous`), which still opens late
//! messages: of a handshake the peer replaced (it lost its state and started again),
//! or of the losing side of a simultaneous start. Each slot has an async lock, held
//! from reading the session to committing its next state, so two messages never
//! advance the same session from the same state; different devices never wait for
//! each other (a stranger's slow first message delays only its own slot).
//!
//! ```text
//! seal:  lock slot ─ encrypt on a copy ─ caller commits copy + message (one transaction) ─ slot = copy
//! open:  form ─ peek ─┬ initial, known handshake id ─ lock its slot ─ decrypt on a copy
//!                     ├ initial, new ─ prekeys ─ accept ─ lock slot ─ install (simultaneous-start rule)
//!                     └ message ─ the connection's device, or every slot (mailbox) ─ decrypt on a copy
//!        ─ letter ─ who (the intro's record, or the slot's contact) ─ caller commits ─ slot = copy
//! ```
//!
//! Sealing never blocks on the network: a contact gets a session once its record
//! (with a prekey bundle) has been seen — by adding it, or by the outbox's lookups —
//! and until then its messages are sealed as version-1 envelopes, which every build
//! opens.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use communitas_crypto::prekey::{OneTimePrekey, PrekeyBundle};
use communitas_crypto::{IdentityRecord, Kind, Letter, Opened, PublicIdentity};
use communitas_net::libp2p::PeerId;
use communitas_net::libp2p::identity::{PublicKey, ed25519};
use communitas_proto::inbound::{Rejected, SessionRejected};
use communitas_proto::order::Stamp;
use communitas_proto::session::letter::{self, Form, SessionLetter};
use communitas_proto::session::prekeys::PrekeySecrets;
use communitas_proto::session::{DecryptError, Peeked, Session, peek};
use communitas_proto::work;
use communitas_store::{Committing, SessionUpdate, StoredSession};
use communitas_types::codec::{DecodeError, Reader, Writer};
use communitas_types::{Address, Fingerprint, Timestamp};
use tokio::sync::OwnedMutexGuard;
use zeroize::Zeroizing;

use crate::Inner;

/// A peer device: the Ed25519 key its PeerId wraps.
type Device = [u8; 32];

/// The format version of a stored [`Slot`].
const SLOT_VERSION: u8 = 1;
const HAS_ADDRESS: u8 = 1;
const HAS_CURRENT: u8 = 2;
const HAS_PREVIOUS: u8 = 4;
/// Longest stored slot (two sessions well under 64 KiB each).
const MAX_SLOT_LEN: usize = 256 * 1024;

/// What the node keeps per peer device.
#[derive(Clone, Default)]
struct Slot {
    /// The contact (or request) the device belongs to, once known.
    address: Option<Address>,
    /// The session we send on.
    current: Option<Session>,
    /// The session before it, kept to open late messages.
    previous: Option<Session>,
    /// Commits of this slot queued so far (the store row's generation once they are
    /// done); not part of the stored bytes.
    generation: u64,
}

impl Slot {
    fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let current = self.current.as_ref().map(Session::to_bytes);
        let previous = self.previous.as_ref().map(Session::to_bytes);
        let mut flags = 0;
        if self.address.is_some() {
            flags |= HAS_ADDRESS;
        }
        if current.is_some() {
            flags |= HAS_CURRENT;
        }
        if previous.is_some() {
            flags |= HAS_PREVIOUS;
        }
        let mut w = Writer::with_capacity(1024);
        w.u8(SLOT_VERSION).u8(flags);
        if let Some(address) = self.address {
            w.raw(&address.to_bytes());
        }
        for state in [&current, &previous].into_iter().flatten() {
            w.u32(u32::try_from(state.len()).unwrap_or(u32::MAX)).raw(state);
        }
        Zeroizing::new(w.into_vec())
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, MAX_SLOT_LEN)?;
        let version = r.u8("slot version")?;
        if version != SLOT_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                what: "session slot",
                got: version,
                min: SLOT_VERSION,
                max: SLOT_VERSION,
            });
        }
        let flags = r.u8("slot flags")?;
        if flags & !(HAS_ADDRESS | HAS_CURRENT | HAS_PREVIOUS) != 0 {
            return Err(DecodeError::InvalidValue { field: "slot flags" });
        }
        let address = (flags & HAS_ADDRESS != 0)
            .then(|| r.array("address").map(Address::from_bytes))
            .transpose()?;
        let mut session = |present: bool| -> Result<Option<Session>, DecodeError> {
            if !present {
                return Ok(None);
            }
            let len = r.u32("session length")? as usize;
            Session::from_bytes(r.take("session", len)?).map(Some)
        };
        let current = session(flags & HAS_CURRENT != 0)?;
        let previous = session(flags & HAS_PREVIOUS != 0)?;
        r.finish()?;
        Ok(Self { address, current, previous, generation: 0 })
    }

    fn sessions(&self) -> impl Iterator<Item = (bool, &Session)> {
        [(true, &self.current), (false, &self.previous)]
            .into_iter()
            .filter_map(|(current, s)| s.as_ref().map(|s| (current, s)))
    }

    /// Puts a session a peer just started in its place. We keep sending on ours only
    /// when both sides started at once (ours still awaits its first reply) and ours
    /// has the lower handshake id; the peer applies the same rule, so both end up
    /// sending on the same session (decision 0050).
    fn install(&mut self, new: Session) {
        match self.current.take() {
            Some(ours) if ours.awaiting_reply() && ours.handshake_id() < new.handshake_id() => {
                self.current = Some(ours);
                self.previous = Some(new);
            }
            Some(ours) => {
                self.previous = Some(ours);
                self.current = Some(new);
            }
            None => self.current = Some(new),
        }
    }

    /// Replaces the session that opened a message (`current` or not) with its next state.
    fn advance(&mut self, current: bool, next: Session) {
        if current {
            self.current = Some(next);
        } else {
            self.previous = Some(next);
        }
    }
}

#[derive(Default)]
struct Index {
    /// The device each contact's session is with.
    by_address: HashMap<Address, Device>,
    /// Handshake id → device, for initial messages of known sessions.
    by_handshake: HashMap<[u8; 32], Device>,
}

/// The node's sessions, bundles it learned and its own intro.
pub(crate) struct Sessions {
    enabled: bool,
    slots: Mutex<HashMap<Device, Arc<tokio::sync::Mutex<Slot>>>>,
    index: Mutex<Index>,
    /// The newest prekey bundle seen in each contact's record.
    bundles: Mutex<HashMap<Address, PrekeyBundle>>,
    /// This device's current signed identity record: the intro of its initial letters.
    own_record: Mutex<Option<Vec<u8>>>,
    /// Woken when our record is first made.
    record_made: tokio::sync::Notify,
    /// Accepting sessions one at a time: each reads the prekey secrets.
    accepting: tokio::sync::Mutex<()>,
    /// First-contact proofs, by recipient and hour: made once, however many ask at
    /// once (adding a contact starts one; the first message waits for the same).
    proofs: Mutex<HashMap<(Fingerprint, u64), Proof>>,
    /// One-time prekeys claimed from a device's mailbox servers for the next session
    /// started with it (decision 0064), and the devices being claimed for now.
    claimed: Mutex<Claimed>,
}

/// One-time prekeys claimed, by device, each checked against the device key, and
/// the claims waiting for the claimer task ([`claimer`]).
struct Claimed {
    ready: HashMap<Device, (Option<OneTimePrekey>, Option<OneTimePrekey>)>,
    asking: std::collections::HashSet<Device>,
    to_claim: tokio::sync::mpsc::Sender<(Device, communitas_types::MailboxId)>,
    /// Woken whenever a claim is over.
    over: Arc<tokio::sync::Notify>,
    /// Taken by the claimer when the node starts.
    claims: Option<tokio::sync::mpsc::Receiver<(Device, communitas_types::MailboxId)>>,
}

impl Default for Claimed {
    fn default() -> Self {
        let (to_claim, claims) = tokio::sync::mpsc::channel(CLAIMS_WAITING);
        Self {
            ready: HashMap::new(),
            asking: Default::default(),
            to_claim,
            over: Arc::default(),
            claims: Some(claims),
        }
    }
}

/// Longest a new session waits for a claim already under way for its device: the
/// first letter to a contact just added is often its presence, sent within a second.
const CLAIM_WAIT: std::time::Duration = std::time::Duration::from_secs(3);
/// Longest a session's first letter waits for our record (its intro) after start.
const RECORD_WAIT: std::time::Duration = std::time::Duration::from_secs(3);
/// Claims waiting for the claimer; beyond, a session starts without one-time prekeys.
const CLAIMS_WAITING: usize = 64;
/// Claims made at once.
const CLAIMS_AT_ONCE: usize = 4;

/// Devices with claimed one-time prekeys kept; past this the oldest claims are simply
/// not used (the sessions start with the signed prekeys).
const MAX_CLAIMED: usize = 256;
/// A device's mailbox servers asked, one after another, for its one-time prekeys.
const CLAIM_FROM: usize = 3;

/// A first-contact proof (its nonce), made by whichever caller came first.
type Proof = Arc<tokio::sync::OnceCell<u64>>;

/// First-contact proofs kept; past this the cache starts over.
const MAX_PROOFS: usize = 1_024;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The maps stay consistent through a panic elsewhere (each update is one insert).
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Why an envelope did not open, as inbound answers it.
pub(crate) enum OpenFailure {
    /// Refused for good.
    Rejected(Rejected),
    /// Read before: answered as delivered, nothing shown again.
    Duplicate,
    /// The store failed: the sender comes back later.
    Busy(communitas_store::Error),
}

impl From<SessionRejected> for OpenFailure {
    fn from(why: SessionRejected) -> Self {
        OpenFailure::Rejected(Rejected::Session(why))
    }
}

/// A letter a session sealed, holding the session's lock until it is committed or
/// dropped (dropped: the session is as it was).
pub(crate) struct Sealed<'a> {
    /// The mailbox form of the envelope (the outbox sends its direct form).
    pub(crate) envelope: Vec<u8>,
    guard: OwnedMutexGuard<Slot>,
    next: Slot,
    device: Device,
    sessions: &'a Sessions,
}

impl Sealed<'_> {
    /// Commits the session's next state with what `write` stores (it queues the
    /// write and returns; the store commits writes in order), lets the session go on
    /// at once, and waits for the commit. If it fails, the session goes back to what
    /// is stored, unless a later letter already moved it (that one's write, made
    /// from this one, fails too and does it).
    pub(crate) async fn commit<T, F>(
        self,
        inner: &Inner,
        write: impl FnOnce(SessionUpdate) -> F,
    ) -> Result<T, communitas_store::Error>
    where
        F: std::future::Future<Output = Result<Committing<T>, communitas_store::Error>>,
    {
        let Sealed { guard, next, device, sessions, .. } = self;
        sessions.commit(inner, guard, next, device, write).await
    }
}

/// A session message opened, holding its slot's lock until the caller commits.
pub(crate) struct Opening<'a> {
    guard: OwnedMutexGuard<Slot>,
    next: Slot,
    device: Device,
    sessions: &'a Sessions,
    /// The letter's place in its conversation, if it carried one.
    pub(crate) stamp: Option<Stamp>,
    /// The letter's first-contact proof of work, if it carried one.
    pub(crate) work: Option<u64>,
    /// The display name the letter's intro (the sender's signed record) gives, if it
    /// had an intro: what a stranger's request shows (issue 23 item 3).
    pub(crate) published_name: Option<String>,
    /// The initial message of a session accepted now that used one-time prekeys:
    /// their secrets are deleted once the session is stored.
    one_time: Option<communitas_crypto::handshake::InitMessage>,
}

impl Opening<'_> {
    /// [`Sealed::commit`] for an opened message, the device now known to be
    /// `address`'s.
    pub(crate) async fn commit<T, F>(
        self,
        inner: &Inner,
        address: Address,
        write: impl FnOnce(SessionUpdate) -> F,
    ) -> Result<T, communitas_store::Error>
    where
        F: std::future::Future<Output = Result<Committing<T>, communitas_store::Error>>,
    {
        let Opening { guard, mut next, device, sessions, one_time, .. } = self;
        next.address = Some(address);
        let committed = sessions.commit(inner, guard, next, device, write).await?;
        if let Some(init) = one_time {
            // Left in place, a used key only weakens that one session's forward
            // secrecy until the next mint pushes it out; the message is stored.
            match inner.prekeys.consume(inner, &init).await {
                Ok(true) => inner.metrics.session("one_time_used"),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "cannot delete the one-time prekeys a session used");
                }
            }
        }
        Ok(committed)
    }
}

/// The claimer task: carries out the claims [`Sessions::claim_one_time`] asked for, a
/// few at once, until `shutdown`.
pub(crate) async fn claimer(inner: Arc<Inner>, shutdown: tokio_util::sync::CancellationToken) {
    let Some(mut claims) = lock(&inner.sessions.claimed).claims.take() else { return };
    let mut running = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            Some(_) = running.join_next(), if !running.is_empty() => {}
            next = claims.recv(), if running.len() < CLAIMS_AT_ONCE => {
                let Some((device, mailbox)) = next else { break };
                let inner = inner.clone();
                running.spawn(async move {
                    let got = claim(&inner, mailbox, device).await;
                    inner.sessions.claimed(device, got);
                });
            }
        }
    }
    running.shutdown().await;
}

/// Asks `device`'s mailbox servers, nearest first, for one one-time prekey of each
/// kind until one hands some out; keeps those its device signed (a server may withhold
/// keys, not make its own).
async fn claim(
    inner: &Inner,
    mailbox: communitas_types::MailboxId,
    device: Device,
) -> (Option<OneTimePrekey>, Option<OneTimePrekey>) {
    use communitas_crypto::prekey::OneTimeKey;
    use communitas_net::mbox::{MboxRequest, MboxResponse};
    let Ok(servers) = inner.net.closest_peers(mailbox.as_bytes().to_vec()).await else {
        return (None, None);
    };
    let own = inner.secrets.device.peer_id();
    for server in servers.into_iter().filter(|p| *p != own).take(CLAIM_FROM) {
        let asked = inner.net.mailbox(server, MboxRequest::Claim { mailbox, device });
        let Ok(MboxResponse::Prekeys(list)) = asked.await else { continue };
        let (mut dh, mut kem) = (None, None);
        for bytes in list {
            match OneTimePrekey::from_bytes(&bytes, &device) {
                Ok(p) if matches!(p.key, OneTimeKey::Dh(_)) => dh = dh.or(Some(p)),
                Ok(p) => kem = kem.or(Some(p)),
                Err(e) => {
                    tracing::debug!(%server, error = %e, "a server handed out a bad one-time prekey")
                }
            }
        }
        if dh.is_some() || kem.is_some() {
            inner.metrics.session("one_time_claimed");
            return (dh, kem);
        }
    }
    (None, None)
}

/// The Ed25519 key a PeerId wraps (ours are all Ed25519, inlined in the id).
pub(crate) fn device_of(peer: &PeerId) -> Option<Device> {
    let key = PublicKey::try_decode_protobuf(peer.as_ref().digest()).ok()?;
    key.try_into_ed25519().ok().map(|k| k.to_bytes())
}

/// The PeerId of a device key.
fn peer_of(device: &Device) -> Option<PeerId> {
    let key = ed25519::PublicKey::try_from_bytes(device).ok()?;
    Some(PublicKey::from(key).to_peer_id())
}

impl Sessions {
    /// Sessions restored from the store (`stored`), or none when `enabled` is off.
    pub(crate) fn new(enabled: bool, stored: Vec<StoredSession>) -> Self {
        let sessions = Self {
            enabled,
            slots: Mutex::default(),
            index: Mutex::default(),
            bundles: Mutex::default(),
            own_record: Mutex::default(),
            record_made: tokio::sync::Notify::new(),
            accepting: tokio::sync::Mutex::new(()),
            proofs: Mutex::default(),
            claimed: Mutex::default(),
        };
        for row in stored {
            match Slot::from_bytes(&row.state) {
                Ok(mut slot) => {
                    slot.generation = row.generation;
                    sessions.index(row.peer_device, &slot);
                    lock(&sessions.slots)
                        .insert(row.peer_device, Arc::new(tokio::sync::Mutex::new(slot)));
                }
                // Not fatal: the peer's next initial message starts a new session.
                Err(e) => tracing::warn!(error = %e, "a stored session does not decode; skipped"),
            }
        }
        sessions
    }

    /// Whether this node opens and seals sessions (`Config::sessions`).
    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    async fn commit<T, F>(
        &self,
        inner: &Inner,
        mut guard: OwnedMutexGuard<Slot>,
        mut next: Slot,
        device: Device,
        write: impl FnOnce(SessionUpdate) -> F,
    ) -> Result<T, communitas_store::Error>
    where
        F: std::future::Future<Output = Result<Committing<T>, communitas_store::Error>>,
    {
        let made_from = guard.generation;
        next.generation = made_from + 1;
        let update = SessionUpdate {
            peer_device: device,
            made_from: Some(made_from),
            state: next.to_bytes(),
            prekeys: None,
        };
        // Not queued: nothing changed.
        let committing = write(update).await?;
        let made = next.generation;
        self.index(device, &next);
        *guard = next;
        drop(guard);
        match committing.done().await {
            Ok(value) => Ok(value),
            Err(e) => {
                // A conflict is the echo of an earlier failure; that one is the cause.
                if !matches!(e, communitas_store::Error::SessionConflict) {
                    tracing::warn!(error = %e, "a session's state could not be stored with its message");
                }
                self.restore(inner, device, made).await;
                Err(e)
            }
        }
    }

    /// A write of generation `made` failed: back to the stored state, if nothing was
    /// built on the failed one since (else the write built on it fails as well, and
    /// its caller comes here).
    async fn restore(&self, inner: &Inner, device: Device, made: u64) {
        let slot = self.slot(device);
        let mut guard = slot.lock().await;
        if guard.generation != made {
            return;
        }
        let stored = match inner.store.session(device).await {
            Ok(stored) => stored,
            Err(e) => {
                // Left as it is: the next write fails its generation check and
                // comes back here.
                tracing::warn!(error = %e, "cannot read a session back after a failed write");
                return;
            }
        };
        *guard = match stored {
            Some(row) => match Slot::from_bytes(&row.state) {
                Ok(mut slot) => {
                    slot.generation = row.generation;
                    slot
                }
                Err(_) => Slot { generation: row.generation, ..Slot::default() },
            },
            None => Slot::default(),
        };
        tracing::debug!("a session went back to its stored state after a failed write");
    }

    fn index(&self, device: Device, slot: &Slot) {
        let mut index = lock(&self.index);
        if let Some(address) = slot.address {
            index.by_address.insert(address, device);
        }
        for (_, session) in slot.sessions() {
            index.by_handshake.insert(session.handshake_id(), device);
        }
    }

    fn slot(&self, device: Device) -> Arc<tokio::sync::Mutex<Slot>> {
        lock(&self.slots).entry(device).or_default().clone()
    }

    /// A contact's record was read: remember the bundle of its first device that has
    /// one, for the session the next letter to it starts.
    pub(crate) fn learn(&self, address: Address, record: &IdentityRecord) {
        if !self.enabled {
            return;
        }
        if let Some(bundle) = record.devices.iter().find_map(|d| d.prekeys.clone()) {
            lock(&self.bundles).insert(address, bundle);
        }
    }

    /// `address`'s record was just learnt: if its device has a bundle, no session
    /// with us and nothing claimed for it yet, claims one one-time prekey of each kind
    /// from the device's mailbox servers for the session the next letter starts
    /// (decision 0064). In the background: sealing never waits for it, and a letter
    /// sealed before it lands starts with the signed prekeys alone.
    pub(crate) fn claim_one_time(&self, address: Address, keys: &PublicIdentity) {
        if !self.enabled {
            return;
        }
        let Some(device) = lock(&self.bundles).get(&address).map(|b| b.device) else { return };
        // A slot in use is sealing or opening with its session.
        let has_session = match lock(&self.slots).get(&device) {
            None => false,
            Some(slot) => slot.try_lock().map_or(true, |s| s.current.is_some()),
        };
        let mut claimed = lock(&self.claimed);
        if has_session || claimed.ready.contains_key(&device) || claimed.asking.contains(&device) {
            return;
        }
        if claimed.to_claim.try_send((device, keys.mailbox_id())).is_ok() {
            claimed.asking.insert(device);
        }
    }

    /// Our record, the intro of a session's first letters; right after start it may
    /// not be made yet (the publisher waits for our addresses), and a letter sealed
    /// without it would go as version 1, which a stranger's request shows without a
    /// name: waits for it at most [`RECORD_WAIT`].
    async fn intro(&self) -> Option<Vec<u8>> {
        let wait = async {
            loop {
                let made = self.record_made.notified();
                tokio::pin!(made);
                made.as_mut().enable();
                if let Some(record) = lock(&self.own_record).clone() {
                    return record;
                }
                made.await;
            }
        };
        tokio::time::timeout(RECORD_WAIT, wait).await.ok()
    }

    /// Waits (at most [`CLAIM_WAIT`]) for a claim under way for `device` to be over.
    async fn claim_done(&self, device: Device) {
        let over = lock(&self.claimed).over.clone();
        let wait = async {
            loop {
                let notified = over.notified();
                tokio::pin!(notified);
                // Registered before the look, so an end between the two still wakes it.
                notified.as_mut().enable();
                if !lock(&self.claimed).asking.contains(&device) {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(CLAIM_WAIT, wait).await;
    }

    /// A claim for `device` is over (`got`: what it found).
    fn claimed(&self, device: Device, got: (Option<OneTimePrekey>, Option<OneTimePrekey>)) {
        let mut claimed = lock(&self.claimed);
        claimed.asking.remove(&device);
        claimed.over.notify_waiters();
        if got.0.is_some() || got.1.is_some() {
            if claimed.ready.len() >= MAX_CLAIMED {
                claimed.ready.clear();
            }
            claimed.ready.insert(device, got);
        }
    }

    /// This device published `record`: its intro from now on.
    pub(crate) fn set_own_record(&self, record: &[u8]) {
        *lock(&self.own_record) = Some(record.to_vec());
        self.record_made.notify_waiters();
    }

    /// Seals a letter for `to` (whose keys are `keys`) with its session, starting one
    /// if its bundle is known. `None`: no session can be had now (sessions off, no
    /// bundle seen, or a failure, logged), and the caller seals version 1.
    pub(crate) async fn seal(
        &self,
        inner: &Inner,
        to: Address,
        keys: &PublicIdentity,
        letter: Letter<'_>,
        stamp: Option<Stamp>,
    ) -> Option<Sealed<'_>> {
        let Letter { message_id, timestamp: now, kind, body } = letter;
        if !self.enabled {
            return None;
        }
        let known = lock(&self.index).by_address.get(&to).copied();
        let device = match known {
            Some(device) => device,
            None => lock(&self.bundles).get(&to)?.device,
        };
        let guard = self.slot(device).lock_owned().await;
        let mut next = guard.clone();
        let mut rng = crate::rng::Os::new().ok()?;
        // A session started now introduces us, which takes a proof of work (~0.5 s,
        // usually made when the contact was added): made before the session, so
        // that one-time prekeys claimed meanwhile are in it.
        let early_work = match next.current {
            None => Some(self.proof(inner, keys.fingerprint(), now).await?),
            Some(_) => None,
        };
        let session = match next.current.take() {
            Some(session) => session,
            None => {
                // Only a first letter needs the bundle (a copy of 1.3 KiB).
                let bundle =
                    lock(&self.bundles).get(&to).filter(|b| b.device == device).cloned()?;
                self.claim_done(device).await;
                let (dh, kem) = lock(&self.claimed).ready.remove(&device).unwrap_or_default();
                let (dh, kem) = (dh.as_ref(), kem.as_ref());
                match Session::initiate(&inner.secrets.device, &bundle, dh, kem, now, &mut rng) {
                    Ok(session) => {
                        inner.metrics.session("initiated");
                        if dh.is_some() || kem.is_some() {
                            inner.metrics.session("initiated_one_time");
                        }
                        session
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot start a session; sealed as version 1");
                        return None;
                    }
                }
            }
        };
        let intro = if session.awaiting_reply() {
            // Without our record (not made within a few seconds of start) there is
            // nothing to introduce us with: version 1.
            Some(self.intro().await?)
        } else {
            None
        };
        // Whoever is introduced pays for the receiver's derivation (decision 0062).
        let work = match (intro.as_ref(), early_work) {
            (Some(_), Some(work)) => Some(work),
            (Some(_), None) => Some(self.proof(inner, keys.fingerprint(), now).await?),
            (None, _) => None,
        };
        let letter = SessionLetter {
            intro,
            stamp,
            work,
            message_id,
            timestamp: now,
            kind,
            body: body.to_vec(),
        };
        let sent = match session.encrypt(&letter.to_bytes(), now, &mut rng) {
            Ok(sent) => sent,
            Err(e) => {
                tracing::warn!(error = %e, "cannot seal with the session; sealed as version 1");
                return None;
            }
        };
        next.current = Some(sent.next);
        next.address = Some(to);
        let envelope = letter::mailbox_envelope(&keys.mailbox_id(), &sent.bytes);
        inner.metrics.session("sealed");
        Some(Sealed { envelope, guard, next, device, sessions: self })
    }

    /// A first-contact proof for `recipient` at `now`'s hour: made once per recipient
    /// and hour on a blocking thread (~0.5 s, `communitas_proto::work`), then reused;
    /// callers that ask while it is being made wait for that one.
    /// Adding a contact makes it ahead of the first message (`send::add_contact`).
    pub(crate) async fn proof(
        &self,
        inner: &Inner,
        recipient: Fingerprint,
        now: Timestamp,
    ) -> Option<u64> {
        let hour = now.as_millis() / (60 * 60 * 1000);
        let cell = {
            let mut proofs = lock(&self.proofs);
            if proofs.len() >= MAX_PROOFS && !proofs.contains_key(&(recipient, hour)) {
                proofs.clear();
            }
            proofs.entry((recipient, hour)).or_default().clone()
        };
        let sender = inner.secrets.identity.public().fingerprint();
        let made = cell.get_or_try_init(|| async move {
            let start = u64::from_be_bytes(communitas_crypto::random::bytes().map_err(|_| ())?);
            let challenge = work::challenge(&recipient, &sender, now);
            let solved = tokio::task::spawn_blocking(move || {
                work::solve(&challenge, work::FIRST_CONTACT_BITS, start)
            });
            solved.await.map_err(|_| ())
        });
        made.await.ok().copied()
    }

    /// The device behind `peer` answered that no session of its opens `entry`. Seals
    /// the message again — with our current session (`reset` off: the envelope was
    /// only old, a chain the device has moved past, which is what a retry after a
    /// lost receipt looks like), or with a new session after dropping ours (`reset`:
    /// a freshly sealed envelope was refused too, so the device lost its state —
    /// restored from an old copy, reinstalled). The row and the session are
    /// committed together. Returns the new envelope, or `None` if it cannot be
    /// sealed again now (a control message, whose body is not kept; no bundle
    /// found), and the outbox tries again later.
    pub(crate) async fn heal(
        &self,
        inner: &Inner,
        peer: PeerId,
        entry: &communitas_proto::outbox::Entry,
        reset: bool,
    ) -> Option<Vec<u8>> {
        let device = device_of(&peer)?;
        if reset {
            let slot = self.slot(device);
            let had = {
                let mut guard = slot.lock().await;
                tracing::info!(
                    message = %entry.id.fmt_short(),
                    "a contact's device lost our session: starting a new one"
                );
                inner.metrics.session("reset");
                let had = guard.current.take().is_some() | guard.previous.take().is_some();
                inner.emit(crate::Event::SessionReset { peer: entry.recipient });
                had
            };
            // One line per session lost, not one per message sealed again.
            if had {
                crate::system::write(inner, entry.recipient, crate::SystemLine::SessionReset).await;
            }
        }
        let stored = inner.store.message(entry.id).await.ok()??;
        let kind = Kind::from_u8(stored.message.kind).ok()?;
        let keys = inner.pinned.keys(&inner.store, entry.recipient).await.ok()??;
        if lock(&self.bundles).get(&entry.recipient).is_none_or(|b| b.device != device) {
            // Its record says which bundle to start from (and `resolve` remembers it).
            crate::devices::resolve(inner, entry.recipient, Some(&keys)).await.ok()?;
        }
        let parts =
            crate::seal::parts(entry.id, stored.message.timestamp, kind, &stored.message.body);
        // Sealed again with the place it was written at (issue 23 item 1).
        let place = stored.message.place;
        let stamp = place.n.map(|n| Stamp { n, clock: place.clock });
        let sealed = self.seal(inner, entry.recipient, &keys, parts, stamp).await?;
        let envelope = sealed.envelope.clone();
        let row = envelope.clone();
        let stored = sealed
            .commit(inner, |update| inner.store.reseal_with_session(entry.id, row, update))
            .await;
        match stored {
            Ok(true) => {
                inner.metrics.session("resealed");
                Some(envelope)
            }
            Ok(false) => {
                // Delivered by another copy meanwhile: nothing to send.
                tracing::debug!(message = %entry.id.fmt_short(), "sealed again after it left the outbox");
                None
            }
            Err(e) => {
                tracing::debug!(error = %e, "cannot store the message sealed again");
                None
            }
        }
    }

    /// Opens a version-2 envelope, from the device behind `from` when it came over a
    /// direct connection. The caller finds the sender's address among its contacts and
    /// requests, commits with [`Opening::update`], then calls [`Opening::committed`].
    pub(crate) async fn open(
        &self,
        inner: &Inner,
        bytes: &[u8],
        from: Option<PeerId>,
        now: Timestamp,
    ) -> Result<(Opened, Opening<'_>), OpenFailure> {
        let opened = self.open_inner(inner, bytes, from, now).await;
        match &opened {
            Ok(_) => inner.metrics.session("opened"),
            Err(OpenFailure::Rejected(why)) => {
                inner.metrics.session("refused");
                tracing::debug!(reason = %why, "session envelope refused");
            }
            Err(_) => {}
        }
        opened
    }

    async fn open_inner(
        &self,
        inner: &Inner,
        bytes: &[u8],
        from: Option<PeerId>,
        now: Timestamp,
    ) -> Result<(Opened, Opening<'_>), OpenFailure> {
        if !self.enabled {
            return Err(SessionRejected::NoSession.into());
        }
        let form = Form::parse(bytes).map_err(|e| OpenFailure::Rejected(Rejected::Malformed(e)))?;
        if let Form::Mailbox(mailbox, _) = form
            && mailbox != inner.secrets.identity.public().mailbox_id()
        {
            return Err(SessionRejected::WrongMailbox.into());
        }
        let message = form.message();
        let peeked = peek(message).map_err(|e| OpenFailure::Rejected(Rejected::Malformed(e)))?;
        let (plaintext, mut opening, new) = match peeked {
            Peeked::Initial { handshake_id, init } => {
                let known = lock(&self.index).by_handshake.get(&handshake_id).copied();
                match known {
                    Some(device) => {
                        let (plaintext, opening) = self.decrypt_in(device, message, now).await?;
                        (plaintext, opening, false)
                    }
                    None => {
                        let ((plaintext, opening), new) =
                            self.accept(inner, &init, handshake_id, message, now).await?;
                        (plaintext, opening, new)
                    }
                }
            }
            Peeked::Message => {
                let candidates: Vec<Device> = match from.as_ref().and_then(device_of) {
                    Some(device) => vec![device],
                    None => lock(&self.slots).keys().copied().collect(),
                };
                let mut found = None;
                for device in candidates {
                    match self.decrypt_in(device, message, now).await {
                        Ok(opened) => {
                            found = Some(opened);
                            break;
                        }
                        Err(OpenFailure::Rejected(Rejected::Session(
                            SessionRejected::NoSession,
                        ))) => {}
                        Err(other) => return Err(other),
                    }
                }
                let (plaintext, opening) = found.ok_or(SessionRejected::NoSession)?;
                (plaintext, opening, false)
            }
            _ => return Err(SessionRejected::NoSession.into()),
        };
        let letter = SessionLetter::from_bytes(&plaintext).map_err(SessionRejected::Letter)?;
        let (sender, published_name) = self.sender(inner, &opening, &letter, new).await?;
        opening.stamp = letter.stamp;
        opening.work = letter.work;
        opening.published_name = published_name;
        let opened = Opened {
            sender,
            message_id: letter.message_id,
            timestamp: letter.timestamp,
            kind: letter.kind,
            body: letter.body,
        };
        Ok((opened, opening))
    }

    /// Tries the sessions of `device`'s slot on `message`.
    async fn decrypt_in(
        &self,
        device: Device,
        message: &[u8],
        now: Timestamp,
    ) -> Result<(Zeroizing<Vec<u8>>, Opening<'_>), OpenFailure> {
        let Some(slot) = lock(&self.slots).get(&device).cloned() else {
            return Err(SessionRejected::NoSession.into());
        };
        let guard = slot.lock_owned().await;
        let mut outcome: Result<_, OpenFailure> = Err(SessionRejected::NoSession.into());
        for (current, session) in guard.sessions() {
            match session.decrypt(message, now) {
                Ok(done) => {
                    let mut next = guard.clone();
                    next.advance(current, done.next);
                    outcome = Ok((done.plaintext, next));
                    break;
                }
                Err(DecryptError::UnknownHeader | DecryptError::OtherHandshake) => continue,
                Err(DecryptError::Duplicate) => return Err(OpenFailure::Duplicate),
                Err(e) => return Err(SessionRejected::Decrypt(e).into()),
            }
        }
        let (plaintext, next) = outcome?;
        Ok((
            plaintext,
            Opening {
                guard,
                next,
                device,
                sessions: self,
                stamp: None,
                work: None,
                published_name: None,
                one_time: None,
            },
        ))
    }

    /// An initial message of a handshake we do not know: starts the session.
    async fn accept(
        &self,
        inner: &Inner,
        init: &communitas_crypto::handshake::InitMessage,
        handshake_id: [u8; 32],
        message: &[u8],
        now: Timestamp,
    ) -> Result<((Zeroizing<Vec<u8>>, Opening<'_>), bool), OpenFailure> {
        let accepting = self.accepting.lock().await;
        // Every letter carries the initial message until the peer hears back, so
        // copies of one handshake queue here together. One accepted while this one
        // waited is in the index by now — and its one-time prekeys may be deleted
        // already, so it must not be accepted again: it is that session's message.
        let known = lock(&self.index).by_handshake.get(&handshake_id).copied();
        if let Some(device) = known {
            drop(accepting);
            return Ok((self.decrypt_in(device, message, now).await?, false));
        }
        let stored = inner.store.prekey_secrets().await.map_err(OpenFailure::Busy)?;
        let secrets = stored
            .map(|bytes| PrekeySecrets::from_bytes(&bytes))
            .transpose()
            .map_err(|e| OpenFailure::Rejected(Rejected::Malformed(e)))?
            .ok_or(SessionRejected::NoSession)?;
        let keys = match secrets.keys_for(&inner.secrets.device, init) {
            Ok(keys) => keys,
            Err(e) => {
                // Its one-time prekeys went with a copy accepted since the look above.
                let known = lock(&self.index).by_handshake.get(&handshake_id).copied();
                let Some(device) = known else { return Err(SessionRejected::Prekeys(e).into()) };
                drop(accepting);
                return Ok((self.decrypt_in(device, message, now).await?, false));
            }
        };
        let accepted = Session::accept(&keys, message, now).map_err(SessionRejected::Accept)?;
        drop(accepting);
        let device = accepted.initiator_device;
        let guard = self.slot(device).lock_owned().await;
        // Another copy of the same initial message may have been accepted while this
        // one waited: then it is that session's message (a duplicate, or the next).
        if guard.sessions().any(|(_, s)| s.handshake_id() == handshake_id) {
            drop(guard);
            return Ok((self.decrypt_in(device, message, now).await?, false));
        }
        // A new session in place of one that had been answered. Counted, but not
        // said in the conversation: a simultaneous start whose initial message came
        // late (after ours was answered) looks the same as a device that lost its
        // state. Our own reset (`heal`) is what writes the system line.
        if guard.current.as_ref().is_some_and(|s| !s.awaiting_reply()) {
            inner.metrics.session("replaced");
        }
        let mut next = guard.clone();
        next.install(accepted.session);
        inner.metrics.session("accepted");
        let used_one_time = init.kem_one_time || init.one_time_prekey_id.is_some();
        let opening = Opening {
            guard,
            next,
            device,
            sessions: self,
            stamp: None,
            work: None,
            published_name: None,
            one_time: used_one_time.then(|| init.clone()),
        };
        Ok(((accepted.plaintext, opening), true))
    }

    /// Who sent a letter: the identity its intro names (checked to list the
    /// handshake's device), or the contact or request the device's slot belongs to.
    async fn sender(
        &self,
        inner: &Inner,
        opening: &Opening<'_>,
        letter: &SessionLetter,
        new: bool,
    ) -> Result<(PublicIdentity, Option<String>), OpenFailure> {
        if let Some(intro) = &letter.intro {
            let record = IdentityRecord::from_bytes(intro).map_err(SessionRejected::Intro)?;
            let peer = peer_of(&opening.device).ok_or(SessionRejected::IntroDevice)?;
            if !record.devices.iter().any(|d| d.peer_id == peer) {
                return Err(SessionRejected::IntroDevice.into());
            }
            let name = record.display_name.filter(|name| crate::check_name(name).is_ok());
            return Ok((record.identity, name));
        }
        if new {
            return Err(SessionRejected::NoIntro.into());
        }
        let address = opening.next.address.ok_or(SessionRejected::NoIntro)?;
        if let Some(keys) =
            inner.pinned.keys(&inner.store, address).await.map_err(OpenFailure::Busy)?
        {
            return Ok((keys, None));
        }
        match inner.store.request(address).await.map_err(OpenFailure::Busy)? {
            Some(request) => Ok((request.identity, None)),
            // Neither a contact nor a request any more (declined): nobody to show it to.
            None => Err(SessionRejected::NoSession.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use communitas_crypto::DeviceKey;
    use communitas_proto::random::Seeded;

    const T0: Timestamp = Timestamp::from_millis(1_780_000_000_000);

    fn pair(seed: u64) -> (Session, Session) {
        let mut rng = Seeded::new(seed);
        let (a, b) = (DeviceKey::from_secret_bytes([1; 32]), DeviceKey::from_secret_bytes([2; 32]));
        let prekeys = PrekeySecrets::new(T0, &mut rng);
        let bundle = prekeys.bundle(&b).unwrap();
        let s = Session::initiate(&a, &bundle, None, None, T0, &mut rng).unwrap();
        let first = s.encrypt(b"x", T0, &mut rng).unwrap();
        let Peeked::Initial { init, .. } = peek(&first.bytes).unwrap() else { panic!() };
        let keys = prekeys.keys_for(&b, &init).unwrap();
        let accepted = Session::accept(&keys, &first.bytes, T0).unwrap();
        (first.next, accepted.session)
    }

    #[test]
    fn slots_round_trip_and_bad_bytes_are_refused() {
        let (a, b) = pair(1);
        let slot = Slot {
            address: Some(Address::from_bytes([1, 2, 3, 4, 5, 6])),
            current: Some(a.clone()),
            previous: Some(b.clone()),
            generation: 7,
        };
        let back = Slot::from_bytes(&slot.to_bytes()).unwrap();
        assert_eq!(back.address, slot.address);
        assert_eq!(back.current.unwrap().handshake_id(), a.handshake_id());
        assert!(back.previous.unwrap().is_initiator() == b.is_initiator());
        let empty = Slot::from_bytes(&Slot::default().to_bytes()).unwrap();
        assert!(empty.address.is_none() && empty.current.is_none());
        let bytes = slot.to_bytes();
        for cut in [0, 1, 2, 8, bytes.len() - 1] {
            assert!(Slot::from_bytes(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut flags = bytes.to_vec();
        flags[1] |= 8;
        assert!(Slot::from_bytes(&flags).is_err());
    }

    /// Both sides started at once: each keeps receiving on both, and both send on the
    /// session with the lower handshake id.
    #[test]
    fn a_simultaneous_start_settles_on_the_lower_handshake_id() {
        let mut rng = Seeded::new(9);
        let (a, b) = (DeviceKey::from_secret_bytes([1; 32]), DeviceKey::from_secret_bytes([2; 32]));
        let (pa, pb) = (PrekeySecrets::new(T0, &mut rng), PrekeySecrets::new(T0, &mut rng));
        let a_started = Session::initiate(&a, &pb.bundle(&b).unwrap(), None, None, T0, &mut rng);
        let b_started = Session::initiate(&b, &pa.bundle(&a).unwrap(), None, None, T0, &mut rng);
        let (a_started, b_started) = (a_started.unwrap(), b_started.unwrap());
        let a_first = a_started.encrypt(b"from a", T0, &mut rng).unwrap();
        let b_first = b_started.encrypt(b"from b", T0, &mut rng).unwrap();
        let accept = |prekeys: &PrekeySecrets, me: &DeviceKey, bytes: &[u8]| {
            let Peeked::Initial { init, .. } = peek(bytes).unwrap() else { panic!() };
            Session::accept(&prekeys.keys_for(me, &init).unwrap(), bytes, T0).unwrap().session
        };
        let lower = a_first.next.handshake_id().min(b_first.next.handshake_id());
        let mut slot_a = Slot { current: Some(a_first.next), ..Slot::default() };
        let mut slot_b = Slot { current: Some(b_first.next), ..Slot::default() };
        slot_a.install(accept(&pa, &a, &b_first.bytes));
        slot_b.install(accept(&pb, &b, &a_first.bytes));
        let (ca, cb) = (slot_a.current.as_ref().unwrap(), slot_b.current.as_ref().unwrap());
        assert_eq!(ca.handshake_id(), cb.handshake_id(), "both send on one session");
        assert_eq!(ca.handshake_id(), lower);
        assert!(slot_a.previous.is_some() && slot_b.previous.is_some(), "both keep the other");
        // The winner's responder can send, and the initiator opens it.
        let (sender, receiver) = if ca.is_initiator() { (cb, ca) } else { (ca, cb) };
        let reply = sender.encrypt(b"reply", T0, &mut rng).unwrap();
        assert_eq!(&receiver.decrypt(&reply.bytes, T0).unwrap().plaintext[..], b"reply");
    }

    #[test]
    fn a_restarted_peer_s_new_session_replaces_the_answered_one() {
        // A responder's session (never awaiting a reply) gives way to any new one,
        // whatever the handshake ids.
        let (a, _) = pair(2);
        let (_, ours) = pair(3);
        assert!(!ours.awaiting_reply());
        let mut slot = Slot { current: Some(ours.clone()), ..Slot::default() };
        slot.install(a.clone());
        assert_eq!(slot.current.as_ref().unwrap().handshake_id(), a.handshake_id());
        assert_eq!(slot.previous.as_ref().unwrap().handshake_id(), ours.handshake_id());
    }

    #[test]
    fn peer_ids_and_device_keys_map_both_ways() {
        let key = DeviceKey::from_secret_bytes([3; 32]);
        let peer = key.peer_id();
        assert_eq!(device_of(&peer), Some(key.public_bytes()));
        assert_eq!(peer_of(&key.public_bytes()), Some(peer));
        assert_eq!(device_of(&PeerId::random()), None, "not an inlined Ed25519 key");
    }
}
