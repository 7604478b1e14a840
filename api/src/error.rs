//! The one error shape of the API: a status and `{"error": {"code", "message", "details"}}`
//! ([`linkloom_wire::ErrorBody`]), with the code one of [`ErrorCode`].

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use linkloom_core::spec::SpecError;
use linkloom_core::state::Rejection;
use linkloom_raft::NodeError;
use linkloom_wire::error::SpecProblems;
pub use linkloom_wire::ErrorCode;
use linkloom_wire::{ErrorBody, ErrorDetail, Problem};
use serde_json::Value;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// Stable, machine-readable: `not_found`, `invalid_spec`, `unavailable`, ...
    pub code: ErrorCode,
    pub message: String,
    pub details: Value,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), details: Value::Null }
    }

    /// An error with the status its code is always answered with.
    pub fn of(code: ErrorCode, message: impl Into<String>) -> Self {
        let status = StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self::new(status, code, message)
    }

    pub fn with_details(mut self, details: impl serde::Serialize) -> Self {
        self.details = serde_json::to_value(details).unwrap_or(Value::Null);
        self
    }

    pub fn not_found(what: &str, id: &str) -> Self {
        Self::of(ErrorCode::NotFound, format!("{what} `{id}` not found"))
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::of(ErrorCode::BadRequest, message)
    }

    pub fn with_code(mut self, code: ErrorCode) -> Self {
        self.code = code;
        self
    }

    /// The body this error is answered with.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail { code: self.code, message: self.message.clone(), details: self.details.clone() },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body();
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<SpecError> for ApiError {
    fn from(e: SpecError) -> Self {
        let problems =
            e.problems.iter().map(|p| Problem { path: p.path.clone(), message: p.message.clone() }).collect();
        ApiError::of(ErrorCode::InvalidSpec, e.to_string()).with_details(SpecProblems { problems })
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        match e {
            NodeError::NoLeader { .. } => ApiError::of(ErrorCode::Unavailable, e.to_string()),
            NodeError::BadRequest(m) => ApiError::bad_request(m),
            NodeError::WrongCluster(m) => ApiError::of(ErrorCode::Conflict, m),
            NodeError::NotMember(_) => ApiError::of(ErrorCode::NotFound, e.to_string()),
            NodeError::Membership(m) => ApiError::of(ErrorCode::MembershipConflict, m),
            NodeError::Storage(_) | NodeError::Raft(_) => ApiError::of(ErrorCode::Internal, e.to_string()),
            NodeError::Stopped(_) => ApiError::of(ErrorCode::Unavailable, e.to_string()),
        }
    }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        use ErrorCode::*;
        let message = r.to_string();
        let code = match &r {
            Rejection::WorkflowNotFound(_)
            | Rejection::ExecutionNotFound(_)
            | Rejection::TaskNotFound { .. }
            | Rejection::AttemptNotFound(_)
            | Rejection::TokenNotFound(_)
            | Rejection::WebhookNotFound { .. } => NotFound,
            Rejection::InvalidEvent(_) => InvalidEvent,
            Rejection::EventIdReused { .. } => EventIdReused,
            Rejection::InvalidSpec(_) => InvalidSpec,
            Rejection::InvalidParams(_) => InvalidParams,
            Rejection::NestedBatch => BadRequest,
            // A copy of a batch its proposer already has answers for: nobody waits for it.
            Rejection::NotOwner { .. }
            | Rejection::Blocked { .. }
            | Rejection::NotTimedOut { .. }
            | Rejection::DuplicateProposal => Conflict,
            Rejection::TooLarge { .. } => TooLarge,
            Rejection::StaleAttempt { .. } | Rejection::NotAttemptHolder { .. } => StaleAttempt,
            Rejection::WorkerUnavailable { .. } => WorkerUnavailable,
            Rejection::WorkerNotConnected { .. } => WorkerNotConnected,
            Rejection::WorkerTokenMismatch { .. } => Forbidden,
            Rejection::InvalidWorker(_) => InvalidWorker,
            Rejection::TaskNotReady { .. } => TaskNotReady,
            Rejection::ExecutionFinished { .. } | Rejection::NotRetryable { .. } => ExecutionFinished,
            Rejection::LeaseHeld { .. } | Rejection::LeaseNotHeld { .. } => LeaseConflict,
            Rejection::TokenExists(_) => TokenExists,
            Rejection::InvalidToken(_) => InvalidToken,
            Rejection::InvalidLimits(_) => InvalidLimits,
            Rejection::IdempotencyKeyReused { .. } => IdempotencyKeyReused,
            Rejection::InvalidRequest(_) => InvalidIdempotencyKey,
        };
        ApiError::of(code, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_the_status_it_is_documented_with() {
        for code in ErrorCode::KNOWN {
            let error = ApiError::of(*code, "m");
            assert_eq!(error.status.as_u16(), code.status(), "{code}");
        }
    }
}
