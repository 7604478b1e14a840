//! The route table: every endpoint's method, path, access and documentation in one place. The
//! router, the authorization of each route and the OpenAPI description (`/api/openapi.json`) are
//! all built from it, so an endpoint cannot exist without being documented and guarded. Paths
//! here are the public interface; see docs/api.md.

mod cluster;
mod events;
mod executions;
mod health;
mod logs;
mod metrics;
mod raft;
mod tokens;
mod workers;
mod workflows;

use axum::http::{Method, StatusCode, Uri};
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::Router;
use linkloom_wire as wire;
use serde::Deserialize;

use crate::auth::{authorize, Access};
use crate::error::{ApiError, ErrorCode};
use crate::observe::observe;
use crate::ApiState;

pub use cluster::OPEN_WARNING;
pub(crate) use metrics::render as render_metrics;

/// A query parameter of an endpoint.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Param {
    pub name: &'static str,
    /// JSON Schema type: `string`, `integer`, `boolean`, or `date-time` (an RFC 3339 string).
    pub kind: &'static str,
    pub description: &'static str,
    /// Allowed values, if a fixed set.
    pub values: &'static [&'static str],
}

/// Adds a type's schema to the document's components and answers its reference.
pub(crate) type SchemaFn = fn(&mut schemars::SchemaGenerator) -> schemars::Schema;

fn schema_of<T: schemars::JsonSchema>(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    generator.subschema_for::<T>()
}

/// A request or response body: media types and the type it is (de)serialized as, whose schema
/// the document shows.
#[derive(Clone, Copy)]
pub(crate) struct Content {
    pub media: &'static [&'static str],
    pub schema: SchemaFn,
}

impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Content").field("media", &self.media).finish_non_exhaustive()
    }
}

/// One endpoint's contract.
#[derive(Debug, Clone)]
pub(crate) struct Op {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    pub id: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    pub query: &'static [Param],
    pub body: Option<Content>,
    /// Whether the body may be left out.
    pub body_optional: bool,
    pub ok_status: u16,
    pub ok: Option<Content>,
    /// Statuses beyond those every guarded endpoint may answer (401, 403, 429, 500, 503).
    pub errors: &'static [u16],
}

const JSON: &[&str] = &["application/json"];

const fn op(method: Method, path: &'static str, access: Access, id: &'static str, tag: &'static str) -> Op {
    Op {
        method,
        path,
        access,
        id,
        tag,
        summary: "",
        query: &[],
        body: None,
        body_optional: false,
        ok_status: 200,
        ok: None,
        errors: &[],
    }
}

impl Op {
    /// Mutating client routes honour `Idempotency-Key`. Not node-to-node ones, not the worker
    /// stream (a connection, not a write), and not membership changes, which Raft applies itself
    /// rather than the state machine (an add or promote repeated is a no-op; a remove repeated
    /// says the node is not a member).
    pub(crate) fn takes_idempotency_key(&self) -> bool {
        let mutating = self.method == Method::POST || self.method == Method::PUT || self.method == Method::DELETE;
        mutating
            && !self.path.starts_with("/raft/")
            && !self.path.starts_with("/api/v1/cluster/members")
            // A webhook's id comes from its body or delivery header (see routes/events.rs).
            && self.access != Access::Hook
            && self.path != "/api/v1/workers/connect"
    }

    /// A client write (a JSON type required) that reads no body.
    pub(crate) fn takes_no_body(&self) -> bool {
        matches!(self.method, Method::POST | Method::PUT | Method::PATCH)
            && self.body.is_none()
            && !matches!(self.access, Access::Attempt | Access::Peer)
            && self.path != "/api/v1/workers/connect"
    }

    fn summary(mut self, s: &'static str) -> Self {
        self.summary = s;
        self
    }
    fn query(mut self, q: &'static [Param]) -> Self {
        self.query = q;
        self
    }
    /// A JSON body read as `B`.
    fn body<B: schemars::JsonSchema>(mut self) -> Self {
        self.body = Some(Content { media: JSON, schema: schema_of::<B> });
        self
    }
    /// A JSON body read as `B` that may be left out.
    fn optional_body<B: schemars::JsonSchema>(mut self) -> Self {
        self.body = Some(Content { media: JSON, schema: schema_of::<B> });
        self.body_optional = true;
        self
    }
    fn body_as<B: schemars::JsonSchema>(mut self, media: &'static [&'static str]) -> Self {
        self.body = Some(Content { media, schema: schema_of::<B> });
        self
    }
    /// Answers `status` with `R` as JSON.
    fn ok<R: schemars::JsonSchema>(mut self, status: u16) -> Self {
        self.ok_status = status;
        self.ok = Some(Content { media: JSON, schema: schema_of::<R> });
        self
    }
    fn ok_as<R: schemars::JsonSchema>(mut self, status: u16, media: &'static [&'static str]) -> Self {
        self.ok_status = status;
        self.ok = Some(Content { media, schema: schema_of::<R> });
        self
    }
    fn no_content(mut self) -> Self {
        self.ok_status = 204;
        self.ok = None;
        self
    }
    fn errors(mut self, e: &'static [u16]) -> Self {
        self.errors = e;
        self
    }
}

const fn param(name: &'static str, kind: &'static str, description: &'static str) -> Param {
    Param { name, kind, description, values: &[] }
}

const CONSISTENCY: Param = Param {
    name: "consistency",
    kind: "string",
    description: "`stale` reads this node's state without asking the leader",
    values: &["linearizable", "stale"],
};
const LIMIT: Param = param("limit", "integer", "items per page (default 100, at most the node's page limit)");
const CURSOR: Param = param("cursor", "string", "`next_cursor` of the previous page");
const READ: &[Param] = &[CONSISTENCY];
const PAGED: &[Param] = &[LIMIT, CURSOR, CONSISTENCY];
const EXECUTION_FILTERS: &[Param] = &[
    param("workflow", "string", "only executions of this workflow"),
    Param {
        name: "status",
        kind: "string",
        description: "only executions in this status",
        values: &["queued", "running", "succeeded", "failed", "cancelled"],
    },
    Param {
        name: "trigger",
        kind: "string",
        description: "only executions started this way",
        values: &["manual", "schedule", "backfill", "event", "webhook", "workflow"],
    },
    param("since", "date-time", "only executions created at or after this RFC 3339 time"),
    param("until", "date-time", "only executions created before this RFC 3339 time"),
    Param {
        name: "order",
        kind: "string",
        description: "`id` (the default: by workflow, then creation, the order ids sort in) or `newest` \
                      (creation time, newest first, across workflows); a cursor only continues the order it came from",
        values: &["id", "newest"],
    },
    LIMIT,
    CURSOR,
    CONSISTENCY,
];
const EVENT_QUERY: &[Param] = &[param("name", "string", "only events of this name"), LIMIT, CURSOR, CONSISTENCY];
const LOG_QUERY: &[Param] = &[
    param("task", "string", "only this task's attempts"),
    param("follow", "boolean", "stream server-sent events until the task ends"),
];

/// Every endpoint with its handler.
pub(crate) fn endpoints() -> Vec<(Op, MethodRouter<ApiState>)> {
    use Access::*;
    vec![
        (
            op(Method::GET, "/healthz", Public, "healthz", "health")
                .summary("200 while the process runs")
                .ok::<wire::Health>(200),
            get(health::healthz),
        ),
        (
            op(Method::GET, "/readyz", Public, "readyz", "health")
                .summary("200 once a leader is known and this node has applied what was committed when it started")
                .ok::<wire::Health>(200)
                .errors(&[503]),
            get(health::readyz),
        ),
        (
            op(Method::GET, "/api/openapi.json", Public, "openapi", "meta")
                .summary("This API's OpenAPI 3.1 description")
                .ok::<crate::openapi::Document>(200),
            get(openapi_json),
        ),
        (
            op(Method::GET, "/api/docs", Public, "apiDocs", "meta")
                .summary("A readable reference of this API (HTML)")
                .ok_as::<crate::openapi::Text>(200, &["text/html"]),
            get(api_docs),
        ),
        (
            op(Method::GET, "/metrics", Read, "metrics", "meta")
                .summary("Prometheus metrics of this node (text format 0.0.4)")
                .ok_as::<crate::openapi::Text>(200, &["text/plain"]),
            get(metrics::serve),
        ),
        (
            op(Method::GET, "/api/v1/cluster", Read, "showCluster", "cluster")
                .summary("This node's view of the cluster")
                .query(READ)
                .ok::<wire::ClusterView>(200)
                .errors(&[400]),
            get(cluster::show),
        ),
        (
            op(Method::POST, "/api/v1/cluster/members", Admin, "addMember", "cluster")
                .summary("Adds a node as a learner")
                .body::<wire::NewMember>()
                .ok::<wire::Members>(201)
                .errors(&[400, 409, 413]),
            post(cluster::add_learner),
        ),
        (
            op(Method::DELETE, "/api/v1/cluster/members/{id}", Admin, "removeMember", "cluster")
                .summary("Removes a member")
                .ok::<wire::Members>(200)
                .errors(&[400, 404, 409]),
            delete(cluster::remove),
        ),
        (
            op(Method::POST, "/api/v1/cluster/members/{id}/promote", Admin, "promoteMember", "cluster")
                .summary("Makes a learner a voter")
                .ok::<wire::Members>(200)
                .errors(&[400, 404, 409]),
            post(cluster::promote),
        ),
        (
            op(Method::GET, "/api/v1/cluster/snapshot", Admin, "saveSnapshot", "cluster")
                .summary("A backup: the state with every write acknowledged before the request, as an archive with a SHA-256 checksum (`loom cluster snapshot save`, restored with `loom-node restore`)")
                .ok_as::<crate::openapi::Binary>(200, &["application/octet-stream"])
                .errors(&[500, 503]),
            get(cluster::snapshot),
        ),
        (
            op(Method::GET, "/api/v1/cluster/limits", Read, "showLimits", "cluster")
                .summary("The tunable limits in force, with their ceilings")
                .query(READ)
                .ok::<wire::Limits>(200)
                .errors(&[400]),
            get(cluster::limits),
        ),
        (
            op(Method::PUT, "/api/v1/cluster/limits", Admin, "setLimits", "cluster")
                .summary("Changes tunable limits (each between 1 and its ceiling); they apply to what comes after")
                .body::<wire::LimitsChange>()
                .ok::<wire::Limits>(200)
                .errors(&[400, 413]),
            put(cluster::set_limits),
        ),
        (
            op(Method::POST, "/api/v1/tokens", Admin, "createToken", "tokens")
                .summary("Creates an API token; its secret is in this answer only")
                .body::<wire::NewToken>()
                .ok::<wire::CreatedToken>(201)
                .errors(&[400, 409, 413]),
            post(tokens::create),
        ),
        (
            op(Method::GET, "/api/v1/tokens", Admin, "listTokens", "tokens")
                .summary("Tokens (names, roles, creators; never secrets)")
                .query(PAGED)
                .ok::<wire::Page<wire::Token>>(200)
                .errors(&[400]),
            get(tokens::list),
        ),
        (
            op(Method::DELETE, "/api/v1/tokens/{name}", Admin, "revokeToken", "tokens")
                .summary("Revokes a token")
                .no_content()
                .errors(&[404]),
            delete(tokens::revoke),
        ),
        (
            op(Method::POST, "/api/v1/workflows", Operate, "putWorkflow", "workflows")
                .summary("Stores a workflow: a new one, or the next version of an existing id")
                .body_as::<linkloom_core::WorkflowSpec>(&["application/yaml", "application/json"])
                .ok::<wire::StoredWorkflow>(201)
                .errors(&[400, 413, 415, 422]),
            post(workflows::put),
        ),
        (
            op(Method::GET, "/api/v1/workflows", Read, "listWorkflows", "workflows")
                .summary("Live workflows in id order")
                .query(PAGED)
                .ok::<wire::Page<wire::Workflow>>(200)
                .errors(&[400]),
            get(workflows::list),
        ),
        (
            op(Method::GET, "/api/v1/workflows/{id}", Read, "showWorkflow", "workflows")
                .summary("A workflow at its active version")
                .query(READ)
                .ok::<wire::Workflow>(200)
                .errors(&[400, 404]),
            get(workflows::show),
        ),
        (
            op(Method::DELETE, "/api/v1/workflows/{id}", Operate, "deleteWorkflow", "workflows")
                .summary("Deletes a workflow and cancels its unfinished executions")
                .no_content()
                .errors(&[404]),
            delete(workflows::delete),
        ),
        (
            op(Method::GET, "/api/v1/workflows/{id}/versions", Read, "listWorkflowVersions", "workflows")
                .summary("Every kept version, newest first")
                .query(READ)
                .ok::<wire::Page<wire::WorkflowVersion>>(200)
                .errors(&[400, 404]),
            get(workflows::versions),
        ),
        (
            op(Method::GET, "/api/v1/workflows/{id}/versions/{version}", Read, "showWorkflowVersion", "workflows")
                .summary("One version")
                .query(READ)
                .ok::<wire::WorkflowVersion>(200)
                .errors(&[400, 404]),
            get(workflows::version),
        ),
        (
            op(Method::POST, "/api/v1/workflows/{id}/trigger", Operate, "triggerWorkflow", "executions")
                .summary("Starts an execution now, with optional params overriding the defaults")
                .optional_body::<wire::TriggerRequest>()
                .ok::<wire::Triggered>(202)
                .errors(&[400, 404, 413]),
            post(executions::trigger),
        ),
        (
            op(Method::POST, "/api/v1/workflows/{id}/pause", Operate, "pauseWorkflow", "workflows")
                .summary("Stops firing scheduled ticks")
                .ok::<wire::Paused>(200)
                .errors(&[404]),
            post(executions::pause),
        ),
        (
            op(Method::POST, "/api/v1/workflows/{id}/resume", Operate, "resumeWorkflow", "workflows")
                .summary("Fires scheduled ticks again")
                .ok::<wire::Paused>(200)
                .errors(&[404]),
            post(executions::resume),
        ),
        (
            op(Method::POST, "/api/v1/workflows/{id}/backfill", Operate, "backfillWorkflow", "executions")
                .summary("One execution per schedule tick in a range (at most 1,000; existing ticks are kept)")
                .body::<wire::Backfill>()
                .ok::<wire::Backfilled>(202)
                .errors(&[400, 404, 409, 413, 422]),
            post(executions::backfill),
        ),
        (
            op(Method::POST, "/api/v1/events", Publish, "publishEvent", "events")
                .summary("Sends an event: every workflow with a matching `event` trigger starts once per event id (202; 200 with the first outcome for an id seen within 24 h)")
                .body::<wire::PublishEvent>()
                .ok::<wire::Event>(202)
                .errors(&[400, 413, 422]),
            post(events::publish),
        ),
        (
            op(Method::GET, "/api/v1/events", Read, "listEvents", "events")
                .summary("Events remembered (the last 24 h, at most 100,000), newest first, with the executions each started")
                .query(EVENT_QUERY)
                .ok::<wire::Page<wire::Event>>(200)
                .errors(&[400]),
            get(events::list),
        ),
        (
            op(Method::POST, "/api/v1/hooks/{workflow}/{name}", Hook, "callWebhook", "events")
                .summary("A webhook call: the caller proves the secret the workflow's `webhook` trigger names; the JSON body becomes the event payload and, for a signed call, its SHA-256 the event id (a bearer call may name it with `X-Loom-Event-Id`, `X-GitHub-Delivery` or `Idempotency-Key`) (202; 200 for a repeat)")
                .body::<linkloom_core::json::Json>()
                .ok::<wire::Event>(202)
                .errors(&[400, 404, 413, 422, 500, 503]),
            post(events::hook),
        ),
        (
            op(Method::GET, "/api/v1/executions", Read, "listExecutions", "executions")
                .summary("Executions in id order, filtered")
                .query(EXECUTION_FILTERS)
                .ok::<wire::Page<wire::Execution>>(200)
                .errors(&[400]),
            get(executions::list),
        ),
        (
            op(Method::GET, "/api/v1/executions/{id}", Read, "showExecution", "executions")
                .summary("An execution with its tasks and attempts")
                .query(READ)
                .ok::<wire::Execution>(200)
                .errors(&[400, 404]),
            get(executions::show),
        ),
        (
            op(Method::POST, "/api/v1/executions/{id}/cancel", Operate, "cancelExecution", "executions")
                .summary("Cancels an unfinished execution")
                .ok::<wire::Cancelled>(200)
                .errors(&[404, 409]),
            post(executions::cancel),
        ),
        (
            op(Method::POST, "/api/v1/executions/{id}/retry", Operate, "retryExecution", "executions")
                .summary("Runs the failed, cancelled and skipped tasks of a failed or cancelled execution again")
                .ok::<wire::Retried>(200)
                .errors(&[404, 409]),
            post(executions::retry),
        ),
        (
            op(Method::GET, "/api/v1/executions/{id}/logs", Read, "executionLogs", "executions")
                .summary("Logs attempt by attempt: text, or server-sent events with follow=true")
                .query(LOG_QUERY)
                .ok_as::<crate::openapi::Text>(200, &["text/plain", "text/event-stream"])
                .errors(&[400, 404]),
            get(logs::logs),
        ),
        (
            op(Method::POST, "/api/v1/tasks/{attempt_id}/callback", Attempt, "taskCallback", "tasks")
                .summary("Completes an attempt a backend accepted with 202")
                .body::<wire::TaskAnswer>()
                .ok::<wire::AttemptFinished>(200)
                .errors(&[400, 404, 409, 413]),
            post(executions::callback),
        ),
        (
            op(Method::POST, "/api/v1/tasks/{attempt_id}/heartbeat", Attempt, "taskHeartbeat", "tasks")
                .summary("Proof of life for an attempt")
                .ok::<wire::AttemptRef>(200)
                .errors(&[400, 404, 409]),
            post(executions::heartbeat),
        ),
        (
            op(Method::GET, "/api/v1/workers", Read, "listWorkers", "workers")
                .summary("Live workers in id order")
                .query(PAGED)
                .ok::<wire::Page<wire::WorkerInfo>>(200)
                .errors(&[400]),
            get(workers::list),
        ),
        (
            op(Method::POST, "/api/v1/workers/connect", Work, "connectWorker", "workers")
                .summary(
                    "A worker connects; the answer is a stream of JSON lines (welcome, task, cancel, ping, closing)",
                )
                .body::<wire::WorkerHello>()
                .ok_as::<wire::WorkerEvent>(200, &["application/x-ndjson"])
                .errors(&[400, 409, 413]),
            post(workers::connect),
        ),
        (
            op(Method::POST, "/api/v1/workers/{worker_id}/drain", Work, "drainWorker", "workers")
                .summary("Hands this worker nothing new")
                .body::<wire::Drain>()
                .ok::<wire::Draining>(200)
                .errors(&[400, 404, 413]),
            post(workers::drain),
        ),
        (
            op(
                Method::POST,
                "/api/v1/workers/{worker_id}/attempts/{attempt_id}/heartbeat",
                Work,
                "workerHeartbeat",
                "workers",
            )
            .summary("Extends a worker attempt's lease, with optional progress and logs")
            .optional_body::<wire::Heartbeat>()
            .ok::<wire::LeaseExtended>(200)
            .errors(&[400, 404, 409, 413]),
            post(workers::heartbeat),
        ),
        (
            op(
                Method::POST,
                "/api/v1/workers/{worker_id}/attempts/{attempt_id}/complete",
                Work,
                "workerComplete",
                "workers",
            )
            .summary("Ends a worker attempt")
            .body::<wire::TaskAnswer>()
            .ok::<wire::AttemptFinished>(200)
            .errors(&[400, 404, 409, 413]),
            post(workers::complete),
        ),
        (
            op(
                Method::POST,
                "/api/v1/workers/{worker_id}/attempts/{attempt_id}/release",
                Work,
                "workerRelease",
                "workers",
            )
            .summary("Gives an attempt back unstarted, without using a retry")
            .optional_body::<wire::Release>()
            .ok::<wire::AttemptFinished>(200)
            .errors(&[400, 404, 409, 413]),
            post(workers::release),
        ),
        (
            op(Method::GET, "/api/v1/queues", Read, "listQueues", "workers")
                .summary("Per queue: waiting tasks and the workers serving it")
                .query(READ)
                .ok::<wire::QueueList>(200)
                .errors(&[400]),
            get(workers::queues),
        ),
        (
            op(Method::POST, "/raft/{kind}", Peer, "raftRpc", "internal")
                .summary("Node-to-node messages (encoded); not for clients")
                .body_as::<crate::openapi::Binary>(&["application/octet-stream"])
                .ok_as::<crate::openapi::Binary>(200, &["application/octet-stream"])
                .errors(&[400, 404, 413]),
            post(raft::serve),
        ),
    ]
}

/// The contracts alone (for the OpenAPI description).
pub(crate) fn ops() -> Vec<Op> {
    endpoints().into_iter().map(|(op, _)| op).collect()
}

pub(crate) fn router(state: ApiState) -> Router {
    let http_metrics = state.http.clone();
    let entropy = state.entropy.clone();
    let browser = state.browser.clone();
    let mut router = Router::new();
    for (op, handler) in endpoints() {
        let guard = axum::middleware::from_fn_with_state((state.clone(), op.access), authorize);
        // Inside the guard: a key is scoped to the caller it authenticated.
        let handler = if op.takes_idempotency_key() {
            handler.route_layer(axum::middleware::from_fn_with_state(state.clone(), crate::idempotency::middleware))
        } else {
            handler
        };
        // Outside the auth guard: a write without a JSON type is refused before its caller is
        // looked at. Not on routes that take an attempt's callback token (see browser.rs).
        let handler = handler.route_layer(guard);
        // A write that takes no body refuses one (documented as `{}` at most).
        let handler = if op.takes_no_body() {
            handler.route_layer(axum::middleware::from_fn(crate::body::require_no_body))
        } else {
            handler
        };
        let handler = if op.access == Access::Attempt {
            handler
        } else {
            handler
                .route_layer(axum::middleware::from_fn_with_state(browser.clone(), crate::browser::require_write_type))
        };
        router = router.route(op.path, handler);
    }
    router
        .fallback(ui_or_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(browser, crate::browser::guard))
        .layer(axum::middleware::from_fn(crate::body::keep_connection_usable))
        .layer(axum::middleware::from_fn_with_state((http_metrics, entropy), observe))
        .with_state(state)
}

/// The web UI for page paths (deep links load the app), else the API's 404.
async fn ui_or_not_found(
    axum::extract::State(state): axum::extract::State<ApiState>,
    method: Method,
    uri: Uri,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match crate::ui::respond(&state.ui, &method, uri.path()) {
        Some(page) => page,
        None => ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, format!("no route for {}", uri.path()))
            .into_response(),
    }
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// The document as this node applies it: an open node requires no credentials, so its copy
/// declares none (the committed `docs/openapi.json` is a node's with tokens).
async fn openapi_json(axum::extract::State(state): axum::extract::State<ApiState>) -> axum::Json<serde_json::Value> {
    // The document is itself the contract's output, built from the types (openapi.rs).
    if state.auth.enabled() {
        axum::Json(crate::openapi::document().clone())
    } else {
        axum::Json(crate::openapi::open_document().clone())
    }
}

async fn api_docs() -> axum::response::Html<String> {
    axum::response::Html(crate::openapi::reference_page())
}

/// A path segment that names a whole number: digits, or digits with a zero fraction (`105.0`),
/// as a JSON Schema `integer` allows.
pub(crate) fn whole_number(text: &str) -> Option<u64> {
    let (digits, fraction) = text.split_once('.').unwrap_or((text, "0"));
    let digits_only = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits_only(digits) || !digits_only(fraction) || fraction.bytes().any(|b| b != b'0') {
        return None;
    }
    digits.parse().ok()
}

/// `?consistency=stale` reads the local state without asking the leader.
#[derive(Debug, Deserialize, Default)]
pub(crate) struct ReadOptions {
    #[serde(default)]
    consistency: Option<String>,
}

impl ReadOptions {
    /// Waits for a linearizable view unless the caller asked for a stale one.
    pub(crate) async fn barrier(&self, state: &ApiState) -> Result<(), ApiError> {
        match self.consistency.as_deref() {
            None | Some("linearizable") => Ok(state.node.linearizable_barrier().await?),
            Some("stale") => Ok(()),
            Some(other) => {
                Err(ApiError::bad_request(format!("consistency `{other}` is not one of linearizable, stale")))
            }
        }
    }

    /// Refuses a `consistency` that is neither value, for views that are always this node's own.
    pub(crate) fn check(&self) -> Result<(), ApiError> {
        match self.consistency.as_deref() {
            None | Some("linearizable" | "stale") => Ok(()),
            Some(other) => {
                Err(ApiError::bad_request(format!("consistency `{other}` is not one of linearizable, stale")))
            }
        }
    }
}

/// Cursor pagination parameters shared by list endpoints.
#[derive(Debug, Deserialize, Default, Clone)]
pub(crate) struct Page {
    #[serde(default)]
    pub limit: Option<usize>,
    #[serde(default)]
    pub cursor: Option<String>,
    #[serde(default)]
    pub consistency: Option<String>,
}

/// The first `limit` items as a page, with the cursor of the next page: the key (`key_of`) of
/// the last item shown, `None` on the last page.
pub(crate) fn page_of<T>(items: impl Iterator<Item = T>, limit: usize, key_of: impl Fn(&T) -> String) -> wire::Page<T> {
    let mut items: Vec<T> = items.take(limit + 1).collect();
    if items.len() <= limit {
        return wire::Page::new(items, None);
    }
    items.truncate(limit);
    let next = items.last().map(key_of);
    wire::Page::new(items, next)
}

impl Page {
    pub(crate) fn limit(&self, max: usize) -> Result<usize, ApiError> {
        match self.limit {
            None => Ok(100.min(max)),
            Some(0) => Err(ApiError::bad_request("limit must be at least 1")),
            Some(n) if n > max => Err(ApiError::bad_request(format!("limit {n} is above the maximum {max}"))),
            Some(n) => Ok(n),
        }
    }

    /// Whether an item with this key comes after the cursor (every item does on the first page).
    pub(crate) fn after(&self, key: &str) -> bool {
        self.cursor.as_deref().is_none_or(|cursor| key > cursor)
    }

    pub(crate) fn read_options(&self) -> ReadOptions {
        ReadOptions { consistency: self.consistency.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::whole_number;

    #[test]
    fn a_whole_number_may_carry_a_zero_fraction() {
        assert_eq!(whole_number("105"), Some(105));
        assert_eq!(whole_number("105.0"), Some(105));
        assert_eq!(whole_number("105.000"), Some(105));
        for refused in ["", ".0", "105.", "105.5", "-1", "1e3", "x", "18446744073709551616"] {
            assert_eq!(whole_number(refused), None, "{refused}");
        }
    }
}
