//! Every request: an `X-Request-Id` (the caller's, if it sent a sane one, else a new one) on the
//! response and in a tracing span around the handler, and a count and latency per route and
//! status for `/metrics`.
//!
//! When `loom-node` exports traces (`LOOM_OTLP_ENDPOINT`), the same span becomes the request's
//! OpenTelemetry span: named `HTTP {method} {route template}` (never the raw path, so names stay
//! few), with OpenTelemetry's HTTP attributes, and a child of the caller's W3C `traceparent` if
//! it sent one. Without an exporter none of that is recorded and log lines are unchanged.
//! Node-to-node requests (`/raft/*`) are not traced.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use linkloom_core::metrics::{Exposition, Histogram};
use rand::Rng;
use std::sync::Arc;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The route label of a request no route matched.
const UNMATCHED: &str = "unmatched";

/// HTTP counters of one node.
#[derive(Debug, Default)]
pub struct HttpMetrics {
    /// Requests by (method, route, status).
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// Time to the response head by (method, route).
    latency: Mutex<BTreeMap<(String, String), Arc<Histogram>>>,
    /// What the accept loop did (the binary's server updates them).
    pub connections: ConnectionStats,
    /// Open followed log streams per token, and refusals at the cap.
    pub log_streams: Arc<StreamLimits>,
}

/// The server's connection counters.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    pub open: AtomicU64,
    pub accepted: AtomicU64,
    /// Refused at accept: the node was full, the address had its share, or the room left was
    /// kept for other nodes of the cluster.
    pub refused_full: AtomicU64,
    pub refused_per_address: AtomicU64,
    pub refused_peer_reserve: AtomicU64,
    /// Closed for sending no complete request head in time (slowloris), or for no traffic.
    pub header_timeouts: AtomicU64,
    pub idle_timeouts: AtomicU64,
    pub tls_handshake_failures: AtomicU64,
}

/// Followed log streams (server-sent events) open per token, bounded so one caller cannot hold
/// the node's connections and tasks with them.
#[derive(Debug)]
pub struct StreamLimits {
    per_token: Mutex<BTreeMap<String, usize>>,
    max_per_token: AtomicU64,
    refused: AtomicU64,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits { per_token: Mutex::default(), max_per_token: AtomicU64::new(16), refused: AtomicU64::new(0) }
    }
}

impl StreamLimits {
    /// Sets the cap (0 refuses every stream).
    pub fn set_max_per_token(&self, max: u64) {
        self.max_per_token.store(max, Ordering::Relaxed);
    }

    pub fn max_per_token(&self) -> u64 {
        self.max_per_token.load(Ordering::Relaxed)
    }

    /// A slot for one more stream of `token`, released when dropped; `None` at the cap.
    pub fn open(self: &Arc<Self>, token: &str) -> Option<StreamSlot> {
        let mut open = self.per_token.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(token.to_string()).or_default();
        if *count as u64 >= self.max_per_token() {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *count += 1;
        Some(StreamSlot { limits: self.clone(), token: token.to_string() })
    }

    fn open_total(&self) -> usize {
        self.per_token.lock().unwrap_or_else(|p| p.into_inner()).values().sum()
    }
}

/// One open stream; dropping it frees the slot.
#[derive(Debug)]
pub struct StreamSlot {
    limits: Arc<StreamLimits>,
    token: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.limits.per_token.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.token) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.token);
            }
        }
    }
}

impl HttpMetrics {
    fn record(&self, method: &str, route: &str, status: u16, elapsed: std::time::Duration) {
        {
            let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
            *requests.entry((method.to_string(), route.to_string(), status)).or_default() += 1;
        }
        let histogram = {
            let mut latency = self.latency.lock().unwrap_or_else(|p| p.into_inner());
            latency.entry((method.to_string(), route.to_string())).or_default().clone()
        };
        histogram.observe(elapsed);
    }

    pub fn render(&self, out: &mut Exposition) {
        let c = &self.connections;
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        out.gauge("loom_connections_open", "Client and peer connections open now.", &[], load(&c.open) as f64);
        out.counter("loom_connections_accepted_total", "Connections accepted.", &[], load(&c.accepted));
        for (reason, n) in [
            ("node_full", &c.refused_full),
            ("per_address", &c.refused_per_address),
            ("peer_reserve", &c.refused_peer_reserve),
        ] {
            out.counter(
                "loom_connections_refused_total",
                "Connections refused at accept, by the cap that refused them.",
                &[("reason", reason)],
                load(n),
            );
        }
        for (reason, n) in [("header_timeout", &c.header_timeouts), ("idle_timeout", &c.idle_timeouts)] {
            out.counter(
                "loom_connections_timed_out_total",
                "Connections closed by a timeout: no complete request head in time, or no traffic.",
                &[("reason", reason)],
                load(n),
            );
        }
        out.counter(
            "loom_tls_handshake_failures_total",
            "TLS handshakes that failed or timed out.",
            &[],
            load(&c.tls_handshake_failures),
        );
        out.gauge("loom_log_streams_open", "Followed log streams open now.", &[], self.log_streams.open_total() as f64);
        out.counter(
            "loom_log_streams_refused_total",
            "Followed log streams refused at the per-token cap.",
            &[],
            self.log_streams.refused.load(Ordering::Relaxed),
        );
        let requests = self.requests.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for ((method, route, status), n) in &requests {
            let status = status.to_string();
            out.counter(
                "loom_http_requests_total",
                "HTTP requests answered, by method, route and status.",
                &[("method", method), ("route", route), ("status", &status)],
                *n,
            );
        }
        let latency = self.latency.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for ((method, route), histogram) in &latency {
            out.histogram(
                "loom_http_request_duration_seconds",
                "Time to the response head, by method and route.",
                &[("method", method), ("route", route)],
                &histogram.snapshot(),
            );
        }
    }
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Rewrites an error answer that did not come from our handlers (an extractor's rejection of a
/// malformed path, query or body, say) into the API's one error shape, keeping its status,
/// headers and message.
async fn in_error_shape(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024).await.unwrap_or_default();
    let status = parts.status;
    use linkloom_wire::ErrorCode;
    let code = match status.as_u16() {
        404 => ErrorCode::NotFound,
        405 => ErrorCode::MethodNotAllowed,
        408 => ErrorCode::RequestTimeout,
        413 => ErrorCode::TooLarge,
        415 => ErrorCode::UnsupportedMediaType,
        503 => ErrorCode::Unavailable,
        _ if status.is_client_error() => ErrorCode::BadRequest,
        _ => ErrorCode::Internal,
    };
    let message = String::from_utf8_lossy(&text).trim().to_string();
    let message = if message.is_empty() { status.canonical_reason().unwrap_or("error").to_string() } else { message };
    let body = linkloom_wire::ErrorBody {
        error: linkloom_wire::ErrorDetail { code, message, details: serde_json::Value::Null },
    };
    let body = serde_json::to_vec(&body).unwrap_or_default();
    parts.headers.insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// Makes `span` the request's OpenTelemetry span, if traces are exported: its parent is the
/// caller's `traceparent` (none: a new trace), its name and attributes those of OpenTelemetry's
/// HTTP server conventions. Answers whether traces are exported; without an exporter the
/// propagator is a no-op, `set_parent` finds no layer, and the span's fields stay as they were.
fn trace_request(span: &tracing::Span, headers: &axum::http::HeaderMap, method: &str, route: &str, id: &str) -> bool {
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract_with_context(&opentelemetry::Context::new(), &Headers(headers))
    });
    if span.set_parent(parent).is_err() {
        return false;
    }
    span.record("otel.kind", "server");
    // Methods outside the standard set are counted as `other` in metrics, `_OTHER` here.
    let method = if method == "other" { "_OTHER" } else { method };
    span.set_attribute("http.request.method", method.to_string());
    span.set_attribute("loom.request_id", id.to_string());
    if route == UNMATCHED {
        span.record("otel.name", format!("HTTP {method}").as_str());
    } else {
        span.record("otel.name", format!("HTTP {method} {route}").as_str());
        span.set_attribute("http.route", route.to_string());
    }
    true
}

/// Request headers as the OpenTelemetry propagator reads them.
struct Headers<'a>(&'a axum::http::HeaderMap);

impl opentelemetry::propagation::Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|name| name.as_str()).collect()
    }
}

/// A caller's request id is kept if it is 1 to 128 visible ASCII characters.
fn sane(id: &HeaderValue) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty() && bytes.len() <= 128 && bytes.iter().all(|b| b.is_ascii_graphic())
}

fn new_request_id(entropy: &dyn linkloom_raft::Entropy) -> String {
    let n: u128 = linkloom_raft::Draw(entropy).gen();
    format!("{:032x}", n)
}

/// What [`observe`] needs: the counters it adds to, and the randomness of fresh request ids.
pub(crate) type Observed = (Arc<HttpMetrics>, Arc<dyn linkloom_raft::Entropy>);

pub(crate) async fn observe(State((metrics, entropy)): State<Observed>, mut request: Request, next: Next) -> Response {
    let id = match request.headers().get(&REQUEST_ID) {
        Some(id) if sane(id) => id.clone(),
        _ => {
            let fresh = HeaderValue::from_str(&new_request_id(&*entropy)).unwrap_or(HeaderValue::from_static("-"));
            request.headers_mut().insert(REQUEST_ID, fresh.clone());
            fresh
        }
    };
    // Unmatched paths share one label, so scanning for URLs cannot grow the metric set.
    let route = request.extensions().get::<MatchedPath>().map_or(UNMATCHED, |p| p.as_str()).to_string();
    // Standard methods only as labels: a client inventing methods cannot grow the metric set.
    let method = match *request.method() {
        Method::GET | Method::POST | Method::PUT | Method::DELETE | Method::HEAD | Method::OPTIONS | Method::PATCH => {
            request.method().to_string()
        }
        _ => "other".to_string(),
    };
    let request_id = id.to_str().unwrap_or("-");
    // Node-to-node calls (Raft heartbeats, ten a second per follower) get a span of another name,
    // which traces leave out: they would drown the requests worth tracing.
    let peer = route.starts_with("/raft/");
    let span = if peer {
        tracing::info_span!("peer_request", request_id = %request_id, method = %method, route = %route)
    } else {
        tracing::info_span!(
            "request",
            request_id = %request_id,
            method = %method,
            route = %route,
            otel.name = tracing::field::Empty,
            otel.kind = tracing::field::Empty,
        )
    };
    let traced = !peer && trace_request(&span, request.headers(), &method, &route, request_id);
    let started = tokio::time::Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    if (status.is_client_error() || status.is_server_error()) && !is_json(&response) {
        response = in_error_shape(response).await;
    }
    metrics.record(&method, &route, status.as_u16(), started.elapsed());
    if traced {
        span.set_attribute("http.response.status_code", i64::from(status.as_u16()));
        // A server's span is an error for 5xx only: a 4xx is the client's mistake.
        if status.is_server_error() {
            span.set_status(opentelemetry::trace::Status::error(status.to_string()));
        }
    }
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::warn!(
                status = status.as_u16(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "request failed"
            );
        } else {
            tracing::debug!(status = status.as_u16(), elapsed_ms = started.elapsed().as_millis() as u64, "request");
        }
    });
    response.headers_mut().insert(REQUEST_ID, id);
    response
}
