//! API tokens: create (the secret is shown in this answer only), list, revoke. Admin only.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use linkloom_core::ids::rfc3339;
use linkloom_core::state::{validate_token_name, Role};
use linkloom_core::{Command, Response};
use linkloom_raft::Transport;
use rand::RngCore;
use serde::Deserialize;
use serde_json::{json, Value};

use super::executions::{json_body, unexpected};
use super::{page_of, Page};
use crate::auth::{token_hash, Caller};
use crate::error::ApiError;
use crate::idempotency::Once;
use crate::ApiState;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewToken {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    role: Option<String>,
    /// A worker token limited to these queues; absent: any queue.
    #[serde(default)]
    queues: Option<Vec<String>>,
}

/// A new secret: `loom_` and 64 hex digits (256 bits from the operating system's generator).
fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("loom_{hex}")
}

/// `POST /api/v1/tokens` `{"name", "role", "queues"?}` → 201 `{"name", "role", "queues", "token",
/// "created_at"}`. `queues` limits a worker token to those queues.
pub(crate) async fn create<T: Transport>(
    State(state): State<ApiState<T>>,
    once: Once,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let request: NewToken = json_body(&state, &headers, body).await?;
    let name = request.name.ok_or_else(|| ApiError::bad_request("body: `name` is required"))?;
    let role_text = request.role.ok_or_else(|| ApiError::bad_request("body: `role` is required"))?;
    let role = Role::parse(&role_text).ok_or_else(|| {
        ApiError::bad_request(format!("role `{role_text}` is not one of admin, operator, viewer, worker"))
    })?;
    validate_token_name(&name).map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, "invalid_token", m))?;
    let secret = new_secret();
    let at_ms = state.clock.now_ms();
    // Sorted and without repeats, as the state machine keeps them, so this answer shows what is stored.
    let queues = request.queues.map(|mut q| {
        q.sort();
        q.dedup();
        q
    });
    let command = Command::CreateToken {
        name,
        role,
        hash: token_hash(&secret),
        queues: queues.clone(),
        actor: caller.name,
        at_ms,
    };
    match state.propose(&once, command).await? {
        // The first attempt made the token, and its secret was shown to that attempt only: the
        // replicated state keeps just a hash, so a replay cannot show it again.
        Response::TokenCreated { name, .. } if once.0.as_ref().is_some_and(|r| r.is_replayed()) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "token_exists",
            format!(
                "token `{name}` was made by an earlier attempt of this request; its secret is shown only once: \
                 revoke it and create a new one if the first answer was lost"
            ),
        )),
        Response::TokenCreated { name, role } => {
            tracing::info!(token = %name, %role, "token created");
            let body = json!({
                "name": name, "role": role, "queues": queues, "token": secret, "created_at": rfc3339(at_ms),
            });
            Ok((StatusCode::CREATED, [(header::CACHE_CONTROL, "no-store")], Json(body)))
        }
        Response::Rejected(r) => Err(r.into()),
        other => Err(unexpected(other)),
    }
}

/// `GET /api/v1/tokens` → `{"items": [{name, role, queues, created_at, created_by}], "next_cursor"}`.
pub(crate) async fn list<T: Transport>(
    State(state): State<ApiState<T>>,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    let limit = page.limit(state.limits.max_page_size)?;
    page.read_options().barrier(&state).await?;
    let (items, next_cursor) = state.node.state().read(|s| {
        let tokens = s.tokens().filter(|t| page.after(&t.name)).map(|t| {
            json!({
                "id": t.name, "name": t.name, "role": t.role, "queues": t.queues,
                "created_at": rfc3339(t.created_at_ms), "created_by": t.created_by,
            })
        });
        page_of(tokens, limit)
    });
    Ok(Json(json!({"items": items, "next_cursor": next_cursor})))
}

/// `DELETE /api/v1/tokens/{name}` → 204.
pub(crate) async fn revoke<T: Transport>(
    State(state): State<ApiState<T>>,
    once: Once,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let command = Command::RevokeToken { name, actor: caller.name.clone(), at_ms: state.clock.now_ms() };
    match state.propose(&once, command).await? {
        Response::TokenRevoked { name } => {
            tracing::info!(token = %name, by = ?caller.name, "token revoked");
            Ok(StatusCode::NO_CONTENT)
        }
        Response::Rejected(r) => Err(r.into()),
        other => Err(unexpected(other)),
    }
}
