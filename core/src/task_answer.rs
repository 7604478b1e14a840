//! A task's answer (`linkloom_wire::answer`) as the state machine records it.

use linkloom_wire::answer::{read_answer, TaskOutcome};

use crate::json::Json;
use crate::state::AttemptResult;

/// How the attempt ended, and the log text that came with the answer.
pub fn parse_task_answer(body: &[u8]) -> (AttemptResult, Option<String>) {
    let (outcome, logs) = read_answer(body);
    let result = match outcome {
        TaskOutcome::Succeeded { output } => AttemptResult::Succeeded { output: Json(output) },
        TaskOutcome::Failed { error, retryable } => AttemptResult::Failed { error, retryable },
    };
    (result, logs)
}
