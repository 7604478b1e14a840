//! Route table. Paths here are the public interface; see docs/api.md.

mod cluster;
mod executions;
mod health;
mod raft;
mod workers;
mod workflows;

use axum::http::{StatusCode, Uri};
use axum::routing::{get, post};
use axum::Router;
use linkloom_raft::Transport;
use serde::Deserialize;

use crate::error::ApiError;
use crate::ApiState;

pub(crate) fn router<T: Transport>(state: ApiState<T>) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz::<T>))
        .route("/api/v1/cluster", get(cluster::show::<T>))
        .route("/api/v1/cluster/members", post(cluster::add_learner::<T>))
        .route("/api/v1/cluster/members/{id}", axum::routing::delete(cluster::remove::<T>))
        .route("/api/v1/cluster/members/{id}/promote", post(cluster::promote::<T>))
        .route("/api/v1/workflows", get(workflows::list::<T>).post(workflows::put::<T>))
        .route("/api/v1/workflows/{id}", get(workflows::show::<T>).delete(workflows::delete::<T>))
        .route("/api/v1/workflows/{id}/versions", get(workflows::versions::<T>))
        .route("/api/v1/workflows/{id}/versions/{version}", get(workflows::version::<T>))
        .route("/api/v1/workflows/{id}/trigger", post(executions::trigger::<T>))
        .route("/api/v1/workflows/{id}/pause", post(executions::pause::<T>))
        .route("/api/v1/workflows/{id}/resume", post(executions::resume::<T>))
        .route("/api/v1/workflows/{id}/backfill", post(executions::backfill::<T>))
        .route("/api/v1/executions", get(executions::list::<T>))
        .route("/api/v1/executions/{id}", get(executions::show::<T>))
        .route("/api/v1/executions/{id}/cancel", post(executions::cancel::<T>))
        .route("/api/v1/executions/{id}/retry", post(executions::retry::<T>))
        .route("/api/v1/executions/{id}/logs", get(executions::logs::<T>))
        .route("/api/v1/tasks/{attempt_id}/callback", post(executions::callback::<T>))
        .route("/api/v1/tasks/{attempt_id}/heartbeat", post(executions::heartbeat::<T>))
        .route("/api/v1/workers", get(workers::list::<T>))
        .route("/api/v1/workers/connect", post(workers::connect::<T>))
        .route("/api/v1/workers/{worker_id}/drain", post(workers::drain::<T>))
        .route("/api/v1/workers/{worker_id}/attempts/{attempt_id}/heartbeat", post(workers::heartbeat::<T>))
        .route("/api/v1/workers/{worker_id}/attempts/{attempt_id}/complete", post(workers::complete::<T>))
        .route("/api/v1/workers/{worker_id}/attempts/{attempt_id}/release", post(workers::release::<T>))
        .route("/api/v1/queues", get(workers::queues::<T>))
        .route("/raft/{kind}", post(raft::serve::<T>))
        .fallback(not_found)
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no route for {}", uri.path()))
}

/// `?consistency=stale` reads the local state without asking the leader.
#[derive(Debug, Deserialize, Default)]
pub(crate) struct ReadOptions {
    #[serde(default)]
    consistency: Option<String>,
}

impl ReadOptions {
    /// Waits for a linearizable view unless the caller asked for a stale one.
    pub(crate) async fn barrier<T: Transport>(&self, state: &ApiState<T>) -> Result<(), ApiError> {
        match self.consistency.as_deref() {
            None | Some("linearizable") => Ok(state.node.linearizable_barrier().await?),
            Some("stale") => Ok(()),
            Some(other) => {
                Err(ApiError::bad_request(format!("consistency `{other}` is not one of linearizable, stale")))
            }
        }
    }
}

/// Cursor pagination parameters shared by list endpoints.
#[derive(Debug, Deserialize, Default, Clone)]
pub(crate) struct Page {
    #[serde(default)]
    pub limit: Option<usize>,
    #[serde(default)]
    pub cursor: Option<String>,
    #[serde(default)]
    pub consistency: Option<String>,
}

/// The first `limit` items and the cursor of the next page (the id of the last item shown,
/// `None` on the last page).
pub(crate) fn page_of(
    items: impl Iterator<Item = serde_json::Value>,
    limit: usize,
) -> (Vec<serde_json::Value>, Option<String>) {
    let mut items: Vec<serde_json::Value> = items.take(limit + 1).collect();
    if items.len() <= limit {
        return (items, None);
    }
    items.truncate(limit);
    let next = items.last().and_then(|item| item["id"].as_str()).map(str::to_string);
    (items, next)
}

impl Page {
    pub(crate) fn limit(&self, max: usize) -> Result<usize, ApiError> {
        match self.limit {
            None => Ok(100.min(max)),
            Some(0) => Err(ApiError::bad_request("limit must be at least 1")),
            Some(n) if n > max => Err(ApiError::bad_request(format!("limit {n} is above the maximum {max}"))),
            Some(n) => Ok(n),
        }
    }

    pub(crate) fn read_options(&self) -> ReadOptions {
        ReadOptions { consistency: self.consistency.clone() }
    }
}
