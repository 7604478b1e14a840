//! Cluster view and membership changes.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use linkloom_raft::{Replication, Transport};
use serde::Deserialize;
use serde_json::{json, Value};

use super::executions::json_body;
use super::ReadOptions;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::idempotency::Once;
use crate::ApiState;
use linkloom_core::{Command, Response};

/// Said at start and in the cluster view while a node runs without tokens.
pub const OPEN_WARNING: &str =
    "this node runs open: no token is needed and every caller acts as admin (set LOOM_ADMIN_TOKEN to require tokens)";

/// How long the cluster view waits for the leader's replication figures before leaving them out.
const REPLICATION_WAIT: Duration = Duration::from_secs(1);

/// This node's view: id, leader, term, indexes and members; and the leader's view of how far
/// behind each member is (`replication`, null with `replication_error` if the leader did not
/// answer within a second: during an election, say).
pub(crate) async fn show<T: Transport>(State(state): State<ApiState<T>>) -> Json<Value> {
    let (replication, replication_error) = match state.node.replication(REPLICATION_WAIT).await {
        Ok(r) => (replication_view(&r), None),
        Err(e) => (Value::Null, Some(e.to_string())),
    };
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
        "replication": replication,
        "replication_error": replication_error,
        "engine": state.engine_info.as_ref().map(|info| info()),
        "auth": {
            "enabled": state.auth.enabled(),
            "peers_authenticated": state.auth.peers_authenticated(),
            "warning": (!state.auth.enabled()).then_some(OPEN_WARNING),
        },
    }))
}

/// `{leader_id, last_log_index, members: [{id, matched_index, behind}]}`: `behind` is how many
/// entries the member's log lacks, null until it first acknowledges the leader.
fn replication_view(r: &Replication) -> Value {
    let members: Vec<Value> = r
        .matched
        .iter()
        .map(|(id, matched)| {
            let behind = matched.map(|m| r.last_log_index.unwrap_or(0).saturating_sub(m));
            json!({"id": id, "matched_index": matched, "behind": behind})
        })
        .collect();
    json!({"leader_id": r.leader_id, "last_log_index": r.last_log_index, "members": members})
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

/// The limits in force and their ceilings.
fn limits_view(limits: linkloom_core::limits::Tunable) -> Value {
    let mut view = serde_json::Map::new();
    let mut ceilings = serde_json::Map::new();
    for (name, value, ceiling) in limits.fields() {
        view.insert(name.into(), json!(value));
        ceilings.insert(name.into(), json!(ceiling));
    }
    view.insert("ceilings".into(), Value::Object(ceilings));
    Value::Object(view)
}

/// `GET /api/v1/cluster/limits`.
pub(crate) async fn limits<T: Transport>(
    State(state): State<ApiState<T>>,
    Query(read): Query<ReadOptions>,
) -> Result<Json<Value>, ApiError> {
    read.barrier(&state).await?;
    Ok(Json(limits_view(state.node.state().read(|s| s.limits()))))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct LimitsChange {
    #[serde(default)]
    max_tasks_per_workflow: Option<u32>,
    #[serde(default)]
    max_params_bytes: Option<u32>,
    #[serde(default)]
    max_output_bytes: Option<u32>,
    #[serde(default)]
    max_log_bytes_per_attempt: Option<u32>,
    #[serde(default)]
    request_window_secs: Option<u32>,
    #[serde(default)]
    max_remembered_requests: Option<u32>,
}

/// `PUT /api/v1/cluster/limits` with the limits to change → the limits now in force. Each must be
/// between 1 and its ceiling; a refused change changes nothing.
pub(crate) async fn set_limits<T: Transport>(
    State(state): State<ApiState<T>>,
    once: Once,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let change: LimitsChange = json_body(&state, &headers, body).await?;
    ReadOptions::default().barrier(&state).await?;
    let current = state.node.state().read(|s| s.limits());
    let limits = linkloom_core::limits::Tunable {
        max_tasks_per_workflow: change.max_tasks_per_workflow.unwrap_or(current.max_tasks_per_workflow),
        max_params_bytes: change.max_params_bytes.unwrap_or(current.max_params_bytes),
        max_output_bytes: change.max_output_bytes.unwrap_or(current.max_output_bytes),
        max_log_bytes_per_attempt: change.max_log_bytes_per_attempt.unwrap_or(current.max_log_bytes_per_attempt),
        request_window_secs: change.request_window_secs.unwrap_or(current.request_window_secs),
        max_remembered_requests: change.max_remembered_requests.unwrap_or(current.max_remembered_requests),
    };
    let command = Command::SetLimits { limits, actor: caller.name.clone(), at_ms: state.clock.now_ms() };
    match state.propose(&once, command).await? {
        Response::LimitsSet { limits } => {
            tracing::info!(by = ?caller.name, ?limits, "limits changed");
            Ok(Json(limits_view(limits)))
        }
        Response::Rejected(r) => Err(r.into()),
        other => Err(super::executions::unexpected(other)),
    }
}
