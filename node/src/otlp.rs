//! Traces over OTLP/HTTP with protobuf, when `LOOM_OTLP_ENDPOINT` is set.
//!
//! A `tracing` layer turns two kinds of span into OpenTelemetry spans: the span of every HTTP
//! request (`linkloom_api::observe`) and the span of every task attempt
//! (`linkloom_actors::execution`), with the warnings and errors logged inside them as span
//! events. A batch processor on its own thread sends them to the collector, over hyper on a
//! one-thread runtime of its own (so the node's runtime can stop before the last spans are
//! sent). Those two modules name and parent their spans; this one only carries them out of the
//! process.
//!
//! Without an endpoint none of this exists: no layer, no thread, no propagator. The request and
//! attempt spans stay plain tracing spans, and their calls into `tracing-opentelemetry` find no
//! layer and do nothing (which is also what the simulation sees).
//!
//! A collector that is down or slow never holds the node up: finished spans wait in a queue of
//! [`MAX_QUEUED_SPANS`] and are dropped when it is full, one send gives up after
//! [`EXPORT_TIMEOUT`], and failures are logged at most once per [`FAILURE_LOG_INTERVAL`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing::{Level, Metadata, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::config::Otlp;

/// Finished spans waiting to be sent; beyond this they are dropped (the SDK's default size).
pub const MAX_QUEUED_SPANS: usize = 2_048;
/// One export (with the exporter's retries) gives up after this long.
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of a collector's answer that is read (an OTLP answer is a few bytes).
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Failed sends are logged at most this often.
pub const FAILURE_LOG_INTERVAL: Duration = Duration::from_secs(60);
/// The `service.name` of every span the node sends.
pub const SERVICE_NAME: &str = "loom-node";

/// The spans that are exported, by (target, name). `node/tests/otlp.rs` fails if one moves.
const EXPORTED_SPANS: [(&str, &str); 2] =
    [("linkloom_api::observe", "request"), ("linkloom_actors::execution", "attempt")];

/// The exporter, running. [`Traces::shutdown`] on a clean exit sends what is still queued.
pub struct Traces {
    provider: SdkTracerProvider,
    /// Carries the sends; outlives the node's runtime so the last spans can still go.
    runtime: tokio::runtime::Runtime,
}

impl Traces {
    /// Starts the batch processor's thread and the sending runtime's. HTTPS collectors are
    /// checked against the Mozilla roots of webpki-roots plus `ca` (`LOOM_TLS_CA`).
    pub fn start(
        otlp: &Otlp,
        node_id: u64,
        ca: &[rustls::pki_types::CertificateDer<'static>],
    ) -> anyhow::Result<Traces> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("loom-otlp")
            .enable_all()
            .build()
            .context("starting the OTLP exporter's runtime")?;
        let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .build(connector(ca)?);
        let client = ExportClient { http, runtime: runtime.handle().clone(), failures: FailureLog::default() };
        let headers = otlp.headers.iter().map(|(name, value)| (name.clone(), value.0.clone())).collect();
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(otlp.endpoint.as_str())
            .with_timeout(EXPORT_TIMEOUT)
            .with_headers(headers)
            .build()
            .context("setting up the OTLP exporter (otlp_endpoint)")?;
        let batches = BatchConfigBuilder::default().with_max_queue_size(MAX_QUEUED_SPANS).build();
        let processor = BatchSpanProcessor::builder(exporter).with_batch_config(batches).build();
        let resource = Resource::builder_empty()
            .with_service_name(SERVICE_NAME)
            .with_attributes([
                KeyValue::new("service.instance.id", node_id.to_string()),
                KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            ])
            .build();
        let provider = SdkTracerProvider::builder().with_span_processor(processor).with_resource(resource).build();
        // A caller's W3C `traceparent` becomes the parent of its request's span (api's observe).
        opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
        Ok(Traces { provider, runtime })
    }

    /// The layer that hands the exported spans to the processor.
    pub fn layer<S>(&self) -> impl Layer<S> + Send + Sync + 'static
    where
        S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
    {
        let filter = tracing_subscriber::filter::filter_fn(exported).with_max_level_hint(LevelFilter::INFO);
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer(SERVICE_NAME))
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_filter(filter)
    }

    /// Sends the spans still queued (one last export, bounded by [`EXPORT_TIMEOUT`]) and stops
    /// the threads. Call after the node's runtime has stopped, so the spans it ended are sent.
    pub fn shutdown(self) {
        match self.provider.shutdown_with_timeout(EXPORT_TIMEOUT) {
            Ok(()) => tracing::info!("trace exporter stopped"),
            Err(e) => tracing::warn!("the trace exporter did not stop cleanly: {e}"),
        }
        self.runtime.shutdown_timeout(Duration::from_secs(1));
    }
}

/// The request and attempt spans, and warnings and errors (events inside them become span events).
fn exported(meta: &Metadata<'_>) -> bool {
    if meta.is_span() {
        EXPORTED_SPANS.contains(&(meta.target(), meta.name()))
    } else {
        *meta.level() <= Level::WARN
    }
}

fn connector(
    ca: &[rustls::pki_types::CertificateDer<'static>],
) -> anyhow::Result<hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>> {
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    for cert in ca {
        roots.add(cert.clone()).context("adding the CA certificate for the OTLP collector")?;
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_secs(5)));
    http.enforce_http(false);
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http))
}

type Connector = hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;
type Hyper = hyper_util::client::legacy::Client<Connector, http_body_util::Full<Bytes>>;

/// The exporter's HTTP client: hyper (HTTP/1.1, rustls) on the exporter's runtime (the batch
/// processor's thread has none), with failures logged rarely.
#[derive(Debug)]
struct ExportClient {
    http: Hyper,
    runtime: tokio::runtime::Handle,
    failures: FailureLog,
}

#[async_trait::async_trait]
impl HttpClient for ExportClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let http = self.http.clone();
        // A runtime that is shutting down cancels the send: an error like any other.
        let answer = match self.runtime.spawn(send(http, request)).await {
            Ok(answer) => answer,
            Err(e) => Err(Box::new(e) as HttpError),
        };
        match &answer {
            Ok(response) if response.status().is_success() => self.failures.succeeded(),
            Ok(response) => self.failures.failed(&format!("the collector answered {}", response.status())),
            Err(e) => self.failures.failed(&causes(e.as_ref())),
        }
        answer
    }
}

/// One POST to the collector, its answer read up to [`MAX_ANSWER_BYTES`], all within
/// [`EXPORT_TIMEOUT`].
async fn send(http: Hyper, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
    use http_body_util::BodyExt;
    let (parts, body) = request.into_parts();
    let request = Request::from_parts(parts, http_body_util::Full::new(body));
    let exchange = async {
        let (parts, body) = http.request(request).await?.into_parts();
        let body = http_body_util::Limited::new(body, MAX_ANSWER_BYTES).collect().await?.to_bytes();
        Ok::<_, HttpError>(Response::from_parts(parts, body))
    };
    match tokio::time::timeout(EXPORT_TIMEOUT, exchange).await {
        Ok(answer) => answer,
        Err(_) => Err(format!("no answer within {EXPORT_TIMEOUT:?}").into()),
    }
}

/// An error and its sources, `a: b: c`.
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Logs failed sends at most once per [`FAILURE_LOG_INTERVAL`], and a recovery after a logged
/// failure, so an unreachable collector costs a log line a minute.
#[derive(Debug, Default)]
struct FailureLog(Mutex<Failures>);

#[derive(Debug, Default)]
struct Failures {
    last_logged: Option<Instant>,
    /// Failed sends since the last line logged.
    unlogged: u64,
    /// A failure was logged and no send has worked since.
    reported: bool,
}

impl FailureLog {
    fn failed(&self, why: &str) {
        let mut failures = self.0.lock().unwrap_or_else(|p| p.into_inner());
        failures.unlogged += 1;
        if failures.last_logged.is_some_and(|at| at.elapsed() < FAILURE_LOG_INTERVAL) {
            return;
        }
        tracing::warn!(
            failed_sends = failures.unlogged,
            "sending traces to the OTLP collector failed: {why}; finished spans queue up to {MAX_QUEUED_SPANS} \
             and are dropped beyond that (logged at most once a minute)"
        );
        failures.last_logged = Some(Instant::now());
        failures.unlogged = 0;
        failures.reported = true;
    }

    fn succeeded(&self) {
        let mut failures = self.0.lock().unwrap_or_else(|p| p.into_inner());
        failures.unlogged = 0;
        if std::mem::take(&mut failures.reported) {
            tracing::info!("sending traces to the OTLP collector works again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_collector_is_logged_once_per_interval() {
        let log = FailureLog::default();
        log.failed("refused");
        log.failed("refused");
        log.failed("refused");
        let failures = log.0.lock().unwrap();
        assert_eq!(failures.unlogged, 2, "the first is logged, the next wait for the interval");
        assert!(failures.reported);
        drop(failures);
        log.succeeded();
        let failures = log.0.lock().unwrap();
        assert!(!failures.reported && failures.unlogged == 0);
    }
}
