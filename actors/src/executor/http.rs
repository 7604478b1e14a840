//! HTTP tasks: the contract users' backends implement (see docs/tasks.md).
//!
//! `POST url` with `{"execution_id","workflow_id","task_id","attempt","input","params",
//! "callback_url","callback_token","deadline"}` and `Idempotency-Key:
//! <execution_id>/<task_id>/<attempt>`, signed with `X-Loom-Signature` when the node has a signing
//! key for the workflow (docs/signatures.md). 200 `{"status","output","logs","error"}` ends the
//! attempt; 202 means the backend calls back (with `Authorization: Bearer <callback_token>`); 5xx,
//! 408, 429 and connection errors are retryable failures; other 4xx fail without retry. A failed
//! backend's body is kept only as a short excerpt, control characters removed.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use linkloom_core::ids::rfc3339;
use linkloom_core::state::AttemptResult;
use linkloom_wire::signature;
use serde_json::{json, Value};

use super::policy::TargetRules;
use super::{AttemptInfo, Outcome};

/// Most bytes of a backend's answer that are read.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// The seam for calls to users' backends: hyper in production, turmoil's network in simulation.
pub trait TaskHttp: Send + Sync + 'static {
    /// Sends `request`; answers the status and body, or why no answer came.
    fn call(
        &self,
        request: http::Request<Full<Bytes>>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<(u16, Bytes), CallError>>;
}

/// Why a call got no HTTP answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    #[error("connection failed: {0}")]
    Connect(String),
    /// The node's rules forbid every address the backend's name resolved to.
    #[error("{0}")]
    Refused(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Other(String),
}

/// hyper's pooled client over connector `C`.
pub struct HyperTaskHttp<C = HttpConnector> {
    client: Client<C, Full<Bytes>>,
}

/// Resolves a backend's name and answers only the addresses the node's rules let a task reach,
/// so the address that passed the check is the one connected to: there is no second lookup a
/// DNS server could answer differently (rebinding to 169.254.169.254, say).
#[derive(Debug, Clone)]
pub struct VettingResolver {
    rules: std::sync::Arc<TargetRules>,
}

/// A name that resolves to nothing a task may reach.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(String);

impl tower::Service<hyper_util::client::legacy::connect::dns::Name> for VettingResolver {
    type Response = std::vec::IntoIter<std::net::SocketAddr>;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: hyper_util::client::legacy::connect::dns::Name) -> Self::Future {
        let rules = self.rules.clone();
        Box::pin(async move {
            let host = name.as_str().to_ascii_lowercase();
            let found: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let by_name = rules.allows_name(&host, None);
            let mut refusals = Vec::new();
            let vetted: Vec<std::net::SocketAddr> = found
                .into_iter()
                .filter(|a| match rules.vet(a.ip(), by_name) {
                    Ok(()) => true,
                    Err(why) => {
                        refusals.push(why);
                        false
                    }
                })
                .collect();
            if vetted.is_empty() {
                let why = refusals.first().cloned().unwrap_or_else(|| "it resolves to no address".into());
                return Err(Box::new(Refused(format!("HTTP task to `{host}` refused: {why}"))) as Self::Error);
            }
            Ok(vetted.into_iter())
        })
    }
}

impl HyperTaskHttp<hyper_rustls::HttpsConnector<HttpConnector<VettingResolver>>> {
    /// `http://` and `https://` backends over TCP, connecting only to addresses `rules` allow.
    /// HTTPS trusts the Mozilla roots bundled in webpki-roots plus `extra_roots` (a private CA
    /// for internal backends).
    pub fn tcp(
        extra_roots: &[rustls::pki_types::CertificateDer<'static>],
        rules: TargetRules,
    ) -> Result<Self, rustls::Error> {
        let mut connector = HttpConnector::new_with_resolver(VettingResolver { rules: std::sync::Arc::new(rules) });
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        connector.enforce_http(false);
        let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        for cert in extra_roots {
            roots.add(cert.clone())?;
        }
        let tls =
            rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots)
                .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        Ok(Self::with_connector(connector))
    }
}

impl<C: Connect + Clone + Send + Sync + 'static> HyperTaskHttp<C> {
    pub fn with_connector(connector: C) -> Self {
        // Idle connections expire on tokio's clock (virtual in the simulation), not the real one.
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .pool_max_idle_per_host(32)
            .build(connector);
        HyperTaskHttp { client }
    }
}

impl<C: Connect + Clone + Send + Sync + 'static> TaskHttp for HyperTaskHttp<C> {
    fn call(
        &self,
        request: http::Request<Full<Bytes>>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<(u16, Bytes), CallError>> {
        let client = self.client.clone();
        Box::pin(async move {
            let call = async {
                let response = client.request(request).await.map_err(|e| {
                    // The chain holds the cause (hyper's own message is only "client error").
                    let mut text = e.to_string();
                    let mut source = std::error::Error::source(&e);
                    while let Some(cause) = source {
                        if let Some(refused) = cause.downcast_ref::<Refused>() {
                            return CallError::Refused(refused.0.clone());
                        }
                        text.push_str(&format!(": {cause}"));
                        source = cause.source();
                    }
                    if e.is_connect() {
                        CallError::Connect(text)
                    } else {
                        CallError::Other(text)
                    }
                })?;
                let status = response.status().as_u16();
                let body = http_body_util::Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
                    .collect()
                    .await
                    .map_err(|e| CallError::Other(format!("reading the answer: {e}")))?
                    .to_bytes();
                Ok((status, body))
            };
            tokio::time::timeout(timeout, call).await.map_err(|_| CallError::Timeout(timeout))?
        })
    }
}

/// A rendered HTTP task.
pub(crate) struct HttpCall {
    pub(crate) method: String,
    pub(crate) url: String,
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) input: Value,
    pub(crate) params: Value,
    pub(crate) callback_url: String,
    /// This attempt's own credential for the callback and heartbeat endpoints.
    pub(crate) callback_token: String,
    /// Signs the request (`X-Loom-Signature`) with (key id, secret) when set.
    pub(crate) signing_key: Option<(String, std::sync::Arc<str>)>,
}

/// Most characters of a failed backend's answer kept in the attempt's error.
const ERROR_EXCERPT_CHARS: usize = 200;

/// A failed backend's body as a short, single-line excerpt: control characters (line breaks,
/// escape sequences a log viewer might obey) become spaces, and it is cut to
/// [`ERROR_EXCERPT_CHARS`].
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String =
        text.chars().map(|c| if c.is_control() { ' ' } else { c }).take(ERROR_EXCERPT_CHARS).collect();
    if text.chars().count() > ERROR_EXCERPT_CHARS {
        out.push('…');
    }
    out
}

/// Without a timeout, a call waits at most this long for an answer.
const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(300);

pub(crate) async fn run_http(http: &dyn TaskHttp, rules: &TargetRules, info: &AttemptInfo, call: HttpCall) -> Outcome {
    if let Err(refused) = rules.check(&call.url).await {
        tracing::warn!(attempt_id = info.attempt_id, "{refused}");
        return Outcome::Done { result: AttemptResult::Failed { error: refused, retryable: false }, logs: None };
    }
    let body = json!({
        "execution_id": info.execution_id,
        "workflow_id": info.workflow_id,
        "task_id": info.task_id,
        "attempt": info.n,
        "input": call.input,
        "params": call.params,
        "callback_url": call.callback_url,
        "callback_token": call.callback_token,
        "deadline": info.deadline_ms().map(rfc3339),
    });
    let failed = |error: String, retryable: bool| Outcome::Done {
        result: AttemptResult::Failed { error, retryable },
        logs: None,
    };
    let body = body.to_string();
    let idempotency_key = format!("{}/{}/{}", info.execution_id, info.task_id, info.n);
    let mut builder = http::Request::builder()
        .method(call.method.as_str())
        .uri(&call.url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header("idempotency-key", &idempotency_key);
    for (name, value) in &call.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    if let Some((kid, secret)) = &call.signing_key {
        // Signed last, so a user header of the same name cannot replace it.
        let signed = signature::Signed {
            method: &call.method,
            url: &call.url,
            idempotency_key: &idempotency_key,
            body: body.as_bytes(),
        };
        let header = signature::sign(kid, secret.as_bytes(), info.started_at_ms.div_euclid(1000), &signed);
        builder = builder.header(signature::SIGNATURE_HEADER, header);
    }
    let request = match builder.body(Full::new(Bytes::from(body))) {
        Ok(r) => r,
        Err(e) => return failed(format!("invalid request to {}: {e}", call.url), false),
    };
    let timeout = info.timeout.unwrap_or(DEFAULT_CALL_TIMEOUT);
    match http.call(request, timeout).await {
        Err(CallError::Timeout(_)) => Outcome::Done { result: AttemptResult::TimedOut, logs: None },
        Err(CallError::Refused(why)) => failed(why, false),
        Err(e) => failed(format!("{} {}: {e}", call.method, call.url), true),
        Ok((202, _)) => match info.deadline_ms() {
            Some(deadline_ms) => Outcome::AwaitCallback { deadline_ms },
            None => {
                Outcome::AwaitCallback { deadline_ms: info.started_at_ms + DEFAULT_CALL_TIMEOUT.as_millis() as i64 }
            }
        },
        Ok((200..=299, body)) => interpret_answer(&body),
        Ok((status, body)) => {
            let retryable = status >= 500 || status == 408 || status == 429;
            failed(format!("{} {} answered {status}: {}", call.method, call.url, excerpt(&body)), retryable)
        }
    }
}

/// An answer body as an outcome (the contract is in `linkloom_core::task_answer`).
fn interpret_answer(body: &[u8]) -> Outcome {
    let (result, logs) = linkloom_core::task_answer::parse_task_answer(body);
    Outcome::Done { result, logs }
}
