//! Workers: processes that connect to any node and pull `type: worker` tasks.
//!
//! What must hold across the cluster lives here, in replicated state: which workers are
//! connected (and through which node), how many tasks each runs against its declared
//! concurrency, and the lease of every attempt handed to a worker. That is what lets the leader
//! hand a task to a worker connected to another node without over-filling it, lets a worker move
//! to another node and keep its leases, and lets a late answer from a worker whose lease expired
//! be refused: the answer names an attempt that is no longer current.
//!
//! Connections themselves (the open HTTP stream) are node-local; a node registers the worker when
//! it connects, renews the registration while the stream is alive, and removes it when the stream
//! closes. A node that dies stops renewing, and its workers' registrations expire.

use serde::{Deserialize, Serialize};

use super::command::{AttemptResult, Rejection, Reporter, Response};
use super::execution::AttemptStatus;
use super::{Moment, State};
use crate::ids::{is_slug, NodeId};
use crate::limits;
use crate::spec::TaskKind;

/// A connected worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerEntry {
    pub id: String,
    /// Chosen by the node that accepted the connection; a reconnect gets a new one, and commands
    /// for an old session are refused.
    pub session: u64,
    /// The node the worker is connected to (which delivers its tasks).
    pub node_id: NodeId,
    pub queues: Vec<String>,
    pub concurrency: u32,
    /// Shutting down: takes no new task.
    pub draining: bool,
    pub connected_at_ms: i64,
    pub last_seen_at_ms: i64,
    /// Without renewal the registration ends here (the node serving it died or was cut off).
    pub expires_at_ms: i64,
    /// The API token the worker connected with (`None` on a node that runs open): only it may act
    /// for this worker or replace it.
    #[serde(default)]
    pub token: Option<String>,
    /// It let a lease run out (frozen, or cut off while its connection stayed open): until this
    /// time it gets no new task, so a retry is not handed straight back to the worker that just
    /// lost it. A heartbeat or completion it makes, or a new connection, lifts it.
    #[serde(default)]
    pub stalled_until_ms: Option<i64>,
}

impl WorkerEntry {
    pub fn is_live(&self, now_ms: i64) -> bool {
        self.expires_at_ms > now_ms
    }

    /// Live, not shutting down, not stalled: the dispatcher may hand it tasks (if it has a free
    /// slot, which [`super::State::worker_running`] tells).
    pub fn takes_new_work(&self, now_ms: i64) -> bool {
        self.is_live(now_ms) && !self.draining && !self.is_stalled(now_ms)
    }

    /// It lost a lease recently and has not been heard from since.
    pub fn is_stalled(&self, now_ms: i64) -> bool {
        self.stalled_until_ms.is_some_and(|until| until > now_ms)
    }

    pub fn serves(&self, queue: &str) -> bool {
        self.queues.iter().any(|q| q == queue)
    }
}

/// A ready `worker` task waiting for a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedTask {
    pub queue: String,
    pub execution_id: String,
    pub task_id: String,
    /// Since when it has been ready (see [`super::Execution::ready_since_ms`]).
    pub ready_since_ms: i64,
}

/// Checks what a worker declares when it connects; every problem is named.
pub fn validate_worker(id: &str, queues: &[String], concurrency: u32) -> Result<(), String> {
    let mut problems = Vec::new();
    let id_ok = !id.is_empty()
        && id.len() <= limits::MAX_WORKER_ID_BYTES
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@'));
    if !id_ok {
        problems.push(format!(
            "worker id `{id}` must be 1-{} characters of letters, digits, `-`, `_`, `.`, `:` or `@`",
            limits::MAX_WORKER_ID_BYTES
        ));
    }
    if queues.is_empty() {
        problems.push("a worker must serve at least one queue".to_string());
    }
    if queues.len() > limits::MAX_QUEUES_PER_WORKER {
        problems.push(format!("{} queues; the limit is {}", queues.len(), limits::MAX_QUEUES_PER_WORKER));
    }
    for queue in queues {
        if !is_slug(queue) {
            problems.push(format!("`{queue}` is not a valid queue name: {}", crate::ids::SLUG_RULE));
        }
    }
    if !(1..=limits::MAX_WORKER_CONCURRENCY).contains(&concurrency) {
        problems.push(format!("concurrency {concurrency} is out of range 1-{}", limits::MAX_WORKER_CONCURRENCY));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// What a `ConnectWorker` registers.
pub(super) struct Connect {
    pub(super) worker_id: String,
    pub(super) session: u64,
    pub(super) node_id: NodeId,
    pub(super) queues: Vec<String>,
    pub(super) concurrency: u32,
    pub(super) token: Option<String>,
    pub(super) expires_at_ms: i64,
}

impl State {
    pub(super) fn connect_worker(&mut self, connect: Connect, at: Moment) -> Response {
        let Connect { worker_id, session, node_id, mut queues, concurrency, token, expires_at_ms } = connect;
        let (now, expires_at_ms) = (at.now, at.expiry(expires_at_ms));
        if let Err(problem) = validate_worker(&worker_id, &queues, concurrency) {
            return Response::Rejected(Rejection::InvalidWorker(problem));
        }
        // A worker id registered through one token cannot be taken over through another.
        if let Some(existing) = self.workers.get(&worker_id) {
            if existing.token.is_some() && existing.token != token {
                return Response::Rejected(Rejection::WorkerTokenMismatch { worker_id });
            }
        }
        // A token limited to some queues serves only those.
        let allowed = token.as_deref().and_then(|t| self.tokens.get(t)).and_then(|t| t.queues.as_ref());
        if let Some(allowed) = allowed {
            if let Some(queue) = queues.iter().find(|q| !allowed.contains(q)) {
                return Response::Rejected(Rejection::InvalidWorker(format!(
                    "queue `{queue}` is not one this worker's token may serve ({})",
                    allowed.join(", ")
                )));
            }
        }
        if !self.workers.contains_key(&worker_id) && self.workers.len() >= limits::MAX_WORKERS {
            return Response::Rejected(Rejection::InvalidWorker(format!(
                "the cluster already has {} connected workers",
                limits::MAX_WORKERS
            )));
        }
        queues.sort();
        queues.dedup();
        let replaced = self.workers.get(&worker_id).map(|w| w.session).filter(|s| *s != session);
        let connected_at_ms = match self.workers.get(&worker_id) {
            Some(w) if w.session == session => w.connected_at_ms,
            _ => now,
        };
        let entry = WorkerEntry {
            id: worker_id.clone(),
            session,
            node_id,
            queues,
            concurrency,
            draining: false,
            connected_at_ms,
            last_seen_at_ms: now,
            expires_at_ms,
            token,
            stalled_until_ms: None,
        };
        self.workers.insert(worker_id.clone(), entry);
        Response::WorkerConnected { worker_id, session, replaced }
    }

    fn session_mut(&mut self, worker_id: &str, session: u64) -> Result<&mut WorkerEntry, Rejection> {
        self.workers
            .get_mut(worker_id)
            .filter(|w| w.session == session)
            .ok_or_else(|| Rejection::WorkerNotConnected { worker_id: worker_id.to_string(), session })
    }

    pub(super) fn worker_seen(&mut self, worker_id: String, session: u64, expires_at_ms: i64, at: Moment) -> Response {
        match self.session_mut(&worker_id, session) {
            Ok(entry) => {
                entry.last_seen_at_ms = at.now;
                entry.expires_at_ms = entry.expires_at_ms.max(at.expiry(expires_at_ms));
                Response::WorkerRenewed { worker_id }
            }
            Err(r) => Response::Rejected(r),
        }
    }

    pub(super) fn drain_worker(
        &mut self,
        worker_id: String,
        session: u64,
        token: Option<String>,
        now: i64,
    ) -> Response {
        match self.session_mut(&worker_id, session) {
            Ok(entry) if entry.token.is_some() && entry.token != token => {
                Response::Rejected(Rejection::WorkerTokenMismatch { worker_id })
            }
            Ok(entry) => {
                entry.draining = true;
                entry.last_seen_at_ms = now;
                Response::WorkerDraining { worker_id }
            }
            Err(r) => Response::Rejected(r),
        }
    }

    /// The worker showed life (an accepted heartbeat or completion): it may take tasks again.
    pub(super) fn worker_heard_from(&mut self, by: &Reporter) {
        if let Reporter::Worker { worker_id, .. } = by {
            if let Some(entry) = self.workers.get_mut(worker_id) {
                entry.stalled_until_ms = None;
            }
        }
    }

    pub(super) fn disconnect_worker(
        &mut self,
        worker_id: String,
        session: u64,
        release: Vec<u64>,
        now: i64,
    ) -> Response {
        let token = match self.session_mut(&worker_id, session) {
            Ok(entry) => entry.token.clone(),
            Err(r) => return Response::Rejected(r),
        };
        self.workers.remove(&worker_id);
        let mut released = 0;
        for attempt_id in release {
            let reason = format!("worker `{worker_id}` disconnected before receiving the task");
            let by = Reporter::Worker { worker_id: worker_id.clone(), token: token.clone() };
            let answer = self.finish_attempt(attempt_id, &by, AttemptResult::Released { reason }, None, 0, now);
            if matches!(answer, Response::AttemptFinished { .. }) {
                released += 1;
            }
        }
        Response::WorkerDisconnected { worker_id, released }
    }

    pub(super) fn expire_worker_attempts(&mut self, jitter_permille: u16, now: i64) -> Response {
        let mut due = Vec::new();
        let mut stalled: Vec<(String, i64)> = Vec::new();
        for (worker_id, attempts) in &self.worker_attempts {
            for &attempt_id in attempts {
                let Some(at) = self.attempt(attempt_id) else { continue };
                let attempt = at.attempt();
                if let Some(expiry) = attempt.lease_expires_at_ms.filter(|e| *e <= now) {
                    let reason = format!(
                        "the lease of worker `{worker_id}` expired at {} without a heartbeat",
                        crate::ids::rfc3339(expiry)
                    );
                    // The cluster ends it on the holder's behalf.
                    let by = Reporter::Worker { worker_id: worker_id.clone(), token: attempt.worker_token.clone() };
                    // The worker stays out of dispatch for as long as the lease it let lapse.
                    let lease = expiry - attempt.last_heartbeat_ms.unwrap_or(attempt.started_at_ms);
                    stalled.push((worker_id.clone(), now + lease.max(0)));
                    due.push((attempt_id, by, AttemptResult::Lost { reason }));
                } else if attempt.deadline_ms.is_some_and(|d| d <= now) {
                    let by = Reporter::Worker { worker_id: worker_id.clone(), token: attempt.worker_token.clone() };
                    due.push((attempt_id, by, AttemptResult::TimedOut));
                }
            }
        }
        let (mut lost, mut timed_out) = (Vec::new(), Vec::new());
        for (attempt_id, by, result) in due {
            let is_lost = matches!(result, AttemptResult::Lost { .. });
            let answer = self.finish_attempt(attempt_id, &by, result, None, jitter_permille, now);
            if matches!(answer, Response::AttemptFinished { .. }) {
                if is_lost {
                    lost.push(attempt_id);
                } else {
                    timed_out.push(attempt_id);
                }
            }
        }
        for (worker_id, until) in stalled {
            if let Some(entry) = self.workers.get_mut(&worker_id) {
                entry.stalled_until_ms = Some(entry.stalled_until_ms.unwrap_or(until).max(until));
            }
        }
        let workers: Vec<String> = self.workers.values().filter(|w| !w.is_live(now)).map(|w| w.id.clone()).collect();
        for id in &workers {
            self.workers.remove(id);
        }
        Response::WorkerAttemptsExpired { lost, timed_out, workers }
    }

    /// Whether `worker_id` may take task `task_id` of queue `queue` now.
    pub(super) fn check_worker_can_take(
        &self,
        worker_id: &str,
        queue: &str,
        task_id: &str,
        now: i64,
    ) -> Result<(), Rejection> {
        let unavailable = |reason: String| Rejection::WorkerUnavailable {
            worker_id: worker_id.to_string(),
            task_id: task_id.to_string(),
            reason,
        };
        let entry = self
            .workers
            .get(worker_id)
            .filter(|w| w.is_live(now))
            .ok_or_else(|| unavailable("it is not connected".into()))?;
        if entry.draining {
            return Err(unavailable("it is shutting down".into()));
        }
        if entry.is_stalled(now) {
            return Err(unavailable("it let a lease run out and has not been heard from since".into()));
        }
        if !entry.serves(queue) {
            return Err(unavailable(format!("it does not serve queue `{queue}`")));
        }
        let running = self.worker_running(worker_id);
        if running >= entry.concurrency as usize {
            return Err(unavailable(format!("all {} of its slots are busy", entry.concurrency)));
        }
        Ok(())
    }

    /// Brings every index of one execution up to date: the running worker attempts (here) and
    /// the history (`history.rs`). Called wherever an execution is created or changes.
    pub(super) fn reindex(&mut self, execution_id: &str) {
        self.file_history(execution_id);
        let Some(execution) = self.executions.get(execution_id) else { return };
        for attempt in execution.tasks.iter().flat_map(|t| &t.attempts) {
            let Some(worker_id) = &attempt.worker_id else { continue };
            if attempt.status == AttemptStatus::Running {
                self.worker_attempts.entry(worker_id.clone()).or_default().insert(attempt.id);
            } else if let Some(set) = self.worker_attempts.get_mut(worker_id) {
                set.remove(&attempt.id);
                if set.is_empty() {
                    self.worker_attempts.remove(worker_id);
                }
            }
        }
    }

    // ----- queries -----

    /// Every registered worker (check [`WorkerEntry::is_live`] against the current time).
    pub fn workers(&self) -> impl Iterator<Item = &WorkerEntry> {
        self.workers.values()
    }

    pub fn worker(&self, id: &str) -> Option<&WorkerEntry> {
        self.workers.get(id)
    }

    /// How many attempts are leased to `worker_id` and still running.
    pub fn worker_running(&self, worker_id: &str) -> usize {
        self.worker_attempts.get(worker_id).map_or(0, |s| s.len())
    }

    /// The running attempts leased to `worker_id`, in id order.
    pub fn worker_attempts(&self, worker_id: &str) -> impl Iterator<Item = u64> + '_ {
        self.worker_attempts.get(worker_id).into_iter().flatten().copied()
    }

    /// Whether an `ExpireWorkerAttempts` at `now` would change anything.
    pub fn worker_expiry_due(&self, now: i64) -> bool {
        self.workers.values().any(|w| !w.is_live(now))
            || self.worker_attempts.values().flatten().filter_map(|id| self.attempt(*id)).any(|at| {
                let a = at.attempt();
                a.lease_expires_at_ms.is_some_and(|e| e <= now) || a.deadline_ms.is_some_and(|d| d <= now)
            })
    }

    /// Ready `worker` tasks waiting for a worker, oldest first.
    pub fn queued_worker_tasks(&self, now: i64) -> Vec<QueuedTask> {
        let mut queued = Vec::new();
        for execution in self.unfinished_worker_executions() {
            let Some(spec) = self.execution_spec(execution) else { continue };
            if self.blocker(execution).is_some() {
                continue;
            }
            for task_id in execution.ready_tasks(spec, now) {
                let Some(task_spec) = spec.task(task_id).filter(|t| t.kind == TaskKind::Worker) else { continue };
                let Some(task) = execution.task(task_id) else { continue };
                queued.push(QueuedTask {
                    queue: task_spec.queue.clone().unwrap_or_default(),
                    execution_id: execution.id.clone(),
                    task_id: task_id.to_string(),
                    ready_since_ms: execution.ready_since_ms(spec, task),
                });
            }
        }
        queued.sort_by(|a, b| {
            (a.ready_since_ms, &a.execution_id, &a.task_id).cmp(&(b.ready_since_ms, &b.execution_id, &b.task_id))
        });
        queued
    }

    /// The earliest future retry time of a `worker` task (when the dispatcher must look again).
    pub fn next_worker_retry_ms(&self, now: i64) -> Option<i64> {
        self.unfinished_worker_executions()
            .filter_map(|e| Some((e, self.execution_spec(e)?)))
            .flat_map(|(e, spec)| {
                e.tasks.iter().filter(move |t| spec.task(&t.id).is_some_and(|ts| ts.kind == TaskKind::Worker))
            })
            .filter(|t| t.status == super::TaskStatus::Retrying)
            .filter_map(|t| t.retry_at_ms)
            .filter(|at| *at > now)
            .min()
    }

    /// The index of running worker attempts matches the executions.
    pub(super) fn check_worker_index(&self) -> Result<(), String> {
        let mut expected: std::collections::BTreeMap<&str, std::collections::BTreeSet<u64>> = Default::default();
        for attempt in self.executions.values().flat_map(|e| &e.tasks).flat_map(|t| &t.attempts) {
            if let (Some(worker_id), AttemptStatus::Running) = (&attempt.worker_id, attempt.status) {
                expected.entry(worker_id).or_default().insert(attempt.id);
            }
        }
        let actual: std::collections::BTreeMap<&str, std::collections::BTreeSet<u64>> =
            self.worker_attempts.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        if expected != actual {
            return Err(format!("worker attempt index {actual:?} does not match the executions {expected:?}"));
        }
        Ok(())
    }
}
