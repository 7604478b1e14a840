//! `DispatcherActor`: on the leader, hands ready `worker` tasks to connected workers.
//!
//! Why on the leader: it is the one node that sees every ready task and every free worker slot
//! at once, and sees them first (it applies entries before its followers do). So it can match
//! tasks to workers oldest-first across all queues without racing another node for the same task
//! or the same slot, and its proposals skip the hop that forwards a follower's write. A worker
//! connected to any node gets its task through replicated state: the node it is connected to
//! sees the attempt leased to it and writes it down the worker's stream.
//!
//! A match is only a proposal. `apply` checks again that the worker is connected, serves the
//! queue, is not draining and has a free slot; a stale view or a leader change can waste a
//! proposal but never over-fill a worker or start a task twice.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use linkloom_core::{Command, Response};
use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::EngineCtx;

pub(crate) struct DispatcherActor;

pub(crate) enum DispatchMsg {
    /// Replicated state changed, a proposal ended, or a retry came due: match again.
    Changed,
}

/// Matches proposed and not yet answered, so the next pass does not offer them again.
#[derive(Default)]
struct InFlight {
    tasks: BTreeSet<(String, String)>,
    per_worker: BTreeMap<String, usize>,
}

pub(crate) struct DispatchState {
    ctx: Arc<EngineCtx>,
    /// Set while a `Changed` is queued, so bursts of changes coalesce into one pass.
    pending: Arc<AtomicBool>,
    in_flight: Arc<Mutex<InFlight>>,
    /// Rotates ties between equally free workers.
    turn: usize,
    timer: Option<tokio::task::JoinHandle<()>>,
}

/// The arguments of [`DispatcherActor`]: the context and the coalescing flag its sender shares.
pub(crate) type DispatchArgs = (Arc<EngineCtx>, Arc<AtomicBool>);

impl Actor for DispatcherActor {
    type Msg = DispatchMsg;
    type State = DispatchState;
    type Arguments = DispatchArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<DispatchMsg>,
        (ctx, pending): DispatchArgs,
    ) -> Result<DispatchState, ActorProcessingErr> {
        // A safety net: a pass now and then even if no change arrives.
        myself.send_interval(Duration::from_secs(1), || DispatchMsg::Changed);
        Ok(DispatchState { ctx, pending, in_flight: Arc::default(), turn: 0, timer: None })
    }

    async fn post_stop(&self, _: ActorRef<DispatchMsg>, state: &mut DispatchState) -> Result<(), ActorProcessingErr> {
        if let Some(timer) = state.timer.take() {
            timer.abort();
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<DispatchMsg>,
        _message: DispatchMsg,
        state: &mut DispatchState,
    ) -> Result<(), ActorProcessingErr> {
        state.pending.store(false, Ordering::Release);
        if state.ctx.cluster.is_leader() {
            state.dispatch(&myself);
        }
        Ok(())
    }
}

/// A worker that may take tasks, as this pass sees it.
struct Candidate {
    id: String,
    queues: Vec<String>,
    free: usize,
}

impl DispatchState {
    fn dispatch(&mut self, myself: &ActorRef<DispatchMsg>) {
        let ctx = self.ctx.clone();
        let now = ctx.clock.now_ms();
        let (queued, mut workers, next_retry) = ctx.cluster.state().read(|s| {
            let workers: Vec<Candidate> = s
                .workers()
                .filter(|w| w.takes_new_work(now))
                .map(|w| Candidate {
                    id: w.id.clone(),
                    queues: w.queues.clone(),
                    free: (w.concurrency as usize).saturating_sub(s.worker_running(&w.id)),
                })
                .collect();
            (s.queued_worker_tasks(now), workers, s.next_worker_retry_ms(now))
        });
        self.wake_at(myself, next_retry, now);
        if queued.is_empty() || workers.is_empty() {
            return;
        }
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        for worker in &mut workers {
            worker.free = worker.free.saturating_sub(in_flight.per_worker.get(&worker.id).copied().unwrap_or(0));
        }
        for task in queued {
            let key = (task.execution_id.clone(), task.task_id.clone());
            if in_flight.tasks.contains(&key) {
                continue;
            }
            let serving: Vec<usize> = (0..workers.len())
                .filter(|&i| workers[i].free > 0 && workers[i].queues.contains(&task.queue))
                .collect();
            let Some(most_free) = serving.iter().map(|&i| workers[i].free).max() else { continue };
            let best: Vec<usize> = serving.into_iter().filter(|&i| workers[i].free == most_free).collect();
            let chosen = best[self.turn % best.len()];
            self.turn = self.turn.wrapping_add(1);
            let worker = &mut workers[chosen];
            worker.free -= 1;
            in_flight.tasks.insert(key.clone());
            *in_flight.per_worker.entry(worker.id.clone()).or_default() += 1;
            let command = Command::StartAttempt {
                execution_id: task.execution_id.clone(),
                task_id: task.task_id.clone(),
                node_id: ctx.cluster.node_id(),
                worker_id: Some(worker.id.clone()),
                lease_expires_at_ms: Some(now + ctx.config.worker_lease_ms as i64),
                callback_token_hash: None,
                at_ms: now,
            };
            let (ctx, in_flight_ref, me, worker_id) =
                (ctx.clone(), self.in_flight.clone(), myself.clone(), worker.id.clone());
            let waited_ms = now - task.ready_since_ms;
            tokio::spawn(async move {
                let answer = ctx.cluster.propose(command).await;
                {
                    let mut in_flight = in_flight_ref.lock().unwrap_or_else(|p| p.into_inner());
                    in_flight.tasks.remove(&key);
                    if let Some(n) = in_flight.per_worker.get_mut(&worker_id) {
                        *n = n.saturating_sub(1);
                        if *n == 0 {
                            in_flight.per_worker.remove(&worker_id);
                        }
                    }
                }
                match answer {
                    Ok(Response::AttemptStarted { attempt_id, n }) => {
                        ctx.stats.worker_dispatches.fetch_add(1, Ordering::Relaxed);
                        ctx.stats.dispatch_latency.observe_ms(waited_ms);
                        tracing::debug!(execution_id = %key.0, task_id = %key.1, attempt_id, n, worker_id, waited_ms, "task handed to a worker");
                        return;
                    }
                    Ok(Response::Rejected(r)) => {
                        tracing::debug!(execution_id = %key.0, task_id = %key.1, worker_id, "hand-over refused: {r}")
                    }
                    Ok(other) => tracing::warn!(worker_id, "unexpected answer to a hand-over: {other:?}"),
                    Err(e) => tracing::debug!(worker_id, "hand-over failed: {e}"),
                }
                // Refused or failed: look again (another worker may take it).
                let _ = me.cast(DispatchMsg::Changed);
            });
        }
    }

    /// Wakes the dispatcher when the earliest retry of a worker task comes due.
    fn wake_at(&mut self, myself: &ActorRef<DispatchMsg>, at: Option<i64>, now: i64) {
        if let Some(old) = self.timer.take() {
            old.abort();
        }
        let Some(at) = at else { return };
        let (me, pending) = (myself.clone(), self.pending.clone());
        let delay = Duration::from_millis((at - now).clamp(1, 60_000) as u64);
        self.timer = Some(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if !pending.swap(true, Ordering::AcqRel) {
                let _ = me.cast(DispatchMsg::Changed);
            }
        }));
    }
}
