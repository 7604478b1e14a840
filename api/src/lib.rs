//! Link Loom's HTTP API: the routes every node serves, the error model, and the node-to-node
//! endpoints Raft uses.
//!
//! Architecture invariant: handlers translate HTTP to commands and queries and back. They hold
//! no state of their own and make no decision the state machine should make; every write goes
//! through [`ReplicatedNode::propose`], every default read through a linearizable barrier.

mod body;
mod error;
mod routes;
mod views;

use std::sync::Arc;

use axum::Router;
use linkloom_raft::{Clock, ReplicatedNode, Transport};

pub use error::ApiError;

/// Limits the API enforces before anything reaches the log.
#[derive(Debug, Clone)]
pub struct ApiLimits {
    /// Largest request body accepted on the public API (413 above it).
    pub max_body_bytes: usize,
    /// Largest body accepted on node-to-node endpoints (snapshots travel there).
    pub max_raft_body_bytes: usize,
    /// Most items a list returns in one page.
    pub max_page_size: usize,
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits { max_body_bytes: 1024 * 1024, max_raft_body_bytes: 512 * 1024 * 1024, max_page_size: 500 }
    }
}

/// The engine's counters as JSON, shown in `GET /api/v1/cluster` (the API does not depend on
/// the engine crate; the binary wires this in).
pub type EngineInfo = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

/// Why a worker could not connect.
#[derive(Debug, thiserror::Error)]
pub enum WorkerConnectError {
    /// What the worker declared is not acceptable (400).
    #[error("{0}")]
    Invalid(String),
    /// The state machine refused the registration.
    #[error("{0}")]
    Refused(linkloom_core::state::Rejection),
    /// No leader, or the node is stopping (503).
    #[error("{0}")]
    Unavailable(String),
}

/// The events of one worker connection; dropping the stream closes the connection.
pub type WorkerEvents = futures::stream::BoxStream<'static, linkloom_core::protocol::WorkerEvent>;

/// Where worker connections go: the engine's connection actors (the API does not depend on the
/// engine crate; the binary wires this in).
pub trait WorkerGateway: Send + Sync + 'static {
    fn connect(
        &self,
        hello: linkloom_core::protocol::WorkerHello,
    ) -> futures::future::BoxFuture<'_, Result<WorkerEvents, WorkerConnectError>>;
    /// How long a worker's lease lasts after a heartbeat.
    fn lease_ms(&self) -> u64;
    /// How often workers heartbeat (a vanished worker leaves the list within this).
    fn heartbeat_interval_ms(&self) -> u64;
}

/// What every handler needs.
pub struct ApiState<T> {
    pub node: ReplicatedNode<T>,
    pub clock: Arc<dyn Clock>,
    pub limits: ApiLimits,
    pub engine_info: Option<EngineInfo>,
    pub workers: Option<Arc<dyn WorkerGateway>>,
}

impl<T> Clone for ApiState<T> {
    fn clone(&self) -> Self {
        ApiState {
            node: self.node.clone(),
            clock: self.clock.clone(),
            limits: self.limits.clone(),
            engine_info: self.engine_info.clone(),
            workers: self.workers.clone(),
        }
    }
}

/// The full router: public API, health, and node-to-node endpoints.
pub fn router<T: Transport>(state: ApiState<T>) -> Router {
    routes::router(state)
}
