//! Executions: trigger, backfill, list, show, cancel, retry; task callbacks and heartbeats.

use std::borrow::Cow;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use linkloom_core::ids::{manual_execution_id, scheduled_execution_id};
use linkloom_core::json::Json as JsonValue;
use linkloom_core::schedule::CronSchedule;
use linkloom_core::state::wire as wire_state;
use linkloom_core::state::{Execution, ExecutionStatus, Rejection, Reporter, Trigger};
use linkloom_core::task_answer::parse_task_answer;
use linkloom_core::{Command, Response};
use linkloom_wire as wire;
use serde::Deserialize;
use serde_json::Value;

use super::{page_of, Page, ReadOptions};
use crate::auth::{AttemptCredential, Caller};
use crate::body::read_limited;
use crate::error::{ApiError, ErrorCode};
use crate::idempotency::Once;
use crate::views;
use crate::ApiState;

/// Most executions one backfill creates.
const MAX_BACKFILL_TICKS: usize = 1_000;

pub(crate) fn unexpected(response: Response) -> ApiError {
    ApiError::of(ErrorCode::Internal, format!("unexpected answer: {response:?}"))
}

/// Parses a JSON body into its wire type `T`, naming the field at fault. An absent body reads as
/// `{}`: the whole request for types whose fields are all optional, and a "missing field" error
/// naming the first required one for the rest. Every body is a JSON object; a number with a zero
/// fraction (`3.0`) is the integer it equals, as JSON Schema counts it.
pub(crate) async fn json_body<T: for<'de> Deserialize<'de>>(
    state: &ApiState,
    headers: &HeaderMap,
    body: Body,
) -> Result<T, ApiError> {
    let bytes = read_limited(headers, body, state.limits.max_body_bytes).await?;
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &bytes };
    // The common case in one pass: an object the type reads as it is. Anything else is read again
    // through a `Value`, where `3.0` can become `3` and whose error, if any, is the one reported.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        if let Ok(parsed) = serde_json::from_slice::<T>(bytes) {
            return Ok(parsed);
        }
    }
    let mut value: Value =
        serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("body is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::bad_request("body: expected a JSON object"));
    }
    integral_floats_as_integers(&mut value);
    serde_path_to_error::deserialize(value).map_err(|e| ApiError::bad_request(format!("body: {e}")))
}

/// `3.0` becomes `3` wherever it appears (within the range of 64-bit integers).
fn integral_floats_as_integers(value: &mut Value) {
    match value {
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0) {
                if (0.0..18_446_744_073_709_551_616.0).contains(&f) {
                    *value = Value::from(f as u64);
                } else if f < 0.0 && f >= i64::MIN as f64 {
                    *value = Value::from(f as i64);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_as_integers),
        Value::Object(map) => map.values_mut().for_each(integral_floats_as_integers),
        _ => {}
    }
}

/// `POST /api/v1/workflows/{id}/trigger` → 202 `{"execution_id"}`.
pub(crate) async fn trigger(
    State(state): State<ApiState>,
    once: Once,
    caller: Caller,
    Path(workflow_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<wire::Triggered>), ApiError> {
    let request: wire::TriggerRequest = json_body(&state, &headers, body).await?;
    let params = request.params.unwrap_or(Value::Null);
    if !(params.is_null() || params.is_object()) {
        return Err(ApiError::bad_request("params must be an object"));
    }
    // An early copy of `apply`'s check (which also counts the defaults): no log entry for this.
    let max_params = state.node.state().read(|s| s.limits().max_params_bytes) as usize;
    let size = params.to_string().len();
    if size > max_params {
        return Err(Rejection::TooLarge { what: "params".into(), size, limit: max_params }.into());
    }
    let at_ms = state.clock.now_ms();
    let random: u32 = state.entropy.next_u32();
    let execution_id = manual_execution_id(&workflow_id, at_ms, random);
    let command = Command::CreateExecution {
        execution_id,
        workflow_id,
        trigger: Trigger::Manual,
        scheduled_at_ms: None,
        params: JsonValue(params),
        actor: caller.name,
        at_ms,
    };
    match state.propose(&once, command).await? {
        Response::ExecutionCreated { execution_id } | Response::ExecutionExists { execution_id } => {
            Ok((StatusCode::ACCEPTED, Json(wire::Triggered { execution_id })))
        }
        Response::Rejected(r) => Err(r.into()),
        other => Err(unexpected(other)),
    }
}

/// `POST /api/v1/workflows/{id}/pause` and `/resume`.
pub(crate) async fn set_paused(
    state: ApiState,
    once: Once,
    caller: Caller,
    workflow_id: String,
    paused: bool,
) -> Result<Json<wire::Paused>, ApiError> {
    let command = Command::SetPaused { workflow_id, paused, actor: caller.name, at_ms: state.clock.now_ms() };
    match state.propose(&once, command).await? {
        Response::PausedSet { workflow_id, paused } => Ok(Json(wire::Paused { id: workflow_id, paused })),
        Response::Rejected(r) => Err(r.into()),
        other => Err(unexpected(other)),
    }
}

pub(crate) async fn pause(
    State(state): State<ApiState>,
    once: Once,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<wire::Paused>, ApiError> {
    set_paused(state, once, caller, id, true).await
}

pub(crate) async fn resume(
    State(state): State<ApiState>,
    once: Once,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<wire::Paused>, ApiError> {
    set_paused(state, once, caller, id, false).await
}

/// `POST /api/v1/workflows/{id}/backfill` `{"from", "to"}`: one execution per tick in the range.
pub(crate) async fn backfill(
    State(state): State<ApiState>,
    once: Once,
    caller: Caller,
    Path(workflow_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<wire::Backfilled>), ApiError> {
    let request: wire::Backfill = json_body(&state, &headers, body).await?;
    let parse = |name: &str, value: &str| -> Result<i64, ApiError> {
        chrono::DateTime::parse_from_rfc3339(value)
            .map(|t| t.timestamp_millis())
            .map_err(|e| ApiError::bad_request(format!("`{name}` = `{value}` is not RFC 3339: {e}")))
    };
    let (from_ms, to_ms) = (parse("from", &request.from)?, parse("to", &request.to)?);
    if to_ms < from_ms {
        let message = format!("`to` ({to}) is before `from` ({from})", to = request.to, from = request.from);
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidRange, message));
    }
    ReadOptions::default().barrier(&state).await?;
    let (expr, tz) = state
        .node
        .state()
        .read(|s| {
            let active = s.workflow(&workflow_id)?.active()?;
            Some((active.spec.schedule.clone(), active.spec.timezone_name().to_string()))
        })
        .ok_or_else(|| ApiError::not_found("workflow", &workflow_id))?;
    let expr = expr.ok_or_else(|| {
        let message = format!("workflow `{workflow_id}` has no schedule to backfill");
        ApiError::new(StatusCode::CONFLICT, ErrorCode::Conflict, message)
    })?;
    let schedule = CronSchedule::parse(&expr, &tz).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut ticks = Vec::new();
    let mut t = from_ms - 1;
    while let Some(next) = schedule.next_after_ms(t) {
        if next > to_ms {
            break;
        }
        if ticks.len() == MAX_BACKFILL_TICKS {
            let message = format!("the range holds more than {MAX_BACKFILL_TICKS} ticks; backfill it in parts");
            return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidRange, message));
        }
        ticks.push(next);
        t = next;
    }
    let at_ms = state.clock.now_ms();
    let proposals = ticks.iter().enumerate().map(|(n, tick)| {
        // Each tick's execution is remembered under its own part of the request's key, so a
        // replayed backfill answers exactly what the first one did.
        let part = Once(once.0.as_ref().map(|r| r.part(n)));
        let command = Command::CreateExecution {
            execution_id: scheduled_execution_id(&workflow_id, *tick),
            workflow_id: workflow_id.clone(),
            trigger: Trigger::Backfill,
            scheduled_at_ms: Some(*tick),
            params: JsonValue::null(),
            actor: caller.name.clone(),
            at_ms,
        };
        let state = &state;
        async move { state.propose(&part, command).await }
    });
    let (mut created, mut existing, mut ids) = (0, 0, Vec::new());
    for answer in futures::future::join_all(proposals).await {
        match answer? {
            Response::ExecutionCreated { execution_id } => {
                created += 1;
                ids.push(execution_id);
            }
            Response::ExecutionExists { execution_id } => {
                existing += 1;
                ids.push(execution_id);
            }
            Response::Rejected(r) => return Err(r.into()),
            other => return Err(unexpected(other)),
        }
    }
    Ok((StatusCode::ACCEPTED, Json(wire::Backfilled { execution_ids: ids, created, existing })))
}

#[derive(Deserialize, Default)]
pub(crate) struct ExecutionFilter {
    #[serde(default)]
    workflow: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    trigger: Option<String>,
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    until: Option<String>,
    #[serde(default)]
    order: Option<String>,
    // Not `#[serde(flatten)]`: flattening breaks numbers in query strings.
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    consistency: Option<String>,
}

/// The order of an execution list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    /// Id order: by workflow, then creation time (the state's own key order; cursor = last id).
    Id,
    /// Creation time, newest first, ties by id descending (cursor = `<created_at_ms>:<id>`).
    Newest,
}

impl Order {
    fn parse(value: Option<&str>) -> Result<Order, ApiError> {
        match value {
            None | Some("id") => Ok(Order::Id),
            Some("newest") => Ok(Order::Newest),
            Some(other) => Err(ApiError::bad_request(format!("order `{other}` is not one of id, newest"))),
        }
    }
}

/// Where a page in newest-first order starts: after the execution created at `.0` with id `.1`.
fn newest_cursor(cursor: &str) -> Result<(i64, &str), ApiError> {
    cursor
        .split_once(':')
        .and_then(|(ms, id)| Some((ms.parse::<i64>().ok()?, id)))
        .filter(|(_, id)| !id.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "cursor `{cursor}` is not a cursor of order=newest (`<created_at_ms>:<id>`, as `next_cursor` gives)"
            ))
        })
}

/// `GET /api/v1/executions?workflow=&status=&trigger=&since=&until=&order=&limit=&cursor=`.
///
/// `order=newest` sorts the matching executions on every request (O(n log n) in the matches):
/// what the UI and `loom execution list` need, and bounded by retention. An index kept in the
/// replicated state would change the snapshot format for a read-side concern.
pub(crate) async fn list(
    State(state): State<ApiState>,
    Query(filter): Query<ExecutionFilter>,
) -> Result<Json<wire::Page<wire::Execution>>, ApiError> {
    let page = Page { limit: filter.limit, cursor: filter.cursor.clone(), consistency: filter.consistency.clone() };
    let limit = page.limit(state.limits.max_page_size)?;
    let status: Option<ExecutionStatus> = match &filter.status {
        None => None,
        Some(s) => {
            s.parse::<wire::ExecutionStatus>().ok().and_then(wire_state::execution_status).map(Some).ok_or_else(
                || {
                    ApiError::bad_request(format!(
                        "status `{s}` is not one of queued, running, succeeded, failed, cancelled"
                    ))
                },
            )?
        }
    };
    let trigger: Option<Trigger> =
        match &filter.trigger {
            None => None,
            Some(t) => t.parse::<wire::Trigger>().ok().and_then(wire_state::trigger).map(Some).ok_or_else(|| {
                ApiError::bad_request(format!("trigger `{t}` is not one of manual, schedule, backfill"))
            })?,
        };
    let time = |name: &str, value: &Option<String>| -> Result<Option<i64>, ApiError> {
        value
            .as_deref()
            .map(|v| {
                chrono::DateTime::parse_from_rfc3339(v)
                    .map(|t| t.timestamp_millis())
                    .map_err(|e| ApiError::bad_request(format!("`{name}` = `{v}` is not RFC 3339: {e}")))
            })
            .transpose()
    };
    let (since, until) = (time("since", &filter.since)?, time("until", &filter.until)?);
    let order = Order::parse(filter.order.as_deref())?;
    // An empty cursor is the first page, in either order.
    let newest_after = match (order, page.cursor.as_deref().filter(|c| !c.is_empty())) {
        (Order::Newest, Some(cursor)) => Some(newest_cursor(cursor)?),
        _ => None,
    };
    page.read_options().barrier(&state).await?;
    let executions = state.node.state().read(|s| {
        let workflow = filter.workflow.as_deref();
        let matches = |e: &Cow<'_, Execution>| {
            workflow.is_none_or(|w| e.workflow_id == w)
                && status.is_none_or(|st| e.status == st)
                && trigger.is_none_or(|t| e.trigger == t)
                && since.is_none_or(|t| e.created_at_ms >= t)
                && until.is_none_or(|t| e.created_at_ms < t)
        };
        match order {
            // Both orders read the kept history in order (from memory and the base on disk), and
            // stop one past the page.
            Order::Id => {
                let matching =
                    s.executions_by_id(workflow, page.cursor.as_deref()).filter(matches).map(|e| views::execution(&e));
                page_of(matching, limit, |e| e.id.clone())
            }
            Order::Newest => {
                let before = newest_after;
                let mut matching: Vec<Cow<'_, Execution>> =
                    s.executions_newest(workflow, before).filter(matches).take(limit + 1).collect();
                let more = matching.len() > limit;
                matching.truncate(limit);
                let next = more.then(|| matching.last().map(|e| format!("{}:{}", e.created_at_ms, e.id))).flatten();
                wire::Page::new(matching.iter().map(|e| views::execution(e)).collect(), next)
            }
        }
    });
    Ok(Json(executions))
}

/// `GET /api/v1/executions/{id}`.
pub(crate) async fn show(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(read): Query<ReadOptions>,
) -> Result<Json<wire::Execution>, ApiError> {
    read.barrier(&state).await?;
    state
        .node
        .state()
        .read(|s| s.execution(&id).map(|e| views::execution(&e)))
        .map(Json)
        .ok_or_else(|| ApiError::not_found("execution", &id))
}

/// `POST /api/v1/executions/{id}/cancel`.
pub(crate) async fn cancel(
    State(state): State<ApiState>,
    once: Once,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<wire::Cancelled>, ApiError> {
    let command = Command::CancelExecution { execution_id: id, actor: caller.name, at_ms: state.clock.now_ms() };
    match state.propose(&once, command).await? {
        Response::ExecutionCancelled { execution_id } => {
            Ok(Json(wire::Cancelled { id: execution_id, status: wire::ExecutionStatus::Cancelled }))
        }
        Response::Rejected(r) => Err(r.into()),
        other => Err(unexpected(other)),
    }
}

/// `POST /api/v1/executions/{id}/retry`: failed, cancelled and skipped tasks run again.
pub(crate) async fn retry(
    State(state): State<ApiState>,
    once: Once,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<wire::Retried>, ApiError> {
    let command = Command::RetryExecution { execution_id: id, actor: caller.name, at_ms: state.clock.now_ms() };
    match state.propose(&once, command).await? {
        Response::ExecutionReopened { execution_id, tasks_reset } => {
            Ok(Json(wire::Retried { id: execution_id, tasks_reset }))
        }
        Response::Rejected(r) => Err(r.into()),
        other => Err(unexpected(other)),
    }
}

pub(crate) fn parse_attempt_id(text: &str) -> Result<u64, ApiError> {
    super::whole_number(text).ok_or_else(|| ApiError::bad_request(format!("attempt id `{text}` is not a number")))
}

/// `POST /api/v1/tasks/{attempt_id}/callback` with the same body a backend answers with, and the
/// attempt's callback token as the bearer token.
pub(crate) async fn callback(
    State(state): State<ApiState>,
    once: Once,
    credential: AttemptCredential,
    Path(attempt_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<wire::AttemptFinished>, ApiError> {
    let attempt_id = parse_attempt_id(&attempt_id)?;
    let bytes = read_limited(&headers, body, state.limits.max_body_bytes).await?;
    let (result, logs) = parse_task_answer(&bytes);
    let at_ms = state.clock.now_ms();
    let jitter_permille = rand::Rng::gen_range(&mut linkloom_raft::Draw(&*state.entropy), 0..=1000);
    // Logs travel with the completion: a fenced (stale) callback adds nothing.
    let by = Reporter::Backend { token_hash: credential.0 };
    let command = Command::FinishAttempt { attempt_id, by, result, logs, jitter_permille, at_ms };
    match state.propose(&once, command).await? {
        Response::AttemptFinished { task_status, execution_status } => Ok(Json(wire::AttemptFinished {
            attempt_id: attempt_id.to_string(),
            task_status: task_status.into(),
            execution_status: execution_status.into(),
        })),
        Response::Rejected(r) => Err(r.into()),
        other => Err(unexpected(other)),
    }
}

/// `POST /api/v1/tasks/{attempt_id}/heartbeat` with the attempt's callback token: 200, or 409 for
/// an attempt that is not current (or not this token's).
pub(crate) async fn heartbeat(
    State(state): State<ApiState>,
    once: Once,
    credential: AttemptCredential,
    Path(attempt_id): Path<String>,
) -> Result<Json<wire::AttemptRef>, ApiError> {
    let attempt_id = parse_attempt_id(&attempt_id)?;
    let command = Command::HeartbeatAttempt {
        attempt_id,
        by: Reporter::Backend { token_hash: credential.0 },
        lease_expires_at_ms: None,
        progress: None,
        logs: None,
        at_ms: state.clock.now_ms(),
    };
    match state.propose(&once, command).await? {
        Response::HeartbeatRecorded { attempt_id, .. } => {
            Ok(Json(wire::AttemptRef { attempt_id: attempt_id.to_string() }))
        }
        Response::Rejected(r) => Err(r.into()),
        other => Err(unexpected(other)),
    }
}
