//! Events: sending one, listing the remembered ones, and webhooks (an event aimed at one
//! workflow, from a caller proving a shared secret).

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use linkloom_core::json::Json as JsonValue;
use linkloom_core::spec::{is_event_id, TriggerKind, WebhookAuth, EVENT_ID_RULE};
use linkloom_core::state::{EventSource, NewEvent, Workflow};
use linkloom_core::{Command, Response};
use linkloom_wire as wire;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::executions::{json_body, unexpected};
use crate::auth::Caller;
use crate::body::read_limited;
use crate::error::{ApiError, ErrorCode};
use crate::idempotency::Once;
use crate::views;
use crate::ApiState;

/// Headers a bearer webhook's sender names its delivery with, first found wins: a redelivery
/// carries the same one, so it starts nothing twice.
const DELIVERY_HEADERS: [&str; 3] = ["x-loom-event-id", "x-github-delivery", "idempotency-key"];

/// 202 for a new event, 200 for a repeat of an id seen within the window.
fn answer(response: Response) -> Result<(StatusCode, Json<wire::Event>), ApiError> {
    match response {
        Response::EventPublished { record, repeated } => {
            let status = if repeated { StatusCode::OK } else { StatusCode::ACCEPTED };
            Ok((status, Json(views::event(&record, repeated))))
        }
        Response::Rejected(r) => Err(r.into()),
        other => Err(unexpected(other)),
    }
}

/// `POST /api/v1/events` → 202 (200 for a repeated id) with the event and what it started.
pub(crate) async fn publish(
    State(state): State<ApiState>,
    once: Once,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<wire::Event>), ApiError> {
    let request: wire::PublishEvent = json_body(&state, &headers, body).await?;
    let id = match request.id {
        Some(id) => id,
        // No id: a new event every time (a client that retries should send one).
        None => format!("{:016x}{:016x}", state.entropy.next_u64(), state.entropy.next_u64()),
    };
    let event = NewEvent { name: request.name, id, payload: JsonValue(request.payload), source: EventSource::Api };
    let command = Command::PublishEvent { event, actor: caller.name, at_ms: state.clock.now_ms() };
    answer(state.propose(&once, command).await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventQuery {
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    consistency: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

/// `GET /api/v1/events`: remembered events, newest first.
pub(crate) async fn list(
    State(state): State<ApiState>,
    Query(query): Query<EventQuery>,
) -> Result<Json<wire::Page<wire::Event>>, ApiError> {
    let page = super::Page { limit: query.limit, cursor: query.cursor.clone(), consistency: query.consistency };
    let limit = page.limit(state.limits.max_page_size)?;
    // An empty cursor is the first page, as on every list; one this list never gave (not an
    // arrival number) reads as past its end, an empty page, as a cursor past every key does on
    // the others.
    let before = query.cursor.as_deref().filter(|c| !c.is_empty()).map(|c| c.parse::<u64>().unwrap_or(0));
    page.read_options().barrier(&state).await?;
    let events = state.node.state().read(|s| {
        let newest = s
            .events()
            .newest(before)
            .filter(|(_, r)| query.name.as_deref().is_none_or(|n| r.name == n))
            .map(|(n, r)| (n, views::event(r, false)));
        let page = super::page_of(newest, limit, |(n, _)| n.to_string());
        wire::Page::new(page.items.into_iter().map(|(_, e)| e).collect(), page.next_cursor)
    });
    Ok(Json(events))
}

/// `POST /api/v1/hooks/{workflow}/{name}`: a webhook call. The caller proves the secret the
/// trigger names; the body (JSON) is the payload; see [`hook_event_id`] for its id.
pub(crate) async fn hook(
    State(state): State<ApiState>,
    Path((workflow_id, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<wire::Event>), ApiError> {
    let bytes = read_limited(&headers, body, state.limits.max_body_bytes).await?;
    let find = |state: &ApiState| {
        state.node.state().read(|s| {
            s.workflow(&workflow_id).and_then(Workflow::active).and_then(|active| {
                active.spec.triggers.iter().find_map(|t| match t.kind() {
                    Some(TriggerKind::Webhook { name: n, auth, secret }) if n == name => {
                        Some((auth, secret.to_string()))
                    }
                    _ => None,
                })
            })
        })
    };
    // This node's view first: a call takes no token, so whoever can reach the port can make one,
    // and a read-index round trip to the leader per call would be theirs to spend. Only a miss
    // waits for the cluster: a webhook registered through another node a moment ago must not be
    // answered 404 by a follower still applying it. (A secret renamed a moment ago may still
    // verify a call here under the name it replaces, for that same moment.)
    let mut hook = find(&state);
    if hook.is_none() {
        state.node.linearizable_barrier().await?;
        hook = find(&state);
    }
    let Some((auth, secret_name)) = hook else {
        return Err(ApiError::of(ErrorCode::NotFound, format!("workflow `{workflow_id}` has no webhook `{name}`")));
    };
    let Some(secret) = state.webhooks.get(&secret_name) else {
        tracing::warn!(workflow = %workflow_id, webhook = %name, secret = %secret_name,
            "webhook call refused: this node has no such secret in LOOM_WEBHOOK_SECRETS");
        return Err(ApiError::of(
            ErrorCode::InvalidSignature,
            format!("this node cannot verify webhook `{name}`: its secret is not configured here"),
        ));
    };
    let now_s = state.clock.now_ms().div_euclid(1_000);
    if let Err(reason) = crate::webhook::verify(auth, secret, &headers, &bytes, now_s) {
        tracing::warn!(workflow = %workflow_id, webhook = %name, %reason, "webhook call refused");
        return Err(ApiError::of(ErrorCode::InvalidSignature, format!("webhook `{name}`: {reason}")));
    }
    let payload: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(format!("body is not JSON: {e}")))?
    };
    let id = hook_event_id(auth, (&workflow_id, &name), &headers, &bytes)?;
    let event = NewEvent {
        name: format!("hook.{workflow_id}.{name}"),
        id,
        payload: JsonValue(payload),
        source: EventSource::Webhook { workflow_id, name },
    };
    let command = Command::PublishEvent { event, actor: None, at_ms: state.clock.now_ms() };
    answer(state.propose(&Once(None), command).await?)
}

/// A webhook event's id. For a signed call (`github`, `stripe`) it is a SHA-256 of the webhook
/// (workflow and name) and the body, the only part the signature covers: an id from an unsigned
/// header would let whoever captured one call replay it under a new id and start the workflow
/// again. Senders put a unique id in the body (GitHub's timestamps and hook ids, Stripe's `evt_`
/// id), and their redeliveries repeat it, so a redelivery starts nothing twice; the same body sent
/// to two webhooks is two events. A bearer call proves nothing about its body (whoever saw one
/// call can make any), so its delivery header, when it sends one, names it.
fn hook_event_id(
    auth: WebhookAuth,
    (workflow_id, name): (&str, &str),
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, ApiError> {
    let by_body = || {
        let mut hash = Sha256::new();
        // Both names are slugs (no `/`, no newline), so the prefix cannot be forged by a body.
        hash.update(format!("{workflow_id}/{name}\n").as_bytes());
        hash.update(body);
        let hex: String = hash.finalize().iter().take(20).map(|b| format!("{b:02x}")).collect();
        format!("sha256-{hex}")
    };
    if auth != WebhookAuth::Bearer {
        return Ok(by_body());
    }
    match DELIVERY_HEADERS.iter().find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok())) {
        Some(id) if is_event_id(id.trim()) => Ok(id.trim().to_string()),
        Some(id) => Err(ApiError::of(
            ErrorCode::InvalidEvent,
            format!("delivery id `{id}` is not a valid event id: {EVENT_ID_RULE}"),
        )),
        None => Ok(by_body()),
    }
}
