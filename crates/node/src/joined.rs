//! Waiting to join the network before a lookup (issue 15 item 6).
//!
//! Right after start the routing table is empty until the bootstrap peers answer, and
//! a DHT lookup then finds nothing at once: a user who typed a correct address would
//! be told "no identity found". A lookup first waits, up to [`JOIN_WAIT`], until the
//! node is joined: a peer in its routing table and an open connection (the bootstrap
//! peers are in the table from the start, before any of them answered); if that does
//! not come, it says the node is not connected
//! (`SendError::NotJoined`), so "no identity found" only ever means that a real
//! lookup found nothing.
//!
//! The network reports no routing-table event, so this looks at the table every
//! [`POLL`]: a handful of cheap in-process questions, only while not yet joined.

use std::time::Duration;

use crate::Inner;

/// How long a lookup waits for the node to join (the brief's ~10 s: a bootstrap over
/// the WAN with a relay takes a few seconds).
pub(crate) const JOIN_WAIT: Duration = Duration::from_secs(10);

/// How often the routing table is looked at while waiting.
const POLL: Duration = Duration::from_millis(50);

/// Returns `true` once joined; `false` if not within `limit`.
pub(crate) async fn wait(inner: &Inner, limit: Duration) -> Result<bool, communitas_net::Error> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let known = inner.net.closest_known_peers(inner.public.address.to_bytes().to_vec()).await?;
        if !known.is_empty() && inner.net.status().await?.connected_peers > 0 {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(POLL).await;
    }
}
