//! Request-response plumbing for `/communitas/msg/1` and `/communitas/mbox/1`.
//!
//! Outbound: a request goes to the swarm and its reply channel waits here, by request
//! id, until the answer or the failure comes back ([`Pending`]). Inbound: a request is
//! handed to the node with its responder on the bounded event channel; when the node is
//! behind, the loop does not wait: it answers at once (`Busy`, or the mailbox's
//! `Unavailable`) and counts the shed request ([`EventLoop::hand_over`]). One peer may
//! have at most [`inflight::PER_PEER`] requests waiting at the node; past that its
//! requests are answered the same way before the node sees them, so one peer cannot
//! fill the buffer that every peer shares.

use std::collections::HashMap;

use libp2p::request_response::{self, OutboundRequestId};
use libp2p::{Multiaddr, PeerId};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::oneshot;

use super::EventLoop;
use crate::client::{MboxResponder, Responder};
use crate::codec::Receipt;
use crate::inflight::{self, InFlight};
use crate::links::ConnectionKind;
use crate::mbox::{MboxRequest, MboxResponse, Refusal};
use crate::{Error, Event};

/// Our requests of one protocol waiting for their answers.
struct Pending<T>(HashMap<OutboundRequestId, oneshot::Sender<Result<T, Error>>>);

impl<T> Default for Pending<T> {
    fn default() -> Self {
        Self(HashMap::new())
    }
}

impl<T> Pending<T> {
    fn wait(&mut self, id: OutboundRequestId, reply: oneshot::Sender<Result<T, Error>>) {
        self.0.insert(id, reply);
    }

    /// Hands the outcome of request `id` to whoever waits for it (if anyone still does).
    fn answer(&mut self, id: OutboundRequestId, outcome: Result<T, Error>) {
        if let Some(reply) = self.0.remove(&id) {
            let _ = reply.send(outcome);
        }
    }

    /// Settles a response or an outbound failure; passes inbound requests back.
    fn settle<Req>(
        &mut self,
        event: request_response::Event<Req, T>,
    ) -> Option<request_response::Event<Req, T>> {
        match event {
            request_response::Event::Message {
                message: request_response::Message::Response { request_id, response },
                ..
            } => self.answer(request_id, Ok(response)),
            request_response::Event::OutboundFailure { request_id, error, .. } => {
                self.answer(request_id, Err(Error::Unreachable(error.into())))
            }
            other => return Some(other),
        }
        None
    }
}

/// The request-response state of the event loop.
#[derive(Default)]
pub(super) struct Requests {
    sends: Pending<Receipt>,
    mailbox: Pending<MboxResponse>,
    /// Inbound requests answered at once because the node was behind.
    shed: u64,
    /// Inbound requests each peer has waiting at the node.
    inflight: InFlight,
}

impl Requests {
    pub(super) fn shed(&self) -> u64 {
        self.shed
    }
}

impl EventLoop {
    /// Sends an envelope, dialling `peer` on `addrs` if need be.
    pub(super) fn send(
        &mut self,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        envelope: Vec<u8>,
        reply: oneshot::Sender<Result<Receipt, Error>>,
    ) {
        for addr in addrs {
            self.swarm.add_peer_address(peer, addr);
        }
        let id = self.swarm.behaviour_mut().msg.send_request(&peer, envelope);
        self.requests.sends.wait(id, reply);
    }

    pub(super) fn mailbox(
        &mut self,
        peer: PeerId,
        request: MboxRequest,
        reply: oneshot::Sender<Result<MboxResponse, Error>>,
    ) {
        let id = self.swarm.behaviour_mut().mbox.send_request(&peer, request);
        self.requests.mailbox.wait(id, reply);
    }

    pub(super) fn handle_msg(&mut self, event: request_response::Event<Vec<u8>, Receipt>) {
        match self.requests.sends.settle(event) {
            Some(request_response::Event::Message {
                peer,
                connection_id,
                message: request_response::Message::Request { request, channel, .. },
            }) => {
                if self.links.kind(connection_id) == Some(ConnectionKind::Relayed) {
                    // Rare (only until hole punching succeeds), so worth a line.
                    tracing::info!(%peer, "message arrived through a relay circuit");
                }
                let Some(permit) = self.requests.inflight.try_acquire(peer, inflight::PER_PEER)
                else {
                    self.metrics.refuse("msg_peer_share");
                    let _ = self.swarm.behaviour_mut().msg.send_response(channel, Receipt::Busy);
                    return;
                };
                let responder = Responder::new(channel, self.client.clone(), Some(permit));
                self.hand_over(Event::Message { peer, envelope: request, responder });
            }
            Some(request_response::Event::InboundFailure { peer, error, .. }) => {
                tracing::debug!(%peer, %error, "inbound message failed");
            }
            _ => {}
        }
    }

    pub(super) fn handle_mbox(
        &mut self,
        event: request_response::Event<MboxRequest, MboxResponse>,
    ) {
        if let Some(request_response::Event::Message {
            peer,
            message: request_response::Message::Request { request, channel, .. },
            ..
        }) = self.requests.mailbox.settle(event)
        {
            let Some(permit) = self.requests.inflight.try_acquire(peer, inflight::PER_PEER) else {
                self.metrics.refuse("mbox_peer_share");
                let busy = MboxResponse::Refused(Refusal::Unavailable);
                let _ = self.swarm.behaviour_mut().mbox.send_response(channel, busy);
                return;
            };
            let responder = MboxResponder::new(channel, self.client.clone(), Some(permit));
            self.hand_over(Event::Mailbox { peer, request, responder });
        }
    }

    /// Passes an inbound request to the node without waiting; if its buffer is full
    /// (or it stopped), answers the request now so the sender is not left hanging: a
    /// message `Busy` (it retries later), a mailbox request `Unavailable`.
    fn hand_over(&mut self, event: Event) {
        let event = match self.events.try_send(event) {
            Ok(()) => return,
            Err(TrySendError::Full(event) | TrySendError::Closed(event)) => event,
        };
        self.requests.shed += 1;
        let behaviour = self.swarm.behaviour_mut();
        // Fails only if the requester hung up already.
        match event {
            Event::Message { responder, .. } => {
                let _ = behaviour.msg.send_response(responder.into_channel(), Receipt::Busy);
            }
            Event::Mailbox { responder, .. } => {
                let busy = MboxResponse::Refused(Refusal::Unavailable);
                let _ = behaviour.mbox.send_response(responder.into_channel(), busy);
            }
            _ => {}
        }
    }
}
