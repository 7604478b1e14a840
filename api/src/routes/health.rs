//! Liveness and readiness.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use linkloom_wire::error::Readiness;
use linkloom_wire::Health;

use crate::error::{ApiError, ErrorCode};
use crate::ApiState;

/// 200 while the process runs.
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok".into(), ..Default::default() })
}

/// 200 once a leader is known and this node has applied what was committed when it started.
pub(crate) async fn readyz(State(state): State<ApiState>) -> Result<Json<Health>, ApiError> {
    let info = state.node.cluster_info();
    if state.node.is_ready() {
        Ok(Json(Health { status: "ready".into(), leader_id: info.leader_id, last_applied: info.last_applied }))
    } else {
        Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::NotReady,
            "no leader known yet, or still applying committed entries",
        )
        .with_details(Readiness { leader_id: info.leader_id, last_applied: info.last_applied }))
    }
}
