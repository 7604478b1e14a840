//! Workflow definitions: register a version, read, list, delete, pause and resume.
//!
//! Typed specs are validated locally with the server's own validation before they are sent, so a
//! mistake is reported with every problem at once and without a round trip. YAML text is sent as
//! it is: the server is the judge of text (it may know fields this SDK does not).

use linkloom_core::spec::{self, WorkflowSpec};

use crate::client::{segment, ApiRequest, Page};
use crate::{Client, Error};

/// Most pages [`Client::list_workflows`] follows (500 workflows each).
const MAX_WORKFLOW_PAGES: usize = 1_000;

pub use linkloom_wire::{Backfill, Backfilled, Paused, StoredWorkflow, Workflow, WorkflowVersion};

/// The spec of a workflow as typed data. Fails with [`Error::Decode`] if the server knows fields
/// this SDK does not; `workflow.spec` keeps the raw JSON for that case.
///
/// ```
/// let workflow: linkloom::Workflow = serde_json::from_value(serde_json::json!({
///     "id": "hello", "version": 2,
///     "spec": {"id": "hello", "tasks": [{"id": "say", "type": "shell", "command": ["echo", "hi"]}]}
/// }))?;
/// assert_eq!(linkloom::parse_spec(&workflow)?.tasks[0].id, "say");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn parse_spec(workflow: &Workflow) -> Result<WorkflowSpec, Error> {
    serde_json::from_value(workflow.spec.clone())
        .map_err(|e| Error::Decode(format!("the spec of workflow `{}`: {e}", workflow.id)))
}

impl Client {
    /// Registers a workflow from YAML (or JSON) text: a new version if the id exists. The
    /// server validates it; [`Error::problems`] lists what it refused.
    ///
    /// ```no_run
    /// # async fn demo(client: linkloom::Client) -> Result<(), linkloom::Error> {
    /// let info = client
    ///     .put_workflow_yaml("id: hello\ntasks:\n  - {id: say, type: shell, command: [echo, hi]}\n")
    ///     .await?;
    /// println!("{} is at version {}", info.id, info.version);
    /// # Ok(()) }
    /// ```
    pub async fn put_workflow_yaml(&self, yaml: &str) -> Result<StoredWorkflow, Error> {
        let request = ApiRequest::post("/api/v1/workflows".into()).body("application/yaml", yaml.to_string());
        self.call_json(&request, "the stored workflow").await
    }

    /// Registers a typed workflow (sent as JSON) after validating it locally, as the server will.
    ///
    /// ```no_run
    /// # async fn demo(client: linkloom::Client) -> Result<(), linkloom::Error> {
    /// use linkloom::{TaskBuilder, WorkflowBuilder};
    /// let spec = WorkflowBuilder::new("hello").task(TaskBuilder::shell("say", ["echo", "hi"])).build()?;
    /// let info = client.put_workflow(&spec).await?;
    /// assert_eq!(info.id, "hello");
    /// # Ok(()) }
    /// ```
    pub async fn put_workflow(&self, spec: &WorkflowSpec) -> Result<StoredWorkflow, Error> {
        spec::validate(spec).map_err(|e| Error::Invalid(e.to_string()))?;
        let request = ApiRequest::post("/api/v1/workflows".into()).json(spec)?;
        self.call_json(&request, "the stored workflow").await
    }

    /// One workflow at its active version.
    ///
    /// ```no_run
    /// # async fn demo(client: linkloom::Client) -> Result<(), linkloom::Error> {
    /// let info = client.get_workflow("daily-report").await?;
    /// println!("version {}", info.version);
    /// # Ok(()) }
    /// ```
    pub async fn get_workflow(&self, id: &str) -> Result<Workflow, Error> {
        let request = ApiRequest::read(format!("/api/v1/workflows/{}", segment(id)));
        self.call_json(&request, "the workflow").await
    }

    /// One page of workflows in id order: at most `limit` (the server's default when `None`),
    /// after `cursor` (the previous page's `next_cursor`).
    ///
    /// ```no_run
    /// # async fn demo(client: linkloom::Client) -> Result<(), linkloom::Error> {
    /// let first = client.list_workflows_page(Some(10), None).await?;
    /// if let Some(cursor) = &first.next_cursor {
    ///     let second = client.list_workflows_page(Some(10), Some(cursor)).await?;
    ///     println!("{} more", second.items.len());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn list_workflows_page(&self, limit: Option<u32>, cursor: Option<&str>) -> Result<Page<Workflow>, Error> {
        let mut request = ApiRequest::read("/api/v1/workflows".into());
        if let Some(limit) = limit {
            request = request.query("limit", limit.to_string());
        }
        if let Some(cursor) = cursor {
            request = request.query("cursor", cursor);
        }
        self.call_json(&request, "a page of workflows").await
    }

    /// Every workflow, following the pages (at most 500,000 workflows).
    ///
    /// ```no_run
    /// # async fn demo(client: linkloom::Client) -> Result<(), linkloom::Error> {
    /// for wf in client.list_workflows().await? {
    ///     println!("{} v{}", wf.id, wf.version);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn list_workflows(&self) -> Result<Vec<Workflow>, Error> {
        self.all_pages(ApiRequest::read("/api/v1/workflows".into()), "the workflows", MAX_WORKFLOW_PAGES).await
    }

    /// Deletes a workflow; its unfinished executions are cancelled.
    ///
    /// ```no_run
    /// # async fn demo(client: linkloom::Client) -> Result<(), linkloom::Error> {
    /// match client.delete_workflow("old-report").await {
    ///     Err(e) if e.is_not_found() => println!("already gone"),
    ///     other => other?,
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn delete_workflow(&self, id: &str) -> Result<(), Error> {
        let request = ApiRequest::new(reqwest::Method::DELETE, format!("/api/v1/workflows/{}", segment(id)));
        self.call(&request).await.map(|_| ())
    }

    /// Every kept version of a workflow, newest first.
    ///
    /// ```no_run
    /// # async fn demo(client: linkloom::Client) -> Result<(), linkloom::Error> {
    /// for v in client.workflow_versions("daily-report").await? {
    ///     println!("v{} active={} by {:?}", v.version, v.active, v.created_by);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn workflow_versions(&self, id: &str) -> Result<Vec<WorkflowVersion>, Error> {
        let request = ApiRequest::read(format!("/api/v1/workflows/{}/versions", segment(id)));
        let page: Page<WorkflowVersion> = self.call_json(&request, "the workflow's versions").await?;
        Ok(page.items)
    }

    /// One execution per schedule tick in `[from, to)` (RFC 3339; at most 1,000 ticks). Ticks
    /// that already have an execution keep it; the answer counts both.
    ///
    /// ```no_run
    /// # async fn demo(client: linkloom::Client) -> Result<(), linkloom::Error> {
    /// let done = client.backfill("daily-report", "2026-01-01T00:00:00Z", "2026-01-08T00:00:00Z").await?;
    /// println!("{} created, {} existed", done.created, done.existing);
    /// # Ok(()) }
    /// ```
    pub async fn backfill(&self, id: &str, from: &str, to: &str) -> Result<Backfilled, Error> {
        let body = Backfill { from: from.to_string(), to: to.to_string() };
        let request = ApiRequest::post(format!("/api/v1/workflows/{}/backfill", segment(id))).json(&body)?;
        self.call_json(&request, "the backfill").await
    }

    /// Stops firing the workflow's scheduled ticks (manual triggers still run).
    ///
    /// ```no_run
    /// # async fn demo(client: linkloom::Client) -> Result<(), linkloom::Error> {
    /// client.pause("daily-report").await?;
    /// # Ok(()) }
    /// ```
    pub async fn pause(&self, id: &str) -> Result<Paused, Error> {
        let request = ApiRequest::post(format!("/api/v1/workflows/{}/pause", segment(id)));
        self.call_json(&request, "the paused workflow").await
    }

    /// Fires the workflow's scheduled ticks again (missed ones per its `catchup`).
    ///
    /// ```no_run
    /// # async fn demo(client: linkloom::Client) -> Result<(), linkloom::Error> {
    /// client.resume("daily-report").await?;
    /// # Ok(()) }
    /// ```
    pub async fn resume(&self, id: &str) -> Result<Paused, Error> {
        let request = ApiRequest::post(format!("/api/v1/workflows/{}/resume", segment(id)));
        self.call_json(&request, "the resumed workflow").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::tests::serve;
    use crate::{TaskBuilder, WorkflowBuilder};
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::{get, post};
    use axum::Router;
    use serde_json::json;

    #[tokio::test]
    async fn registers_typed_and_yaml_workflows_with_the_right_content_type() {
        let router = Router::new().route(
            "/api/v1/workflows",
            post(|headers: HeaderMap, body: String| async move {
                let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                let spec = match content_type.as_str() {
                    "application/json" => spec::parse_json(&body),
                    _ => spec::parse_yaml(&body),
                };
                match spec {
                    Ok(spec) => (
                        StatusCode::CREATED,
                        axum::Json(json!({"id": spec.id, "version": 1, "created_at": "2026-01-01T00:00:00Z",
                            "spec": serde_json::to_value(&spec).unwrap(), "field_from_the_future": true,
                            "kind": content_type})),
                    ),
                    Err(e) => (
                        StatusCode::UNPROCESSABLE_ENTITY,
                        axum::Json(json!({"error": {"code": "invalid_spec", "message": e.to_string(),
                            "details": {"problems": e.problems}}})),
                    ),
                }
            }),
        );
        let client = Client::new([serve(router).await]).unwrap();

        let spec = WorkflowBuilder::new("hello").task(TaskBuilder::shell("say", ["echo", "hi"])).build().unwrap();
        let info = client.put_workflow(&spec).await.unwrap();
        assert_eq!((info.id.as_str(), info.version), ("hello", 1));
        let stored: WorkflowSpec = serde_json::from_value(info.spec.clone()).unwrap();
        assert_eq!(stored, spec, "the typed spec survives the trip");

        let info = client.put_workflow_yaml("id: y\ntasks: [{id: t, type: worker, queue: q}]\n").await.unwrap();
        assert_eq!(info.id, "y");

        let err = client.put_workflow_yaml("id: y\ncolour: blue\ntasks: []\n").await.unwrap_err();
        assert_eq!(err.code(), Some("invalid_spec"));
        assert!(err.problems()[0].message.contains("colour"), "{err:?}");

        // An invalid typed spec never leaves the process.
        let mut bad = spec.clone();
        bad.tasks[0].depends_on.push("nope".into());
        assert!(matches!(client.put_workflow(&bad).await, Err(Error::Invalid(m)) if m.contains("unknown task `nope`")));
    }

    #[tokio::test]
    async fn list_workflows_follows_cursors() {
        let router = Router::new().route(
            "/api/v1/workflows",
            get(|axum::extract::RawQuery(query): axum::extract::RawQuery| async move {
                let query = query.unwrap_or_default();
                assert!(query.contains("limit=500"), "{query}");
                let (items, next) = if query.contains("cursor=b") {
                    (json!([{"id": "c", "version": 1}]), serde_json::Value::Null)
                } else {
                    (json!([{"id": "a", "version": 1}, {"id": "b", "version": 4}]), json!("b"))
                };
                axum::Json(json!({"items": items, "next_cursor": next}))
            }),
        );
        let client = Client::new([serve(router).await]).unwrap();
        let all = client.list_workflows().await.unwrap();
        let ids: Vec<&str> = all.iter().map(|w| w.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(all[1].version, 4);
    }
}
