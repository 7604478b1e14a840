//! What can be proposed to the replicated log ([`Command`]) and what applying it answers
//! ([`Response`]). Every input that is not a pure function of the state — the time, randomness,
//! ids, the proposing node — is a field of the command.

use serde::{Deserialize, Serialize};

use super::events::{EventRecord, NewEvent};
use super::execution::{ExecutionStatus, TaskStatus, Trigger};
use super::requests::{Fingerprint, Origin, RequestId};
use super::token::Role;
use crate::ids::NodeId;
use crate::json::Json;
use crate::spec::WorkflowSpec;

/// A change to the replicated state. `at_ms` is the proposer's clock (Unix ms); the state keeps
/// the maximum it has seen as its own monotonic clock, so skew between proposers never moves
/// replicated time backwards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Stores `spec` as the next version of its workflow (and revives a deleted one).
    PutWorkflow { spec: WorkflowSpec, actor: Option<String>, at_ms: i64 },
    /// Deletes a workflow and cancels its unfinished executions.
    DeleteWorkflow { workflow_id: String, actor: Option<String>, at_ms: i64 },
    /// Pauses (no new scheduled executions) or resumes a workflow.
    SetPaused { workflow_id: String, paused: bool, actor: Option<String>, at_ms: i64 },
    /// Creates an execution of the workflow's latest version. A second create with the same id is
    /// a no-op that answers [`Response::ExecutionExists`].
    CreateExecution {
        execution_id: String,
        workflow_id: String,
        trigger: Trigger,
        scheduled_at_ms: Option<i64>,
        /// Overrides of the workflow's default params (a JSON object).
        params: Json,
        actor: Option<String>,
        at_ms: i64,
    },
    /// Makes `node_id` the owner of an unfinished execution (the leader reassigns executions of
    /// nodes whose liveness lease expired).
    AssignExecution { execution_id: String, node_id: NodeId, at_ms: i64 },
    /// Records that the schedule of a workflow has been handled up to `tick_ms` without firing
    /// (ticks dropped by `catchup: none` or `latest`).
    AdvanceSchedule { workflow_id: String, tick_ms: i64, at_ms: i64 },
    /// Proof of life for a running attempt; rejected for an attempt that is no longer current, or
    /// from a reporter that does not hold it (see [`Reporter`]). A worker's heartbeat extends the
    /// attempt's lease to `lease_expires_at_ms` and may carry progress and log text (kept only if
    /// accepted).
    HeartbeatAttempt {
        attempt_id: u64,
        by: Reporter,
        lease_expires_at_ms: Option<i64>,
        progress: Option<Json>,
        logs: Option<String>,
        at_ms: i64,
    },
    /// Starts the next attempt of a ready task. For `http` and `shell` tasks `node_id` must own the
    /// execution and `worker_id` is `None`. For `worker` tasks (proposed by the leader's
    /// dispatcher) `worker_id` names a connected worker that serves the task's queue and has a free
    /// slot, and the attempt is leased to it until `lease_expires_at_ms`.
    StartAttempt {
        execution_id: String,
        task_id: String,
        node_id: NodeId,
        worker_id: Option<String>,
        lease_expires_at_ms: Option<i64>,
        /// For an HTTP attempt: the SHA-256 (lowercase hex) of the random callback token the owner
        /// sends its backend. Only that token lets the backend call back or heartbeat; the token
        /// itself is never replicated.
        callback_token_hash: Option<String>,
        at_ms: i64,
    },
    /// Ends the current attempt of a task. Rejected if `attempt_id` is not the task's running
    /// attempt (fencing of stale workers and backends), or if `by` does not hold it.
    FinishAttempt {
        attempt_id: u64,
        by: Reporter,
        result: AttemptResult,
        /// Final log text (e.g. from a backend's answer), appended only if the finish is accepted.
        logs: Option<String>,
        /// Randomness for the retry delay, 0..=1000, chosen by the proposer.
        jitter_permille: u16,
        at_ms: i64,
    },
    /// Cancels an unfinished execution: running attempts and unfinished tasks become cancelled.
    CancelExecution { execution_id: String, actor: Option<String>, at_ms: i64 },
    /// Fails an unfinished execution that ran past its `execution_timeout`: running attempts
    /// become `timed_out`, running and retrying tasks `failed`, pending tasks `skipped`.
    TimeOutExecution { execution_id: String, at_ms: i64 },
    /// Reopens a failed or cancelled execution: its failed, cancelled and skipped tasks run again
    /// as new attempts, with a fresh retry budget.
    RetryExecution { execution_id: String, actor: Option<String>, at_ms: i64 },
    /// Appends text to an attempt's log (bounded; see [`crate::limits`]).
    AppendLog { attempt_id: u64, text: String, at_ms: i64 },
    /// Takes the lease `key` for `holder` until `expires_at_ms`, if it is free, expired, or
    /// already the holder's.
    AcquireLease { key: String, holder: String, expires_at_ms: i64, at_ms: i64 },
    /// Extends a lease the holder still holds.
    RenewLease { key: String, holder: String, expires_at_ms: i64, at_ms: i64 },
    /// Gives a lease up.
    ReleaseLease { key: String, holder: String, at_ms: i64 },
    /// Removes every lease that expired at or before `at_ms`.
    ExpireLeases { at_ms: i64 },
    /// Drops finished executions past the retention limits (`max_finished_age_secs` judged at
    /// replicated time), oldest first.
    PruneExecutions { at_ms: i64 },
    /// Registers a worker connection on `node_id` (replacing an earlier session of the same worker
    /// id, wherever it was). The entry lives until `expires_at_ms` unless renewed.
    ConnectWorker {
        worker_id: String,
        session: u64,
        node_id: NodeId,
        queues: Vec<String>,
        concurrency: u32,
        /// The API token the worker connected with (`None` on a node that runs open). The worker
        /// stays bound to it: only that token may act for it or replace it, and a token limited
        /// to some queues may serve only those.
        token: Option<String>,
        expires_at_ms: i64,
        at_ms: i64,
    },
    /// Renews a worker's registration (its connection is alive); refused for another session.
    WorkerSeen { worker_id: String, session: u64, expires_at_ms: i64, at_ms: i64 },
    /// Stops handing tasks to a worker (it is shutting down); its attempts keep running. `token`
    /// must be the API token the worker connected with (`None` on a node that runs open).
    DrainWorker { worker_id: String, session: u64, token: Option<String>, at_ms: i64 },
    /// Removes a worker's registration (its connection closed) and gives back `release`: attempts
    /// leased to it that its connection never delivered, which go back to their queue without
    /// counting against the retry budget. Refused for another session.
    DisconnectWorker { worker_id: String, session: u64, release: Vec<u64>, at_ms: i64 },
    /// Ends worker attempts whose lease expired (`lost`, retried per policy) or that ran past
    /// their task timeout (`timed_out`), and removes worker registrations that expired.
    ExpireWorkerAttempts { jitter_permille: u16, at_ms: i64 },
    /// Stores an API token: its name, role and the SHA-256 of its secret (lowercase hex). The
    /// secret itself is never proposed. A `worker` token may be limited to `queues`.
    CreateToken {
        name: String,
        role: Role,
        hash: String,
        queues: Option<Vec<String>>,
        actor: Option<String>,
        at_ms: i64,
    },
    /// Removes a token; requests carrying it are refused from then on.
    RevokeToken { name: String, actor: Option<String>, at_ms: i64 },
    /// Replaces the tunable limits (each within its ceiling, else rejected).
    SetLimits { limits: crate::limits::Tunable, actor: Option<String>, at_ms: i64 },
    /// `command`, applied at most once per client request: a second command with the same
    /// `request` within the request window is not applied and is answered with the first answer
    /// ([`Response::Replayed`]), or refused if its fingerprint differs (the key was reused for
    /// another request). See [`super::requests`].
    Idempotent { request: RequestId, fingerprint: Fingerprint, command: Box<Command> },
    /// Several commands in one log entry, applied in order, each answered on its own (one's
    /// rejection does not affect the others). Proposers batch concurrent writes this way so one
    /// append, one replication round and one fsync serve them all. A batch with an `origin` is
    /// applied once however often its proposer sends it (see [`super::requests`]). Batches do not
    /// nest.
    Batch { origin: Option<Origin>, commands: Vec<Command> },
    // New variants go last: the binary encoding numbers variants by position, and the log holds
    // what earlier releases wrote.
    /// Publishes an event: starts one execution per workflow whose trigger it matches (see
    /// [`super::events`]). An id seen within the event window is answered with its first outcome.
    PublishEvent { event: NewEvent, actor: Option<String>, at_ms: i64 },
}

impl Command {
    /// The proposer's time carried by this command.
    pub fn at_ms(&self) -> i64 {
        match self {
            Command::PutWorkflow { at_ms, .. }
            | Command::DeleteWorkflow { at_ms, .. }
            | Command::SetPaused { at_ms, .. }
            | Command::CreateExecution { at_ms, .. }
            | Command::AssignExecution { at_ms, .. }
            | Command::AdvanceSchedule { at_ms, .. }
            | Command::HeartbeatAttempt { at_ms, .. }
            | Command::StartAttempt { at_ms, .. }
            | Command::FinishAttempt { at_ms, .. }
            | Command::CancelExecution { at_ms, .. }
            | Command::RetryExecution { at_ms, .. }
            | Command::TimeOutExecution { at_ms, .. }
            | Command::AppendLog { at_ms, .. }
            | Command::AcquireLease { at_ms, .. }
            | Command::RenewLease { at_ms, .. }
            | Command::ReleaseLease { at_ms, .. }
            | Command::ExpireLeases { at_ms }
            | Command::PruneExecutions { at_ms, .. }
            | Command::ConnectWorker { at_ms, .. }
            | Command::WorkerSeen { at_ms, .. }
            | Command::DrainWorker { at_ms, .. }
            | Command::DisconnectWorker { at_ms, .. }
            | Command::ExpireWorkerAttempts { at_ms, .. }
            | Command::CreateToken { at_ms, .. }
            | Command::RevokeToken { at_ms, .. }
            | Command::SetLimits { at_ms, .. }
            | Command::PublishEvent { at_ms, .. } => *at_ms,
            Command::Idempotent { command, .. } => command.at_ms(),
            Command::Batch { commands, .. } => commands.iter().map(Command::at_ms).max().unwrap_or(i64::MIN),
        }
    }
}

/// Who reports on an attempt (a heartbeat, its end), and what proves they may.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reporter {
    /// The node that owns the execution, about an HTTP or shell attempt it runs itself.
    Owner,
    /// An HTTP attempt's backend, with the attempt's callback token (its SHA-256, lowercase hex).
    Backend { token_hash: String },
    /// The worker holding the attempt, through the API token it connected with (`None` on a node
    /// that runs open).
    Worker { worker_id: String, token: Option<String> },
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AttemptResult {
    Succeeded {
        output: Json,
    },
    /// `retryable: false` fails the task at once, whatever its retry policy.
    Failed {
        error: String,
        retryable: bool,
    },
    /// Ran past its timeout.
    TimedOut,
    /// Its runner vanished (node died, worker lease expired).
    Lost {
        reason: String,
    },
    /// Given back unstarted (a worker shutting down, a connection that closed before delivering
    /// it): the task is ready again and the attempt does not count against its retry budget.
    Released {
        reason: String,
    },
}

/// What applying a command answered. Rejections change nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Response {
    /// For log entries that carry no command (a new leader's blank entry, a membership change).
    Noop,
    WorkflowStored {
        workflow_id: String,
        version: u32,
    },
    WorkflowDeleted {
        workflow_id: String,
        cancelled_executions: u32,
    },
    PausedSet {
        workflow_id: String,
        paused: bool,
    },
    ExecutionCreated {
        execution_id: String,
    },
    ExecutionExists {
        execution_id: String,
    },
    /// A scheduled tick that `concurrency` (forbid, or a full buffer_one) did not fire.
    TickSkipped {
        workflow_id: String,
        scheduled_at_ms: i64,
        reason: String,
    },
    ExecutionAssigned {
        execution_id: String,
        node_id: NodeId,
    },
    ScheduleAdvanced {
        workflow_id: String,
        last_tick_ms: i64,
    },
    HeartbeatRecorded {
        attempt_id: u64,
        /// For a worker attempt: when its lease now ends.
        lease_expires_at_ms: Option<i64>,
    },
    AttemptStarted {
        attempt_id: u64,
        n: u32,
    },
    AttemptFinished {
        task_status: TaskStatus,
        execution_status: ExecutionStatus,
    },
    ExecutionCancelled {
        execution_id: String,
    },
    ExecutionTimedOut {
        execution_id: String,
    },
    ExecutionReopened {
        execution_id: String,
        tasks_reset: u32,
    },
    LogAppended {
        dropped_bytes: u64,
    },
    LeaseGranted {
        key: String,
        token: u64,
        expires_at_ms: i64,
    },
    LeaseReleased {
        key: String,
    },
    LeasesExpired {
        keys: Vec<String>,
    },
    ExecutionsPruned {
        count: u32,
    },
    WorkerConnected {
        worker_id: String,
        session: u64,
        /// The session this one replaced, if the worker was connected elsewhere.
        replaced: Option<u64>,
    },
    WorkerRenewed {
        worker_id: String,
    },
    WorkerDraining {
        worker_id: String,
    },
    WorkerDisconnected {
        worker_id: String,
        released: u32,
    },
    WorkerAttemptsExpired {
        lost: Vec<u64>,
        timed_out: Vec<u64>,
        workers: Vec<String>,
    },
    TokenCreated {
        name: String,
        role: Role,
    },
    TokenRevoked {
        name: String,
    },
    LimitsSet {
        limits: crate::limits::Tunable,
    },

    /// One answer per command of a [`Command::Batch`], in order.
    Batch(Vec<Response>),
    /// The first answer to a client request seen again (see [`Command::Idempotent`]).
    Replayed(Box<Response>),
    Rejected(Rejection),
    // New variants go last (see `Command`): answers are kept in the replicated state.
    /// An event and what it started; `repeated`: its id was seen within the window, and this is
    /// the first outcome.
    EventPublished {
        record: Box<EventRecord>,
        repeated: bool,
    },
}

/// Why a command changed nothing.
///
/// New variants go last (see `Command`): rejections are kept in the replicated state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Rejection {
    #[error("workflow `{0}` not found")]
    WorkflowNotFound(String),
    #[error("execution `{0}` not found")]
    ExecutionNotFound(String),
    #[error("task `{task_id}` not found in execution `{execution_id}`")]
    TaskNotFound { execution_id: String, task_id: String },
    #[error("attempt {0} not found")]
    AttemptNotFound(u64),
    #[error("invalid workflow: {0}")]
    InvalidSpec(String),
    #[error("invalid params: {0}")]
    InvalidParams(String),
    #[error("attempt {attempt_id} is not the task's current running attempt (it is {status})")]
    StaleAttempt { attempt_id: u64, status: String },
    #[error("task `{task_id}` is not ready: {reason}")]
    TaskNotReady { task_id: String, reason: String },
    #[error("execution `{execution_id}` is {status}")]
    ExecutionFinished { execution_id: String, status: ExecutionStatus },
    #[error("execution `{execution_id}` is {status}; only failed or cancelled executions can be retried")]
    NotRetryable { execution_id: String, status: ExecutionStatus },
    #[error("lease `{key}` is held by `{holder}` until {expires_at_ms}")]
    LeaseHeld { key: String, holder: String, expires_at_ms: i64 },
    #[error("lease `{key}` is not held by `{holder}`")]
    LeaseNotHeld { key: String, holder: String },
    #[error("execution `{execution_id}` is owned by node {owner:?}, not by the proposer")]
    NotOwner { execution_id: String, owner: Option<NodeId> },
    #[error("execution `{execution_id}` waits for execution `{by}` to end (concurrency: buffer_one)")]
    Blocked { execution_id: String, by: String },
    #[error("execution `{execution_id}` has no execution_timeout, or has not reached it")]
    NotTimedOut { execution_id: String },
    #[error("a batch may not contain another batch")]
    NestedBatch,
    /// Deliberately vague: who does hold the attempt is not the caller's business.
    #[error("attempt {attempt_id} is not held by this caller")]
    NotAttemptHolder { attempt_id: u64 },
    #[error("worker `{worker_id}` is bound to another API token")]
    WorkerTokenMismatch { worker_id: String },
    #[error("worker `{worker_id}` cannot take task `{task_id}`: {reason}")]
    WorkerUnavailable { worker_id: String, task_id: String, reason: String },
    #[error("worker `{worker_id}` has no connection with session {session}")]
    WorkerNotConnected { worker_id: String, session: u64 },
    #[error("invalid worker: {0}")]
    InvalidWorker(String),
    #[error("a token named `{0}` exists")]
    TokenExists(String),
    #[error("token `{0}` not found")]
    TokenNotFound(String),
    #[error("invalid token: {0}")]
    InvalidToken(String),
    #[error("invalid limits: {0}")]
    InvalidLimits(String),
    #[error("{what} is {size} bytes; the limit is {limit}")]
    TooLarge { what: String, size: usize, limit: usize },
    #[error("idempotency key `{key}` was used for a different request")]
    IdempotencyKeyReused { key: String },
    #[error("this batch was already answered to its proposer")]
    DuplicateProposal,
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    #[error(
        "event id `{id}` was used for another event (`{name}`, or another payload or source) within the event window"
    )]
    EventIdReused { id: String, name: String },
    #[error("workflow `{workflow_id}` has no webhook `{name}`")]
    WebhookNotFound { workflow_id: String, name: String },
}
