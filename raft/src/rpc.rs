//! Node-to-node messages: what travels over the [`Transport`](crate::Transport), and the
//! server-side handlers the API mounts under `/raft/`.
//!
//! Bodies are [`linkloom_core::codec`] encodings. Raft's own RPCs (append, vote, snapshot) go
//! straight into openraft; [`LeaderRequest`]s are what a follower asks of the leader on behalf of
//! a client: apply a command, confirm a read index, change membership.

use std::collections::BTreeMap;

use linkloom_core::{Command, Response};
use serde::{Deserialize, Serialize};

/// Paths of the node-to-node endpoints.
pub const PATH_APPEND: &str = "/raft/append";
pub const PATH_VOTE: &str = "/raft/vote";
pub const PATH_SNAPSHOT: &str = "/raft/snapshot";
pub const PATH_LEADER: &str = "/raft/leader";

/// Something only the leader can do, asked by another node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum LeaderRequest {
    Propose(Box<Command>),
    /// Confirm leadership and return the index a linearizable read must wait for.
    ReadIndex,
    AddLearner {
        id: u64,
        addr: String,
    },
    /// Make exactly these nodes the voters.
    SetVoters {
        voters: Vec<u64>,
    },
}

/// The leader's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum LeaderResponse {
    Applied(Response),
    ReadIndex(Option<u64>),
    MembershipChanged {
        members: BTreeMap<u64, String>,
    },
    /// The asked node is not (or no longer) the leader; try this one.
    NotLeader {
        leader: Option<(u64, String)>,
    },
    Failed(String),
}
