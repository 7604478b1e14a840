//! Who is calling, and may they: bearer tokens, roles, the cluster secret on node-to-node
//! endpoints, and the per-token request rate.
//!
//! Every route declares an [`Access`] in the route table (routes/mod.rs); [`authorize`] runs
//! before the handler and either refuses the request (401, 403, 429) or leaves a [`Caller`] in
//! its extensions for the handler to record (audit). With no admin token configured the node runs
//! open: every request acts as an anonymous admin, and the node says so at start and in
//! `GET /api/v1/cluster`.
//!
//! Tokens are checked against this node's applied state, without a round trip to the leader: a
//! new token works on a node once that node has applied it, and a revoked one stops working on a
//! node once it has applied the revocation (milliseconds on a healthy cluster).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use linkloom_core::state::{Role, BOOTSTRAP_ADMIN};
use tokio::time::Instant;

use crate::error::{ApiError, ErrorCode};
use crate::ApiState;

/// What a route requires of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: liveness and readiness probes, the API description.
    Public,
    /// `viewer`, `operator` or `admin`.
    Read,
    /// `operator` or `admin`: workflows, triggers, cancels, retries, backfills.
    Operate,
    /// `admin` only: tokens and cluster membership.
    Admin,
    /// `publisher`, `operator` or `admin`: sending events.
    Publish,
    /// A webhook's caller, proving the webhook's shared secret (an HMAC signature or a bearer
    /// secret), which the handler checks against the node's `LOOM_WEBHOOK_SECRETS`. No API token
    /// reaches these routes.
    Hook,
    /// `worker` or `admin`: the worker protocol and task callbacks.
    Work,
    /// Other nodes, proving the cluster secret (if one is configured).
    Peer,
    /// An HTTP attempt's backend, proving the attempt's own callback token (sent to it with the
    /// task request) as `Authorization: Bearer <callback_token>`. No API token or role reaches
    /// these routes, and the token is good for its one attempt only.
    Attempt,
}

/// The SHA-256 of the callback token a request to an [`Access::Attempt`] route presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptCredential(pub String);

impl<S: Send + Sync> FromRequestParts<S> for AttemptCredential {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<AttemptCredential>().cloned().ok_or_else(|| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, "this route takes no callback token")
        })
    }
}

impl Access {
    /// Whether `role` may use a route of this access.
    pub fn permits(self, role: Role) -> bool {
        match self {
            Access::Public => true,
            Access::Read => matches!(role, Role::Admin | Role::Operator | Role::Viewer),
            Access::Operate => matches!(role, Role::Admin | Role::Operator),
            Access::Admin => role == Role::Admin,
            Access::Publish => matches!(role, Role::Admin | Role::Operator | Role::Publisher),
            Access::Work => matches!(role, Role::Admin | Role::Worker),
            Access::Peer | Access::Attempt | Access::Hook => false,
        }
    }

    /// The roles allowed, for error details and the API description.
    pub fn roles(self) -> Vec<&'static str> {
        Role::ALL.into_iter().filter(|r| self.permits(*r)).map(Role::as_str).collect()
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's name; `None` when the node runs open.
    pub name: Option<String>,
    pub role: Role,
}

impl Caller {
    fn open() -> Self {
        Caller { name: None, role: Role::Admin }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        // Absent only on a public route, whose handlers have no caller to ask for: fail closed
        // rather than act for nobody.
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                "this route has no authenticated caller",
            )
        })
    }
}

/// How the node authenticates callers. Built once at start.
pub struct AuthConfig {
    /// `LOOM_ADMIN_TOKEN`: when set, every route but the public ones needs a token.
    admin_token: Option<String>,
    /// Expected in [`linkloom_raft::transport::CLUSTER_SECRET_HEADER`] on node-to-node routes.
    cluster_secret: Option<String>,
    /// Requests per second and burst per token (0: unlimited).
    rate_per_second: u32,
    burst: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("admin_token", &self.admin_token.as_ref().map(|_| "***"))
            .field("cluster_secret", &self.cluster_secret.as_ref().map(|_| "***"))
            .field("rate_per_second", &self.rate_per_second)
            .field("burst", &self.burst)
            .finish()
    }
}

impl Default for AuthConfig {
    /// Open: no tokens, no cluster secret, no rate limit.
    fn default() -> Self {
        AuthConfig::new(None, None, 0, 0)
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl AuthConfig {
    /// `rate_per_second` requests per second per token with bursts of `burst` (0: unlimited).
    pub fn new(admin_token: Option<String>, cluster_secret: Option<String>, rate_per_second: u32, burst: u32) -> Self {
        AuthConfig {
            admin_token: admin_token.filter(|t| !t.is_empty()),
            cluster_secret: cluster_secret.filter(|s| !s.is_empty()),
            rate_per_second,
            burst: burst.max(rate_per_second),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether requests need a token.
    pub fn enabled(&self) -> bool {
        self.admin_token.is_some()
    }

    /// Whether node-to-node requests must prove the cluster secret.
    pub fn peers_authenticated(&self) -> bool {
        self.cluster_secret.is_some()
    }

    /// Takes one request from `name`'s bucket; the wait until the next one is allowed if empty.
    fn take(&self, name: &str, now: Instant) -> Result<(), Duration> {
        if self.rate_per_second == 0 {
            return Ok(());
        }
        let rate = f64::from(self.rate_per_second);
        let burst = f64::from(self.burst);
        let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let bucket = buckets.entry(name.to_string()).or_insert(Bucket { tokens: burst, at: now });
        let refill = now.saturating_duration_since(bucket.at).as_secs_f64() * rate;
        bucket.tokens = (bucket.tokens + refill).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }
}

/// Lowercase hex SHA-256 of a token secret: how tokens are stored and looked up.
pub fn token_hash(secret: &str) -> String {
    linkloom_core::state::secret_hash(secret)
}

/// Equality that takes the same time wherever the inputs differ (for secrets).
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Middleware: refuses requests `access` does not allow; records the [`Caller`] otherwise. A
/// refused request's body is read and dropped first (up to the body limit), so its sender gets
/// the answer instead of a connection closed under it.
pub(crate) async fn authorize(
    State((state, access)): State<(ApiState, Access)>,
    request: Request,
    next: Next,
) -> Response {
    let limit = state.limits.max_body_bytes;
    match check(&state, access, request).await {
        Ok(request) => next.run(request).await,
        Err(refusal) => {
            let (response, body) = *refusal;
            crate::body::drain(body, limit).await;
            response
        }
    }
}

/// The request, with its [`Caller`], if `access` allows it; else the refusal and the body.
async fn check(
    state: &ApiState,
    access: Access,
    mut request: Request,
) -> Result<Request, Box<(Response, axum::body::Body)>> {
    let refuse = |response: Response, request: Request| Err(Box::new((response, request.into_body())));
    let auth = &state.auth;
    let caller = match access {
        // The handler verifies the signature: it needs the body, and which secret depends on the
        // workflow named in the path.
        Access::Public | Access::Hook => return Ok(request),
        Access::Peer => {
            if let Some(secret) = &auth.cluster_secret {
                let presented =
                    request.headers().get(linkloom_raft::transport::CLUSTER_SECRET_HEADER).map(HeaderValue::as_bytes);
                if !presented.is_some_and(|p| constant_time_eq(p, secret.as_bytes())) {
                    tracing::warn!("node-to-node request without the cluster secret refused");
                    let response = ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        ErrorCode::Unauthenticated,
                        "node-to-node requests must carry the cluster secret",
                    )
                    .into_response();
                    return refuse(response, request);
                }
            }
            return Ok(request);
        }
        Access::Attempt => match bearer(request.headers()) {
            Ok(token) => {
                let credential = AttemptCredential(token_hash(token));
                request.extensions_mut().insert(credential);
                return Ok(request);
            }
            Err(_) => {
                let mut response = ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    ErrorCode::Unauthenticated,
                    "this endpoint needs the attempt's callback token (the task request's `callback_token`): \
                     send `Authorization: Bearer <callback_token>`",
                )
                .into_response();
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"loom-attempt\""));
                return refuse(response, request);
            }
        },
        _ if !auth.enabled() => Caller::open(),
        _ => match identify(state, request.headers()) {
            Ok(caller) => caller,
            Err((code, message)) => {
                let mut response = ApiError::new(StatusCode::UNAUTHORIZED, code, message).into_response();
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"loom\""));
                return refuse(response, request);
            }
        },
    };
    if !access.permits(caller.role) {
        let name = caller.name.as_deref().unwrap_or("-");
        let response = ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            format!("token `{name}` has role `{}`; this needs one of {}", caller.role, access.roles().join(", ")),
        )
        .with_details(linkloom_wire::error::RoleRefused {
            role: caller.role.to_string(),
            allowed_roles: access.roles().iter().map(|r| r.to_string()).collect(),
        })
        .into_response();
        return refuse(response, request);
    }
    if let Some(name) = &caller.name {
        if let Err(wait) = auth.take(name, Instant::now()) {
            let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::RateLimited,
                format!(
                    "token `{name}` sent more than {} requests per second; retry in {seconds} s",
                    auth.rate_per_second
                ),
            )
            .with_details(linkloom_wire::error::RateLimit { limit_per_second: auth.rate_per_second, burst: auth.burst })
            .into_response();
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            return refuse(response, request);
        }
    }
    request.extensions_mut().insert(caller);
    Ok(request)
}

/// The caller named by the request's bearer token, or the code and message of the 401 to answer.
fn identify(state: &ApiState, headers: &axum::http::HeaderMap) -> Result<Caller, (ErrorCode, &'static str)> {
    let presented = bearer(headers)?;
    if let Some(admin) = &state.auth.admin_token {
        if constant_time_eq(presented.as_bytes(), admin.as_bytes()) {
            return Ok(Caller { name: Some(BOOTSTRAP_ADMIN.to_string()), role: Role::Admin });
        }
    }
    let hash = token_hash(presented);
    state
        .node
        .state()
        .read(|s| s.token_by_hash(&hash).map(|t| Caller { name: Some(t.name.clone()), role: t.role }))
        .ok_or((ErrorCode::InvalidToken, "the token is not known (revoked, mistyped, or never created)"))
}

/// The bearer token of a request, or the code and message of the 401 to answer.
fn bearer(headers: &axum::http::HeaderMap) -> Result<&str, (ErrorCode, &'static str)> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err((ErrorCode::Unauthenticated, "this node requires a token: send `Authorization: Bearer <token>`"));
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or((ErrorCode::Unauthenticated, "the Authorization header must be `Bearer <token>`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_reach_what_the_issue_says() {
        assert_eq!(Access::Read.roles(), ["admin", "operator", "viewer"]);
        assert_eq!(Access::Operate.roles(), ["admin", "operator"]);
        assert_eq!(Access::Admin.roles(), ["admin"]);
        assert_eq!(Access::Work.roles(), ["admin", "worker"]);
        assert!(Access::Peer.roles().is_empty());
        assert!(Access::Attempt.roles().is_empty(), "only an attempt's own token reaches its callback");
    }

    #[test]
    fn the_bucket_refills_at_the_rate() {
        let auth = AuthConfig::new(Some("t".into()), None, 10, 20);
        let start = Instant::now();
        for _ in 0..20 {
            assert_eq!(auth.take("ci", start), Ok(()));
        }
        let wait = auth.take("ci", start).expect_err("burst spent");
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(100), "{wait:?}");
        // Another token has its own bucket.
        assert_eq!(auth.take("other", start), Ok(()));
        // 100 ms later one request is allowed again, and only one.
        let later = start + Duration::from_millis(100);
        assert_eq!(auth.take("ci", later), Ok(()));
        assert!(auth.take("ci", later).is_err());
    }

    #[test]
    fn hashes_are_sha256_hex() {
        assert_eq!(token_hash("foo"), "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae");
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
