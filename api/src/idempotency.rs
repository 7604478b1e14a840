//! `Idempotency-Key`: a client's promise that two requests with the same key are one operation.
//!
//! A client that did not get an answer (a timeout, a dropped connection, a 5xx) cannot tell
//! whether its write happened. Sent again with the same `Idempotency-Key` — through any node,
//! within the cluster's request window — the request is applied once and every copy is answered
//! with the first answer (marked `Idempotent-Replayed: true`). The key is scoped to the caller's
//! token, and tied to a fingerprint of the request (method, path and query, body): the same key
//! with a different request is refused with 422 `idempotency_key_reused`, not answered with
//! another request's answer.
//!
//! This module turns the header into a [`ClientRequest`] (middleware on mutating routes, after
//! authorization); handlers propose through [`crate::ApiState::propose`], which wraps the command
//! so that `apply` decides, on every node alike, whether it is new
//! (`linkloom_core::state::Command::Idempotent`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use linkloom_core::state::{Fingerprint, RequestId};
use linkloom_core::Command;
use sha2::{Digest, Sha256};

use crate::auth::Caller;
use crate::body::read_limited;
use crate::error::{ApiError, ErrorCode};
use crate::ApiState;

/// The request header a client sends.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// The answer header on an answer that is a replay of the first one.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// The scope of keys on a node that runs open (every caller is the same one).
const OPEN_SCOPE: &str = "-";

/// A client request that carried an `Idempotency-Key`.
#[derive(Debug, Clone)]
pub struct ClientRequest {
    id: RequestId,
    fingerprint: Fingerprint,
    replayed: Arc<AtomicBool>,
}

impl ClientRequest {
    /// `command`, to be applied once for this request.
    pub(crate) fn wrap(&self, command: Command) -> Command {
        Command::Idempotent { request: self.id.clone(), fingerprint: self.fingerprint, command: Box::new(command) }
    }

    /// The `n`th of several commands one request proposes (a backfill's executions): each is
    /// remembered on its own, under a key derived from this one.
    pub(crate) fn part(&self, n: usize) -> ClientRequest {
        let mut fingerprint = [0u8; 16];
        let digest = Sha256::new().chain_update(self.fingerprint).chain_update(n.to_be_bytes()).finalize();
        fingerprint.copy_from_slice(&digest[..16]);
        ClientRequest {
            id: RequestId { scope: self.id.scope.clone(), key: format!("{}#{n}", self.id.key) },
            fingerprint,
            replayed: self.replayed.clone(),
        }
    }

    pub(crate) fn mark_replayed(&self) {
        self.replayed.store(true, Ordering::Relaxed);
    }

    /// Whether a proposal of this request was answered from the first application.
    pub(crate) fn is_replayed(&self) -> bool {
        self.replayed.load(Ordering::Relaxed)
    }
}

/// The request's [`ClientRequest`], if it carried a key (an extractor for handlers).
#[derive(Debug, Clone, Default)]
pub struct Once(pub Option<ClientRequest>);

impl<S: Send + Sync> FromRequestParts<S> for Once {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Once(parts.extensions.get::<ClientRequest>().cloned()))
    }
}

/// Middleware for mutating routes: reads the key, fingerprints the request, and marks the answer
/// when it was a replay.
pub(crate) async fn middleware(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let Some(key) = request.headers().get(&IDEMPOTENCY_KEY) else {
        return next.run(request).await;
    };
    if !state.idempotency_keys {
        // Chaos testing only (LOOM_CHAOS_NO_DEDUP): keys are ignored, retries apply again.
        return next.run(request).await;
    }
    let key = match key.to_str() {
        Ok(key) => key.to_string(),
        Err(_) => return invalid("an idempotency key is visible ASCII").into_response(),
    };
    let scope = request.extensions().get::<Caller>().and_then(|c| c.name.clone()).unwrap_or_else(|| OPEN_SCOPE.into());
    let id = RequestId { scope, key };
    if let Err(problem) = id.validate() {
        return invalid(&problem).into_response();
    }
    let (mut parts, body) = request.into_parts();
    let bytes = match read_limited(&parts.headers, body, state.limits.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(e) => return e.into_response(),
    };
    let path = parts.uri.path_and_query().map_or(parts.uri.path(), |p| p.as_str());
    let digest = Sha256::new()
        .chain_update(parts.method.as_str())
        .chain_update([0])
        .chain_update(path)
        .chain_update([0])
        .chain_update(&bytes)
        .finalize();
    let mut fingerprint = [0u8; 16];
    fingerprint.copy_from_slice(&digest[..16]);
    let client_request = ClientRequest { id, fingerprint, replayed: Arc::default() };
    parts.extensions.insert(client_request.clone());
    let mut response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    if client_request.is_replayed() {
        response.headers_mut().insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    response
}

fn invalid(problem: &str) -> ApiError {
    ApiError::bad_request(format!("Idempotency-Key: {problem}")).with_code(ErrorCode::InvalidIdempotencyKey)
}
