//! Membership changes: learners join, are promoted once they have the log, members leave; the
//! last voter never does.

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::rpc::{LeaderRequest, LeaderResponse};
use crate::transport::Transport;

/// How far behind the leader's log a learner may be when it is promoted to voter.
const PROMOTE_MAX_LAG: u64 = 1000;
/// How long a promotion waits for the learner to come that close: less than the default
/// `forward_timeout_ms` (5 s), so a promotion forwarded from a follower gets the leader's answer.
const PROMOTE_WAIT: Duration = Duration::from_secs(3);

impl<T: Transport> ReplicatedNode<T> {
    /// Adds a node as a learner (it receives the log but does not vote).
    pub async fn add_learner(&self, id: u64, addr: String) -> Result<Vec<Member>, NodeError> {
        self.membership_request(LeaderRequest::AddLearner { id, addr }).await
    }

    /// Makes a learner a voter.
    pub async fn promote(&self, id: u64) -> Result<Vec<Member>, NodeError> {
        // Membership is read here, so first see every change committed before this request (a
        // learner just added through another node, say), or the voter set would be stale.
        self.linearizable_barrier().await?;
        let info = self.cluster_info();
        if !info.members.iter().any(|m| m.id == id) {
            return Err(NodeError::NotMember(id));
        }
        let mut voters: Vec<u64> = info.members.iter().filter(|m| m.voter).map(|m| m.id).collect();
        voters.push(id);
        self.membership_request(LeaderRequest::SetVoters { voters }).await
    }

    /// Removes a node from the cluster.
    pub async fn remove(&self, id: u64) -> Result<Vec<Member>, NodeError> {
        self.linearizable_barrier().await?;
        let info = self.cluster_info();
        if !info.members.iter().any(|m| m.id == id) {
            return Err(NodeError::NotMember(id));
        }
        let voters: Vec<u64> = info.members.iter().filter(|m| m.voter && m.id != id).map(|m| m.id).collect();
        if voters.is_empty() {
            return Err(NodeError::Membership("cannot remove the last voter".into()));
        }
        self.membership_request(LeaderRequest::SetVoters { voters }).await
    }

    async fn membership_request(&self, request: LeaderRequest) -> Result<Vec<Member>, NodeError> {
        match self.inner.link.on_leader(request).await? {
            LeaderResponse::MembershipChanged { members } => {
                // Show the change as committed, not this node's possibly older view.
                self.linearizable_barrier().await?;
                let voters: BTreeSet<u64> =
                    self.cluster_info().members.iter().filter(|m| m.voter).map(|m| m.id).collect();
                Ok(members.into_iter().map(|(id, addr)| Member { id, addr, voter: voters.contains(&id) }).collect())
            }
            LeaderResponse::Failed(e) => Err(NodeError::Membership(e)),
            other => Err(NodeError::Raft(format!("unexpected answer to a membership change: {other:?}"))),
        }
    }
}

impl<T: Transport> LeaderLink<T> {
    /// Waits (at most [`PROMOTE_WAIT`]) until every node about to become a voter has the log up
    /// to [`PROMOTE_MAX_LAG`] entries from the leader's end. Promoting a learner that cannot be
    /// reached, or is far behind, would count it in every quorum from then on: in a one-node
    /// cluster the first such promotion stops all writes.
    pub(super) async fn wait_until_caught_up(&self, voters: &BTreeSet<u64>) -> Result<(), String> {
        let mut metrics = self.raft.metrics();
        let deadline = Instant::now() + PROMOTE_WAIT;
        loop {
            let lagging = {
                let m = metrics.borrow_and_update();
                let current = m.membership_config.membership().voter_ids().collect::<BTreeSet<_>>();
                let end = m.last_log_index.unwrap_or(0);
                let matched = |id: &u64| {
                    m.replication.as_ref().and_then(|r| r.get(id).copied().flatten()).map(|log_id| log_id.index)
                };
                voters
                    .iter()
                    .filter(|id| !current.contains(id))
                    .find(|id| matched(id).is_none_or(|index| index + PROMOTE_MAX_LAG < end))
                    .map(|id| (*id, matched(id), end))
            };
            let Some((id, matched, end)) = lagging else { return Ok(()) };
            if Instant::now() >= deadline {
                return Err(match matched {
                    None => format!(
                        "node {id} has not received any of the log in {PROMOTE_WAIT:?}: is it running, and reachable at \
                         its address? It stays a learner"
                    ),
                    Some(index) => format!(
                        "node {id} has the log up to {index} of {end}, more than {PROMOTE_MAX_LAG} behind after \
                         {PROMOTE_WAIT:?}; promote it once it has caught up (GET /api/v1/cluster shows its lag)"
                    ),
                });
            }
            if let Ok(Err(_)) = tokio::time::timeout_at(deadline, metrics.changed()).await {
                return Err("raft is shutting down".into());
            }
        }
    }

    pub(super) fn membership_changed(&self) -> LeaderResponse {
        let members = self
            .raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .nodes()
            .map(|(id, n)| (*id, n.addr.clone()))
            .collect();
        LeaderResponse::MembershipChanged { members }
    }
}
