//! The client's rules on a virtual clock: a small event queue plays the holders (each
//! a model of a mailbox server: nonces, a session, fetch up to `max_bytes`, acks) and
//! acceptance, with fixed latencies; every time below is virtual.

use std::collections::{BTreeMap, BTreeSet};

use communitas_crypto::Identity;

use super::*;
use crate::mbox::{MAX_ACK, MboxRequest, MboxResponse, Refusal, fetch_signed_bytes};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Peer(u16);

impl From<Peer> for Vec<u8> {
    fn from(p: Peer) -> Self {
        [b"peer".as_slice(), &p.0.to_be_bytes()].concat()
    }
}

const ME: Peer = Peer(1000);
const T0: u64 = 1_780_000_000_000;
/// One way on every link, and the time acceptance takes.
const LATENCY: u64 = 10;
const OPEN: u64 = 2;

fn at(ms: u64) -> Timestamp {
    Timestamp::from_millis(T0 + ms)
}

fn owner() -> Identity {
    Identity::from_seed_bytes([9; 32], [19; 32])
}

fn envelope(i: usize) -> ([u8; 32], Vec<u8>) {
    let bytes = format!("envelope {i}").into_bytes();
    (*blake3::hash(&bytes).as_bytes(), bytes)
}

/// How a modelled holder behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Serving,
    /// Never answers (the transport gives up after 30 s).
    Dead,
    NotServer,
    /// Answers each request after this many ms.
    Slow(u64),
}

#[derive(Debug)]
struct Holder {
    mode: Mode,
    kept: BTreeMap<[u8; 32], Vec<u8>>,
    nonce: Option<[u8; 32]>,
    session: bool,
    /// `max_bytes` of every fetch, in order.
    fetches: Vec<u32>,
    /// Every ack's length, in order.
    acks: Vec<usize>,
}

enum Event {
    Input(Input<Peer>),
    Tick,
}

struct World {
    client: Client<Peer, Identity>,
    now: u64,
    queue: BTreeMap<(u64, u64), Event>,
    seq: u64,
    wake: Option<u64>,
    holders: BTreeMap<Peer, Holder>,
    /// Candidates the lookup answers, nearest first.
    nearest: Vec<Peer>,
    /// How long the lookup takes (a hung peer holds it for the transport's timeout).
    lookup_takes: u64,
    /// What the routing table knows at once, if the driver answers with it first.
    known: Option<Vec<Peer>>,
    busy: BTreeSet<[u8; 32]>,
    /// Hashes handed to acceptance, in order, with the time.
    opened: Vec<(u64, [u8; 32])>,
    duplicates: usize,
    rounds: Vec<(u64, usize)>,
    receipts: usize,
}

impl World {
    fn new(config: Config, modes: &[Mode], waiting: usize, at_first: usize) -> Self {
        let id = owner();
        let public = id.public().clone();
        let mut holders = BTreeMap::new();
        for (i, mode) in modes.iter().enumerate() {
            let kept =
                if i < at_first { (0..waiting).map(envelope).collect() } else { BTreeMap::new() };
            let holder = Holder {
                mode: *mode,
                kept,
                nonce: None,
                session: false,
                fetches: Vec::new(),
                acks: Vec::new(),
            };
            holders.insert(Peer(i as u16), holder);
        }
        let nearest = (0..modes.len() as u16).map(Peer).collect();
        let mut world = Self {
            client: Client::new(config, ME, &public, id),
            now: 0,
            queue: BTreeMap::new(),
            seq: 0,
            wake: None,
            holders,
            nearest,
            lookup_takes: LATENCY,
            known: None,
            busy: BTreeSet::new(),
            opened: Vec::new(),
            duplicates: 0,
            rounds: Vec::new(),
            receipts: 0,
        };
        world.push(0, Event::Tick);
        world
    }

    fn push(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.queue.insert((at, self.seq), event);
    }

    /// Runs until `until` (virtual ms) or until nothing is left to happen.
    fn run_until(&mut self, until: u64) {
        while let Some(entry) = self.queue.first_entry() {
            let (when, _) = *entry.key();
            if when > until {
                break;
            }
            let event = entry.remove();
            self.now = when;
            let input = match event {
                Event::Input(input) => input,
                Event::Tick if self.wake == Some(when) || when == 0 => Input::Tick,
                Event::Tick => continue,
            };
            let outputs: Vec<_> = self.client.handle(input, at(self.now)).collect();
            for output in outputs {
                self.carry_out(output);
            }
        }
        self.now = until;
    }

    fn carry_out(&mut self, output: Output<Peer>) {
        let now = self.now;
        match output {
            Output::FindHolders => {
                if let Some(known) = &self.known {
                    let nearby = Input::Nearby(known.clone());
                    self.push(now, Event::Input(nearby));
                }
                let found = Input::Holders(self.nearest.clone());
                self.push(now + self.lookup_takes, Event::Input(found));
            }
            Output::Send { holder, request_id, request } => {
                let (delay, answer) = self.serve(holder, request);
                if let Some(answer) = answer {
                    let answer = Input::Answer { request_id, answer };
                    self.push(now + delay, Event::Input(answer));
                }
            }
            Output::Accept { hash, envelope } => {
                assert_eq!(blake3::hash(&envelope).as_bytes(), &hash);
                self.opened.push((now, hash));
                let acceptance = if self.busy.contains(&hash) {
                    Acceptance::Busy
                } else {
                    Acceptance::Accepted { receipt: None }
                };
                self.push(now + OPEN, Event::Input(Input::Accepted { hash, acceptance }));
            }
            Output::Receipts { .. } => self.receipts += 1,
            Output::Count(Metric::Duplicate) => self.duplicates += 1,
            Output::RoundDone { answered } => self.rounds.push((now, answered)),
            Output::WakeAt(when) => {
                let when = when.as_millis() - T0;
                self.wake = Some(when);
                self.push(when, Event::Tick);
            }
        }
    }

    /// A modelled holder's answer to `request`, and after how long (`None`: never).
    fn serve(
        &mut self,
        peer: Peer,
        request: MboxRequest,
    ) -> (u64, Option<Result<MboxResponse, NoAnswer>>) {
        let me: Vec<u8> = ME.into();
        let server: Vec<u8> = peer.into();
        let seq = self.seq;
        let holder = self.holders.get_mut(&peer).unwrap();
        let delay = match holder.mode {
            Mode::Dead => return (30_000, Some(Err(NoAnswer))),
            Mode::NotServer => {
                return (2 * LATENCY, Some(Ok(MboxResponse::Refused(Refusal::NotServer))));
            }
            Mode::Slow(ms) => ms,
            Mode::Serving => 2 * LATENCY,
        };
        let response = match request {
            MboxRequest::Challenge { mailbox } => {
                assert_eq!(mailbox, owner().public().mailbox_id());
                let mut nonce = [0u8; 32];
                nonce[..8].copy_from_slice(&seq.to_be_bytes());
                nonce[8..10].copy_from_slice(&peer.0.to_be_bytes());
                holder.nonce = Some(nonce);
                MboxResponse::Nonce(nonce)
            }
            MboxRequest::Fetch { identity, nonce, signature, max_bytes } => {
                let identity = communitas_crypto::PublicIdentity::from_bytes(&identity).unwrap();
                let mailbox = identity.mailbox_id();
                let signed = fetch_signed_bytes(&server, &me, &nonce, &mailbox);
                if holder.nonce.take() != Some(nonce) || !identity.verify(&signed, &signature) {
                    MboxResponse::Refused(Refusal::Unauthorized)
                } else {
                    holder.session = true;
                    holder.fetches.push(max_bytes);
                    let mut list = Vec::new();
                    let mut bytes = 0;
                    for (hash, envelope) in &holder.kept {
                        if bytes >= max_bytes as usize {
                            break;
                        }
                        bytes += envelope.len();
                        list.push((*hash, envelope.clone()));
                    }
                    MboxResponse::Envelopes(list)
                }
            }
            MboxRequest::Ack { hashes, .. } if holder.session => {
                assert!(hashes.len() <= MAX_ACK);
                holder.acks.push(hashes.len());
                let before = holder.kept.len();
                holder.kept.retain(|h, _| !hashes.contains(h));
                MboxResponse::Acked((before - holder.kept.len()) as u32)
            }
            _ => MboxResponse::Refused(Refusal::Unauthorized),
        };
        (delay, Some(Ok(response)))
    }

    fn kept(&self, peer: u16) -> usize {
        self.holders[&Peer(peer)].kept.len()
    }

    fn opened_once(&self) -> BTreeSet<[u8; 32]> {
        let set: BTreeSet<_> = self.opened.iter().map(|(_, h)| *h).collect();
        assert_eq!(set.len(), self.opened.len(), "an envelope was opened twice");
        set
    }
}

fn serving(n: usize) -> Vec<Mode> {
    vec![Mode::Serving; n]
}

#[test]
fn a_dead_holder_costs_one_deadline_and_delays_nobody_else() {
    let mut modes = serving(CANDIDATES);
    modes[2] = Mode::Dead;
    let mut world = World::new(Config::default(), &modes, 60, REPLICAS);
    world.run_until(5_000);
    // All 60 opened once, long before the dead holder's deadline: the live holders
    // were asked at once, not after it.
    assert_eq!(world.opened_once().len(), 60);
    let last_open = world.opened.iter().map(|(t, _)| *t).max().unwrap();
    assert!(last_open < 300, "opened by {last_open} ms");
    // The round ends one deadline after it began (a spare asked in its place).
    let (done, answered) = world.rounds[0];
    let began = FIRST_LOOK.as_millis() as u64 + LATENCY;
    let deadline = REQUEST_DEADLINE.as_millis() as u64;
    assert!(done >= began + deadline && done < began + deadline + 300, "round done at {done}");
    assert_eq!(answered, REPLICAS, "four holders and the spare");
    for live in [0, 1, 3, 4] {
        assert_eq!(world.kept(live), 0, "holder {live} acked everything");
    }
    assert_eq!(world.kept(2), 60, "the dead one keeps its copies");
    // The spare (peer 5) was asked once the dead one's deadline passed.
    assert_eq!(world.holders[&Peer(5)].fetches.len(), 1);
    assert!(world.holders[&Peer(6)].fetches.is_empty());
}

#[test]
fn an_envelope_at_every_holder_is_opened_once_and_acked_at_all() {
    let mut world = World::new(Config::default(), &serving(CANDIDATES), 60, REPLICAS);
    world.run_until(5_000);
    assert_eq!(world.opened_once().len(), 60);
    // The five fetched at once: four of them brought each envelope again.
    assert_eq!(world.duplicates, 4 * 60);
    for h in 0..REPLICAS as u16 {
        assert_eq!(world.kept(h), 0, "holder {h} acked");
        assert_eq!(world.holders[&Peer(h)].acks, vec![60]);
    }
    assert_eq!(world.rounds[0].1, REPLICAS);
    assert!(world.holders[&Peer(5)].fetches.is_empty(), "no spare needed");
}

#[test]
fn a_holder_asked_later_fetches_one_first_and_acks_what_the_round_has() {
    // Three holders are dead, so spares 5..7 are asked (at the deadline) after 0 and 1
    // served the round its 60 envelopes.
    let mut modes = serving(CANDIDATES);
    for m in &mut modes[2..5] {
        *m = Mode::Dead;
    }
    let mut world = World::new(Config::default(), &modes, 60, 2);
    // The spares hold the same 60 envelopes.
    for spare in 5..8 {
        world.holders.get_mut(&Peer(spare)).unwrap().kept = (0..60).map(envelope).collect();
    }
    world.run_until(5_000);
    assert_eq!(world.opened_once().len(), 60);
    for spare in 5..8 {
        let h = &world.holders[&Peer(spare)];
        assert_eq!(h.kept.len(), 0, "spare {spare} acked everything");
        assert_eq!(h.fetches.first(), Some(&1), "spare {spare}: one envelope first");
        assert_eq!(h.acks.first(), Some(&60), "spare {spare}: all the round had at once");
    }
    assert_eq!(world.rounds[0].1, REPLICAS, "two holders and three spares");
    assert!(world.holders[&Peer(8)].fetches.is_empty());
}

#[test]
fn a_busy_envelope_is_not_acked_and_the_next_round_opens_it_again() {
    let mut world = World::new(Config::default(), &serving(CANDIDATES), 10, REPLICAS);
    let (stuck, _) = envelope(3);
    world.busy.insert(stuck);
    world.run_until(1_000);
    assert_eq!(world.opened.iter().filter(|(_, h)| *h == stuck).count(), 1);
    for h in 0..REPLICAS as u16 {
        assert_eq!(world.kept(h), 1, "holder {h} keeps only the busy one");
        assert!(world.holders[&Peer(h)].kept.contains_key(&stuck));
    }
    // Stored at last: the next round (FETCH_EVERY later) takes it.
    world.busy.clear();
    world.run_until(1_000 + FETCH_EVERY.as_millis() as u64);
    assert_eq!(world.opened.iter().filter(|(_, h)| *h == stuck).count(), 2);
    assert!((0..REPLICAS as u16).all(|h| world.kept(h) == 0));
    assert_eq!(world.rounds.len(), 2);
}

#[test]
fn a_slow_holder_is_dropped_at_its_deadline_and_its_late_answer_ignored() {
    let mut modes = serving(CANDIDATES);
    modes[0] = Mode::Slow(REQUEST_DEADLINE.as_millis() as u64 + 500);
    let mut world = World::new(Config::default(), &modes, 5, REPLICAS);
    world.run_until(10_000);
    let h = &world.holders[&Peer(0)];
    assert!(h.fetches.is_empty(), "its nonce came too late: no fetch");
    assert_eq!(h.kept.len(), 5);
    assert_eq!(world.opened_once().len(), 5);
    assert_eq!(world.rounds[0].1, REPLICAS);
    assert_eq!(world.holders[&Peer(5)].fetches.len(), 1, "a spare instead");
}

#[test]
fn acks_go_in_chunks_of_max_ack() {
    let config = Config { replicas: 1, ..Config::default() };
    let mut world = World::new(config, &serving(2), MAX_ACK + 100, 1);
    world.run_until(5_000);
    assert_eq!(world.holders[&Peer(0)].acks, vec![MAX_ACK, 100]);
    assert_eq!(world.kept(0), 0);
    assert_eq!(world.opened_once().len(), MAX_ACK + 100);
}

#[test]
fn pacing_first_look_joining_retries_wake_ups_and_the_poll() {
    // No server answers: every JOINING_RETRY while joining.
    let mut world = World::new(Config::default(), &[Mode::NotServer; 3], 0, 0);
    world.run_until(2_000);
    let times: Vec<u64> = world.rounds.iter().map(|(t, _)| *t).collect();
    let first = FIRST_LOOK.as_millis() as u64 + 3 * LATENCY;
    assert_eq!(times[0], first);
    assert_eq!(times[1], first + JOINING_RETRY.as_millis() as u64 + 3 * LATENCY);
    assert!(world.rounds.iter().all(|(_, a)| *a == 0));

    // Served: the next look FETCH_EVERY later, unless woken; a wake-up during a round
    // starts another right after it.
    let mut world = World::new(Config::default(), &serving(CANDIDATES), 1, REPLICAS);
    world.run_until(1_000);
    assert_eq!(world.rounds.len(), 1);
    world.push(1_500, Event::Input(Input::Wake));
    world.run_until(1_510);
    assert!(world.client.in_round());
    world.push(1_520, Event::Input(Input::Wake));
    world.run_until(3_000);
    assert_eq!(world.rounds.len(), 3, "woken, and again after the round it was woken in");
    let last = world.rounds[2].0;
    world.run_until(last + FETCH_EVERY.as_millis() as u64 - 1);
    assert_eq!(world.rounds.len(), 3);
    world.run_until(last + FETCH_EVERY.as_millis() as u64 + 200);
    assert_eq!(world.rounds.len(), 4, "the poll");
}

#[test]
fn a_peer_that_is_not_a_server_is_skipped_for_a_spare() {
    let mut modes = serving(CANDIDATES);
    modes[1] = Mode::NotServer;
    let mut world = World::new(Config::default(), &modes, 20, REPLICAS + 1);
    world.run_until(1_000);
    assert!(world.holders[&Peer(1)].fetches.is_empty());
    assert_eq!(world.kept(1), 20);
    // Asked a round trip later, not a deadline later: done with the others.
    let (done, answered) = world.rounds[0];
    assert_eq!(answered, REPLICAS);
    assert!(done < 400, "round done at {done}");
    assert_eq!(world.kept(5), 0, "the spare served");
    assert!(world.holders[&Peer(6)].fetches.is_empty());
    assert_eq!(world.opened_once().len(), 20);
}

#[test]
fn a_lookup_held_by_a_hung_peer_does_not_hold_the_mail() {
    // The routing table knows only the bootstrap node (a holder); the lookup, held
    // by a hung peer, answers the five holders after 10 s.
    let mut world = World::new(Config::default(), &serving(REPLICAS), 60, REPLICAS);
    world.known = Some(vec![Peer(0)]);
    world.lookup_takes = 10_000;
    world.run_until(5_000);
    // Everything came from the one holder known at once, long before the lookup.
    assert_eq!(world.opened_once().len(), 60);
    let last_open = world.opened.iter().map(|(t, _)| *t).max().unwrap();
    assert!(last_open < 500, "opened by {last_open} ms");
    assert_eq!(world.kept(0), 0);
    // One holder is fewer than R: the round waits for the lookup's holders...
    assert!(world.rounds.is_empty(), "the round is not over before the lookup answers");
    assert_eq!(world.kept(1), 60);
    world.run_until(12_000);
    // ...and acknowledges there what it already has, without opening anything again.
    assert_eq!(world.opened_once().len(), 60);
    assert_eq!(world.rounds.len(), 1);
    assert_eq!(world.rounds[0].1, REPLICAS);
    for h in 0..REPLICAS as u16 {
        assert_eq!(world.kept(h), 0, "holder {h} acked");
    }
}

#[test]
fn with_r_holders_known_at_once_the_round_ends_before_the_lookup() {
    let mut world = World::new(Config::default(), &serving(CANDIDATES), 60, REPLICAS);
    world.known = Some((0..REPLICAS as u16).map(Peer).collect());
    world.lookup_takes = 10_000;
    world.run_until(5_000);
    assert_eq!(world.opened_once().len(), 60);
    assert_eq!(world.rounds.len(), 1, "over without the lookup");
    assert!(world.rounds[0].0 < 500, "round done at {} ms", world.rounds[0].0);
    // The lookup's late answer starts nothing: no spare is asked.
    world.run_until(12_000);
    assert!((REPLICAS..CANDIDATES).all(|h| world.holders[&Peer(h as u16)].fetches.is_empty()));
    assert_eq!(world.rounds.len(), 1);
}

#[test]
fn prekeys_are_topped_up_only_when_a_kind_runs_below_half() {
    assert_eq!(prekeys_wanted(0, 0), PREKEYS_TARGET as usize);
    assert_eq!(prekeys_wanted(PREKEYS_TARGET, PREKEYS_TARGET / 2), 0);
    assert_eq!(prekeys_wanted(PREKEYS_TARGET, PREKEYS_TARGET / 2 - 1), 11);
    assert_eq!(prekeys_wanted(3, PREKEYS_TARGET), (PREKEYS_TARGET - 3) as usize);
    // A server holding more than the target (another device's deposit raced ours).
    assert_eq!(prekeys_wanted(3 * PREKEYS_TARGET, 3 * PREKEYS_TARGET), 0);
}
