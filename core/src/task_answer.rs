//! The answer a task backend gives, synchronously (HTTP 200) or through the callback:
//! `{"status": "succeeded"|"failed", "output": {...}, "logs": "...", "error": "...", "retryable": bool}`.
//! Workers complete their attempts with the same shape.

use serde_json::Value;

use crate::json::Json;
use crate::state::AttemptResult;

/// How the attempt ended, and the log text that came with the answer.
pub fn parse_task_answer(body: &[u8]) -> (AttemptResult, Option<String>) {
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            let error = format!("the answer is not JSON: {e}");
            return (AttemptResult::Failed { error, retryable: false }, None);
        }
    };
    let logs = value.get("logs").and_then(Value::as_str).map(str::to_string);
    let result = match value.get("status").and_then(Value::as_str) {
        Some("succeeded") => AttemptResult::Succeeded {
            output: Json(value.get("output").cloned().unwrap_or(Value::Object(Default::default()))),
        },
        // A task failure: retried per the task's policy, unless the answer says `"retryable": false`.
        Some("failed") => AttemptResult::Failed {
            error: value.get("error").and_then(Value::as_str).unwrap_or("the backend reported failure").to_string(),
            retryable: value.get("retryable").and_then(Value::as_bool).unwrap_or(true),
        },
        other => AttemptResult::Failed {
            error: format!("the answer's status is {other:?}; expected \"succeeded\" or \"failed\""),
            retryable: false,
        },
    };
    (result, logs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_kind_of_answer() {
        let (r, logs) = parse_task_answer(br#"{"status":"succeeded","output":{"rows":3},"logs":"ok\n"}"#);
        assert_eq!(r, AttemptResult::Succeeded { output: Json(serde_json::json!({"rows": 3})) });
        assert_eq!(logs.as_deref(), Some("ok\n"));
        let (r, _) = parse_task_answer(br#"{"status":"failed","error":"disk full"}"#);
        assert_eq!(r, AttemptResult::Failed { error: "disk full".into(), retryable: true });
        let (r, _) = parse_task_answer(br#"{"status":"failed","error":"bad input","retryable":false}"#);
        assert_eq!(r, AttemptResult::Failed { error: "bad input".into(), retryable: false });
        let (r, _) = parse_task_answer(b"not json");
        assert!(matches!(r, AttemptResult::Failed { retryable: false, .. }));
        let (r, _) = parse_task_answer(br#"{"status":"done"}"#);
        assert!(matches!(r, AttemptResult::Failed { ref error, retryable: false } if error.contains("done")));
    }
}
