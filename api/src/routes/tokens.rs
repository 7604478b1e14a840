//! API tokens: create (the secret is shown in this answer only), list, revoke. Admin only.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use linkloom_core::ids::rfc3339;
use linkloom_core::state::validate_token_name;
use linkloom_core::{Command, Response};
use linkloom_wire as wire;
use rand::RngCore;

use super::executions::{json_body, unexpected};
use super::{page_of, Page};
use crate::auth::{token_hash, Caller};
use crate::error::{ApiError, ErrorCode};
use crate::idempotency::Once;
use crate::ApiState;

/// A new secret: `loom_` and 64 hex digits (256 bits from the operating system's generator).
fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("loom_{hex}")
}

/// `POST /api/v1/tokens` `{"name", "role", "queues"?}` → 201 `{"name", "role", "queues", "token",
/// "created_at"}`. `queues` limits a worker token to those queues.
pub(crate) async fn create(
    State(state): State<ApiState>,
    once: Once,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let request: wire::NewToken = json_body(&state, &headers, body).await?;
    let name = request.name;
    let role = request.role.parse::<wire::Role>().ok().and_then(linkloom_core::state::wire::role).ok_or_else(|| {
        ApiError::bad_request(format!("role `{}` is not one of admin, operator, viewer, worker", request.role))
    })?;
    validate_token_name(&name).map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidToken, m))?;
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
            ErrorCode::TokenExists,
            format!(
                "token `{name}` was made by an earlier attempt of this request; its secret is shown only once: \
                 revoke it and create a new one if the first answer was lost"
            ),
        )),
        Response::TokenCreated { name, role } => {
            tracing::info!(token = %name, %role, "token created");
            let body =
                wire::CreatedToken { name, role: role.into(), queues, token: secret, created_at: rfc3339(at_ms) };
            Ok((StatusCode::CREATED, [(header::CACHE_CONTROL, "no-store")], Json(body)))
        }
        Response::Rejected(r) => Err(r.into()),
        other => Err(unexpected(other)),
    }
}

/// `GET /api/v1/tokens` → `{"items": [{name, role, queues, created_at, created_by}], "next_cursor"}`.
pub(crate) async fn list(
    State(state): State<ApiState>,
    Query(page): Query<Page>,
) -> Result<Json<wire::Page<wire::Token>>, ApiError> {
    let limit = page.limit(state.limits.max_page_size)?;
    page.read_options().barrier(&state).await?;
    let tokens = state.node.state().read(|s| {
        let tokens = s.tokens().filter(|t| page.after(&t.name)).map(|t| wire::Token {
            name: t.name.clone(),
            role: t.role.into(),
            queues: t.queues.clone(),
            created_at: rfc3339(t.created_at_ms),
            created_by: t.created_by.clone(),
        });
        page_of(tokens, limit, |t| t.name.clone())
    });
    Ok(Json(tokens))
}

/// `DELETE /api/v1/tokens/{name}` → 204.
pub(crate) async fn revoke(
    State(state): State<ApiState>,
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
