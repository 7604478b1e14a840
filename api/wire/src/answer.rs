//! The answer a task backend gives, synchronously (HTTP 200) or through the callback, and with
//! which a worker completes an attempt:
//! `{"status": "succeeded"|"failed", "output": {...}, "logs": "...", "error": "...", "retryable": bool}`.
//!
//! A node reads answers leniently ([`read_answer`]): an answer it cannot understand fails the
//! attempt for good with a message saying why, rather than being refused, because the backend
//! that sent it has already done the work.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

open_enum! {
    /// How the task ended.
    pub enum AnswerStatus {
        /// Done; `output` is passed downstream.
        Succeeded => "succeeded",
        /// Failed; retried per the task's policy unless `retryable` is false.
        Failed => "failed",
    }
}

/// A task's answer.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct TaskAnswer {
    pub status: AnswerStatus,
    /// Succeeded: any JSON, available to downstream tasks (`{}` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// Failed: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Failed: `false` fails the task at once, without further attempts (default `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retryable: Option<bool>,
    /// Log text, kept with the attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<String>,
}

impl TaskAnswer {
    /// A success with `output`.
    pub fn succeeded(output: Value) -> Self {
        TaskAnswer { status: AnswerStatus::Succeeded, output: Some(output), ..Default::default() }
    }

    /// A failure; `retryable: false` ends the task at once.
    pub fn failed(error: impl Into<String>, retryable: bool) -> Self {
        TaskAnswer {
            status: AnswerStatus::Failed,
            error: Some(error.into()),
            retryable: Some(retryable),
            ..Default::default()
        }
    }

    /// The same answer with log text.
    pub fn with_logs(mut self, logs: impl Into<String>) -> Self {
        self.logs = Some(logs.into());
        self
    }
}

/// What an answer means for the attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskOutcome {
    Succeeded { output: Value },
    Failed { error: String, retryable: bool },
}

/// How the attempt ended, and the log text that came with the answer. Never fails: what is not a
/// valid answer is a non-retryable failure naming the problem.
///
/// ```
/// use linkloom_wire::answer::{read_answer, TaskOutcome};
/// let (outcome, logs) = read_answer(br#"{"status":"failed","error":"disk full","logs":"..."}"#);
/// assert_eq!(outcome, TaskOutcome::Failed { error: "disk full".into(), retryable: true });
/// assert_eq!(logs.as_deref(), Some("..."));
/// ```
pub fn read_answer(body: &[u8]) -> (TaskOutcome, Option<String>) {
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            let error = format!("the answer is not JSON: {e}");
            return (TaskOutcome::Failed { error, retryable: false }, None);
        }
    };
    let logs = value.get("logs").and_then(Value::as_str).map(str::to_string);
    let outcome = match value.get("status").and_then(Value::as_str) {
        Some("succeeded") => {
            TaskOutcome::Succeeded { output: value.get("output").cloned().unwrap_or(Value::Object(Default::default())) }
        }
        Some("failed") => TaskOutcome::Failed {
            error: value.get("error").and_then(Value::as_str).unwrap_or("the backend reported failure").to_string(),
            retryable: value.get("retryable").and_then(Value::as_bool).unwrap_or(true),
        },
        other => TaskOutcome::Failed {
            error: format!("the answer's status is {other:?}; expected \"succeeded\" or \"failed\""),
            retryable: false,
        },
    };
    (outcome, logs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_kind_of_answer() {
        let (r, logs) = read_answer(br#"{"status":"succeeded","output":{"rows":3},"logs":"ok\n"}"#);
        assert_eq!(r, TaskOutcome::Succeeded { output: serde_json::json!({"rows": 3}) });
        assert_eq!(logs.as_deref(), Some("ok\n"));
        let (r, _) = read_answer(br#"{"status":"succeeded"}"#);
        assert_eq!(r, TaskOutcome::Succeeded { output: serde_json::json!({}) });
        let (r, _) = read_answer(br#"{"status":"failed","error":"bad input","retryable":false}"#);
        assert_eq!(r, TaskOutcome::Failed { error: "bad input".into(), retryable: false });
        let (r, _) = read_answer(b"not json");
        assert!(matches!(r, TaskOutcome::Failed { retryable: false, .. }));
        let (r, _) = read_answer(br#"{"status":"done"}"#);
        assert!(matches!(r, TaskOutcome::Failed { ref error, retryable: false } if error.contains("done")));
    }

    #[test]
    fn what_an_sdk_sends_is_what_a_node_reads() {
        let sent = serde_json::to_vec(&TaskAnswer::failed("no", false).with_logs("l")).unwrap_or_default();
        assert_eq!(
            read_answer(&sent),
            (TaskOutcome::Failed { error: "no".into(), retryable: false }, Some("l".into()))
        );
        let sent = serde_json::to_vec(&TaskAnswer::succeeded(serde_json::json!([1]))).unwrap_or_default();
        assert_eq!(read_answer(&sent).0, TaskOutcome::Succeeded { output: serde_json::json!([1]) });
    }
}
