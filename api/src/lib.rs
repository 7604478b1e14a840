//! Link Loom's HTTP API: the routes every node serves, the error model, and the node-to-node
//! endpoints Raft uses.
//!
//! Architecture invariant: handlers translate HTTP to commands and queries and back. They hold
//! no state of their own and make no decision the state machine should make; every write goes
//! through [`Node::propose`], every default read through a linearizable barrier.

mod auth;
mod body;
mod browser;
mod error;
mod idempotency;
mod node;
mod observe;
mod openapi;
mod routes;
mod ui;
mod views;
pub mod webhook;

use std::sync::Arc;

use axum::Router;
use linkloom_raft::{Clock, Entropy};

pub use auth::{token_hash, Access, AuthConfig, Caller};
pub use browser::BrowserGuard;
pub use error::ApiError;
pub use idempotency::{ClientRequest, Once, IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED};
pub use node::Node;
pub use observe::{HttpMetrics, REQUEST_ID};
pub use routes::OPEN_WARNING;
pub use ui::UiAssets;

/// The OpenAPI 3.1 description this build serves at `/api/openapi.json`.
pub fn openapi_document() -> &'static serde_json::Value {
    openapi::document()
}

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

/// The engine's counters as JSON, shown in `GET /api/v1/cluster` (the binary decides what to
/// show).
pub type EngineInfo = Arc<dyn Fn() -> linkloom_wire::EngineCounters + Send + Sync>;

/// What every handler needs.
#[derive(Clone)]
pub struct ApiState {
    /// The replicated node this API serves (any transport).
    pub node: Arc<dyn Node>,
    pub clock: Arc<dyn Clock>,
    /// Ids, jitter: every random number a handler needs (never a thread-local of its own).
    pub entropy: Arc<dyn Entropy>,
    pub limits: ApiLimits,
    pub engine_info: Option<EngineInfo>,
    /// The node's engine, which serves worker connections (absent: this node serves no workers).
    pub engine: Option<Arc<linkloom_actors::EngineHandle>>,
    /// Tokens, roles, the cluster secret and the request rate per token.
    pub auth: Arc<AuthConfig>,
    /// What a web page in someone's browser may not make the node do (Host, Origin, types).
    pub browser: Arc<BrowserGuard>,
    /// HTTP counters for `/metrics` (shared by every clone of the router).
    pub http: Arc<HttpMetrics>,
    /// The web UI served at `/` (empty: this build has none, and `/` is a 404).
    pub ui: Arc<UiAssets>,
    /// The named secrets webhook callers prove (`LOOM_WEBHOOK_SECRETS`).
    pub webhooks: Arc<webhook::WebhookSecrets>,
    /// Whether `Idempotency-Key` makes client retries apply once. Always, except under
    /// `LOOM_CHAOS_NO_DEDUP` (chaos testing: proves the Jepsen-style test sees duplicates).
    pub idempotency_keys: bool,
}

impl ApiState {
    /// Proposes `command` for the request `once` belongs to: applied once per idempotency key,
    /// a repeat answered with the first answer (and the request marked as replayed).
    pub async fn propose(
        &self,
        once: &Once,
        command: linkloom_core::Command,
    ) -> Result<linkloom_core::Response, linkloom_raft::NodeError> {
        let command = match &once.0 {
            Some(request) => request.wrap(command),
            None => command,
        };
        match self.node.propose(command).await? {
            linkloom_core::Response::Replayed(first) => {
                if let Some(request) = &once.0 {
                    request.mark_replayed();
                }
                Ok(*first)
            }
            other => Ok(other),
        }
    }
}

/// The full router: public API, health, and node-to-node endpoints.
pub fn router(state: ApiState) -> Router {
    routes::router(state)
}

/// This node's `/metrics` page (for benchmarks and tests that read it without HTTP).
pub fn metrics_text(state: &ApiState) -> String {
    routes::render_metrics(state)
}
