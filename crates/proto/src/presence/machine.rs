//! The presence machine: one [`Contact`] per tracked contact, and the rules that
//! move it — heartbeats due, windows missed, connections closed, typing run out,
//! unreachable contacts backed off.
//!
//! Every [`Machine::handle`] applies its input, then lets time act (windows and
//! typing indicators that ran out, heartbeats that are due) and ends with the next
//! [`Output::WakeAt`], so the driver never polls.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use communitas_types::{Address, DecodeError, Timestamp};

use super::wire::{self, PresenceBody};
use super::{
    Config, DEVICE_TTL, MAX_SENDS, MISSED, Presence, QUIET, Status, TYPING_RESEND, TYPING_SHOWN,
};
use crate::Random;
use crate::backoff::Backoff;

/// A contact's devices: each device's peer id and what the driver dials it at
/// (opaque here), in the order its identity record lists them.
pub type Devices<P, M> = Vec<(P, M)>;

/// Which update a send carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Update {
    /// Our status: `Kind::Presence`, a heartbeat.
    Presence,
    /// Typing or stopped: `Kind::Typing`.
    Typing,
}

/// An update's body, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// A contact's status and heartbeat interval.
    Presence(PresenceBody),
    /// A contact typing to us (`true`) or stopped.
    Typing(bool),
}

impl Body {
    /// Decodes the body of an update of `kind`.
    pub fn decode(kind: Update, bytes: &[u8]) -> Result<Self, DecodeError> {
        match kind {
            Update::Presence => wire::decode_presence(bytes).map(Body::Presence),
            Update::Typing => wire::decode_typing(bytes).map(Body::Typing),
        }
    }
}

/// What happens to the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input<P, M> {
    /// We set our own status (the driver has saved it). A change is due to every
    /// contact at once.
    SetStatus(Status),
    /// We are typing to contact `to`, or stopped.
    Typing {
        /// The contact.
        to: Address,
        /// Typing now.
        typing: bool,
    },
    /// An update from a contact, opened and checked by the driver: its sender is a
    /// contact and it is not [stale](super::is_stale).
    Heard {
        /// The contact.
        from: Address,
        /// The sender's clock when it sent the update.
        timestamp: Timestamp,
        /// What it said.
        body: Body,
    },
    /// A connection to a device opened.
    Connected(P),
    /// The last connection to a device closed.
    Disconnected(P),
    /// The contacts table, as read now: new ones are tracked, and due at once.
    ContactsLoaded(Vec<Address>),
    /// A contact was just added: tracked, and due at once.
    ContactAdded(Address),
    /// A contact is no longer one we talk to (blocked, issue 15): untracked, so
    /// nothing more is sent to it and what it sends is not shown.
    ContactRemoved(Address),
    /// A [`Output::Send`] finished.
    SendDone {
        /// The contact it went to.
        to: Address,
        /// The update it carried.
        kind: Update,
        /// Whether a device took it.
        delivered: bool,
        /// The devices it was tried at, if they are worth keeping (`None` when they
        /// could not be found or none answered, so the next send looks them up).
        devices: Option<Devices<P, M>>,
    },
    /// A time asked for with [`Output::WakeAt`] came.
    Tick,
}

/// What the machine wants done, in order. Deliberately exhaustive (as are
/// [`Input`] and [`Event`]): a new output must break the driver's build, not be
/// ignored by a wildcard arm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output<P, M> {
    /// Seal `body` as an update of `kind` to contact `to` and hand it to the first of
    /// its devices that takes it; report with [`Input::SendDone`].
    Send {
        /// The contact.
        to: Address,
        /// The update.
        kind: Update,
        /// Its body ([`wire`]).
        body: Vec<u8>,
        /// Its devices, if known and fresh; `None`: look them up.
        devices: Option<Devices<P, M>>,
    },
    /// Show this to the user.
    Event(Event),
    /// Feed [`Input::Tick`] at this time. Every [`Machine::handle`] ends with at most
    /// one, which replaces any earlier wish; none means no timer is needed.
    WakeAt(Timestamp),
}

/// What the user sees change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A contact's presence changed.
    Presence {
        /// The contact.
        address: Address,
        /// Its presence now.
        presence: Presence,
    },
    /// A contact started or stopped typing to us.
    Typing {
        /// The contact.
        from: Address,
        /// Typing now.
        typing: bool,
    },
}

/// Our view of one contact.
#[derive(Debug)]
struct Contact<P, M> {
    presence: Presence,
    /// When it goes offline unless it speaks again: its last update plus three of
    /// its announced intervals. `None` while offline.
    online_until: Option<Timestamp>,
    /// The newest update's timestamp (sender's clock): older ones are replays or
    /// reordered.
    newest: Timestamp,
    /// Its devices and when they were looked up.
    devices: Option<(Devices<P, M>, Timestamp)>,
    /// The peer ids of those devices (kept when a lookup fails, to read connection
    /// events), and the ones connected now.
    peers: BTreeSet<P>,
    connected: BTreeSet<P>,
    /// When our next heartbeat to it is due.
    next_send: Timestamp,
    /// A heartbeat to it is in flight.
    sending: bool,
    /// It became due while a heartbeat was in flight: due again when that finishes.
    again: bool,
    /// Heartbeats in a row that no device took.
    failures: u32,
    /// Its "typing" shows until then.
    typing_until: Option<Timestamp>,
    /// When we last told it "typing".
    typing_sent: Option<Timestamp>,
}

impl<P: Copy + Ord, M: Clone> Contact<P, M> {
    fn new(now: Timestamp) -> Self {
        Self {
            presence: Presence::UNKNOWN,
            online_until: None,
            newest: Timestamp::from_millis(0),
            devices: None,
            peers: BTreeSet::new(),
            connected: BTreeSet::new(),
            next_send: now,
            sending: false,
            again: false,
            failures: 0,
            typing_until: None,
            typing_sent: None,
        }
    }

    /// Our heartbeat to it is due now (or as soon as the one in flight finishes).
    fn due(&mut self, now: Timestamp) {
        if self.sending {
            self.again = true;
        } else {
            self.next_send = now;
        }
    }

    fn fresh_devices(&self, now: Timestamp) -> Option<Devices<P, M>> {
        let (devices, at) = self.devices.as_ref()?;
        (now < at.saturating_add(DEVICE_TTL)).then(|| devices.clone())
    }

    fn go_offline(&mut self) -> Presence {
        self.online_until = None;
        self.presence.status = Status::Offline;
        self.presence
    }
}

/// The presence and typing machine (module docs: [`super`]). `P` is a device's peer
/// id, `M` what the driver dials a device at; both are opaque to it.
#[derive(Debug)]
pub struct Machine<P, M> {
    heartbeat: Duration,
    own: Status,
    contacts: BTreeMap<Address, Contact<P, M>>,
    /// Which contact each known device belongs to.
    peers: BTreeMap<P, Address>,
    /// Sends asked for and not yet done, at most [`MAX_SENDS`].
    in_flight: usize,
}

fn track<P: Copy + Ord, M: Clone>(
    contacts: &mut BTreeMap<Address, Contact<P, M>>,
    address: Address,
    now: Timestamp,
) -> &mut Contact<P, M> {
    contacts.entry(address).or_insert_with(|| Contact::new(now))
}

const MS: Duration = Duration::from_millis(1);

impl<P: Copy + Ord, M: Clone> Machine<P, M> {
    /// A machine with our saved status and no contacts yet.
    pub fn new(config: Config, own: Status) -> Self {
        Self {
            heartbeat: config.interval(),
            own,
            contacts: BTreeMap::new(),
            peers: BTreeMap::new(),
            in_flight: 0,
        }
    }

    /// Our own status.
    pub fn own(&self) -> Status {
        self.own
    }

    /// The heartbeat interval we announce.
    pub fn heartbeat(&self) -> Duration {
        self.heartbeat
    }

    /// What we know of a contact (offline, never seen, if untracked).
    pub fn presence(&self, address: &Address) -> Presence {
        self.contacts.get(address).map_or(Presence::UNKNOWN, |c| c.presence)
    }

    /// Every tracked contact's presence, ordered by address text.
    pub fn all(&self) -> Vec<(Address, Presence)> {
        let mut all: Vec<_> = self.contacts.iter().map(|(a, c)| (*a, c.presence)).collect();
        all.sort_by_cached_key(|(a, _)| a.to_string());
        all
    }

    /// Applies `input` at `now` and appends what to do to `out`.
    pub fn handle(
        &mut self,
        input: Input<P, M>,
        now: Timestamp,
        rng: &mut impl Random,
        out: &mut Vec<Output<P, M>>,
    ) {
        match input {
            Input::SetStatus(status) => self.set_status(status, now),
            Input::Typing { to, typing } => self.typing_to(to, typing, now, out),
            Input::Heard { from, timestamp, body: Body::Presence(body) } => {
                self.heard(from, timestamp, body, now, out);
            }
            Input::Heard { from, body: Body::Typing(typing), .. } => {
                let c = track(&mut self.contacts, from, now);
                let was = c.typing_until.is_some();
                c.typing_until = typing.then(|| now.saturating_add(TYPING_SHOWN));
                // A renewed "typing" is shown again: the view restarts its timer too.
                if was != typing || typing {
                    out.push(Output::Event(Event::Typing { from, typing }));
                }
            }
            Input::Connected(peer) => self.connection(peer, true, now, out),
            Input::Disconnected(peer) => self.connection(peer, false, now, out),
            Input::ContactsLoaded(list) => {
                for address in list {
                    track(&mut self.contacts, address, now);
                }
            }
            Input::ContactAdded(address) => {
                track(&mut self.contacts, address, now);
            }
            Input::ContactRemoved(address) => {
                if self.contacts.remove(&address).is_some() {
                    self.peers.retain(|_, owner| *owner != address);
                }
            }
            Input::SendDone { to, kind, delivered, devices } => {
                self.send_done(to, kind, delivered, devices, now, rng);
            }
            Input::Tick => {}
        }
        self.expire(now, out);
        self.start_due(now, out);
        if let Some(at) = self.next_wake() {
            out.push(Output::WakeAt(at));
        }
    }

    fn set_status(&mut self, status: Status, now: Timestamp) {
        if status == self.own {
            return;
        }
        self.own = status;
        // Everyone hears of the change now, unreachable contacts included.
        for c in self.contacts.values_mut() {
            c.due(now);
        }
    }

    fn typing_to(
        &mut self,
        to: Address,
        typing: bool,
        now: Timestamp,
        out: &mut Vec<Output<P, M>>,
    ) {
        let c = track(&mut self.contacts, to, now);
        if typing && c.typing_sent.is_some_and(|at| now < at.saturating_add(TYPING_RESEND)) {
            return;
        }
        if self.in_flight >= MAX_SENDS {
            return;
        }
        c.typing_sent = typing.then_some(now);
        self.in_flight += 1;
        let devices = c.fresh_devices(now);
        out.push(Output::Send {
            to,
            kind: Update::Typing,
            body: wire::encode_typing(typing),
            devices,
        });
    }

    fn heard(
        &mut self,
        from: Address,
        timestamp: Timestamp,
        body: PresenceBody,
        now: Timestamp,
        out: &mut Vec<Output<P, M>>,
    ) {
        let c = track(&mut self.contacts, from, now);
        if timestamp <= c.newest {
            return;
        }
        c.newest = timestamp;
        let was = c.presence.status;
        c.presence = Presence { status: body.status, last_seen: Some(now) };
        c.online_until = (body.status != Status::Offline)
            .then(|| now.saturating_add(body.interval.saturating_mul(MISSED)));
        if body.status != Status::Offline && (was == Status::Offline || c.failures > 0) {
            // Back, or reachable after all: it has not heard from us for a while either.
            c.failures = 0;
            c.due(now);
        }
        if was != body.status {
            out.push(Output::Event(Event::Presence { address: from, presence: c.presence }));
        }
    }

    fn connection(&mut self, peer: P, open: bool, now: Timestamp, out: &mut Vec<Output<P, M>>) {
        let Some(address) = self.peers.get(&peer).copied() else { return };
        let Some(c) = self.contacts.get_mut(&address) else { return };
        if open {
            // Whoever connects hears our status at once.
            c.connected.insert(peer);
            c.failures = 0;
            c.due(now);
            return;
        }
        c.connected.remove(&peer);
        if c.connected.is_empty() && c.presence.status != Status::Offline {
            // The last connection to its devices closed: gone, until it says otherwise.
            let presence = c.go_offline();
            out.push(Output::Event(Event::Presence { address, presence }));
        }
    }

    fn send_done(
        &mut self,
        to: Address,
        kind: Update,
        delivered: bool,
        devices: Option<Devices<P, M>>,
        now: Timestamp,
        rng: &mut impl Random,
    ) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let Some(c) = self.contacts.get_mut(&to) else { return };
        match devices {
            Some(devices) => {
                let ids: BTreeSet<P> = devices.iter().map(|(p, _)| *p).collect();
                // Devices its record no longer lists are forgotten.
                for gone in c.peers.difference(&ids) {
                    if self.peers.get(gone) == Some(&to) {
                        self.peers.remove(gone);
                    }
                    c.connected.remove(gone);
                }
                for id in &ids {
                    self.peers.insert(*id, to);
                }
                c.peers = ids;
                // Freshness counts from the lookup, not from each use.
                if c.fresh_devices(now).is_none() {
                    c.devices = Some((devices, now));
                }
            }
            None => c.devices = None,
        }
        if kind != Update::Presence {
            return;
        }
        c.sending = false;
        c.next_send = if delivered {
            c.failures = 0;
            // Appearing offline: told them once; no heartbeats until it changes.
            now.saturating_add(if self.own == Status::Offline { QUIET } else { self.heartbeat })
        } else {
            let wait = Backoff::PRESENCE.wait(c.failures, rng);
            c.failures = c.failures.saturating_add(1);
            now.saturating_add(wait)
        };
        if std::mem::take(&mut c.again) {
            c.next_send = now;
        }
    }

    /// Contacts whose window passed go offline; typing indicators run out.
    fn expire(&mut self, now: Timestamp, out: &mut Vec<Output<P, M>>) {
        for (address, c) in &mut self.contacts {
            if c.online_until.is_some_and(|until| now > until) {
                let presence = c.go_offline();
                out.push(Output::Event(Event::Presence { address: *address, presence }));
            }
            if c.typing_until.is_some_and(|until| now > until) {
                c.typing_until = None;
                out.push(Output::Event(Event::Typing { from: *address, typing: false }));
            }
        }
    }

    /// Asks for the heartbeats that are due, as far as free slots go.
    fn start_due(&mut self, now: Timestamp, out: &mut Vec<Output<P, M>>) {
        let mut body = None;
        for (address, c) in &mut self.contacts {
            if self.in_flight >= MAX_SENDS {
                break;
            }
            if c.sending || c.next_send > now {
                continue;
            }
            c.sending = true;
            self.in_flight += 1;
            let body = body.get_or_insert_with(|| wire::encode_presence(self.own, self.heartbeat));
            out.push(Output::Send {
                to: *address,
                kind: Update::Presence,
                body: body.clone(),
                devices: c.fresh_devices(now),
            });
        }
    }

    /// The earliest deadline: a window or a typing indicator running out (just
    /// after its last moment), or a heartbeat due (unless every slot is taken: then
    /// a [`Input::SendDone`] comes first).
    fn next_wake(&self) -> Option<Timestamp> {
        let slots = self.in_flight < MAX_SENDS;
        self.contacts
            .values()
            .flat_map(|c| {
                [
                    c.online_until.map(|t| t.saturating_add(MS)),
                    c.typing_until.map(|t| t.saturating_add(MS)),
                    (slots && !c.sending).then_some(c.next_send),
                ]
            })
            .flatten()
            .min()
    }
}
