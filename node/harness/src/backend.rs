//! A task backend for tests: a real HTTP server on 127.0.0.1 that implements the HTTP task
//! contract with scripted behaviour per path, and records every request it gets.
//!
//! - `/echo`: 200, the input as output, a log line.
//! - `/flaky/{key}`: 503 for the first two requests per key, then as `/echo`.
//! - `/slow/{ms}`: answers as `/echo` after `ms` milliseconds.
//! - `/async`: 202; the test completes it through the recorded `callback_url`.
//! - `/reject`: 400 (a failure that is not retried).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

/// One request the backend received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub body: Value,
    pub idempotency_key: Option<String>,
    pub at: std::time::Instant,
}

/// One request as it arrived on the wire: what a backend verifying signatures looks at.
#[derive(Debug, Clone)]
pub struct RawRequest {
    pub method: String,
    pub path: String,
    /// The path and query, as the node asked for them.
    pub path_and_query: String,
    pub signature: Option<String>,
    pub idempotency_key: Option<String>,
    pub authorization: Option<String>,
    pub body: bytes::Bytes,
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    raw: Mutex<Vec<RawRequest>>,
    flaky: Mutex<BTreeMap<String, u32>>,
}

/// A running backend; stops when dropped.
pub struct Backend {
    pub url: String,
    shared: Arc<Shared>,
    _runtime: tokio::runtime::Runtime,
}

impl Backend {
    pub fn start() -> anyhow::Result<Backend> {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/echo", post(echo))
            .route("/flaky/{key}", post(flaky))
            .route("/slow/{ms}", post(slow))
            .route("/async", post(accepted))
            .route("/reject", post(reject))
            .route("/garbage", post(garbage))
            .layer(axum::middleware::from_fn_with_state(shared.clone(), keep_raw))
            .with_state(shared.clone());
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let url = format!("http://{}", listener.local_addr()?);
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Backend { url, shared, _runtime: runtime })
    }

    /// Every request so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Every request's raw body and signature header, in arrival order.
    pub fn raw(&self) -> Vec<RawRequest> {
        self.shared.raw.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Requests whose `task_id` is `task`.
    pub fn received_for(&self, task: &str) -> Vec<Received> {
        self.received().into_iter().filter(|r| r.body["task_id"] == task).collect()
    }
}

/// Keeps the raw body and the signature header, then hands the request on unchanged.
async fn keep_raw(
    State(shared): State<Arc<Shared>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 4 * 1024 * 1024).await.unwrap_or_default();
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    if let Ok(mut raw) = shared.raw.lock() {
        raw.push(RawRequest {
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            path_and_query: parts.uri.path_and_query().map(|p| p.to_string()).unwrap_or_default(),
            signature: header("x-loom-signature"),
            idempotency_key: header("idempotency-key"),
            authorization: header("authorization"),
            body: bytes.clone(),
        });
    }
    next.run(axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes))).await
}

fn record(shared: &Shared, path: &str, headers: &HeaderMap, body: &Value) {
    let idempotency_key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_string);
    if let Ok(mut received) = shared.received.lock() {
        received.push(Received {
            path: path.to_string(),
            body: body.clone(),
            idempotency_key,
            at: std::time::Instant::now(),
        });
    }
}

fn echo_answer(body: &Value) -> Json<Value> {
    Json(json!({"status": "succeeded", "output": body["input"], "logs": format!("echo attempt {}\n", body["attempt"])}))
}

async fn echo(State(shared): State<Arc<Shared>>, headers: HeaderMap, Json(body): Json<Value>) -> Json<Value> {
    record(&shared, "/echo", &headers, &body);
    echo_answer(&body)
}

async fn flaky(
    State(shared): State<Arc<Shared>>,
    Path(key): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Json<Value>, StatusCode> {
    record(&shared, &format!("/flaky/{key}"), &headers, &body);
    let seen = {
        let mut flaky = shared.flaky.lock().map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
        let n = flaky.entry(key).or_default();
        *n += 1;
        *n
    };
    if seen <= 2 {
        Err(StatusCode::SERVICE_UNAVAILABLE)
    } else {
        Ok(echo_answer(&body))
    }
}

async fn slow(
    State(shared): State<Arc<Shared>>,
    Path(ms): Path<u64>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Json<Value> {
    record(&shared, &format!("/slow/{ms}"), &headers, &body);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    echo_answer(&body)
}

async fn accepted(State(shared): State<Arc<Shared>>, headers: HeaderMap, Json(body): Json<Value>) -> StatusCode {
    record(&shared, "/async", &headers, &body);
    StatusCode::ACCEPTED
}

/// A hostile backend's failure: escape sequences a terminal or log viewer would obey, line
/// breaks that would forge log lines, and far more text than anyone should store.
async fn garbage(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, String) {
    record(&shared, "/garbage", &headers, &body);
    let mut answer = String::from("\u{1b}[2J\u{1b}[31mFAKE\nlevel=INFO msg=\"admin logged in\"\r\n");
    answer.push_str(&"x".repeat(256 * 1024));
    (StatusCode::INTERNAL_SERVER_ERROR, answer)
}

async fn reject(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, &'static str) {
    record(&shared, "/reject", &headers, &body);
    (StatusCode::BAD_REQUEST, "no such report")
}
