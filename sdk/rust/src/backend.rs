//! Helpers for HTTP-task backends: the services a `type: http` task calls.
//!
//! For each attempt the node POSTs a JSON body ([`TaskRequest`]) with the header
//! `Idempotency-Key: <execution_id>/<task_id>/<attempt>`, and the backend answers either at once
//! (200 with `{"status", "output" | "error", "logs"}`) or later: 202 now, then the same body
//! POSTed to the request's `callback_url`, with heartbeats meanwhile. [`TaskAnswer`] makes those
//! bodies and status codes. See docs/tasks.md for the whole contract.
//!
//! Nothing here depends on a web framework: read the request body as bytes, answer a status
//! code, a content type and bytes, in axum, hyper, actix or anything else.
//!
//! An attempt runs at least once: after a timeout or a node failure the same task comes again
//! with a higher `attempt`. Use [`TaskRequest::idempotency_key`] to make a repeat harmless.

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::client::{segment, ApiRequest};
use crate::{signature, Client, Error, ExecutionStatus, TaskStatus};

/// What the node sends a backend for one attempt of an `http` task.
///
/// ```
/// use linkloom::TaskRequest;
///
/// let body = br#"{"execution_id": "report:20260101T060000Z", "workflow_id": "report", "task_id": "extract",
///     "attempt": 1, "input": {"region": "eu"}, "params": {"region": "eu"},
///     "callback_url": "http://127.0.0.1:8081/api/v1/tasks/42/callback", "deadline": null}"#;
/// let request = TaskRequest::from_slice(body)?;
/// assert_eq!(request.input()["region"], "eu");
/// assert_eq!(request.attempt_id(), Some("42"));
/// assert_eq!(request.idempotency_key(), "report:20260101T060000Z/extract/1");
/// # Ok::<(), linkloom::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    deadline: Option<String>,
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

    /// Reads the request body after checking its `X-Loom-Signature` header against the cluster's
    /// signing secret (`LOOM_SIGNING_SECRET`), refusing a tampered body, another secret, or a
    /// signature more than `tolerance` seconds from now (a replay). Verify the raw bytes as they
    /// arrived, before any JSON parsing. See docs/signatures.md.
    ///
    /// ```
    /// use linkloom::{signature, TaskRequest};
    /// let body = br#"{"execution_id": "e", "workflow_id": "w", "task_id": "t", "attempt": 1}"#;
    /// let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    /// let header = signature::sign(b"s3cret", now, body); // what the node sends
    /// let request = TaskRequest::from_signed(body, Some(&header), b"s3cret", 300)?;
    /// assert_eq!(request.task_id(), "t");
    /// assert!(TaskRequest::from_signed(body, None, b"s3cret", 300).is_err());
    /// assert!(TaskRequest::from_signed(body, Some(&header), b"wrong", 300).is_err());
    /// # Ok::<(), linkloom::Error>(())
    /// ```
    pub fn from_signed(body: &[u8], header: Option<&str>, secret: &[u8], tolerance: i64) -> Result<TaskRequest, Error> {
        let header = header.ok_or_else(|| Error::Invalid(format!("no {} header", signature::SIGNATURE_HEADER)))?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        signature::verify(secret, header, body, now, tolerance).map_err(|e| Error::Invalid(e.to_string()))?;
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
        let mut body = match &self.outcome {
            Outcome::Succeeded(output) => json!({"status": "succeeded", "output": output}),
            Outcome::Failed { error, retryable: true } => json!({"status": "failed", "error": error}),
            Outcome::Failed { error, retryable: false } => {
                json!({"status": "failed", "error": error, "retryable": false})
            }
            Outcome::Accepted => json!({"status": "accepted"}),
        };
        if let (Some(logs), Value::Object(map)) = (&self.logs, &mut body) {
            map.insert("logs".into(), Value::String(logs.clone()));
        }
        body
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
/// # async fn demo(client: linkloom::Client, callback_url: &str) -> Result<(), linkloom::Error> {
/// let done = client.complete_callback(callback_url, &linkloom::TaskAnswer::succeeded(serde_json::json!({}))).await?;
/// println!("task {}, execution {}", done.task_status, done.execution_status);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Completion {
    /// The attempt completed.
    pub attempt_id: String,
    /// The task's status after it (`succeeded`, `retrying`, `failed`, ...).
    pub task_status: TaskStatus,
    /// The execution's status after it.
    pub execution_status: ExecutionStatus,
}

impl Client {
    /// Completes an attempt that was accepted with 202, POSTing `answer` to the request's
    /// callback URL. If that node cannot be reached (or has no leader), the answer goes to the
    /// client's servers instead: any node accepts it. [`Error::is_stale_attempt`] if the attempt
    /// is no longer current (it timed out, was cancelled, or its node was declared dead).
    ///
    /// ```no_run
    /// # async fn demo(client: linkloom::Client, request: linkloom::TaskRequest) -> Result<(), linkloom::Error> {
    /// use linkloom::TaskAnswer;
    /// let callback_url = request.callback_url().unwrap_or_default().to_string();
    /// // ... later, when the work is done:
    /// match client.complete_callback(&callback_url, &TaskAnswer::succeeded(serde_json::json!({"rows": 3}))).await {
    ///     Err(e) if e.is_stale_attempt() => println!("too late: another attempt took over"),
    ///     other => println!("{:?}", other?.task_status),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn complete_callback(&self, callback_url: &str, answer: &TaskAnswer) -> Result<Completion, Error> {
        if answer.is_accepted() {
            return Err(Error::Invalid("a callback completes an attempt: `accepted` is not a completion".into()));
        }
        let attempt_id = attempt_id_of(callback_url)
            .ok_or_else(|| Error::Invalid(format!("`{callback_url}` is not a Link Loom callback URL")))?;
        let url = reqwest::Url::parse(callback_url)
            .map_err(|e| Error::Invalid(format!("callback URL `{callback_url}` is not a URL: {e}")))?;
        let mut direct = self.http().post(url).timeout(self.timeout());
        if let Some(token) = self.token() {
            direct = direct.bearer_auth(token);
        }
        let direct = direct.header(reqwest::header::CONTENT_TYPE, answer.content_type()).body(answer.to_bytes());
        match direct.send().await {
            Ok(response) if response.status().as_u16() != 503 => {
                let status = response.status().as_u16();
                let body = response.bytes().await.map_err(Error::Http)?;
                if !(200..300).contains(&status) {
                    return Err(Error::from_answer(status, &body));
                }
                serde_json::from_slice(&body).map_err(|e| Error::Decode(format!("the completion: {e}")))
            }
            Ok(_) => self.complete_attempt(attempt_id, answer).await,
            Err(e) if e.is_connect() => {
                tracing::debug!(callback_url, error = %e, "callback node unreachable; using the client's servers");
                self.complete_attempt(attempt_id, answer).await
            }
            Err(e) => Err(Error::Http(e)),
        }
    }

    /// Completes attempt `attempt_id` (see [`TaskRequest::attempt_id`]) through the client's
    /// servers, with the same body a backend answers with.
    ///
    /// ```no_run
    /// # async fn demo(client: linkloom::Client) -> Result<(), linkloom::Error> {
    /// let answer = linkloom::TaskAnswer::failed("upstream gone").logs("GET /data: 410\n");
    /// client.complete_attempt("42", &answer).await?;
    /// # Ok(()) }
    /// ```
    pub async fn complete_attempt(&self, attempt_id: &str, answer: &TaskAnswer) -> Result<Completion, Error> {
        if answer.is_accepted() {
            return Err(Error::Invalid("a callback completes an attempt: `accepted` is not a completion".into()));
        }
        let request = ApiRequest::post(format!("/api/v1/tasks/{}/callback", segment(attempt_id)))
            .body(answer.content_type(), answer.to_bytes());
        self.call_json(&request, "the completion").await
    }

    /// Records that attempt `attempt_id` is still being worked on. [`Error::is_stale_attempt`]
    /// means it is no longer current: stop working on it.
    ///
    /// ```no_run
    /// # async fn demo(client: linkloom::Client, request: linkloom::TaskRequest) -> Result<(), linkloom::Error> {
    /// if let Some(attempt_id) = request.attempt_id() {
    ///     if let Err(e) = client.heartbeat(attempt_id).await {
    ///         if e.is_stale_attempt() {
    ///             return Ok(()); // give up the work
    ///         }
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn heartbeat(&self, attempt_id: &str) -> Result<(), Error> {
        let request = ApiRequest::post(format!("/api/v1/tasks/{}/heartbeat", segment(attempt_id)));
        self.call(&request).await.map(|_| ())
    }
}

/// Completes an accepted attempt by POSTing `answer` to its callback URL, without a configured
/// [`Client`] (no token, no other servers to fall back on).
///
/// ```no_run
/// # async fn demo(request: linkloom::TaskRequest) -> Result<(), linkloom::Error> {
/// if let Some(url) = request.callback_url() {
///     linkloom::complete_callback(url, &linkloom::TaskAnswer::succeeded(serde_json::json!({"ok": true}))).await?;
/// }
/// # Ok(()) }
/// ```
pub async fn complete_callback(callback_url: &str, answer: &TaskAnswer) -> Result<Completion, Error> {
    let base = callback_url
        .split_once("/api/v1/tasks/")
        .map(|(base, _)| base)
        .ok_or_else(|| Error::Invalid(format!("`{callback_url}` is not a Link Loom callback URL")))?;
    Client::new([base])?.complete_callback(callback_url, answer).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::tests::{closed_port, serve};
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

    fn callback_router() -> Router {
        Router::new()
            .route(
                "/api/v1/tasks/{id}/callback",
                post(|Path(id): Path<String>, body: axum::body::Bytes| async move {
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
                post(|Path(id): Path<String>| async move {
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
        // Direct: the callback URL's node answers.
        let client = Client::new([closed_port()]).unwrap();
        let done = client
            .complete_callback(&format!("{node}/api/v1/tasks/42/callback"), &TaskAnswer::succeeded(json!({"rows": 1})))
            .await
            .unwrap();
        assert_eq!((done.attempt_id.as_str(), done.task_status), ("42", TaskStatus::Succeeded));
        assert_eq!(done.execution_status, ExecutionStatus::Running);

        // The callback URL's node is down: the client's servers take the answer.
        let client = Client::new([node.clone()]).unwrap();
        let dead = format!("{}/api/v1/tasks/43/callback", closed_port());
        let done = client.complete_callback(&dead, &TaskAnswer::failed("boom")).await.unwrap();
        assert_eq!((done.attempt_id.as_str(), done.task_status), ("43", TaskStatus::Retrying));

        let stale =
            client.complete_callback(&format!("{node}/api/v1/tasks/7/callback"), &TaskAnswer::failed("x")).await;
        assert!(stale.as_ref().is_err_and(Error::is_stale_attempt), "{stale:?}");
        assert!(matches!(client.complete_callback(&dead, &TaskAnswer::accepted()).await, Err(Error::Invalid(_))));
        assert!(matches!(
            client.complete_callback("http://x/y", &TaskAnswer::failed("x")).await,
            Err(Error::Invalid(_))
        ));

        let free = complete_callback(&format!("{node}/api/v1/tasks/44/callback"), &TaskAnswer::succeeded(json!({})))
            .await
            .unwrap();
        assert_eq!(free.attempt_id, "44");
    }

    #[tokio::test]
    async fn heartbeats_say_when_to_stop() {
        let client = Client::new([serve(callback_router()).await]).unwrap();
        client.heartbeat("42").await.unwrap();
        let err = client.heartbeat("7").await.unwrap_err();
        assert!(err.is_stale_attempt() && err.is_conflict(), "{err:?}");
    }
}
