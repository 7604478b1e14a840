//! Attempts: one try of one task, started by the execution's owner node (HTTP and shell tasks) or
//! handed to a worker, kept alive by heartbeats, and ended by exactly one report.
//!
//! Only the attempt's holder may report on it (see [`may_report`]), and only while the attempt
//! is its task's current one: a late answer from an attempt that was lost, cancelled or released
//! is refused as stale and changes nothing.

use serde::{Deserialize, Serialize};

use super::command::{AttemptResult, Rejection, Reporter, Response};
use super::execution::{self, Attempt, AttemptStatus};
use super::{token, workflow, Moment, State};
use crate::ids::NodeId;
use crate::json::Json;
use crate::limits;
use crate::spec::TaskKind;

/// What a `StartAttempt` asks for, besides which task.
pub(super) struct StartRequest {
    pub(super) node_id: NodeId,
    pub(super) worker_id: Option<String>,
    pub(super) lease_expires_at_ms: Option<i64>,
    pub(super) callback_token_hash: Option<String>,
}

/// Whether `by` may heartbeat or end `attempt`: the owner node for its own HTTP and shell
/// attempts, the backend with the attempt's callback token, the worker holding it through the
/// token it is bound to.
fn may_report(attempt: &Attempt, by: &Reporter) -> bool {
    match by {
        Reporter::Owner => attempt.worker_id.is_none(),
        Reporter::Backend { token_hash } => {
            attempt.worker_id.is_none() && attempt.callback_token_hash.as_deref() == Some(token_hash.as_str())
        }
        Reporter::Worker { worker_id, token } => {
            attempt.worker_id.as_deref() == Some(worker_id.as_str())
                && (attempt.worker_token.is_none() || attempt.worker_token == *token)
        }
    }
}

/// Where an attempt lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct AttemptRef {
    execution_id: String,
    task_index: usize,
}

impl AttemptRef {
    pub(super) fn new(execution_id: &str, task_index: usize) -> AttemptRef {
        AttemptRef { execution_id: execution_id.to_string(), task_index }
    }

    pub(super) fn execution_id(&self) -> &str {
        &self.execution_id
    }

    pub(super) fn task_index(&self) -> usize {
        self.task_index
    }
}

impl State {
    pub(super) fn start_attempt(
        &mut self,
        execution_id: &str,
        task_id: &str,
        start: StartRequest,
        at: Moment,
    ) -> Response {
        let StartRequest { node_id, worker_id, lease_expires_at_ms, callback_token_hash } = start;
        self.promote(execution_id);
        let (now, lease_expires_at_ms) = (at.now, lease_expires_at_ms.map(|e| at.expiry(e)));
        if callback_token_hash.as_deref().is_some_and(|h| !token::is_sha256_hex(h)) {
            return Response::Rejected(Rejection::InvalidToken(
                "a callback token hash is 64 lowercase hex digits".into(),
            ));
        }
        if let Err(r) = self.check_startable(execution_id, task_id, node_id, worker_id.as_deref(), now) {
            return Response::Rejected(r);
        }
        let Some(execution) = self.executions.get_mut(execution_id) else {
            return Response::Rejected(Rejection::ExecutionNotFound(execution_id.to_string()));
        };
        let Some(spec) = workflow::spec_of(&self.workflows, execution) else {
            return Response::Rejected(Rejection::WorkflowNotFound(execution.workflow_id.clone()));
        };
        let attempt_id = self.next_attempt_id + 1;
        let lease_expires_at_ms = worker_id.as_ref().and(lease_expires_at_ms);
        // A worker attempt is recorded on the node its worker is connected to, not the proposer,
        // and bound to the token the worker connected with; only other attempts get a callback token.
        let worker = worker_id.as_deref().and_then(|w| self.workers.get(w));
        let node_id = worker.map_or(node_id, |w| w.node_id);
        let worker_token = worker.and_then(|w| w.token.clone());
        let callback_token_hash = callback_token_hash.filter(|_| worker_id.is_none());
        let holder = execution::Holder { worker_id, worker_token, callback_token_hash };
        match execution.start_attempt(spec, task_id, attempt_id, node_id, holder, lease_expires_at_ms, now) {
            Err(r) => Response::Rejected(r),
            Ok(n) => {
                self.next_attempt_id = attempt_id;
                let task_index = execution.tasks.iter().position(|t| t.id == task_id).unwrap_or_default();
                self.attempts.insert(attempt_id, AttemptRef { execution_id: execution_id.to_string(), task_index });
                self.reindex(execution_id);
                Response::AttemptStarted { attempt_id, n }
            }
        }
    }

    pub(super) fn heartbeat(
        &mut self,
        attempt_id: u64,
        by: &Reporter,
        lease_expires_at_ms: Option<i64>,
        progress: Option<Json>,
        logs: Option<String>,
        at: Moment,
    ) -> Response {
        let (now, lease_expires_at_ms) = (at.now, lease_expires_at_ms.map(|e| at.expiry(e)));
        if let Some(p) = progress.as_ref().filter(|p| p.encoded_len() > limits::MAX_PROGRESS_BYTES) {
            let (what, size, limit) = ("progress".to_string(), p.encoded_len(), limits::MAX_PROGRESS_BYTES);
            return Response::Rejected(Rejection::TooLarge { what, size, limit });
        }
        let attempt = match self.current_attempt_mut(attempt_id) {
            Ok(a) if !may_report(a, by) => return Response::Rejected(Rejection::NotAttemptHolder { attempt_id }),
            Ok(a) => a,
            Err(r) => return Response::Rejected(r),
        };
        attempt.last_heartbeat_ms = Some(now);
        if let (Some(current), Some(new)) = (attempt.lease_expires_at_ms, lease_expires_at_ms) {
            attempt.lease_expires_at_ms = Some(current.max(new));
        }
        if progress.is_some() {
            attempt.progress = progress;
        }
        let lease_expires_at_ms = attempt.lease_expires_at_ms;
        self.append_final_log(attempt_id, logs, now);
        self.worker_heard_from(by);
        Response::HeartbeatRecorded { attempt_id, lease_expires_at_ms }
    }

    /// Appends log text that came with an accepted heartbeat or finish, cut to one append's limit.
    fn append_final_log(&mut self, attempt_id: u64, logs: Option<String>, now: i64) {
        if let Some(mut text) = logs.filter(|t| !t.is_empty()) {
            if text.len() > limits::MAX_LOG_APPEND_BYTES {
                let mut cut = limits::MAX_LOG_APPEND_BYTES;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
            }
            let max = self.limits.max_log_bytes_per_attempt;
            let log = self.logs.entry(attempt_id).or_default();
            let before = log.kept_bytes;
            log.append(text, now, max);
            let after = log.kept_bytes;
            self.log_resized(before, after);
        }
    }

    pub(super) fn finish_attempt(
        &mut self,
        attempt_id: u64,
        by: &Reporter,
        result: AttemptResult,
        logs: Option<String>,
        jitter: u16,
        now: i64,
    ) -> Response {
        match self.current_attempt_mut(attempt_id) {
            Ok(a) if !may_report(a, by) => return Response::Rejected(Rejection::NotAttemptHolder { attempt_id }),
            Ok(_) => {}
            Err(Rejection::StaleAttempt { status, .. })
                if status == "lost" && crate::bugs::active(crate::bugs::Bug::LateCompletion) =>
            {
                return self.accept_late_completion(attempt_id, result, now);
            }
            Err(r) => return Response::Rejected(r),
        }
        self.append_final_log(attempt_id, logs, now);
        // A result the worker sent itself shows it alive; lost and timed-out ones the cluster
        // records on its behalf.
        if !matches!(result, AttemptResult::Lost { .. } | AttemptResult::TimedOut) {
            self.worker_heard_from(by);
        }
        let max_output = self.limits.max_output_bytes as usize;
        let result = match result {
            AttemptResult::Succeeded { output } if output.encoded_len() > max_output => AttemptResult::Failed {
                error: format!("output is {} bytes; the limit is {max_output}", output.encoded_len()),
                retryable: false,
            },
            other => other,
        };
        let Some(at) = self.attempts.get(&attempt_id) else {
            return Response::Rejected(Rejection::AttemptNotFound(attempt_id));
        };
        let Some(execution) = self.executions.get_mut(&at.execution_id) else {
            return Response::Rejected(Rejection::AttemptNotFound(attempt_id));
        };
        let Some(spec) = workflow::spec_of(&self.workflows, execution) else {
            return Response::Rejected(Rejection::WorkflowNotFound(execution.workflow_id.clone()));
        };
        let task_status = execution.finish_attempt(spec, at.task_index, result, jitter, now);
        let execution_status = execution.status;
        let execution_id = at.execution_id.clone();
        self.reindex(&execution_id);
        Response::AttemptFinished { task_status, execution_status }
    }

    /// [`crate::bugs::Bug::LateCompletion`]: rewrites a lost attempt as if its late answer counted.
    fn accept_late_completion(&mut self, attempt_id: u64, result: AttemptResult, now: i64) -> Response {
        self.promote_attempt(attempt_id);
        let Some(at) = self.attempts.get(&attempt_id).cloned() else {
            return Response::Rejected(Rejection::AttemptNotFound(attempt_id));
        };
        let Some(execution) = self.executions.get_mut(&at.execution_id) else {
            return Response::Rejected(Rejection::AttemptNotFound(attempt_id));
        };
        let task = &mut execution.tasks[at.task_index];
        if let Some(attempt) = task.attempts.iter_mut().find(|a| a.id == attempt_id) {
            attempt.status = match result {
                AttemptResult::Succeeded { .. } => AttemptStatus::Succeeded,
                _ => AttemptStatus::Failed,
            };
            attempt.finished_at_ms = Some(now);
        }
        let answer = Response::AttemptFinished { task_status: task.status, execution_status: execution.status };
        self.reindex(&at.execution_id);
        answer
    }

    /// Who may start an attempt: for `worker` tasks, a connected worker of the task's queue with
    /// a free slot; for other tasks, only the execution's owner. A buffered execution waits for
    /// the one before it.
    pub(super) fn check_startable(
        &self,
        execution_id: &str,
        task_id: &str,
        node_id: u64,
        worker_id: Option<&str>,
        now: i64,
    ) -> Result<(), Rejection> {
        let execution =
            self.executions.get(execution_id).ok_or_else(|| Rejection::ExecutionNotFound(execution_id.to_string()))?;
        let task_spec = self.execution_spec(execution).and_then(|s| s.task(task_id));
        match (task_spec, worker_id) {
            (Some(ts), Some(worker_id)) if ts.kind == TaskKind::Worker => {
                let queue = ts.queue.as_deref().unwrap_or_default();
                self.check_worker_can_take(worker_id, queue, task_id, now)?;
            }
            (Some(ts), None) if ts.kind == TaskKind::Worker => {
                return Err(Rejection::TaskNotReady {
                    task_id: task_id.to_string(),
                    reason: "a worker task starts only when handed to a worker".into(),
                });
            }
            (_, Some(worker_id)) => {
                return Err(Rejection::WorkerUnavailable {
                    worker_id: worker_id.to_string(),
                    task_id: task_id.to_string(),
                    reason: "the task is not of type worker".into(),
                });
            }
            (_, None) if execution.owner != Some(node_id) => {
                return Err(Rejection::NotOwner { execution_id: execution_id.to_string(), owner: execution.owner });
            }
            (_, None) => {}
        }
        if let Some(by) = self.blocker(execution) {
            return Err(Rejection::Blocked { execution_id: execution_id.to_string(), by: by.to_string() });
        }
        Ok(())
    }

    /// The running attempt `attempt_id`, if it is its task's current one.
    pub(super) fn current_attempt_mut(&mut self, attempt_id: u64) -> Result<&mut Attempt, Rejection> {
        let Some(at) = self.attempts.get(&attempt_id) else {
            // An attempt only the base holds belongs to a finished execution, so it is never
            // current: answered from the base, without copying the execution into memory (a
            // stream of stale reports must not pull history back into memory).
            return Err(match self.attempt(attempt_id) {
                Some(found) => Rejection::StaleAttempt { attempt_id, status: found.attempt().status.to_string() },
                None => Rejection::AttemptNotFound(attempt_id),
            });
        };
        let task = self
            .executions
            .get_mut(&at.execution_id)
            .and_then(|e| e.tasks.get_mut(at.task_index))
            .ok_or(Rejection::AttemptNotFound(attempt_id))?;
        let is_current = task.attempts.last().is_some_and(|a| a.id == attempt_id && a.status == AttemptStatus::Running);
        if !is_current {
            let status = task
                .attempts
                .iter()
                .find(|a| a.id == attempt_id)
                .map(|a| a.status.to_string())
                .unwrap_or_else(|| "unknown".into());
            return Err(Rejection::StaleAttempt { attempt_id, status });
        }
        task.attempts.last_mut().ok_or(Rejection::AttemptNotFound(attempt_id))
    }

    pub(super) fn append_log(&mut self, attempt_id: u64, text: String, now: i64) -> Response {
        self.promote_attempt(attempt_id);
        if !self.attempts.contains_key(&attempt_id) {
            return Response::Rejected(Rejection::AttemptNotFound(attempt_id));
        }
        if text.len() > limits::MAX_LOG_APPEND_BYTES {
            return Response::Rejected(Rejection::TooLarge {
                what: "log append".into(),
                size: text.len(),
                limit: limits::MAX_LOG_APPEND_BYTES,
            });
        }
        let max = self.limits.max_log_bytes_per_attempt;
        let log = self.logs.entry(attempt_id).or_default();
        let before = log.kept_bytes;
        let dropped_bytes = log.append(text, now, max);
        let after = log.kept_bytes;
        self.log_resized(before, after);
        Response::LogAppended { dropped_bytes }
    }

    /// Every indexed attempt exists where the index says, under the attempt counter.
    pub(super) fn check_attempt_index(&self) -> Result<(), String> {
        for (id, at) in &self.attempts {
            let found = self
                .executions
                .get(&at.execution_id)
                .and_then(|e| e.tasks.get(at.task_index))
                .is_some_and(|t| t.attempts.iter().any(|a| a.id == *id));
            if !found {
                return Err(format!("attempt index {id} points nowhere"));
            }
            if *id > self.next_attempt_id {
                return Err(format!("attempt {id} beyond the counter {}", self.next_attempt_id));
            }
        }
        Ok(())
    }
}
