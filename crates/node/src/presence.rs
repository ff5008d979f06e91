//! Presence and typing indicators (ARCHITECTURE §8, decision 0030): the driver of
//! [`communitas_proto::presence::Machine`], which holds every rule and all state.
//!
//! The actor owns the machine and feeds it, in one loop: commands from the
//! [`Handle`](crate::Handle) (set our status, typing), updates that `inbound` opened
//! and judged (contacts only, not stale), connection events, the contact list
//! (at start, once per heartbeat, and at once when a contact is added), the results
//! of its sends, and its own wake-ups. It carries out what the machine returns, in
//! order: each `Send` is sealed and sent by a bounded child task (`send`), whose
//! result comes back as `SendDone`; each event goes to `/v1/events`; `WakeAt` sets
//! the one timer. Queries (`presence`, `presence_all`) read the machine.
//!
//! ```text
//! Handle ─ Command ─▶ Actor ─ Input ─▶ Machine ─ Output ─▶ Actor ─┬─ send::run (child task) ─▶ SendDone
//! inbound::accept ─ Heard ─┘                                      ├─ Inner::emit (Event)
//!                                                                 └─ timer (WakeAt) ─▶ Tick
//! ```

mod send;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use communitas_net::libp2p::{Multiaddr, PeerId};
use communitas_proto::presence::{self as machine, Input, Machine, Output, Update};
use communitas_types::{Address, Timestamp};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use communitas_proto::presence::{Config, Presence, Status, UnknownStatus};

pub(crate) use crate::commands::presence::Command;
use crate::rng::Os;
use crate::{Event, Inner};

/// Setting key of our own status.
pub(crate) const SETTING: &str = "presence";

type Outputs = Vec<Output<PeerId, Vec<Multiaddr>>>;

pub(crate) struct Actor {
    inner: Arc<Inner>,
    commands: mpsc::Receiver<Command>,
    machine: Machine<PeerId, Vec<Multiaddr>>,
    rng: Os,
    /// Sends in flight; the machine keeps them at most `presence::MAX_SENDS`.
    sends: JoinSet<send::Done>,
    /// What each send carries, so that one whose task failed is still reported.
    running: HashMap<tokio::task::Id, (Address, Update)>,
    /// The machine's latest wake-up wish.
    wake: Option<Timestamp>,
    out: Outputs,
}

impl Actor {
    pub(crate) fn new(
        inner: Arc<Inner>,
        commands: mpsc::Receiver<Command>,
        config: Config,
        rng: Os,
    ) -> Self {
        Self {
            inner,
            commands,
            machine: Machine::new(config, Status::Online),
            rng,
            sends: JoinSet::new(),
            running: HashMap::new(),
            wake: None,
            out: Vec::new(),
        }
    }

    pub(crate) async fn run(mut self, shutdown: CancellationToken) {
        match self.inner.store.setting(SETTING).await {
            Ok(Some(saved)) => self.feed(Input::SetStatus(saved.parse().unwrap_or(Status::Online))),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the saved presence"),
        }
        self.reload_contacts().await;
        // Every path that makes a contact (adding one, accepting a request, unblocking)
        // tells the actor at once and waits for room (issue 15 item 5); this reload
        // only repairs a view that missed one.
        let every = self.machine.heartbeat();
        let mut reload = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        reload.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(timer);
        let mut armed = None;
        loop {
            if armed != self.wake {
                armed = self.wake;
                if let Some(at) = armed {
                    timer.as_mut().reset(instant(at));
                }
            }
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                Some(command) = self.commands.recv() => self.handle_command(command),
                Some(done) = self.sends.join_next_with_id(), if !self.sends.is_empty() => {
                    self.handle_done(done);
                }
                _ = reload.tick() => self.reload_contacts().await,
                () = &mut timer, if armed.is_some() => {
                    // Re-armed after every tick, even to the same time: a wall clock
                    // behind the monotonic one must not spin on a finished timer.
                    armed = None;
                    self.feed(Input::Tick);
                }
            }
        }
        self.sends.shutdown().await;
    }

    /// Hands one input to the machine and carries out what it returns, in order.
    fn feed(&mut self, input: Input<PeerId, Vec<Multiaddr>>) {
        let mut out = std::mem::take(&mut self.out);
        self.machine.handle(input, Timestamp::now(), &mut self.rng, &mut out);
        self.wake = None;
        for output in out.drain(..) {
            match output {
                Output::Send { to, kind, body, devices } => {
                    let task = send::run(self.inner.clone(), to, kind, body, devices);
                    let id = self.sends.spawn(task).id();
                    self.running.insert(id, (to, kind));
                }
                Output::Event(event) => self.inner.emit(match event {
                    machine::Event::Presence { address, presence } => Event::Presence {
                        address,
                        status: presence.status,
                        last_seen: presence.last_seen,
                    },
                    machine::Event::Typing { from, typing } => Event::Typing { from, typing },
                }),
                Output::WakeAt(at) => self.wake = Some(at),
            }
        }
        self.out = out;
    }

    /// The contacts table, for contacts added since the last look.
    async fn reload_contacts(&mut self) {
        match self.inner.store.contacts().await {
            Ok(list) => {
                // Blocked contacts stay contacts but get nothing (issue 15).
                let consent = &self.inner.consent;
                let list = list.into_iter().map(|c| c.address).filter(|a| !consent.is_blocked(a));
                self.feed(Input::ContactsLoaded(list.collect()))
            }
            Err(e) => tracing::warn!(error = %e, "cannot list contacts for presence"),
        }
    }

    fn handle_command(&mut self, command: Command) {
        match command {
            Command::Set { status, reply } => {
                self.feed(Input::SetStatus(status));
                let _ = reply.send(());
            }
            Command::Get { address, reply } => {
                let _ = reply.send(self.machine.presence(&address));
            }
            Command::All { reply } => {
                let _ = reply.send((self.machine.own(), self.machine.all()));
            }
            Command::Heard { from, timestamp, body } => {
                self.feed(Input::Heard { from, timestamp, body });
            }
            Command::Typing { to, typing } => self.feed(Input::Typing { to, typing }),
            Command::Connection { peer, open: true } => self.feed(Input::Connected(peer)),
            Command::Connection { peer, open: false } => self.feed(Input::Disconnected(peer)),
            Command::ContactAdded(address) => self.feed(Input::ContactAdded(address)),
            Command::ContactRemoved(address) => self.feed(Input::ContactRemoved(address)),
        }
    }

    fn handle_done(&mut self, done: Result<(tokio::task::Id, send::Done), tokio::task::JoinError>) {
        let done = match done {
            Ok((id, done)) => {
                self.running.remove(&id);
                done
            }
            Err(e) => {
                tracing::error!(error = %e, "presence send failed");
                let Some((to, kind)) = self.running.remove(&e.id()) else { return };
                send::Done { to, kind, delivered: false, devices: None }
            }
        };
        let send::Done { to, kind, delivered, devices } = done;
        self.feed(Input::SendDone { to, kind, delivered, devices });
    }
}

/// The monotonic instant of a wall-clock time.
fn instant(at: Timestamp) -> tokio::time::Instant {
    let wait = at.as_millis().saturating_sub(Timestamp::now().as_millis());
    tokio::time::Instant::now() + Duration::from_millis(wait)
}
