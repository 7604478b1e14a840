//! The replicated state machine: [`State::apply`] turns a [`Command`] into a [`Response`].
//!
//! `apply` is pure and deterministic: it reads nothing but the state and the command (time,
//! randomness, ids and node ids travel in the command), iterates only ordered maps, and a
//! rejected command changes nothing. Replaying the same commands from the same state on any node
//! gives the same state, byte for byte (see [`State::digest`]).

mod attempt;
mod base;
mod command;
mod events;
mod execution;
mod history;
mod lease;
mod lifecycle;
mod log;
mod overlay;
mod requests;
mod token;
pub mod wire;
mod worker;
mod workflow;

use std::collections::{BTreeMap, BTreeSet};

use imbl::OrdMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use base::{Checkpoint, HistoryStore, MemoryStore};
pub use command::{AttemptResult, Command, Rejection, Reporter, Response};
pub use events::{EventLog, EventOutcome, EventRecord, EventSource, NewEvent};
pub use execution::{
    Attempt, AttemptStatus, AuditAction, AuditEntry, Execution, ExecutionStatus, StartEvent, TaskRun, TaskStatus,
    Trigger,
};
pub use history::{Changes, Kept};
pub use lease::Lease;
pub use log::{AttemptLog, LogChunk};
pub use overlay::AttemptAt;
pub use requests::{Fingerprint, Origin, RequestId, MAX_IDEMPOTENCY_KEY_BYTES};
pub use token::{secret_hash, validate_token_name, Role, TokenEntry, BOOTSTRAP_ADMIN};
pub use worker::{validate_worker, QueuedTask, WorkerEntry};
pub use workflow::{Workflow, WorkflowVersion};

use crate::codec::{self, Added};
use crate::limits;

use attempt::{AttemptRef, StartRequest};

/// All replicated state.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct State {
    /// The largest `at_ms` of any applied command: replicated time, never going backwards.
    clock_ms: i64,
    workflows: OrdMap<String, Workflow>,
    executions: OrdMap<String, Execution>,
    attempts: OrdMap<u64, AttemptRef>,
    next_attempt_id: u64,
    logs: OrdMap<u64, AttemptLog>,
    leases: BTreeMap<String, Lease>,
    next_lease_token: u64,
    workers: BTreeMap<String, WorkerEntry>,
    /// Running attempts leased to each worker (an index of `executions`, kept in step by
    /// `reindex` and checked by `check_invariants`).
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
    /// Events remembered by id for the event window (see [`events`]).
    #[serde(default)]
    events: Added<events::EventLog>,
    /// Which workflows each event name and upstream workflow reaches (derived from `workflows`:
    /// not in snapshots, rebuilt when one is loaded).
    #[serde(skip)]
    triggers: events::TriggerIndex,
    /// Executions that ended during the command being applied, whose chained workflows are
    /// started before it returns. Empty between commands.
    #[serde(skip)]
    ended: Vec<String>,
    /// Which executions are unfinished, and the finished ones oldest first (derived from
    /// `executions`: not in snapshots, rebuilt when one is loaded).
    #[serde(skip)]
    history: history::HistoryIndex,
    /// Where finished executions live after a checkpoint (see [`base`]); none in a state that
    /// never checkpoints.
    #[serde(skip)]
    base: base::Base,
    /// Executions dropped since the last checkpoint whose copy the base may still hold, each
    /// under the number of its drop (so a checkpoint forgets only the drops it wrote). Empty in
    /// every encoded state: a snapshot is a checkpoint's state, and a state without a base
    /// never drops into one.
    #[serde(skip)]
    dropped: OrdMap<String, u64>,
    #[serde(skip)]
    next_drop: u64,
}

impl State {
    /// Applies one command. Deterministic; a [`Response::Rejected`] leaves the state unchanged
    /// except for the replicated clock, which only moves forward.
    ///
    /// One line per command: each family's rules live in its own module (workflow, lifecycle,
    /// attempt, lease, worker, token).
    pub fn apply(&mut self, cmd: Command) -> Response {
        if let Command::Batch { origin, commands } = cmd {
            return self.apply_batch(origin, commands);
        }
        self.clock_ms = self.clock_ms.max(cmd.at_ms());
        let now = self.clock_ms;
        let at = Moment { now, proposed_at_ms: cmd.at_ms() };
        let response = match cmd {
            Command::PutWorkflow { spec, actor, .. } => self.put_workflow(spec, actor, now),
            Command::DeleteWorkflow { workflow_id, actor, .. } => self.delete_workflow(&workflow_id, actor, now),
            Command::SetPaused { workflow_id, paused, actor, .. } => self.set_paused(workflow_id, paused, actor, now),
            Command::AdvanceSchedule { workflow_id, tick_ms, .. } => self.advance_schedule(workflow_id, tick_ms),
            Command::CreateExecution { execution_id, workflow_id, trigger, scheduled_at_ms, params, actor, .. } => {
                self.create_execution(execution_id, &workflow_id, trigger, scheduled_at_ms, params, actor, now)
            }
            Command::AssignExecution { execution_id, node_id, .. } => self.assign_execution(execution_id, node_id),
            Command::CancelExecution { execution_id, actor, .. } => self.cancel_execution(execution_id, actor, now),
            Command::TimeOutExecution { execution_id, .. } => self.time_out_execution(execution_id, now),
            Command::RetryExecution { execution_id, actor, .. } => self.retry_execution(execution_id, actor, now),
            Command::PruneExecutions { .. } => self.prune(now),
            Command::StartAttempt {
                execution_id,
                task_id,
                node_id,
                worker_id,
                lease_expires_at_ms,
                callback_token_hash,
                ..
            } => {
                let start = StartRequest { node_id, worker_id, lease_expires_at_ms, callback_token_hash };
                self.start_attempt(&execution_id, &task_id, start, at)
            }
            Command::HeartbeatAttempt { attempt_id, by, lease_expires_at_ms, progress, logs, .. } => {
                self.heartbeat(attempt_id, &by, lease_expires_at_ms, progress, logs, at)
            }
            Command::FinishAttempt { attempt_id, by, result, logs, jitter_permille, .. } => {
                self.finish_attempt(attempt_id, &by, result, logs, jitter_permille, now)
            }
            Command::AppendLog { attempt_id, text, .. } => self.append_log(attempt_id, text, now),
            Command::AcquireLease { key, holder, expires_at_ms, .. } => {
                self.acquire_lease(key, holder, expires_at_ms, at)
            }
            Command::RenewLease { key, holder, expires_at_ms, .. } => self.renew_lease(key, holder, expires_at_ms, at),
            Command::ReleaseLease { key, holder, .. } => self.release_lease(key, holder),
            Command::ExpireLeases { .. } => self.expire_leases(now),
            Command::ConnectWorker {
                worker_id, session, node_id, queues, concurrency, token, expires_at_ms, ..
            } => {
                let connect =
                    worker::Connect { worker_id, session, node_id, queues, concurrency, token, expires_at_ms };
                self.connect_worker(connect, at)
            }
            Command::WorkerSeen { worker_id, session, expires_at_ms, .. } => {
                self.worker_seen(worker_id, session, expires_at_ms, at)
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
            Command::SetLimits { limits, .. } => self.set_limits(limits),
            Command::PublishEvent { event, actor, .. } => self.publish_event(event, actor, now),
            Command::Idempotent { request, fingerprint, command } => {
                self.apply_once(request, fingerprint, *command, now)
            }
            Command::Batch { .. } => unreachable!("handled above"),
        };
        self.start_chained(now);
        self.enforce_retention();
        // The full check reads the whole base; with one attached, tests check at checkpoints.
        debug_assert_eq!(if self.base.is_attached() { Ok(()) } else { self.check_invariants() }, Ok(()));
        response
    }

    /// Applies a batch of commands. A batch from a proposer session (`origin`) is applied once:
    /// a copy of it (the proposer retried across a leader change) gets the first answers.
    fn apply_batch(&mut self, origin: Option<requests::Origin>, commands: Vec<Command>) -> Response {
        if commands.iter().any(|c| matches!(c, Command::Batch { .. })) {
            return Response::Rejected(Rejection::NestedBatch);
        }
        let Some(origin) = origin else {
            return Response::Batch(commands.into_iter().map(|c| self.apply(c)).collect());
        };
        // The batch's own clock moves replicated time even when it is a copy (like a rejection).
        let at_ms = commands.iter().map(Command::at_ms).max().unwrap_or(i64::MIN);
        self.clock_ms = self.clock_ms.max(at_ms);
        match self.sessions.admit(&origin, self.clock_ms) {
            requests::Seen::Again(answers) => Response::Batch(answers),
            requests::Seen::Stale => {
                Response::Batch(commands.iter().map(|_| Response::Rejected(Rejection::DuplicateProposal)).collect())
            }
            requests::Seen::New => {
                let answers: Vec<Response> = commands.into_iter().map(|c| self.apply(c)).collect();
                self.sessions.record(&origin, &answers);
                Response::Batch(answers)
            }
        }
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

    fn set_limits(&mut self, limits: limits::Tunable) -> Response {
        match limits.check() {
            Ok(()) => {
                self.limits = limits;
                Response::LimitsSet { limits }
            }
            Err(m) => Response::Rejected(Rejection::InvalidLimits(m)),
        }
    }

    /// (node sessions, batch answers they hold, client requests remembered, client requests
    /// forgotten early because the table was full): the exactly-once tables' size, for metrics.
    pub fn request_tables(&self) -> (usize, usize, usize, u64) {
        let (sessions, answers) = self.sessions.size();
        let (remembered, evicted) = self.requests.size();
        (sessions, answers, remembered, evicted)
    }

    // ----- queries -----

    /// Replicated time: the largest command time applied so far.
    pub fn clock_ms(&self) -> i64 {
        self.clock_ms
    }

    /// The limits in force (see [`limits::Tunable`]).
    pub fn limits(&self) -> limits::Tunable {
        self.limits
    }

    // ----- snapshots and checks -----

    /// Encodes the state in memory for a snapshot: the whole state if it has no base, a
    /// checkpoint's state (see [`State::checkpoint`]) if it has one.
    pub fn to_snapshot(&self) -> Result<Vec<u8>, codec::CodecError> {
        debug_assert!(self.dropped.is_empty(), "a snapshot is taken of a checkpoint's state");
        codec::encode(self)
    }

    /// Decodes a snapshot made by [`State::to_snapshot`].
    pub fn from_snapshot(bytes: &[u8]) -> Result<State, codec::CodecError> {
        let mut state: State = codec::decode(bytes)?;
        state.check_replicated_invariants().map_err(codec::CodecError::Invalid)?;
        // Built from what was just checked: comparing it with a recount would build it twice.
        state.rebuild_history();
        state.rebuild_triggers();
        Ok(state)
    }

    /// SHA-256 of the encoded state, the base's history included (see [`State::logical`]):
    /// equal digests mean equal states, however each node split its history between memory and
    /// disk. Reads the whole base: for tests and the simulation.
    pub fn digest(&self) -> [u8; 32] {
        let bytes = codec::encode(&self.logical()).unwrap_or_default();
        Sha256::digest(&bytes).into()
    }

    /// Checks cross-structure invariants, the derived history index included.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.check_replicated_invariants()?;
        self.check_history()
    }

    /// Checks the invariants of what snapshots carry (everything but the derived indexes).
    fn check_replicated_invariants(&self) -> Result<(), String> {
        self.requests.check_invariants()?;
        self.events.check_invariants()?;
        for execution in self.executions.values() {
            execution.check_invariants()?;
        }
        self.check_attempt_index()?;
        for (key, lease) in &self.leases {
            if lease.token > self.next_lease_token {
                return Err(format!("lease {key} token beyond the counter"));
            }
        }
        self.check_worker_index()?;
        self.check_token_index()
    }
}

/// When a command applies: replicated time (`now`), and the proposer's clock when it proposed.
#[derive(Debug, Clone, Copy)]
struct Moment {
    now: i64,
    proposed_at_ms: i64,
}

impl Moment {
    /// A proposer asks for an expiry on its own clock (`expires_at_ms`, read at `proposed_at_ms`);
    /// it lasts that long from replicated time. Replicated time is the fastest proposer's clock,
    /// so an expiry taken at face value from a node whose clock is behind would be over before it
    /// began (the simulation found this with clocks three seconds apart: no worker ever counted as
    /// connected).
    fn expiry(self, expires_at_ms: i64) -> i64 {
        self.now.saturating_add(expires_at_ms.saturating_sub(self.proposed_at_ms).max(0))
    }
}

#[cfg(test)]
mod tests;
