//! Traces over OTLP/HTTP, against a small OTLP receiver inside the test: a request's span
//! continues its caller's `traceparent`, the attempts of an execution share the trace derived
//! from the execution id (whichever node runs them), node-to-node requests are left out, and
//! nothing at all happens without an endpoint; an unreachable collector changes nothing but a
//! rare log line.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use linkloom_harness::{Cluster, ClusterOptions};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use prost::Message;
use serde_json::json;
use sha2::Digest;

const BIN: &str = env!("CARGO_BIN_EXE_loom-node");
const READY: Duration = Duration::from_secs(30);
const RUN: Duration = Duration::from_secs(60);
/// How long spans may take to arrive: the test sets the batch delay to 200 ms.
const ARRIVE: Duration = Duration::from_secs(30);

/// A caller's W3C trace context: version, trace id, parent span id, flags (sampled).
const CALLER_TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN_ID: &str = "00f067aa0ba902b7";
/// Sent as an OTLP header; a secret, so it must not stay readable in /proc.
const COLLECTOR_TOKEN: &str = "otlp-collector-token-5b1e";

/// One span as the receiver decoded it, with attribute values as text.
#[derive(Clone, Debug)]
struct Seen {
    trace_id: String,
    parent_span_id: String,
    name: String,
    /// OTLP's `SpanKind` (2: server).
    kind: i32,
    /// OTLP's status code (0: unset, 1: ok, 2: error).
    status_code: i32,
    attributes: BTreeMap<String, String>,
    resource: BTreeMap<String, String>,
}

#[derive(Default)]
struct Received {
    requests: usize,
    /// (content type, the test's header) of every request.
    headers: Vec<(String, String)>,
    spans: Vec<Seen>,
}

/// An OTLP/HTTP receiver on 127.0.0.1: `POST /v1/traces` with a protobuf
/// `ExportTraceServiceRequest`.
struct Receiver {
    url: String,
    received: Arc<Mutex<Received>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
        listener.set_nonblocking(true).expect("non-blocking");
        let addr = listener.local_addr().expect("address");
        let received = Arc::new(Mutex::new(Received::default()));
        let state = received.clone();
        // Lives until the test process ends.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let app = axum::Router::new().route("/v1/traces", axum::routing::post(collect)).with_state(state);
                axum::serve(listener, app).await.expect("serve");
            });
        });
        Receiver { url: format!("http://{addr}/v1/traces"), received }
    }

    fn requests(&self) -> usize {
        self.received.lock().unwrap().requests
    }

    fn spans(&self) -> Vec<Seen> {
        self.received.lock().unwrap().spans.clone()
    }

    fn headers(&self) -> Vec<(String, String)> {
        self.received.lock().unwrap().headers.clone()
    }
}

async fn collect(
    State(received): State<Arc<Mutex<Received>>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ([(&'static str, &'static str); 1], Vec<u8>) {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let mut received = received.lock().unwrap();
    received.requests += 1;
    received.headers.push((text("content-type"), text("x-collector-token")));
    if let Ok(request) = ExportTraceServiceRequest::decode(body.as_ref()) {
        for resource_spans in request.resource_spans {
            let resource = attributes(resource_spans.resource.map(|r| r.attributes).unwrap_or_default());
            for span in resource_spans.scope_spans.into_iter().flat_map(|s| s.spans) {
                received.spans.push(Seen {
                    trace_id: hex(&span.trace_id),
                    parent_span_id: hex(&span.parent_span_id),
                    name: span.name,
                    kind: span.kind,
                    status_code: span.status.map_or(0, |s| s.code),
                    attributes: attributes(span.attributes),
                    resource: resource.clone(),
                });
            }
        }
    }
    // An empty ExportTraceServiceResponse: everything accepted.
    ([("content-type", "application/x-protobuf")], Vec::new())
}

fn attributes(list: Vec<KeyValue>) -> BTreeMap<String, String> {
    let text = |value: any_value::Value| match value {
        any_value::Value::StringValue(s) => s,
        any_value::Value::IntValue(i) => i.to_string(),
        any_value::Value::BoolValue(b) => b.to_string(),
        any_value::Value::DoubleValue(d) => d.to_string(),
        other => format!("{other:?}"),
    };
    list.into_iter().filter_map(|kv| Some((kv.key, text(kv.value?.value?)))).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The trace of an execution's attempts as docs/deployment.md states it: SHA-256 of the
/// execution id, the first 16 bytes the trace id, the next 8 the parent span id.
fn execution_trace(execution_id: &str) -> (String, String) {
    let digest = hex(&sha2::Sha256::digest(execution_id.as_bytes()));
    (digest[..32].to_string(), digest[32..48].to_string())
}

/// The names of node `pid`'s threads.
fn threads(pid: u32) -> Vec<String> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the node's threads");
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_string())
        .collect()
}

/// Triggers `workflow` through node 1 with a caller's `traceparent`; answers the execution id
/// and the request id the node gave the request.
fn trigger_traced(cluster: &Cluster, workflow: &str) -> (String, String) {
    let response = cluster
        .http()
        .post(format!("{}/api/v1/workflows/{workflow}/trigger", cluster.url(1)))
        .header("content-type", "application/json")
        .header("traceparent", format!("00-{CALLER_TRACE_ID}-{CALLER_SPAN_ID}-01"))
        .body(json!({"params": {}}).to_string())
        .send()
        .expect("trigger");
    assert_eq!(response.status().as_u16(), 202);
    let request_id = response.headers()["x-request-id"].to_str().expect("request id").to_string();
    let body: serde_json::Value = response.json().expect("json");
    (body["execution_id"].as_str().expect("execution id").to_string(), request_id)
}

const TRACED_WORKFLOW: &str = "id: traced
tasks:
  - {id: fine, type: shell, command: ['true']}
  - {id: broken, type: shell, command: ['false'], retry: {max_attempts: 2, backoff: 100ms}}
";

#[test]
fn a_requests_span_continues_its_callers_trace_and_an_executions_attempts_share_one_trace() {
    let receiver = Receiver::start();
    // Three nodes: the execution's owner may be any of them, and followers receive Raft's calls.
    let options = ClusterOptions::new(3)
        .env("LOOM_OTLP_ENDPOINT", &receiver.url)
        .env("LOOM_OTLP_HEADERS", format!("x-collector-token={COLLECTOR_TOKEN}"))
        .env("OTEL_BSP_SCHEDULE_DELAY", 200);
    let mut cluster = Cluster::start(BIN, options).expect("start the node");
    cluster.wait_ready(READY).expect("ready");
    let pid = cluster.node(1).pid().expect("running");

    // The header is a secret: scrubbed from the environment block the kernel shows.
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("environ");
    assert!(!String::from_utf8_lossy(&environ).contains(COLLECTOR_TOKEN), "the OTLP headers stay readable in /proc");
    assert!(threads(pid).iter().any(|t| t.starts_with("OpenTelemetry")), "an exporter thread runs: {:?}", threads(pid));

    cluster.put_workflow(1, TRACED_WORKFLOW).expect("workflow");
    let (execution_id, request_id) = trigger_traced(&cluster, "traced");
    let done = cluster.wait_execution(1, &execution_id, RUN).expect("execution ends");
    assert_eq!(done["status"], "failed", "`broken` fails twice: {done:#}");
    let (execution_trace_id, execution_span_id) = execution_trace(&execution_id);

    let trigger_span =
        |spans: &[Seen]| spans.iter().find(|s| s.name == "HTTP POST /api/v1/workflows/{id}/trigger").cloned();
    let attempts = |spans: &[Seen]| -> Vec<Seen> { spans.iter().filter(|s| s.name == "attempt").cloned().collect() };
    cluster
        .wait_for("the trigger's span and three attempt spans at the receiver", ARRIVE, |_| {
            let spans = receiver.spans();
            trigger_span(&spans).is_some() && attempts(&spans).len() >= 3
        })
        .expect("spans arrive");
    let spans = receiver.spans();

    // The request: the caller's trace, named by its route template, with HTTP attributes.
    let request = trigger_span(&spans).expect("the trigger's span");
    assert_eq!(request.trace_id, CALLER_TRACE_ID, "{request:#?}");
    assert_eq!(request.parent_span_id, CALLER_SPAN_ID, "{request:#?}");
    assert_eq!(request.kind, 2, "a server span: {request:#?}");
    assert_eq!(request.attributes["http.request.method"], "POST");
    assert_eq!(request.attributes["http.route"], "/api/v1/workflows/{id}/trigger");
    assert_eq!(request.attributes["http.response.status_code"], "202");
    assert_eq!(request.attributes["loom.request_id"], request_id);
    assert_eq!(request.resource["service.name"], "loom-node");
    assert_eq!(request.resource["service.instance.id"], "1");
    assert_eq!(request.resource["service.version"], env!("CARGO_PKG_VERSION"));
    // Other requests (the harness's polling) have spans of their own, in traces of their own.
    assert!(spans.iter().any(|s| s.name == "HTTP GET /api/v1/executions/{id}" && s.trace_id != CALLER_TRACE_ID));
    assert!(!spans.iter().any(|s| s.name.contains(&execution_id)), "names carry templates, not paths");
    assert!(!spans.iter().any(|s| s.name.contains("/raft/")), "node-to-node calls are not traced");
    let instances: Vec<&str> = spans.iter().map(|s| s.resource["service.instance.id"].as_str()).collect();
    assert!(instances.iter().all(|i| ["1", "2", "3"].contains(i)), "{instances:?}");

    // The attempts: one trace, derived from the execution id, under its "execution" parent.
    let attempts = attempts(&spans);
    assert_eq!(attempts.len(), 3, "{attempts:#?}");
    for attempt in &attempts {
        assert_eq!(attempt.trace_id, execution_trace_id, "{attempt:#?}");
        assert_eq!(attempt.parent_span_id, execution_span_id, "{attempt:#?}");
        assert_eq!(attempt.attributes["loom.execution_id"], execution_id);
        assert_eq!(attempt.attributes["loom.workflow_id"], "traced");
        assert_eq!(attempt.attributes["loom.task.kind"], "shell");
        assert_eq!(attempt.resource["service.name"], "loom-node");
    }
    let by_task = |task: &str| -> Vec<(String, String, i32)> {
        let mut found: Vec<_> = attempts
            .iter()
            .filter(|a| a.attributes["loom.task_id"] == task)
            .map(|a| (a.attributes["loom.attempt"].clone(), a.attributes["loom.attempt.status"].clone(), a.status_code))
            .collect();
        found.sort();
        found
    };
    assert_eq!(by_task("fine"), [("1".to_string(), "succeeded".to_string(), 0)]);
    assert_eq!(
        by_task("broken"),
        [("1".to_string(), "failed".to_string(), 2), ("2".to_string(), "failed".to_string(), 2)],
        "failures are errors"
    );

    // Every export was protobuf and carried the configured header.
    let headers = receiver.headers();
    assert!(!headers.is_empty());
    for (content_type, token) in &headers {
        assert_eq!(content_type, "application/x-protobuf");
        assert_eq!(token, COLLECTOR_TOKEN);
    }

    // A clean stop exits 0 with the last request's span delivered (by the batch timer or by the
    // flush at exit, whichever came first): no waiting after the node has exited.
    cluster.get_json(1, "/api/v1/workers").expect("one more request");
    assert_eq!(cluster.terminate(1, Duration::from_secs(20)).expect("stops"), Some(0));
    assert!(receiver.spans().iter().any(|s| s.name == "HTTP GET /api/v1/workers"), "sent by exit");
}

#[test]
fn without_an_endpoint_nothing_is_sent_and_an_unreachable_collector_changes_nothing() {
    let workflow = "id: plain\ntasks:\n  - {id: t, type: shell, command: ['true']}\n";

    // No endpoint: no exporter thread, and nothing reaches a receiver, even at exit.
    let receiver = Receiver::start();
    let mut cluster = Cluster::start(BIN, ClusterOptions::new(1)).expect("start the node");
    cluster.wait_ready(READY).expect("ready");
    let pid = cluster.node(1).pid().expect("running");
    assert!(!threads(pid).iter().any(|t| t.starts_with("OpenTelemetry")), "{:?}", threads(pid));
    cluster.put_workflow(1, workflow).expect("workflow");
    let (id, _) = trigger_traced(&cluster, "plain");
    assert_eq!(cluster.wait_execution(1, &id, RUN).expect("ends")["status"], "succeeded");
    assert_eq!(cluster.terminate(1, Duration::from_secs(20)).expect("stops"), Some(0));
    assert_eq!(receiver.requests(), 0, "nothing was configured, nothing was sent");
    assert!(!cluster.log_text(1).contains("OTLP"), "{}", cluster.log_text(1));
    drop(cluster);

    // A collector on a closed port: the node serves and runs workflows; the failure is logged
    // once, not once per batch.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("address").port();
    drop(closed);
    let options = ClusterOptions::new(1)
        .env("LOOM_OTLP_ENDPOINT", format!("http://127.0.0.1:{port}/v1/traces"))
        .env("OTEL_BSP_SCHEDULE_DELAY", 100);
    let mut cluster = Cluster::start(BIN, options).expect("start the node");
    cluster.wait_ready(READY).expect("ready");
    cluster.put_workflow(1, workflow).expect("workflow");
    for _ in 0..3 {
        let (id, _) = trigger_traced(&cluster, "plain");
        assert_eq!(cluster.wait_execution(1, &id, RUN).expect("ends")["status"], "succeeded");
    }
    let failures = |c: &Cluster| c.log_text(1).matches("sending traces to the OTLP collector failed").count();
    cluster.wait_for("the failed export to be logged", ARRIVE, |c| failures(c) >= 1).expect("logged");
    // More batches fail meanwhile (one every 100 ms); the log still holds one line.
    let (id, _) = trigger_traced(&cluster, "plain");
    assert_eq!(cluster.wait_execution(1, &id, RUN).expect("ends")["status"], "succeeded");
    assert_eq!(cluster.terminate(1, Duration::from_secs(20)).expect("stops"), Some(0), "a clean stop");
    assert_eq!(failures(&cluster), 1, "{}", cluster.log_text(1));
}
