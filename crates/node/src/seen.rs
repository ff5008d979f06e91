//! The seen-id sweep: every node (user nodes too, not only servers) forgets the
//! `(sender, message id)` pairs past their expiry. An id is kept until its message's
//! timestamp plus [`MESSAGE_TTL`](crate::MESSAGE_TTL); a replay after that is refused
//! as stale by the inbound rules, so the table only needs to cover the message's
//! lifetime and stays bounded by the messages of the last TTL. Message requests
//! (issue 15) expire in the same sweep, with their newest message.

use std::sync::Arc;
use std::time::Duration;

use communitas_types::Timestamp;
use tokio_util::sync::CancellationToken;

use crate::Inner;

/// How often the seen ids are swept by default.
pub(crate) const SWEEP_EVERY: Duration = Duration::from_secs(600);

/// Sweeps at start and every `every` until `shutdown`.
pub(crate) async fn run(inner: Arc<Inner>, every: Duration, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(every.max(Duration::from_millis(10)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match inner.store.expire_seen(Timestamp::now()).await {
            Ok(removed) => {
                inner.metrics.seen_expired.inc_by(u64::try_from(removed).unwrap_or(u64::MAX));
            }
            Err(e) => tracing::warn!(error = %e, "cannot expire seen ids"),
        }
        // Message requests live as long as their newest message (issue 15).
        match inner.store.expire_requests(Timestamp::now()).await {
            Ok(removed) => {
                inner
                    .metrics
                    .request_dropped("expired", u64::try_from(removed).unwrap_or(u64::MAX));
            }
            Err(e) => tracing::warn!(error = %e, "cannot expire message requests"),
        }
    }
}
