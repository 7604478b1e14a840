//! Named limits on what the state machine stores. Every queue, list and blob is bounded; each
//! limit produces a clear rejection when reached instead of unbounded growth.

use serde::{Deserialize, Serialize};

/// Tasks in one workflow (the default of [`Tunable::max_tasks_per_workflow`]).
pub const MAX_TASKS_PER_WORKFLOW: usize = 500;
/// Attempts of one task, the first included.
pub const MAX_ATTEMPTS_PER_TASK: u32 = 100;
/// Workflow description.
pub const MAX_DESCRIPTION_BYTES: usize = 4 * 1024;
/// Default params of a workflow, or params of one trigger, as JSON.
pub const MAX_PARAMS_BYTES: usize = 64 * 1024;
/// One task's input, as JSON.
pub const MAX_INPUT_BYTES: usize = 64 * 1024;
/// One task's output, as JSON.
pub const MAX_OUTPUT_BYTES: usize = 256 * 1024;
/// Log bytes kept per attempt; older chunks are dropped (and counted) beyond it.
pub const MAX_LOG_BYTES_PER_ATTEMPT: usize = 1024 * 1024;
/// One log append.
pub const MAX_LOG_APPEND_BYTES: usize = 64 * 1024;
/// Versions kept per workflow; older versions no execution still runs are dropped.
pub const MAX_VERSIONS_KEPT: usize = 100;
/// An error message stored with an attempt.
pub const MAX_ERROR_BYTES: usize = 8 * 1024;
/// Lease key and holder names.
pub const MAX_LEASE_KEY_BYTES: usize = 256;
/// Attempt records of one task, released ones included (a task released this often fails).
pub const MAX_ATTEMPT_RECORDS_PER_TASK: usize = 1_000;
/// Worker ids and queue names.
pub const MAX_WORKER_ID_BYTES: usize = 128;
/// Queues one worker serves.
pub const MAX_QUEUES_PER_WORKER: usize = 64;
/// Tasks one worker runs at once.
pub const MAX_WORKER_CONCURRENCY: u32 = 1_024;
/// Connected workers in the cluster.
pub const MAX_WORKERS: usize = 10_000;
/// Progress reported by one heartbeat, as JSON.
pub const MAX_PROGRESS_BYTES: usize = 4 * 1024;
/// Stored API tokens.
pub const MAX_TOKENS: usize = 1_000;
/// A token's name.
pub const MAX_TOKEN_NAME_BYTES: usize = 64;
/// Audit entries (cancels, retries) kept per execution; the oldest are dropped beyond it.
pub const MAX_AUDIT_ENTRIES_PER_EXECUTION: usize = 100;

/// How long an event id is remembered, in seconds: the same id again within it is answered with
/// the first outcome (after it, the event's executions, while kept, still make it start nothing
/// twice).
pub const EVENT_WINDOW_SECS: u32 = 24 * 3_600;
/// Events remembered at most; beyond it the oldest is forgotten early (counted in `/metrics`).
pub const MAX_REMEMBERED_EVENTS: usize = 100_000;
/// Matching workflows listed in one event's record; more are counted, not listed.
pub const MAX_EVENT_OUTCOMES_RECORDED: usize = 64;

/// The limits an admin may change at run time (`PUT /api/v1/cluster/limits`). They live in the
/// replicated state, so every node applies the same ones, and each stays within [`CEILINGS`],
/// which bound memory and snapshot size whatever is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tunable {
    pub max_tasks_per_workflow: u32,
    /// A workflow's default params, or a trigger's params merged into them, as JSON.
    pub max_params_bytes: u32,
    /// One task's output, as JSON; a larger output fails its attempt without retry.
    pub max_output_bytes: u32,
    /// Log bytes kept per attempt; older chunks are dropped (and counted) beyond it.
    pub max_log_bytes_per_attempt: u32,
    /// How long a client request (`Idempotency-Key`) is remembered, in seconds: a retry within
    /// it gets the first answer.
    pub request_window_secs: u32,
    /// Client requests remembered at most; beyond it the oldest is forgotten early (counted in
    /// `/metrics`), which shortens the window under heavy load.
    pub max_remembered_requests: u32,
    /// Finished executions kept per workflow; the oldest go first (`state/history.rs`).
    pub max_kept_executions_per_workflow: u32,
    /// Finished executions kept in the whole cluster; the oldest go first.
    pub max_kept_executions: u32,
    /// Log bytes kept in the whole cluster; the oldest finished executions go, whole, until the
    /// logs fit (unfinished ones never go, so their logs alone may stand over it).
    pub max_kept_log_bytes: u32,
    /// Seconds a finished execution is kept after it finished (judged by `PruneExecutions`).
    pub max_finished_age_secs: u32,
}

impl Default for Tunable {
    fn default() -> Self {
        Tunable {
            max_tasks_per_workflow: MAX_TASKS_PER_WORKFLOW as u32,
            max_params_bytes: MAX_PARAMS_BYTES as u32,
            max_output_bytes: MAX_OUTPUT_BYTES as u32,
            max_log_bytes_per_attempt: MAX_LOG_BYTES_PER_ATTEMPT as u32,
            request_window_secs: 3_600,
            max_remembered_requests: 100_000,
            max_kept_executions_per_workflow: 1_000,
            max_kept_executions: 100_000,
            max_kept_log_bytes: 256 * 1024 * 1024,
            max_finished_age_secs: 30 * 24 * 3_600,
        }
    }
}

/// The most any [`Tunable`] limit may be set to: the wire's, which the API document states.
pub const CEILINGS: Tunable = {
    let c = linkloom_wire::cluster::LIMIT_CEILINGS;
    Tunable {
        max_tasks_per_workflow: c.max_tasks_per_workflow,
        max_params_bytes: c.max_params_bytes,
        max_output_bytes: c.max_output_bytes,
        max_log_bytes_per_attempt: c.max_log_bytes_per_attempt,
        request_window_secs: c.request_window_secs,
        max_remembered_requests: c.max_remembered_requests,
        max_kept_executions_per_workflow: c.max_kept_executions_per_workflow,
        max_kept_executions: c.max_kept_executions,
        max_kept_log_bytes: c.max_kept_log_bytes,
        max_finished_age_secs: c.max_finished_age_secs,
    }
};

impl Tunable {
    /// The limits as (name, value, ceiling), for checks and views.
    pub fn fields(&self) -> [(&'static str, u32, u32); 10] {
        [
            ("max_tasks_per_workflow", self.max_tasks_per_workflow, CEILINGS.max_tasks_per_workflow),
            ("max_params_bytes", self.max_params_bytes, CEILINGS.max_params_bytes),
            ("max_output_bytes", self.max_output_bytes, CEILINGS.max_output_bytes),
            ("max_log_bytes_per_attempt", self.max_log_bytes_per_attempt, CEILINGS.max_log_bytes_per_attempt),
            ("request_window_secs", self.request_window_secs, CEILINGS.request_window_secs),
            ("max_remembered_requests", self.max_remembered_requests, CEILINGS.max_remembered_requests),
            (
                "max_kept_executions_per_workflow",
                self.max_kept_executions_per_workflow,
                CEILINGS.max_kept_executions_per_workflow,
            ),
            ("max_kept_executions", self.max_kept_executions, CEILINGS.max_kept_executions),
            ("max_kept_log_bytes", self.max_kept_log_bytes, CEILINGS.max_kept_log_bytes),
            ("max_finished_age_secs", self.max_finished_age_secs, CEILINGS.max_finished_age_secs),
        ]
    }

    /// Every limit between 1 and its ceiling; the error names the first that is not.
    pub fn check(&self) -> Result<(), String> {
        for (name, value, ceiling) in self.fields() {
            if value == 0 || value > ceiling {
                return Err(format!("{name} = {value} is outside 1..={ceiling}"));
            }
        }
        Ok(())
    }
}
