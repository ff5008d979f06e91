//! A delivery node: the sender's outbox (`communitas_proto::outbox::Outbox`) and the
//! receiver's acceptance by the inbound rules, over `/communitas/msg/1`.
//!
//! Sender: a send writes the outbox row first and enqueues it once committed (the
//! row is on disk before `send` returns); an `Attempt` is a direct request to the
//! recipient (no mailbox here), whose answer is the outcome; the machine's writes
//! go to the rows on disk and come back as `Persisted` (or `Gone`, when the row is
//! no longer there). Receiver: what the node's inbound driver does — `decide` the
//! letter, record the seen id and the message in one write, and answer `Delivered`
//! only from that commit (`Record::committed`), showing only a new one.
//!
//! Letters are stand-ins (id, time, body: no sealing). Opening is the costliest step
//! by far and is not what these scenarios test; the mailbox scenarios open real
//! envelopes.

use std::collections::BTreeMap;

use communitas_crypto::{Kind, Opened};
use communitas_proto::inbound::{self, Answer, Inserted, Plan};
use communitas_proto::outbox::{self, Entry, Outbox, Outcome, Status};
use communitas_types::{MessageId, Timestamp};

use super::fixtures::{address, identity, node_of};
use super::world::{Cx, NetError, Node, NodeId, ReqId};

/// Attempts running at once (the node's default).
const MAX_RUNNING: usize = 32;

/// A receiver's history: seen ids and the messages shown.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Seen message ids, until when they are remembered.
    pub seen: BTreeMap<MessageId, Timestamp>,
    /// The messages shown, in order.
    pub messages: Vec<MessageId>,
}

/// A node's durable state: its outbox rows, dead letters and history.
#[derive(Debug, Clone, Default)]
pub struct Disk {
    /// Outbox rows.
    pub rows: BTreeMap<MessageId, Entry>,
    /// Dead letters, with the reason.
    pub dead: BTreeMap<MessageId, String>,
    /// Received messages.
    pub history: History,
}

/// A write.
#[derive(Debug)]
pub enum Write {
    /// A new outbox row (the send).
    Insert(Entry),
    /// The outbox machine's write, and whether its row was there.
    Outbox(outbox::Write, Option<bool>),
    /// A received message: its seen id and the message, then the answer to `reply`.
    Accept {
        id: MessageId,
        seen_until: Timestamp,
        record: Option<inbound::Record>,
        reply: ReqId,
        inserted: Option<Inserted>,
    },
}

/// What the scenario asks.
#[derive(Debug)]
pub enum Command {
    /// Send `body` to `to` as message `id`.
    Send { to: NodeId, id: MessageId, body: Vec<u8> },
}

/// What the scenario sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The row is on disk: the send returned.
    Queued(MessageId),
    /// An attempt started.
    Attempt(MessageId),
    /// The user sees this status.
    Status(MessageId, Status),
    /// Receiver: a new message shown.
    Shown(MessageId),
}

/// See the module docs.
pub struct PostNode {
    outbox: Outbox<NodeId, ()>,
    attempts: BTreeMap<ReqId, MessageId>,
}

/// The stand-in letter: id, time, body.
fn letter(id: MessageId, at: Timestamp, body: &[u8]) -> Vec<u8> {
    [id.as_bytes().as_slice(), &at.as_millis().to_be_bytes(), body].concat()
}

fn unletter(from: NodeId, bytes: &[u8]) -> Option<Opened> {
    Some(Opened {
        sender: identity(from).public().clone(),
        message_id: MessageId::from_bytes(bytes.get(..16)?.try_into().ok()?),
        timestamp: Timestamp::from_millis(u64::from_be_bytes(bytes.get(16..24)?.try_into().ok()?)),
        kind: Kind::Text,
        body: bytes.get(24..)?.to_vec(),
    })
}

fn answer_code(answer: Answer) -> u8 {
    match answer {
        Answer::Delivered => 0,
        Answer::Busy => 1,
        _ => 2,
    }
}

impl PostNode {
    fn handle(&mut self, input: outbox::Input<NodeId, ()>, cx: &mut Cx<'_, Self>) {
        for output in self.outbox.handle(input, cx.now(), cx.rng()) {
            match output {
                outbox::Output::Attempt { entry, devices: _ } => {
                    let bytes = letter(entry.id, entry.created_at, &entry.envelope);
                    let id = cx.request(node_of(entry.recipient), bytes);
                    self.attempts.insert(id, entry.id);
                    cx.observe(Event::Attempt(entry.id));
                }
                outbox::Output::Persist(write) => cx.persist(Write::Outbox(write, None)),
                outbox::Output::Status { id, status, .. } => cx.observe(Event::Status(id, status)),
                outbox::Output::WakeAt(at) => cx.set_timer(at, ()),
                outbox::Output::Stored(_) | outbox::Output::Metric(_) => {}
            }
        }
    }
}

impl Node for PostNode {
    type Msg = Vec<u8>;
    type Timer = ();
    type Write = Write;
    type Disk = Disk;
    type Command = Command;
    type Event = Event;

    fn boot(disk: &Disk, cx: &mut Cx<'_, Self>) -> Self {
        let outbox = Outbox::restore(MAX_RUNNING, disk.rows.values().cloned());
        let mut node = Self { outbox, attempts: BTreeMap::new() };
        node.handle(outbox::Input::Tick, cx);
        node
    }

    fn commit(disk: &mut Disk, write: &mut Write) {
        match write {
            Write::Insert(entry) => drop(disk.rows.insert(entry.id, entry.clone())),
            Write::Outbox(w, found) => {
                let id = w.id();
                *found = Some(disk.rows.contains_key(&id));
                match w {
                    outbox::Write::Delivered(_) => drop(disk.rows.remove(&id)),
                    outbox::Write::Attempt { attempts, next_attempt_at, error, .. } => {
                        if let Some(row) = disk.rows.get_mut(&id) {
                            row.attempts = *attempts;
                            row.next_attempt_at = *next_attempt_at;
                            row.last_error = Some(error.clone());
                        }
                    }
                    outbox::Write::DeadLetter { reason, .. } => {
                        if disk.rows.remove(&id).is_some() {
                            disk.dead.insert(id, reason.clone());
                        }
                    }
                }
            }
            Write::Accept { id, seen_until, inserted, .. } => {
                let new = !disk.history.seen.contains_key(id);
                if new {
                    disk.history.seen.insert(*id, *seen_until);
                    disk.history.messages.push(*id);
                }
                *inserted = Some(if new { Inserted::New } else { Inserted::Duplicate });
            }
        }
    }

    fn on_committed(&mut self, write: Write, cx: &mut Cx<'_, Self>) {
        match write {
            Write::Insert(entry) => {
                cx.observe(Event::Queued(entry.id));
                self.handle(outbox::Input::Enqueue(entry), cx);
            }
            Write::Outbox(w, found) => {
                let input = if found == Some(true) {
                    outbox::Input::Persisted(w.id())
                } else {
                    outbox::Input::Gone(w.id())
                };
                self.handle(input, cx);
            }
            Write::Accept { id, record, reply, inserted, .. } => {
                let reply_to = reply;
                if let (Some(record), Some(inserted)) = (record, inserted) {
                    let reply = record.committed(inserted);
                    if reply.show {
                        cx.observe(Event::Shown(id));
                    }
                    cx.respond(reply_to, vec![answer_code(reply.answer)]);
                }
            }
        }
    }

    fn on_command(&mut self, Command::Send { to, id, body }: Command, cx: &mut Cx<'_, Self>) {
        let now = cx.now();
        let entry = Entry {
            id,
            recipient: address(to),
            envelope: body,
            attempts: 0,
            next_attempt_at: now,
            created_at: now,
            expires_at: now.saturating_add(inbound::MESSAGE_TTL),
            last_error: None,
            control: false,
        };
        cx.persist(Write::Insert(entry));
    }

    fn on_request(&mut self, from: NodeId, id: ReqId, msg: Vec<u8>, cx: &mut Cx<'_, Self>) {
        let Some(opened) = unletter(from, &msg) else { return cx.respond(id, vec![2]) };
        match inbound::decide(&opened, cx.now()) {
            Ok(Plan::Record(record)) => cx.persist(Write::Accept {
                id: opened.message_id,
                seen_until: record.seen_until(),
                record: Some(record),
                reply: id,
                inserted: None,
            }),
            Ok(_) => cx.respond(id, vec![0]),
            Err(why) => cx.respond(id, vec![answer_code(inbound::Refusal::from(why).answer())]),
        }
    }

    fn on_response(
        &mut self,
        peer: NodeId,
        id: ReqId,
        result: Result<Vec<u8>, NetError>,
        cx: &mut Cx<'_, Self>,
    ) {
        let Some(message) = self.attempts.remove(&id) else { return };
        let looked_up = Some(vec![(peer, ())]);
        let outcome = match result.as_deref() {
            Ok([0]) => Outcome::Delivered { looked_up },
            Ok([2]) => Outcome::Reject { reason: "refused".into() },
            Ok(_) => Outcome::Retry { error: "busy".into(), looked_up },
            Err(e) => Outcome::Retry { error: format!("{e:?}"), looked_up: None },
        };
        self.handle(outbox::Input::AttemptDone { id: message, outcome }, cx);
    }

    fn on_timer(&mut self, (): (), cx: &mut Cx<'_, Self>) {
        self.handle(outbox::Input::Tick, cx);
    }
}
