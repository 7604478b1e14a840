//! The transport seam: every node-to-node message is one HTTP POST of an encoded body.
//!
//! [`HttpTransport`] is hyper's pooled client over any connector: production uses TCP
//! (`HttpConnector`); the simulation passes a connector over turmoil's network, so Raft RPC and
//! write forwarding run the same code in both.
//!
//! Each peer gets a pool of its own, and idle connections expire on tokio's clock. hyper's pool
//! keeps its hosts in a `HashMap` and, without a timer, judges idleness by the real clock: a pool
//! shared by several peers closes their connections in an order that differs from process to
//! process, and the simulation (virtual time, one seed, one run) would stop replaying exactly.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// Why a call to a peer failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    /// No connection could be made: the peer is down or unreachable.
    #[error("peer {addr} unreachable: {reason}")]
    Unreachable { addr: String, reason: String },
    #[error("peer {addr} did not answer within {timeout_ms} ms")]
    Timeout { addr: String, timeout_ms: u64 },
    /// The peer answered with an HTTP error.
    #[error("peer {addr} answered {status}: {body}")]
    Status { addr: String, status: u16, body: String },
    #[error("call to peer {addr} failed: {reason}")]
    Io { addr: String, reason: String },
}

/// Sends one request to a peer and returns the response body.
pub trait Transport: Clone + Send + Sync + 'static {
    fn post(
        &self,
        addr: &str,
        path: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> impl Future<Output = Result<Vec<u8>, TransportError>> + Send;
}

/// Peers a transport keeps a pool for; beyond it the least recently used pool is dropped (a
/// cluster has a handful of members, so this only bounds addresses of long-gone ones).
const MAX_PEER_POOLS: usize = 64;

/// How long an unused connection to a peer stays open.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A pooled HTTP/1.1 client over connector `C`, one pool per peer.
#[derive(Clone)]
pub struct HttpTransport<C = HttpConnector> {
    connector: C,
    /// Pool per peer address, with a use counter for eviction beyond [`MAX_PEER_POOLS`].
    pools: Arc<Mutex<PeerPools<C>>>,
    /// Sent as `X-Loom-Cluster-Secret` so peers can refuse strangers (empty: none sent).
    cluster_secret: String,
    /// `http`, or `https` when peers serve TLS.
    scheme: &'static str,
}

/// TCP that speaks TLS to `https` peers.
pub type TlsConnector = hyper_rustls::HttpsConnector<HttpConnector>;

fn tcp_connector() -> HttpConnector {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(2)));
    connector.enforce_http(false);
    connector
}

impl HttpTransport<TlsConnector> {
    /// Peers over TLS, trusting the roots in `tls` (the cluster's CA).
    pub fn tcp_tls(tls: rustls::ClientConfig) -> Self {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .wrap_connector(tcp_connector());
        HttpTransport { scheme: "https", ..Self::with_connector(connector) }
    }
}

impl HttpTransport<HttpConnector> {
    /// A TCP transport with Nagle off (Raft messages are small and latency-bound).
    pub fn tcp() -> Self {
        Self::with_connector(tcp_connector())
    }
}

struct PeerPools<C> {
    by_addr: BTreeMap<String, (u64, Client<C, Full<Bytes>>)>,
    uses: u64,
}

impl<C: Connect + Clone + Send + Sync + 'static> HttpTransport<C> {
    pub fn with_connector(connector: C) -> Self {
        HttpTransport {
            connector,
            pools: Arc::new(Mutex::new(PeerPools { by_addr: BTreeMap::new(), uses: 0 })),
            cluster_secret: String::new(),
            scheme: "http",
        }
    }

    /// The pool for `addr`, made on first use.
    fn client(&self, addr: &str) -> Client<C, Full<Bytes>> {
        let mut pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        pools.uses += 1;
        let used = pools.uses;
        if let Some((last_used, client)) = pools.by_addr.get_mut(addr) {
            *last_used = used;
            return client.clone();
        }
        if pools.by_addr.len() >= MAX_PEER_POOLS {
            let oldest = pools.by_addr.iter().min_by_key(|(_, (last, _))| *last).map(|(a, _)| a.clone());
            if let Some(oldest) = oldest {
                pools.by_addr.remove(&oldest);
            }
        }
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_max_idle_per_host(64)
            .build(self.connector.clone());
        pools.by_addr.insert(addr.to_string(), (used, client.clone()));
        client
    }

    /// Sends `secret` with every request.
    pub fn with_cluster_secret(mut self, secret: impl Into<String>) -> Self {
        self.cluster_secret = secret.into();
        self
    }
}

/// Header carrying the cluster secret on node-to-node requests.
pub const CLUSTER_SECRET_HEADER: &str = "x-loom-cluster-secret";

impl<C: Connect + Clone + Send + Sync + 'static> Transport for HttpTransport<C> {
    async fn post(&self, addr: &str, path: &str, body: Vec<u8>, timeout: Duration) -> Result<Vec<u8>, TransportError> {
        let io = |reason: String| TransportError::Io { addr: addr.to_string(), reason };
        let mut request = http::Request::post(format!("{}://{addr}{path}", self.scheme))
            .header(http::header::CONTENT_TYPE, "application/octet-stream");
        if !self.cluster_secret.is_empty() {
            request = request.header(CLUSTER_SECRET_HEADER, &self.cluster_secret);
        }
        let request = request.body(Full::new(Bytes::from(body))).map_err(|e| io(e.to_string()))?;
        let call = async {
            let response = self.client(addr).request(request).await.map_err(|e| {
                if e.is_connect() {
                    TransportError::Unreachable { addr: addr.to_string(), reason: e.to_string() }
                } else {
                    io(e.to_string())
                }
            })?;
            let status = response.status();
            let bytes = response.into_body().collect().await.map_err(|e| io(e.to_string()))?.to_bytes();
            if !status.is_success() {
                return Err(TransportError::Status {
                    addr: addr.to_string(),
                    status: status.as_u16(),
                    body: String::from_utf8_lossy(&bytes).chars().take(500).collect(),
                });
            }
            Ok(bytes.to_vec())
        };
        match tokio::time::timeout(timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(TransportError::Timeout { addr: addr.to_string(), timeout_ms: timeout.as_millis() as u64 }),
        }
    }
}
