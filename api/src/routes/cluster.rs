//! Cluster view and membership changes.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use linkloom_raft::Replication;
use linkloom_wire as wire;

use super::executions::json_body;
use super::ReadOptions;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::idempotency::Once;
use crate::ApiState;
use linkloom_core::limits::Tunable;
use linkloom_core::{Command, Response};

/// Said at start and in the cluster view while a node runs without tokens.
pub const OPEN_WARNING: &str =
    "this node runs open: no token is needed and every caller acts as admin (set LOOM_ADMIN_TOKEN to require tokens)";

/// How long the cluster view waits for the leader's replication figures before leaving them out.
const REPLICATION_WAIT: Duration = Duration::from_secs(1);

/// This node's view: id, leader, term, indexes and members; and the leader's view of how far
/// behind each member is (`replication`, null with `replication_error` if the leader did not
/// answer within a second: during an election, say).
///
/// `?consistency=` is taken (and checked) like every read's, but this view is always the
/// answering node's own: it is how an operator sees a node that lost the leader.
pub(crate) async fn show(
    State(state): State<ApiState>,
    Query(read): Query<ReadOptions>,
) -> Result<Json<wire::ClusterView>, ApiError> {
    read.check()?;
    let (replication, replication_error) = match state.node.replication(REPLICATION_WAIT).await {
        Ok(r) => (Some(replication_view(&r)), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let info = state.node.cluster_info();
    Ok(Json(wire::ClusterView {
        node_id: info.node_id,
        leader_id: info.leader_id,
        term: info.term,
        state: info.state,
        last_log_index: info.last_log_index,
        last_applied: info.last_applied,
        snapshot_index: info.snapshot_index,
        purged_index: info.purged_index,
        log_entries_on_disk: state.node.log_len() as u64,
        members: members(info.members),
        replication,
        replication_error,
        engine: state.engine_info.as_ref().map(|info| info()),
        auth: wire::AuthState {
            enabled: state.auth.enabled(),
            peers_authenticated: state.auth.peers_authenticated(),
            warning: (!state.auth.enabled()).then(|| OPEN_WARNING.to_string()),
        },
    }))
}

fn members(members: Vec<linkloom_raft::Member>) -> Vec<wire::Member> {
    members.into_iter().map(|m| wire::Member { id: m.id, addr: m.addr, voter: m.voter }).collect()
}

/// `behind` is how many entries the member's log lacks, null until it first acknowledges the
/// leader.
fn replication_view(r: &Replication) -> wire::Replication {
    let members = r
        .matched
        .iter()
        .map(|(id, matched)| wire::ReplicationMember {
            id: *id,
            matched_index: *matched,
            behind: matched.map(|m| r.last_log_index.unwrap_or(0).saturating_sub(m)),
        })
        .collect();
    wire::Replication { leader_id: r.leader_id, last_log_index: r.last_log_index, members }
}

/// How long a backup may take: the read index, a snapshot, and reading it out.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(120);

/// A backup archive (see `linkloom_raft::backup`). Its figures are in headers too, so a client
/// can report them without decoding the archive: `X-Loom-Snapshot-Index`, `-Term`, `-Sha256`.
pub(crate) async fn snapshot(State(state): State<ApiState>) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let (bytes, summary) = state.node.backup(state.clock.now_ms(), SNAPSHOT_WAIT).await?;
    tracing::info!(
        last_index = summary.last_index,
        bytes = bytes.len(),
        sha256 = %summary.sha256,
        "backup taken"
    );
    let name = format!("attachment; filename=\"linkloom-{}.snap\"", summary.last_index);
    Ok((
        StatusCode::OK,
        [
            (axum::http::header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (axum::http::header::CONTENT_DISPOSITION, name),
            (axum::http::HeaderName::from_static("x-loom-snapshot-index"), summary.last_index.to_string()),
            (axum::http::HeaderName::from_static("x-loom-snapshot-term"), summary.term.to_string()),
            (axum::http::HeaderName::from_static("x-loom-snapshot-sha256"), summary.sha256.clone()),
        ],
        bytes,
    )
        .into_response())
}

/// Adds a node as a learner.
pub(crate) async fn add_learner(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<wire::Members>), ApiError> {
    let member: wire::NewMember = json_body(&state, &headers, body).await?;
    if member.id == 0 {
        return Err(ApiError::bad_request("body: `id` must be a positive integer"));
    }
    let addr = member.addr;
    if addr.trim().is_empty() || !addr.contains(':') {
        return Err(ApiError::bad_request(format!("addr `{addr}` must be host:port")));
    }
    let members = members(state.node.add_learner(member.id, addr).await?);
    Ok((StatusCode::CREATED, Json(wire::Members { members })))
}

/// A member id from the path.
fn member_id(text: &str) -> Result<u64, ApiError> {
    super::whole_number(text).ok_or_else(|| ApiError::bad_request(format!("member id `{text}` is not a number")))
}

/// Makes a learner a voter.
pub(crate) async fn promote(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<wire::Members>, ApiError> {
    let id = member_id(&id)?;
    Ok(Json(wire::Members { members: members(state.node.promote(id).await?) }))
}

/// Removes a member.
pub(crate) async fn remove(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<wire::Members>, ApiError> {
    let id = member_id(&id)?;
    Ok(Json(wire::Members { members: members(state.node.remove(id).await?) }))
}

/// The limits in force and their ceilings.
fn limits_view(limits: Tunable) -> wire::Limits {
    let values = |t: &Tunable| wire::LimitValues {
        max_tasks_per_workflow: t.max_tasks_per_workflow,
        max_params_bytes: t.max_params_bytes,
        max_output_bytes: t.max_output_bytes,
        max_log_bytes_per_attempt: t.max_log_bytes_per_attempt,
        request_window_secs: t.request_window_secs,
        max_remembered_requests: t.max_remembered_requests,
        max_kept_executions_per_workflow: t.max_kept_executions_per_workflow,
        max_kept_executions: t.max_kept_executions,
        max_kept_log_bytes: t.max_kept_log_bytes,
        max_finished_age_secs: t.max_finished_age_secs,
    };
    wire::Limits { values: values(&limits), ceilings: values(&linkloom_core::limits::CEILINGS) }
}

/// `GET /api/v1/cluster/limits`.
pub(crate) async fn limits(
    State(state): State<ApiState>,
    Query(read): Query<ReadOptions>,
) -> Result<Json<wire::Limits>, ApiError> {
    read.barrier(&state).await?;
    Ok(Json(limits_view(state.node.state().read(|s| s.limits()))))
}

/// `PUT /api/v1/cluster/limits` with the limits to change → the limits now in force. Each must be
/// between 1 and its ceiling; a refused change changes nothing.
pub(crate) async fn set_limits(
    State(state): State<ApiState>,
    once: Once,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<wire::Limits>, ApiError> {
    let change: wire::LimitsChange = json_body(&state, &headers, body).await?;
    ReadOptions::default().barrier(&state).await?;
    let current = state.node.state().read(|s| s.limits());
    let limits = Tunable {
        max_tasks_per_workflow: change.max_tasks_per_workflow.unwrap_or(current.max_tasks_per_workflow),
        max_params_bytes: change.max_params_bytes.unwrap_or(current.max_params_bytes),
        max_output_bytes: change.max_output_bytes.unwrap_or(current.max_output_bytes),
        max_log_bytes_per_attempt: change.max_log_bytes_per_attempt.unwrap_or(current.max_log_bytes_per_attempt),
        request_window_secs: change.request_window_secs.unwrap_or(current.request_window_secs),
        max_remembered_requests: change.max_remembered_requests.unwrap_or(current.max_remembered_requests),
        max_kept_executions_per_workflow: change
            .max_kept_executions_per_workflow
            .unwrap_or(current.max_kept_executions_per_workflow),
        max_kept_executions: change.max_kept_executions.unwrap_or(current.max_kept_executions),
        max_kept_log_bytes: change.max_kept_log_bytes.unwrap_or(current.max_kept_log_bytes),
        max_finished_age_secs: change.max_finished_age_secs.unwrap_or(current.max_finished_age_secs),
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
