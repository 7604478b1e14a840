//! Executions (runs of a workflow version), their tasks and the attempts of each task, with the
//! transitions between their statuses.
//!
//! The DAG is settled here, inside `apply`: when a task ends, tasks whose `when` rule can no
//! longer hold become `skipped`, and when every task has ended the execution ends. Which tasks
//! are *ready* is a pure query ([`Execution::ready_tasks`]) that the engine polls; starting one
//! is a command.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::command::{AttemptResult, Rejection};
use crate::codec::Added;
use crate::ids::NodeId;
use crate::json::Json;
use crate::limits;
use crate::spec::{When, WorkflowSpec};

/// Why an execution exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Manual,
    Schedule,
    Backfill,
    /// A named event (`POST /api/v1/events`) matched one of the workflow's `event` triggers.
    Event,
    /// A webhook call to one of the workflow's `webhook` triggers.
    Webhook,
    /// An execution of another workflow ended as one of the workflow's `workflow` triggers asks.
    Workflow,
}

/// The event an execution started from (`trigger` event, webhook or workflow). For a chained
/// execution, the upstream execution's end: named `workflow.<id>.<status>`, with the upstream
/// execution's id as its id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartEvent {
    pub name: String,
    pub id: String,
    pub payload: Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Pending,
    Running,
    /// Failed at least once and waiting for its next attempt.
    Retrying,
    Succeeded,
    Failed,
    Skipped,
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptStatus {
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Lost,
    Cancelled,
    /// Given back unstarted by its worker; does not count against the retry budget.
    Released,
}

macro_rules! display_as_serde_name {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let text = serde_json::to_value(self).ok();
                f.write_str(text.as_ref().and_then(|v| v.as_str()).unwrap_or("?"))
            }
        }
    )*};
}
display_as_serde_name!(Trigger, ExecutionStatus, TaskStatus, AttemptStatus);

impl ExecutionStatus {
    pub fn is_terminal(self) -> bool {
        matches!(self, ExecutionStatus::Succeeded | ExecutionStatus::Failed | ExecutionStatus::Cancelled)
    }
}

impl TaskStatus {
    pub fn is_terminal(self) -> bool {
        matches!(self, TaskStatus::Succeeded | TaskStatus::Failed | TaskStatus::Skipped | TaskStatus::Cancelled)
    }
}

/// What a caller did to an execution after creating it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditAction {
    Cancelled,
    Retried,
}

/// One entry of an execution's audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub action: AuditAction,
    /// The token name of the caller (`None`: the node ran open, or the cluster itself acted).
    pub by: Option<String>,
    pub at_ms: i64,
}

/// One run of a workflow version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    pub id: String,
    pub workflow_id: String,
    pub workflow_version: u32,
    pub trigger: Trigger,
    pub scheduled_at_ms: Option<i64>,
    pub created_at_ms: i64,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    pub status: ExecutionStatus,
    /// The workflow's default params with the trigger's overrides applied.
    pub params: Json,
    pub created_by: Option<String>,
    /// Who cancelled or retried this execution, and when (oldest first, bounded by
    /// [`crate::limits::MAX_AUDIT_ENTRIES_PER_EXECUTION`]).
    pub audit: Vec<AuditEntry>,
    /// The node that drives this execution (assigned by the leader; see `AssignExecution`).
    /// Only the owner may start attempts, which fences off a node that lost ownership.
    pub owner: Option<NodeId>,
    /// A `buffer_one` execution waits for this earlier execution of its workflow to end.
    pub blocked_by: Option<String>,
    /// In the order of the workflow spec.
    pub tasks: Vec<TaskRun>,
    /// The event it started from, for event, webhook and chained executions.
    #[serde(default)]
    pub event: Added<Option<StartEvent>>,
    /// How often its end has started chained workflows: each end (a retried execution ends
    /// again) starts them under a new number.
    #[serde(default)]
    pub chained_ends: Added<u32>,
}

/// The state of one task within an execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRun {
    pub id: String,
    pub status: TaskStatus,
    pub output: Json,
    pub attempts: Vec<Attempt>,
    /// When `Retrying`: the earliest time of the next attempt.
    pub retry_at_ms: Option<i64>,
    /// Attempts made before the last reopen (retry of the execution); the retry budget counts
    /// only attempts after it.
    pub attempts_before_reopen: u32,
}

/// One try at running a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub id: u64,
    /// 1 for the first attempt of the task.
    pub n: u32,
    pub status: AttemptStatus,
    pub node_id: NodeId,
    pub worker_id: Option<String>,
    pub started_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    pub error: Option<String>,
    /// Last proof of life from whoever runs the attempt (an async backend, a worker).
    pub last_heartbeat_ms: Option<i64>,
    /// Worker attempts: the attempt is `lost` if no heartbeat extends this in time.
    pub lease_expires_at_ms: Option<i64>,
    /// Worker attempts: the task's timeout as an instant (`timed_out` after it).
    pub deadline_ms: Option<i64>,
    /// Worker attempts: the last progress a heartbeat reported (any JSON).
    pub progress: Option<Json>,
    /// Worker attempts: the API token the worker was bound to when it got the attempt; only a
    /// report through that token is accepted (`None` on a node that runs open).
    #[serde(default)]
    pub worker_token: Option<String>,
    /// HTTP attempts: the SHA-256 (lowercase hex) of the callback token the owner sent the
    /// backend; a callback or heartbeat must present that token.
    #[serde(default)]
    pub callback_token_hash: Option<String>,
}

/// Who an attempt is handed to when it starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Holder {
    pub(crate) worker_id: Option<String>,
    pub(crate) worker_token: Option<String>,
    pub(crate) callback_token_hash: Option<String>,
}

impl Execution {
    /// Appends to the audit trail, dropping the oldest entry beyond the limit.
    pub(crate) fn record(&mut self, action: AuditAction, by: Option<String>, at_ms: i64) {
        if self.audit.len() >= crate::limits::MAX_AUDIT_ENTRIES_PER_EXECUTION {
            self.audit.remove(0);
        }
        self.audit.push(AuditEntry { action, by, at_ms });
    }

    // One argument per field the creating command sets.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        id: String,
        spec: &WorkflowSpec,
        version: u32,
        trigger: Trigger,
        scheduled_at_ms: Option<i64>,
        params: Json,
        created_by: Option<String>,
        now_ms: i64,
    ) -> Self {
        Execution {
            id,
            workflow_id: spec.id.clone(),
            workflow_version: version,
            trigger,
            scheduled_at_ms,
            created_at_ms: now_ms,
            started_at_ms: None,
            finished_at_ms: None,
            status: ExecutionStatus::Queued,
            params,
            created_by,
            audit: Vec::new(),
            owner: None,
            blocked_by: None,
            event: Added(None),
            chained_ends: Added(0),
            tasks: spec
                .tasks
                .iter()
                .map(|t| TaskRun {
                    id: t.id.clone(),
                    status: TaskStatus::Pending,
                    output: Json::null(),
                    attempts: Vec::new(),
                    retry_at_ms: None,
                    attempts_before_reopen: 0,
                })
                .collect(),
        }
    }

    pub fn task(&self, id: &str) -> Option<&TaskRun> {
        self.tasks.iter().find(|t| t.id == id)
    }

    fn task_index(&self, id: &str) -> Option<usize> {
        self.tasks.iter().position(|t| t.id == id)
    }

    /// Tasks that may start an attempt at `now_ms`: pending with their `when` rule met, or
    /// retrying with their retry time reached.
    pub fn ready_tasks(&self, spec: &WorkflowSpec, now_ms: i64) -> Vec<&str> {
        if self.status.is_terminal() {
            return Vec::new();
        }
        self.tasks.iter().filter(|t| self.readiness(spec, t, now_ms).is_ok()).map(|t| t.id.as_str()).collect()
    }

    fn readiness(&self, spec: &WorkflowSpec, task: &TaskRun, now_ms: i64) -> Result<(), String> {
        match task.status {
            TaskStatus::Pending => match self.dependencies_allow(spec, &task.id) {
                Some(true) => Ok(()),
                Some(false) => Err("its dependencies ended in a way its `when` rule rejects".into()),
                None => Err("its dependencies have not all ended".into()),
            },
            TaskStatus::Retrying => match task.retry_at_ms {
                Some(at) if at > now_ms => Err(format!("its next attempt is due at {at}")),
                _ => Ok(()),
            },
            other => Err(format!("it is {other}")),
        }
    }

    /// `None` while a dependency is unfinished; otherwise whether the `when` rule holds.
    fn dependencies_allow(&self, spec: &WorkflowSpec, task_id: &str) -> Option<bool> {
        let task_spec = spec.task(task_id)?;
        let mut statuses = Vec::with_capacity(task_spec.depends_on.len());
        for dep in &task_spec.depends_on {
            let status = self.task(dep)?.status;
            if !status.is_terminal() {
                return None;
            }
            statuses.push(status);
        }
        Some(match task_spec.when {
            When::AllSuccess => statuses.iter().all(|s| *s == TaskStatus::Succeeded),
            When::AllDone => true,
            When::AnyFailed => statuses.contains(&TaskStatus::Failed),
        })
    }

    /// Checks that `task_id` may start now (the execution is unfinished, the task ready).
    pub(crate) fn check_ready(&self, spec: &WorkflowSpec, task_id: &str, now_ms: i64) -> Result<usize, Rejection> {
        if self.status.is_terminal() {
            return Err(Rejection::ExecutionFinished { execution_id: self.id.clone(), status: self.status });
        }
        let index = self
            .task_index(task_id)
            .ok_or_else(|| Rejection::TaskNotFound { execution_id: self.id.clone(), task_id: task_id.to_string() })?;
        self.readiness(spec, &self.tasks[index], now_ms)
            .map_err(|reason| Rejection::TaskNotReady { task_id: task_id.to_string(), reason })?;
        Ok(index)
    }

    /// Since when a ready task has been ready: its execution's creation, its dependencies' last
    /// endings, its own last attempt's end, or its retry time, whichever is latest.
    pub fn ready_since_ms(&self, spec: &WorkflowSpec, task: &TaskRun) -> i64 {
        let last_end = |t: &TaskRun| t.attempts.last().and_then(|a| a.finished_at_ms).unwrap_or(i64::MIN);
        let deps = spec
            .task(&task.id)
            .map(|ts| ts.depends_on.iter().filter_map(|d| self.task(d)).map(last_end).max().unwrap_or(i64::MIN))
            .unwrap_or(i64::MIN);
        self.created_at_ms.max(deps).max(last_end(task)).max(task.retry_at_ms.unwrap_or(i64::MIN))
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start_attempt(
        &mut self,
        spec: &WorkflowSpec,
        task_id: &str,
        attempt_id: u64,
        node_id: NodeId,
        holder: Holder,
        lease_expires_at_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<u32, Rejection> {
        let index = self.check_ready(spec, task_id, now_ms)?;
        let Holder { worker_id, worker_token, callback_token_hash } = holder;
        let deadline_ms = match worker_id {
            Some(_) => spec.task(task_id).and_then(|t| spec.task_timeout(t)).map(|t| now_ms.saturating_add(t.0 as i64)),
            None => None,
        };
        let task = &mut self.tasks[index];
        let n = task.attempts.len() as u32 + 1;
        task.attempts.push(Attempt {
            id: attempt_id,
            n,
            status: AttemptStatus::Running,
            node_id,
            worker_id,
            started_at_ms: now_ms,
            finished_at_ms: None,
            error: None,
            last_heartbeat_ms: None,
            lease_expires_at_ms,
            deadline_ms,
            progress: None,
            worker_token,
            callback_token_hash,
        });
        task.status = TaskStatus::Running;
        task.retry_at_ms = None;
        if self.status == ExecutionStatus::Queued {
            self.status = ExecutionStatus::Running;
            self.started_at_ms = Some(now_ms);
        }
        Ok(n)
    }

    /// Ends attempt `attempt_id` of task `task_index`. The caller has checked it is the task's
    /// current running attempt.
    pub(crate) fn finish_attempt(
        &mut self,
        spec: &WorkflowSpec,
        task_index: usize,
        result: AttemptResult,
        jitter_permille: u16,
        now_ms: i64,
    ) -> TaskStatus {
        let policy = spec.task(&self.tasks[task_index].id).map(|t| spec.retry_policy(t)).unwrap_or_default();
        let task = &mut self.tasks[task_index];
        // The retry budget counts attempts since the last reopen, except released ones.
        let made = task
            .attempts
            .iter()
            .skip(task.attempts_before_reopen as usize)
            .filter(|a| a.status != AttemptStatus::Released)
            .count() as u32;
        let Some(attempt) = task.attempts.last_mut() else {
            return task.status;
        };
        attempt.finished_at_ms = Some(now_ms);
        attempt.lease_expires_at_ms = None;
        let (status, error, retryable) = match result {
            // The cluster's own limit was applied by the caller; this is the hard ceiling.
            AttemptResult::Succeeded { output }
                if output.encoded_len() > limits::CEILINGS.max_output_bytes as usize =>
            {
                (
                    AttemptStatus::Failed,
                    Some(format!(
                        "output is {} bytes; the limit is {}",
                        output.encoded_len(),
                        limits::CEILINGS.max_output_bytes
                    )),
                    false,
                )
            }
            AttemptResult::Succeeded { output } => {
                task.output = output;
                (AttemptStatus::Succeeded, None, false)
            }
            AttemptResult::Failed { error, retryable } => (AttemptStatus::Failed, Some(error), retryable),
            AttemptResult::TimedOut => (AttemptStatus::TimedOut, Some("timed out".to_string()), true),
            AttemptResult::Lost { reason } => (AttemptStatus::Lost, Some(reason), true),
            AttemptResult::Released { reason } => (AttemptStatus::Released, Some(reason), false),
        };
        attempt.status = status;
        attempt.error = error.map(|e| truncate(e, limits::MAX_ERROR_BYTES));
        task.status = if status == AttemptStatus::Succeeded {
            TaskStatus::Succeeded
        } else if status == AttemptStatus::Released && task.attempts.len() < limits::MAX_ATTEMPT_RECORDS_PER_TASK {
            // Ready again at once, as if never started.
            TaskStatus::Pending
        } else if status == AttemptStatus::Released {
            attempt_error_note(task, "the task was released too many times");
            TaskStatus::Failed
        } else if retryable && (made < policy.max_attempts || crate::bugs::active(crate::bugs::Bug::IgnoreRetryLimit)) {
            task.retry_at_ms = Some(now_ms.saturating_add(policy.delay_before(made + 1, jitter_permille).0 as i64));
            TaskStatus::Retrying
        } else {
            TaskStatus::Failed
        };
        let task_status = task.status;
        self.settle(spec, now_ms);
        task_status
    }

    /// Skips tasks that can never run, then ends the execution if every task has ended.
    pub(crate) fn settle(&mut self, spec: &WorkflowSpec, now_ms: i64) {
        // Spec order is not necessarily topological, so repeat until nothing changes; each pass
        // skips at least one task or stops, so this ends within `tasks.len()` passes.
        loop {
            let mut changed = false;
            for i in 0..self.tasks.len() {
                if self.tasks[i].status == TaskStatus::Pending
                    && self.dependencies_allow(spec, &self.tasks[i].id) == Some(false)
                {
                    self.tasks[i].status = TaskStatus::Skipped;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        if self.tasks.iter().all(|t| t.status.is_terminal()) {
            self.status = if self.tasks.iter().any(|t| t.status == TaskStatus::Cancelled) {
                ExecutionStatus::Cancelled
            } else if self.tasks.iter().any(|t| t.status == TaskStatus::Failed) {
                ExecutionStatus::Failed
            } else {
                ExecutionStatus::Succeeded
            };
            self.finished_at_ms = Some(now_ms);
        }
    }

    /// Cancels the execution: running attempts and unfinished tasks become `cancelled`.
    pub(crate) fn cancel(&mut self, now_ms: i64) -> Result<(), Rejection> {
        self.end_early(now_ms, AttemptStatus::Cancelled, None, ExecutionStatus::Cancelled, |_| TaskStatus::Cancelled)
    }

    /// Fails the execution for running past its deadline: running attempts become `timed_out`,
    /// tasks that started `failed`, tasks that never did `skipped`.
    pub(crate) fn time_out(&mut self, now_ms: i64) -> Result<(), Rejection> {
        let error = Some("the execution timed out");
        self.end_early(now_ms, AttemptStatus::TimedOut, error, ExecutionStatus::Failed, |status| {
            if status == TaskStatus::Pending {
                TaskStatus::Skipped
            } else {
                TaskStatus::Failed
            }
        })
    }

    /// Ends an unfinished execution before its tasks did.
    fn end_early(
        &mut self,
        now_ms: i64,
        attempt_status: AttemptStatus,
        attempt_error: Option<&str>,
        status: ExecutionStatus,
        task_status: impl Fn(TaskStatus) -> TaskStatus,
    ) -> Result<(), Rejection> {
        if self.status.is_terminal() {
            return Err(Rejection::ExecutionFinished { execution_id: self.id.clone(), status: self.status });
        }
        for task in &mut self.tasks {
            if task.status.is_terminal() {
                continue;
            }
            if let Some(attempt) = task.attempts.last_mut().filter(|a| a.status == AttemptStatus::Running) {
                attempt.status = attempt_status;
                attempt.finished_at_ms = Some(now_ms);
                attempt.lease_expires_at_ms = None;
                attempt.error = attempt_error.map(str::to_string);
            }
            task.status = task_status(task.status);
            task.retry_at_ms = None;
        }
        self.status = status;
        self.finished_at_ms = Some(now_ms);
        Ok(())
    }

    pub(crate) fn reopen(&mut self) -> Result<u32, Rejection> {
        if !matches!(self.status, ExecutionStatus::Failed | ExecutionStatus::Cancelled) {
            return Err(Rejection::NotRetryable { execution_id: self.id.clone(), status: self.status });
        }
        let mut reset = 0;
        for task in &mut self.tasks {
            if matches!(task.status, TaskStatus::Failed | TaskStatus::Cancelled | TaskStatus::Skipped) {
                task.status = TaskStatus::Pending;
                task.retry_at_ms = None;
                task.attempts_before_reopen = task.attempts.len() as u32;
                reset += 1;
            }
        }
        self.status = if self.started_at_ms.is_some() { ExecutionStatus::Running } else { ExecutionStatus::Queued };
        self.finished_at_ms = None;
        Ok(reset)
    }

    /// Checks the structural invariants; used by `debug_assert!` in `apply` and by tests.
    pub fn check_invariants(&self) -> Result<(), String> {
        for task in &self.tasks {
            let running = task.attempts.iter().filter(|a| a.status == AttemptStatus::Running).count();
            match task.status {
                TaskStatus::Running if running != 1 => {
                    return Err(format!("{}/{}: running with {running} running attempts", self.id, task.id))
                }
                TaskStatus::Running if task.attempts.last().map(|a| a.status) != Some(AttemptStatus::Running) => {
                    return Err(format!("{}/{}: the running attempt is not the last", self.id, task.id));
                }
                TaskStatus::Running => {}
                _ if running != 0 => {
                    return Err(format!("{}/{}: {} with a running attempt", self.id, task.id, task.status))
                }
                _ => {}
            }
            for (i, attempt) in task.attempts.iter().enumerate() {
                if attempt.n as usize != i + 1 {
                    return Err(format!("{}/{}: attempt numbers out of order", self.id, task.id));
                }
            }
        }
        let all_done = self.tasks.iter().all(|t| t.status.is_terminal());
        if self.status.is_terminal() != all_done {
            return Err(format!("{}: status {} but all tasks ended = {all_done}", self.id, self.status));
        }
        if self.status.is_terminal() != self.finished_at_ms.is_some() {
            return Err(format!("{}: finished_at does not match status {}", self.id, self.status));
        }
        Ok(())
    }
}

fn attempt_error_note(task: &mut TaskRun, note: &str) {
    if let Some(attempt) = task.attempts.last_mut() {
        let error = attempt.error.take().unwrap_or_default();
        attempt.error = Some(format!("{error} ({note})"));
    }
}

fn truncate(mut text: String, limit: usize) -> String {
    if text.len() > limit {
        let mut cut = limit;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str(" [truncated]");
    }
    text
}
