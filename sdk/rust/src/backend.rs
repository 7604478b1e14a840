//! Helpers for HTTP-task backends: the services a `type: http` task calls.
//!
//! For each attempt the node POSTs a JSON body ([`TaskRequest`]) with the header
//! `Idempotency-Key: <execution_id>/<task_id>/<attempt>`, and the backend answers either at once
//! (200 with `{"status", "output" | "error", "logs"}`) or later: 202 now, then the same body
//! POSTed to the request's callback URL with the attempt's own callback token, with heartbeats
//! meanwhile ([`Callback`]). [`TaskAnswer`] makes those bodies and status codes. See
//! docs/tasks.md for the whole contract.
//!
//! Nothing here depends on a web framework: read the request body as bytes, answer a status
//! code, a content type and bytes, in axum, hyper, actix or anything else.
//!
//! An attempt runs at least once: after a timeout or a node failure the same task comes again
//! with a higher `attempt`. Use [`TaskRequest::idempotency_key`] to make a repeat harmless.

use bytes::Bytes;
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::client::{segment, ApiRequest};
use crate::signature::{Signed, Verifier, SIGNATURE_HEADER};
use crate::{Client, Error};
use linkloom_wire as wire;

/// What the node sends a backend for one attempt of an `http` task.
///
/// ```
/// use linkloom::TaskRequest;
///
/// let body = br#"{"execution_id": "report:20260101T060000Z", "workflow_id": "report", "task_id": "extract",
///     "attempt": 1, "input": {"region": "eu"}, "params": {"region": "eu"},
///     "callback_url": "http://127.0.0.1:8081/api/v1/tasks/42/callback", "callback_token": "loomcb_3f9a",
///     "deadline": null}"#;
/// let request = TaskRequest::from_slice(body)?;
/// assert_eq!(request.input()["region"], "eu");
/// assert_eq!(request.attempt_id(), Some("42"));
/// assert_eq!(request.idempotency_key(), "report:20260101T060000Z/extract/1");
/// assert!(request.callback().is_some());
/// # Ok::<(), linkloom::Error>(())
/// ```
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRequest {
    execution_id: String,
    workflow_id: String,
    task_id: String,
    attempt: u32,
    #[serde(default)]
    input: Value,
    #[serde(default)]
    params: Value,
    #[serde(default)]
    callback_url: Option<String>,
    #[serde(default)]
    callback_token: Option<String>,
    #[serde(default)]
    deadline: Option<String>,
}

impl std::fmt::Debug for TaskRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskRequest")
            .field("execution_id", &self.execution_id)
            .field("workflow_id", &self.workflow_id)
            .field("task_id", &self.task_id)
            .field("attempt", &self.attempt)
            .field("input", &self.input)
            .field("params", &self.params)
            .field("callback_url", &self.callback_url)
            .field("callback_token", &self.callback_token.as_ref().map(|_| "<redacted>"))
            .field("deadline", &self.deadline)
            .finish()
    }
}

impl TaskRequest {
    /// Reads the request body the node sent. Unknown fields are ignored.
    ///
    /// ```
    /// let request = linkloom::TaskRequest::from_slice(br#"{"execution_id": "e", "workflow_id": "w", "task_id": "t", "attempt": 2}"#)?;
    /// assert_eq!(request.attempt(), 2);
    /// assert!(linkloom::TaskRequest::from_slice(b"{}").is_err());
    /// # Ok::<(), linkloom::Error>(())
    /// ```
    pub fn from_slice(body: &[u8]) -> Result<TaskRequest, Error> {
        serde_json::from_slice(body).map_err(|e| Error::Decode(format!("a task request: {e}")))
    }

    /// Reads the request body after checking its `X-Loom-Signature` header with `verifier`,
    /// refusing a request without one, a tampered body, method, URL or `Idempotency-Key`, a key
    /// the verifier does not hold, or a signature too far from now (a replay). `url` is the full
    /// URL the node called (as written in the workflow, e.g. your public URL), `headers` the
    /// request's headers, `body` the raw bytes as they arrived. See docs/signatures.md.
    ///
    /// ```
    /// use linkloom::signature::{sign, Signed, Verifier};
    /// use linkloom::TaskRequest;
    /// let body = br#"{"execution_id": "e", "workflow_id": "w", "task_id": "t", "attempt": 1}"#;
    /// let url = "https://backend.example/extract";
    /// let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    /// // What the node sends:
    /// let signed = Signed { method: "POST", url, idempotency_key: "e/t/1", body };
    /// let mut headers = reqwest::header::HeaderMap::new();
    /// headers.insert("x-loom-signature", sign("default", b"s3cret", now, &signed).parse().unwrap());
    /// headers.insert("idempotency-key", "e/t/1".parse().unwrap());
    ///
    /// let verifier = Verifier::new().key("default", "s3cret");
    /// let request = TaskRequest::from_signed(&verifier, "POST", url, &headers, body)?;
    /// assert_eq!(request.task_id(), "t");
    /// assert!(TaskRequest::from_signed(&verifier, "POST", "https://backend.example/other", &headers, body).is_err());
    /// assert!(TaskRequest::from_signed(&Verifier::new().key("default", "wrong"), "POST", url, &headers, body).is_err());
    /// # Ok::<(), linkloom::Error>(())
    /// ```
    pub fn from_signed(
        verifier: &Verifier,
        method: &str,
        url: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<TaskRequest, Error> {
        let text = |name: &str| -> Result<Option<&str>, Error> {
            headers
                .get(name)
                .map(|v| v.to_str().map_err(|_| Error::Invalid(format!("the {name} header is not visible ASCII"))))
                .transpose()
        };
        let idempotency_key = text("idempotency-key")?.unwrap_or_default();
        let signed = Signed { method, url, idempotency_key, body };
        verifier.verify(text(SIGNATURE_HEADER)?, &signed)?;
        Self::from_slice(body)
    }

    /// Reads a request body already parsed as JSON (e.g. by a framework's JSON extractor).
    ///
    /// ```
    /// let value = serde_json::json!({"execution_id": "e", "workflow_id": "w", "task_id": "t", "attempt": 1});
    /// let request = linkloom::TaskRequest::from_value(value)?;
    /// assert_eq!(request.task_id(), "t");
    /// # Ok::<(), linkloom::Error>(())
    /// ```
    pub fn from_value(body: Value) -> Result<TaskRequest, Error> {
        serde_json::from_value(body).map_err(|e| Error::Decode(format!("a task request: {e}")))
    }

    /// The execution this attempt belongs to.
    ///
    /// ```
    /// # let request = linkloom::TaskRequest::from_slice(br#"{"execution_id": "e", "workflow_id": "w", "task_id": "t", "attempt": 1}"#)?;
    /// assert_eq!(request.execution_id(), "e");
    /// # Ok::<(), linkloom::Error>(())
    /// ```
    pub fn execution_id(&self) -> &str {
        &self.execution_id
    }

    /// The workflow of the execution.
    ///
    /// ```
    /// # let request = linkloom::TaskRequest::from_slice(br#"{"execution_id": "e", "workflow_id": "w", "task_id": "t", "attempt": 1}"#)?;
    /// assert_eq!(request.workflow_id(), "w");
    /// # Ok::<(), linkloom::Error>(())
    /// ```
    pub fn workflow_id(&self) -> &str {
        &self.workflow_id
    }

    /// The task's id in the workflow.
    ///
    /// ```
    /// # let request = linkloom::TaskRequest::from_slice(br#"{"execution_id": "e", "workflow_id": "w", "task_id": "t", "attempt": 1}"#)?;
    /// assert_eq!(request.task_id(), "t");
    /// # Ok::<(), linkloom::Error>(())
    /// ```
    pub fn task_id(&self) -> &str {
        &self.task_id
    }

    /// The attempt number: 1 for the first, higher for retries and repeats.
    ///
    /// ```
    /// # let request = linkloom::TaskRequest::from_slice(br#"{"execution_id": "e", "workflow_id": "w", "task_id": "t", "attempt": 3}"#)?;
    /// assert_eq!(request.attempt(), 3);
    /// # Ok::<(), linkloom::Error>(())
    /// ```
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The attempt id (the fencing token that callbacks and heartbeats name), read from the
    /// callback URL.
    ///
    /// ```
    /// # let request = linkloom::TaskRequest::from_slice(br#"{"execution_id": "e", "workflow_id": "w", "task_id": "t", "attempt": 1,
    /// #     "callback_url": "http://127.0.0.1:8081/api/v1/tasks/42/callback"}"#)?;
    /// assert_eq!(request.attempt_id(), Some("42"));
    /// # Ok::<(), linkloom::Error>(())
    /// ```
    pub fn attempt_id(&self) -> Option<&str> {
        self.callback_url.as_deref().and_then(attempt_id_of)
    }

    /// How to answer this attempt later (after a 202) and send heartbeats: its callback URL and
    /// its own callback token. `None` if the node sent no callback (an older node).
    ///
    /// ```
    /// # let request = linkloom::TaskRequest::from_slice(br#"{"execution_id": "e", "workflow_id": "w", "task_id": "t", "attempt": 1,
    /// #     "callback_url": "http://127.0.0.1:8081/api/v1/tasks/42/callback", "callback_token": "loomcb_3f9a"}"#)?;
    /// let callback = request.callback().expect("a callback");
    /// assert_eq!(callback.attempt_id(), Some("42"));
    /// # Ok::<(), linkloom::Error>(())
    /// ```
    pub fn callback(&self) -> Option<Callback> {
        let url = self.callback_url.clone()?;
        Some(Callback { url, token: self.callback_token.clone().unwrap_or_default() })
    }

    /// The task's input, templates rendered (null when the task has none).
    ///
    /// ```
    /// # let request = linkloom::TaskRequest::from_slice(br#"{"execution_id": "e", "workflow_id": "w", "task_id": "t", "attempt": 1, "input": {"rows": 3}}"#)?;
    /// assert_eq!(request.input()["rows"], 3);
    /// # Ok::<(), linkloom::Error>(())
    /// ```
    pub fn input(&self) -> &Value {
        &self.input
    }

    /// The input as your own type.
    ///
    /// ```
    /// #[derive(serde::Deserialize)]
    /// struct Extract { region: String }
    /// # let request = linkloom::TaskRequest::from_slice(br#"{"execution_id": "e", "workflow_id": "w", "task_id": "t", "attempt": 1, "input": {"region": "eu"}}"#)?;
    /// let input: Extract = request.input_as()?;
    /// assert_eq!(input.region, "eu");
    /// # Ok::<(), linkloom::Error>(())
    /// ```
    pub fn input_as<T: DeserializeOwned>(&self) -> Result<T, Error> {
        T::deserialize(&self.input).map_err(|e| Error::Decode(format!("the input of task `{}`: {e}", self.task_id)))
    }

    /// The execution's parameters.
    ///
    /// ```
    /// # let request = linkloom::TaskRequest::from_slice(br#"{"execution_id": "e", "workflow_id": "w", "task_id": "t", "attempt": 1, "params": {"region": "us"}}"#)?;
    /// assert_eq!(request.params()["region"], "us");
    /// # Ok::<(), linkloom::Error>(())
    /// ```
    pub fn params(&self) -> &Value {
        &self.params
    }

    /// Where to POST the answer of an attempt accepted with 202.
    ///
    /// ```
    /// # let request = linkloom::TaskRequest::from_slice(br#"{"execution_id": "e", "workflow_id": "w", "task_id": "t", "attempt": 1,
    /// #     "callback_url": "http://127.0.0.1:8081/api/v1/tasks/42/callback"}"#)?;
    /// assert_eq!(request.callback_url(), Some("http://127.0.0.1:8081/api/v1/tasks/42/callback"));
    /// # Ok::<(), linkloom::Error>(())
    /// ```
    pub fn callback_url(&self) -> Option<&str> {
        self.callback_url.as_deref()
    }

    /// RFC 3339: when the attempt times out, if the task has a timeout. Work past it is wasted.
    ///
    /// ```
    /// # let request = linkloom::TaskRequest::from_slice(br#"{"execution_id": "e", "workflow_id": "w", "task_id": "t", "attempt": 1,
    /// #     "deadline": "2026-01-01T06:00:30Z"}"#)?;
    /// assert_eq!(request.deadline(), Some("2026-01-01T06:00:30Z"));
    /// # Ok::<(), linkloom::Error>(())
    /// ```
    pub fn deadline(&self) -> Option<&str> {
        self.deadline.as_deref()
    }

    /// `<execution_id>/<task_id>/<attempt>`, the same as the `Idempotency-Key` header: a key to
    /// recognise a repeat of work already done.
    ///
    /// ```
    /// # let request = linkloom::TaskRequest::from_slice(br#"{"execution_id": "e", "workflow_id": "w", "task_id": "t", "attempt": 2}"#)?;
    /// assert_eq!(request.idempotency_key(), "e/t/2");
    /// # Ok::<(), linkloom::Error>(())
    /// ```
    pub fn idempotency_key(&self) -> String {
        format!("{}/{}/{}", self.execution_id, self.task_id, self.attempt)
    }
}

/// `http://node/api/v1/tasks/42/callback` → `42`.
fn attempt_id_of(callback_url: &str) -> Option<&str> {
    let path = callback_url.split_once("/api/v1/tasks/")?.1;
    let (id, rest) = path.split_once('/')?;
    (rest.starts_with("callback") && !id.is_empty()).then_some(id)
}

/// How a backend answers an attempt: done now ([`TaskAnswer::succeeded`],
/// [`TaskAnswer::failed`]) or later ([`TaskAnswer::accepted`], then a callback).
///
/// ```
/// use linkloom::TaskAnswer;
/// use serde_json::json;
///
/// let done = TaskAnswer::succeeded(json!({"rows": 3})).logs("read 3 rows\n");
/// assert_eq!(done.status_code(), 200);
/// assert_eq!(done.body(), json!({"status": "succeeded", "output": {"rows": 3}, "logs": "read 3 rows\n"}));
///
/// let bad = TaskAnswer::failed("region `xx` does not exist").retryable(false);
/// assert_eq!(bad.body()["retryable"], false);
///
/// assert_eq!(TaskAnswer::accepted().status_code(), 202);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TaskAnswer {
    outcome: Outcome,
    logs: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Succeeded(Value),
    Failed { error: String, retryable: bool },
    Accepted,
}

impl TaskAnswer {
    /// The task succeeded with `output` (a JSON object; null becomes `{}`), which downstream
    /// tasks read as `{{ tasks.ID.output.FIELD }}`.
    ///
    /// ```
    /// let answer = linkloom::TaskAnswer::succeeded(serde_json::json!({"rows": 3}));
    /// assert_eq!(answer.body()["output"]["rows"], 3);
    /// ```
    pub fn succeeded(output: Value) -> TaskAnswer {
        let output = if output.is_null() { json!({}) } else { output };
        TaskAnswer { outcome: Outcome::Succeeded(output), logs: None }
    }

    /// The attempt failed with `error`; the task is retried per its policy unless
    /// [`TaskAnswer::retryable`] says otherwise.
    ///
    /// ```
    /// let answer = linkloom::TaskAnswer::failed("the database is down");
    /// assert_eq!(answer.body()["status"], "failed");
    /// ```
    pub fn failed(error: impl Into<String>) -> TaskAnswer {
        TaskAnswer { outcome: Outcome::Failed { error: error.into(), retryable: true }, logs: None }
    }

    /// The attempt goes on after this answer (HTTP 202): answer later with
    /// [`Client::complete_callback`] (or [`complete_callback`]) and send heartbeats meanwhile.
    ///
    /// ```
    /// let answer = linkloom::TaskAnswer::accepted();
    /// assert!(answer.is_accepted());
    /// ```
    pub fn accepted() -> TaskAnswer {
        TaskAnswer { outcome: Outcome::Accepted, logs: None }
    }

    /// Log text to append to the attempt's log.
    ///
    /// ```
    /// let answer = linkloom::TaskAnswer::succeeded(serde_json::json!({})).logs("all good\n");
    /// assert_eq!(answer.body()["logs"], "all good\n");
    /// ```
    pub fn logs(mut self, text: impl Into<String>) -> TaskAnswer {
        self.logs = Some(text.into());
        self
    }

    /// For a failure: `false` fails the task at once, whatever its retry policy (bad input
    /// will not get better by trying again). Ignored for other answers.
    ///
    /// ```
    /// let answer = linkloom::TaskAnswer::failed("no such customer").retryable(false);
    /// assert_eq!(answer.body()["retryable"], false);
    /// ```
    pub fn retryable(mut self, retryable: bool) -> TaskAnswer {
        if let Outcome::Failed { retryable: r, .. } = &mut self.outcome {
            *r = retryable;
        }
        self
    }

    /// This is the 202 of an attempt that goes on.
    ///
    /// ```
    /// assert!(!linkloom::TaskAnswer::failed("x").is_accepted());
    /// ```
    pub fn is_accepted(&self) -> bool {
        self.outcome == Outcome::Accepted
    }

    /// The HTTP status to answer with: 202 for [`TaskAnswer::accepted`], else 200 (a failure is
    /// told in the body, so its error and logs reach the attempt).
    ///
    /// ```
    /// assert_eq!(linkloom::TaskAnswer::failed("x").status_code(), 200);
    /// ```
    pub fn status_code(&self) -> u16 {
        if self.is_accepted() {
            202
        } else {
            200
        }
    }

    /// The content type of [`TaskAnswer::to_bytes`].
    ///
    /// ```
    /// assert_eq!(linkloom::TaskAnswer::accepted().content_type(), "application/json");
    /// ```
    pub fn content_type(&self) -> &'static str {
        "application/json"
    }

    /// The body as JSON.
    ///
    /// ```
    /// let body = linkloom::TaskAnswer::failed("boom").logs("trace\n").body();
    /// assert_eq!(body, serde_json::json!({"status": "failed", "error": "boom", "logs": "trace\n"}));
    /// ```
    pub fn body(&self) -> Value {
        match self.wire() {
            Some(answer) => serde_json::to_value(answer).unwrap_or(Value::Null),
            // With a 202 the node reads only the status code; the body says it for people.
            None => json!({"status": "accepted"}),
        }
    }

    /// The answer as the wire has it (none for a 202, which is no answer yet).
    fn wire(&self) -> Option<wire::TaskAnswer> {
        let answer = match &self.outcome {
            Outcome::Succeeded(output) => wire::TaskAnswer::succeeded(output.clone()),
            // Retryable is the default: left out, as a backend in any language would write it.
            Outcome::Failed { error, retryable } => {
                let mut answer = wire::TaskAnswer::failed(error.clone(), *retryable);
                answer.retryable = (!retryable).then_some(false);
                answer
            }
            Outcome::Accepted => return None,
        };
        Some(match &self.logs {
            Some(logs) => answer.with_logs(logs.clone()),
            None => answer,
        })
    }

    /// The body as bytes, ready to send.
    ///
    /// ```
    /// let bytes = linkloom::TaskAnswer::succeeded(serde_json::json!({"ok": true})).to_bytes();
    /// assert_eq!(&bytes[..], br#"{"output":{"ok":true},"status":"succeeded"}"#);
    /// ```
    pub fn to_bytes(&self) -> Bytes {
        Bytes::from(self.body().to_string())
    }
}

/// What the cluster answered to a completion: the task's and the execution's status after it.
///
/// ```no_run
/// # async fn demo(client: linkloom::Client, callback: linkloom::Callback) -> Result<(), linkloom::Error> {
/// let done = client.complete_callback(&callback, &linkloom::TaskAnswer::succeeded(serde_json::json!({}))).await?;
/// println!("task {}, execution {}", done.task_status, done.execution_status);
/// # Ok(()) }
/// ```
pub type Completion = linkloom_wire::AttemptFinished;

/// An accepted attempt's way back to the cluster: its callback URL and its own callback token.
///
/// The token is good for that one attempt only: it completes it and records its heartbeats, and
/// dies with it. Keep it as secret as the work's result. A `Callback` serializes (to store it
/// with a job that finishes in another process); its `Debug` form hides the token.
///
/// ```
/// let callback = linkloom::Callback::new("http://127.0.0.1:8081/api/v1/tasks/42/callback", "loomcb_3f9a");
/// assert_eq!(callback.attempt_id(), Some("42"));
/// assert!(!format!("{callback:?}").contains("3f9a"));
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Callback {
    url: String,
    token: String,
}

impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callback").field("url", &self.url).field("token", &"<redacted>").finish()
    }
}

impl Callback {
    /// A callback from its parts (the task request's `callback_url` and `callback_token`).
    pub fn new(url: impl Into<String>, token: impl Into<String>) -> Callback {
        Callback { url: url.into(), token: token.into() }
    }

    /// The callback URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The attempt id the callback URL names.
    pub fn attempt_id(&self) -> Option<&str> {
        attempt_id_of(&self.url)
    }

    fn base(&self) -> Result<&str, Error> {
        self.url
            .split_once("/api/v1/tasks/")
            .map(|(base, _)| base)
            .ok_or_else(|| Error::Invalid(format!("`{}` is not a Link Loom callback URL", self.url)))
    }
}

impl Client {
    /// Completes an attempt that was accepted with 202, POSTing `answer` to its callback URL
    /// with its callback token. If that node cannot be reached (or has no leader), the answer
    /// goes to the client's servers instead: any node accepts it. [`Error::is_stale_attempt`] if
    /// the attempt is no longer current (it timed out, was cancelled, or its node was declared
    /// dead). The client's own API token is not used: the callback token is the credential.
    ///
    /// ```no_run
    /// # async fn demo(client: linkloom::Client, request: linkloom::TaskRequest) -> Result<(), linkloom::Error> {
    /// use linkloom::TaskAnswer;
    /// let callback = request.callback().expect("the node sends a callback");
    /// // ... later, when the work is done:
    /// match client.complete_callback(&callback, &TaskAnswer::succeeded(serde_json::json!({"rows": 3}))).await {
    ///     Err(e) if e.is_stale_attempt() => println!("too late: another attempt took over"),
    ///     other => println!("{:?}", other?.task_status),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn complete_callback(&self, callback: &Callback, answer: &TaskAnswer) -> Result<Completion, Error> {
        if answer.is_accepted() {
            return Err(Error::Invalid("a callback completes an attempt: `accepted` is not a completion".into()));
        }
        let attempt_id = callback
            .attempt_id()
            .ok_or_else(|| Error::Invalid(format!("`{}` is not a Link Loom callback URL", callback.url)))?;
        let url = reqwest::Url::parse(&callback.url)
            .map_err(|e| Error::Invalid(format!("callback URL `{}` is not a URL: {e}", callback.url)))?;
        let direct = self
            .http()
            .post(url)
            .timeout(self.timeout())
            .bearer_auth(&callback.token)
            .header(reqwest::header::CONTENT_TYPE, answer.content_type())
            .body(answer.to_bytes());
        let fallback = || {
            ApiRequest::post(format!("/api/v1/tasks/{}/callback", segment(attempt_id)))
                .bearer(&callback.token)
                .body(answer.content_type(), answer.to_bytes())
        };
        match direct.send().await {
            Ok(response) if response.status().as_u16() != 503 => {
                let status = response.status().as_u16();
                let body = response.bytes().await.map_err(Error::Http)?;
                if !(200..300).contains(&status) {
                    return Err(Error::from_answer(status, &body));
                }
                serde_json::from_slice(&body).map_err(|e| Error::Decode(format!("the completion: {e}")))
            }
            Ok(_) => self.call_json(&fallback(), "the completion").await,
            Err(e) if e.is_connect() => {
                tracing::debug!(callback_url = %callback.url, error = %e, "callback node unreachable; using the client's servers");
                self.call_json(&fallback(), "the completion").await
            }
            Err(e) => Err(Error::Http(e)),
        }
    }

    /// Records that an accepted attempt is still being worked on. [`Error::is_stale_attempt`]
    /// means it is no longer current: stop working on it.
    ///
    /// ```no_run
    /// # async fn demo(client: linkloom::Client, request: linkloom::TaskRequest) -> Result<(), linkloom::Error> {
    /// if let Some(callback) = request.callback() {
    ///     if let Err(e) = client.heartbeat(&callback).await {
    ///         if e.is_stale_attempt() {
    ///             return Ok(()); // give up the work
    ///         }
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn heartbeat(&self, callback: &Callback) -> Result<(), Error> {
        let attempt_id = callback
            .attempt_id()
            .ok_or_else(|| Error::Invalid(format!("`{}` is not a Link Loom callback URL", callback.url)))?;
        let request =
            ApiRequest::post(format!("/api/v1/tasks/{}/heartbeat", segment(attempt_id))).bearer(&callback.token);
        self.call(&request).await.map(|_| ())
    }
}

/// Completes an accepted attempt by POSTing `answer` to its callback URL, without a configured
/// [`Client`] (no other servers to fall back on).
///
/// ```no_run
/// # async fn demo(request: linkloom::TaskRequest) -> Result<(), linkloom::Error> {
/// if let Some(callback) = request.callback() {
///     linkloom::complete_callback(&callback, &linkloom::TaskAnswer::succeeded(serde_json::json!({"ok": true}))).await?;
/// }
/// # Ok(()) }
/// ```
pub async fn complete_callback(callback: &Callback, answer: &TaskAnswer) -> Result<Completion, Error> {
    Client::new([callback.base()?])?.complete_callback(callback, answer).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::tests::{closed_port, serve};
    use crate::{ExecutionStatus, TaskStatus};
    use axum::extract::Path;
    use axum::http::StatusCode;
    use axum::routing::post;
    use axum::Router;
    use linkloom_core::json::Json;
    use linkloom_core::state::AttemptResult;
    use linkloom_core::task_answer::parse_task_answer;

    /// The body exactly as actors/src/executor/http.rs builds it.
    fn engine_body(callback_url: &str) -> Value {
        json!({
            "execution_id": "report:20260101T060000Z",
            "workflow_id": "report",
            "task_id": "extract",
            "attempt": 2,
            "input": {"region": "eu", "rows": 3},
            "params": {"region": "eu"},
            "callback_url": callback_url,
            "callback_token": "loomcb_secret",
            "deadline": "2026-01-01T06:00:30Z",
        })
    }

    #[test]
    fn reads_the_engines_request() {
        let body = engine_body("http://127.0.0.1:8081/api/v1/tasks/42/callback").to_string();
        let request = TaskRequest::from_slice(body.as_bytes()).unwrap();
        assert_eq!(request.execution_id(), "report:20260101T060000Z");
        assert_eq!(request.workflow_id(), "report");
        assert_eq!(request.task_id(), "extract");
        assert_eq!(request.attempt(), 2);
        assert_eq!(request.attempt_id(), Some("42"));
        assert_eq!(request.params()["region"], "eu");
        assert_eq!(request.deadline(), Some("2026-01-01T06:00:30Z"));
        assert_eq!(request.idempotency_key(), "report:20260101T060000Z/extract/2");
        let callback = request.callback().unwrap();
        assert_eq!(callback, Callback::new("http://127.0.0.1:8081/api/v1/tasks/42/callback", "loomcb_secret"));
        assert!(!format!("{request:?}{callback:?}").contains("loomcb_secret"), "Debug hides the token");
        #[derive(Deserialize)]
        struct Input {
            rows: u32,
        }
        assert_eq!(request.input_as::<Input>().unwrap().rows, 3);
        assert!(matches!(request.input_as::<Vec<u8>>(), Err(Error::Decode(_))));
        let mut newer = engine_body("x");
        newer["trace_id"] = json!("from-a-newer-server");
        assert!(TaskRequest::from_value(newer).is_ok());
        assert_eq!(attempt_id_of("http://h/api/v1/tasks/7/heartbeat"), None);
        assert_eq!(attempt_id_of("http://h/other"), None);
    }

    #[test]
    fn answers_read_back_as_the_engine_reads_them() {
        let answer = TaskAnswer::succeeded(json!({"rows": 3})).logs("ok\n");
        let (result, logs) = parse_task_answer(&answer.to_bytes());
        assert_eq!(result, AttemptResult::Succeeded { output: Json(json!({"rows": 3})) });
        assert_eq!(logs.as_deref(), Some("ok\n"));
        assert_eq!(answer.status_code(), 200);

        let (result, _) = parse_task_answer(&TaskAnswer::succeeded(Value::Null).to_bytes());
        assert_eq!(result, AttemptResult::Succeeded { output: Json(json!({})) });

        let (result, _) = parse_task_answer(&TaskAnswer::failed("disk full").to_bytes());
        assert_eq!(result, AttemptResult::Failed { error: "disk full".into(), retryable: true });

        let (result, _) = parse_task_answer(&TaskAnswer::failed("bad input").retryable(false).to_bytes());
        assert_eq!(result, AttemptResult::Failed { error: "bad input".into(), retryable: false });

        assert_eq!(TaskAnswer::accepted().status_code(), 202);
        assert_eq!(TaskAnswer::succeeded(json!({})).retryable(false), TaskAnswer::succeeded(json!({})));
    }

    /// Attempt N's callback token is `cb-N`.
    fn has_token(headers: &axum::http::HeaderMap, id: &str) -> bool {
        headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(format!("Bearer cb-{id}").as_str())
    }

    fn callback(base: &str, id: u32) -> Callback {
        Callback::new(format!("{base}/api/v1/tasks/{id}/callback"), format!("cb-{id}"))
    }

    fn callback_router() -> Router {
        Router::new()
            .route(
                "/api/v1/tasks/{id}/callback",
                post(|Path(id): Path<String>, headers: axum::http::HeaderMap, body: axum::body::Bytes| async move {
                    if !has_token(&headers, &id) {
                        let error = json!({"error": {"code": "stale_attempt", "message": "not this attempt's token", "details": null}});
                        return (StatusCode::CONFLICT, axum::Json(error));
                    }
                    if id == "7" {
                        let error = json!({"error": {"code": "stale_attempt", "message": "attempt 7 is not current", "details": null}});
                        return (StatusCode::CONFLICT, axum::Json(error));
                    }
                    let (result, _) = parse_task_answer(&body);
                    let task_status = match result {
                        AttemptResult::Succeeded { .. } => "succeeded",
                        _ => "retrying",
                    };
                    (StatusCode::OK, axum::Json(json!({"attempt_id": id, "task_status": task_status, "execution_status": "running"})))
                }),
            )
            .route(
                "/api/v1/tasks/{id}/heartbeat",
                post(|Path(id): Path<String>, headers: axum::http::HeaderMap| async move {
                    if !has_token(&headers, &id) {
                        let error = json!({"error": {"code": "stale_attempt", "message": "not this attempt's token", "details": null}});
                        return (StatusCode::CONFLICT, axum::Json(error));
                    }
                    if id == "7" {
                        let error = json!({"error": {"code": "stale_attempt", "message": "not current", "details": null}});
                        return (StatusCode::CONFLICT, axum::Json(error));
                    }
                    (StatusCode::OK, axum::Json(json!({"attempt_id": id})))
                }),
            )
    }

    #[tokio::test]
    async fn completes_through_the_callback_url_or_any_server() {
        let node = serve(callback_router()).await;
        // Direct: the callback URL's node answers; the client's own token is not what is sent.
        let client = Client::builder().server(closed_port()).token("api-token").build().unwrap();
        let done =
            client.complete_callback(&callback(&node, 42), &TaskAnswer::succeeded(json!({"rows": 1}))).await.unwrap();
        assert_eq!((done.attempt_id.as_str(), done.task_status), ("42", TaskStatus::Succeeded));
        assert_eq!(done.execution_status, ExecutionStatus::Running);

        // The callback URL's node is down: the client's servers take the answer, with the
        // callback token still.
        let client = Client::builder().server(node.clone()).token("api-token").build().unwrap();
        let dead = callback(&closed_port(), 43);
        let done = client.complete_callback(&dead, &TaskAnswer::failed("boom")).await.unwrap();
        assert_eq!((done.attempt_id.as_str(), done.task_status), ("43", TaskStatus::Retrying));

        let stale = client.complete_callback(&callback(&node, 7), &TaskAnswer::failed("x")).await;
        assert!(stale.as_ref().is_err_and(Error::is_stale_attempt), "{stale:?}");
        let forged = Callback::new(format!("{node}/api/v1/tasks/42/callback"), "cb-41");
        let refused = client.complete_callback(&forged, &TaskAnswer::failed("x")).await;
        assert!(refused.as_ref().is_err_and(Error::is_stale_attempt), "{refused:?}");
        assert!(matches!(client.complete_callback(&dead, &TaskAnswer::accepted()).await, Err(Error::Invalid(_))));
        assert!(matches!(
            client.complete_callback(&Callback::new("http://x/y", "t"), &TaskAnswer::failed("x")).await,
            Err(Error::Invalid(_))
        ));

        let free = complete_callback(&callback(&node, 44), &TaskAnswer::succeeded(json!({}))).await.unwrap();
        assert_eq!(free.attempt_id, "44");
    }

    #[tokio::test]
    async fn heartbeats_say_when_to_stop() {
        let node = serve(callback_router()).await;
        let client = Client::new([node.clone()]).unwrap();
        client.heartbeat(&callback(&node, 42)).await.unwrap();
        let err = client.heartbeat(&callback(&node, 7)).await.unwrap_err();
        assert!(err.is_stale_attempt() && err.is_conflict(), "{err:?}");
    }

    #[test]
    fn verifies_signed_requests_as_the_node_signs_them() {
        use crate::signature::{sign, Signed};
        let body = engine_body("http://127.0.0.1:8081/api/v1/tasks/42/callback").to_string();
        let url = "https://reports.example/extract?region=eu";
        let key = "report:20260101T060000Z/extract/2";
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let signed = Signed { method: "POST", url, idempotency_key: key, body: body.as_bytes() };
        let mut headers = HeaderMap::new();
        headers.insert("x-loom-signature", sign("2027-01", b"new", now, &signed).parse().unwrap());
        headers.insert("idempotency-key", key.parse().unwrap());
        let rotating = Verifier::new().key("2026-07", "old").key("2027-01", "new");
        let request = TaskRequest::from_signed(&rotating, "POST", url, &headers, body.as_bytes()).unwrap();
        assert_eq!(request.attempt(), 2);
        let refused = |verifier: &Verifier, method: &str, url: &str, headers: &HeaderMap, body: &[u8]| {
            match TaskRequest::from_signed(verifier, method, url, headers, body) {
                Err(Error::Invalid(m)) => m,
                other => panic!("accepted: {other:?}"),
            }
        };
        assert!(
            refused(&Verifier::new().key("2026-07", "old"), "POST", url, &headers, body.as_bytes()).contains("2027-01")
        );
        refused(&rotating, "PUT", url, &headers, body.as_bytes());
        refused(&rotating, "POST", "https://reports.example/extract?region=us", &headers, body.as_bytes());
        refused(&rotating, "POST", url, &headers, b"{}");
        let mut rekeyed = headers.clone();
        rekeyed.insert("idempotency-key", "report:20260101T060000Z/extract/3".parse().unwrap());
        refused(&rotating, "POST", url, &rekeyed, body.as_bytes());
        let mut unsigned = headers.clone();
        unsigned.remove("x-loom-signature");
        assert!(refused(&rotating, "POST", url, &unsigned, body.as_bytes()).contains("no x-loom-signature"));
    }
}
