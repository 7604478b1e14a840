//! A Link Loom node, assembled from its parts and its seams.
//!
//! [`assemble`] is the one place where Raft, the engine and the API are put together. `loom-node`
//! calls it with a TCP (or TLS) transport, a sled disk, the system clock and real HTTP; the
//! simulation calls it with turmoil's network, an in-memory disk that forgets unflushed writes,
//! a skewed simulated clock and simulated HTTP. So what the simulator runs is the production
//! wiring, not a copy of it (`simulation/tests/wiring.rs` keeps it that way).
//!
//! Everything around the assembly that only a real process has lives beside it: configuration
//! (`config`), guarding the process's secrets (`hardening`), accepting connections (`serve`),
//! TLS (`tls`) and sending traces to an OTLP collector (`otlp`).

pub mod config;
pub mod hardening;
pub mod maintenance;
pub mod otlp;
pub mod serve;
pub mod tls;

use std::sync::Arc;

use linkloom_actors::{EngineConfig, EngineHandle, TaskHttp};
use linkloom_api::{ApiLimits, ApiState, AuthConfig, BrowserGuard, HttpMetrics, UiAssets};
use linkloom_raft::storage::Disk;
use linkloom_raft::{Clock, Entropy, NodeError, RaftSettings, ReplicatedNode, Transport};

/// What differs between a process and a simulated host: how the node reaches its peers, where
/// it keeps its state, what time it is, and how HTTP tasks reach backends.
pub struct Seams<T> {
    pub transport: T,
    pub disk: Disk,
    pub clock: Arc<dyn Clock>,
    /// Randomness for the API (ids, jitter). The engine and openraft still draw from the
    /// runtime's per-thread generator, which is the same stream in production and seeded per host
    /// in the simulation.
    pub entropy: Arc<dyn Entropy>,
    pub task_http: Arc<dyn TaskHttp>,
}

/// What a node is told: the settings of each layer.
pub struct Parts {
    pub raft: RaftSettings,
    pub engine: EngineConfig,
    pub limits: ApiLimits,
    pub auth: AuthConfig,
    pub browser: BrowserGuard,
    pub ui: UiAssets,
    /// Followed log streams per token (`LOOM_MAX_LOG_STREAMS`).
    pub max_log_streams: u64,
    /// Whether `Idempotency-Key` makes retried client writes apply once (off only for chaos
    /// tests that must see duplicates).
    pub idempotency_keys: bool,
    /// Named webhook secrets (`LOOM_WEBHOOK_SECRETS`).
    pub webhooks: linkloom_api::webhook::WebhookSecrets,
}

/// A running node: its Raft member, its engine, and the router that serves its API, the UI and
/// node-to-node traffic on one port.
pub struct Assembled<T> {
    pub node: ReplicatedNode<T>,
    pub engine: Arc<EngineHandle>,
    pub router: axum::Router,
    /// The API's counters; the server adds its connection counts to them.
    pub http_metrics: Arc<HttpMetrics>,
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum AssembleError {
    #[error("starting raft: {0}")]
    Raft(#[from] NodeError),
    #[error("starting the engine: {0}")]
    Engine(#[from] ractor::SpawnErr),
}

/// Starts Raft on the disk, then the engine on Raft, then builds the API over both.
pub async fn assemble<T: Transport>(seams: Seams<T>, parts: Parts) -> Result<Assembled<T>, AssembleError> {
    let node = ReplicatedNode::start_on(parts.raft, seams.transport, seams.disk).await?;
    let engine = Arc::new(
        linkloom_actors::start(
            Arc::new(node.clone()),
            seams.clock.clone(),
            seams.entropy.clone(),
            seams.task_http,
            parts.engine,
        )
        .await?,
    );
    let stats_of = engine.clone();
    let engine_info: linkloom_api::EngineInfo = Arc::new(move || {
        let stats = stats_of.stats();
        linkloom_wire::EngineCounters {
            actor_restarts: stats.actor_restarts,
            ticks_fired: stats.ticks_fired,
            tick_lateness_ms_total: stats.tick_lateness_ms_total,
            worker_dispatches: stats.worker_dispatches,
            worker_connections: stats.worker_connections,
        }
    });
    let http_metrics = Arc::new(HttpMetrics::default());
    http_metrics.log_streams.set_max_per_token(parts.max_log_streams);
    let router = linkloom_api::router(ApiState {
        node: Arc::new(node.clone()),
        clock: seams.clock,
        entropy: seams.entropy,
        limits: parts.limits,
        engine_info: Some(engine_info),
        engine: Some(engine.clone()),
        auth: Arc::new(parts.auth),
        browser: Arc::new(parts.browser),
        http: http_metrics.clone(),
        ui: Arc::new(parts.ui),
        idempotency_keys: parts.idempotency_keys,
        webhooks: Arc::new(parts.webhooks),
    });
    Ok(Assembled { node, engine, router, http_metrics })
}
