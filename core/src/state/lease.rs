//! Leases: a key held by one holder until an expiry instant, with a fencing token that grows with
//! every grant. Expiry is judged against the state's replicated clock, never a local one.

use serde::{Deserialize, Serialize};

use super::command::{Rejection, Response};
use super::{Moment, State};
use crate::limits;

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

impl State {
    pub(super) fn acquire_lease(&mut self, key: String, holder: String, expires_at_ms: i64, at: Moment) -> Response {
        let (now, expires_at_ms) = (at.now, at.expiry(expires_at_ms));
        for (what, value) in [("lease key", &key), ("lease holder", &holder)] {
            if value.len() > limits::MAX_LEASE_KEY_BYTES {
                return Response::Rejected(Rejection::TooLarge {
                    what: what.into(),
                    size: value.len(),
                    limit: limits::MAX_LEASE_KEY_BYTES,
                });
            }
        }
        if let Some(lease) = self.leases.get_mut(&key) {
            if lease.is_live(now) {
                if lease.holder != holder {
                    return Response::Rejected(Rejection::LeaseHeld {
                        key,
                        holder: lease.holder.clone(),
                        expires_at_ms: lease.expires_at_ms,
                    });
                }
                lease.expires_at_ms = lease.expires_at_ms.max(expires_at_ms);
                return Response::LeaseGranted { token: lease.token, expires_at_ms: lease.expires_at_ms, key };
            }
        }
        self.next_lease_token += 1;
        let token = self.next_lease_token;
        self.leases.insert(key.clone(), Lease { holder, token, acquired_at_ms: now, expires_at_ms });
        Response::LeaseGranted { key, token, expires_at_ms }
    }

    pub(super) fn renew_lease(&mut self, key: String, holder: String, expires_at_ms: i64, at: Moment) -> Response {
        match self.leases.get_mut(&key) {
            Some(lease) if lease.holder == holder && lease.is_live(at.now) => {
                lease.expires_at_ms = lease.expires_at_ms.max(at.expiry(expires_at_ms));
                Response::LeaseGranted { token: lease.token, expires_at_ms: lease.expires_at_ms, key }
            }
            _ => Response::Rejected(Rejection::LeaseNotHeld { key, holder }),
        }
    }

    pub(super) fn release_lease(&mut self, key: String, holder: String) -> Response {
        match self.leases.get(&key) {
            Some(lease) if lease.holder == holder => {
                self.leases.remove(&key);
                Response::LeaseReleased { key }
            }
            _ => Response::Rejected(Rejection::LeaseNotHeld { key, holder }),
        }
    }

    /// Drops every lease expired at `now` (replicated time).
    pub(super) fn expire_leases(&mut self, now: i64) -> Response {
        let keys: Vec<String> = self.leases.iter().filter(|(_, l)| !l.is_live(now)).map(|(k, _)| k.clone()).collect();
        for key in &keys {
            self.leases.remove(key);
        }
        Response::LeasesExpired { keys }
    }

    pub fn lease(&self, key: &str) -> Option<&Lease> {
        self.leases.get(key)
    }

    pub fn leases(&self) -> impl Iterator<Item = (&String, &Lease)> {
        self.leases.iter()
    }
}
