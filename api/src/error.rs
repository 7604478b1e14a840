//! The one error shape of the API: a status and `{"error": {"code", "message", "details"}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use linkloom_core::spec::SpecError;
use linkloom_core::state::Rejection;
use linkloom_raft::NodeError;
use serde_json::{json, Value};

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// Stable, machine-readable: `not_found`, `invalid_spec`, `unavailable`, ...
    pub code: &'static str,
    pub message: String,
    pub details: Value,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), details: Value::Null }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    pub fn not_found(what: &str, id: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} `{id}` not found"))
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = code;
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message, "details": self.details}});
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<SpecError> for ApiError {
    fn from(e: SpecError) -> Self {
        let problems: Vec<Value> = e.problems.iter().map(|p| json!({"path": p.path, "message": p.message})).collect();
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_spec", e.to_string())
            .with_details(json!({"problems": problems}))
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        match e {
            NodeError::NoLeader { .. } => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e.to_string()),
            NodeError::BadRequest(m) => ApiError::bad_request(m),
            NodeError::Membership(m) => ApiError::new(StatusCode::CONFLICT, "membership_conflict", m),
            NodeError::Storage(_) | NodeError::Raft(_) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            }
        }
    }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        let message = r.to_string();
        let (status, code) = match &r {
            Rejection::WorkflowNotFound(_)
            | Rejection::ExecutionNotFound(_)
            | Rejection::TaskNotFound { .. }
            | Rejection::AttemptNotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Rejection::InvalidSpec(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_spec"),
            Rejection::InvalidParams(_) => (StatusCode::BAD_REQUEST, "invalid_params"),
            Rejection::NestedBatch => (StatusCode::BAD_REQUEST, "bad_request"),
            Rejection::NotOwner { .. } | Rejection::Blocked { .. } | Rejection::NotTimedOut { .. } => {
                (StatusCode::CONFLICT, "conflict")
            }
            Rejection::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            Rejection::StaleAttempt { .. } | Rejection::NotAttemptHolder { .. } => {
                (StatusCode::CONFLICT, "stale_attempt")
            }
            Rejection::WorkerUnavailable { .. } => (StatusCode::CONFLICT, "worker_unavailable"),
            Rejection::WorkerNotConnected { .. } => (StatusCode::NOT_FOUND, "worker_not_connected"),
            Rejection::WorkerTokenMismatch { .. } => (StatusCode::FORBIDDEN, "forbidden"),
            Rejection::InvalidWorker(_) => (StatusCode::BAD_REQUEST, "invalid_worker"),
            Rejection::TaskNotReady { .. } => (StatusCode::CONFLICT, "task_not_ready"),
            Rejection::ExecutionFinished { .. } | Rejection::NotRetryable { .. } => {
                (StatusCode::CONFLICT, "execution_finished")
            }
            Rejection::LeaseHeld { .. } | Rejection::LeaseNotHeld { .. } => (StatusCode::CONFLICT, "lease_conflict"),
            Rejection::TokenExists(_) => (StatusCode::CONFLICT, "token_exists"),
            Rejection::TokenNotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Rejection::InvalidToken(_) => (StatusCode::BAD_REQUEST, "invalid_token"),
            Rejection::InvalidLimits(_) => (StatusCode::BAD_REQUEST, "invalid_limits"),
            Rejection::IdempotencyKeyReused { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused"),
            Rejection::InvalidRequest(_) => (StatusCode::BAD_REQUEST, "invalid_idempotency_key"),
            // A copy of a batch its proposer already has answers for: nobody waits for it.
            Rejection::DuplicateProposal => (StatusCode::CONFLICT, "conflict"),
        };
        ApiError::new(status, code, message)
    }
}
