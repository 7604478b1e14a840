//! The fake node: serves the part of the API a worker uses, exactly as a script says, and
//! records what the SDK sent so the script's expectations can be checked (README §2).
//!
//! It is built on hyper directly rather than axum because one answer a script can ask for is
//! no answer at all: the connection closed after the request was read, as when a node dies
//! mid-request. Each connection's future is raced against a per-request "drop" signal, and
//! dropping that future closes the socket without a status line.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify};

/// The most bytes of a request body the fake node reads (a completion is at most 256 KiB of
/// output plus logs).
const MAX_REQUEST_BYTES: usize = 2 * 1024 * 1024;
/// The most requests it records; past it, it stops recording and says so in the verdict.
const MAX_RECORDED: usize = 10_000;

/// A transcript: how the node behaves and what the SDK must send.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    pub name: String,
    #[serde(default)]
    pub about: String,
    pub worker: WorkerConfig,
    #[serde(default)]
    pub shutdown_after_ms: Option<u64>,
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    pub connections: Vec<Connection>,
    #[serde(default)]
    pub responses: Vec<Rule>,
    #[serde(default)]
    pub expect: Vec<Expectation>,
    #[serde(default)]
    pub allow: Vec<Route>,
}

fn default_timeout() -> u64 {
    10_000
}

/// How the SDK's test configures its worker for the script.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    pub id: String,
    pub queues: Vec<String>,
    pub concurrency: u32,
    pub grace_ms: u64,
}

/// The answer to one `POST /api/v1/workers/connect`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    #[serde(default = "ok")]
    pub status: u16,
    #[serde(default)]
    pub events: Vec<Event>,
    #[serde(default)]
    pub then: Then,
}

fn ok() -> u16 {
    200
}

/// One write to the stream, `after_ms` after the previous one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    #[serde(default)]
    pub after_ms: u64,
    #[serde(default)]
    pub chunk: Option<String>,
    /// That many `x` bytes, no newline (an oversized line).
    #[serde(default)]
    pub fill_bytes: Option<usize>,
}

/// What the stream does after its events.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Then {
    /// Stay open, with a ping every heartbeat interval the welcome announced.
    #[default]
    Hold,
    /// Stay open and send nothing (a node that went silent).
    Silent,
    /// End the stream.
    Close,
}

/// An answer to requests other than connect.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub method: String,
    /// `*` matches one path segment.
    pub path: String,
    /// How many requests this rule answers (unbounded if absent).
    #[serde(default)]
    pub times: Option<u32>,
    pub status: Status,
    #[serde(default)]
    pub body: Option<Value>,
    /// Wait this long before answering.
    #[serde(default)]
    pub after_ms: u64,
    /// Extra answer headers (e.g. `Retry-After`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// An HTTP status, or `"drop"`: close the connection without answering.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Status {
    Code(u16),
    Word(String),
}

/// A request the script permits without expecting it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub method: String,
    pub path: String,
}

/// What the SDK must have sent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    pub method: String,
    pub path: String,
    /// Only the nth (1-based) request to this method and path.
    #[serde(default)]
    pub nth: Option<usize>,
    #[serde(default)]
    pub min: Option<usize>,
    #[serde(default)]
    pub max: Option<usize>,
    /// A subset the request's JSON body must contain; requests that do not are not counted.
    #[serde(default)]
    pub body: Option<Value>,
    #[serde(default)]
    pub same_idempotency_key: bool,
    /// `"present"`: every counted request carries one.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// One request as the fake node saw it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Recorded {
    pub at_ms: u64,
    pub method: String,
    pub path: String,
    pub idempotency_key: Option<String>,
    pub content_type: Option<String>,
    pub body: Value,
    /// The status answered, or 0 when the connection was dropped.
    pub answered: u16,
    /// No rule matched it and the script does not allow it.
    pub unexpected: bool,
}

struct State {
    script: Script,
    started: Instant,
    connects: usize,
    uses: Vec<u32>,
    recorded: Vec<Recorded>,
    overflow: bool,
}

/// A running fake node.
pub struct FakeNode {
    pub url: String,
    state: Arc<Mutex<State>>,
    stop: Arc<Notify>,
}

impl FakeNode {
    /// Starts serving `script` on 127.0.0.1 (a free port).
    pub async fn start(script: Script) -> anyhow::Result<FakeNode> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let uses = vec![0; script.responses.len()];
        let state = Arc::new(Mutex::new(State {
            script,
            started: Instant::now(),
            connects: 0,
            uses,
            recorded: Vec::new(),
            overflow: false,
        }));
        let stop = Arc::new(Notify::new());
        let (accept_state, accept_stop) = (state.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    _ = accept_stop.notified() => return,
                };
                let Ok((stream, _)) = accepted else { continue };
                let state = accept_state.clone();
                tokio::spawn(serve_connection(stream, state));
            }
        });
        Ok(FakeNode { url, state, stop })
    }

    /// The verdict so far (README §2).
    pub fn verdict(&self) -> Value {
        verdict(&lock(&self.state))
    }

    /// Stops accepting connections (open ones end with the runtime).
    pub fn stop(&self) {
        self.stop.notify_waiters();
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

async fn serve_connection(stream: tokio::net::TcpStream, state: Arc<Mutex<State>>) {
    let dropped = Arc::new(Notify::new());
    let signal = dropped.clone();
    let service = service_fn(move |request| {
        let (state, signal) = (state.clone(), signal.clone());
        async move { Ok::<_, Infallible>(answer(request, state, signal).await) }
    });
    let connection = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = connection => {}
        // Dropping the connection future closes the socket: the request gets no answer.
        _ = dropped.notified() => {}
    }
}

type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;

fn full(status: u16, body: &Value, headers: &BTreeMap<String, String>) -> Response<Body> {
    let mut response = Response::builder().status(status).header("content-type", "application/json");
    for (name, value) in headers {
        response = response.header(name.as_str(), value.as_str());
    }
    response
        .body(Full::new(Bytes::from(body.to_string())).boxed_unsync())
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed_unsync()))
}

fn error_body(status: u16, message: &str) -> Value {
    let code = match status {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        409 => "stale_attempt",
        429 => "rate_limited",
        503 => "unavailable",
        _ => "internal",
    };
    json!({"error": {"code": code, "message": message, "details": null}})
}

async fn answer(request: Request<Incoming>, state: Arc<Mutex<State>>, dropped: Arc<Notify>) -> Response<Body> {
    let method = request.method().as_str().to_string();
    let path = request.uri().path().to_string();
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (idempotency_key, content_type) = (header("idempotency-key"), header("content-type"));
    let bytes = match http_body_util::Limited::new(request.into_body(), MAX_REQUEST_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return full(413, &error_body(413, "the fake node reads at most 2 MiB"), &BTreeMap::new()),
    };
    let body: Value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };

    if method == "GET" && path == "/_fake/verdict" {
        return full(200, &verdict(&lock(&state)), &BTreeMap::new());
    }

    let record = |answered: u16, unexpected: bool| {
        let mut s = lock(&state);
        if s.recorded.len() >= MAX_RECORDED {
            s.overflow = true;
            return;
        }
        let at_ms = s.started.elapsed().as_millis() as u64;
        s.recorded.push(Recorded {
            at_ms,
            method: method.clone(),
            path: path.clone(),
            idempotency_key: idempotency_key.clone(),
            content_type: content_type.clone(),
            body: body.clone(),
            answered,
            unexpected,
        });
    };

    if method == "POST" && path == "/api/v1/workers/connect" {
        let connection = {
            let mut s = lock(&state);
            let n = s.connects;
            s.connects += 1;
            s.script.connections.get(n).cloned()
        };
        let Some(connection) = connection else {
            record(503, false);
            return full(503, &error_body(503, "the script has no more connections"), &BTreeMap::new());
        };
        record(connection.status, false);
        if connection.status != 200 {
            return full(connection.status, &error_body(connection.status, "scripted refusal"), &BTreeMap::new());
        }
        return stream(connection);
    }

    let rule = {
        let mut s = lock(&state);
        let State { script, uses, .. } = &mut *s;
        let found = script.responses.iter().enumerate().find(|(i, rule)| {
            rule.method.eq_ignore_ascii_case(&method)
                && path_matches(&rule.path, &path)
                && rule.times.is_none_or(|times| uses[*i] < times)
        });
        found.map(|(i, rule)| {
            uses[i] += 1;
            rule.clone()
        })
    };
    let Some(rule) = rule else {
        let allowed = lock(&state)
            .script
            .allow
            .iter()
            .any(|r| r.method.eq_ignore_ascii_case(&method) && path_matches(&r.path, &path));
        record(404, !allowed);
        return full(404, &error_body(404, "no rule of the script matches"), &BTreeMap::new());
    };
    if rule.after_ms > 0 {
        tokio::time::sleep(Duration::from_millis(rule.after_ms)).await;
    }
    match rule.status {
        Status::Code(code) => {
            record(code, false);
            let body = rule.body.clone().unwrap_or_else(|| {
                if (200..300).contains(&code) {
                    json!({})
                } else {
                    error_body(code, "scripted answer")
                }
            });
            full(code, &body, &rule.headers)
        }
        Status::Word(_) => {
            record(0, false);
            dropped.notify_one();
            // Never sent: the connection is closed first.
            std::future::pending::<()>().await;
            full(500, &Value::Null, &BTreeMap::new())
        }
    }
}

/// A streaming answer that writes the connection's events, then holds, goes silent or ends.
fn stream(connection: Connection) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        let mut heartbeat_ms: u64 = 1000;
        let mut welcomed = false;
        for event in &connection.events {
            // A live node pings while it has nothing else to say: so do waits longer than the
            // heartbeat interval once the welcome is out.
            let until = tokio::time::Instant::now() + Duration::from_millis(event.after_ms);
            while welcomed
                && until.saturating_duration_since(tokio::time::Instant::now()) > Duration::from_millis(heartbeat_ms)
            {
                tokio::time::sleep(Duration::from_millis(heartbeat_ms)).await;
                if tx.send(Bytes::from_static(b"{\"type\":\"ping\"}\n")).await.is_err() {
                    return;
                }
            }
            tokio::time::sleep_until(until).await;
            if let Some(chunk) = &event.chunk {
                if let Some(ms) = announced_heartbeat(chunk) {
                    heartbeat_ms = ms.max(10);
                    welcomed = true;
                }
                if tx.send(Bytes::from(chunk.clone())).await.is_err() {
                    return;
                }
            }
            if let Some(n) = event.fill_bytes {
                // In pieces, as a network would deliver it.
                let mut left = n;
                while left > 0 {
                    let piece = left.min(64 * 1024);
                    if tx.send(Bytes::from(vec![b'x'; piece])).await.is_err() {
                        return;
                    }
                    left -= piece;
                }
            }
        }
        match connection.then {
            Then::Close => {}
            Then::Silent => tx.closed().await,
            Then::Hold => loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(heartbeat_ms)) => {
                        if tx.send(Bytes::from_static(b"{\"type\":\"ping\"}\n")).await.is_err() {
                            return;
                        }
                    }
                    _ = tx.closed() => return,
                }
            },
        }
    });
    let frames = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|bytes| (Ok::<_, Infallible>(Frame::data(bytes)), rx))
    });
    Response::builder()
        .status(200)
        .header("content-type", "application/x-ndjson")
        .body(BodyExt::boxed_unsync(StreamBody::new(frames.boxed())))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed_unsync()))
}

/// The heartbeat interval a welcome line in `chunk` announces.
fn announced_heartbeat(chunk: &str) -> Option<u64> {
    chunk
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|v| v["type"] == "welcome")
        .and_then(|v| v["heartbeat_interval_ms"].as_u64())
}

/// `pattern` with `*` matching exactly one segment.
pub fn path_matches(pattern: &str, path: &str) -> bool {
    let (mut p, mut q) = (pattern.split('/'), path.split('/'));
    loop {
        match (p.next(), q.next()) {
            (None, None) => return true,
            (Some("*"), Some(seg)) if !seg.is_empty() => {}
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

/// Whether `actual` contains `subset`: objects recursively, everything else equal.
pub fn contains(actual: &Value, subset: &Value) -> bool {
    match (actual, subset) {
        (Value::Object(a), Value::Object(s)) => s.iter().all(|(k, v)| a.get(k).is_some_and(|av| contains(av, v))),
        _ => actual == subset,
    }
}

fn verdict(state: &State) -> Value {
    let mut problems: Vec<String> = Vec::new();
    let mut satisfied = true;
    for expectation in &state.script.expect {
        let to_route: Vec<&Recorded> = state
            .recorded
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case(&expectation.method) && path_matches(&expectation.path, &r.path))
            .collect();
        let picked: Vec<&Recorded> = match expectation.nth {
            Some(n) => to_route.get(n.saturating_sub(1)).copied().into_iter().collect(),
            None => to_route.clone(),
        };
        let counted: Vec<&Recorded> = picked
            .into_iter()
            .filter(|r| expectation.body.as_ref().is_none_or(|subset| contains(&r.body, subset)))
            .collect();
        let what = format!(
            "{} {}{}{}",
            expectation.method,
            expectation.path,
            expectation.nth.map(|n| format!(" (request #{n})")).unwrap_or_default(),
            expectation.body.as_ref().map(|b| format!(" with a body containing {b}")).unwrap_or_default()
        );
        let min = expectation.min.unwrap_or(1);
        if counted.len() < min {
            satisfied = false;
            let others: Vec<String> = to_route.iter().take(3).map(|r| r.body.to_string()).collect();
            problems.push(format!(
                "expected at least {min} × {what}, got {} (requests to that route: {}; first bodies: {})",
                counted.len(),
                to_route.len(),
                others.join(" | ")
            ));
        }
        if let Some(max) = expectation.max {
            if counted.len() > max {
                problems.push(format!("expected at most {max} × {what}, got {}", counted.len()));
            }
        }
        if expectation.same_idempotency_key {
            let keys: Vec<Option<&str>> = counted.iter().map(|r| r.idempotency_key.as_deref()).collect();
            if keys.iter().any(Option::is_none) || keys.windows(2).any(|w| w[0] != w[1]) {
                problems.push(format!("{what}: every resend must carry the first one's Idempotency-Key; got {keys:?}"));
            }
        }
        if expectation.idempotency_key.as_deref() == Some("present")
            && counted.iter().any(|r| r.idempotency_key.is_none())
        {
            problems.push(format!("{what}: sent without an Idempotency-Key"));
        }
    }
    for r in &state.recorded {
        if r.unexpected {
            problems.push(format!("unexpected request {} {} {}", r.method, r.path, r.body));
        }
        if matches!(r.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE") {
            // Connect opens a stream rather than writing, and the node ignores a key on it.
            if r.idempotency_key.is_none() && r.path != "/api/v1/workers/connect" {
                problems.push(format!("{} {} carried no Idempotency-Key", r.method, r.path));
            }
            if !r.content_type.as_deref().is_some_and(|t| t.starts_with("application/json")) {
                problems.push(format!(
                    "{} {} has Content-Type {:?}, not application/json",
                    r.method, r.path, r.content_type
                ));
            }
        }
    }
    if state.overflow {
        problems.push(format!("more than {MAX_RECORDED} requests: the SDK is looping"));
    }
    // A problem of its own kind (over a max, unexpected) fails even while unsatisfied.
    let passed = satisfied && problems.is_empty();
    json!({"name": state.script.name, "satisfied": satisfied, "passed": passed, "problems": problems, "requests": state.recorded})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_matches_one_segment_only() {
        assert!(path_matches("/a/*/c", "/a/b/c"));
        assert!(!path_matches("/a/*/c", "/a/b/x/c"));
        assert!(!path_matches("/a/*", "/a/"));
        assert!(path_matches("/a", "/a"));
    }

    #[test]
    fn subsets_recurse_into_objects_only() {
        let actual = json!({"status": "succeeded", "output": {"x": 1, "y": [1, 2]}, "logs": "l"});
        assert!(contains(&actual, &json!({"output": {"x": 1}})));
        assert!(contains(&actual, &json!({"output": {"y": [1, 2]}})));
        assert!(!contains(&actual, &json!({"output": {"y": [1]}})));
        assert!(!contains(&actual, &json!({"retryable": false})));
    }
}
