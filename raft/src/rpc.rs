//! Node-to-node messages: what travels over the [`Transport`](crate::Transport), and the
//! server-side handlers the API mounts under `/raft/`.
//!
//! Bodies are [`linkloom_core::codec`] encodings of an [`Envelope`]. Raft's own RPCs (append, vote, snapshot) go
//! straight into openraft; [`LeaderRequest`]s are what a follower asks of the leader on behalf of
//! a client: apply a command, confirm a read index, change membership.

use std::collections::BTreeMap;

use linkloom_core::{Command, Response};
use serde::{Deserialize, Serialize};

/// Every node-to-node request: the sender's protocol version first (a receiver reads it before
/// anything else, see [`crate::identity`]), the cluster it belongs to, then the message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Envelope<T> {
    pub(crate) wire: u16,
    pub(crate) cluster: Option<String>,
    pub(crate) message: T,
}

/// The first fields of an [`Envelope`], whatever its message.
#[derive(Debug, Deserialize)]
pub(crate) struct EnvelopeHead {
    pub(crate) wire: u16,
    pub(crate) cluster: Option<String>,
}

/// Paths of the node-to-node endpoints.
pub const PATH_APPEND: &str = "/raft/append";
pub const PATH_VOTE: &str = "/raft/vote";
/// A snapshot whole, in one message: what the previous release sends and expects.
pub const PATH_SNAPSHOT: &str = "/raft/snapshot";
/// A part of a snapshot (`storage/transfer.rs`).
pub const PATH_SNAPSHOT_PART: &str = "/raft/snapshot-part";
pub const PATH_LEADER: &str = "/raft/leader";

/// How a node refuses a path it does not serve (a peer of a later release asks for one).
pub(crate) const UNKNOWN_RAFT_PATH: &str = "unknown raft path";

/// The leader's view of replication: its last log index and, per member, the last index known
/// to match it (`None` until the member first acknowledges).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replication {
    pub leader_id: u64,
    pub last_log_index: Option<u64>,
    pub matched: BTreeMap<u64, Option<u64>>,
}

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
    /// How far each member's log matches the leader's (only the leader knows).
    Replication,
}

/// The leader's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum LeaderResponse {
    Applied(Response),
    ReadIndex(Option<u64>),
    MembershipChanged {
        members: BTreeMap<u64, String>,
    },
    Replication(Replication),
    /// The asked node is not (or no longer) the leader; try this one.
    NotLeader {
        leader: Option<(u64, String)>,
    },
    Failed(String),
}
