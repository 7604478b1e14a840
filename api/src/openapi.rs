//! The OpenAPI 3.1 description of the API, built from the route table (routes/mod.rs) and the
//! schemas below, served at `/api/openapi.json` and rendered as HTML at `/api/docs`.
//!
//! The route table is the single source: each endpoint's method, path, parameters, body, answer,
//! errors and the roles that may call it come from the same entry that registers and guards the
//! handler. `docs/openapi.json` is this document committed; a test fails when they differ.

use std::fmt::Write as _;
use std::sync::OnceLock;

use axum::http::Method;
use serde_json::{json, Map, Value};

use crate::auth::Access;
use crate::routes::{ops, Op};

/// Reason phrases and the error codes each status carries.
fn error_description(status: u16) -> &'static str {
    match status {
        400 => "Bad request (`bad_request`, `invalid_params`, `invalid_worker`, `invalid_token`, `invalid_limits`, `invalid_idempotency_key`)",
        401 => "No valid token (`unauthenticated`, `invalid_token`)",
        403 => "Refused: the token's role may not do this, or a worker token is not the worker's (`forbidden`); a browser write from another site (`cross_origin`); a `Host` this node does not answer for (`host_not_allowed`)",
        404 => "Not found (`not_found`, `worker_not_connected`)",
        408 => "The request body came too slowly (`request_timeout`)",
        409 => "Conflicts with the current state (`conflict`, `stale_attempt`, `execution_finished`, `task_not_ready`, `lease_conflict`, `worker_unavailable`, `token_exists`, `membership_conflict`)",
        413 => "Body or stored value too large (`too_large`)",
        415 => "A write without a JSON or YAML Content-Type, even with an empty body (`unsupported_media_type`)",
        422 => "Invalid workflow (`invalid_spec`; `details.problems` lists `{path, message}`), or an `Idempotency-Key` already used for a different request (`idempotency_key_reused`)",
        429 => "Too many requests for this token (`rate_limited`; see `Retry-After`), or too many followed log streams (`too_many_streams`)",
        500 => "Internal error (`internal`)",
        503 => "No leader within the wait, or not ready (`unavailable`, `not_ready`)",
        _ => "Error",
    }
}

/// The document, built once: a node with tokens (`docs/openapi.json`).
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(build)
}

/// The document as an open node serves it: no operation needs a token (the cluster secret and
/// callback tokens still apply where the node has them), so none declares one, nor the 401 of
/// a missing one.
pub fn open_document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = build();
        if let Some(paths) = doc["paths"].as_object_mut() {
            for operation in paths.values_mut().filter_map(Value::as_object_mut).flat_map(|p| p.values_mut()) {
                if operation["security"] == json!([{"bearer": []}]) {
                    operation["security"] = json!([]);
                    if let Some(responses) = operation["responses"].as_object_mut() {
                        responses.remove("401");
                    }
                }
            }
        }
        doc["info"]["description"] = json!(format!(
            "{} This copy is served by an open node (no LOOM_ADMIN_TOKEN): no operation needs a token.",
            doc["info"]["description"].as_str().unwrap_or_default()
        ));
        doc
    })
}

fn build() -> Value {
    let mut paths = Map::new();
    for op in ops() {
        let entry = paths.entry(op.path.to_string()).or_insert_with(|| json!({}));
        entry[op.method.as_str().to_ascii_lowercase()] = operation(&op);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Link Loom API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every node serves this API. Errors are `{\"error\": {\"code\", \"message\", \"details\"}}`; every answer carries `X-Request-Id`. With LOOM_ADMIN_TOKEN set, every endpoint but /healthz, /readyz and the API description needs `Authorization: Bearer <token>`; `x-loom-roles` on each operation lists the roles allowed.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": "http://127.0.0.1:8080", "description": "a local node (`--dev`)"}],
        "tags": [
            {"name": "health"}, {"name": "meta"}, {"name": "cluster"}, {"name": "tokens"}, {"name": "workflows"},
            {"name": "executions"}, {"name": "tasks"}, {"name": "workers"}, {"name": "internal"},
        ],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "An API token, or the node's LOOM_ADMIN_TOKEN"},
                "clusterSecret": {"type": "apiKey", "in": "header", "name": "X-Loom-Cluster-Secret"},
                "callbackToken": {"type": "http", "scheme": "bearer", "description": "The attempt's own `callback_token`, sent to the backend in the task request; good for that one attempt only"},
            },
            "headers": {
                "X-Request-Id": {"description": "The caller's request id, or one the node chose", "schema": {"type": "string"}},
                "Idempotent-Replayed": {"description": "`true` when this answer is the first answer to an earlier request with the same `Idempotency-Key` (which was not applied again)", "schema": {"type": "string", "enum": ["true"]}},
            },
            "parameters": {
                "Idempotency-Key": {
                    "name": "Idempotency-Key", "in": "header", "required": false,
                    "description": "Makes retries of this request apply once: the same key (per token) within the cluster's request window (`request_window_secs`) answers with the first answer and changes nothing; with a different request it is refused (422 `idempotency_key_reused`). 1 to 255 visible ASCII characters.",
                    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
                },
            },
            "responses": error_responses(),
            "schemas": schemas(),
        },
    })
}

/// One shared response per error status, referenced by the operations.
fn error_responses() -> Value {
    [400u16, 401, 403, 404, 408, 409, 413, 415, 422, 429, 500, 503]
        .into_iter()
        .map(|status| {
            let response = json!({
                "description": error_description(status),
                "headers": {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}},
                "content": {"application/json": {"schema": schema_ref("Error")}},
            });
            (format!("Error{status}"), response)
        })
        .collect::<Map<_, _>>()
        .into()
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// A path parameter's schema: what the handler parses it as.
fn path_schema(path: &str, name: &str) -> Value {
    match name {
        // `Path<u32>`: a version number, from 1.
        "version" => json!({"type": "integer", "minimum": 1, "maximum": u32::MAX}),
        // `Path<u64>`: a node id, from 1.
        "id" if path.starts_with("/api/v1/cluster/members/") => json!({"type": "integer", "minimum": 1}),
        // Attempt ids are numbers the cluster hands out.
        "attempt_id" => json!({"type": "integer", "minimum": 0}),
        "kind" if path.starts_with("/raft/") => {
            json!({"type": "string", "enum": ["append", "vote", "snapshot", "leader"]})
        }
        _ => json!({"type": "string", "minLength": 1}),
    }
}

fn operation(op: &Op) -> Value {
    let mut parameters: Vec<Value> = path_params(op.path)
        .into_iter()
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": path_schema(op.path, name)}))
        .collect();
    for q in op.query {
        let mut schema = match q.kind {
            "date-time" => json!({"type": "string", "format": "date-time", "minLength": 1}),
            kind => json!({"type": kind}),
        };
        if !q.values.is_empty() {
            schema["enum"] = json!(q.values);
        }
        if q.name == "limit" {
            // At most the node's page limit (LOOM_MAX_PAGE_SIZE); the default one is documented.
            schema["minimum"] = json!(1);
            schema["maximum"] = json!(crate::ApiLimits::default().max_page_size);
        }
        parameters.push(
            json!({"name": q.name, "in": "query", "required": false, "description": q.description, "schema": schema}),
        );
    }
    if op.takes_idempotency_key() {
        parameters.push(json!({"$ref": "#/components/parameters/Idempotency-Key"}));
    }
    let mut request_id = json!({"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}});
    if op.takes_idempotency_key() {
        request_id["Idempotent-Replayed"] = json!({"$ref": "#/components/headers/Idempotent-Replayed"});
    }
    let mut responses = Map::new();
    let ok_description = match op.ok_status {
        201 => "Created",
        202 => "Accepted",
        204 => "No content",
        _ => "OK",
    };
    let mut ok = json!({"description": ok_description, "headers": request_id});
    if let Some(content) = op.ok {
        ok["content"] =
            content.media.iter().map(|m| (m.to_string(), json!({"schema": schema_ref(content.schema)}))).collect();
    }
    responses.insert(op.ok_status.to_string(), ok);
    let mut errors: Vec<u16> = op.errors.to_vec();
    if op.takes_idempotency_key() {
        // A malformed key (400), or a key reused for another request (422).
        errors.extend([400, 422]);
    }
    // The browser guard (api/src/browser.rs) runs before every route but the probes: a `Host` the
    // node does not answer for, and on writes a cross-site origin or a missing JSON type.
    if op.path != "/healthz" && op.path != "/readyz" {
        errors.push(403);
    }
    if matches!(op.method, Method::POST | Method::PUT | Method::PATCH) {
        errors.extend([403, 415]);
    }
    if op.body.is_some() {
        // A body over the limit, or one that trickles in.
        errors.extend([408, 413]);
    }
    match op.access {
        Access::Public => {}
        Access::Peer | Access::Attempt => errors.push(401),
        _ => errors.extend([401, 403, 429]),
    }
    if op.access != Access::Public || op.path == "/readyz" {
        errors.extend([500, 503]);
    }
    errors.sort_unstable();
    errors.dedup();
    for status in errors {
        responses.insert(status.to_string(), json!({"$ref": format!("#/components/responses/Error{status}")}));
    }
    let mut operation = json!({
        "operationId": op.id,
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": parameters,
        "responses": responses,
        "x-loom-roles": op.access.roles(),
    });
    operation["security"] = match op.access {
        Access::Public => json!([]),
        Access::Peer => json!([{"clusterSecret": []}]),
        Access::Attempt => json!([{"callbackToken": []}]),
        _ => json!([{"bearer": []}]),
    };
    if let Some(body) = op.body {
        operation["requestBody"] = json!({
            "required": !op.body_optional,
            "content": body.media.iter().map(|m| (m.to_string(), json!({"schema": schema_ref(body.schema)}))).collect::<Map<_, _>>(),
        });
    }
    operation
}

fn path_params(path: &str) -> Vec<&str> {
    path.split('/').filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect()
}

fn object(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "required": required, "properties": properties})
}

fn strict(required: &[&str], properties: Value) -> Value {
    let mut o = object(required, properties);
    o["additionalProperties"] = json!(false);
    o
}

fn list_of(item: &str) -> Value {
    object(
        &["items"],
        json!({"items": {"type": "array", "items": schema_ref(item)}, "next_cursor": {"type": ["string", "null"]}}),
    )
}

fn schemas() -> Value {
    let time = json!({"type": "string", "format": "date-time"});
    let maybe_time = json!({"type": ["string", "null"], "format": "date-time"});
    // Queue names: linkloom_core::ids::is_slug.
    let slug = json!({"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,62}$"});
    let token_queues = json!({
        "type": ["array", "null"], "items": slug.clone(), "minItems": 1,
        "description": "a worker token limited to these queues (absent or null: any queue)",
    });
    let duration = json!({"oneOf": [
        {"type": "string", "pattern": "^[0-9]+(ms|s|m|h|d)$", "examples": ["30s", "5m"]},
        {"type": "integer", "minimum": 0, "description": "milliseconds"},
    ]});
    let retry = strict(
        &[],
        json!({
            "max_attempts": {"type": "integer", "minimum": 1},
            "backoff": duration, "max_backoff": duration, "multiplier": {"type": "number", "minimum": 1},
        }),
    );
    let task_spec = strict(
        &["id", "type"],
        json!({
            "id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
            "type": {"enum": ["http", "shell", "worker"]},
            "description": {"type": "string"},
            "depends_on": {"type": "array", "items": {"type": "string"}},
            "when": {"enum": ["all_success", "all_done", "any_failed"]},
            "timeout": duration,
            "retry": retry,
            "input": {"description": "any JSON, templated"},
            "url": {"type": "string", "description": "http: the backend URL"},
            "method": {"type": "string", "description": "http: POST when absent"},
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "command": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]},
            "env": {"type": "object", "additionalProperties": {"type": "string"}},
            "workdir": {"type": "string"},
            "queue": {"type": "string", "description": "worker: the queue"},
        }),
    );
    let spec = strict(
        &["id", "tasks"],
        json!({
            "id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
            "description": {"type": "string"},
            "schedule": {"type": "string", "description": "crontab: 5 fields, or 6 with seconds first"},
            "timezone": {"type": "string", "minLength": 1, "description": "IANA name; UTC when absent"},
            "concurrency": {"enum": ["allow", "forbid", "buffer_one", "replace"]},
            "catchup": {"enum": ["none", "latest", "all"]},
            "params": {"type": "object"},
            "defaults": strict(&[], json!({"timeout": duration, "retry": retry})),
            "execution_timeout": duration,
            "tasks": {"type": "array", "minItems": 1, "items": task_spec},
        }),
    );
    let attempt = object(
        &["id", "n", "status"],
        json!({
            "id": {"type": "string"}, "n": {"type": "integer"},
            "status": {"enum": ["running", "succeeded", "failed", "timed_out", "lost", "cancelled", "released"]},
            "node_id": {"type": "integer"}, "worker_id": {"type": ["string", "null"]},
            "started_at": time, "finished_at": maybe_time, "last_heartbeat_at": maybe_time,
            "lease_expires_at": maybe_time, "deadline": maybe_time, "progress": {}, "error": {"type": ["string", "null"]},
        }),
    );
    let by =
        json!({"type": ["string", "null"], "description": "token name of the caller (null: open node or the cluster)"});
    let workflow = object(
        &["id"],
        json!({
            "id": {"type": "string"}, "version": {"type": "integer"}, "paused": {"type": "boolean"},
            "next_fire_at": {"type": ["string", "null"], "format": "date-time", "description": "the schedule's next tick after now; null when paused or unscheduled"},
            "last_tick_at": {"type": ["string", "null"], "format": "date-time", "description": "the latest tick the scheduler handled (fired or skipped)"},
            "created_at": time, "updated_at": time, "created_by": by, "updated_by": by,
            "versions": {"type": "array", "items": {"type": "integer"}}, "spec": schema_ref("WorkflowSpec"),
            "deleted": {"type": "boolean"},
        }),
    );
    let answer = object(
        &["status"],
        json!({
            "status": {"enum": ["succeeded", "failed"]},
            "output": {"description": "any JSON (succeeded)"},
            "error": {"type": "string", "description": "failed: why"},
            "retryable": {"type": "boolean", "description": "failed: false fails the task at once"},
            "logs": {"type": "string"},
        }),
    );
    json!({
        "Error": strict(&["error"], json!({"error": strict(&["code", "message", "details"], json!({
            "code": {"type": "string"}, "message": {"type": "string"}, "details": {},
        }))})),
        "Any": {},
        "Text": {"type": "string"},
        "Binary": {"type": "string", "contentEncoding": "binary"},
        "Status": object(&["status"], json!({"status": {"type": "string"}})),
        "Cluster": object(&["node_id", "members", "auth"], json!({
            "node_id": {"type": "integer"}, "leader_id": {"type": ["integer", "null"]}, "term": {"type": "integer"},
            "state": {"type": "string"}, "last_log_index": {"type": ["integer", "null"]},
            "last_applied": {"type": ["integer", "null"]}, "members": {"type": "array"},
            "replication": {
                "type": ["object", "null"],
                "description": "the leader's view: how many entries each member's log lacks (null if the leader did not answer within a second)",
                "properties": {
                    "leader_id": {"type": "integer"}, "last_log_index": {"type": ["integer", "null"]},
                    "members": {"type": "array", "items": object(&["id"], json!({
                        "id": {"type": "integer"}, "matched_index": {"type": ["integer", "null"]},
                        "behind": {"type": ["integer", "null"]},
                    }))},
                },
            },
            "replication_error": {"type": ["string", "null"]},
            "auth": object(&["enabled"], json!({"enabled": {"type": "boolean"}, "peers_authenticated": {"type": "boolean"}, "warning": {"type": ["string", "null"]}})),
            "engine": {},
        })),
        "Limits": object(&["max_tasks_per_workflow", "max_params_bytes", "max_output_bytes", "max_log_bytes_per_attempt", "request_window_secs", "max_remembered_requests", "ceilings"], json!({
            "max_tasks_per_workflow": {"type": "integer"}, "max_params_bytes": {"type": "integer"},
            "max_output_bytes": {"type": "integer"}, "max_log_bytes_per_attempt": {"type": "integer"},
            "request_window_secs": {"type": "integer"}, "max_remembered_requests": {"type": "integer"},
            "ceilings": {"type": "object", "additionalProperties": {"type": "integer"}},
        })),
        "LimitsChange": strict(&[], json!({
            "max_tasks_per_workflow": {"type": "integer", "minimum": 1}, "max_params_bytes": {"type": "integer", "minimum": 1},
            "max_output_bytes": {"type": "integer", "minimum": 1}, "max_log_bytes_per_attempt": {"type": "integer", "minimum": 1},
            "request_window_secs": {"type": "integer", "minimum": 1}, "max_remembered_requests": {"type": "integer", "minimum": 1},
        })),
        "NewMember": strict(&["id", "addr"], json!({"id": {"type": "integer", "minimum": 1}, "addr": {"type": "string", "pattern": "^[^\\s]+:[0-9]{1,5}$", "description": "host:port"}})),
        "Members": object(&["members"], json!({"members": {"type": "array", "items": object(&["id", "addr", "voter"], json!({
            "id": {"type": "integer"}, "addr": {"type": "string"}, "voter": {"type": "boolean"},
        }))}})),
        "NewToken": strict(&["name", "role"], json!({
            "name": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
            "role": {"enum": ["admin", "operator", "viewer", "worker"]},
            "queues": token_queues.clone(),
        })),
        "CreatedToken": object(&["name", "role", "token"], json!({
            "name": {"type": "string"}, "role": {"type": "string"}, "queues": token_queues.clone(),
            "token": {"type": "string", "description": "the secret; shown only in this answer"}, "created_at": time,
        })),
        "Token": object(&["name", "role"], json!({"name": {"type": "string"}, "role": {"type": "string"}, "queues": token_queues, "created_at": time, "created_by": by})),
        "TokenList": list_of("Token"),
        "WorkflowSpec": spec,
        "StoredWorkflow": object(&["id", "version"], json!({"id": {"type": "string"}, "version": {"type": "integer"}, "created_at": time, "spec": schema_ref("WorkflowSpec")})),
        "Workflow": workflow,
        "WorkflowList": list_of("Workflow"),
        "WorkflowVersion": object(&["id", "version"], json!({
            "id": {"type": "string"}, "version": {"type": "integer"}, "active": {"type": "boolean"},
            "created_at": time, "created_by": by, "spec": schema_ref("WorkflowSpec"),
        })),
        "WorkflowVersionList": list_of("WorkflowVersion"),
        "TriggerBody": strict(&[], json!({"params": {"type": ["object", "null"]}})),
        "Triggered": object(&["execution_id"], json!({"execution_id": {"type": "string"}})),
        "Paused": object(&["id", "paused"], json!({"id": {"type": "string"}, "paused": {"type": "boolean"}})),
        "BackfillBody": strict(&["from", "to"], json!({"from": time, "to": time})),
        "Backfilled": object(&["execution_ids"], json!({
            "execution_ids": {"type": "array", "items": {"type": "string"}}, "created": {"type": "integer"}, "existing": {"type": "integer"},
        })),
        "Execution": object(&["id", "workflow_id", "status", "tasks"], json!({
            "id": {"type": "string"}, "workflow_id": {"type": "string"}, "workflow_version": {"type": "integer"},
            "status": {"enum": ["queued", "running", "succeeded", "failed", "cancelled"]},
            "trigger": {"enum": ["manual", "schedule", "backfill"]},
            "scheduled_at": maybe_time, "created_at": time, "started_at": maybe_time, "finished_at": maybe_time,
            "params": {"type": "object"}, "created_by": by,
            "audit": {"type": "array", "items": object(&["action", "by", "at"], json!({
                "action": {"enum": ["cancelled", "retried"]}, "by": by, "at": time,
            }))},
            "owner_node_id": {"type": ["integer", "null"]}, "blocked_by": {"type": ["string", "null"]},
            "tasks": {"type": "array", "items": object(&["id", "status", "attempts"], json!({
                "id": {"type": "string"},
                "status": {"enum": ["pending", "running", "retrying", "succeeded", "failed", "skipped", "cancelled"]},
                "output": {}, "retry_at": maybe_time, "attempts": {"type": "array", "items": attempt},
            }))},
        })),
        "ExecutionList": list_of("Execution"),
        "Cancelled": object(&["id", "status"], json!({"id": {"type": "string"}, "status": {"const": "cancelled"}})),
        "Retried": object(&["id", "tasks_reset"], json!({"id": {"type": "string"}, "tasks_reset": {"type": "integer"}})),
        "TaskAnswer": answer,
        "AttemptFinished": object(&["attempt_id", "task_status", "execution_status"], json!({
            "attempt_id": {"type": "string"}, "task_status": {"type": "string"}, "execution_status": {"type": "string"},
        })),
        "AttemptRef": object(&["attempt_id"], json!({"attempt_id": {"type": "string"}})),
        "Worker": object(&["id", "node_id", "queues"], json!({
            "id": {"type": "string"}, "node_id": {"type": "integer"}, "queues": {"type": "array", "items": {"type": "string"}},
            "concurrency": {"type": "integer"}, "running": {"type": "integer"}, "draining": {"type": "boolean"},
            "connected_at": time, "last_seen_at": time,
        })),
        "WorkerList": list_of("Worker"),
        "WorkerHello": object(&["id", "queues", "concurrency"], json!({
            "id": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"},
            "queues": {"type": "array", "minItems": 1, "maxItems": 64, "items": slug},
            "concurrency": {"type": "integer", "minimum": 1, "maximum": 1024},
            "running": {"type": "array", "items": {"type": "string"}, "description": "attempt ids the worker still runs (after a reconnect)"},
        })),
        "WorkerEvent": object(&["type"], json!({"type": {"enum": ["welcome", "task", "cancel", "ping", "closing"]}})),
        "Drain": strict(&["session"], json!({"session": {"type": "string"}})),
        "Draining": object(&["id", "draining"], json!({"id": {"type": "string"}, "draining": {"type": "boolean"}})),
        "WorkerHeartbeat": strict(&[], json!({"progress": {}, "logs": {"type": "string"}})),
        "LeaseExtended": object(&["attempt_id"], json!({"attempt_id": {"type": "string"}, "lease_expires_at": maybe_time})),
        "Release": strict(&[], json!({"reason": {"type": "string"}})),
        "QueueList": object(&["items"], json!({"items": {"type": "array", "items": object(&["queue"], json!({
            "queue": {"type": "string"}, "waiting": {"type": "integer"}, "oldest_waiting_since": maybe_time,
            "oldest_waiting_ms": {"type": ["integer", "null"]}, "workers": {"type": "integer"},
            "capacity": {"type": "integer"}, "running": {"type": "integer"},
        }))}})),
    })
}

/// `/api/docs`: the description as one self-contained HTML page (no scripts, no outside assets).
pub fn reference_page() -> String {
    let doc = document();
    let mut html = String::from(concat!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Link Loom API</title>",
        "<style>body{font:15px/1.5 system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#222}",
        "code,pre{font:13px ui-monospace,monospace}pre{background:#f5f5f5;padding:.6rem;overflow:auto}",
        "section{border-top:1px solid #ddd;padding:.6rem 0}.m{font-weight:700;display:inline-block;width:4.5rem}",
        ".roles{color:#555}table{border-collapse:collapse}td{padding:0 .8rem 0 0;vertical-align:top}</style></head><body>",
        "<h1>Link Loom API</h1>",
    ));
    let _ = write!(
        html,
        "<p>{}</p><p>Machine-readable: <a href=\"/api/openapi.json\">/api/openapi.json</a> (OpenAPI 3.1).</p>",
        escape(doc["info"]["description"].as_str().unwrap_or_default())
    );
    for op in ops() {
        let _ = write!(
            html,
            "<section id=\"{id}\"><div><span class=\"m\">{method}</span><code>{path}</code></div><p>{summary}</p>",
            id = op.id,
            method = op.method,
            path = escape(op.path),
            summary = escape(op.summary),
        );
        let roles = op.access.roles();
        let who = match op.access {
            Access::Public => "anyone".to_string(),
            Access::Peer => "other nodes (cluster secret)".to_string(),
            Access::Attempt => "the attempt's backend (its callback token)".to_string(),
            _ => roles.join(", "),
        };
        let _ = write!(html, "<p class=\"roles\">Roles: {}</p><table>", escape(&who));
        for q in op.query {
            let _ = write!(html, "<tr><td><code>?{}</code></td><td>{}</td></tr>", q.name, escape(q.description));
        }
        if let Some(body) = op.body {
            let _ = write!(
                html,
                "<tr><td>body</td><td><a href=\"#schema-{s}\">{s}</a> ({m}){opt}</td></tr>",
                s = body.schema,
                m = body.media.join(", "),
                opt = if op.body_optional { ", optional" } else { "" }
            );
        }
        let answer = op.ok.map(|c| format!("<a href=\"#schema-{s}\">{s}</a>", s = c.schema)).unwrap_or_default();
        let _ = write!(html, "<tr><td>answer</td><td>{} {}</td></tr>", op.ok_status, answer);
        let path_item = &doc["paths"][op.path][op.method.as_str().to_ascii_lowercase()];
        if let Some(responses) = path_item["responses"].as_object() {
            for status in responses.keys().filter_map(|s| s.parse::<u16>().ok()).filter(|s| *s >= 400) {
                let _ = write!(html, "<tr><td>{status}</td><td>{}</td></tr>", escape(error_description(status)));
            }
        }
        html.push_str("</table></section>");
    }
    html.push_str("<h2>Schemas</h2>");
    if let Some(schemas) = doc["components"]["schemas"].as_object() {
        for (name, schema) in schemas {
            let pretty = serde_json::to_string_pretty(schema).unwrap_or_default();
            let _ =
                write!(html, "<section id=\"schema-{name}\"><h3>{name}</h3><pre>{}</pre></section>", escape(&pretty));
        }
    }
    html.push_str("</body></html>");
    html
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_nodes_document_asks_for_no_token() {
        let operations = |doc: &'static Value| {
            doc["paths"]
                .as_object()
                .into_iter()
                .flat_map(|p| p.values())
                .flat_map(|p| p.as_object().into_iter().flat_map(|o| o.values()))
                .collect::<Vec<_>>()
        };
        let bearer = json!([{"bearer": []}]);
        let secured = operations(document()).into_iter().filter(|o| o["security"] == bearer).count();
        assert!(secured > 20, "the committed document asks for tokens");
        for operation in operations(open_document()) {
            assert_ne!(operation["security"], bearer, "{}", operation["operationId"]);
        }
        let peer = &open_document()["paths"]["/raft/{kind}"]["post"];
        assert_eq!(peer["security"], json!([{"clusterSecret": []}]), "peers still prove the cluster secret");
    }

    #[test]
    fn every_operation_documents_its_errors_and_roles() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        for op in ops() {
            let item = &doc["paths"][op.path][op.method.as_str().to_ascii_lowercase()];
            assert!(item.is_object(), "{} {} missing", op.method, op.path);
            assert!(!op.summary.is_empty(), "{} has no summary", op.id);
            let responses = item["responses"].as_object().expect("responses");
            if !matches!(op.access, Access::Public) {
                assert!(responses.contains_key("401"), "{} lacks 401", op.id);
            }
            if matches!(op.access, Access::Read | Access::Operate | Access::Admin | Access::Work) {
                assert!(responses.contains_key("403") && responses.contains_key("429"), "{} lacks 403/429", op.id);
            }
        }
    }

    #[test]
    fn every_reference_resolves() {
        let doc = document();
        let text = doc.to_string();
        for kind in ["schemas", "responses", "headers"] {
            let known = doc["components"][kind].as_object().expect("components");
            for piece in text.split(&format!("#/components/{kind}/")).skip(1) {
                let name: String = piece.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
                assert!(known.contains_key(&name), "dangling $ref to {kind}/{name}");
            }
        }
    }

    #[test]
    fn operation_ids_are_unique() {
        let mut ids: Vec<&str> = ops().iter().map(|op| op.id).collect();
        let before = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), before);
    }
}
