//! Workflow definitions: create a version, list, show, delete, versions.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use linkloom_core::ids::rfc3339;
use linkloom_core::spec::{self, WorkflowSpec};
use linkloom_core::state::{Rejection, Workflow};
use linkloom_core::{Command, Response};
use linkloom_wire as wire;

use super::{page_of, Page, ReadOptions};
use crate::auth::Caller;
use crate::body::read_limited;
use crate::error::{ApiError, ErrorCode};
use crate::idempotency::Once;
use crate::views;
use crate::ApiState;

/// `POST /api/v1/workflows`: stores a new version (YAML or JSON, by `Content-Type`).
pub(crate) async fn put(
    State(state): State<ApiState>,
    once: Once,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let bytes = read_limited(&headers, body, state.limits.max_body_bytes).await?;
    let spec = parse_spec(&headers, &bytes)?;
    spec::validate(&spec)?;
    // Early copies of checks `apply` makes against the cluster's state (a refusal here costs no
    // log entry and names its path), and one only a node can make: that the webhook secrets the
    // spec names are configured here (every node should hold the same ones).
    let (limits, cycle) = state.node.state().read(|s| (s.limits(), s.chaining_problem(&spec)));
    let mut problems: Vec<spec::Problem> = cycle.into_iter().collect();
    for (i, trigger) in spec.triggers.iter().enumerate() {
        if let Some(spec::TriggerKind::Webhook { secret, .. }) = trigger.kind() {
            if state.webhooks.get(secret).is_none() {
                problems.push(spec::Problem {
                    path: format!("triggers[{i}].secret"),
                    message: format!(
                        "no webhook secret `{secret}` is configured on this node (LOOM_WEBHOOK_SECRETS); add it to every node first"
                    ),
                });
            }
        }
    }
    if !problems.is_empty() {
        return Err(spec::SpecError { problems }.into());
    }
    if spec.tasks.len() > limits.max_tasks_per_workflow as usize {
        return Err(Rejection::InvalidSpec(format!(
            "tasks: {} tasks; this cluster allows at most {} (max_tasks_per_workflow)",
            spec.tasks.len(),
            limits.max_tasks_per_workflow
        ))
        .into());
    }
    let at_ms = state.clock.now_ms();
    let response = state.propose(&once, Command::PutWorkflow { spec: spec.clone(), actor: caller.name, at_ms }).await?;
    match response {
        Response::WorkflowStored { workflow_id, version } => {
            tracing::info!(workflow_id = %workflow_id, version, "workflow stored");
            let body = wire::StoredWorkflow {
                id: workflow_id.clone(),
                version,
                created_at: rfc3339(at_ms),
                spec: views::spec_json(&spec),
            };
            Ok((StatusCode::CREATED, [(header::LOCATION, format!("/api/v1/workflows/{workflow_id}"))], Json(body)))
        }
        Response::Rejected(r) => Err(r.into()),
        other => Err(unexpected(other)),
    }
}

fn parse_spec(headers: &HeaderMap, bytes: &[u8]) -> Result<WorkflowSpec, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
        .unwrap_or_default();
    let text = std::str::from_utf8(bytes).map_err(|e| ApiError::bad_request(format!("body is not UTF-8: {e}")))?;
    match content_type.as_str() {
        "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml" => Ok(spec::parse_yaml(text)?),
        "application/json" => Ok(spec::parse_json(text)?),
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            format!(
                "Content-Type `{}` is not supported; send application/yaml or application/json",
                if other.is_empty() { "(none)" } else { other }
            ),
        )),
    }
}

/// `GET /api/v1/workflows`: live workflows in id order, a page at a time.
pub(crate) async fn list(
    State(state): State<ApiState>,
    Query(page): Query<Page>,
) -> Result<Json<wire::Page<wire::Workflow>>, ApiError> {
    let limit = page.limit(state.limits.max_page_size)?;
    page.read_options().barrier(&state).await?;
    let now_ms = state.clock.now_ms();
    let workflows = state.node.state().read(|s| {
        let live = s.workflows_after(page.cursor.as_deref()).filter_map(|wf| views::workflow(wf, now_ms));
        page_of(live, limit, |wf| wf.id.clone())
    });
    Ok(Json(workflows))
}

/// `GET /api/v1/workflows/{id}`.
pub(crate) async fn show(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(read): Query<ReadOptions>,
) -> Result<Json<wire::Workflow>, ApiError> {
    let now_ms = state.clock.now_ms();
    read_workflow(&state, &read, &id, "workflow", &id, |wf| views::workflow(wf, now_ms)).await
}

/// `DELETE /api/v1/workflows/{id}`: 204; unfinished executions are cancelled.
pub(crate) async fn delete(
    State(state): State<ApiState>,
    once: Once,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let at_ms = state.clock.now_ms();
    match state.propose(&once, Command::DeleteWorkflow { workflow_id: id, actor: caller.name, at_ms }).await? {
        Response::WorkflowDeleted { .. } => Ok(StatusCode::NO_CONTENT),
        Response::Rejected(r) => Err(r.into()),
        other => Err(unexpected(other)),
    }
}

/// `GET /api/v1/workflows/{id}/versions`: every kept version, newest first.
pub(crate) async fn versions(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(read): Query<ReadOptions>,
) -> Result<Json<wire::Page<wire::WorkflowVersion>>, ApiError> {
    read_workflow(&state, &read, &id, "workflow", &id, |wf| {
        let items = wf.versions.keys().rev().filter_map(|v| views::workflow_version(wf, *v)).collect();
        Some(wire::Page::new(items, None))
    })
    .await
}

/// `GET /api/v1/workflows/{id}/versions/{version}`.
pub(crate) async fn version(
    State(state): State<ApiState>,
    Path((id, version)): Path<(String, String)>,
    Query(read): Query<ReadOptions>,
) -> Result<Json<wire::WorkflowVersion>, ApiError> {
    let version = super::whole_number(&version)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| ApiError::bad_request(format!("version `{version}` is not a version number")))?;
    let label = format!("{id}@{version}");
    read_workflow(&state, &read, &id, "workflow version", &label, |wf| views::workflow_version(wf, version)).await
}

/// Reads a view of live workflow `id` after the read barrier; 404 naming `what`/`label` if the
/// workflow or the view is absent.
async fn read_workflow<V>(
    state: &ApiState,
    read: &ReadOptions,
    id: &str,
    what: &str,
    label: &str,
    view: impl FnOnce(&Workflow) -> Option<V>,
) -> Result<Json<V>, ApiError> {
    read.barrier(state).await?;
    state.node.state().read(|s| s.workflow(id).and_then(view)).map(Json).ok_or_else(|| ApiError::not_found(what, label))
}

fn unexpected(response: Response) -> ApiError {
    ApiError::of(ErrorCode::Internal, format!("unexpected answer from the state machine: {response:?}"))
}
