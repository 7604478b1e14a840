//! The replicated node as the API uses it: a trait object, so that handlers are plain functions
//! of [`crate::ApiState`] instead of generic over the node's transport (one copy of every
//! handler, not one per transport), and so the API names exactly what it asks of Raft.

use std::time::Duration;

use futures::future::BoxFuture;
use linkloom_core::metrics::Exposition;
use linkloom_core::{Command, Response};
use linkloom_raft::backup::BackupSummary;
use linkloom_raft::{Changes, ClusterInfo, Member, NodeError, ReplicatedNode, Replication, StateHandle, Transport};

/// What the API asks of the node it serves.
pub trait Node: Send + Sync + 'static {
    /// This node's id.
    fn id(&self) -> u64;
    /// The applied state, to read.
    fn state(&self) -> &StateHandle;
    /// Wakes on every applied change (log followers wait on it).
    fn changes(&self) -> Changes;
    /// Log entries kept on disk.
    fn log_len(&self) -> usize;
    /// A leader is known and what was committed at start is applied.
    fn is_ready(&self) -> bool;
    /// Raft's view from this node.
    fn cluster_info(&self) -> ClusterInfo;
    /// Raft's metric families, for `/metrics`.
    fn render_metrics(&self, out: &mut Exposition);
    /// Replicates `command` (through the leader) and answers what applying it gave.
    fn propose(&self, command: Command) -> BoxFuture<'_, Result<Response, NodeError>>;
    /// Waits until this node has applied everything committed when the call began.
    fn linearizable_barrier(&self) -> BoxFuture<'_, Result<(), NodeError>>;
    /// The leader's replication figures, asked within `within`.
    fn replication(&self, within: Duration) -> BoxFuture<'_, Result<Replication, NodeError>>;
    fn add_learner(&self, id: u64, addr: String) -> BoxFuture<'_, Result<Vec<Member>, NodeError>>;
    fn promote(&self, id: u64) -> BoxFuture<'_, Result<Vec<Member>, NodeError>>;
    fn remove(&self, id: u64) -> BoxFuture<'_, Result<Vec<Member>, NodeError>>;
    /// A backup archive of the state with every write acknowledged before the call.
    fn backup(&self, taken_at_ms: i64, within: Duration) -> BoxFuture<'_, Result<(Vec<u8>, BackupSummary), NodeError>>;
    /// Answers a node-to-node message (`/raft/{kind}`).
    fn serve_rpc<'a>(&'a self, path: &'a str, body: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, NodeError>>;
}

impl<T: Transport> Node for ReplicatedNode<T> {
    fn id(&self) -> u64 {
        ReplicatedNode::id(self)
    }
    fn state(&self) -> &StateHandle {
        ReplicatedNode::state(self)
    }
    fn changes(&self) -> Changes {
        ReplicatedNode::changes(self)
    }
    fn log_len(&self) -> usize {
        ReplicatedNode::log_len(self)
    }
    fn is_ready(&self) -> bool {
        ReplicatedNode::is_ready(self)
    }
    fn cluster_info(&self) -> ClusterInfo {
        ReplicatedNode::cluster_info(self)
    }
    fn render_metrics(&self, out: &mut Exposition) {
        ReplicatedNode::render_metrics(self, out)
    }
    fn propose(&self, command: Command) -> BoxFuture<'_, Result<Response, NodeError>> {
        Box::pin(ReplicatedNode::propose(self, command))
    }
    fn linearizable_barrier(&self) -> BoxFuture<'_, Result<(), NodeError>> {
        Box::pin(ReplicatedNode::linearizable_barrier(self))
    }
    fn replication(&self, within: Duration) -> BoxFuture<'_, Result<Replication, NodeError>> {
        Box::pin(ReplicatedNode::replication(self, within))
    }
    fn backup(&self, taken_at_ms: i64, within: Duration) -> BoxFuture<'_, Result<(Vec<u8>, BackupSummary), NodeError>> {
        Box::pin(ReplicatedNode::backup(self, taken_at_ms, within))
    }
    fn add_learner(&self, id: u64, addr: String) -> BoxFuture<'_, Result<Vec<Member>, NodeError>> {
        Box::pin(ReplicatedNode::add_learner(self, id, addr))
    }
    fn promote(&self, id: u64) -> BoxFuture<'_, Result<Vec<Member>, NodeError>> {
        Box::pin(ReplicatedNode::promote(self, id))
    }
    fn remove(&self, id: u64) -> BoxFuture<'_, Result<Vec<Member>, NodeError>> {
        Box::pin(ReplicatedNode::remove(self, id))
    }
    fn serve_rpc<'a>(&'a self, path: &'a str, body: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>, NodeError>> {
        Box::pin(ReplicatedNode::serve_rpc(self, path, body))
    }
}
