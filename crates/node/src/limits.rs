//! Rate limits per authenticated peer (ARCHITECTURE §6): token buckets, one per
//! protocol, keyed by the PeerId the connection proved — never by a name the sender
//! claims. Excess requests get a typed refusal (`RateLimited`) and are counted in
//! `communitas_rate_limited_total{protocol}`.

use std::num::NonZeroU32;

use communitas_net::libp2p::PeerId;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Requests per second and burst, per peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Sustained requests per second.
    pub per_second: u32,
    /// Requests allowed at once after a quiet spell.
    pub burst: u32,
}

/// The limits a node applies to each peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Direct messages (`/communitas/msg/1`).
    pub messages: Rate,
    /// Mailbox puts.
    pub mailbox_puts: Rate,
    /// Mailbox challenges, fetches and acks.
    pub mailbox_fetches: Rate,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            // A person types far slower; a bulk import or a bench stays under this.
            messages: Rate { per_second: 2_000, burst: 4_000 },
            mailbox_puts: Rate { per_second: 500, burst: 1_000 },
            mailbox_fetches: Rate { per_second: 20, burst: 100 },
        }
    }
}

fn limiter(rate: Rate) -> DefaultKeyedRateLimiter<PeerId> {
    let per_second = NonZeroU32::new(rate.per_second).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(rate.burst).unwrap_or(per_second);
    RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst))
}

/// The buckets, shared by the tasks that answer requests. `governor` keeps them in a
/// concurrent map; they need no owner task.
pub(crate) struct Limiters {
    messages: DefaultKeyedRateLimiter<PeerId>,
    puts: DefaultKeyedRateLimiter<PeerId>,
    fetches: DefaultKeyedRateLimiter<PeerId>,
}

/// What a request is, for its bucket.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Message,
    MailboxPut,
    MailboxFetch,
}

impl Limiters {
    pub(crate) fn new(limits: RateLimits) -> Self {
        Self {
            messages: limiter(limits.messages),
            puts: limiter(limits.mailbox_puts),
            fetches: limiter(limits.mailbox_fetches),
        }
    }

    /// Whether `peer` may make one more request of `kind` now.
    pub(crate) fn allow(&self, peer: &PeerId, kind: Kind) -> bool {
        let bucket = match kind {
            Kind::Message => &self.messages,
            Kind::MailboxPut => &self.puts,
            Kind::MailboxFetch => &self.fetches,
        };
        bucket.check_key(peer).is_ok()
    }

    /// Forgets peers whose buckets are full again (bounds memory).
    pub(crate) fn forget_idle(&self) {
        self.messages.retain_recent();
        self.puts.retain_recent();
        self.fetches.retain_recent();
    }
}
