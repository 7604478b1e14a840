//! The OpenAPI 3.1 description of the API, built from the route table (routes/mod.rs) and the
//! wire types (`linkloom-wire`), served at `/api/openapi.json` and rendered as HTML at `/api/docs`.
//!
//! Nothing here describes a shape by hand: each endpoint's method, path, parameters, body, answer,
//! errors and the roles that may call it come from the same entry that registers and guards the
//! handler, and every schema is derived (schemars) from the Rust type the handler reads or answers
//! with. Request bodies are described as the server reads them (a field with a default is
//! optional) and answers as it writes them (every field it always sends is required), so the two
//! views of one type cannot disagree. `docs/openapi.json` is this document committed; a test
//! fails when they differ.

use std::fmt::Write as _;
use std::sync::OnceLock;

use axum::http::Method;
use schemars::generate::SchemaSettings;
use schemars::transform::RecursiveTransform;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
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

/// Where the generated schemas live in the document.
const SCHEMAS: &str = "/components/schemas";

/// The generators of request and of answer schemas (see the module docs).
struct Generators {
    requests: SchemaGenerator,
    answers: SchemaGenerator,
}

impl Generators {
    fn new() -> Self {
        let settings = || {
            let mut settings = SchemaSettings::draft2020_12();
            settings.definitions_path = SCHEMAS.into();
            settings.meta_schema = None;
            settings
        };
        // A default is what the server assumes for a field a request leaves out; answers always
        // carry their fields, so their schemas show none.
        let no_defaults = RecursiveTransform(|schema: &mut Schema| {
            schema.remove("default");
        });
        Generators {
            requests: settings().for_deserialize().with_transform(RecursiveTransform(integer_bounds)).into_generator(),
            answers: settings()
                .for_serialize()
                .with_transform(no_defaults)
                .with_transform(RecursiveTransform(integer_bounds))
                .into_generator(),
        }
    }

    /// Every schema either generator made, by name. A type used both ways must describe itself
    /// the same way both ways; a difference is a contract bug and stops the build of the document.
    fn into_schemas(mut self) -> Map<String, Value> {
        let mut schemas = self.requests.take_definitions(true);
        for (name, schema) in self.answers.take_definitions(true) {
            match schemas.get(&name) {
                Some(other) if *other != schema => {
                    panic!("`{name}` is both a request and an answer type, and describes itself differently as each")
                }
                _ => {
                    schemas.insert(name, schema);
                }
            }
        }
        schemas
    }
}

/// Gives an integer schema the bounds of its Rust type where it states none: a JSON number past
/// what the field holds (a node id of 2^70, say) is refused by the node, so the document says so.
fn integer_bounds(schema: &mut Schema) {
    let (min, max): (Value, Value) = match schema.get("format").and_then(Value::as_str) {
        Some("uint8") => (json!(0), json!(u8::MAX)),
        Some("uint16") => (json!(0), json!(u16::MAX)),
        Some("uint32") => (json!(0), json!(u32::MAX)),
        Some("uint64") | Some("uint") => (json!(0), json!(u64::MAX)),
        Some("int32") => (json!(i32::MIN), json!(i32::MAX)),
        Some("int64") | Some("int") => (json!(i64::MIN), json!(i64::MAX)),
        _ => return,
    };
    if schema.get("minimum").is_none() {
        schema.insert("minimum".into(), min);
    }
    if schema.get("maximum").is_none() {
        schema.insert("maximum".into(), max);
    }
}

/// The OpenAPI document itself (`/api/openapi.json`).
pub(crate) struct Document;

impl JsonSchema for Document {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "OpenApiDocument".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "object", "description": "An OpenAPI 3.1 document", "required": ["openapi", "paths"]})
    }
}

/// The body of a write that reads none.
pub(crate) struct NoBody;

impl JsonSchema for NoBody {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "NoBody".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "maxProperties": 0,
            "description": "Nothing to send: `{}`, or no body at all, with `Content-Type: application/json`",
        })
    }
}

/// Text: a page, Prometheus metrics, or log lines.
pub(crate) struct Text;

impl JsonSchema for Text {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Text".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string"})
    }
}

/// Bytes in the nodes' own encoding.
pub(crate) struct Binary;

impl JsonSchema for Binary {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Binary".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "contentEncoding": "binary"})
    }
}

fn build() -> Value {
    let mut generators = Generators::new();
    let mut paths = Map::new();
    for op in ops() {
        let entry = paths.entry(op.path.to_string()).or_insert_with(|| json!({}));
        entry[op.method.as_str().to_ascii_lowercase()] = operation(&op, &mut generators);
    }
    let error = generators.answers.subschema_for::<linkloom_wire::ErrorBody>();
    // Answers carry a spec as JSON (so older clients keep fields they do not know) and refer to
    // the schema of the spec the server reads.
    let _ = generators.requests.subschema_for::<linkloom_core::WorkflowSpec>();
    let schemas = generators.into_schemas();
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
                "webhookSignature": {"type": "apiKey", "in": "header", "name": "X-Hub-Signature-256", "description": "The webhook's shared secret (named by the trigger, held in the nodes' `LOOM_WEBHOOK_SECRETS`) proven as the trigger's `auth` says: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>` (github), `Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of \"t.body\">` (stripe), or `Authorization: Bearer <secret>` (bearer)"},
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
            "responses": error_responses(&error),
            "schemas": schemas,
        },
    })
}

/// One shared response per error status, referenced by the operations.
fn error_responses(error: &Schema) -> Value {
    [400u16, 401, 403, 404, 408, 409, 413, 415, 422, 429, 500, 503]
        .into_iter()
        .map(|status| {
            let response = json!({
                "description": error_description(status),
                "headers": {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}},
                "content": {"application/json": {"schema": error}},
            });
            (format!("Error{status}"), response)
        })
        .collect::<Map<_, _>>()
        .into()
}

/// A path parameter's schema: what the handler parses it as.
fn path_schema(path: &str, name: &str) -> Value {
    match name {
        // `Path<u32>`: a version number, from 1.
        "version" => json!({"type": "integer", "minimum": 1, "maximum": u32::MAX}),
        // `Path<u64>`: a node id, from 1.
        "id" if path.starts_with("/api/v1/cluster/members/") => {
            json!({"type": "integer", "minimum": 1, "maximum": u64::MAX})
        }
        // Attempt ids are numbers the cluster hands out.
        "attempt_id" => json!({"type": "integer", "minimum": 0, "maximum": u64::MAX}),
        "kind" if path.starts_with("/raft/") => {
            json!({"type": "string", "enum": ["append", "vote", "snapshot", "snapshot-part", "leader"]})
        }
        _ => json!({"type": "string", "minLength": 1}),
    }
}

fn operation(op: &Op, generators: &mut Generators) -> Value {
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
        let schema = (content.schema)(&mut generators.answers);
        ok["content"] = content.media.iter().map(|m| (m.to_string(), json!({"schema": schema}))).collect();
    }
    // Events answer 200, with the same body, for an id seen before (and 202 for a new one).
    if op.ok_status == 202 && op.tag == "events" {
        let mut repeat = ok.clone();
        repeat["description"] = json!("OK: a repeat of an id seen within the event window; nothing new started");
        responses.insert("200".to_string(), repeat);
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
        Access::Peer | Access::Attempt | Access::Hook => errors.push(401),
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
        Access::Hook => json!([{"webhookSignature": []}]),
        _ => json!([{"bearer": []}]),
    };
    if op.takes_no_body() {
        // The browser guard wants a JSON type on every write, so a client sends `{}` (or
        // nothing) with `Content-Type: application/json`.
        let schema = generators.requests.subschema_for::<NoBody>();
        operation["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": schema}}});
    }
    if let Some(body) = op.body {
        let schema = (body.schema)(&mut generators.requests);
        // An optional JSON body still needs its type (see above): the document asks for the body,
        // which may be `{}`; the server also takes nothing.
        let write_type = op.access != Access::Attempt && body.media.contains(&"application/json");
        operation["requestBody"] = json!({
            "required": !op.body_optional || write_type,
            "content": body.media.iter().map(|m| (m.to_string(), json!({"schema": schema}))).collect::<Map<_, _>>(),
        });
    }
    operation
}

fn path_params(path: &str) -> Vec<&str> {
    path.split('/').filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect()
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
            Access::Hook => "the webhook's caller (its signature or bearer secret)".to_string(),
            _ => roles.join(", "),
        };
        let _ = write!(html, "<p class=\"roles\">Roles: {}</p><table>", escape(&who));
        for q in op.query {
            let _ = write!(html, "<tr><td><code>?{}</code></td><td>{}</td></tr>", q.name, escape(q.description));
        }
        let path_item = &doc["paths"][op.path][op.method.as_str().to_ascii_lowercase()];
        if let Some(body) = op.body {
            let name = schema_name(&path_item["requestBody"]["content"]);
            let _ = write!(
                html,
                "<tr><td>body</td><td><a href=\"#schema-{name}\">{name}</a> ({m}){opt}</td></tr>",
                m = body.media.join(", "),
                opt = if op.body_optional { ", optional" } else { "" }
            );
        }
        let answer = match op.ok {
            Some(_) => {
                let name = schema_name(&path_item["responses"][op.ok_status.to_string()]["content"]);
                format!("<a href=\"#schema-{name}\">{name}</a>")
            }
            None => String::new(),
        };
        let _ = write!(html, "<tr><td>answer</td><td>{} {}</td></tr>", op.ok_status, answer);
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

/// The schema a content map (`{media: {schema: {$ref}}}`) refers to.
fn schema_name(content: &Value) -> String {
    let reference = content.as_object().and_then(|c| c.values().next()).and_then(|m| m["schema"]["$ref"].as_str());
    reference.and_then(|r| r.rsplit('/').next()).unwrap_or("(inline)").to_string()
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
    fn query_values_are_the_wires() {
        let list = document()["paths"]["/api/v1/executions"]["get"]["parameters"].clone();
        let values = |name: &str| -> Vec<String> {
            let param = list.as_array().into_iter().flatten().find(|p| p["name"] == name).cloned().unwrap_or_default();
            serde_json::from_value(param["schema"]["enum"].clone()).unwrap_or_default()
        };
        let names = |known: &[&str]| known.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let statuses: Vec<&str> = linkloom_wire::ExecutionStatus::KNOWN.iter().map(|s| s.as_str()).collect();
        let triggers: Vec<&str> = linkloom_wire::Trigger::KNOWN.iter().map(|t| t.as_str()).collect();
        assert_eq!(values("status"), names(&statuses));
        assert_eq!(values("trigger"), names(&triggers));
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
