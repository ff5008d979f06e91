//! Dispatch: the one loop over the network's events, routing each to the driver
//! that owns it. It decides nothing about a message itself.
//!
//! ```text
//! net::Event ─┬─ Message        ─ rate limit ─┬ familiar ─ bound ─ task: inbound::answer
//!             │                               └ other ── the strangers' lane (`lanes`)
//!             ├─ Mailbox        ─ rate limit ─ the mailbox server's inbox
//!             ├─ Connection     ─ outbox, files, presence (their commands); UI event
//!             ├─ AddressesChanged ─ the identity publisher
//!             └─ Link, HolePunch, PingFailed ─ metrics
//! ```
//!
//! It sits at the top of the node's modules: it may name any driver, and none names
//! it. A direct envelope gets its own task (at most `max_inbound` at once; beyond that
//! its sender is told `Busy` and retries), so one slow commit or address derivation
//! never holds up the loop; the answer is sent from that task once the commit is done.

use std::sync::Arc;
use std::time::Duration;

use communitas_net::mbox::{MboxRequest, MboxResponse, Refusal};
use communitas_net::{Event as NetEvent, Receipt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::limits::Kind as Bucket;
use crate::{Event, Inner};

/// Where the dispatcher hands events that another task serves.
pub(crate) struct Channels {
    /// The identity publisher: our addresses changed.
    pub(crate) publish: mpsc::Sender<()>,
    /// The mailbox server's requests.
    pub(crate) mailbox: mpsc::Sender<crate::mailbox::Request>,
}

/// Runs until `shutdown` or until the network stops.
pub(crate) async fn run(
    inner: Arc<Inner>,
    mut events: mpsc::Receiver<NetEvent>,
    channels: Channels,
    max_inbound: usize,
    shutdown: CancellationToken,
) {
    let mut tasks = JoinSet::new();
    let mut lane = crate::lanes::Lane::new();
    let mut tidy = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            _ = tidy.tick() => inner.limiters.forget_idle(),
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            Some(_) = lane.tasks.join_next(), if !lane.tasks.is_empty() => lane.next(&inner).await,
            event = events.recv() => match event {
                None => break,
                Some(event) => {
                    dispatch(&inner, &channels, &mut tasks, &mut lane, max_inbound, event).await;
                }
            }
        }
    }
    tasks.shutdown().await;
    lane.tasks.shutdown().await;
}

/// Routes one event.
async fn dispatch(
    inner: &Arc<Inner>,
    channels: &Channels,
    tasks: &mut JoinSet<()>,
    lane: &mut crate::lanes::Lane,
    max_inbound: usize,
    event: NetEvent,
) {
    match event {
        NetEvent::Message { peer, envelope, responder } => {
            if !inner.limiters.allow(&peer, Bucket::Message) {
                inner.metrics.limited("msg");
                let _ = responder.send(Receipt::RateLimited).await;
                return;
            }
            if !inner.familiar.knows(&peer) {
                lane.offer(inner, peer, envelope, responder).await;
                return;
            }
            if tasks.len() >= max_inbound {
                inner.metrics.shed.inc();
                let _ = responder.send(Receipt::Busy).await;
                return;
            }
            tracing::trace!(%peer, len = envelope.len(), "envelope arrived");
            let inner = inner.clone();
            tasks.spawn(
                async move { crate::inbound::answer(&inner, peer, envelope, responder).await },
            );
        }
        NetEvent::AddressesChanged => {
            let _ = channels.publish.try_send(());
        }
        NetEvent::Mailbox { peer, request, responder } => {
            let kind = match request {
                MboxRequest::Put { .. }
                | MboxRequest::Offer { .. }
                | MboxRequest::Replicate { .. } => Bucket::MailboxPut,
                _ => Bucket::MailboxFetch,
            };
            if !inner.limiters.allow(&peer, kind) {
                inner.metrics.limited("mbox");
                let _ = responder.send(MboxResponse::Refused(Refusal::RateLimited)).await;
                return;
            }
            let request = crate::mailbox::Request { peer, request, responder };
            if let Err(mpsc::error::TrySendError::Full(r) | mpsc::error::TrySendError::Closed(r)) =
                channels.mailbox.try_send(request)
            {
                inner.metrics.shed.inc();
                let _ = r.responder.send(MboxResponse::Refused(Refusal::Unavailable)).await;
            }
        }
        NetEvent::Connection { peer, open, connected } => {
            inner.metrics.connected_peers.set(i64::try_from(connected).unwrap_or(i64::MAX));
            // Full inboxes only delay these: the outbox and the files actor retry on
            // their own timers, presence goes offline at the heartbeat window.
            if open {
                inner.outbox.hint_online(peer);
                inner.files.hint_online();
            }
            inner.presence.hint_connection(peer, open);
            inner.emit(Event::Connection { peer: peer.to_string(), open, connected });
        }
        // Connection kinds and liveness (issue 6): metrics only.
        NetEvent::Link { kind, open, .. } => inner.metrics.link(kind.as_str(), open),
        NetEvent::HolePunch { ok, .. } => inner.metrics.hole_punch(ok),
        NetEvent::PingFailed { .. } => {
            inner.metrics.ping_failures.inc();
        }
        _ => {}
    }
}
