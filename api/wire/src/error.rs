//! The one error shape of the API: an HTTP status and
//! `{"error": {"code", "message", "details"}}`, where `code` is one of [`ErrorCode`].
//!
//! Clients branch on the code, never on the message (which is for people and may be reworded).
//! [`ErrorCode::class`] says what a client should do with each: the SDKs all follow it, and the
//! conformance kit checks that they do.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

open_enum! {
    /// Every error code a node sends. docs/api.md explains each.
    #[derive(PartialOrd, Ord)]
    pub enum ErrorCode {
        /// A malformed request: bad JSON, a missing or misspelled field, a bad query parameter.
        BadRequest => "bad_request",
        /// Trigger params that are not a JSON object, or too large.
        InvalidParams => "invalid_params",
        /// A worker hello with a bad id, queue name or concurrency.
        InvalidWorker => "invalid_worker",
        /// A token name that is not allowed (400), or a bearer token the cluster does not know (401).
        InvalidToken => "invalid_token",
        /// A limit outside 1 and its ceiling.
        InvalidLimits => "invalid_limits",
        /// An `Idempotency-Key` header that is empty, too long or not visible ASCII.
        InvalidIdempotencyKey => "invalid_idempotency_key",
        /// No token where the node requires one, or not a `Bearer` one.
        Unauthenticated => "unauthenticated",
        /// The token's role may not do this, or a worker token is not the worker's.
        Forbidden => "forbidden",
        /// A browser write from another site.
        CrossOrigin => "cross_origin",
        /// A `Host` header this node does not answer for.
        HostNotAllowed => "host_not_allowed",
        /// No such workflow, version, execution, task, attempt, token or route.
        NotFound => "not_found",
        /// The worker is not connected to the cluster.
        WorkerNotConnected => "worker_not_connected",
        /// The path exists but not with this method.
        MethodNotAllowed => "method_not_allowed",
        /// The request body came too slowly.
        RequestTimeout => "request_timeout",
        /// Conflicts with the current state (an execution blocked or owned elsewhere, an attempt not timed out).
        Conflict => "conflict",
        /// The attempt is no longer the task's current one, or not held by this caller: a late answer.
        StaleAttempt => "stale_attempt",
        /// The execution has ended (cancel), or cannot be retried.
        ExecutionFinished => "execution_finished",
        /// The task cannot run yet.
        TaskNotReady => "task_not_ready",
        /// The attempt's lease is held by another worker, or by none.
        LeaseConflict => "lease_conflict",
        /// The worker cannot take work now (draining, full, or of other queues).
        WorkerUnavailable => "worker_unavailable",
        /// A token of that name exists (or its secret was shown to an earlier try of this request).
        TokenExists => "token_exists",
        /// A membership change that conflicts with the cluster's (not a learner, lagging, last voter).
        MembershipConflict => "membership_conflict",
        /// A body, params, output or log over its limit.
        TooLarge => "too_large",
        /// A write without a JSON (or, for workflows, YAML) `Content-Type`.
        UnsupportedMediaType => "unsupported_media_type",
        /// A workflow spec that does not validate; `details.problems` lists each `{path, message}`.
        InvalidSpec => "invalid_spec",
        /// An `Idempotency-Key` already used for a different request.
        IdempotencyKeyReused => "idempotency_key_reused",
        /// An event with a bad name, id or payload.
        InvalidEvent => "invalid_event",
        /// An event id already used, within the event window, for an event with another name,
        /// payload or source.
        EventIdReused => "event_id_reused",
        /// A webhook call whose signature or bearer secret does not verify.
        InvalidSignature => "invalid_signature",
        /// A backfill range whose `to` is before its `from`, or that holds more ticks than one
        /// backfill may create.
        InvalidRange => "invalid_range",
        /// Too many requests for this token; wait `Retry-After` seconds.
        RateLimited => "rate_limited",
        /// Too many followed log streams for this token.
        TooManyStreams => "too_many_streams",
        /// A fault in the node.
        Internal => "internal",
        /// No leader within the wait, or the node cannot serve this now.
        Unavailable => "unavailable",
        /// `/readyz`: no leader known yet, or still applying what was committed.
        NotReady => "not_ready",
    }
}

/// What a client does with an error (the same rule in every SDK).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Try again later, on the same or another node (`Retry-After` when given).
    Retryable,
    /// The caller's token is missing or unknown: fix the credentials.
    Auth,
    /// The attempt this call is about is no longer the caller's: drop it, change nothing.
    StaleAttempt,
    /// The request is wrong or refused as it stands: repeating it gives the same answer.
    Fatal,
}

impl ErrorCode {
    /// The status the node answers this code with. (`invalid_token` is also a 401 when it is the
    /// bearer token that is unknown; that is the only code with two.)
    pub fn status(self) -> u16 {
        use ErrorCode::*;
        match self {
            BadRequest
            | InvalidParams
            | InvalidWorker
            | InvalidToken
            | InvalidLimits
            | InvalidIdempotencyKey
            | InvalidEvent => 400,
            Unauthenticated | InvalidSignature => 401,
            Forbidden | CrossOrigin | HostNotAllowed => 403,
            NotFound | WorkerNotConnected => 404,
            MethodNotAllowed => 405,
            RequestTimeout => 408,
            Conflict | StaleAttempt | ExecutionFinished | TaskNotReady | LeaseConflict | WorkerUnavailable
            | TokenExists | MembershipConflict => 409,
            TooLarge => 413,
            UnsupportedMediaType => 415,
            InvalidSpec | IdempotencyKeyReused | InvalidRange | EventIdReused => 422,
            RateLimited | TooManyStreams => 429,
            Internal | Unknown => 500,
            Unavailable | NotReady => 503,
        }
    }

    /// What a client should do with it.
    ///
    /// ```
    /// use linkloom_wire::error::{ErrorClass, ErrorCode};
    /// assert_eq!(ErrorCode::Unavailable.class(), ErrorClass::Retryable);
    /// assert_eq!(ErrorCode::StaleAttempt.class(), ErrorClass::StaleAttempt);
    /// assert_eq!(ErrorCode::InvalidSpec.class(), ErrorClass::Fatal);
    /// ```
    pub fn class(self) -> ErrorClass {
        use ErrorCode::*;
        match self {
            RateLimited | TooManyStreams | Unavailable | NotReady | Internal | RequestTimeout => ErrorClass::Retryable,
            Unauthenticated | InvalidToken => ErrorClass::Auth,
            StaleAttempt | LeaseConflict => ErrorClass::StaleAttempt,
            _ => ErrorClass::Fatal,
        }
    }
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "Error")]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorDetail {
    /// Stable and machine-readable; see [`ErrorCode`].
    pub code: ErrorCode,
    /// For people: says what was wrong, naming the field, value or limit.
    pub message: String,
    /// More, per code: `invalid_spec` has `problems`, `too_large` `limit_bytes`, `forbidden` the
    /// roles allowed, `rate_limited` the limit, `not_ready` what the node knows. Null when there is
    /// nothing more.
    #[serde(default)]
    #[schemars(schema_with = "details_schema")]
    pub details: Value,
}

/// The schema of `details`: one of the detail types, or null.
fn details_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let kinds = [
        generator.subschema_for::<SpecProblems>(),
        generator.subschema_for::<RoleRefused>(),
        generator.subschema_for::<RateLimit>(),
        generator.subschema_for::<SizeLimit>(),
        generator.subschema_for::<Readiness>(),
    ];
    schemars::json_schema!({"anyOf": [kinds[0], kinds[1], kinds[2], kinds[3], kinds[4], {"type": "null"}]})
}

/// One problem of a refused workflow spec (`details.problems` of `invalid_spec`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Problem {
    /// Where: a path into the spec such as `tasks[2].url`.
    pub path: String,
    /// What is wrong there.
    pub message: String,
}

/// `details` of `invalid_spec`: every problem at once.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct SpecProblems {
    pub problems: Vec<Problem>,
}

/// `details` of `forbidden` for a role that may not call the endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct RoleRefused {
    /// The caller's role.
    pub role: String,
    /// The roles that may call it.
    pub allowed_roles: Vec<String>,
}

/// `details` of `rate_limited`: the token's limit.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct RateLimit {
    pub limit_per_second: u32,
    pub burst: u32,
}

/// `details` of `too_large` for a body over the node's limit.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct SizeLimit {
    pub limit_bytes: u64,
}

/// `details` of `not_ready`: what the node knows so far.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct Readiness {
    pub leader_id: Option<u64>,
    pub last_applied: Option<u64>,
}

/// A text that is not one of an enum's known values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} `{value}` is not one of {allowed}")]
pub struct UnknownValue {
    pub what: &'static str,
    pub value: String,
    pub allowed: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_ones_decode() {
        for code in ErrorCode::KNOWN {
            let text = serde_json::to_string(code).unwrap_or_default();
            assert_eq!(text, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&text).ok(), Some(*code));
            assert_eq!(code.as_str().parse::<ErrorCode>().ok(), Some(*code));
            assert!(code.status() >= 400);
        }
        let newer: ErrorBody =
            serde_json::from_str(r#"{"error":{"code":"quota_exceeded","message":"m"}}"#).expect("decodes");
        assert_eq!(newer.error.code, ErrorCode::Unknown);
        assert!("nope".parse::<ErrorCode>().is_err());
    }
}
