//! Cluster view and membership changes.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use linkloom_raft::Transport;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::ApiState;

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
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewMember {
    id: u64,
    addr: String,
}

/// Adds a node as a learner.
pub(crate) async fn add_learner<T: Transport>(
    State(state): State<ApiState<T>>,
    Json(member): Json<NewMember>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if member.addr.trim().is_empty() || !member.addr.contains(':') {
        return Err(ApiError::bad_request(format!("addr `{}` must be host:port", member.addr)));
    }
    let members = state.node.add_learner(member.id, member.addr).await?;
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
