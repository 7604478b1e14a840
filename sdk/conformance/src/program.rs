//! The Rust SDK's side of the kit: the conformance handler (README §3) and the client calls, as
//! the `loom-conformance-rust` program runs them and as the transcript tests use them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use linkloom::protocol::error_kind;
use linkloom::{Client, Error, ExecutionFilter, TaskContext, TaskError, TaskResult, WorkflowSpec};
use serde_json::{json, Value};

/// Where the handler's event lines go (stdout in the program, a list in tests).
pub type Events = Arc<dyn Fn(Value) + Send + Sync>;

/// The conformance handler, reporting through `events`.
pub fn handler(
    events: Events,
) -> impl Fn(TaskContext) -> std::pin::Pin<Box<dyn std::future::Future<Output = TaskResult> + Send>>
       + Send
       + Sync
       + Clone
       + 'static {
    let running = Arc::new(AtomicUsize::new(0));
    move |task: TaskContext| {
        let (events, running) = (events.clone(), running.clone());
        Box::pin(async move {
            let a = task.assignment().clone();
            let now_running = running.fetch_add(1, Ordering::SeqCst) + 1;
            let received_at_ms =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
            events(json!({"event": "started", "attempt_id": a.attempt_id, "execution_id": a.execution_id,
                "task_id": a.task_id, "attempt": a.attempt, "running": now_running, "received_at_ms": received_at_ms}));
            let result = run(&task).await;
            running.fetch_sub(1, Ordering::SeqCst);
            match &result {
                None => events(json!({"event": "cancelled", "attempt_id": a.attempt_id})),
                Some(r) => events(json!({"event": "finished", "attempt_id": a.attempt_id,
                    "outcome": if r.is_ok() { "succeeded" } else { "failed" }})),
            }
            // A cancelled attempt reports nothing: the worker drops this answer.
            result.unwrap_or_else(|| Err(TaskError::retryable("cancelled")))
        })
    }
}

/// The handler's behaviour; `None` when it was cancelled.
async fn run(task: &TaskContext) -> Option<TaskResult> {
    let input = task.input().clone();
    if let Some(line) = input.get("log").and_then(Value::as_str) {
        task.log(line);
    }
    if let Some(progress) = input.get("progress") {
        task.progress(progress.clone());
    }
    if let Some(ms) = input.get("sleep_ms").and_then(Value::as_u64) {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
            _ = task.cancelled() => return None,
        }
    }
    if input.get("wait_for_cancel").and_then(Value::as_bool) == Some(true) {
        task.cancelled().await;
        return None;
    }
    if task.is_cancelled() {
        return None;
    }
    if input.get("fail").and_then(Value::as_bool) == Some(true) {
        let message = input.get("message").and_then(Value::as_str).unwrap_or("asked to fail").to_string();
        let retryable = input.get("retryable").and_then(Value::as_bool).unwrap_or(true);
        return Some(Err(if retryable { TaskError::retryable(message) } else { TaskError::fatal(message) }));
    }
    Some(Ok(input))
}

/// One client call (README §3): `{"ok": RESULT}` or `{"error": {...}}`, or `Err` for a call
/// that is not well formed.
pub async fn call(client: &Client, call: &Value) -> Result<Value, String> {
    let op = call["op"].as_str().ok_or("the call has no `op`")?;
    let text = |field: &str| call[field].as_str().map(str::to_string).ok_or(format!("`{op}` needs `{field}`"));
    let result: Result<Value, Error> = match op {
        "register" => {
            let spec: WorkflowSpec =
                serde_json::from_value(call["spec"].clone()).map_err(|e| format!("`spec` is not a workflow: {e}"))?;
            match client.put_workflow(&spec).await {
                Ok(stored) => Ok(json!({"workflow_id": stored.id, "version": stored.version})),
                Err(e) => Err(e),
            }
        }
        "trigger" => {
            let workflow = text("workflow")?;
            let params = if call["params"].is_null() { json!({}) } else { call["params"].clone() };
            client.trigger(&workflow, params).await.map(|id| json!({"execution_id": id}))
        }
        "trigger_many" => {
            let workflow = text("workflow")?;
            let count = call["count"].as_u64().ok_or("`trigger_many` needs `count`")?;
            let mut ids = Vec::new();
            let mut failed = None;
            for _ in 0..count {
                match client.trigger(&workflow, json!({})).await {
                    Ok(id) => ids.push(id),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            match failed {
                Some(e) => Err(e),
                None => Ok(json!({"execution_ids": ids})),
            }
        }
        "wait" => {
            let id = text("execution_id")?;
            let timeout = Duration::from_millis(call["timeout_ms"].as_u64().unwrap_or(30_000));
            client.wait_for_execution(&id, timeout).await.map(|e| {
                let tasks: serde_json::Map<String, Value> = e
                    .tasks
                    .iter()
                    .map(|t| (t.id.clone(), json!({"status": t.status.as_str(), "output": t.output})))
                    .collect();
                json!({"execution_id": e.id, "status": e.status.as_str(), "tasks": tasks})
            })
        }
        "list" => {
            let workflow = text("workflow")?;
            client
                .list_executions(&ExecutionFilter::new().workflow(workflow).newest_first().limit(500))
                .await
                .map(|page| json!({"execution_ids": page.items.iter().map(|e| e.id.clone()).collect::<Vec<_>>()}))
        }
        "logs" => {
            let id = text("execution_id")?;
            let task = call["task"].as_str().map(str::to_string);
            if call["follow"].as_bool() == Some(true) {
                let stream = client.follow_logs(&id, task.as_deref());
                futures::pin_mut!(stream);
                let mut text = String::new();
                let mut failed = None;
                while let Some(chunk) = stream.next().await {
                    match chunk {
                        Ok(chunk) => text.push_str(&chunk),
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                match failed {
                    Some(e) => Err(e),
                    None => Ok(json!({"text": text})),
                }
            } else {
                client.logs(&id, task.as_deref()).await.map(|text| json!({"text": text}))
            }
        }
        "cancel" => client.cancel_execution(&text("execution_id")?).await.map(|c| json!({"status": c.status.as_str()})),
        "retry" => client.retry_execution(&text("execution_id")?).await.map(|r| json!({"tasks_reset": r.tasks_reset})),
        other => return Err(format!("unknown op `{other}`")),
    };
    Ok(match result {
        Ok(value) => json!({"ok": value}),
        Err(e) => {
            json!({"error": {"kind": error_kind(&e), "status": e.status(), "code": e.code(), "message": e.to_string()}})
        }
    })
}
