//! Leases: a key held by one holder until an expiry instant, with a fencing token that grows with
//! every grant. Expiry is judged against the state's replicated clock, never a local one.

use serde::{Deserialize, Serialize};

/// A held lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub holder: String,
    /// Grows with every grant across all keys; a holder presents it to prove it is current.
    pub token: u64,
    pub acquired_at_ms: i64,
    pub expires_at_ms: i64,
}

impl Lease {
    /// Live at `now_ms`: not yet expired.
    pub fn is_live(&self, now_ms: i64) -> bool {
        self.expires_at_ms > now_ms
    }
}
