//! `WorkerConnectionActor`: one per worker connected to this node.
//!
//! The actor owns the sending side of the worker's event stream. It delivers the attempts the
//! leader's dispatcher leased to its worker (it learns of them from replicated state, like every
//! other actor), tells the worker to stop attempts that ended without it (cancelled, timed out,
//! lease lost), pings the stream, and renews the worker's registration while the stream is alive.
//!
//! When the stream closes (the worker went away, or the HTTP body was dropped) the actor stops
//! and removes the registration, giving back the attempts it never delivered; attempts the worker
//! did receive keep their leases, so a worker that reconnects elsewhere in time keeps them.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use linkloom_core::ids::rfc3339;
use linkloom_core::render::RenderContext;
use linkloom_core::state::{validate_worker, AttemptResult, AttemptStatus, Rejection, Reporter};
use linkloom_core::{Command, Response};
use linkloom_wire::worker::{TaskAssignment, WorkerEvent, WorkerHello};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::mpsc;

use crate::EngineCtx;

pub(crate) struct WorkerConnectionActor;

pub(crate) enum ConnMsg {
    /// Replicated state changed: deliver new attempts, cancel ended ones.
    Poke,
    /// Ping the stream; renew the registration every other tick.
    Tick,
    /// The stream is gone, or the worker was replaced: stop.
    Close(String),
}

pub(crate) struct ConnArgs {
    pub(crate) ctx: Arc<EngineCtx>,
    pub(crate) worker_id: String,
    pub(crate) session: u64,
    pub(crate) hello: WorkerHello,
    /// The API token the worker connected with (`None` on a node that runs open).
    pub(crate) token: Option<String>,
    pub(crate) events: mpsc::UnboundedSender<WorkerEvent>,
}

pub(crate) struct ConnState {
    ctx: Arc<EngineCtx>,
    worker_id: String,
    session: u64,
    hello: WorkerHello,
    token: Option<String>,
    events: mpsc::UnboundedSender<WorkerEvent>,
    /// Attempts the worker has (delivered here, or reported running when it connected).
    delivered: BTreeSet<u64>,
    ticks: u64,
    /// The registration was removed by this actor (so post_stop need not).
    disconnected: bool,
}

/// Why a worker could not connect.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Refused(Rejection),
    #[error("{0}")]
    Unavailable(String),
}

/// Registers the worker in replicated state. Called before the actor starts, so that a refusal
/// reaches the worker as an HTTP error rather than a stream that ends at once.
pub(crate) async fn register(
    ctx: &EngineCtx,
    hello: &WorkerHello,
    session: u64,
    token: Option<String>,
) -> Result<(), ConnectError> {
    validate_worker(&hello.id, &hello.queues, hello.concurrency).map_err(ConnectError::Invalid)?;
    let now = ctx.clock.now_ms();
    let command = Command::ConnectWorker {
        worker_id: hello.id.clone(),
        session,
        node_id: ctx.cluster.node_id(),
        queues: hello.queues.clone(),
        concurrency: hello.concurrency,
        token,
        expires_at_ms: now + ctx.config.worker_registration_ms() as i64,
        at_ms: now,
    };
    match ctx.cluster.propose(command).await {
        Ok(Response::WorkerConnected { replaced, .. }) => {
            if let Some(old) = replaced {
                tracing::info!(worker_id = %hello.id, old_session = old, "worker reconnected; the old connection is replaced");
            }
            Ok(())
        }
        Ok(Response::Rejected(r)) => Err(ConnectError::Refused(r)),
        Ok(other) => Err(ConnectError::Unavailable(format!("unexpected answer: {other:?}"))),
        Err(e) => Err(ConnectError::Unavailable(e.to_string())),
    }
}

impl Actor for WorkerConnectionActor {
    type Msg = ConnMsg;
    type State = ConnState;
    type Arguments = ConnArgs;

    async fn pre_start(&self, myself: ActorRef<ConnMsg>, args: ConnArgs) -> Result<ConnState, ActorProcessingErr> {
        let config = &args.ctx.config;
        let welcome = WorkerEvent::Welcome {
            session: args.session.to_string(),
            node_id: args.ctx.cluster.node_id(),
            heartbeat_interval_ms: config.worker_heartbeat_ms,
            lease_ms: config.worker_lease_ms,
        };
        let _ = args.events.send(welcome);
        let delivered = args.hello.running.iter().filter_map(|id| id.parse().ok()).collect();
        // Pings twice per heartbeat interval: a vanished worker is noticed within one interval.
        myself.send_interval(Duration::from_millis((config.worker_heartbeat_ms / 2).max(1)), || ConnMsg::Tick);
        let _ = myself.cast(ConnMsg::Poke);
        args.ctx.stats.worker_connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(worker_id = %args.worker_id, session = args.session, queues = ?args.hello.queues, concurrency = args.hello.concurrency, "worker connected");
        Ok(ConnState {
            ctx: args.ctx,
            worker_id: args.worker_id,
            session: args.session,
            hello: args.hello,
            token: args.token,
            events: args.events,
            delivered,
            ticks: 0,
            disconnected: false,
        })
    }

    /// Removes the registration (if still this session's) and gives back undelivered attempts.
    async fn post_stop(&self, _: ActorRef<ConnMsg>, state: &mut ConnState) -> Result<(), ActorProcessingErr> {
        state.ctx.stats.worker_connections.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        if state.disconnected {
            return Ok(());
        }
        let release: Vec<u64> = state
            .ctx
            .cluster
            .state()
            .read(|s| s.worker_attempts(&state.worker_id).filter(|id| !state.delivered.contains(id)).collect());
        let command = Command::DisconnectWorker {
            worker_id: state.worker_id.clone(),
            session: state.session,
            release,
            at_ms: state.ctx.clock.now_ms(),
        };
        let (ctx, worker_id) = (state.ctx.clone(), state.worker_id.clone());
        tokio::spawn(async move {
            match ctx.cluster.propose(command).await {
                Ok(Response::WorkerDisconnected { released, .. }) => {
                    tracing::info!(%worker_id, released, "worker disconnected")
                }
                Ok(other) => tracing::debug!(%worker_id, "disconnect: {other:?}"),
                Err(e) => tracing::warn!(%worker_id, "disconnect failed (the registration will expire): {e}"),
            }
        });
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<ConnMsg>,
        message: ConnMsg,
        state: &mut ConnState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ConnMsg::Poke => state.poke(&myself).await,
            ConnMsg::Tick => state.tick(&myself),
            ConnMsg::Close(reason) => {
                tracing::debug!(worker_id = %state.worker_id, "closing the connection: {reason}");
                myself.stop(Some(reason));
            }
        }
        Ok(())
    }
}

/// An attempt leased to this worker that it has not received, ready to send or not sendable.
enum Delivery {
    Send(Box<TaskAssignment>),
    /// Its input could not be rendered: fail it on the worker's behalf.
    Fail(u64, String),
}

impl ConnState {
    fn send(&self, myself: &ActorRef<ConnMsg>, event: WorkerEvent) -> bool {
        if self.events.send(event).is_err() {
            let _ = myself.cast(ConnMsg::Close("the stream closed".into()));
            return false;
        }
        true
    }

    async fn poke(&mut self, myself: &ActorRef<ConnMsg>) {
        let (entry_session, running, deliveries, ended) = self.ctx.cluster.state().read(|s| {
            let entry_session = s.worker(&self.worker_id).map(|w| w.session);
            let running: BTreeSet<u64> = s.worker_attempts(&self.worker_id).collect();
            let deliveries: Vec<Delivery> =
                running.iter().filter(|id| !self.delivered.contains(id)).filter_map(|id| assignment(s, *id)).collect();
            // Attempts the worker has that ended without it: tell it to stop them.
            let ended: Vec<(u64, String)> = self
                .delivered
                .iter()
                .filter(|id| !running.contains(id))
                .filter_map(|id| {
                    let at = s.attempt(*id)?;
                    let attempt = at.attempt();
                    let told = matches!(
                        attempt.status,
                        AttemptStatus::Cancelled | AttemptStatus::TimedOut | AttemptStatus::Lost
                    );
                    told.then(|| (*id, attempt.error.clone().unwrap_or_else(|| attempt.status.to_string())))
                })
                .collect();
            (entry_session, running, deliveries, ended)
        });
        if entry_session.is_some_and(|s| s != self.session) {
            let _ = self.events.send(WorkerEvent::Closing { reason: "the worker connected again elsewhere".into() });
            self.disconnected = true;
            myself.stop(Some("replaced by a newer session".into()));
            return;
        }
        for delivery in deliveries {
            match delivery {
                Delivery::Send(task) => {
                    let Ok(id) = task.attempt_id.parse::<u64>() else { continue };
                    if !self.send(myself, WorkerEvent::Task(*task)) {
                        return;
                    }
                    self.delivered.insert(id);
                }
                Delivery::Fail(attempt_id, error) => {
                    self.delivered.insert(attempt_id);
                    let command = Command::FinishAttempt {
                        attempt_id,
                        by: Reporter::Worker { worker_id: self.worker_id.clone(), token: self.token.clone() },
                        result: AttemptResult::Failed { error, retryable: false },
                        logs: None,
                        jitter_permille: 0,
                        at_ms: self.ctx.clock.now_ms(),
                    };
                    let ctx = self.ctx.clone();
                    tokio::spawn(async move {
                        if let Err(e) = ctx.cluster.propose(command).await {
                            tracing::warn!(attempt_id, "failing an attempt whose input cannot be rendered: {e}");
                        }
                    });
                }
            }
        }
        for (attempt_id, reason) in ended {
            if !self.send(myself, WorkerEvent::Cancel { attempt_id: attempt_id.to_string(), reason }) {
                return;
            }
        }
        self.delivered.retain(|id| running.contains(id));
    }

    fn tick(&mut self, myself: &ActorRef<ConnMsg>) {
        if !self.send(myself, WorkerEvent::Ping) {
            return;
        }
        self.ticks += 1;
        if !self.ticks.is_multiple_of(2) {
            return;
        }
        // Renew the registration; re-register if it lapsed while this node could not commit
        // (a partition), unless the worker connected elsewhere meanwhile.
        let ctx = self.ctx.clone();
        let now = ctx.clock.now_ms();
        let expires_at_ms = now + ctx.config.worker_registration_ms() as i64;
        let renew =
            Command::WorkerSeen { worker_id: self.worker_id.clone(), session: self.session, expires_at_ms, at_ms: now };
        let (hello, session, token, me) = (self.hello.clone(), self.session, self.token.clone(), myself.clone());
        tokio::spawn(async move {
            match ctx.cluster.propose(renew).await {
                Ok(Response::WorkerRenewed { .. }) => {}
                Ok(Response::Rejected(Rejection::WorkerNotConnected { .. })) => {
                    let taken = ctx.cluster.state().read(|s| s.worker(&hello.id).is_some_and(|w| w.session != session));
                    if taken {
                        let _ = me.cast(ConnMsg::Close("replaced by a newer session".into()));
                    } else if let Err(e) = register(&ctx, &hello, session, token).await {
                        tracing::warn!(worker_id = %hello.id, "re-registering a worker failed: {e}");
                    }
                }
                Ok(other) => tracing::debug!(worker_id = %hello.id, "renewal: {other:?}"),
                Err(e) => tracing::debug!(worker_id = %hello.id, "renewal failed: {e}"),
            }
        });
    }
}

/// The assignment for attempt `attempt_id`, with the task's input rendered.
fn assignment(s: &linkloom_core::State, attempt_id: u64) -> Option<Delivery> {
    let at = s.attempt(attempt_id)?;
    let (execution, task, attempt) = (&*at.execution, at.task(), at.attempt());
    let spec = s.execution_spec(execution)?;
    let task_spec = spec.task(&task.id)?;
    let input = match &task_spec.input {
        Some(input) => match (RenderContext { execution }).render_json(&input.0) {
            Ok(v) => v,
            Err(e) => return Some(Delivery::Fail(attempt_id, format!("rendering the task's input: {e}"))),
        },
        None => serde_json::Value::Object(Default::default()),
    };
    Some(Delivery::Send(Box::new(TaskAssignment {
        attempt_id: attempt_id.to_string(),
        attempt: attempt.n,
        execution_id: execution.id.clone(),
        workflow_id: execution.workflow_id.clone(),
        task_id: task.id.clone(),
        queue: task_spec.queue.clone().unwrap_or_default(),
        input,
        params: execution.params.0.clone(),
        lease_expires_at: attempt.lease_expires_at_ms.map(rfc3339),
        deadline: attempt.deadline_ms.map(rfc3339),
    })))
}
