//! `LeaderActor`: duties only the leader performs. It runs on every node and acts while its node
//! leads, so a new leader takes over within one election.
//!
//! - Assignment: every unfinished execution without a live owner is given to the live node that
//!   owns the fewest. A node is live while its lease `node/<id>` holds.
//! - Lease expiry: expired leases are removed (which also advances replicated time).
//! - Cron: for each scheduled, unpaused workflow, the due ticks since its cursor are fired per
//!   `catchup`. A scheduled execution's id is a function of (workflow, tick), so a tick fired by
//!   two leaders around a failover still creates one execution.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use linkloom_core::ids::scheduled_execution_id;
use linkloom_core::json::Json;
use linkloom_core::schedule::CronSchedule;
use linkloom_core::state::Trigger;
use linkloom_core::{Command, Response};
use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::cron::plan;
use crate::EngineCtx;

pub(crate) struct LeaderActor;

pub(crate) enum LeaderMsg {
    /// Replicated state changed: assign new executions now rather than at the next housekeeping.
    Changed,
    Housekeeping,
    CronWake,
}

pub(crate) struct LeaderState {
    ctx: Arc<EngineCtx>,
    last_prune: Option<tokio::time::Instant>,
    schedules: HashMap<(String, u32), Option<CronSchedule>>,
    cron_timer: Option<tokio::task::JoinHandle<()>>,
}

impl Actor for LeaderActor {
    type Msg = LeaderMsg;
    type State = LeaderState;
    type Arguments = Arc<EngineCtx>;

    async fn pre_start(
        &self,
        myself: ActorRef<LeaderMsg>,
        ctx: Arc<EngineCtx>,
    ) -> Result<LeaderState, ActorProcessingErr> {
        myself.send_interval(Duration::from_millis(ctx.config.housekeeping_ms), || LeaderMsg::Housekeeping);
        let _ = myself.cast(LeaderMsg::CronWake);
        Ok(LeaderState { ctx, last_prune: None, schedules: HashMap::new(), cron_timer: None })
    }

    async fn post_stop(&self, _myself: ActorRef<LeaderMsg>, state: &mut LeaderState) -> Result<(), ActorProcessingErr> {
        if let Some(timer) = state.cron_timer.take() {
            timer.abort();
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<LeaderMsg>,
        message: LeaderMsg,
        state: &mut LeaderState,
    ) -> Result<(), ActorProcessingErr> {
        let leading = state.ctx.cluster.is_leader();
        match message {
            LeaderMsg::Changed if leading => state.assign().await,
            LeaderMsg::Housekeeping if leading => {
                state.expire_leases().await;
                state.assign().await;
                state.prune().await;
            }
            LeaderMsg::CronWake => {
                let next_in = if leading { state.fire_ticks().await } else { Duration::from_millis(500) };
                if let Some(old) = state.cron_timer.take() {
                    old.abort();
                }
                let me = myself.clone();
                state.cron_timer = Some(tokio::spawn(async move {
                    tokio::time::sleep(next_in).await;
                    let _ = me.cast(LeaderMsg::CronWake);
                }));
            }
            _ => {}
        }
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

    /// Retention: drops the oldest finished executions beyond the per-workflow limit.
    async fn prune(&mut self) {
        let due = self.last_prune.is_none_or(|t| t.elapsed() >= self.ctx.config.prune_every);
        if !due {
            return;
        }
        self.last_prune = Some(tokio::time::Instant::now());
        let command = Command::PruneExecutions {
            keep_per_workflow: self.ctx.config.keep_executions_per_workflow,
            at_ms: self.ctx.clock.now_ms(),
        };
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

    /// Fires due ticks; returns how long to sleep until the next one (at most 500 ms).
    async fn fire_ticks(&mut self) -> Duration {
        let ctx = self.ctx.clone();
        let now = ctx.clock.now_ms();
        let config = &ctx.config;
        let workflows: Vec<(String, u32, String, String, linkloom_core::spec::Catchup, i64, bool)> =
            ctx.cluster.state().read(|s| {
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
        let mut commands = Vec::new();
        let mut next_tick = now + 500;
        for (id, version, expr, tz, catchup, cursor, paused) in workflows {
            let schedule = self
                .schedules
                .entry((id.clone(), version))
                .or_insert_with(|| CronSchedule::parse(&expr, &tz).ok())
                .clone();
            let Some(schedule) = schedule else { continue };
            if paused {
                continue;
            }
            let tick_plan = plan(&schedule, catchup, cursor, now, config.tick_tolerance_ms, config.max_catchup_ticks);
            if let Some(tick_ms) = tick_plan.skip_to {
                commands.push(Command::AdvanceSchedule { workflow_id: id.clone(), tick_ms, at_ms: now });
            }
            for tick in &tick_plan.fire {
                ctx.stats.ticks_fired.fetch_add(1, Ordering::Relaxed);
                ctx.stats.tick_lateness_ms_total.fetch_add((now - tick).max(0) as u64, Ordering::Relaxed);
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
            let after = tick_plan.fire.last().copied().unwrap_or(cursor).max(now);
            if let Some(t) = schedule.next_after_ms(after) {
                next_tick = next_tick.min(t);
            }
        }
        self.schedules.retain(|_, s| s.is_some());
        let proposals = commands.into_iter().map(|c| ctx.cluster.propose(c));
        for result in futures::future::join_all(proposals).await {
            match result {
                Ok(Response::ExecutionCreated { execution_id }) => tracing::info!(%execution_id, "tick fired"),
                Ok(Response::TickSkipped { workflow_id, scheduled_at_ms, reason }) => {
                    tracing::info!(%workflow_id, scheduled_at_ms, "tick skipped: {reason}")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("firing a tick failed: {e}"),
            }
        }
        Duration::from_millis((next_tick - ctx.clock.now_ms()).clamp(1, 500) as u64)
    }
}
