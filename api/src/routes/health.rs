//! Liveness and readiness.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::ApiState;

/// 200 while the process runs.
pub(crate) async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// 200 once a leader is known and this node has applied what was committed when it started.
pub(crate) async fn readyz<T: linkloom_raft::Transport>(
    State(state): State<ApiState<T>>,
) -> Result<Json<Value>, ApiError> {
    let info = state.node.cluster_info();
    if state.node.is_ready() {
        Ok(Json(json!({"status": "ready", "leader_id": info.leader_id, "last_applied": info.last_applied})))
    } else {
        Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "no leader known yet, or still applying committed entries",
        )
        .with_details(json!({"leader_id": info.leader_id, "last_applied": info.last_applied})))
    }
}
