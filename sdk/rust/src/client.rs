//! [`Client`]: the connection to a Link Loom cluster, and the failover every call goes through.
//!
//! Every node serves the whole API and forwards writes to the leader, so a client only needs one
//! live node. It keeps the list of all of them, starts with the one that answered last, and moves
//! on to the next when a node cannot be reached. It never repeats a request the server answered
//! (an error answer is the cluster's answer, whichever node gave it), except a 503 (no leader yet,
//! or a node still starting), which is tried on the next node after a short, bounded pause.
//!
//! A write whose connection breaks after it was sent may have taken effect, so only requests that
//! are safe to repeat (GET, PUT, DELETE) move to another node then; a POST reports the error.
//!
//! The endpoints themselves live next to their types (`workflow.rs`, `execution.rs`, `logs.rs`,
//! `cluster.rs`, `backend.rs`); this file is the transport they share.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::protocol::{classify, retry_after as retry_after_pause, Disposition, Outcome, RequestKind};
use crate::Error;

/// Longest a request may take, from connecting to the end of the answer, unless configured.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a connection may take to open, unless configured; past it the next node is tried.
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// First pause after a 503, doubled after each one up to [`UNAVAILABLE_BACKOFF_MAX`].
const UNAVAILABLE_BACKOFF_FIRST: Duration = Duration::from_millis(100);
const UNAVAILABLE_BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Longest pause after a 429 that carried no `Retry-After`.
const RATE_LIMITED_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Most bytes read from one answer; a full page of executions is far smaller.
const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;
/// Most servers one client takes.
const MAX_SERVERS: usize = 64;

/// A client for one Link Loom cluster. Cheap to clone: clones share their connections and
/// their memory of which server answered last.
///
/// ```no_run
/// # async fn demo() -> Result<(), linkloom::Error> {
/// let client = linkloom::Client::new(["http://127.0.0.1:8081", "http://127.0.0.1:8082"])?;
/// let id = client.trigger("daily-report", serde_json::json!({"region": "us"})).await?;
/// let execution = client.wait_for_execution(&id, std::time::Duration::from_secs(60)).await?;
/// println!("{id}: {:?}", execution.status);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

/// What clones of a [`Client`] share.
struct Inner {
    http: reqwest::Client,
    /// Base URLs without a trailing slash, in the order given.
    servers: Vec<String>,
    /// Index into `servers` of the one that answered last: the first one tried.
    current: AtomicUsize,
    token: Option<String>,
    timeout: Duration,
    /// Requests sent per call at most, counting every server tried.
    max_attempts: usize,
    /// Reads ask for `consistency=stale` (see [`ClientBuilder::stale_reads`]).
    stale_reads: bool,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("servers", &self.inner.servers)
            .field("current", &self.current_server())
            .field("token", &self.inner.token.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.inner.timeout)
            .field("max_attempts", &self.inner.max_attempts)
            .finish()
    }
}

/// Settings for a [`Client`]; start with [`Client::builder`].
///
/// ```
/// use std::time::Duration;
///
/// let client = linkloom::Client::builder()
///     .servers(["http://127.0.0.1:8081", "http://127.0.0.1:8082", "http://127.0.0.1:8083"])
///     .token("s3cret")
///     .timeout(Duration::from_secs(10))
///     .build()?;
/// # Ok::<(), linkloom::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    servers: Vec<String>,
    token: Option<String>,
    timeout: Duration,
    connect_timeout: Duration,
    max_attempts: Option<usize>,
    /// Extra CA certificates (PEM) to trust for `https://` servers.
    root_certificates: Vec<Vec<u8>>,
    stale_reads: bool,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            servers: Vec::new(),
            token: None,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_attempts: None,
            root_certificates: Vec::new(),
            stale_reads: false,
        }
    }
}

impl ClientBuilder {
    /// Adds servers (`http://host:port`, optionally with a path prefix), in the order to try them.
    ///
    /// ```
    /// let builder = linkloom::Client::builder().servers(["http://127.0.0.1:8081", "http://127.0.0.1:8082"]);
    /// # builder.build()?;
    /// # Ok::<(), linkloom::Error>(())
    /// ```
    pub fn servers(mut self, urls: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.servers.extend(urls.into_iter().map(Into::into));
        self
    }

    /// Adds one server.
    ///
    /// ```
    /// let client = linkloom::Client::builder().server("http://127.0.0.1:8080").build()?;
    /// # Ok::<(), linkloom::Error>(())
    /// ```
    pub fn server(mut self, url: impl Into<String>) -> Self {
        self.servers.push(url.into());
        self
    }

    /// Sends `Authorization: Bearer <token>` with every request.
    ///
    /// ```
    /// let client = linkloom::Client::builder().server("http://127.0.0.1:8080").token("s3cret").build()?;
    /// # Ok::<(), linkloom::Error>(())
    /// ```
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Trusts the CA certificate(s) in `pem` for `https://` servers, besides the public roots:
    /// for a cluster whose nodes have certificates from a private CA (`LOOM_TLS_CA`).
    ///
    /// ```
    /// let pem = b"not a certificate";
    /// let built = linkloom::Client::builder().server("https://127.0.0.1:8443").root_certificate_pem(pem).build();
    /// assert!(built.is_err(), "a file without a PEM certificate is refused");
    /// ```
    pub fn root_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_certificates.push(pem.into());
        self
    }

    /// Longest one request may take, from connecting to the end of the answer (default 30 s).
    /// Following logs is not bounded by it.
    ///
    /// ```
    /// let client = linkloom::Client::builder()
    ///     .server("http://127.0.0.1:8080")
    ///     .timeout(std::time::Duration::from_secs(5))
    ///     .build()?;
    /// # Ok::<(), linkloom::Error>(())
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Longest a connection may take to open (default 3 s); past it the next server is tried.
    ///
    /// ```
    /// let client = linkloom::Client::builder()
    ///     .server("http://127.0.0.1:8080")
    ///     .connect_timeout(std::time::Duration::from_millis(500))
    ///     .build()?;
    /// # Ok::<(), linkloom::Error>(())
    /// ```
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Requests one call may send in all, counting every server tried (default: twice the number
    /// of servers, at least 3). Each server that cannot be reached is tried once per call.
    ///
    /// ```
    /// let client = linkloom::Client::builder().server("http://127.0.0.1:8080").max_attempts(5).build()?;
    /// # Ok::<(), linkloom::Error>(())
    /// ```
    pub fn max_attempts(mut self, attempts: usize) -> Self {
        self.max_attempts = Some(attempts);
        self
    }

    /// Reads answer from the node asked, without first checking with the leader that it is up to
    /// date (`?consistency=stale`): faster, and still answered by a node cut off from the leader,
    /// but possibly behind. Writes are unaffected. Default: off (reads are linearizable).
    ///
    /// ```
    /// let watcher = linkloom::Client::builder().server("http://127.0.0.1:8080").stale_reads(true).build()?;
    /// # Ok::<(), linkloom::Error>(())
    /// ```
    pub fn stale_reads(mut self, stale: bool) -> Self {
        self.stale_reads = stale;
        self
    }

    /// Checks the settings and builds the client. Fails with [`Error::Invalid`] for an empty
    /// server list or a URL that is not `http://` or `https://`.
    ///
    /// ```
    /// assert!(linkloom::Client::builder().build().is_err());
    /// assert!(linkloom::Client::builder().server("ftp://x").build().is_err());
    /// ```
    pub fn build(self) -> Result<Client, Error> {
        let mut roots = Vec::new();
        for pem in &self.root_certificates {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| Error::Invalid(format!("the CA certificate is not PEM: {e}")))?;
            if certs.is_empty() {
                return Err(Error::Invalid("the CA certificate file holds no PEM certificate".into()));
            }
            roots.extend(certs);
        }
        let mut servers: Vec<String> = Vec::new();
        for url in &self.servers {
            let url = normalize_server(url)?;
            if !servers.contains(&url) {
                servers.push(url);
            }
        }
        if servers.is_empty() {
            return Err(Error::Invalid("no server URL given".into()));
        }
        if servers.len() > MAX_SERVERS {
            return Err(Error::Invalid(format!("{} servers given; at most {MAX_SERVERS} are allowed", servers.len())));
        }
        if self.max_attempts == Some(0) {
            return Err(Error::Invalid("max_attempts must be at least 1".into()));
        }
        if self.token.as_deref().is_some_and(|t| t.is_empty() || t.chars().any(char::is_control)) {
            return Err(Error::Invalid("the token is empty or contains control characters".into()));
        }
        let max_attempts = self.max_attempts.unwrap_or((2 * servers.len()).max(3));
        let http = http_client(self.connect_timeout, &roots)?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                servers,
                current: AtomicUsize::new(0),
                token: self.token,
                timeout: self.timeout,
                max_attempts,
                stale_reads: self.stale_reads,
            }),
        })
    }
}

/// A reqwest client with this crate's settings. TLS uses rustls with the `ring` provider, which
/// is installed as the process default unless the program installed one already.
pub(crate) fn http_client(connect_timeout: Duration, roots: &[reqwest::Certificate]) -> Result<reqwest::Client, Error> {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race with another thread installing one is fine: any provider will do.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let mut builder = reqwest::Client::builder();
    for root in roots {
        builder = builder.add_root_certificate(root.clone());
    }
    builder
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .user_agent(concat!("linkloom-rust/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Invalid(format!("could not set up HTTP: {e}")))
}

/// `http://host:port/prefix/` → `http://host:port/prefix`, or why the URL cannot be a server.
fn normalize_server(url: &str) -> Result<String, Error> {
    let trimmed = url.trim().trim_end_matches('/');
    let parsed =
        reqwest::Url::parse(trimmed).map_err(|e| Error::Invalid(format!("server URL `{url}` is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::Invalid(format!("server URL `{url}` must start with http:// or https://")));
    }
    if parsed.host_str().is_none() || parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(Error::Invalid(format!("server URL `{url}` must be scheme://host[:port][/path], nothing more")));
    }
    Ok(trimmed.to_string())
}

impl Client {
    /// A client for the servers at `urls` (every node of the cluster, or as many as you know),
    /// with default settings.
    ///
    /// ```
    /// let client = linkloom::Client::new(["http://127.0.0.1:8081", "http://127.0.0.1:8082"])?;
    /// assert_eq!(client.current_server(), "http://127.0.0.1:8081");
    /// # Ok::<(), linkloom::Error>(())
    /// ```
    pub fn new(urls: impl IntoIterator<Item = impl Into<String>>) -> Result<Client, Error> {
        Client::builder().servers(urls).build()
    }

    /// A client for a comma-separated list of servers, as in an environment variable.
    ///
    /// ```
    /// let client = linkloom::Client::from_list("http://127.0.0.1:8081, http://127.0.0.1:8082/")?;
    /// assert_eq!(client.current_server(), "http://127.0.0.1:8081");
    /// # Ok::<(), linkloom::Error>(())
    /// ```
    pub fn from_list(list: &str) -> Result<Client, Error> {
        Client::new(list.split(',').map(str::trim).filter(|s| !s.is_empty()))
    }

    /// Settings beyond the server list: token, timeouts, attempts.
    ///
    /// ```
    /// let client = linkloom::Client::builder().server("http://127.0.0.1:8080").build()?;
    /// # Ok::<(), linkloom::Error>(())
    /// ```
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The server the next call tries first: the one that answered last.
    ///
    /// ```
    /// let client = linkloom::Client::new(["http://127.0.0.1:8081"])?;
    /// assert_eq!(client.current_server(), "http://127.0.0.1:8081");
    /// # Ok::<(), linkloom::Error>(())
    /// ```
    pub fn current_server(&self) -> String {
        self.inner.servers[self.current()].clone()
    }

    /// Sends any request to the API and answers its JSON (`null` for an empty answer), with the
    /// same failover as every other call. For endpoints this crate does not wrap yet.
    ///
    /// `path` starts with `/` and may carry a query string; `body`, if any, is sent as JSON.
    ///
    /// ```no_run
    /// # async fn demo(client: linkloom::Client) -> Result<(), linkloom::Error> {
    /// use linkloom::Method;
    /// let versions = client.request_json(Method::GET, "/api/v1/workflows/nightly/versions", None).await?;
    /// let backfill = client
    ///     .request_json(
    ///         Method::POST,
    ///         "/api/v1/workflows/nightly/backfill",
    ///         Some(&serde_json::json!({"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"})),
    ///     )
    ///     .await?;
    /// println!("{versions} {backfill}");
    /// # Ok(()) }
    /// ```
    pub async fn request_json(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value, Error> {
        if !path.starts_with('/') {
            return Err(Error::Invalid(format!("path `{path}` must start with /")));
        }
        let mut request = ApiRequest::new(method, path.to_string());
        if let Some(body) = body {
            request = request.json(body)?;
        }
        let answer = self.call(&request).await?;
        if answer.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&answer)
            .map_err(|e| Error::Decode(format!("the answer to {} {path}: {e}", request.method)))
    }

    /// A client like this one (same servers, token and connections) whose reads are stale or
    /// not; see [`ClientBuilder::stale_reads`].
    ///
    /// ```
    /// let client = linkloom::Client::new(["http://127.0.0.1:8080"])?;
    /// let dashboard = client.with_stale_reads(true);
    /// # let _ = dashboard;
    /// # Ok::<(), linkloom::Error>(())
    /// ```
    pub fn with_stale_reads(&self, stale: bool) -> Client {
        self.derived(self.current(), stale)
    }

    /// A client like this one (same servers, token and connections) whose next call tries the
    /// server at `index` (counted modulo the list) first: spreads many clients, or workers, over
    /// the cluster's nodes. Failover still goes round the whole list.
    ///
    /// ```
    /// let client = linkloom::Client::new(["http://127.0.0.1:8081", "http://127.0.0.1:8082"])?;
    /// assert_eq!(client.starting_at(1).current_server(), "http://127.0.0.1:8082");
    /// assert_eq!(client.starting_at(2).current_server(), "http://127.0.0.1:8081");
    /// # Ok::<(), linkloom::Error>(())
    /// ```
    pub fn starting_at(&self, index: usize) -> Client {
        self.derived(index % self.inner.servers.len(), self.inner.stale_reads)
    }

    fn derived(&self, current: usize, stale_reads: bool) -> Client {
        let inner = &self.inner;
        Client {
            inner: Arc::new(Inner {
                http: inner.http.clone(),
                servers: inner.servers.clone(),
                current: AtomicUsize::new(current),
                token: inner.token.clone(),
                timeout: inner.timeout,
                max_attempts: inner.max_attempts,
                stale_reads,
            }),
        }
    }

    // ---- Failover state, shared with the rest of the crate (the worker uses it too). ----

    /// Every server, normalized, in the order given; never empty.
    ///
    /// ```
    /// let client = linkloom::Client::new(["http://127.0.0.1:8081/", "http://127.0.0.1:8082"])?;
    /// assert_eq!(client.servers(), ["http://127.0.0.1:8081", "http://127.0.0.1:8082"]);
    /// # Ok::<(), linkloom::Error>(())
    /// ```
    pub fn servers(&self) -> &[String] {
        &self.inner.servers
    }

    /// Index of the server to try first.
    pub(crate) fn current(&self) -> usize {
        self.inner.current.load(Ordering::Relaxed) % self.inner.servers.len()
    }

    /// The index after `from`, wrapping around.
    pub(crate) fn advance(&self, from: usize) -> usize {
        (from + 1) % self.inner.servers.len()
    }

    /// Remembers that server `index` answered.
    pub(crate) fn set_current(&self, index: usize) {
        self.inner.current.store(index % self.inner.servers.len(), Ordering::Relaxed);
    }

    /// The pooled HTTP client, for calls that need more than [`Client::call`] gives.
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// The configured per-request timeout.
    pub(crate) fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// Sends `request` and answers the body of a 2xx answer; any other answer is an
    /// [`Error::Api`].
    pub(crate) async fn call(&self, request: &ApiRequest) -> Result<Bytes, Error> {
        let (body, complete) = match self.send(request).await?.0 {
            Reply::Full { body, complete, .. } => (body, complete),
            Reply::Stream(response) => read_limited(response).await.map_err(Error::Http)?,
        };
        if !complete {
            return Err(Error::Decode(format!("an answer larger than {MAX_ANSWER_BYTES} bytes")));
        }
        Ok(body)
    }

    /// [`Client::call`], decoding the JSON answer as `T`; `what` names it in errors.
    pub(crate) async fn call_json<T: DeserializeOwned>(&self, request: &ApiRequest, what: &str) -> Result<T, Error> {
        let body = self.call(request).await?;
        serde_json::from_slice(&body).map_err(|e| Error::Decode(format!("{what}: {e}")))
    }

    /// Every item of a paged list: pages of the API's largest size, followed to the end (at most
    /// `max_pages`, so a server that never stops cannot keep the caller forever).
    pub(crate) async fn all_pages<T: DeserializeOwned>(
        &self,
        request: ApiRequest,
        what: &str,
        max_pages: usize,
    ) -> Result<Vec<T>, Error> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..max_pages {
            let mut page_request = request.clone().query("limit", MAX_PAGE_SIZE.to_string());
            if let Some(cursor) = &cursor {
                page_request = page_request.query("cursor", cursor.clone());
            }
            let page: Page<T> = self.call_json(&page_request, what).await?;
            items.extend(page.items);
            match page.next_cursor {
                // A cursor that does not move would loop forever; a server never sends one.
                Some(next) if cursor.as_deref() != Some(next.as_str()) => cursor = Some(next),
                _ => return Ok(items),
            }
        }
        Err(Error::Invalid(format!("{what}: more than {} items", max_pages * MAX_PAGE_SIZE as usize)))
    }

    /// Sends `request` as a streaming request (no total timeout) and answers the open 2xx
    /// response, whose body the caller reads as it arrives.
    pub(crate) async fn open(&self, request: &ApiRequest) -> Result<reqwest::Response, Error> {
        self.open_with_server(request).await.map(|(response, _)| response)
    }

    /// [`Client::open`], also answering the index of the server that answered.
    pub(crate) async fn open_with_server(&self, request: &ApiRequest) -> Result<(reqwest::Response, usize), Error> {
        let mut request = request.clone();
        request.streaming = true;
        match self.send(&request).await? {
            (Reply::Stream(response), index) => Ok((response, index)),
            (Reply::Full { status, .. }, _) => {
                Err(Error::Decode(format!("a streaming answer; got a whole one ({status})")))
            }
        }
    }

    /// The failover loop: tries servers from the current one until one answers something other
    /// than 503, or every server proved unreachable, or the attempts run out. Answers the reply
    /// and the index of the server that gave it.
    async fn send(&self, request: &ApiRequest) -> Result<(Reply, usize), Error> {
        enum Last {
            Unavailable(Error),
            Unreachable(reqwest::Error, String),
        }
        let servers = self.servers();
        // A request with an idempotency key applies once however often it is sent, so a
        // connection lost mid-request is retried too (through the next server).
        let kind = RequestKind {
            method: &request.method,
            has_idempotency_key: request.idempotency_key.is_some(),
            attempt_call: false,
        };
        let mut index = self.current();
        let mut unreachable: Vec<String> = Vec::new();
        let mut last: Option<Last> = None;
        let mut pause = UNAVAILABLE_BACKOFF_FIRST;
        for attempt in 0..self.inner.max_attempts {
            let base = &servers[index];
            let url = request_url(base, request)?;
            let more = attempt + 1 < self.inner.max_attempts;
            match self.send_once(url, request).await {
                Ok(Reply::Full { status, body, complete, retry_after }) => {
                    let outcome = Outcome::Answer { status, body: &body, retry_after: retry_after.as_deref() };
                    match classify(&kind, &outcome) {
                        Disposition::Success => {
                            self.set_current(index);
                            return Ok((Reply::Full { status, body, complete, retry_after }, index));
                        }
                        // No leader yet, or a node still starting: the next node after a pause.
                        Disposition::Failover => {
                            let error = Error::from_answer(status, &body);
                            tracing::debug!(server = %base, error = %error, "server unavailable; trying the next one");
                            last = Some(Last::Unavailable(error));
                            index = self.advance(index);
                            if more {
                                tokio::time::sleep(pause).await;
                                pause = (pause * 2).min(UNAVAILABLE_BACKOFF_MAX);
                            }
                        }
                        // Over the token's rate: the node refused before doing anything, so any
                        // request may be sent again once the bucket refills (its Retry-After).
                        Disposition::Retry if more => {
                            let wait = retry_after_pause(retry_after.as_deref()).unwrap_or(pause);
                            tracing::debug!(server = %base, "rate limited; waiting {wait:?}");
                            last = Some(Last::Unavailable(Error::from_answer(status, &body)));
                            tokio::time::sleep(wait).await;
                            pause = (pause * 2).min(RATE_LIMITED_BACKOFF_MAX);
                        }
                        _ => {
                            self.set_current(index);
                            return Err(Error::from_answer(status, &body));
                        }
                    }
                }
                Ok(reply) => {
                    self.set_current(index);
                    return Ok((reply, index));
                }
                Err(e) if e.is_builder() => return Err(self.transport_error(e, request, base)),
                Err(e) => {
                    let outcome = if e.is_connect() {
                        Outcome::Refused
                    } else if e.is_timeout() {
                        Outcome::Timeout
                    } else {
                        Outcome::Reset
                    };
                    if classify(&kind, &outcome) != Disposition::Failover {
                        return Err(self.transport_error(e, request, base));
                    }
                    tracing::debug!(server = %base, error = %e, "server unreachable; trying the next one");
                    if !unreachable.contains(base) {
                        unreachable.push(base.clone());
                    }
                    if unreachable.len() == servers.len() {
                        if e.is_connect() {
                            return Err(Error::Connect { urls: unreachable, source: e });
                        }
                        return Err(self.transport_error(e, request, base));
                    }
                    last = Some(Last::Unreachable(e, base.clone()));
                    index = self.advance(index);
                }
            }
        }
        Err(match last {
            Some(Last::Unavailable(error)) => error,
            Some(Last::Unreachable(e, _)) if e.is_connect() => Error::Connect { urls: unreachable, source: e },
            Some(Last::Unreachable(e, base)) => self.transport_error(e, request, &base),
            None => Error::Invalid("max_attempts is 0".into()),
        })
    }

    /// One request to one server. A streaming request's 2xx body is left unread.
    async fn send_once(&self, mut url: reqwest::Url, request: &ApiRequest) -> Result<Reply, reqwest::Error> {
        if request.read && self.inner.stale_reads {
            url.query_pairs_mut().append_pair("consistency", "stale");
        }
        let mut builder = self.inner.http.request(request.method.clone(), url);
        if !request.streaming {
            builder = builder.timeout(request.timeout.unwrap_or(self.inner.timeout));
        }
        if let Some(token) = request.bearer.as_ref().or(self.inner.token.as_ref()) {
            builder = builder.bearer_auth(token);
        }
        if let Some(accept) = request.accept {
            builder = builder.header(reqwest::header::ACCEPT, accept);
        }
        if let Some(key) = &request.idempotency_key {
            builder = builder.header(IDEMPOTENCY_KEY, key.as_str());
        }
        match &request.body {
            Some((content_type, body)) => {
                builder = builder.header(reqwest::header::CONTENT_TYPE, *content_type).body(body.clone());
            }
            // Nodes refuse writes without a JSON or YAML type (what a cross-site web page
            // cannot send): say JSON, with an empty body.
            None if matches!(request.method, Method::POST | Method::PUT | Method::PATCH) => {
                builder = builder.header(reqwest::header::CONTENT_TYPE, "application/json");
            }
            None => {}
        }
        let response = builder.send().await?;
        let status = response.status().as_u16();
        if request.streaming && (200..300).contains(&status) {
            return Ok(Reply::Stream(response));
        }
        let retry_after =
            response.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_string);
        let (body, complete) = read_limited(response).await?;
        Ok(Reply::Full { status, body, complete, retry_after })
    }

    fn transport_error(&self, e: reqwest::Error, request: &ApiRequest, base: &str) -> Error {
        if e.is_timeout() && !e.is_connect() {
            let note = match &request.idempotency_key {
                Some(key) => format!(
                    " (it may have taken effect; sending it again with Idempotency-Key {key} applies it at most once)"
                ),
                None if request.method == Method::POST => " (it may have taken effect)".to_string(),
                None => String::new(),
            };
            return Error::Timeout {
                what: format!("{} {base}{}{note}", request.method, request.path),
                after: request.timeout.unwrap_or(self.inner.timeout),
            };
        }
        Error::Http(e)
    }
}

/// The URL of `request` on server `base`.
fn request_url(base: &str, request: &ApiRequest) -> Result<reqwest::Url, Error> {
    let mut url = reqwest::Url::parse(&format!("{base}{}", request.path))
        .map_err(|e| Error::Invalid(format!("`{}` does not make a URL: {e}", request.path)))?;
    if !request.query.is_empty() {
        url.query_pairs_mut().extend_pairs(request.query.iter().map(|(k, v)| (*k, v.as_str())));
    }
    Ok(url)
}

/// Reads at most [`MAX_ANSWER_BYTES`] of `response`; the flag says whether that was all of it.
async fn read_limited(mut response: reqwest::Response) -> Result<(Bytes, bool), reqwest::Error> {
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Ok((body.freeze(), false));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body.freeze(), true))
}

/// What one server answered.
pub(crate) enum Reply {
    /// Status and body; `complete` is false if the body was cut at [`MAX_ANSWER_BYTES`].
    Full { status: u16, body: Bytes, complete: bool, retry_after: Option<String> },
    /// A 2xx answer to a streaming request, its body still to read.
    Stream(reqwest::Response),
}

/// A request as the failover loop sends it: everything needed to send it again elsewhere.
#[derive(Debug, Clone)]
pub(crate) struct ApiRequest {
    pub(crate) method: Method,
    /// Starts with `/`; ids already encoded with [`segment`].
    pub(crate) path: String,
    pub(crate) query: Vec<(&'static str, String)>,
    pub(crate) body: Option<(&'static str, Bytes)>,
    pub(crate) accept: Option<&'static str>,
    /// `None`: the client's timeout.
    pub(crate) timeout: Option<Duration>,
    /// The answer is read as it arrives, without the total timeout.
    pub(crate) streaming: bool,
    /// Sent as `Idempotency-Key`: the same for every retry of this request, so the cluster
    /// applies it once (see [`new_idempotency_key`]).
    pub(crate) idempotency_key: Option<String>,
    /// Sent as the bearer token instead of the client's (an attempt's callback token).
    pub(crate) bearer: Option<String>,
    /// A read that takes `?consistency=` (see [`ClientBuilder::stale_reads`]).
    pub(crate) read: bool,
}

/// The largest page the API serves by default (`LOOM_MAX_PAGE_SIZE`).
pub(crate) const MAX_PAGE_SIZE: u32 = 500;

/// The request header that makes a mutating request apply once however often it is sent.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// A fresh idempotency key: 128 random bits in hex, one per logical operation.
pub fn new_idempotency_key() -> String {
    format!("{:032x}", rand::random::<u128>())
}

impl ApiRequest {
    /// A request; a mutating one (POST, PUT, PATCH, DELETE) gets a fresh idempotency key, which
    /// every retry of it reuses.
    pub(crate) fn new(method: Method, path: String) -> Self {
        let mutating = matches!(method, Method::POST | Method::PUT | Method::PATCH | Method::DELETE);
        ApiRequest {
            idempotency_key: mutating.then(new_idempotency_key),
            method,
            path,
            query: Vec::new(),
            body: None,
            accept: None,
            timeout: None,
            streaming: false,
            bearer: None,
            read: false,
        }
    }

    /// A read of replicated state: linearizable, or stale if the client asks for stale reads.
    pub(crate) fn read(path: String) -> Self {
        ApiRequest { read: true, ..Self::new(Method::GET, path) }
    }

    /// Authenticates with `token` instead of the client's token.
    pub(crate) fn bearer(mut self, token: impl Into<String>) -> Self {
        self.bearer = Some(token.into());
        self
    }

    /// Uses the caller's idempotency key instead of a fresh one (an operation that spans
    /// processes: the same key from a restarted client still applies once).
    pub(crate) fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    pub(crate) fn get(path: String) -> Self {
        Self::new(Method::GET, path)
    }

    pub(crate) fn post(path: String) -> Self {
        Self::new(Method::POST, path)
    }

    pub(crate) fn query(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.query.push((name, value.into()));
        self
    }

    pub(crate) fn json(mut self, value: &impl Serialize) -> Result<Self, Error> {
        let bytes = serde_json::to_vec(value).map_err(|e| Error::Invalid(format!("the body is not JSON: {e}")))?;
        self.body = Some(("application/json", Bytes::from(bytes)));
        Ok(self)
    }

    pub(crate) fn body(mut self, content_type: &'static str, bytes: impl Into<Bytes>) -> Self {
        self.body = Some((content_type, bytes.into()));
        self
    }

    pub(crate) fn accept(mut self, accept: &'static str) -> Self {
        self.accept = Some(accept);
        self
    }
}

/// `text` as one path segment: everything but unreserved characters (and `:`, which execution
/// ids contain) percent-encoded.
pub(crate) fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b':') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// One page of a list, and the cursor of the next (`None` on the last page).
///
/// ```no_run
/// # async fn demo(client: linkloom::Client) -> Result<(), linkloom::Error> {
/// let mut filter = linkloom::ExecutionFilter::new().workflow("nightly").limit(50);
/// loop {
///     let page = client.list_executions(&filter).await?;
///     for execution in &page.items {
///         println!("{} {:?}", execution.id, execution.status);
///     }
///     match page.next_cursor {
///         Some(cursor) => filter = filter.cursor(cursor),
///         None => break,
///     }
/// }
/// # Ok(()) }
/// ```
pub use linkloom_wire::Page;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    use axum::http::StatusCode;
    use axum::routing::get;
    use axum::Router;
    use serde_json::json;

    /// Serves `router` on a free 127.0.0.1 port; answers its base URL. The server stops with
    /// the test's runtime.
    pub(crate) async fn serve(router: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        format!("http://{addr}")
    }

    /// A 127.0.0.1 URL where nothing listens: a port bound, then released.
    pub(crate) fn closed_port() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        drop(listener);
        format!("http://{addr}")
    }

    /// A server that counts the requests it gets and answers each with the cluster view.
    async fn counting_server(hits: Arc<AtomicUsize>, status: StatusCode, body: Value) -> String {
        serve(Router::new().route(
            "/api/v1/cluster",
            get(move || {
                hits.fetch_add(1, Ordering::SeqCst);
                let body = body.clone();
                async move { (status, axum::Json(body)) }
            }),
        ))
        .await
    }

    fn cluster_body(node_id: u64) -> Value {
        json!({"node_id": node_id, "leader_id": 1, "term": 3, "state": "Leader", "members": []})
    }

    #[tokio::test]
    async fn fails_over_from_a_closed_port_and_remembers_the_live_server() {
        let hits = Arc::new(AtomicUsize::new(0));
        let live = counting_server(hits.clone(), StatusCode::OK, cluster_body(2)).await;
        let closed = closed_port();
        let client = Client::new([closed.clone(), live.clone()]).unwrap();
        assert_eq!(client.current_server(), closed);

        let info = client.cluster().await.unwrap();
        assert_eq!(info.node_id, 2);
        assert_eq!(client.current_server(), live, "the server that answered is remembered");
        let again = client.clone().cluster().await.unwrap();
        assert_eq!(again.node_id, 2);
        assert_eq!(hits.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_remembered_server_is_tried_first() {
        // The first server accepts connections and drops them: each call that tries it counts.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dropper = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                drop(socket);
            }
        });
        let hits = Arc::new(AtomicUsize::new(0));
        let live = counting_server(hits.clone(), StatusCode::OK, cluster_body(3)).await;
        let client = Client::new([dropper, live.clone()]).unwrap();

        client.cluster().await.unwrap();
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        assert_eq!(client.current_server(), live);
        for _ in 0..3 {
            client.cluster().await.unwrap();
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "the dropping server is not tried again");
        assert_eq!(hits.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn all_servers_unreachable_names_every_one() {
        let (a, b) = (closed_port(), closed_port());
        let client = Client::new([a.clone(), b.clone()]).unwrap();
        match client.cluster().await {
            Err(Error::Connect { urls, .. }) => assert_eq!(urls, vec![a, b]),
            other => panic!("expected Connect, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn error_answers_are_not_retried_elsewhere() {
        let (hits_a, hits_b) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let not_found = json!({"error": {"code": "not_found", "message": "no route", "details": null}});
        let a = counting_server(hits_a.clone(), StatusCode::NOT_FOUND, not_found).await;
        let b = counting_server(hits_b.clone(), StatusCode::OK, cluster_body(2)).await;
        let client = Client::new([a, b]).unwrap();
        let err = client.cluster().await.unwrap_err();
        assert!(err.is_not_found(), "{err:?}");
        assert_eq!((hits_a.load(Ordering::SeqCst), hits_b.load(Ordering::SeqCst)), (1, 0));
    }

    #[tokio::test]
    async fn unavailable_moves_to_the_next_server() {
        let (hits_a, hits_b) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let unavailable = json!({"error": {"code": "unavailable", "message": "no leader within 10s", "details": null}});
        let a = counting_server(hits_a.clone(), StatusCode::SERVICE_UNAVAILABLE, unavailable.clone()).await;
        let b = counting_server(hits_b.clone(), StatusCode::OK, cluster_body(2)).await;
        let client = Client::new([a.clone(), b.clone()]).unwrap();
        assert_eq!(client.cluster().await.unwrap().node_id, 2);
        assert_eq!((hits_a.load(Ordering::SeqCst), hits_b.load(Ordering::SeqCst)), (1, 1));
        assert_eq!(client.current_server(), b);

        // Only 503s: bounded attempts, then the server's own error.
        let hits_c = Arc::new(AtomicUsize::new(0));
        let c = counting_server(hits_c.clone(), StatusCode::SERVICE_UNAVAILABLE, unavailable).await;
        let client = Client::builder().servers([a, c]).max_attempts(3).build().unwrap();
        let err = client.cluster().await.unwrap_err();
        assert!(err.is_unavailable(), "{err:?}");
        assert_eq!(hits_a.load(Ordering::SeqCst) + hits_c.load(Ordering::SeqCst), 1 + 3);
    }

    #[tokio::test]
    async fn a_rate_limited_request_is_sent_again_after_a_pause() {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let server = serve(Router::new().route(
            "/api/v1/cluster",
            get(move || {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n < 2 {
                        let body = json!({"error": {"code": "rate_limited", "message": "slow down", "details": null}});
                        (StatusCode::TOO_MANY_REQUESTS, axum::Json(body))
                    } else {
                        (StatusCode::OK, axum::Json(cluster_body(4)))
                    }
                }
            }),
        ))
        .await;
        let client = Client::new([server.clone()]).unwrap();
        assert_eq!(client.cluster().await.unwrap().node_id, 4);
        assert_eq!(hits.load(Ordering::SeqCst), 3, "two 429s waited out, then the answer");
        // Always over the rate: bounded attempts, then the 429 itself.
        let always = counting_server(
            Arc::new(AtomicUsize::new(0)),
            StatusCode::TOO_MANY_REQUESTS,
            json!({"error": {"code": "rate_limited", "message": "slow down", "details": null}}),
        )
        .await;
        let client = Client::builder().server(always).max_attempts(2).build().unwrap();
        assert_eq!(client.cluster().await.unwrap_err().status(), Some(429));
    }

    #[tokio::test]
    async fn a_post_whose_connection_breaks_is_sent_again_under_the_same_key() {
        // The first server reads the request, remembers its key, and hangs up without answering:
        // the trigger may have happened, so the retry must carry the same key.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dropper = format!("http://{}", listener.local_addr().unwrap());
        let first_key = Arc::new(std::sync::Mutex::new(None::<String>));
        let seen = first_key.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let n = tokio::io::AsyncReadExt::read(&mut socket, &mut buf).await.unwrap_or(0);
                let text = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
                let key = text.lines().find_map(|l| l.strip_prefix("idempotency-key: ")).map(|k| k.trim().to_string());
                *seen.lock().unwrap() = key;
                drop(socket);
            }
        });
        let keys = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let recorder = keys.clone();
        let live = serve(Router::new().route(
            "/api/v1/workflows/{id}/trigger",
            axum::routing::post(move |headers: axum::http::HeaderMap| {
                let key = headers.get(IDEMPOTENCY_KEY).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                recorder.lock().unwrap().push(key);
                async { (StatusCode::ACCEPTED, axum::Json(json!({"execution_id": "x"}))) }
            }),
        ))
        .await;
        let client = Client::new([dropper, live]).unwrap();
        assert_eq!(client.trigger("wf", Value::Null).await.unwrap(), "x");
        let first = first_key.lock().unwrap().clone().expect("the first server saw a key");
        assert_eq!(first.len(), 32, "128 random bits in hex: {first}");
        assert_eq!(*keys.lock().unwrap(), vec![first.clone()], "sent again once, under the same key");

        // Another call is another operation: another key. A caller's own key is sent as given.
        client.trigger("wf", Value::Null).await.unwrap();
        client.trigger_with_key("wf", Value::Null, "order-42").await.unwrap();
        let keys = keys.lock().unwrap().clone();
        assert_eq!(keys.len(), 3);
        assert_ne!(keys[1], first);
        assert_eq!(keys[2], "order-42");
    }

    #[tokio::test]
    async fn reads_carry_no_idempotency_key() {
        let keys = Arc::new(std::sync::Mutex::new(Vec::<Option<String>>::new()));
        let recorder = keys.clone();
        let server = serve(Router::new().route(
            "/api/v1/cluster",
            get(move |headers: axum::http::HeaderMap| {
                recorder.lock().unwrap().push(headers.get(IDEMPOTENCY_KEY).map(|v| v.to_str().unwrap_or("?").into()));
                async { axum::Json(cluster_body(1)) }
            }),
        ))
        .await;
        Client::new([server]).unwrap().cluster().await.unwrap();
        assert_eq!(*keys.lock().unwrap(), vec![None]);
    }

    #[tokio::test]
    async fn a_slow_server_times_out_and_a_read_moves_on() {
        let slow = serve(Router::new().route(
            "/api/v1/cluster",
            get(|| async {
                // Far longer than the client waits; the runtime ends with the test.
                tokio::time::sleep(Duration::from_secs(60)).await;
                axum::Json(cluster_body(1))
            }),
        ))
        .await;
        let client = Client::builder().server(slow.clone()).timeout(Duration::from_millis(200)).build().unwrap();
        let err = client.cluster().await.unwrap_err();
        assert!(err.is_timeout(), "{err:?}");

        let hits = Arc::new(AtomicUsize::new(0));
        let fast = counting_server(hits.clone(), StatusCode::OK, cluster_body(2)).await;
        let client =
            Client::builder().servers([slow, fast.clone()]).timeout(Duration::from_millis(200)).build().unwrap();
        assert_eq!(client.cluster().await.unwrap().node_id, 2);
        assert_eq!(client.current_server(), fast);
    }

    #[tokio::test]
    async fn sends_the_token_and_the_escape_hatch_shares_failover() {
        let router = Router::new().route(
            "/api/v1/echo",
            axum::routing::post(|headers: axum::http::HeaderMap, body: String| async move {
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                axum::Json(json!({"auth": auth, "body": serde_json::from_str::<Value>(&body).unwrap_or(Value::Null)}))
            }),
        );
        let live = serve(router).await;
        let client = Client::builder().servers([closed_port(), live]).token("s3cret").build().unwrap();
        let answer = client.request_json(Method::POST, "/api/v1/echo", Some(&json!({"a": 1}))).await.unwrap();
        assert_eq!(answer, json!({"auth": "Bearer s3cret", "body": {"a": 1}}));
        assert!(!format!("{client:?}").contains("s3cret"), "the token is not in Debug output");
        assert!(matches!(client.request_json(Method::GET, "no-slash", None).await, Err(Error::Invalid(_))));
    }

    #[test]
    fn server_urls_are_checked_and_normalized() {
        let client = Client::from_list(" http://a:1/ , https://b:2/loom/,,http://a:1").unwrap();
        assert_eq!(client.servers(), ["http://a:1", "https://b:2/loom"]);
        for bad in ["", "a:1", "ftp://a", "http://a:1/?x=1", "http://"] {
            assert!(matches!(Client::from_list(bad), Err(Error::Invalid(_))), "{bad:?} should be refused");
        }
        assert!(Client::builder().server("http://a").max_attempts(0).build().is_err());
        assert!(Client::builder().server("http://a").token("").build().is_err());
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(segment("daily-report:20260101T060000Z"), "daily-report:20260101T060000Z");
        assert_eq!(segment("a/b c?"), "a%2Fb%20c%3F");
    }

    #[test]
    fn rotation_wraps() {
        let client = Client::new(["http://a", "http://b", "http://c"]).unwrap();
        assert_eq!(client.advance(2), 0);
        client.set_current(1);
        assert_eq!(client.current(), 1);
        assert_eq!(client.current_server(), "http://b");
    }
}
