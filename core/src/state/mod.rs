//! The replicated state machine: [`State::apply`] turns a [`Command`] into a [`Response`].
//!
//! `apply` is pure and deterministic: it reads nothing but the state and the command (time,
//! randomness, ids and node ids travel in the command), iterates only ordered maps, and a
//! rejected command changes nothing. Replaying the same commands from the same state on any node
//! gives the same state, byte for byte (see [`State::digest`]).

mod command;
mod execution;
mod lease;
mod log;
mod requests;
mod token;
pub mod wire;
mod worker;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use command::{AttemptResult, Command, Rejection, Reporter, Response};
pub use execution::{
    Attempt, AttemptStatus, AuditAction, AuditEntry, Execution, ExecutionStatus, TaskRun, TaskStatus, Trigger,
};
pub use lease::Lease;
pub use log::{AttemptLog, LogChunk};
pub use requests::{Fingerprint, Origin, RequestId, MAX_IDEMPOTENCY_KEY_BYTES};
pub use token::{secret_hash, validate_token_name, Role, TokenEntry, BOOTSTRAP_ADMIN};
pub use worker::{validate_worker, QueuedTask, WorkerEntry};

use crate::codec;
use crate::ids::NodeId;
use crate::json::Json;
use crate::limits;
use crate::spec::{validate, Concurrency, TaskKind, WorkflowSpec};

/// A workflow: its kept versions (the latest is active), and whether it is paused or deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workflow {
    pub id: String,
    pub latest: u32,
    pub paused: bool,
    /// A deleted workflow keeps its version counter, so versions are never reused.
    pub deleted: bool,
    pub updated_at_ms: i64,
    /// Who made the last change (a new version, pause, resume, delete): a token name.
    pub updated_by: Option<String>,
    pub versions: BTreeMap<u32, WorkflowVersion>,
    /// The latest schedule tick handled (fired or skipped): the scheduler resumes after it.
    pub last_tick_ms: Option<i64>,
    /// Ticks skipped by `concurrency: forbid` (or a full `buffer_one`) since the workflow exists.
    pub skipped_ticks: u64,
}

/// One immutable version of a workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowVersion {
    pub version: u32,
    pub spec: WorkflowSpec,
    pub created_at_ms: i64,
    pub created_by: Option<String>,
}

impl Workflow {
    /// The active version (absent only if it was deleted).
    pub fn active(&self) -> Option<&WorkflowVersion> {
        if self.deleted {
            None
        } else {
            self.versions.get(&self.latest)
        }
    }
}

/// What a `StartAttempt` asks for, besides which task.
struct StartRequest {
    node_id: NodeId,
    worker_id: Option<String>,
    lease_expires_at_ms: Option<i64>,
    callback_token_hash: Option<String>,
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
struct AttemptRef {
    execution_id: String,
    task_index: usize,
}

/// All replicated state.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct State {
    /// The largest `at_ms` of any applied command: replicated time, never going backwards.
    clock_ms: i64,
    workflows: BTreeMap<String, Workflow>,
    executions: BTreeMap<String, Execution>,
    attempts: BTreeMap<u64, AttemptRef>,
    next_attempt_id: u64,
    logs: BTreeMap<u64, AttemptLog>,
    leases: BTreeMap<String, Lease>,
    next_lease_token: u64,
    workers: BTreeMap<String, WorkerEntry>,
    /// Running attempts leased to each worker (an index of `executions`, kept in step by
    /// `reindex_worker_attempts` and checked by `check_invariants`).
    worker_attempts: BTreeMap<String, BTreeSet<u64>>,
    /// API tokens by name, and the name of each token's secret hash (an index of `tokens`).
    tokens: BTreeMap<String, TokenEntry>,
    token_hashes: BTreeMap<String, String>,
    /// The limits an admin tuned (defaults until then).
    limits: limits::Tunable,
    /// Unconfirmed answers of each proposing node's batches (exactly-once proposals).
    sessions: requests::Sessions,
    /// Client requests remembered by idempotency key (exactly-once client retries).
    requests: requests::ClientRequests,
}

impl State {
    /// Applies one command. Deterministic; a [`Response::Rejected`] leaves the state unchanged
    /// except for the replicated clock, which only moves forward.
    pub fn apply(&mut self, cmd: Command) -> Response {
        if let Command::Batch { origin, commands } = cmd {
            if commands.iter().any(|c| matches!(c, Command::Batch { .. })) {
                return Response::Rejected(Rejection::NestedBatch);
            }
            let Some(origin) = origin else {
                return Response::Batch(commands.into_iter().map(|c| self.apply(c)).collect());
            };
            // The batch's own clock moves replicated time even when it is a copy (like a rejection).
            let at_ms = commands.iter().map(Command::at_ms).max().unwrap_or(i64::MIN);
            self.clock_ms = self.clock_ms.max(at_ms);
            return match self.sessions.admit(&origin, self.clock_ms) {
                requests::Seen::Again(answers) => Response::Batch(answers),
                requests::Seen::Stale => {
                    Response::Batch(commands.iter().map(|_| Response::Rejected(Rejection::DuplicateProposal)).collect())
                }
                requests::Seen::New => {
                    let answers: Vec<Response> = commands.into_iter().map(|c| self.apply(c)).collect();
                    self.sessions.record(&origin, &answers);
                    Response::Batch(answers)
                }
            };
        }
        self.clock_ms = self.clock_ms.max(cmd.at_ms());
        let now = self.clock_ms;
        if let Command::Idempotent { request, fingerprint, command } = cmd {
            return self.apply_once(request, fingerprint, *command, now);
        }
        let response = match cmd {
            Command::PutWorkflow { spec, actor, .. } => self.put_workflow(spec, actor, now),
            Command::DeleteWorkflow { workflow_id, actor, .. } => self.delete_workflow(&workflow_id, actor, now),
            Command::SetPaused { workflow_id, paused, actor, .. } => match self.live_workflow_mut(&workflow_id) {
                Ok(wf) => {
                    wf.paused = paused;
                    wf.updated_at_ms = now;
                    wf.updated_by = actor;
                    Response::PausedSet { workflow_id, paused }
                }
                Err(r) => Response::Rejected(r),
            },
            Command::CreateExecution { execution_id, workflow_id, trigger, scheduled_at_ms, params, actor, .. } => {
                self.create_execution(execution_id, &workflow_id, trigger, scheduled_at_ms, params, actor, now)
            }
            Command::AssignExecution { execution_id, node_id, .. } => match self.executions.get_mut(&execution_id) {
                None => Response::Rejected(Rejection::ExecutionNotFound(execution_id)),
                Some(e) if e.status.is_terminal() => {
                    Response::Rejected(Rejection::ExecutionFinished { execution_id, status: e.status })
                }
                Some(e) => {
                    e.owner = Some(node_id);
                    Response::ExecutionAssigned { execution_id, node_id }
                }
            },
            Command::AdvanceSchedule { workflow_id, tick_ms, .. } => match self.live_workflow_mut(&workflow_id) {
                Ok(wf) => {
                    let last_tick_ms = wf.last_tick_ms.map_or(tick_ms, |t| t.max(tick_ms));
                    wf.last_tick_ms = Some(last_tick_ms);
                    Response::ScheduleAdvanced { workflow_id, last_tick_ms }
                }
                Err(r) => Response::Rejected(r),
            },
            Command::HeartbeatAttempt { attempt_id, by, lease_expires_at_ms, progress, logs, at_ms } => {
                let lease_expires_at_ms = lease_expires_at_ms.map(|e| expiry_on_replicated_time(now, at_ms, e));
                self.heartbeat(attempt_id, &by, lease_expires_at_ms, progress, logs, now)
            }
            Command::StartAttempt {
                execution_id,
                task_id,
                node_id,
                worker_id,
                lease_expires_at_ms,
                callback_token_hash,
                at_ms,
            } => {
                let lease_expires_at_ms = lease_expires_at_ms.map(|e| expiry_on_replicated_time(now, at_ms, e));
                let start = StartRequest { node_id, worker_id, lease_expires_at_ms, callback_token_hash };
                self.start_attempt(&execution_id, &task_id, start, now)
            }
            Command::FinishAttempt { attempt_id, by, result, logs, jitter_permille, .. } => {
                self.finish_attempt(attempt_id, &by, result, logs, jitter_permille, now)
            }
            Command::CancelExecution { execution_id, actor, .. } => match self.executions.get_mut(&execution_id) {
                None => Response::Rejected(Rejection::ExecutionNotFound(execution_id)),
                Some(execution) => match execution.cancel(now) {
                    Ok(()) => {
                        execution.record(AuditAction::Cancelled, actor, now);
                        self.reindex_worker_attempts(&execution_id);
                        Response::ExecutionCancelled { execution_id }
                    }
                    Err(r) => Response::Rejected(r),
                },
            },
            Command::TimeOutExecution { execution_id, .. } => match self.executions.get_mut(&execution_id) {
                None => Response::Rejected(Rejection::ExecutionNotFound(execution_id)),
                Some(execution) => {
                    let deadline = self
                        .workflows
                        .get(&execution.workflow_id)
                        .and_then(|w| w.versions.get(&execution.workflow_version))
                        .and_then(|v| v.spec.execution_timeout)
                        .map(|t| execution.created_at_ms.saturating_add(t.0 as i64));
                    match deadline {
                        Some(deadline) if now >= deadline => match execution.time_out(now) {
                            Ok(()) => {
                                self.reindex_worker_attempts(&execution_id);
                                Response::ExecutionTimedOut { execution_id }
                            }
                            Err(r) => Response::Rejected(r),
                        },
                        _ => Response::Rejected(Rejection::NotTimedOut { execution_id }),
                    }
                }
            },
            Command::RetryExecution { execution_id, actor, .. } => match self.executions.get_mut(&execution_id) {
                None => Response::Rejected(Rejection::ExecutionNotFound(execution_id)),
                Some(execution) => match execution.reopen() {
                    Ok(tasks_reset) => {
                        execution.record(AuditAction::Retried, actor, now);
                        Response::ExecutionReopened { execution_id, tasks_reset }
                    }
                    Err(r) => Response::Rejected(r),
                },
            },
            Command::AppendLog { attempt_id, text, .. } => self.append_log(attempt_id, text, now),
            Command::AcquireLease { key, holder, expires_at_ms, at_ms } => {
                let expires_at_ms = expiry_on_replicated_time(now, at_ms, expires_at_ms);
                self.acquire_lease(key, holder, expires_at_ms, now)
            }
            Command::RenewLease { key, holder, expires_at_ms, at_ms } => match self.leases.get_mut(&key) {
                Some(lease) if lease.holder == holder && lease.is_live(now) => {
                    let expires_at_ms = expiry_on_replicated_time(now, at_ms, expires_at_ms);
                    lease.expires_at_ms = lease.expires_at_ms.max(expires_at_ms);
                    Response::LeaseGranted { token: lease.token, expires_at_ms: lease.expires_at_ms, key }
                }
                _ => Response::Rejected(Rejection::LeaseNotHeld { key, holder }),
            },
            Command::ReleaseLease { key, holder, .. } => match self.leases.get(&key) {
                Some(lease) if lease.holder == holder => {
                    self.leases.remove(&key);
                    Response::LeaseReleased { key }
                }
                _ => Response::Rejected(Rejection::LeaseNotHeld { key, holder }),
            },
            Command::ExpireLeases { .. } => {
                let keys: Vec<String> =
                    self.leases.iter().filter(|(_, l)| !l.is_live(now)).map(|(k, _)| k.clone()).collect();
                for key in &keys {
                    self.leases.remove(key);
                }
                Response::LeasesExpired { keys }
            }
            Command::PruneExecutions { keep_per_workflow, .. } => self.prune(keep_per_workflow as usize),
            Command::ConnectWorker {
                worker_id,
                session,
                node_id,
                queues,
                concurrency,
                token,
                expires_at_ms,
                at_ms,
            } => {
                let expires_at_ms = expiry_on_replicated_time(now, at_ms, expires_at_ms);
                let connect =
                    worker::Connect { worker_id, session, node_id, queues, concurrency, token, expires_at_ms };
                self.connect_worker(connect, now)
            }
            Command::WorkerSeen { worker_id, session, expires_at_ms, at_ms } => {
                let expires_at_ms = expiry_on_replicated_time(now, at_ms, expires_at_ms);
                self.worker_seen(worker_id, session, expires_at_ms, now)
            }
            Command::DrainWorker { worker_id, session, token, .. } => self.drain_worker(worker_id, session, token, now),
            Command::DisconnectWorker { worker_id, session, release, .. } => {
                self.disconnect_worker(worker_id, session, release, now)
            }
            Command::ExpireWorkerAttempts { jitter_permille, .. } => self.expire_worker_attempts(jitter_permille, now),
            Command::CreateToken { name, role, hash, queues, actor, .. } => {
                self.create_token(token::NewToken { name, role, hash, queues }, actor, now)
            }
            Command::RevokeToken { name, .. } => self.revoke_token(name),
            Command::SetLimits { limits, .. } => match limits.check() {
                Ok(()) => {
                    self.limits = limits;
                    Response::LimitsSet { limits }
                }
                Err(m) => Response::Rejected(Rejection::InvalidLimits(m)),
            },
            Command::Batch { .. } | Command::Idempotent { .. } => unreachable!("unwrapped above"),
        };
        debug_assert_eq!(self.check_invariants(), Ok(()));
        response
    }

    /// Applies a client request unless it was applied within the request window (see
    /// [`requests`]).
    fn apply_once(&mut self, request: RequestId, fingerprint: Fingerprint, command: Command, now: i64) -> Response {
        if matches!(command, Command::Batch { .. } | Command::Idempotent { .. }) {
            return Response::Rejected(Rejection::InvalidRequest("a client request wraps one command".into()));
        }
        if let Err(e) = request.validate() {
            return Response::Rejected(Rejection::InvalidRequest(e));
        }
        let window_ms = i64::from(self.limits.request_window_secs) * 1_000;
        match self.requests.lookup(&request, &fingerprint, now, window_ms) {
            requests::Lookup::Replay(first) => Response::Replayed(Box::new(first)),
            requests::Lookup::Reused => Response::Rejected(Rejection::IdempotencyKeyReused { key: request.key }),
            requests::Lookup::New => {
                let response = self.apply(command);
                let max = self.limits.max_remembered_requests as usize;
                self.requests.record(request, fingerprint, response.clone(), now, max);
                response
            }
        }
    }

    /// (node sessions, batch answers they hold, client requests remembered, client requests
    /// forgotten early because the table was full): the exactly-once tables' size, for metrics.
    pub fn request_tables(&self) -> (usize, usize, usize, u64) {
        let (sessions, answers) = self.sessions.size();
        let (remembered, evicted) = self.requests.size();
        (sessions, answers, remembered, evicted)
    }

    fn live_workflow_mut(&mut self, id: &str) -> Result<&mut Workflow, Rejection> {
        match self.workflows.get_mut(id) {
            Some(wf) if !wf.deleted => Ok(wf),
            _ => Err(Rejection::WorkflowNotFound(id.to_string())),
        }
    }

    fn put_workflow(&mut self, spec: WorkflowSpec, actor: Option<String>, now: i64) -> Response {
        if let Err(e) = validate(&spec) {
            return Response::Rejected(Rejection::InvalidSpec(e.to_string()));
        }
        let limits = self.limits;
        if spec.tasks.len() > limits.max_tasks_per_workflow as usize {
            return Response::Rejected(Rejection::InvalidSpec(format!(
                "tasks: {} tasks; this cluster allows at most {} (max_tasks_per_workflow)",
                spec.tasks.len(),
                limits.max_tasks_per_workflow
            )));
        }
        if spec.params.encoded_len() > limits.max_params_bytes as usize {
            return Response::Rejected(Rejection::InvalidSpec(format!(
                "params: larger than {} bytes as JSON (max_params_bytes)",
                limits.max_params_bytes
            )));
        }
        let id = spec.id.clone();
        let workflow = self.workflows.entry(id.clone()).or_insert_with(|| Workflow {
            id: id.clone(),
            latest: 0,
            paused: false,
            deleted: false,
            updated_at_ms: now,
            updated_by: None,
            versions: BTreeMap::new(),
            last_tick_ms: None,
            skipped_ticks: 0,
        });
        let version = workflow.latest + 1;
        workflow.latest = version;
        workflow.deleted = false;
        workflow.updated_at_ms = now;
        workflow.updated_by.clone_from(&actor);
        workflow.versions.insert(version, WorkflowVersion { version, spec, created_at_ms: now, created_by: actor });
        self.drop_old_versions(&id);
        Response::WorkflowStored { workflow_id: id, version }
    }

    /// Keeps at most [`limits::MAX_VERSIONS_KEPT`] versions, never one an unfinished execution
    /// still runs.
    fn drop_old_versions(&mut self, id: &str) {
        let Some(workflow) = self.workflows.get(id) else {
            return;
        };
        if workflow.versions.len() <= limits::MAX_VERSIONS_KEPT {
            return;
        }
        let in_use: Vec<u32> =
            self.executions_of(id).filter(|e| !e.status.is_terminal()).map(|e| e.workflow_version).collect();
        let excess = workflow.versions.len() - limits::MAX_VERSIONS_KEPT;
        let latest = workflow.latest;
        let doomed: Vec<u32> =
            workflow.versions.keys().copied().filter(|v| *v != latest && !in_use.contains(v)).take(excess).collect();
        if let Some(workflow) = self.workflows.get_mut(id) {
            for v in doomed {
                workflow.versions.remove(&v);
            }
        }
    }

    fn delete_workflow(&mut self, id: &str, actor: Option<String>, now: i64) -> Response {
        match self.live_workflow_mut(id) {
            Err(r) => Response::Rejected(r),
            Ok(workflow) => {
                workflow.deleted = true;
                workflow.updated_at_ms = now;
                workflow.updated_by.clone_from(&actor);
                let mut cancelled = 0;
                let range = (format!("{id}:"), format!("{id};"));
                let mut touched = Vec::new();
                for (execution_id, execution) in self.executions.range_mut(range.0..range.1) {
                    if execution.cancel(now).is_ok() {
                        execution.record(AuditAction::Cancelled, actor.clone(), now);
                        cancelled += 1;
                        touched.push(execution_id.clone());
                    }
                }
                for execution_id in touched {
                    self.reindex_worker_attempts(&execution_id);
                }
                Response::WorkflowDeleted { workflow_id: id.to_string(), cancelled_executions: cancelled }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn create_execution(
        &mut self,
        execution_id: String,
        workflow_id: &str,
        trigger: Trigger,
        scheduled_at_ms: Option<i64>,
        overrides: Json,
        actor: Option<String>,
        now: i64,
    ) -> Response {
        let mut execution_id = execution_id;
        if self.executions.contains_key(&execution_id) {
            if !(crate::bugs::active(crate::bugs::Bug::CronDuplicate) && trigger == Trigger::Schedule) {
                return Response::ExecutionExists { execution_id };
            }
            execution_id = format!("{execution_id}-dup{}", self.executions.len());
        }
        // Ids start with `<workflow>:`, which keeps a workflow's executions together in the map
        // (see `executions_of`).
        if !execution_id.strip_prefix(workflow_id).is_some_and(|rest| rest.starts_with(':')) {
            return Response::Rejected(Rejection::InvalidParams(format!(
                "execution id `{execution_id}` must start with `{workflow_id}:`"
            )));
        }
        let Some(active) = self.workflows.get(workflow_id).and_then(Workflow::active) else {
            return Response::Rejected(Rejection::WorkflowNotFound(workflow_id.to_string()));
        };
        let params = match merge_params(&active.spec.params, &overrides, self.limits.max_params_bytes as usize) {
            Ok(p) => p,
            Err(r) => return Response::Rejected(r),
        };
        let concurrency = active.spec.concurrency;
        let mut blocked_by = None;
        if let (Trigger::Schedule, Some(tick)) = (trigger, scheduled_at_ms) {
            // The schedule cursor moves whether the tick fires or is skipped.
            if let Some(wf) = self.workflows.get_mut(workflow_id) {
                wf.last_tick_ms = Some(wf.last_tick_ms.map_or(tick, |t| t.max(tick)));
            }
            let unfinished: Vec<(String, bool)> = self
                .executions_of(workflow_id)
                .filter(|e| !e.status.is_terminal())
                .map(|e| (e.id.clone(), e.blocked_by.is_some()))
                .collect();
            let skip = |state: &mut State, reason: &str| {
                if let Some(wf) = state.workflows.get_mut(workflow_id) {
                    wf.skipped_ticks += 1;
                }
                Response::TickSkipped {
                    workflow_id: workflow_id.to_string(),
                    scheduled_at_ms: tick,
                    reason: reason.to_string(),
                }
            };
            match concurrency {
                Concurrency::Allow => {}
                Concurrency::Forbid if !unfinished.is_empty() => {
                    return skip(self, "an earlier execution is still running (concurrency: forbid)");
                }
                Concurrency::Forbid => {}
                Concurrency::BufferOne => {
                    if unfinished.iter().any(|(_, waiting)| *waiting) {
                        return skip(self, "one execution is already buffered (concurrency: buffer_one)");
                    }
                    blocked_by = unfinished.iter().map(|(id, _)| id.clone()).max();
                }
                Concurrency::Replace => {
                    for (id, _) in &unfinished {
                        if let Some(e) = self.executions.get_mut(id) {
                            let _ = e.cancel(now);
                        }
                        self.reindex_worker_attempts(id);
                    }
                }
            }
        }
        let Some(active) = self.workflows.get(workflow_id).and_then(Workflow::active) else {
            return Response::Rejected(Rejection::WorkflowNotFound(workflow_id.to_string()));
        };
        let mut execution = Execution::new(
            execution_id.clone(),
            &active.spec,
            active.version,
            trigger,
            scheduled_at_ms,
            params,
            actor,
            now,
        );
        execution.blocked_by = blocked_by;
        // Validation rules out tasks that can never run, but settle anyway: an execution must
        // never wait on a task nothing will start.
        execution.settle(&active.spec, now);
        self.executions.insert(execution_id.clone(), execution);
        Response::ExecutionCreated { execution_id }
    }

    fn start_attempt(&mut self, execution_id: &str, task_id: &str, start: StartRequest, now: i64) -> Response {
        let StartRequest { node_id, worker_id, lease_expires_at_ms, callback_token_hash } = start;
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
        let Some(spec) = self
            .workflows
            .get(&execution.workflow_id)
            .and_then(|w| w.versions.get(&execution.workflow_version))
            .map(|v| &v.spec)
        else {
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
                self.reindex_worker_attempts(execution_id);
                Response::AttemptStarted { attempt_id, n }
            }
        }
    }

    fn heartbeat(
        &mut self,
        attempt_id: u64,
        by: &Reporter,
        lease_expires_at_ms: Option<i64>,
        progress: Option<Json>,
        logs: Option<String>,
        now: i64,
    ) -> Response {
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
            self.logs.entry(attempt_id).or_default().append(text, now, max);
        }
    }

    fn finish_attempt(
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
        let Some(spec) = self
            .workflows
            .get(&execution.workflow_id)
            .and_then(|w| w.versions.get(&execution.workflow_version))
            .map(|v| &v.spec)
        else {
            return Response::Rejected(Rejection::WorkflowNotFound(execution.workflow_id.clone()));
        };
        let task_status = execution.finish_attempt(spec, at.task_index, result, jitter, now);
        let execution_status = execution.status;
        let execution_id = at.execution_id.clone();
        self.reindex_worker_attempts(&execution_id);
        Response::AttemptFinished { task_status, execution_status }
    }

    /// [`crate::bugs::Bug::LateCompletion`]: rewrites a lost attempt as if its late answer counted.
    fn accept_late_completion(&mut self, attempt_id: u64, result: AttemptResult, now: i64) -> Response {
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
        Response::AttemptFinished { task_status: task.status, execution_status: execution.status }
    }

    /// Who may start an attempt: for `worker` tasks, a connected worker of the task's queue with
    /// a free slot; for other tasks, only the execution's owner. A buffered execution waits for
    /// the one before it.
    fn check_startable(
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

    /// The unfinished execution a buffered execution still waits for.
    fn blocker<'a>(&'a self, execution: &'a Execution) -> Option<&'a str> {
        let by = execution.blocked_by.as_deref()?;
        self.executions.get(by).filter(|e| !e.status.is_terminal()).map(|_| by)
    }

    /// The running attempt `attempt_id`, if it is its task's current one.
    fn current_attempt_mut(&mut self, attempt_id: u64) -> Result<&mut Attempt, Rejection> {
        let at = self.attempts.get(&attempt_id).ok_or(Rejection::AttemptNotFound(attempt_id))?;
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

    fn append_log(&mut self, attempt_id: u64, text: String, now: i64) -> Response {
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
        let dropped_bytes = self.logs.entry(attempt_id).or_default().append(text, now, max);
        Response::LogAppended { dropped_bytes }
    }

    fn acquire_lease(&mut self, key: String, holder: String, expires_at_ms: i64, now: i64) -> Response {
        for (what, value) in [("lease key", &key), ("lease holder", &holder)] {
            if value.len() > limits::MAX_LEASE_KEY_BYTES {
                return Response::Rejected(Rejection::TooLarge {
                    what: what.into(),
                    size: value.len(),
                    limit: limits::MAX_LEASE_KEY_BYTES,
                });
            }
        }
        if let Some(lease) = self.leases.get_mut(&key) {
            if lease.is_live(now) {
                if lease.holder != holder {
                    return Response::Rejected(Rejection::LeaseHeld {
                        key,
                        holder: lease.holder.clone(),
                        expires_at_ms: lease.expires_at_ms,
                    });
                }
                lease.expires_at_ms = lease.expires_at_ms.max(expires_at_ms);
                return Response::LeaseGranted { token: lease.token, expires_at_ms: lease.expires_at_ms, key };
            }
        }
        self.next_lease_token += 1;
        let token = self.next_lease_token;
        self.leases.insert(key.clone(), Lease { holder, token, acquired_at_ms: now, expires_at_ms });
        Response::LeaseGranted { key, token, expires_at_ms }
    }

    fn prune(&mut self, keep: usize) -> Response {
        let mut finished: BTreeMap<&str, Vec<(i64, &str)>> = BTreeMap::new();
        for e in self.executions.values().filter(|e| e.status.is_terminal()) {
            finished.entry(e.workflow_id.as_str()).or_default().push((e.created_at_ms, e.id.as_str()));
        }
        let mut doomed: Vec<String> = Vec::new();
        for list in finished.values_mut() {
            if list.len() > keep {
                list.sort();
                let excess = list.len() - keep;
                doomed.extend(list.iter().take(excess).map(|(_, id)| id.to_string()));
            }
        }
        for id in &doomed {
            if let Some(execution) = self.executions.remove(id) {
                for attempt in execution.tasks.iter().flat_map(|t| &t.attempts) {
                    self.attempts.remove(&attempt.id);
                    self.logs.remove(&attempt.id);
                }
            }
        }
        Response::ExecutionsPruned { count: doomed.len() as u32 }
    }

    // ----- queries -----

    /// Replicated time: the largest command time applied so far.
    pub fn clock_ms(&self) -> i64 {
        self.clock_ms
    }

    /// A live (not deleted) workflow.
    pub fn workflow(&self, id: &str) -> Option<&Workflow> {
        self.workflows.get(id).filter(|w| !w.deleted)
    }

    /// Live workflows in id order, starting after `after`.
    pub fn workflows_after<'a>(&'a self, after: Option<&'a str>) -> impl Iterator<Item = &'a Workflow> + 'a {
        let start = match after {
            Some(a) => std::ops::Bound::Excluded(a.to_string()),
            None => std::ops::Bound::Unbounded,
        };
        self.workflows.range((start, std::ops::Bound::Unbounded)).map(|(_, w)| w).filter(|w| !w.deleted)
    }

    pub fn execution(&self, id: &str) -> Option<&Execution> {
        self.executions.get(id)
    }

    /// Executions in id order, starting after `after`.
    pub fn executions_after<'a>(&'a self, after: Option<&'a str>) -> impl Iterator<Item = &'a Execution> + 'a {
        let start = match after {
            Some(a) => std::ops::Bound::Excluded(a.to_string()),
            None => std::ops::Bound::Unbounded,
        };
        self.executions.range((start, std::ops::Bound::Unbounded)).map(|(_, e)| e)
    }

    /// Tasks of execution `id` that may start an attempt at `now_ms` (none while the execution
    /// waits for another one).
    pub fn ready_tasks(&self, id: &str, now_ms: i64) -> Vec<String> {
        let Some(execution) = self.executions.get(id) else { return Vec::new() };
        let Some(spec) = self.execution_spec(execution) else { return Vec::new() };
        if self.blocker(execution).is_some() {
            return Vec::new();
        }
        execution.ready_tasks(spec, now_ms).into_iter().map(String::from).collect()
    }

    /// The attempt `attempt_id` with its execution and task ids.
    pub fn attempt(&self, attempt_id: u64) -> Option<(&Execution, &TaskRun, &Attempt)> {
        let at = self.attempts.get(&attempt_id)?;
        let execution = self.executions.get(&at.execution_id)?;
        let task = execution.tasks.get(at.task_index)?;
        let attempt = task.attempts.iter().find(|a| a.id == attempt_id)?;
        Some((execution, task, attempt))
    }

    /// Unfinished executions, in id order.
    pub fn unfinished_executions(&self) -> impl Iterator<Item = &Execution> {
        self.executions.values().filter(|e| !e.status.is_terminal())
    }

    /// Every live workflow, in id order.
    pub fn workflows(&self) -> impl Iterator<Item = &Workflow> {
        self.workflows.values().filter(|w| !w.deleted)
    }

    /// The executions of one workflow, in id order: a range of the map, since every id starts
    /// with `<workflow>:` (`;` is the character after `:`).
    pub fn executions_of<'a>(&'a self, workflow_id: &str) -> impl Iterator<Item = &'a Execution> + 'a {
        self.executions.range(format!("{workflow_id}:")..format!("{workflow_id};")).map(|(_, e)| e)
    }

    /// The spec an execution runs.
    pub fn execution_spec(&self, execution: &Execution) -> Option<&WorkflowSpec> {
        self.workflows
            .get(&execution.workflow_id)
            .and_then(|w| w.versions.get(&execution.workflow_version))
            .map(|v| &v.spec)
    }

    pub fn attempt_log(&self, attempt_id: u64) -> Option<&AttemptLog> {
        self.logs.get(&attempt_id)
    }

    pub fn lease(&self, key: &str) -> Option<&Lease> {
        self.leases.get(key)
    }

    pub fn leases(&self) -> impl Iterator<Item = (&String, &Lease)> {
        self.leases.iter()
    }

    // ----- snapshots and checks -----

    /// Encodes the whole state for a snapshot.
    pub fn to_snapshot(&self) -> Result<Vec<u8>, codec::CodecError> {
        codec::encode(self)
    }

    /// Decodes a snapshot made by [`State::to_snapshot`].
    pub fn from_snapshot(bytes: &[u8]) -> Result<State, codec::CodecError> {
        let state: State = codec::decode(bytes)?;
        state.check_invariants().map_err(codec::CodecError::Invalid)?;
        Ok(state)
    }

    /// SHA-256 of the encoded state: equal digests mean equal states.
    pub fn digest(&self) -> [u8; 32] {
        let bytes = codec::encode(self).unwrap_or_default();
        Sha256::digest(&bytes).into()
    }

    /// The limits in force (see [`limits::Tunable`]).
    pub fn limits(&self) -> limits::Tunable {
        self.limits
    }

    /// Checks cross-structure invariants.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.requests.check_invariants()?;
        for execution in self.executions.values() {
            execution.check_invariants()?;
        }
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
        for (key, lease) in &self.leases {
            if lease.token > self.next_lease_token {
                return Err(format!("lease {key} token beyond the counter"));
            }
        }
        self.check_worker_index()?;
        self.check_token_index()
    }
}

/// A proposer asks for an expiry on its own clock (`expires_at_ms`, read at `at_ms`); the lease
/// lasts that long from replicated time. Replicated time is the fastest proposer's clock, so an
/// expiry taken at face value from a node whose clock is behind would be over before it began
/// (the simulation found this with clocks three seconds apart: no worker ever counted as
/// connected).
fn expiry_on_replicated_time(now: i64, at_ms: i64, expires_at_ms: i64) -> i64 {
    now.saturating_add(expires_at_ms.saturating_sub(at_ms).max(0))
}

/// The defaults with the overrides' keys replaced (one level deep, as params are named values).
fn merge_params(defaults: &Json, overrides: &Json, max_bytes: usize) -> Result<Json, Rejection> {
    let mut merged = match &defaults.0 {
        serde_json::Value::Object(map) => map.clone(),
        _ => serde_json::Map::new(),
    };
    match &overrides.0 {
        serde_json::Value::Null => {}
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                merged.insert(k.clone(), v.clone());
            }
        }
        other => return Err(Rejection::InvalidParams(format!("params must be an object, not {other}"))),
    }
    let merged = Json(serde_json::Value::Object(merged));
    if merged.encoded_len() > max_bytes {
        return Err(Rejection::TooLarge { what: "params".into(), size: merged.encoded_len(), limit: max_bytes });
    }
    Ok(merged)
}

#[cfg(test)]
mod tests;
