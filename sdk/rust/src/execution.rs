//! Executions (runs of a workflow): trigger, read, list, wait, cancel, retry.
//!
//! The types are the wire's own (`linkloom_wire`, the types the server answers with): every field
//! has a default and unknown fields are ignored, and statuses this SDK does not know read as
//! `Unknown`, so a newer server does not break an older client.

use std::time::Duration;

pub use linkloom_wire::{Attempt, AttemptStatus, Execution, ExecutionStatus, TaskRun, TaskStatus, Trigger};
pub use linkloom_wire::{Cancelled, Retried};
use linkloom_wire::{TriggerRequest, Triggered};
use serde_json::Value;
use tokio::time::Instant;

use crate::client::{segment, ApiRequest, Page};
use crate::{Client, Error};

/// First pause between polls in [`Client::wait_for_execution`], doubled up to the maximum.
const WAIT_POLL_FIRST: Duration = Duration::from_millis(100);
const WAIT_POLL_MAX: Duration = Duration::from_secs(2);

/// Which executions [`Client::list_executions`] answers, and which page.
///
/// ```
/// use linkloom::{ExecutionFilter, ExecutionStatus};
/// let filter = ExecutionFilter::new().workflow("daily-report").status(ExecutionStatus::Failed).limit(20);
/// # let _ = filter;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecutionFilter {
    workflow: Option<String>,
    status: Option<ExecutionStatus>,
    trigger: Option<Trigger>,
    limit: Option<u32>,
    cursor: Option<String>,
    newest_first: bool,
}

impl ExecutionFilter {
    /// Every execution, the server's default page size.
    ///
    /// ```
    /// let all = linkloom::ExecutionFilter::new();
    /// # let _ = all;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Only executions of this workflow.
    ///
    /// ```
    /// let filter = linkloom::ExecutionFilter::new().workflow("daily-report");
    /// # let _ = filter;
    /// ```
    pub fn workflow(mut self, workflow_id: impl Into<String>) -> Self {
        self.workflow = Some(workflow_id.into());
        self
    }

    /// Only executions with this status.
    ///
    /// ```
    /// let filter = linkloom::ExecutionFilter::new().status(linkloom::ExecutionStatus::Running);
    /// # let _ = filter;
    /// ```
    pub fn status(mut self, status: ExecutionStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Only executions created this way.
    ///
    /// ```
    /// let filter = linkloom::ExecutionFilter::new().trigger(linkloom::Trigger::Manual);
    /// # let _ = filter;
    /// ```
    pub fn trigger(mut self, trigger: Trigger) -> Self {
        self.trigger = Some(trigger);
        self
    }

    /// At most this many per page (the API allows 1 to 500; default 100).
    ///
    /// ```
    /// let filter = linkloom::ExecutionFilter::new().limit(500);
    /// # let _ = filter;
    /// ```
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Newest first, by creation time across workflows (`order=newest`), instead of id order. A
    /// cursor continues only the order it came from.
    ///
    /// ```
    /// let latest = linkloom::ExecutionFilter::new().newest_first().limit(20);
    /// # let _ = latest;
    /// ```
    pub fn newest_first(mut self) -> Self {
        self.newest_first = true;
        self
    }

    /// The page after this cursor (a previous page's `next_cursor`).
    ///
    /// ```
    /// let filter = linkloom::ExecutionFilter::new().cursor("daily-report:20260101T060000Z");
    /// # let _ = filter;
    /// ```
    pub fn cursor(mut self, cursor: impl Into<String>) -> Self {
        self.cursor = Some(cursor.into());
        self
    }

    fn apply(&self, mut request: ApiRequest) -> Result<ApiRequest, Error> {
        if let Some(workflow) = &self.workflow {
            request = request.query("workflow", workflow.clone());
        }
        for (name, value) in
            [("status", self.status.map(|s| s.as_str())), ("trigger", self.trigger.map(|t| t.as_str()))]
        {
            match value {
                Some("unknown") => return Err(Error::Invalid(format!("`unknown` is not a {name} to filter by"))),
                Some(value) => request = request.query(name, value),
                None => {}
            }
        }
        if let Some(limit) = self.limit {
            request = request.query("limit", limit.to_string());
        }
        if self.newest_first {
            request = request.query("order", "newest");
        }
        if let Some(cursor) = &self.cursor {
            request = request.query("cursor", cursor.clone());
        }
        Ok(request)
    }
}

impl Client {
    /// Starts an execution of the workflow's active version; `params` (an object, or null for
    /// none) override the workflow's defaults. Answers the new execution's id.
    ///
    /// ```no_run
    /// # async fn demo(client: linkloom::Client) -> Result<(), linkloom::Error> {
    /// let id = client.trigger("daily-report", serde_json::json!({"region": "eu"})).await?;
    /// println!("started {id}");
    /// # Ok(()) }
    /// ```
    ///
    /// A trigger whose answer was lost is sent again with the same idempotency key, so it
    /// starts one execution however many tries it takes (see [`Client::trigger_with_key`] for an
    /// operation that must stay one across restarts of the caller).
    pub async fn trigger(&self, workflow_id: &str, params: Value) -> Result<String, Error> {
        self.trigger_request(workflow_id, params, None).await
    }

    /// [`Client::trigger`] under the caller's idempotency key: however often it is called with
    /// the same key (and the same workflow and params) within the cluster's request window —
    /// from this process, another, or after a restart — it starts one execution and answers
    /// that execution's id. The same key with other params is refused (422,
    /// `idempotency_key_reused`).
    ///
    /// ```no_run
    /// # async fn demo(client: linkloom::Client) -> Result<(), linkloom::Error> {
    /// // One execution per order, even if this handler runs twice for the same order.
    /// let id = client.trigger_with_key("ship-order", serde_json::json!({"order": 42}), "order-42").await?;
    /// # Ok(()) }
    /// ```
    pub async fn trigger_with_key(&self, workflow_id: &str, params: Value, key: &str) -> Result<String, Error> {
        self.trigger_request(workflow_id, params, Some(key)).await
    }

    async fn trigger_request(&self, workflow_id: &str, params: Value, key: Option<&str>) -> Result<String, Error> {
        if !(params.is_null() || params.is_object()) {
            return Err(Error::Invalid("params must be a JSON object (or null for none)".into()));
        }
        let body = TriggerRequest { params: (!params.is_null()).then_some(params) };
        let mut request =
            ApiRequest::post(format!("/api/v1/workflows/{}/trigger", segment(workflow_id))).json(&body)?;
        if let Some(key) = key {
            request = request.idempotency_key(key);
        }
        let created: Triggered = self.call_json(&request, "the new execution").await?;
        Ok(created.execution_id)
    }

    /// One execution with its tasks and attempts.
    ///
    /// ```no_run
    /// # async fn demo(client: linkloom::Client) -> Result<(), linkloom::Error> {
    /// let execution = client.get_execution("daily-report:20260101T060000Z").await?;
    /// println!("{}", execution.status);
    /// # Ok(()) }
    /// ```
    pub async fn get_execution(&self, id: &str) -> Result<Execution, Error> {
        let request = ApiRequest::read(format!("/api/v1/executions/{}", segment(id)));
        self.call_json(&request, "the execution").await
    }

    /// One page of executions in id order, filtered.
    ///
    /// ```no_run
    /// # async fn demo(client: linkloom::Client) -> Result<(), linkloom::Error> {
    /// use linkloom::{ExecutionFilter, ExecutionStatus};
    /// let failed = client.list_executions(&ExecutionFilter::new().status(ExecutionStatus::Failed)).await?;
    /// for execution in failed.items {
    ///     println!("{} failed", execution.id);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn list_executions(&self, filter: &ExecutionFilter) -> Result<Page<Execution>, Error> {
        let request = filter.apply(ApiRequest::read("/api/v1/executions".into()))?;
        self.call_json(&request, "a page of executions").await
    }

    /// Polls an execution (every 100 ms at first, backing off to every 2 s) until it ends, and
    /// answers it. Fails with [`Error::Timeout`] once `timeout` has passed; a server that cannot
    /// be reached, or has no leader, is polled again until then.
    ///
    /// ```no_run
    /// # async fn demo(client: linkloom::Client) -> Result<(), linkloom::Error> {
    /// use std::time::Duration;
    /// let id = client.trigger("daily-report", serde_json::Value::Null).await?;
    /// let done = client.wait_for_execution(&id, Duration::from_secs(300)).await?;
    /// assert!(done.status.is_terminal());
    /// # Ok(()) }
    /// ```
    pub async fn wait_for_execution(&self, id: &str, timeout: Duration) -> Result<Execution, Error> {
        let deadline = Instant::now() + timeout;
        let mut pause = WAIT_POLL_FIRST;
        let mut last_error: Option<Error> = None;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                break;
            }
            match tokio::time::timeout(remaining, self.get_execution(id)).await {
                Err(_) => break,
                Ok(Ok(execution)) if execution.status.is_terminal() => return Ok(execution),
                Ok(Ok(_)) => last_error = None,
                // Transient: the cluster is failing over. Poll again until the deadline.
                Ok(Err(e)) if e.is_connect() || e.is_unavailable() || e.is_timeout() => last_error = Some(e),
                Ok(Err(e)) => return Err(e),
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                break;
            }
            tokio::time::sleep(pause.min(remaining)).await;
            pause = (pause * 2).min(WAIT_POLL_MAX);
        }
        Err(last_error.unwrap_or_else(|| Error::Timeout { what: format!("execution `{id}`"), after: timeout }))
    }

    /// Cancels an unfinished execution: running attempts are stopped, the rest never start.
    /// [`Error::is_conflict`] if it had already ended.
    ///
    /// ```no_run
    /// # async fn demo(client: linkloom::Client) -> Result<(), linkloom::Error> {
    /// match client.cancel_execution("daily-report:20260101T060000Z").await {
    ///     Ok(cancelled) => println!("{} is {}", cancelled.id, cancelled.status),
    ///     Err(e) if e.is_conflict() => println!("it had already ended"),
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn cancel_execution(&self, id: &str) -> Result<Cancelled, Error> {
        let request = ApiRequest::post(format!("/api/v1/executions/{}/cancel", segment(id)));
        self.call_json(&request, "the cancelled execution").await
    }

    /// Re-runs the failed, cancelled and skipped tasks of a failed or cancelled execution, with a
    /// fresh retry budget. Answers how many tasks were reset.
    ///
    /// ```no_run
    /// # async fn demo(client: linkloom::Client) -> Result<(), linkloom::Error> {
    /// let retried = client.retry_execution("daily-report:20260101T060000Z").await?;
    /// println!("{} task(s) will run again", retried.tasks_reset);
    /// # Ok(()) }
    /// ```
    pub async fn retry_execution(&self, id: &str) -> Result<Retried, Error> {
        let request = ApiRequest::post(format!("/api/v1/executions/{}/retry", segment(id)));
        self.call_json(&request, "the retried execution").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::tests::serve;
    use axum::extract::{Path, RawQuery};
    use axum::routing::{get, post};
    use axum::Router;
    use serde_json::json;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn sample(status: &str) -> Value {
        json!({
            "id": "wf:20260101T000000Z-0000002a", "workflow_id": "wf", "workflow_version": 3,
            "status": status, "trigger": "manual", "scheduled_at": null,
            "created_at": "2026-01-01T00:00:00Z", "started_at": "2026-01-01T00:00:00.100Z",
            "finished_at": null, "params": {"region": "us"}, "created_by": null, "owner_node_id": 2,
            "blocked_by": null, "a_field_from_a_newer_server": [1, 2],
            "tasks": [{"id": "extract", "status": "succeeded", "output": {"rows": 3}, "retry_at": null,
                       "attempts": [{"id": "17", "n": 1, "status": "succeeded", "node_id": 2, "worker_id": null,
                                     "started_at": "2026-01-01T00:00:00.100Z", "finished_at": "2026-01-01T00:00:01Z",
                                     "last_heartbeat_at": null, "error": null}]},
                      {"id": "load", "status": "teleporting", "output": null, "attempts": []}]
        })
    }

    #[test]
    fn reads_the_servers_execution_view_and_tolerates_new_things() {
        let execution: Execution = serde_json::from_value(sample("running")).unwrap();
        assert_eq!(execution.status, ExecutionStatus::Running);
        assert_eq!(execution.trigger, Trigger::Manual);
        assert_eq!(execution.owner_node_id, Some(2));
        let extract = execution.task("extract").unwrap();
        assert_eq!(extract.output, json!({"rows": 3}));
        let attempt = extract.last_attempt().unwrap();
        assert_eq!((attempt.id.as_str(), attempt.n, attempt.status), ("17", 1, AttemptStatus::Succeeded));
        assert_eq!(execution.task("load").unwrap().status, TaskStatus::Unknown);
        let minimal: Execution = serde_json::from_str(r#"{"id": "x"}"#).unwrap();
        assert_eq!(minimal.status, ExecutionStatus::Unknown);
    }

    #[tokio::test]
    async fn trigger_wait_cancel_retry_and_list() {
        let polls = Arc::new(AtomicUsize::new(0));
        let counter = polls.clone();
        let router = Router::new()
            .route(
                "/api/v1/workflows/{id}/trigger",
                post(|Path(id): Path<String>, axum::Json(body): axum::Json<Value>| async move {
                    assert_eq!(body, json!({"params": {"region": "us"}}));
                    (axum::http::StatusCode::ACCEPTED, axum::Json(json!({"execution_id": format!("{id}:1")})))
                }),
            )
            .route(
                "/api/v1/executions/{id}",
                get(move |Path(id): Path<String>| {
                    let n = counter.fetch_add(1, Ordering::SeqCst);
                    async move {
                        assert_eq!(id, "wf:1");
                        axum::Json(sample(if n < 2 { "running" } else { "succeeded" }))
                    }
                }),
            )
            .route(
                "/api/v1/executions/{id}/cancel",
                post(|| async { axum::Json(json!({"id": "wf:1", "status": "cancelled"})) }),
            )
            .route(
                "/api/v1/executions/{id}/retry",
                post(|| async { axum::Json(json!({"id": "wf:1", "tasks_reset": 2})) }),
            )
            .route(
                "/api/v1/executions",
                get(|RawQuery(query): RawQuery| async move {
                    assert_eq!(query.as_deref(), Some("workflow=wf&status=failed&trigger=manual&limit=5&cursor=c"));
                    axum::Json(json!({"items": [sample("failed")], "next_cursor": null}))
                }),
            );
        let client = Client::new([serve(router).await]).unwrap();
        let id = client.trigger("wf", json!({"region": "us"})).await.unwrap();
        assert_eq!(id, "wf:1");
        assert!(matches!(client.trigger("wf", json!([1])).await, Err(Error::Invalid(_))));
        let done = client.wait_for_execution(&id, Duration::from_secs(10)).await.unwrap();
        assert_eq!(done.status, ExecutionStatus::Succeeded);
        assert_eq!(polls.load(Ordering::SeqCst), 3);
        client.cancel_execution(&id).await.unwrap();
        assert_eq!(client.retry_execution(&id).await.unwrap().tasks_reset, 2);
        let filter = ExecutionFilter::new()
            .workflow("wf")
            .status(ExecutionStatus::Failed)
            .trigger(Trigger::Manual)
            .limit(5)
            .cursor("c");
        let page = client.list_executions(&filter).await.unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.next_cursor, None);
    }

    #[tokio::test]
    async fn waiting_gives_up_at_the_deadline() {
        let router = Router::new().route("/api/v1/executions/{id}", get(|| async { axum::Json(sample("running")) }));
        let client = Client::new([serve(router).await]).unwrap();
        let started = Instant::now();
        let err = client.wait_for_execution("wf:1", Duration::from_millis(300)).await.unwrap_err();
        assert!(err.is_timeout(), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
