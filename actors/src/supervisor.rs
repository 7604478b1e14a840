//! `NodeSupervisor`: the root of a node's actors.
//!
//! It keeps one `ExecutionActor` per unfinished execution this node owns (spawning and pruning
//! them whenever replicated state changes), renews the node's liveness lease, supervises the
//! `LeaderActor`, the `TickActor` and the `DispatcherActor`, and one `WorkerConnectionActor`
//! per worker connected here. A child that panics is logged, counted and rebuilt from replicated
//! state; a connection whose actor panics is closed (its worker reconnects).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use linkloom_core::state::AttemptResult;
use linkloom_core::Command;
use linkloom_wire::worker::{WorkerEvent, WorkerHello};
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};
use tokio::sync::mpsc;

use crate::dispatch::{DispatchMsg, DispatcherActor};
use crate::execution::{self, ExecArgs, ExecMsg, ExecutionActor};
use crate::leader::{LeaderActor, LeaderMsg, TickActor, TickMsg};
use crate::worker_conn::{register, ConnArgs, ConnMsg, ConnectError, WorkerConnectionActor};
use crate::{node_lease_key, EngineCtx};

/// Engine counters, for metrics.
#[derive(Default)]
pub struct Counters {
    pub(crate) actor_restarts: AtomicU64,
    pub(crate) pokes: AtomicU64,
    pub(crate) ticks_fired: AtomicU64,
    pub(crate) tick_lateness_ms_total: AtomicU64,
    /// Commands firing ticks that the scheduler proposed and has no answer for yet.
    pub(crate) tick_commands_in_flight: AtomicU64,
    pub(crate) worker_dispatches: AtomicU64,
    pub(crate) worker_connections: AtomicU64,
    /// Task output not appended to logs because the node's log rate was exceeded.
    pub(crate) task_log_bytes_dropped: AtomicU64,
    /// Ready → attempt started (by this node's execution actors, or handed to a worker by its
    /// dispatcher while it leads).
    pub(crate) dispatch_latency: linkloom_core::metrics::Histogram,
    /// Schedule tick → execution created, for ticks this node fired while it led.
    pub(crate) tick_lateness: linkloom_core::metrics::Histogram,
}

/// A snapshot of the engine's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineStats {
    pub actor_restarts: u64,
    pub ticks_fired: u64,
    pub tick_lateness_ms_total: u64,
    /// Worker tasks this node handed to workers (while it led).
    pub worker_dispatches: u64,
    /// Workers connected to this node now.
    pub worker_connections: u64,
}

/// The running engine of one node.
pub struct EngineHandle {
    supervisor: ActorRef<SupMsg>,
    ctx: Arc<EngineCtx>,
}

impl EngineHandle {
    pub fn stats(&self) -> EngineStats {
        let c = &self.ctx.stats;
        EngineStats {
            actor_restarts: c.actor_restarts.load(Ordering::Relaxed),
            ticks_fired: c.ticks_fired.load(Ordering::Relaxed),
            tick_lateness_ms_total: c.tick_lateness_ms_total.load(Ordering::Relaxed),
            worker_dispatches: c.worker_dispatches.load(Ordering::Relaxed),
            worker_connections: c.worker_connections.load(Ordering::Relaxed),
        }
    }

    /// Adds the engine's families to a `/metrics` page.
    pub fn render_metrics(&self, out: &mut linkloom_core::metrics::Exposition) {
        let c = &self.ctx.stats;
        out.counter(
            "loom_actor_restarts_total",
            "Execution and worker-connection actors restarted by their supervisor.",
            &[],
            c.actor_restarts.load(Ordering::Relaxed),
        );
        out.counter(
            "loom_schedule_ticks_fired_total",
            "Cron ticks this node fired while it led.",
            &[],
            c.ticks_fired.load(Ordering::Relaxed),
        );
        out.gauge(
            "loom_schedule_tick_commands_in_flight",
            "Commands firing cron ticks proposed by this node (while it leads) and not yet answered.",
            &[],
            c.tick_commands_in_flight.load(Ordering::Relaxed) as f64,
        );
        out.histogram(
            "loom_schedule_tick_lateness_seconds",
            "How long after its tick a scheduled execution was created.",
            &[],
            &c.tick_lateness.snapshot(),
        );
        out.histogram(
            "loom_dispatch_latency_seconds",
            "From a task becoming ready to its attempt starting (or being handed to a worker).",
            &[],
            &c.dispatch_latency.snapshot(),
        );
        out.counter(
            "loom_worker_dispatches_total",
            "Worker tasks this node handed to workers while it led.",
            &[],
            c.worker_dispatches.load(Ordering::Relaxed),
        );
        out.counter(
            "loom_task_log_bytes_dropped_total",
            "Shell task output this node did not append to logs because its task log rate was exceeded.",
            &[],
            c.task_log_bytes_dropped.load(Ordering::Relaxed),
        );
        out.gauge(
            "loom_worker_connections",
            "Workers connected to this node now.",
            &[],
            c.worker_connections.load(Ordering::Relaxed) as f64,
        );
    }

    /// Connects a worker through API token `token` (its name; `None` on a node that runs open):
    /// registers it in replicated state, bound to that token, and starts the actor that serves its
    /// stream. Dropping the returned stream closes the connection.
    pub async fn connect_worker(
        &self,
        hello: WorkerHello,
        token: Option<String>,
    ) -> Result<WorkerStream, ConnectError> {
        let session = self.ctx.entropy.next_u64();
        register(&self.ctx, &hello, session, token.clone()).await?;
        let (events, receiver) = mpsc::unbounded_channel();
        let args = ConnArgs { ctx: self.ctx.clone(), worker_id: hello.id.clone(), session, hello, token, events };
        let spawned = Actor::spawn_linked(None, WorkerConnectionActor, args, self.supervisor.get_cell()).await;
        let actor = spawned.map_err(|e| ConnectError::Unavailable(format!("cannot start the connection: {e}")))?.0;
        let _ = self.supervisor.cast(SupMsg::Connected(actor.clone()));
        Ok(WorkerStream { receiver, actor })
    }

    /// How long a worker lease lasts, and how often workers heartbeat.
    pub fn worker_timing(&self) -> (u64, u64) {
        (self.ctx.config.worker_lease_ms, self.ctx.config.worker_heartbeat_ms)
    }

    /// The first half of a graceful shutdown (SIGTERM): this node starts no attempt from now on,
    /// lets the HTTP and shell attempts it runs finish for up to `grace`, then hands back those
    /// still running (released: they run again on a node that owns the execution, without using
    /// a retry) and stops their executors. Without it, a restart (a rolling upgrade) would find
    /// them lost, and a task without retries would fail. Attempts waiting for a backend's
    /// callback are not waited for. Call [`EngineHandle::stop`] after it.
    pub async fn drain(&self, grace: Duration) -> Drained {
        self.ctx.draining.store(true, Ordering::SeqCst);
        let started = tokio::time::Instant::now();
        let running_at_start = self.ctx.attempts.running().len();
        let busy = || self.ctx.starting.load(Ordering::SeqCst) > 0 || !self.ctx.attempts.running().is_empty();
        while busy() && started.elapsed() < grace {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let left = self.ctx.attempts.running();
        let me = self.ctx.cluster.node_id();
        for (execution_id, attempt_id) in &left {
            let reason = format!("node {me} shut down before the attempt ended; it runs again");
            execution::finish(&self.ctx, *attempt_id, AttemptResult::Released { reason }, None).await;
            self.ctx.attempts.abandon(execution_id, *attempt_id);
        }
        Drained { running_at_start, released: left.len(), waited: started.elapsed() }
    }

    /// Stops every actor of this node (running shell attempts are killed).
    pub fn stop(&self) {
        self.supervisor.stop(Some("engine stopping".into()));
    }
}

/// What [`EngineHandle::drain`] did.
#[derive(Debug, Clone, Copy)]
pub struct Drained {
    /// Attempts running on this node when the drain began.
    pub running_at_start: usize,
    /// Of those, the ones still running at the end of the grace period, handed back.
    pub released: usize,
    /// How long it waited.
    pub waited: Duration,
}

/// A connected worker's events. Dropping it (the HTTP response ended) closes the connection.
pub struct WorkerStream {
    receiver: mpsc::UnboundedReceiver<WorkerEvent>,
    actor: ActorRef<ConnMsg>,
}

impl WorkerStream {
    /// The next event, or `None` once the node closed the connection.
    pub async fn next(&mut self) -> Option<WorkerEvent> {
        self.receiver.recv().await
    }
}

impl Drop for WorkerStream {
    fn drop(&mut self) {
        let _ = self.actor.cast(ConnMsg::Close("the worker's stream closed".into()));
    }
}

pub(crate) enum SupMsg {
    /// Replicated state changed: reconcile execution actors and poke them.
    Reconcile,
    RenewLease,
    /// A worker connection started (its actor is linked to the supervisor).
    Connected(ActorRef<ConnMsg>),
}

struct NodeSupervisor;

struct SupState {
    ctx: Arc<EngineCtx>,
    children: BTreeMap<String, ActorRef<ExecMsg>>,
    by_actor: BTreeMap<ActorId, String>,
    leader: Option<ActorRef<LeaderMsg>>,
    leader_pending: Arc<AtomicBool>,
    scheduler: Option<ActorRef<TickMsg>>,
    dispatcher: Option<ActorRef<DispatchMsg>>,
    dispatcher_pending: Arc<AtomicBool>,
    connections: BTreeMap<ActorId, ActorRef<ConnMsg>>,
    /// Set while a Reconcile is queued, so bursts of changes coalesce into one.
    pending: Arc<AtomicBool>,
    /// Where this node read the state's change journal up to: (generation, position).
    journal: Option<(u64, u64)>,
    /// When every unfinished execution was last looked at (the safety net under the journal).
    last_sweep: Option<tokio::time::Instant>,
}

/// How often the supervisor looks at every unfinished execution, not only the changed ones: a
/// change the journal missed costs at most this much delay, never a stuck execution.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

pub(crate) async fn start(ctx: Arc<EngineCtx>) -> Result<EngineHandle, ractor::SpawnErr> {
    let (supervisor, _) = Actor::spawn(None, NodeSupervisor, ctx.clone()).await?;
    Ok(EngineHandle { supervisor, ctx })
}

impl Actor for NodeSupervisor {
    type Msg = SupMsg;
    type State = SupState;
    type Arguments = Arc<EngineCtx>;

    async fn pre_start(&self, myself: ActorRef<SupMsg>, ctx: Arc<EngineCtx>) -> Result<SupState, ActorProcessingErr> {
        let pending = Arc::new(AtomicBool::new(false));
        // Wake on every change of replicated state.
        let (mut changes, me, flag) = (ctx.cluster.changes(), myself.clone(), pending.clone());
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                if !flag.swap(true, Ordering::AcqRel) && me.cast(SupMsg::Reconcile).is_err() {
                    return;
                }
            }
        });
        let renew = Duration::from_millis(ctx.config.node_lease_renew_ms);
        myself.send_interval(renew, || SupMsg::RenewLease);
        let _ = myself.cast(SupMsg::RenewLease);
        let leader_pending = Arc::new(AtomicBool::new(false));
        let (leader, _) =
            Actor::spawn_linked(None, LeaderActor, (ctx.clone(), leader_pending.clone()), myself.get_cell()).await?;
        let (scheduler, _) = Actor::spawn_linked(None, TickActor, ctx.clone(), myself.get_cell()).await?;
        let dispatcher_pending = Arc::new(AtomicBool::new(false));
        let args = (ctx.clone(), dispatcher_pending.clone());
        let (dispatcher, _) = Actor::spawn_linked(None, DispatcherActor, args, myself.get_cell()).await?;
        Ok(SupState {
            ctx,
            children: BTreeMap::new(),
            by_actor: BTreeMap::new(),
            leader: Some(leader),
            leader_pending,
            scheduler: Some(scheduler),
            dispatcher: Some(dispatcher),
            dispatcher_pending,
            connections: BTreeMap::new(),
            pending,
            journal: None,
            last_sweep: None,
        })
    }

    async fn post_stop(&self, _myself: ActorRef<SupMsg>, state: &mut SupState) -> Result<(), ActorProcessingErr> {
        for child in state.children.values() {
            child.stop(Some("supervisor stopping".into()));
        }
        if let Some(leader) = &state.leader {
            leader.stop(None);
        }
        if let Some(scheduler) = &state.scheduler {
            scheduler.stop(None);
        }
        if let Some(dispatcher) = &state.dispatcher {
            dispatcher.stop(None);
        }
        for connection in state.connections.values() {
            let _ = connection.cast(ConnMsg::Close("the node is stopping".into()));
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<SupMsg>,
        message: SupMsg,
        state: &mut SupState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SupMsg::Reconcile => {
                state.pending.store(false, Ordering::Release);
                state.reconcile(&myself).await;
            }
            SupMsg::RenewLease => {
                let ctx = state.ctx.clone();
                let me = ctx.cluster.node_id();
                let now = ctx.clock.now_ms();
                let command = Command::AcquireLease {
                    key: node_lease_key(me),
                    holder: format!("node-{me}"),
                    expires_at_ms: now + ctx.config.node_lease_ms as i64,
                    at_ms: now,
                };
                // Off the actor's loop: a slow commit must not delay reconciling.
                tokio::spawn(async move {
                    if let Err(e) = ctx.cluster.propose(command).await {
                        tracing::debug!("node lease renewal failed: {e}");
                    }
                });
            }
            SupMsg::Connected(actor) => {
                let _ = actor.cast(ConnMsg::Poke);
                state.connections.insert(actor.get_id(), actor);
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupMsg>,
        event: SupervisionEvent,
        state: &mut SupState,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorFailed(cell, error) => {
                state.ctx.stats.actor_restarts.fetch_add(1, Ordering::Relaxed);
                if state.leader.as_ref().is_some_and(|l| l.get_id() == cell.get_id()) {
                    tracing::error!("leader actor failed, restarting: {error}");
                    let args = (state.ctx.clone(), state.leader_pending.clone());
                    let (leader, _) = Actor::spawn_linked(None, LeaderActor, args, myself.get_cell()).await?;
                    state.leader = Some(leader);
                } else if state.scheduler.as_ref().is_some_and(|s| s.get_id() == cell.get_id()) {
                    tracing::error!("scheduler actor failed, restarting: {error}");
                    let (scheduler, _) =
                        Actor::spawn_linked(None, TickActor, state.ctx.clone(), myself.get_cell()).await?;
                    state.scheduler = Some(scheduler);
                } else if state.dispatcher.as_ref().is_some_and(|d| d.get_id() == cell.get_id()) {
                    tracing::error!("dispatcher actor failed, restarting: {error}");
                    let args = (state.ctx.clone(), state.dispatcher_pending.clone());
                    let (dispatcher, _) = Actor::spawn_linked(None, DispatcherActor, args, myself.get_cell()).await?;
                    state.dispatcher = Some(dispatcher);
                } else if state.connections.remove(&cell.get_id()).is_some() {
                    // Its stream is closed with it; the worker reconnects and its registration
                    // is replaced or expires.
                    tracing::error!("worker connection actor failed; the connection is closed: {error}");
                } else if let Some(id) = state.by_actor.remove(&cell.get_id()) {
                    tracing::error!(execution_id = %id, "execution actor failed, restarting from replicated state: {error}");
                    state.children.remove(&id);
                    state.last_sweep = None;
                    state.reconcile(&myself).await;
                }
            }
            SupervisionEvent::ActorTerminated(cell, _, _) => {
                if let Some(id) = state.by_actor.remove(&cell.get_id()) {
                    state.children.remove(&id);
                }
                state.connections.remove(&cell.get_id());
            }
            _ => {}
        }
        Ok(())
    }
}

impl SupState {
    /// Brings the execution actors in line with the state: an actor for every unfinished
    /// execution this node owns, and a poke for each whose execution changed. What changed comes
    /// from the state's change journal, so the work is what a commit touched, not everything
    /// unfinished; everything is looked at when the state was replaced (a snapshot installed),
    /// and once a second anyway.
    async fn reconcile(&mut self, myself: &ActorRef<SupMsg>) {
        let me = self.ctx.cluster.node_id();
        let since = self.journal.map_or(0, |(_, seq)| seq);
        let (generation, changes) = self.ctx.cluster.state().read_with_generation(|s| s.changed_since(since));
        let now = tokio::time::Instant::now();
        // A new generation (a snapshot installed) or a journal that forgot changes since our
        // position (their executions moved to the base) means looking at everything once.
        let sweep = self.journal.is_none_or(|(g, _)| g != generation)
            || !changes.complete
            || self.last_sweep.is_none_or(|t| now.duration_since(t) >= SWEEP_EVERY);
        self.journal = Some((generation, changes.next));
        let changed = changes.executions;
        let look_at: Vec<String> = if sweep {
            self.last_sweep = Some(now);
            let state = self.ctx.cluster.state();
            let mut all: Vec<String> = state.read(|s| s.unfinished_executions().map(|e| e.id.clone()).collect());
            all.extend(self.children.keys().cloned());
            all.sort();
            all.dedup();
            all
        } else {
            changed
        };
        let owned: Vec<String> = self.ctx.cluster.state().read(|s| {
            look_at
                .iter()
                .filter(|id| s.execution(id).is_some_and(|e| !e.status.is_terminal() && e.owner == Some(me)))
                .cloned()
                .collect()
        });
        for id in owned {
            if self.children.contains_key(&id) {
                continue;
            }
            let args = ExecArgs { id: id.clone(), ctx: self.ctx.clone() };
            match Actor::spawn_linked(None, ExecutionActor, args, myself.get_cell()).await {
                Ok((child, _)) => {
                    self.by_actor.insert(child.get_id(), id.clone());
                    self.children.insert(id, child);
                }
                Err(e) => tracing::error!(execution_id = %id, "cannot start an execution actor: {e}"),
            }
        }
        // The children of changed executions look again; those whose execution ended or moved
        // stop themselves.
        for id in &look_at {
            if let Some(child) = self.children.get(id) {
                let _ = child.cast(ExecMsg::Poke);
            }
        }
        if let Some(leader) = &self.leader {
            if !self.leader_pending.swap(true, Ordering::AcqRel) {
                let _ = leader.cast(LeaderMsg::Changed);
            }
        }
        if let Some(dispatcher) = &self.dispatcher {
            if !self.dispatcher_pending.swap(true, Ordering::AcqRel) {
                let _ = dispatcher.cast(DispatchMsg::Changed);
            }
        }
        for connection in self.connections.values() {
            let _ = connection.cast(ConnMsg::Poke);
        }
    }
}
