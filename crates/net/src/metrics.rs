//! Counters the event loop keeps for `/metrics`: what the network refused and why.
//!
//! The node registers [`NetMetrics::refused`] in its Prometheus registry as
//! `communitas_refused_total{what}` and adds its own refusals (mailbox quotas) to the
//! same family, so one series answers "what did this server turn away".

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

/// Label set of [`NetMetrics::refused`]: `what` was refused.
pub type RefusedLabels = Vec<(String, String)>;

/// The network's counters. Cheap to clone: clones share the counts.
#[derive(Debug, Clone, Default)]
pub struct NetMetrics {
    /// Refusals by what was refused: `connection_limit`, `memory_limit`,
    /// `relay_reservation`, `relay_circuit`, and the node's own labels.
    pub refused: Family<RefusedLabels, Counter>,
}

impl NetMetrics {
    /// Counts one refusal of kind `what`.
    pub fn refuse(&self, what: &str) {
        self.refused.get_or_create(&vec![("what".to_owned(), what.to_owned())]).inc();
    }

    /// The count for `what` so far.
    pub fn refused_count(&self, what: &str) -> u64 {
        self.refused.get_or_create(&vec![("what".to_owned(), what.to_owned())]).get()
    }
}
