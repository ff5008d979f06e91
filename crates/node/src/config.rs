//! How to run a node, and why it could not start.

use std::time::Duration;

use crate::{FilesConfig, RateLimits, mailbox, presence, replicate, seen};

/// How to run a node.
#[derive(Debug, Clone)]
pub struct Config {
    /// The network's configuration.
    pub net: communitas_net::Config,
    /// Outbox deliveries running at once.
    pub max_deliveries: usize,
    /// Inbound messages processed at once; more are answered `Busy`.
    pub max_inbound: usize,
    /// Per-peer request rates.
    pub rate_limits: RateLimits,
    /// Mailbox quotas (server role).
    pub mailbox_limits: communitas_store::MailboxLimits,
    /// Attachments: where they go, how big they may be.
    pub files: FilesConfig,
    /// Presence heartbeats (issue 6).
    pub presence: presence::Config,
    /// How often a server offers the envelopes it keeps to the other servers closest
    /// to their mailbox, so that R copies remain when holders leave (decision 0020).
    pub mailbox_replicate_every: Duration,
    /// How often a user node looks in its mailboxes when no server told it of new
    /// mail (servers tell online owners at once).
    pub mailbox_fetch_every: Duration,
    /// How often every node forgets the seen ids past their expiry (user nodes too:
    /// otherwise the table grows with every message ever received).
    pub seen_sweep_every: Duration,
    /// How much strangers may leave as message requests (issue 15).
    pub request_limits: communitas_store::RequestLimits,
    /// End-to-end sessions (issue 14, decision 0053), on by default: this device
    /// makes, rotates and publishes prekeys (a version-2 identity record), and every
    /// letter to a contact whose record has a bundle rides a session. Off: version-1
    /// records and envelopes only, as builds before sessions (both still open
    /// version 1).
    pub sessions: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            net: communitas_net::Config::default(),
            max_deliveries: 64,
            max_inbound: 256,
            rate_limits: RateLimits::default(),
            mailbox_limits: mailbox::LIMITS,
            files: FilesConfig::default(),
            presence: presence::Config::default(),
            mailbox_replicate_every: replicate::EVERY,
            mailbox_fetch_every: mailbox::FETCH_EVERY,
            seen_sweep_every: seen::SWEEP_EVERY,
            request_limits: communitas_store::RequestLimits::default(),
            sessions: true,
        }
    }
}

/// Why the node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The network did not start.
    #[error(transparent)]
    Net(#[from] communitas_net::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] communitas_store::Error),
    /// A worker thread could not be started.
    #[error("cannot start worker threads: {0}")]
    Threads(std::io::Error),
    /// The operating system's random source failed.
    #[error(transparent)]
    Random(#[from] communitas_crypto::random::RandomError),
}
