//! Executions (runs of a workflow) as the API shows them, and the requests that start, cancel and
//! retry them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

open_enum! {
    /// Where an execution stands.
    pub enum ExecutionStatus {
        /// Created, no task started yet.
        Queued => "queued",
        /// At least one task started and the execution has not ended.
        Running => "running",
        /// Every task succeeded or was skipped.
        Succeeded => "succeeded",
        /// A task failed, or the execution timed out.
        Failed => "failed",
        /// Cancelled by a request, by deletion of its workflow, or by a `replace` schedule.
        Cancelled => "cancelled",
    }
}

impl ExecutionStatus {
    /// The execution has ended and will not change (unless retried).
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

open_enum! {
    /// Where one task of an execution stands.
    pub enum TaskStatus {
        /// Waiting for its dependencies (or, for a worker task, for a worker).
        Pending => "pending",
        /// An attempt is running.
        Running => "running",
        /// Failed at least once and waiting for its next attempt.
        Retrying => "retrying",
        /// Done, with an output.
        Succeeded => "succeeded",
        /// Failed for good.
        Failed => "failed",
        /// Can never run (its `when` cannot be met).
        Skipped => "skipped",
        /// Cancelled with its execution.
        Cancelled => "cancelled",
    }
}

open_enum! {
    /// How one attempt of a task ended (or that it still runs).
    pub enum AttemptStatus {
        /// Still running.
        Running => "running",
        /// Succeeded.
        Succeeded => "succeeded",
        /// Failed (see the attempt's `error`).
        Failed => "failed",
        /// Ran past its timeout.
        TimedOut => "timed_out",
        /// Its runner vanished (node died, worker lease expired).
        Lost => "lost",
        /// Cancelled with its execution.
        Cancelled => "cancelled",
        /// Given back unstarted by its worker; does not count as a retry.
        Released => "released",
    }
}

open_enum! {
    /// What created an execution.
    pub enum Trigger {
        /// `POST .../trigger`.
        Manual => "manual",
        /// A cron tick.
        Schedule => "schedule",
        /// `POST .../backfill`.
        Backfill => "backfill",
        /// An event matched one of the workflow's `event` triggers.
        Event => "event",
        /// A call to one of the workflow's webhooks.
        Webhook => "webhook",
        /// Another workflow's execution ended (a `workflow` trigger).
        Workflow => "workflow",
    }
}

/// The event an execution started from.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct StartEvent {
    /// The event's name; for a chained execution `workflow.<upstream>.<status>`.
    pub name: String,
    /// The event's id; for a chained execution the upstream execution's id.
    pub id: String,
    /// The payload, as templates see it (`{{ event.payload.FIELD }}`).
    pub payload: Value,
}

open_enum! {
    /// A change made to an execution after it was created.
    pub enum AuditAction {
        /// `POST .../cancel`.
        Cancelled => "cancelled",
        /// `POST .../retry`.
        Retried => "retried",
    }
}

/// One execution with its tasks and their attempts.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct Execution {
    /// The execution id, e.g. `daily-report:20260101T060000Z`.
    pub id: String,
    /// The workflow it runs.
    pub workflow_id: String,
    /// The workflow version it runs (fixed at creation).
    pub workflow_version: u32,
    /// Where it stands.
    pub status: ExecutionStatus,
    /// What created it.
    pub trigger: Trigger,
    /// The cron tick it is for, if scheduled or backfilled.
    #[schemars(extend("format" = "date-time"))]
    pub scheduled_at: Option<String>,
    /// When it was created.
    #[schemars(extend("format" = "date-time"))]
    pub created_at: String,
    /// When its first task started.
    #[schemars(extend("format" = "date-time"))]
    pub started_at: Option<String>,
    /// When it ended.
    #[schemars(extend("format" = "date-time"))]
    pub finished_at: Option<String>,
    /// The parameters it runs with (the workflow's defaults merged with the trigger's).
    pub params: Value,
    /// The token name of whoever created it (null: an open node, or the cluster's scheduler).
    pub created_by: Option<String>,
    /// Cancels and retries, oldest first.
    pub audit: Vec<AuditEntry>,
    /// The node that runs it.
    pub owner_node_id: Option<u64>,
    /// The execution it waits for (`concurrency: buffer_one`), if any.
    pub blocked_by: Option<String>,
    /// Its tasks, in the workflow's order.
    pub tasks: Vec<TaskRun>,
    /// The event it started from (`trigger` event, webhook or workflow), else null.
    pub event: Option<StartEvent>,
}

impl Execution {
    /// The task with id `id`.
    pub fn task(&self, id: &str) -> Option<&TaskRun> {
        self.tasks.iter().find(|t| t.id == id)
    }
}

/// A change made to an execution, by whom and when.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct AuditEntry {
    pub action: AuditAction,
    /// The token name of the caller (null on an open node).
    pub by: Option<String>,
    #[schemars(extend("format" = "date-time"))]
    pub at: String,
}

/// One task of an execution.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct TaskRun {
    /// The task id from the workflow.
    pub id: String,
    /// Where it stands.
    pub status: TaskStatus,
    /// Its output once it succeeded (`{}` for none), else null.
    pub output: Value,
    /// When its next attempt is due, while `retrying`.
    #[schemars(extend("format" = "date-time"))]
    pub retry_at: Option<String>,
    /// Every attempt so far, oldest first.
    pub attempts: Vec<Attempt>,
}

impl TaskRun {
    /// The latest attempt, if any started.
    pub fn last_attempt(&self) -> Option<&Attempt> {
        self.attempts.last()
    }
}

/// One attempt of a task.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct Attempt {
    /// The attempt id (a decimal number as text): the fencing token callbacks and heartbeats name.
    pub id: String,
    /// 1 for the task's first attempt.
    pub n: u32,
    /// How it ended, or `running`.
    pub status: AttemptStatus,
    /// The node that ran it.
    pub node_id: u64,
    /// The worker that ran it, for worker tasks.
    pub worker_id: Option<String>,
    /// When it started.
    #[schemars(extend("format" = "date-time"))]
    pub started_at: String,
    /// When it ended.
    #[schemars(extend("format" = "date-time"))]
    pub finished_at: Option<String>,
    /// The last heartbeat from its backend or worker.
    #[schemars(extend("format" = "date-time"))]
    pub last_heartbeat_at: Option<String>,
    /// Worker attempts: when the lease runs out unless a heartbeat extends it.
    #[schemars(extend("format" = "date-time"))]
    pub lease_expires_at: Option<String>,
    /// Worker attempts: when the attempt times out (the task's timeout).
    #[schemars(extend("format" = "date-time"))]
    pub deadline: Option<String>,
    /// Worker attempts: the last progress a heartbeat reported (any JSON).
    pub progress: Option<Value>,
    /// Why it failed.
    pub error: Option<String>,
}

/// Body of `POST /api/v1/workflows/{id}/trigger` (optional).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "TriggerBody")]
pub struct TriggerRequest {
    /// Overrides of the workflow's `params` for this execution; merged over its defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Map<String, Value>>")]
    pub params: Option<Value>,
}

/// Answer to a trigger.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct Triggered {
    /// The new execution's id.
    pub execution_id: String,
}

/// Body of `POST /api/v1/workflows/{id}/backfill`: one execution per schedule tick in
/// `[from, to)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "BackfillBody")]
pub struct Backfill {
    /// The first instant (RFC 3339) whose ticks count.
    #[schemars(extend("format" = "date-time"))]
    pub from: String,
    /// Ticks before this instant (RFC 3339) count; after `from`.
    #[schemars(extend("format" = "date-time"))]
    pub to: String,
}

/// Answer to a backfill.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct Backfilled {
    /// One execution id per tick, in tick order (new and existing ones).
    pub execution_ids: Vec<String>,
    /// How many of them this request created.
    pub created: u32,
    /// How many existed already (kept as they were).
    pub existing: u32,
}

/// Answer to a cancel.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct Cancelled {
    pub id: String,
    /// Always `cancelled`.
    pub status: ExecutionStatus,
}

/// Answer to a retry.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct Retried {
    pub id: String,
    /// How many tasks were reset to run again.
    pub tasks_reset: u32,
}

/// Answer to a completion (callback, worker complete or release): where the task and its
/// execution stand now.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct AttemptFinished {
    pub attempt_id: String,
    pub task_status: TaskStatus,
    pub execution_status: ExecutionStatus,
}

/// Answer to a backend's heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct AttemptRef {
    pub attempt_id: String,
}
