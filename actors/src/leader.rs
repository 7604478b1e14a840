//! Duties only the leader performs, in two actors that run on every node and act while their node
//! leads, so a new leader takes over within one election. They are separate so that a burst of
//! assignments never delays a cron tick.
//!
//! - Assignment: every unfinished execution without a live owner is given to the live node that
//!   owns the fewest. A node is live while its lease `node/<id>` holds.
//! - Lease expiry: expired leases are removed (which also advances replicated time).
//! - Cron: for each scheduled, unpaused workflow, the due ticks since its cursor are fired per
//!   `catchup`. A scheduled execution's id is a function of (workflow, tick), so a tick fired by
//!   two leaders around a failover still creates one execution.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use linkloom_core::ids::scheduled_execution_id;
use linkloom_core::json::Json;
use linkloom_core::schedule::CronSchedule;
use linkloom_core::state::Trigger;
use linkloom_core::{Command, Response};
use linkloom_raft::Draw;
use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::cron::{plan, Batch, InFlight};
use crate::EngineCtx;

/// Assignment, lease expiry and retention.
pub(crate) struct LeaderActor;

pub(crate) enum LeaderMsg {
    /// Replicated state changed: assign new executions now rather than at the next housekeeping.
    Changed,
    Housekeeping,
}

pub(crate) struct LeaderState {
    ctx: Arc<EngineCtx>,
    last_prune: Option<tokio::time::Instant>,
    /// Set while a `Changed` is queued, so bursts of changes coalesce into one assignment pass.
    changed_pending: Arc<AtomicBool>,
}

/// The arguments of [`LeaderActor`]: the context and the coalescing flag its sender shares.
pub(crate) type LeaderArgs = (Arc<EngineCtx>, Arc<AtomicBool>);

impl Actor for LeaderActor {
    type Msg = LeaderMsg;
    type State = LeaderState;
    type Arguments = LeaderArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<LeaderMsg>,
        (ctx, changed_pending): LeaderArgs,
    ) -> Result<LeaderState, ActorProcessingErr> {
        myself.send_interval(Duration::from_millis(ctx.config.housekeeping_ms), || LeaderMsg::Housekeeping);
        Ok(LeaderState { ctx, last_prune: None, changed_pending })
    }

    async fn handle(
        &self,
        _myself: ActorRef<LeaderMsg>,
        message: LeaderMsg,
        state: &mut LeaderState,
    ) -> Result<(), ActorProcessingErr> {
        let leading = state.ctx.cluster.is_leader();
        match message {
            LeaderMsg::Changed => {
                state.changed_pending.store(false, Ordering::Release);
                if leading {
                    state.assign().await;
                }
            }
            LeaderMsg::Housekeeping if leading => {
                state.expire_leases().await;
                state.expire_worker_attempts().await;
                state.assign().await;
                state.prune().await;
            }
            LeaderMsg::Housekeeping => {}
        }
        Ok(())
    }
}

/// Cron: wakes at the next due tick and fires it.
pub(crate) struct TickActor;

pub(crate) enum TickMsg {
    Wake,
}

pub(crate) struct SchedulerState {
    ctx: Arc<EngineCtx>,
    schedules: HashMap<(String, u32), Parsed>,
    timer: Option<tokio::task::JoinHandle<()>>,
    /// Ticks proposed and not yet answered (shared with the tasks that wait for the answers).
    in_flight: Arc<Mutex<InFlight>>,
    /// Set when a wake left due ticks for later (a workflow with commands out, or the bound on
    /// them): the next batch answered wakes the scheduler.
    deferred: Arc<AtomicBool>,
}

/// A workflow version's parsed schedule (`None`: it does not parse), and the first tick after
/// the cursor it was last looked at with. A wake skips a workflow whose first tick is still to
/// come without walking its schedule: with ten thousand workflows, most wakes find nothing due.
struct Parsed {
    cron: Option<CronSchedule>,
    first_after: Option<(i64, Option<i64>)>,
}

/// Commands the scheduler keeps outstanding at most; due ticks beyond it wait for a later wake.
/// At two thousand ticks a second and commits within a second, a few thousand are out at once.
const MAX_TICK_COMMANDS_IN_FLIGHT: usize = 8_192;

/// How long the scheduler waits for a batch's answers before planning its workflows again
/// (fired twice, a tick still creates one execution).
const BATCH_PATIENCE: Duration = Duration::from_secs(30);

fn lock(in_flight: &Mutex<InFlight>) -> MutexGuard<'_, InFlight> {
    in_flight.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Actor for TickActor {
    type Msg = TickMsg;
    type State = SchedulerState;
    type Arguments = Arc<EngineCtx>;

    async fn pre_start(
        &self,
        myself: ActorRef<TickMsg>,
        ctx: Arc<EngineCtx>,
    ) -> Result<SchedulerState, ActorProcessingErr> {
        let _ = myself.cast(TickMsg::Wake);
        Ok(SchedulerState {
            ctx,
            schedules: HashMap::new(),
            timer: None,
            in_flight: Arc::default(),
            deferred: Arc::default(),
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<TickMsg>,
        state: &mut SchedulerState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(timer) = state.timer.take() {
            timer.abort();
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<TickMsg>,
        _message: TickMsg,
        state: &mut SchedulerState,
    ) -> Result<(), ActorProcessingErr> {
        let next_in =
            if state.ctx.cluster.is_leader() { state.fire_ticks(&myself) } else { Duration::from_millis(500) };
        if let Some(old) = state.timer.take() {
            old.abort();
        }
        let me = myself.clone();
        state.timer = Some(tokio::spawn(async move {
            tokio::time::sleep(next_in).await;
            let _ = me.cast(TickMsg::Wake);
        }));
        Ok(())
    }
}

impl LeaderState {
    async fn expire_leases(&self) {
        let now = self.ctx.clock.now_ms();
        let any_expired = self.ctx.cluster.state().read(|s| s.leases().any(|(_, l)| !l.is_live(now)));
        if any_expired {
            if let Err(e) = self.ctx.cluster.propose(Command::ExpireLeases { at_ms: now }).await {
                tracing::debug!("lease expiry failed: {e}");
            }
        }
    }

    /// Worker attempts whose lease lapsed become `lost` (and are retried per policy), those past
    /// their timeout `timed_out`; registrations of workers whose node stopped renewing them go.
    async fn expire_worker_attempts(&self) {
        let now = self.ctx.clock.now_ms();
        if !self.ctx.cluster.state().read(|s| s.worker_expiry_due(now)) {
            return;
        }
        let jitter_permille = rand::Rng::gen_range(&mut Draw(&*self.ctx.entropy), 0..=1000);
        match self.ctx.cluster.propose(Command::ExpireWorkerAttempts { jitter_permille, at_ms: now }).await {
            Ok(Response::WorkerAttemptsExpired { lost, timed_out, workers }) => {
                if !lost.is_empty() || !timed_out.is_empty() || !workers.is_empty() {
                    tracing::info!(?lost, ?timed_out, ?workers, "worker leases expired");
                }
            }
            Ok(other) => tracing::debug!("worker expiry: {other:?}"),
            Err(e) => tracing::debug!("worker expiry failed: {e}"),
        }
    }

    /// Retention: drops the oldest finished executions beyond the per-workflow limit.
    async fn prune(&mut self) {
        let due = self.last_prune.is_none_or(|t| t.elapsed() >= self.ctx.config.prune_every);
        if !due {
            return;
        }
        self.last_prune = Some(tokio::time::Instant::now());
        let command = Command::PruneExecutions { at_ms: self.ctx.clock.now_ms() };
        match self.ctx.cluster.propose(command).await {
            Ok(Response::ExecutionsPruned { count }) if count > 0 => {
                tracing::info!(count, "pruned finished executions")
            }
            Ok(_) => {}
            Err(e) => tracing::debug!("pruning failed: {e}"),
        }
    }

    async fn assign(&self) {
        let now = self.ctx.clock.now_ms();
        let (live, mut load, orphans) = self.ctx.cluster.state().read(|s| {
            let live: BTreeSet<u64> = s
                .leases()
                .filter(|(key, lease)| key.starts_with("node/") && lease.is_live(now))
                .filter_map(|(key, _)| key["node/".len()..].parse().ok())
                .collect();
            let mut load: BTreeMap<u64, usize> = live.iter().map(|n| (*n, 0)).collect();
            let mut orphans = Vec::new();
            for e in s.unfinished_executions() {
                match e.owner {
                    Some(owner) if live.contains(&owner) => *load.entry(owner).or_default() += 1,
                    _ => orphans.push((e.id.clone(), e.owner)),
                }
            }
            (live, load, orphans)
        });
        if live.is_empty() || orphans.is_empty() {
            return;
        }
        let mut assignments = Vec::with_capacity(orphans.len());
        for (execution_id, previous) in orphans {
            let Some((&node_id, _)) = load.iter().min_by_key(|(id, n)| (**n, **id)) else { return };
            *load.entry(node_id).or_default() += 1;
            if let Some(previous) = previous {
                tracing::info!(%execution_id, from = previous, to = node_id, "reassigning an execution of a node whose lease lapsed");
            }
            assignments.push(Command::AssignExecution { execution_id, node_id, at_ms: now });
        }
        let proposals = assignments.into_iter().map(|c| self.ctx.cluster.propose(c));
        for result in futures::future::join_all(proposals).await {
            if let Err(e) = result {
                tracing::debug!("assignment failed: {e}");
            }
        }
    }
}

impl SchedulerState {
    /// Fires due ticks; returns how long to sleep until the next one (at most 500 ms).
    fn fire_ticks(&mut self, me: &ActorRef<TickMsg>) -> Duration {
        let ctx = self.ctx.clone();
        let now = ctx.clock.now_ms();
        let workflows: Vec<ScheduledWorkflow> = ctx.cluster.state().read(|s| {
            s.workflows()
                .filter_map(|w| {
                    let active = w.active()?;
                    let schedule = active.spec.schedule.clone()?;
                    Some((
                        w.id.clone(),
                        active.version,
                        schedule,
                        active.spec.timezone_name().to_string(),
                        active.spec.catchup,
                        w.last_tick_ms.unwrap_or(active.created_at_ms),
                        w.paused,
                    ))
                })
                .collect()
        });
        let live: std::collections::HashSet<(String, u32)> = workflows.iter().map(|w| (w.0.clone(), w.1)).collect();
        self.schedules.retain(|key, _| live.contains(key));
        // Workflows whose schedule is parsed already fire first; parsing new ones (~0.1 ms each,
        // a thousand at once after a bulk registration) must not delay their ticks.
        let (known, new): (Vec<_>, Vec<_>) =
            workflows.into_iter().partition(|w| self.schedules.contains_key(&(w.0.clone(), w.1)));
        let mut next_tick = now + 500;
        let (commands, batch) = self.plan(known, now, &mut next_tick);
        dispatch(&ctx, commands, batch, (&self.in_flight, &self.deferred), me);
        if !new.is_empty() {
            for (id, version, expr, tz, ..) in &new {
                let cron = CronSchedule::parse(expr, tz).ok();
                self.schedules.insert((id.clone(), *version), Parsed { cron, first_after: None });
            }
            let (commands, batch) = self.plan(new, ctx.clock.now_ms(), &mut next_tick);
            dispatch(&ctx, commands, batch, (&self.in_flight, &self.deferred), me);
        }
        ctx.stats.tick_commands_in_flight.store(lock(&self.in_flight).commands() as u64, Ordering::Relaxed);
        Duration::from_millis((next_tick - ctx.clock.now_ms()).clamp(1, 500) as u64)
    }

    /// The commands that fire (or skip) the due ticks of `workflows`, oldest cursor first, and
    /// the batch they form in [`InFlight`]; lowers `next_tick` to the earliest tick still to
    /// come. Workflows with commands out are left for a later wake, as are all the rest once
    /// [`MAX_TICK_COMMANDS_IN_FLIGHT`] are out.
    fn plan(&mut self, mut workflows: Vec<ScheduledWorkflow>, now: i64, next_tick: &mut i64) -> (Vec<Command>, Batch) {
        let ctx = &self.ctx;
        let config = &ctx.config;
        let mut commands = Vec::new();
        let mut batch = Batch::default();
        let mut in_flight = lock(&self.in_flight);
        workflows.sort_by(|a, b| (a.5, &a.0).cmp(&(b.5, &b.0)));
        for (id, version, _, _, catchup, cursor, paused) in workflows {
            let Some(parsed) = self.schedules.get_mut(&(id.clone(), version)) else { continue };
            let Some(schedule) = &parsed.cron else { continue };
            if paused {
                continue;
            }
            if in_flight.is_pending(&id) {
                self.deferred.store(true, Ordering::Release);
                continue;
            }
            let first = match parsed.first_after {
                Some((at, first)) if at == cursor => first,
                _ => {
                    let first = schedule.next_after_ms(cursor);
                    parsed.first_after = Some((cursor, first));
                    first
                }
            };
            match first {
                None => continue,
                Some(t) if t > now => {
                    *next_tick = (*next_tick).min(t);
                    continue;
                }
                Some(_) => {}
            }
            if !in_flight.has_room(MAX_TICK_COMMANDS_IN_FLIGHT) {
                self.deferred.store(true, Ordering::Release);
                break;
            }
            let before = commands.len();
            let tick_plan = plan(schedule, catchup, cursor, now, config.tick_tolerance_ms, config.max_catchup_ticks);
            if let Some(tick_ms) = tick_plan.skip_to {
                commands.push(Command::AdvanceSchedule { workflow_id: id.clone(), tick_ms, at_ms: now });
            }
            for tick in &tick_plan.fire {
                ctx.stats.ticks_fired.fetch_add(1, Ordering::Relaxed);
                ctx.stats.tick_lateness_ms_total.fetch_add((now - tick).max(0) as u64, Ordering::Relaxed);
                ctx.stats.tick_lateness.observe_ms(now - tick);
                commands.push(Command::CreateExecution {
                    execution_id: scheduled_execution_id(&id, *tick),
                    workflow_id: id.clone(),
                    trigger: Trigger::Schedule,
                    scheduled_at_ms: Some(*tick),
                    params: Json::null(),
                    actor: Some("scheduler".into()),
                    at_ms: now,
                });
            }
            in_flight.record(&mut batch, &id, commands.len() - before);
            let after = tick_plan.fire.last().copied().unwrap_or(cursor).max(now);
            if let Some(t) = schedule.next_after_ms(after) {
                *next_tick = (*next_tick).min(t);
            }
        }
        (commands, batch)
    }
}

/// (id, version, schedule, time zone, catchup, cursor, paused) of a scheduled workflow.
type ScheduledWorkflow = (String, u32, String, String, linkloom_core::spec::Catchup, i64, bool);

/// Proposes off the actor: the next wake must not wait for these commits. Once every command is
/// answered (or after [`BATCH_PATIENCE`]), the batch's workflows are free to be planned again,
/// and if a wake left due ticks for later the scheduler is woken for them; a tick whose proposal
/// failed is fired again then (the cursor did not move), and fired twice it still creates one
/// execution.
fn dispatch(
    ctx: &Arc<EngineCtx>,
    commands: Vec<Command>,
    batch: Batch,
    (in_flight, deferred): (&Arc<Mutex<InFlight>>, &Arc<AtomicBool>),
    me: &ActorRef<TickMsg>,
) {
    if commands.is_empty() {
        lock(in_flight).settle(batch);
        return;
    }
    let ctx = ctx.clone();
    let in_flight = in_flight.clone();
    let deferred = deferred.clone();
    let me = me.clone();
    tokio::spawn(async move {
        let proposals = commands.into_iter().map(|c| ctx.cluster.propose(c));
        let answers = tokio::time::timeout(BATCH_PATIENCE, futures::future::join_all(proposals)).await;
        {
            let mut in_flight = lock(&in_flight);
            in_flight.settle(batch);
            ctx.stats.tick_commands_in_flight.store(in_flight.commands() as u64, Ordering::Relaxed);
        }
        if deferred.swap(false, Ordering::AcqRel) {
            let _ = me.cast(TickMsg::Wake);
        }
        let Ok(answers) = answers else {
            tracing::warn!("ticks proposed {BATCH_PATIENCE:?} ago are not answered; planning them again");
            return;
        };
        for result in answers {
            match result {
                Ok(Response::ExecutionCreated { execution_id }) => tracing::debug!(%execution_id, "tick fired"),
                Ok(Response::TickSkipped { workflow_id, scheduled_at_ms, reason }) => {
                    tracing::info!(%workflow_id, scheduled_at_ms, "tick skipped: {reason}")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("firing a tick failed: {e}"),
            }
        }
    });
}
