//! Reaching the leader from any node: a request is served where the leader is (this node, or the
//! one it forwards to over the transport), waiting out an election up to `forward_wait_ms`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use linkloom_core::codec;
use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers, ServerState};
use tokio::time::Instant;

use super::*;
use crate::identity::WIRE_VERSION;
use crate::rpc::{Envelope, LeaderRequest, LeaderResponse};
use crate::transport::Transport;

impl<T: Transport> LeaderLink<T> {
    /// Runs `request` on the leader: here if this node leads, else forwarded. Retries while no
    /// leader is known or the leader changes, up to `forward_wait_ms`.
    pub(super) async fn on_leader(&self, request: LeaderRequest) -> Result<LeaderResponse, NodeError> {
        let settings = &self.settings;
        let started = Instant::now();
        let deadline = started + Duration::from_millis(settings.forward_wait_ms);
        let mut metrics = self.raft.metrics();
        let mut last_error = String::from("no leader known");
        loop {
            // A Raft core that stopped (a storage error) never answers again: say so at once,
            // rather than retry until the deadline (its metrics no longer change, so the pause
            // below would not pause, and every retry would log openraft's error: this spun at
            // tens of MB of log per second on a full disk).
            if let Err(fatal) = &metrics.borrow().running_state {
                return Err(NodeError::Stopped(fatal.to_string()));
            }
            let leader = metrics.borrow_and_update().current_leader;
            match leader {
                Some(leader) if leader == self.id => match self.serve_leader_request(request.clone()).await {
                    LeaderResponse::NotLeader { .. } => last_error = "leadership moved".into(),
                    LeaderResponse::Failed(e)
                        if matches!(request, LeaderRequest::Propose(_) | LeaderRequest::ReadIndex) =>
                    {
                        last_error = e
                    }
                    answer => return Ok(answer),
                },
                Some(leader) => match self.forward(leader, &request).await {
                    Ok(LeaderResponse::NotLeader { .. }) => last_error = format!("node {leader} is no longer leader"),
                    Ok(LeaderResponse::Failed(e))
                        if matches!(request, LeaderRequest::Propose(_) | LeaderRequest::ReadIndex) =>
                    {
                        last_error = e
                    }
                    Ok(answer) => return Ok(answer),
                    Err(e) => last_error = e,
                },
                None => {}
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(NodeError::NoLeader { waited_ms: (now - started).as_millis() as u64, last_error });
            }
            // Wake on any change of Raft metrics (a new leader, say), at least every 50 ms.
            let pause = (deadline - now).min(Duration::from_millis(50));
            if let Ok(Err(_)) = tokio::time::timeout(pause, metrics.changed()).await {
                return Err(NodeError::Stopped("the Raft core has stopped".into()));
            }
        }
    }

    pub(super) async fn forward(&self, leader: u64, request: &LeaderRequest) -> Result<LeaderResponse, String> {
        let addr = self
            .raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .get_node(&leader)
            .map(|n| n.addr.clone())
            .ok_or_else(|| format!("leader {leader} has no known address"))?;
        let envelope = Envelope { wire: WIRE_VERSION, cluster: self.identity.get(), message: request };
        let body = codec::encode(&envelope).map_err(|e| e.to_string())?;
        let timeout = Duration::from_millis(self.settings.forward_timeout_ms);
        let bytes = self.transport.post(&addr, PATH_LEADER, body, timeout).await.map_err(|e| e.to_string())?;
        codec::decode(&bytes).map_err(|e| e.to_string())
    }

    /// Serves a [`LeaderRequest`] on this node, answering `NotLeader` if it does not lead.
    pub(super) async fn serve_leader_request(&self, request: LeaderRequest) -> LeaderResponse {
        let raft = &self.raft;
        let not_leader = |f: &openraft::error::ForwardToLeader<u64, BasicNode>| LeaderResponse::NotLeader {
            leader: f.leader_id.zip(f.leader_node.as_ref().map(|n| n.addr.clone())),
        };
        match request {
            LeaderRequest::Propose(command) => match raft.client_write(*command).await {
                Ok(written) => LeaderResponse::Applied(written.data),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => not_leader(&f),
                Err(e) => LeaderResponse::Failed(e.to_string()),
            },
            LeaderRequest::ReadIndex => match raft.ensure_linearizable().await {
                Ok(read_log_id) => {
                    let mut index = read_log_id.map(|id| id.index);
                    if let Some(restored) = &self.restored {
                        if raft.metrics().borrow().vote == restored.vote {
                            index = index.max(Some(restored.last_log_index));
                        }
                    }
                    LeaderResponse::ReadIndex(index)
                }
                Err(RaftError::APIError(openraft::error::CheckIsLeaderError::ForwardToLeader(f))) => not_leader(&f),
                Err(e) => LeaderResponse::Failed(e.to_string()),
            },
            LeaderRequest::AddLearner { id, addr } => match raft.add_learner(id, BasicNode::new(&addr), true).await {
                Ok(_) => self.membership_changed(),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => not_leader(&f),
                Err(e) => LeaderResponse::Failed(e.to_string()),
            },
            LeaderRequest::Replication => {
                let m = raft.metrics().borrow().clone();
                match (&m.state, m.replication) {
                    (ServerState::Leader, Some(progress)) => {
                        let mut matched: BTreeMap<u64, Option<u64>> =
                            progress.iter().map(|(id, log)| (*id, log.map(|l| l.index))).collect();
                        // The leader's own log matches itself, whether or not openraft lists it.
                        matched.insert(self.id, m.last_log_index);
                        LeaderResponse::Replication(Replication {
                            leader_id: self.id,
                            last_log_index: m.last_log_index,
                            matched,
                        })
                    }
                    _ => LeaderResponse::NotLeader {
                        leader: m.current_leader.zip(
                            m.current_leader
                                .and_then(|l| m.membership_config.membership().get_node(&l).map(|n| n.addr.clone())),
                        ),
                    },
                }
            }
            LeaderRequest::SetVoters { voters } => {
                let voters: BTreeSet<u64> = voters.into_iter().collect();
                if let Err(lagging) = self.wait_until_caught_up(&voters).await {
                    return LeaderResponse::Failed(lagging);
                }
                match raft.change_membership(ChangeMembers::ReplaceAllVoters(voters), false).await {
                    Ok(_) => self.membership_changed(),
                    Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => not_leader(&f),
                    Err(e) => LeaderResponse::Failed(e.to_string()),
                }
            }
        }
    }
}
