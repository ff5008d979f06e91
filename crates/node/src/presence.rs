//! Presence and typing indicators (ARCHITECTURE §8, issue 6).
//!
//! Presence (online, away, busy, offline) goes only to contacts, sealed end to end
//! like any message (`Kind::Presence`), straight to their devices over
//! `/communitas/msg/1` — never through the outbox, a mailbox or the DHT, and never
//! into history. Typing indicators (`Kind::Typing`) travel the same way.
//!
//! One actor owns every piece of presence state: our own status, what each contact
//! last said and when, where their devices are, and when each is next due a
//! heartbeat. Inputs: commands from the [`Handle`], updates that
//! `inbound` opened, and connection events. Sends run as bounded child tasks.
//!
//! Liveness: every node sends its status to each reachable contact once per
//! heartbeat interval (announced in the update itself). A contact is shown `offline`
//! when three announced intervals pass without an update, or at once when the last
//! connection to its device closes. Contacts we cannot reach are retried with
//! backoff (1 s doubling to 5 min); a connection from one, or an update from it,
//! makes it due at once — so a restarted peer is back within a round trip of its
//! first update.

mod wire;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use communitas_crypto::{Kind, Opened};
use communitas_net::libp2p::PeerId;
use communitas_net::{Receipt, Rejection};
use communitas_store::Inserted;
use communitas_types::{Address, Timestamp};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::inbound::{Accepted, Refusal};
use crate::{Event, Handle, Inner, SendError};

/// Setting key of our own status.
const SETTING: &str = "presence";
/// Missed heartbeats after which a contact is shown offline.
const MISSED: u32 = 3;
/// First retry of an unreachable contact; doubles up to `BACKOFF_CAP`.
const BACKOFF_BASE: Duration = Duration::from_secs(1);
const BACKOFF_CAP: Duration = Duration::from_secs(300);
/// Resolved device addresses are trusted this long.
const DEVICE_TTL: Duration = Duration::from_secs(600);
/// Sends in flight at once; more wait for the next tick.
const MAX_SENDS: usize = 32;
/// A typing indicator shows this long unless renewed.
const TYPING_SHOWN: Duration = Duration::from_secs(6);
/// A "typing" is re-sent to the same contact at most this often.
const TYPING_RESEND: Duration = Duration::from_secs(3);
/// Updates older than this (sender's clock) are ignored: they say nothing about now.
const STALE: Duration = Duration::from_secs(120);
/// How often deadlines are checked.
const TICK: Duration = Duration::from_millis(250);

/// A presence status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Here.
    Online,
    /// Away from the keyboard.
    Away,
    /// Do not disturb.
    Busy,
    /// Not reachable, or appearing offline.
    Offline,
}

impl Status {
    /// The wire number (presence body, `docs/protocol.md`).
    fn to_u8(self) -> u8 {
        match self {
            Status::Online => 1,
            Status::Away => 2,
            Status::Busy => 3,
            Status::Offline => 4,
        }
    }

    fn from_u8(n: u8) -> Option<Self> {
        Some(match n {
            1 => Status::Online,
            2 => Status::Away,
            3 => Status::Busy,
            4 => Status::Offline,
            _ => return None,
        })
    }

    /// `online`, `away`, `busy` or `offline`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Online => "online",
            Status::Away => "away",
            Status::Busy => "busy",
            Status::Offline => "offline",
        }
    }
}

/// Text that is not a presence status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown presence status {0:?}: expected online, away, busy or offline")]
pub struct UnknownStatus(pub String);

impl std::str::FromStr for Status {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "online" => Status::Online,
            "away" => Status::Away,
            "busy" => Status::Busy,
            "offline" => Status::Offline,
            _ => return Err(UnknownStatus(s.chars().take(32).collect())),
        })
    }
}

/// What we know of a contact's presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Presence {
    /// Its status now.
    pub status: Status,
    /// When we last heard from it (our clock, unix ms); `None` if never.
    pub last_seen: Option<Timestamp>,
}

/// Presence settings.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// How often we tell each contact our status. Contacts show us offline after
    /// three missed intervals (90 s with the default 30 s). Clamped to 0.5–60 s, so
    /// that a heartbeat always comes before the connection's idle timeout.
    pub heartbeat: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self { heartbeat: Duration::from_secs(30) }
    }
}

pub(crate) enum Command {
    Set { status: Status, reply: oneshot::Sender<()> },
    Get { address: Address, reply: oneshot::Sender<Presence> },
    All { reply: oneshot::Sender<(Status, Vec<(Address, Presence)>)> },
    Heard { from: Address, timestamp: Timestamp, body: wire::PresenceBody },
    TypingHeard { from: Address, typing: bool },
    Typing { to: Address, typing: bool },
    Connection { peer: PeerId, open: bool },
}

use crate::devices::Devices;

/// Our view of one contact.
struct Contact {
    presence: Presence,
    /// When we last heard from it (monotonic), and how long until we give up.
    heard_at: Option<Instant>,
    window: Duration,
    /// The newest update's timestamp: older ones are replays or reordered.
    newest: Timestamp,
    devices: Option<(Devices, Instant)>,
    next_send: Instant,
    backoff: Duration,
    typing_until: Option<Instant>,
    typing_sent: Option<Instant>,
}

impl Contact {
    fn new(now: Instant) -> Self {
        Self {
            presence: Presence { status: Status::Offline, last_seen: None },
            heard_at: None,
            window: Duration::ZERO,
            newest: Timestamp::from_millis(0),
            devices: None,
            next_send: now,
            backoff: BACKOFF_BASE,
            typing_until: None,
            typing_sent: None,
        }
    }
}

/// The outcome of one send.
struct Report {
    to: Address,
    heartbeat: bool,
    devices: Option<Devices>,
    result: Result<(), String>,
}

pub(crate) struct Actor {
    inner: Arc<Inner>,
    commands: mpsc::Receiver<Command>,
    heartbeat: Duration,
    own: Status,
    contacts: HashMap<Address, Contact>,
    peers: HashMap<PeerId, Address>,
    sends: JoinSet<Report>,
    in_flight: HashSet<Address>,
}

impl Actor {
    pub(crate) fn new(
        inner: Arc<Inner>,
        commands: mpsc::Receiver<Command>,
        config: Config,
    ) -> Self {
        Self {
            inner,
            commands,
            heartbeat: config.heartbeat.clamp(wire::MIN_INTERVAL, Duration::from_secs(60)),
            own: Status::Online,
            contacts: HashMap::new(),
            peers: HashMap::new(),
            sends: JoinSet::new(),
            in_flight: HashSet::new(),
        }
    }

    pub(crate) async fn run(mut self, shutdown: CancellationToken) {
        match self.inner.store.setting(SETTING).await {
            Ok(Some(saved)) => self.own = saved.parse().unwrap_or(Status::Online),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the saved presence"),
        }
        self.reload_contacts().await;
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut reload = tokio::time::interval(self.heartbeat);
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                Some(command) = self.commands.recv() => self.handle_command(command),
                Some(done) = self.sends.join_next(), if !self.sends.is_empty() => match done {
                    Ok(report) => self.handle_report(report),
                    Err(e) => tracing::error!(error = %e, "presence send failed"),
                },
                _ = reload.tick() => self.reload_contacts().await,
                _ = tick.tick() => self.expire(),
            }
            self.start_due();
        }
        self.sends.shutdown().await;
    }

    /// Picks up contacts added since the last look (a new contact is due at once).
    async fn reload_contacts(&mut self) {
        match self.inner.store.contacts().await {
            Ok(list) => {
                let now = Instant::now();
                for c in list {
                    self.contacts.entry(c.address).or_insert_with(|| Contact::new(now));
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot list contacts for presence"),
        }
    }

    fn handle_command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Set { status, reply } => {
                let changed = status != self.own;
                self.own = status;
                if changed {
                    // Everyone hears of the change now, unreachable contacts included.
                    for c in self.contacts.values_mut() {
                        c.next_send = now;
                    }
                }
                let _ = reply.send(());
            }
            Command::Get { address, reply } => {
                let presence = self
                    .contacts
                    .get(&address)
                    .map_or(Presence { status: Status::Offline, last_seen: None }, |c| c.presence);
                let _ = reply.send(presence);
            }
            Command::All { reply } => {
                let mut all: Vec<_> = self.contacts.iter().map(|(a, c)| (*a, c.presence)).collect();
                all.sort_by_key(|(a, _)| a.to_string());
                let _ = reply.send((self.own, all));
            }
            Command::Heard { from, timestamp, body } => self.heard(from, timestamp, body, now),
            Command::TypingHeard { from, typing } => {
                let Some(c) = self.contacts.get_mut(&from) else { return };
                let was = c.typing_until.is_some();
                c.typing_until = typing.then_some(now + TYPING_SHOWN);
                if was != typing || typing {
                    self.inner.emit(Event::Typing { from, typing });
                }
            }
            Command::Typing { to, typing } => {
                // The handle checked that `to` is a contact; it may be newer than
                // our last look at the table.
                let c = self.contacts.entry(to).or_insert_with(|| Contact::new(now));
                if typing && c.typing_sent.is_some_and(|at| now < at + TYPING_RESEND) {
                    return;
                }
                c.typing_sent = typing.then_some(now);
                if self.sends.len() < MAX_SENDS {
                    let devices = fresh(&c.devices);
                    let body = wire::encode_typing(typing);
                    self.sends.spawn(send(self.inner.clone(), to, devices, Kind::Typing, body));
                }
            }
            Command::Connection { peer, open } => {
                let Some(address) = self.peers.get(&peer).copied() else { return };
                let Some(c) = self.contacts.get_mut(&address) else { return };
                if open {
                    // Whoever connects hears our status at once.
                    c.next_send = now;
                    c.backoff = BACKOFF_BASE;
                } else if c.presence.status != Status::Offline {
                    // The last connection closed: gone, until it says otherwise.
                    c.heard_at = None;
                    c.presence.status = Status::Offline;
                    let presence = c.presence;
                    self.emit(address, presence);
                }
            }
        }
    }

    fn heard(
        &mut self,
        from: Address,
        timestamp: Timestamp,
        body: wire::PresenceBody,
        now: Instant,
    ) {
        let c = self.contacts.entry(from).or_insert_with(|| Contact::new(now));
        if timestamp <= c.newest {
            return;
        }
        c.newest = timestamp;
        let was = c.presence.status;
        c.presence = Presence { status: body.status, last_seen: Some(Timestamp::now()) };
        c.heard_at = (body.status != Status::Offline).then_some(now);
        c.window = body.interval.saturating_mul(MISSED);
        if was == Status::Offline && body.status != Status::Offline {
            // Back: it has not heard from us for a while either.
            c.next_send = now;
            c.backoff = BACKOFF_BASE;
        }
        if was != body.status {
            let presence = c.presence;
            self.emit(from, presence);
        }
    }

    fn emit(&self, address: Address, presence: Presence) {
        self.inner.emit(Event::Presence {
            address,
            status: presence.status.as_str(),
            last_seen: presence.last_seen,
        });
    }

    /// Contacts whose window passed go offline; typing indicators run out.
    fn expire(&mut self) {
        let now = Instant::now();
        let mut changed = Vec::new();
        for (address, c) in &mut self.contacts {
            if let Some(heard) = c.heard_at
                && now > heard + c.window
            {
                c.heard_at = None;
                c.presence.status = Status::Offline;
                changed.push((*address, c.presence));
            }
            if c.typing_until.is_some_and(|until| now > until) {
                c.typing_until = None;
                self.inner.emit(Event::Typing { from: *address, typing: false });
            }
        }
        for (address, presence) in changed {
            self.emit(address, presence);
        }
    }

    /// Starts the heartbeats that are due.
    fn start_due(&mut self) {
        let now = Instant::now();
        for (address, c) in &mut self.contacts {
            if self.sends.len() >= MAX_SENDS {
                break;
            }
            if c.next_send > now || self.in_flight.contains(address) {
                continue;
            }
            self.in_flight.insert(*address);
            let body = wire::encode_presence(self.own, self.heartbeat);
            let devices = fresh(&c.devices);
            let task = send(self.inner.clone(), *address, devices, Kind::Presence, body);
            self.sends.spawn(async move {
                let mut report = task.await;
                report.heartbeat = true;
                report
            });
            // Until the report comes, nothing else is due for it.
            c.next_send = now + self.heartbeat;
        }
    }

    fn handle_report(&mut self, report: Report) {
        let now = Instant::now();
        if report.heartbeat {
            self.in_flight.remove(&report.to);
        }
        let Some(c) = self.contacts.get_mut(&report.to) else { return };
        match &report.devices {
            Some(devices) => {
                for (peer, _) in devices {
                    self.peers.insert(*peer, report.to);
                }
                if c.devices.as_ref().is_none_or(|(_, at)| now.duration_since(*at) > DEVICE_TTL) {
                    c.devices = Some((devices.clone(), now));
                }
            }
            None => c.devices = None,
        }
        if !report.heartbeat {
            return;
        }
        match report.result {
            Ok(()) => {
                c.backoff = BACKOFF_BASE;
                c.next_send = if self.own == Status::Offline {
                    // Told them; no heartbeats while appearing offline.
                    now + Duration::from_secs(24 * 3600)
                } else {
                    now + self.heartbeat
                };
            }
            Err(e) => {
                tracing::debug!(error = %e, "presence not delivered");
                c.next_send = now + c.backoff;
                c.backoff = (c.backoff * 2).min(BACKOFF_CAP);
            }
        }
    }
}

fn fresh(devices: &Option<(Devices, Instant)>) -> Option<Devices> {
    devices.as_ref().filter(|(_, at)| at.elapsed() < DEVICE_TTL).map(|(d, _)| d.clone())
}

/// Seals one presence or typing update to `to` and hands it to its first device
/// that takes it.
async fn send(
    inner: Arc<Inner>,
    to: Address,
    devices: Option<Devices>,
    kind: Kind,
    body: Vec<u8>,
) -> Report {
    let fail = |devices, e: String| Report { to, heartbeat: false, devices, result: Err(e) };
    let keys = match inner.pinned.keys(&inner.store, to).await {
        Ok(Some(keys)) => keys,
        Ok(None) => return fail(None, "not a contact".into()),
        Err(e) => return fail(None, e.to_string()),
    };
    let devices = match devices {
        Some(d) => d,
        None => match crate::devices::resolve(&inner, to, Some(&keys)).await {
            Ok(d) => d,
            Err(e) => return fail(None, e.to_string()),
        },
    };
    let sealed = crate::seal::fresh_id()
        .and_then(|id| crate::seal::letter(&inner, &keys, id, Timestamp::now(), kind, &body));
    let envelope = match sealed {
        Ok(e) => e,
        Err(e) => return fail(Some(devices), e.to_string()),
    };
    let mut last = String::from("no device");
    for (peer, addrs) in &devices {
        match inner.net.send(*peer, addrs.clone(), envelope.clone()).await {
            Ok(Receipt::Delivered) => {
                return Report { to, heartbeat: false, devices: Some(devices), result: Ok(()) };
            }
            Ok(other) => last = format!("refused: {other:?}"),
            Err(e) => last = e.to_string(),
        }
    }
    fail(None, last)
}

/// An opened presence or typing update from the network: only contacts are heard,
/// nothing is stored, and the actor gets it without waiting.
pub(crate) async fn accept(inner: &Inner, opened: Opened) -> Result<Accepted, Refusal> {
    let invalid = |why: String| Refusal::Rejected(Rejection::Invalid, why);
    let from = inner
        .pinned
        .address(&inner.store, &opened.sender)
        .await
        .map_err(|e| Refusal::Busy(e.to_string()))?
        .ok_or_else(|| invalid("presence from someone who is not a contact".into()))?;
    if opened.timestamp < Timestamp::now().saturating_sub(STALE) {
        return Err(Refusal::Rejected(Rejection::Stale, "an old presence update".into()));
    }
    let command = if opened.kind == Kind::Presence {
        let body = wire::decode_presence(&opened.body)
            .map_err(|e| invalid(format!("bad presence body: {e}")))?;
        Command::Heard { from, timestamp: opened.timestamp, body }
    } else {
        let typing = wire::decode_typing(&opened.body)
            .map_err(|e| invalid(format!("bad typing body: {e}")))?;
        Command::TypingHeard { from, typing }
    };
    inner.presence.try_send(command).map_err(|_| Refusal::Busy("presence is behind".into()))?;
    Ok(Accepted { inserted: Inserted::New, text_from: None })
}

impl Handle {
    async fn ask_presence<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, SendError> {
        let (reply, answer) = oneshot::channel();
        self.inner.presence.send(make(reply)).await.map_err(|_| SendError::ShuttingDown)?;
        answer.await.map_err(|_| SendError::ShuttingDown)
    }

    async fn require_contact(&self, address: Address) -> Result<(), SendError> {
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
        self.inner
            .presence
            .send(Command::Typing { to, typing })
            .await
            .map_err(|_| SendError::ShuttingDown)
    }
}

pub(crate) fn connection(inner: &Inner, peer: PeerId, open: bool) {
    // A full inbox only delays the offline view to the heartbeat window.
    let _ = inner.presence.try_send(Command::Connection { peer, open });
}
