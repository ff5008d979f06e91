//! The deterministic simulator (issue 13, point 4): the protocol machines of
//! `communitas-proto` run on many simulated nodes, on a virtual clock, over a network
//! model with latency, jitter, loss, partitions and offline intervals, with crashes
//! that keep exactly what the machines asked to persist. A 30-day TTL takes
//! milliseconds, and a failure replays from its seed.
//!
//! # Layout
//!
//! The framework:
//!
//! - [`world`](sim::world): the clock, the queue, the nodes, crash and restart, and
//!   the [`Node`](sim::world::Node) trait a scenario's node implements.
//! - [`net`](sim::net): links, partitions, offline intervals.
//! - [`seed`](sim::seed): the seed sweep, replay, and the determinism check.
//! - [`fixtures`](sim::fixtures): identities, addresses, sealed letters, DHT keys.
//!
//! Nodes, each a few machines and their adapters:
//!
//! - [`mnode`](sim::mnode): the mailbox server machine over [`mstore`](sim::mstore)
//!   (a model of the store's mailbox tables), re-replication
//!   ([`replicate`](sim::replicate), the policy driven as the node drives it), and on
//!   a user's node the mailbox client machine, its acceptance a durable write.
//! - [`post`](sim::post): the outbox machine, and the receiver's inbound acceptance.
//! - [`presence`](sim::presence): the presence machine.
//!
//! Scenarios (each file's tests):
//!
//! - [`frames`](sim::frames): the framework's own proof (mbox frames, one backoff,
//!   three crashing stand-in machines).
//! - [`delivery`](sim::delivery): a dead letter exactly at the 30-day TTL; delivered
//!   when the peer is back on day 29; 1,000 messages over 5 % loss, the sender
//!   crashing every 100, exactly once.
//! - [`presence`](sim::presence): offline after three missed heartbeats, back on the
//!   next; a restarted contact back within a round trip.
//! - [`holders`](sim::holders): five holders, two die, the copies are re-replicated.
//! - [`expiry`](sim::expiry): the mailbox server's nonce and session expiry.
//! - [`catchup`](sim::catchup): catch-up at start from five holders, one dead (at
//!   random, or the first asked): 60 envelopes in exactly once, acked at each live
//!   holder, the last within 2 s; the dead one costs one request deadline.
//!
//! # Adding a scenario
//!
//! 1. Write the node: a struct holding the machines that role runs (an outbox, a
//!    mailbox client, ...), and its `Disk` (what survives a crash: the rows the
//!    machines persisted, plus the node's provisioning). Implement
//!    [`Node`](sim::world::Node): `boot` rebuilds the machines from the disk, and each
//!    callback turns what happened (a request, an answer, a commit, a timer) into the
//!    machine's input and calls `handle(input, now, rng)`.
//! 2. Give each machine a small adapter, `fn route_x(outputs, &mut Cx)`, that carries
//!    its outputs out in order: sends become `cx.request`/`cx.respond`/`cx.send`,
//!    persist rows `cx.persist` (the machine hears `Persisted` from `on_committed`),
//!    `WakeAt` `cx.wake_at`, and anything the scenario checks `cx.observe`.
//! 3. Write the test: `#[test] fn name() { sweep("name", |seed| { .. }) }` builds a
//!    [`World`](sim::world::World) from the seed and the nodes' disks, shapes the
//!    network (`world.link`, `world.net().partition/offline`), schedules commands and
//!    crashes, runs (`run_until`, `run_until_true`), and asserts on `world.log`,
//!    `world.events_of(node)` and `world.disk(node)`. Draw the scenario's own choices
//!    (crash times, message sizes) from a `Seeded` derived from the seed too.
//! 4. Make sure it can fail: break the rule it checks, once, and watch it catch it.
//!
//! # Replaying a seed
//!
//! Each scenario runs seeds `0..20` ([`SWEEP`](sim::seed::SWEEP)), then seed 0 again
//! to check that it replays exactly. A failure prints its seed and the command:
//!
//! ```text
//! SIM_SEED=1234 cargo test -p communitas-proto --test sim scenario_name
//! ```
//!
//! `SIM_TRACE=1` prints every step the world takes; `SIM_SEEDS=500` sweeps more seeds.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// `pub` marks the simulator's API for the scenarios; in one test binary nothing is
// reachable from outside, and not every scenario uses every knob.
#![allow(unreachable_pub, dead_code)]

mod sim {
    //! The simulator's modules (one folder, one test binary).
    #[path = "catchup.rs"]
    pub mod catchup;
    #[path = "delivery.rs"]
    pub mod delivery;
    #[path = "expiry.rs"]
    pub mod expiry;
    #[path = "fixtures.rs"]
    pub mod fixtures;
    #[path = "frames.rs"]
    pub mod frames;
    #[path = "holders.rs"]
    pub mod holders;
    #[path = "mnode.rs"]
    pub mod mnode;
    #[path = "mstore.rs"]
    pub mod mstore;
    #[path = "net.rs"]
    pub mod net;
    #[path = "post.rs"]
    pub mod post;
    #[path = "presence.rs"]
    pub mod presence;
    #[path = "replicate.rs"]
    pub mod replicate;
    #[path = "seed.rs"]
    pub mod seed;
    #[path = "world.rs"]
    pub mod world;
}
