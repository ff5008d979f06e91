//! The node's Prometheus metrics (served at `/metrics`).

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Counters and gauges the node updates as it works.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Messages handed to a recipient's device (a request went out).
    pub sent: Counter,
    /// Messages received and committed (duplicates excluded).
    pub received: Counter,
    /// Messages whose delivery receipt arrived.
    pub delivered: Counter,
    /// Messages given up on (dead letters).
    pub failed: Counter,
    /// Replayed envelopes dropped by the seen-id check.
    pub duplicates: Counter,
    /// Seen ids forgotten past their expiry.
    pub seen_expired: Counter,
    /// Inbound envelopes refused (invalid, stale, not for us).
    pub rejected: Counter,
    /// Inbound messages shed because the node was behind.
    pub shed: Counter,
    /// Seconds from `send` accepted to receipt.
    pub delivery_latency: Histogram,
    /// Peers with an open connection.
    pub connected_peers: Gauge,
    /// Messages waiting in the outbox.
    pub outbox_depth: Gauge,
    /// Requests refused by a rate limit, by protocol.
    pub rate_limited: Family<Vec<(String, String)>, Counter>,
    /// Mailbox puts refused for a full quota.
    pub mailbox_full: Counter,
    /// File shard bytes fetched from the network (this run).
    pub file_bytes_fetched: Counter,
    /// File shard bytes served to fetchers (this run).
    pub file_bytes_served: Counter,
    /// Fetched file shards that failed their hash check (then rebuilt from parity).
    pub file_shards_corrupt: Counter,
    /// Open connections by kind (`direct`, `relayed`).
    pub connections: Family<Vec<(String, String)>, Gauge>,
    /// Connections opened, by kind.
    pub connections_opened: Family<Vec<(String, String)>, Counter>,
    /// Hole punches (DCUtR), by result (`ok`, `failed`).
    pub hole_punches: Family<Vec<(String, String)>, Counter>,
    /// Connections closed because a ping failed (half-open or dead).
    pub ping_failures: Counter,
    /// The network's refusal counters, when registered ([`Metrics::with_net`]).
    net: Option<communitas_net::NetMetrics>,
    /// Envelopes this server keeps for others, as of its last re-replication round.
    pub mailbox_envelopes: Gauge,
    /// Envelope copies this server sent to other holders (re-replication).
    pub mailbox_replicated: Counter,
    /// Offered or re-put envelopes refused because their owner had acknowledged them.
    pub mailbox_acked_refused: Counter,
    /// Message requests opened by strangers (issue 15).
    pub requests_opened: Counter,
    /// Requests or request messages dropped, by reason (`evicted`, `over_bound`,
    /// `expired`).
    pub requests_dropped: Family<Vec<(String, String)>, Counter>,
    /// Envelopes from blocked identities dropped, by kind (`message`, `presence`,
    /// `receipt`).
    pub blocked_dropped: Family<Vec<(String, String)>, Counter>,
    /// Envelopes refused because other keys claimed a pinned contact's (or a
    /// request's) address: someone imitating it.
    pub impersonations: Counter,
    /// Session events (issue 14), by `event`: `sealed`, `opened` (letters),
    /// `initiated`, `accepted` (sessions started), `refused` (envelopes no session
    /// opened or whose contents were bad), `reset` (a contact's device had lost our
    /// session: we start again), `replaced` (it started a new one in place of an
    /// answered one), `resealed`.
    pub sessions: Family<Vec<(String, String)>, Counter>,
    /// Letters sealed as version-1 envelopes (no session with the recipient).
    pub sealed_v1: Counter,
    /// Envelopes from keys never seen (issue 15 item 4), by `outcome`: `derived` (its
    /// address derived), `unpaid` (no proof of work: the slow lane's turn),
    /// `unpaid_later` (no proof, the slow lane taken: told to come back),
    /// `bad_work` (a wrong proof: refused, nothing derived), `busy` (too many
    /// waiting: told to come back).
    pub first_contacts: Family<Vec<(String, String)>, Counter>,
    /// Envelopes from peers that are not known contact devices, by what the
    /// strangers' lane did (decision 0063): `answered_at_once`, `queued`,
    /// `peer_share` and `full` (told to come back), and afterwards `pushed_out` (a
    /// queued one whose place a newcomer took) or `too_late` (waited past 5 s).
    pub stranger_lane: Family<Vec<(String, String)>, Counter>,
    /// Server role, one-time prekeys held for owners' devices (decision 0064):
    /// `claimed` (handed out, one per key), `exhausted` (a claim found none) and
    /// `full` (a deposit refused: the mailbox or the server holds all it may).
    pub held_prekeys: Family<Vec<(String, String)>, Counter>,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("communitas");
        let sent = Counter::default();
        let received = Counter::default();
        let delivered = Counter::default();
        let failed = Counter::default();
        let duplicates = Counter::default();
        let seen_expired = Counter::default();
        let rejected = Counter::default();
        let shed = Counter::default();
        // 0.25 ms .. ~65 s, doubling.
        let delivery_latency = Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(0.00025, 2.0, 19),
        );
        let connected_peers = Gauge::default();
        let outbox_depth = Gauge::default();
        let rate_limited = Family::<Vec<(String, String)>, Counter>::default();
        let mailbox_full = Counter::default();
        let file_bytes_fetched = Counter::default();
        let file_bytes_served = Counter::default();
        let file_shards_corrupt = Counter::default();
        registry.register(
            "file_bytes_fetched",
            "File shard bytes fetched from the network",
            file_bytes_fetched.clone(),
        );
        registry.register(
            "file_bytes_served",
            "File shard bytes served to fetchers",
            file_bytes_served.clone(),
        );
        registry.register(
            "file_shards_corrupt",
            "Fetched file shards that failed their hash check",
            file_shards_corrupt.clone(),
        );
        let connections = Family::<Vec<(String, String)>, Gauge>::default();
        let connections_opened = Family::<Vec<(String, String)>, Counter>::default();
        let hole_punches = Family::<Vec<(String, String)>, Counter>::default();
        let ping_failures = Counter::default();
        registry.register("connections", "Open connections by kind", connections.clone());
        registry.register(
            "connections_opened",
            "Connections opened, by kind",
            connections_opened.clone(),
        );
        registry.register("hole_punches", "Hole punches (DCUtR) by result", hole_punches.clone());
        registry.register(
            "ping_failures",
            "Connections closed because a ping failed",
            ping_failures.clone(),
        );
        let mailbox_envelopes = Gauge::default();
        let mailbox_replicated = Counter::default();
        let mailbox_acked_refused = Counter::default();
        registry.register(
            "mailbox_envelopes",
            "Envelopes kept for others, as of the last re-replication round",
            mailbox_envelopes.clone(),
        );
        registry.register(
            "mailbox_replicated",
            "Envelope copies sent to other mailbox holders",
            mailbox_replicated.clone(),
        );
        registry.register(
            "mailbox_acked_refused",
            "Offered or re-put envelopes refused: their owner had acknowledged them",
            mailbox_acked_refused.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests refused by a per-peer rate limit",
            rate_limited.clone(),
        );
        registry.register(
            "mailbox_full",
            "Mailbox puts refused for a full quota",
            mailbox_full.clone(),
        );
        registry.register("messages_sent", "Messages handed to a recipient's device", sent.clone());
        registry.register("messages_received", "Messages received and stored", received.clone());
        registry.register(
            "messages_delivered",
            "Messages with a delivery receipt",
            delivered.clone(),
        );
        registry.register("messages_failed", "Messages given up on", failed.clone());
        registry.register("messages_duplicate", "Replayed envelopes dropped", duplicates.clone());
        registry.register(
            "seen_ids_expired",
            "Seen message ids forgotten past their expiry",
            seen_expired.clone(),
        );
        registry.register("messages_rejected", "Inbound envelopes refused", rejected.clone());
        registry.register("messages_shed", "Inbound messages shed under load", shed.clone());
        registry.register(
            "delivery_latency_seconds",
            "Time from send accepted to delivery receipt",
            delivery_latency.clone(),
        );
        registry.register(
            "connected_peers",
            "Peers with an open connection",
            connected_peers.clone(),
        );
        registry.register("outbox_depth", "Messages waiting in the outbox", outbox_depth.clone());
        let requests_opened = Counter::default();
        let requests_dropped = Family::<Vec<(String, String)>, Counter>::default();
        let blocked_dropped = Family::<Vec<(String, String)>, Counter>::default();
        let impersonations = Counter::default();
        registry.register(
            "requests_opened",
            "Message requests opened by strangers",
            requests_opened.clone(),
        );
        registry.register(
            "requests_dropped",
            "Message requests or their messages dropped, by reason",
            requests_dropped.clone(),
        );
        registry.register(
            "blocked_dropped",
            "Envelopes from blocked identities dropped, by kind",
            blocked_dropped.clone(),
        );
        registry.register(
            "impersonations_refused",
            "Envelopes refused: other keys claimed a pinned contact's address",
            impersonations.clone(),
        );
        let sessions = Family::<Vec<(String, String)>, Counter>::default();
        let sealed_v1 = Counter::default();
        let first_contacts = Family::<Vec<(String, String)>, Counter>::default();
        registry.register(
            "first_contacts",
            "Envelopes from keys never seen, by outcome",
            first_contacts.clone(),
        );
        registry.register("sessions", "Session events, by event", sessions.clone());
        let stranger_lane = Family::<Vec<(String, String)>, Counter>::default();
        registry.register(
            "stranger_lane",
            "Envelopes from peers not known as contacts' devices, by what the lane did",
            stranger_lane.clone(),
        );
        let held_prekeys = Family::<Vec<(String, String)>, Counter>::default();
        registry.register(
            "held_prekeys",
            "Server role: one-time prekeys held for owners' devices, by what happened",
            held_prekeys.clone(),
        );
        registry.register(
            "sealed_v1",
            "Letters sealed as version-1 envelopes (no session with the recipient)",
            sealed_v1.clone(),
        );
        Self {
            registry,
            sent,
            received,
            delivered,
            failed,
            duplicates,
            seen_expired,
            rejected,
            shed,
            delivery_latency,
            connected_peers,
            outbox_depth,
            rate_limited,
            mailbox_full,
            file_bytes_fetched,
            file_bytes_served,
            file_shards_corrupt,
            connections,
            connections_opened,
            hole_punches,
            ping_failures,
            net: None,
            mailbox_envelopes,
            mailbox_replicated,
            mailbox_acked_refused,
            requests_opened,
            requests_dropped,
            blocked_dropped,
            impersonations,
            sessions,
            sealed_v1,
            first_contacts,
            stranger_lane,
            held_prekeys,
        }
    }

    /// Counts a session event (see [`Metrics::sessions`]).
    pub(crate) fn session(&self, event: &str) {
        self.sessions.get_or_create(&vec![("event".to_owned(), event.to_owned())]).inc();
    }

    /// Counts an envelope from keys never seen (see [`Metrics::first_contacts`]).
    pub(crate) fn first_contact(&self, outcome: &str) {
        self.first_contacts.get_or_create(&vec![("outcome".to_owned(), outcome.to_owned())]).inc();
    }

    /// Counts what the strangers' lane did with an envelope (see
    /// [`Metrics::stranger_lane`]).
    pub(crate) fn lane(&self, outcome: &str) {
        self.stranger_lane.get_or_create(&vec![("outcome".to_owned(), outcome.to_owned())]).inc();
    }

    /// Counts `n` one-time prekey events (see [`Metrics::held_prekeys`]).
    pub(crate) fn held_prekeys(&self, outcome: &str, n: u64) {
        let labels = vec![("outcome".to_owned(), outcome.to_owned())];
        self.held_prekeys.get_or_create(&labels).inc_by(n);
    }

    /// How many envelopes the strangers' lane handled with `outcome`.
    pub fn lane_outcomes(&self, outcome: &str) -> u64 {
        self.stranger_lane.get_or_create(&vec![("outcome".to_owned(), outcome.to_owned())]).get()
    }

    /// How many envelopes from keys never seen ended in `outcome`.
    pub fn first_contact_outcomes(&self, outcome: &str) -> u64 {
        self.first_contacts.get_or_create(&vec![("outcome".to_owned(), outcome.to_owned())]).get()
    }

    /// How many session events of `event` were counted.
    pub fn session_events(&self, event: &str) -> u64 {
        self.sessions.get_or_create(&vec![("event".to_owned(), event.to_owned())]).get()
    }

    /// How many one-time prekey events with `outcome` this server saw (see the
    /// `held_prekeys` field).
    pub fn held_prekey_events(&self, outcome: &str) -> u64 {
        self.held_prekeys.get_or_create(&vec![("outcome".to_owned(), outcome.to_owned())]).get()
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

impl Metrics {
    /// Counts a connection of `kind` opening or closing.
    pub(crate) fn link(&self, kind: &str, open: bool) {
        let label = vec![("kind".to_owned(), kind.to_owned())];
        if open {
            self.connections.get_or_create(&label).inc();
            self.connections_opened.get_or_create(&label).inc();
        } else {
            self.connections.get_or_create(&label).dec();
        }
    }

    /// Counts one hole punch.
    pub(crate) fn hole_punch(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.hole_punches.get_or_create(&vec![("result".to_owned(), result.to_owned())]).inc();
    }

    /// The node's metrics plus the network's refusal counters, registered as
    /// `communitas_refused_total{what}`; the node adds its own refusals to them.
    pub(crate) fn with_net(net: communitas_net::NetMetrics) -> Self {
        let mut metrics = Self::new();
        metrics.registry.register(
            "refused",
            "What this node turned away, by what: connection_limit, memory_limit, \
             relay_reservation, relay_circuit, mailbox_full, mailbox_sender_quota, \
             mailbox_server_full, mailbox_unavailable, file_streams_full, \
             file_streams_per_peer, file_stream_first_frame_timeout, file_stream_idle, \
             record_put_queue_full, record_put_peer_share, record_put_rate, \
             record_put_overloaded, record_put_invalid, record_put_wrong_key",
            net.refused.clone(),
        );
        metrics.net = Some(net);
        metrics
    }

    /// Counts one refusal of kind `what` in `communitas_refused_total`.
    pub(crate) fn refuse(&self, what: &str) {
        if let Some(net) = &self.net {
            net.refuse(what);
        }
    }

    /// Counts `n` requests (or request messages) dropped for `reason`.
    pub(crate) fn request_dropped(&self, reason: &str, n: u64) {
        if n > 0 {
            let label = vec![("reason".to_owned(), reason.to_owned())];
            self.requests_dropped.get_or_create(&label).inc_by(n);
        }
    }

    /// Counts one envelope of `kind` from a blocked identity, dropped.
    pub(crate) fn blocked(&self, kind: &str) {
        self.blocked_dropped.get_or_create(&vec![("kind".to_owned(), kind.to_owned())]).inc();
    }

    /// Counts one request refused by the rate limit of `protocol`.
    pub(crate) fn limited(&self, protocol: &str) {
        self.rate_limited.get_or_create(&vec![("protocol".to_owned(), protocol.to_owned())]).inc();
    }
}
