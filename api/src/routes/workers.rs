//! The worker protocol (see docs/workers.md): a worker connects to any node and receives its
//! tasks as a stream of JSON lines; heartbeats, completions, releases and drain are ordinary
//! requests to any node. Every answer about an attempt is fenced in the state machine: an attempt
//! that is no longer current, or is held by another worker, answers 409 and changes nothing. A
//! worker stays bound to the API token that registered it: every request about it must come with
//! that same token, so one worker token cannot speak for another's workers.

use std::collections::BTreeMap;
use std::convert::Infallible;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::Json;
use bytes::Bytes;
use futures::StreamExt;
use linkloom_actors::ConnectError;
use linkloom_core::ids::rfc3339;
use linkloom_core::json::Json as JsonValue;
use linkloom_core::state::{AttemptResult, Reporter};
use linkloom_core::task_answer::parse_task_answer;
use linkloom_core::{Command, Response};
use linkloom_wire as wire;
use linkloom_wire::{Drain, Heartbeat, Release, WorkerHello};
use serde_json::Value;

use super::executions::{json_body, parse_attempt_id, unexpected};
use super::{page_of, Page, ReadOptions};
use crate::auth::Caller;
use crate::body::read_limited;
use crate::error::{ApiError, ErrorCode};
use crate::idempotency::Once;
use crate::ApiState;

fn engine(state: &ApiState) -> Result<&linkloom_actors::EngineHandle, ApiError> {
    state.engine.as_deref().ok_or_else(|| {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable, "this node does not serve workers")
    })
}

/// `POST /api/v1/workers/connect` with a [`WorkerHello`] → 200 and a stream of events
/// (`application/x-ndjson`, one JSON object per line) until either side closes it.
pub(crate) async fn connect(
    State(state): State<ApiState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let bytes = read_limited(&headers, body, state.limits.max_body_bytes).await?;
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let hello: WorkerHello =
        serde_path_to_error::deserialize(&mut de).map_err(|e| ApiError::bad_request(format!("body: {e}")))?;
    let stream = engine(&state)?.connect_worker(hello, caller.name).await.map_err(|e| match e {
        ConnectError::Invalid(m) => ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidWorker, m),
        ConnectError::Refused(r) => r.into(),
        ConnectError::Unavailable(m) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable, m),
    })?;
    // The body owns the connection: when hyper drops the response (the worker went away), the
    // stream is dropped and the connection actor stops.
    let events =
        futures::stream::unfold(stream, |mut stream| async move { stream.next().await.map(|event| (event, stream)) });
    let lines = events.map(|event| {
        let mut line = serde_json::to_vec(&event).unwrap_or_default();
        line.push(b'\n');
        Ok::<_, Infallible>(Bytes::from(line))
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        Body::from_stream(lines),
    )
        .into_response())
}

/// `GET /api/v1/workers` → `{"items": [{id, node_id, queues, concurrency, running, draining,
/// connected_at, last_seen_at}], "next_cursor"}`: live workers, in id order, a page at a time.
pub(crate) async fn list(
    State(state): State<ApiState>,
    Query(page): Query<Page>,
) -> Result<Json<wire::Page<wire::WorkerInfo>>, ApiError> {
    let limit = page.limit(state.limits.max_page_size)?;
    page.read_options().barrier(&state).await?;
    let now = state.clock.now_ms();
    let workers = state.node.state().read(|s| {
        let live = s.workers().filter(|w| page.after(&w.id)).filter(|w| w.is_live(now) && w.is_live(s.clock_ms()));
        let workers = live.map(|w| wire::WorkerInfo {
            id: w.id.clone(),
            node_id: w.node_id,
            queues: w.queues.clone(),
            concurrency: w.concurrency,
            running: s.worker_running(&w.id) as u32,
            draining: w.draining,
            connected_at: rfc3339(w.connected_at_ms),
            last_seen_at: rfc3339(w.last_seen_at_ms),
        });
        page_of(workers, limit, |w| w.id.clone())
    });
    Ok(Json(workers))
}

/// `GET /api/v1/queues` → per queue: ready tasks waiting for a worker (with the oldest one's
/// age), and the workers that serve it.
pub(crate) async fn queues(
    State(state): State<ApiState>,
    Query(read): Query<ReadOptions>,
) -> Result<Json<wire::QueueList>, ApiError> {
    read.barrier(&state).await?;
    let now = state.clock.now_ms();
    let items: Vec<wire::Queue> = state.node.state().read(|s| {
        #[derive(Default)]
        struct Queue {
            waiting: usize,
            oldest_since_ms: Option<i64>,
            workers: usize,
            capacity: u64,
            running: usize,
        }
        let mut queues: BTreeMap<String, Queue> = BTreeMap::new();
        for task in s.queued_worker_tasks(now) {
            let q = queues.entry(task.queue).or_default();
            q.waiting += 1;
            q.oldest_since_ms = Some(q.oldest_since_ms.map_or(task.ready_since_ms, |t| t.min(task.ready_since_ms)));
        }
        for w in s.workers().filter(|w| w.is_live(now)) {
            for queue in &w.queues {
                let q = queues.entry(queue.clone()).or_default();
                q.workers += 1;
                q.capacity += u64::from(w.concurrency);
                q.running += s.worker_running(&w.id);
            }
        }
        queues
            .into_iter()
            .map(|(name, q)| wire::Queue {
                queue: name,
                waiting: q.waiting as u64,
                oldest_waiting_since: q.oldest_since_ms.map(rfc3339),
                oldest_waiting_ms: q.oldest_since_ms.map(|t| (now - t).max(0)),
                workers: q.workers as u64,
                capacity: q.capacity,
                running: q.running as u64,
            })
            .collect()
    });
    Ok(Json(wire::QueueList { items }))
}

/// `POST /api/v1/workers/{worker_id}/attempts/{attempt_id}/heartbeat` with optional
/// `{"progress", "logs"}` → 200 `{"attempt_id", "lease_expires_at"}`, or 409 if the attempt is no
/// longer this worker's.
pub(crate) async fn heartbeat(
    State(state): State<ApiState>,
    once: Once,
    caller: Caller,
    Path((worker_id, attempt_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<wire::LeaseExtended>, ApiError> {
    let attempt_id = parse_attempt_id(&attempt_id)?;
    let beat: Heartbeat = json_body(&state, &headers, body).await?;
    let now = state.clock.now_ms();
    let command = Command::HeartbeatAttempt {
        attempt_id,
        by: Reporter::Worker { worker_id, token: caller.name },
        lease_expires_at_ms: Some(now + engine(&state)?.worker_timing().0 as i64),
        progress: beat.progress.map(JsonValue),
        logs: beat.logs,
        at_ms: now,
    };
    match state.propose(&once, command).await? {
        Response::HeartbeatRecorded { attempt_id, lease_expires_at_ms } => Ok(Json(wire::LeaseExtended {
            attempt_id: attempt_id.to_string(),
            lease_expires_at: lease_expires_at_ms.map(rfc3339),
        })),
        Response::Rejected(r) => Err(r.into()),
        other => Err(unexpected(other)),
    }
}

/// `POST /api/v1/workers/{worker_id}/attempts/{attempt_id}/complete` with the task answer shape
/// (`{"status": "succeeded", "output"}` or `{"status": "failed", "error", "retryable"}`, optional
/// `logs`) → 200 `{"attempt_id", "task_status", "execution_status"}`, or 409 (fenced).
pub(crate) async fn complete(
    State(state): State<ApiState>,
    once: Once,
    caller: Caller,
    Path((worker_id, attempt_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<wire::AttemptFinished>, ApiError> {
    let attempt_id = parse_attempt_id(&attempt_id)?;
    let bytes = read_limited(&headers, body, state.limits.max_body_bytes).await?;
    let parsed: Value =
        serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(format!("body is not JSON: {e}")))?;
    if !matches!(parsed.get("status").and_then(Value::as_str), Some("succeeded" | "failed")) {
        return Err(ApiError::bad_request("body: `status` must be \"succeeded\" or \"failed\""));
    }
    let (result, logs) = parse_task_answer(&bytes);
    finish(&state, &once, attempt_id, Reporter::Worker { worker_id, token: caller.name }, result, logs).await
}

/// `POST /api/v1/workers/{worker_id}/attempts/{attempt_id}/release` with optional `{"reason"}`:
/// gives an attempt back unstarted; the task is handed out again without using a retry.
pub(crate) async fn release(
    State(state): State<ApiState>,
    once: Once,
    caller: Caller,
    Path((worker_id, attempt_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<wire::AttemptFinished>, ApiError> {
    let attempt_id = parse_attempt_id(&attempt_id)?;
    let release: Release = json_body(&state, &headers, body).await?;
    let reason = release.reason.unwrap_or_else(|| format!("released by worker `{worker_id}`"));
    let by = Reporter::Worker { worker_id, token: caller.name };
    finish(&state, &once, attempt_id, by, AttemptResult::Released { reason }, None).await
}

async fn finish(
    state: &ApiState,
    once: &Once,
    attempt_id: u64,
    by: Reporter,
    result: AttemptResult,
    logs: Option<String>,
) -> Result<Json<wire::AttemptFinished>, ApiError> {
    let jitter_permille = rand::Rng::gen_range(&mut linkloom_raft::Draw(&*state.entropy), 0..=1000);
    let command = Command::FinishAttempt { attempt_id, by, result, logs, jitter_permille, at_ms: state.clock.now_ms() };
    match state.propose(once, command).await? {
        Response::AttemptFinished { task_status, execution_status } => Ok(Json(wire::AttemptFinished {
            attempt_id: attempt_id.to_string(),
            task_status: task_status.into(),
            execution_status: execution_status.into(),
        })),
        Response::Rejected(r) => Err(r.into()),
        other => Err(unexpected(other)),
    }
}

/// `POST /api/v1/workers/{worker_id}/drain` with `{"session"}`: the worker takes no new task (it
/// is shutting down); its running attempts go on.
pub(crate) async fn drain(
    State(state): State<ApiState>,
    once: Once,
    caller: Caller,
    Path(worker_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let bytes = read_limited(&headers, body, state.limits.max_body_bytes).await?;
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let drain: Drain =
        serde_path_to_error::deserialize(&mut de).map_err(|e| ApiError::bad_request(format!("body: {e}")))?;
    let session = drain
        .session
        .parse::<u64>()
        .map_err(|_| ApiError::bad_request(format!("session `{}` is not a number", drain.session)))?;
    let command = Command::DrainWorker { worker_id, session, token: caller.name, at_ms: state.clock.now_ms() };
    match state.propose(&once, command).await? {
        Response::WorkerDraining { worker_id } => {
            Ok((StatusCode::OK, Json(wire::Draining { id: worker_id, draining: true })).into_response())
        }
        Response::Rejected(r) => Err(r.into()),
        other => Err(unexpected(other)),
    }
}
