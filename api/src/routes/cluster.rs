//! Cluster view and membership changes.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use linkloom_raft::Transport;
use serde::Deserialize;
use serde_json::{json, Value};

use super::executions::json_body;
use crate::error::ApiError;
use crate::ApiState;

/// Said at start and in the cluster view while a node runs without tokens.
pub const OPEN_WARNING: &str =
    "this node runs open: no token is needed and every caller acts as admin (set LOOM_ADMIN_TOKEN to require tokens)";

/// This node's view: id, leader, term, indexes and members.
pub(crate) async fn show<T: Transport>(State(state): State<ApiState<T>>) -> Json<Value> {
    let info = state.node.cluster_info();
    Json(json!({
        "node_id": info.node_id,
        "leader_id": info.leader_id,
        "term": info.term,
        "state": info.state,
        "last_log_index": info.last_log_index,
        "last_applied": info.last_applied,
        "snapshot_index": info.snapshot_index,
        "purged_index": info.purged_index,
        "log_entries_on_disk": state.node.log_len(),
        "members": info.members,
        "engine": state.engine_info.as_ref().map(|info| info()),
        "auth": {
            "enabled": state.auth.enabled(),
            "peers_authenticated": state.auth.peers_authenticated(),
            "warning": (!state.auth.enabled()).then_some(OPEN_WARNING),
        },
    }))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewMember {
    #[serde(default)]
    id: Option<u64>,
    #[serde(default)]
    addr: Option<String>,
}

/// Adds a node as a learner.
pub(crate) async fn add_learner<T: Transport>(
    State(state): State<ApiState<T>>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let member: NewMember = json_body(&state, &headers, body).await?;
    let id =
        member.id.filter(|id| *id > 0).ok_or_else(|| ApiError::bad_request("body: `id` must be a positive integer"))?;
    let addr = member.addr.ok_or_else(|| ApiError::bad_request("body: `addr` (host:port) is required"))?;
    if addr.trim().is_empty() || !addr.contains(':') {
        return Err(ApiError::bad_request(format!("addr `{addr}` must be host:port")));
    }
    let members = state.node.add_learner(id, addr).await?;
    Ok((StatusCode::CREATED, Json(json!({"members": members}))))
}

/// Makes a learner a voter.
pub(crate) async fn promote<T: Transport>(
    State(state): State<ApiState<T>>,
    Path(id): Path<u64>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"members": state.node.promote(id).await?})))
}

/// Removes a member.
pub(crate) async fn remove<T: Transport>(
    State(state): State<ApiState<T>>,
    Path(id): Path<u64>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"members": state.node.remove(id).await?})))
}
