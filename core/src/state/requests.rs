//! Exactly-once application: a proposal or a client request that reaches the log twice is applied
//! once, and its second copy is answered with the first answer.
//!
//! Two kinds of retry put a command into the log twice, and each has its own table:
//!
//! - **A node retrying a proposal.** A node forwards a batch to the leader; the leader commits it
//!   and dies before answering; the node sends the batch again to the next leader. Every batch
//!   carries its [`Origin`]: the proposing node, a session drawn when that node's process started,
//!   and the batch's sequence number in the session. The state keeps, per session, the answers of
//!   batches whose proposer has not yet confirmed it got them (`answered_below`, carried by every
//!   later batch), so the table holds only what is in flight, whatever the write rate (the client
//!   sessions of the Raft dissertation, §6.3, with the node as the client).
//! - **A client retrying a request.** A client whose request timed out sends it again, perhaps
//!   through another node, with the same `Idempotency-Key`. The request's [`RequestId`] (the key,
//!   scoped to the caller) is remembered with a fingerprint of the request and its answer for a
//!   window of replicated time, bounded in count; within it, the same request is answered with
//!   the first answer and a different request under the same key is refused.
//!
//! Both tables live in the replicated state and change only in `apply`, by replicated time, so
//! every node makes the same decisions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::command::Response;
use crate::ids::NodeId;

/// Where a batch of commands comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub node: NodeId,
    /// Drawn at random when the proposing node's process started.
    pub session: u64,
    /// The batch's number in the session, in the order the node formed its batches.
    pub seq: u64,
    /// The proposer has the answers of every batch of this session numbered below this.
    pub answered_below: u64,
}

/// A client request's identity: the caller (a token name, or `-` on a node that runs open) and
/// the `Idempotency-Key` it sent.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RequestId {
    pub scope: String,
    pub key: String,
}

/// Longest `Idempotency-Key`, in bytes.
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 255;

impl RequestId {
    /// Checks the key: 1 to [`MAX_IDEMPOTENCY_KEY_BYTES`] visible ASCII characters.
    pub fn validate(&self) -> Result<(), String> {
        let key = &self.key;
        if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_BYTES {
            return Err(format!("an idempotency key is 1 to {MAX_IDEMPOTENCY_KEY_BYTES} bytes, not {}", key.len()));
        }
        if let Some(c) = key.chars().find(|c| !c.is_ascii_graphic()) {
            return Err(format!("an idempotency key is visible ASCII; it contains {c:?}"));
        }
        if self.scope.len() > crate::limits::MAX_TOKEN_NAME_BYTES {
            return Err(format!("a request scope is at most {} bytes", crate::limits::MAX_TOKEN_NAME_BYTES));
        }
        Ok(())
    }
}

/// A digest of what a client sent under a key (method, path and body), so that a key reused for
/// another request is refused rather than answered with the wrong answer.
pub type Fingerprint = [u8; 16];

/// Sessions idle this long (replicated time) are forgotten: their node has restarted or left.
pub const SESSION_IDLE_MS: i64 = 10 * 60 * 1_000;
/// Sessions kept at most; beyond it the least recently seen is forgotten.
pub const MAX_SESSIONS: usize = 1_024;
/// Batches whose answers one session keeps at most (a node has a handful in flight; this bounds
/// a misbehaving proposer).
pub const MAX_ANSWERS_PER_SESSION: usize = 64;

/// One node session's unconfirmed answers.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
struct Session {
    answered_below: u64,
    /// Answers per batch sequence number, for batches at or above `answered_below`.
    answers: BTreeMap<u64, Vec<Response>>,
    last_seen_ms: i64,
}

/// What a batch's origin says about it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Seen {
    /// Not applied before: apply it.
    New,
    /// Applied before: these were its answers.
    Again(Vec<Response>),
    /// Older than what its proposer has confirmed answered: a copy nobody waits for. Not applied.
    Stale,
}

/// Node sessions (see the module docs).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub(super) struct Sessions {
    by_id: BTreeMap<(NodeId, u64), Session>,
}

impl Sessions {
    /// Judges a batch from `origin`, and forgets what its proposer has confirmed.
    pub(super) fn admit(&mut self, origin: &Origin, now_ms: i64) -> Seen {
        self.expire(now_ms);
        let session = self.by_id.entry((origin.node, origin.session)).or_default();
        session.last_seen_ms = now_ms;
        if origin.answered_below > session.answered_below {
            session.answered_below = origin.answered_below;
            let keep = session.answers.split_off(&origin.answered_below);
            session.answers = keep;
        }
        if let Some(answers) = session.answers.get(&origin.seq) {
            return Seen::Again(answers.clone());
        }
        if origin.seq < session.answered_below {
            return Seen::Stale;
        }
        let over = self.by_id.len().saturating_sub(MAX_SESSIONS);
        if over > 0 {
            let mut oldest: Vec<((NodeId, u64), i64)> =
                self.by_id.iter().map(|(id, s)| (*id, s.last_seen_ms)).collect();
            oldest.sort_by_key(|(id, seen)| (*seen, *id));
            for (id, _) in oldest.into_iter().filter(|(id, _)| *id != (origin.node, origin.session)).take(over) {
                self.by_id.remove(&id);
            }
        }
        Seen::New
    }

    /// Keeps the answers of a batch admitted as [`Seen::New`] until its proposer confirms them.
    pub(super) fn record(&mut self, origin: &Origin, answers: &[Response]) {
        if let Some(session) = self.by_id.get_mut(&(origin.node, origin.session)) {
            if origin.seq >= session.answered_below {
                session.answers.insert(origin.seq, answers.to_vec());
                while session.answers.len() > MAX_ANSWERS_PER_SESSION {
                    session.answers.pop_first();
                }
            }
        }
    }

    fn expire(&mut self, now_ms: i64) {
        self.by_id.retain(|_, s| now_ms.saturating_sub(s.last_seen_ms) < SESSION_IDLE_MS);
    }

    /// Sessions and the batch answers they hold, for metrics.
    pub(super) fn size(&self) -> (usize, usize) {
        (self.by_id.len(), self.by_id.values().map(|s| s.answers.len()).sum())
    }
}

/// A client request remembered for its window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Recorded {
    fingerprint: Fingerprint,
    response: Response,
    at_ms: i64,
}

/// What the table says about a client request.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Lookup {
    New,
    /// Seen within the window with the same fingerprint: its first answer.
    Replay(Response),
    /// The key was used for a different request.
    Reused,
}

/// Client requests by id, remembered for a window (see the module docs).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub(super) struct ClientRequests {
    by_id: imbl::OrdMap<RequestId, Recorded>,
    /// Ids in the order they were recorded, which is also the order of their times (replicated
    /// time never goes back), so the oldest is always at the front.
    order: imbl::Vector<RequestId>,
    /// Requests forgotten before their window ended because the table was full.
    evicted_early: u64,
}

impl ClientRequests {
    pub(super) fn lookup(&mut self, id: &RequestId, fingerprint: &Fingerprint, now_ms: i64, window_ms: i64) -> Lookup {
        self.expire(now_ms, window_ms);
        match self.by_id.get(id) {
            None => Lookup::New,
            Some(r) if &r.fingerprint == fingerprint => Lookup::Replay(r.response.clone()),
            Some(_) => Lookup::Reused,
        }
    }

    pub(super) fn record(
        &mut self,
        id: RequestId,
        fingerprint: Fingerprint,
        response: Response,
        now_ms: i64,
        max: usize,
    ) {
        while self.order.len() >= max.max(1) {
            if let Some(oldest) = self.order.pop_front() {
                self.by_id.remove(&oldest);
                self.evicted_early += 1;
            }
        }
        self.order.push_back(id.clone());
        self.by_id.insert(id, Recorded { fingerprint, response, at_ms: now_ms });
    }

    fn expire(&mut self, now_ms: i64, window_ms: i64) {
        while let Some(oldest) = self.order.front() {
            let expired = self.by_id.get(oldest).is_none_or(|r| now_ms.saturating_sub(r.at_ms) >= window_ms);
            if !expired {
                break;
            }
            if let Some(id) = self.order.pop_front() {
                self.by_id.remove(&id);
            }
        }
    }

    /// (requests remembered, requests forgotten early because the table was full), for metrics.
    pub(super) fn size(&self) -> (usize, u64) {
        (self.by_id.len(), self.evicted_early)
    }

    pub(super) fn check_invariants(&self) -> Result<(), String> {
        if self.order.len() != self.by_id.len() {
            return Err(format!("{} request ids in order, {} remembered", self.order.len(), self.by_id.len()));
        }
        let mut last = i64::MIN;
        for id in &self.order {
            let Some(r) = self.by_id.get(id) else { return Err(format!("request {id:?} in order but not remembered")) };
            if r.at_ms < last {
                return Err(format!("request {id:?} recorded out of time order"));
            }
            last = r.at_ms;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(seq: u64, answered_below: u64) -> Origin {
        Origin { node: 1, session: 7, seq, answered_below }
    }

    fn answer(n: u32) -> Vec<Response> {
        vec![Response::ExecutionsPruned { count: n }]
    }

    #[test]
    fn a_batch_seen_again_gets_its_first_answers() {
        let mut sessions = Sessions::default();
        assert_eq!(sessions.admit(&origin(0, 0), 10), Seen::New);
        sessions.record(&origin(0, 0), &answer(1));
        assert_eq!(sessions.admit(&origin(0, 0), 11), Seen::Again(answer(1)));
        // Another session of the same node is another proposer.
        let other = Origin { session: 8, ..origin(0, 0) };
        assert_eq!(sessions.admit(&other, 12), Seen::New);
    }

    #[test]
    fn confirmed_answers_are_forgotten_and_their_copies_are_stale() {
        let mut sessions = Sessions::default();
        for seq in 0..3 {
            assert_eq!(sessions.admit(&origin(seq, 0), 10), Seen::New);
            sessions.record(&origin(seq, 0), &answer(seq as u32));
        }
        assert_eq!(sessions.size(), (1, 3));
        // Batch 3 says 0 and 1 were answered: their answers go, 2's stays.
        assert_eq!(sessions.admit(&origin(3, 2), 20), Seen::New);
        sessions.record(&origin(3, 2), &answer(3));
        assert_eq!(sessions.size(), (1, 2));
        assert_eq!(sessions.admit(&origin(1, 0), 21), Seen::Stale);
        assert_eq!(sessions.admit(&origin(2, 0), 21), Seen::Again(answer(2)));
    }

    #[test]
    fn idle_sessions_are_forgotten() {
        let mut sessions = Sessions::default();
        sessions.admit(&origin(0, 0), 0);
        sessions.record(&origin(0, 0), &answer(0));
        let other = Origin { node: 2, ..origin(0, 0) };
        sessions.admit(&other, SESSION_IDLE_MS);
        assert_eq!(sessions.size(), (1, 0));
    }

    fn id(key: &str) -> RequestId {
        RequestId { scope: "ops".into(), key: key.into() }
    }

    #[test]
    fn a_request_is_replayed_within_its_window_and_refused_under_another_fingerprint() {
        let mut table = ClientRequests::default();
        assert_eq!(table.lookup(&id("a"), &[1; 16], 0, 100), Lookup::New);
        table.record(id("a"), [1; 16], Response::Noop, 0, 10);
        assert_eq!(table.lookup(&id("a"), &[1; 16], 99, 100), Lookup::Replay(Response::Noop));
        assert_eq!(table.lookup(&id("a"), &[2; 16], 99, 100), Lookup::Reused);
        // The same key from another caller is another request.
        let theirs = RequestId { scope: "dev".into(), key: "a".into() };
        assert_eq!(table.lookup(&theirs, &[2; 16], 99, 100), Lookup::New);
        assert_eq!(table.lookup(&id("a"), &[1; 16], 100, 100), Lookup::New, "the window has passed");
        assert_eq!(table.size(), (0, 0));
        assert_eq!(table.check_invariants(), Ok(()));
    }

    #[test]
    fn a_full_table_forgets_its_oldest_and_counts_it() {
        let mut table = ClientRequests::default();
        for (i, key) in ["a", "b", "c"].into_iter().enumerate() {
            table.record(id(key), [0; 16], Response::Noop, i as i64, 2);
        }
        assert_eq!(table.size(), (2, 1));
        assert_eq!(table.lookup(&id("a"), &[0; 16], 3, 100), Lookup::New);
        assert_eq!(table.lookup(&id("b"), &[0; 16], 3, 100), Lookup::Replay(Response::Noop));
        assert_eq!(table.check_invariants(), Ok(()));
    }

    #[test]
    fn keys_are_checked() {
        assert!(id("order-42").validate().is_ok());
        assert!(id("").validate().is_err());
        assert!(id("with space").validate().is_err());
        assert!(id(&"k".repeat(256)).validate().is_err());
        assert!(id(&"k".repeat(255)).validate().is_ok());
    }
}
