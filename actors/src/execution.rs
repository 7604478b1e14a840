//! `ExecutionActor`: drives one execution on the node that owns it.
//!
//! On every poke (replicated state changed, or a timer it set) it compares the execution in
//! replicated state with the attempts this node runs (kept in the node's [`AttemptRegistry`],
//! outside the actor, so a restarted actor adopts them instead of losing them): it reports attempts nobody runs any more as
//! lost (after a restart or a takeover), times out attempts waiting for a callback, starts every
//! ready task, and sets a timer for the next retry or deadline. It holds no truth of its own: after
//! a crash it is rebuilt from replicated state.
//!
//! Each attempt runs in an `attempt` span. When `loom-node` exports traces, that span joins the
//! execution's trace, whose ids are derived from the execution id alone ([`execution_trace`]), so
//! every attempt of an execution lands in one trace on whichever node runs it, before and after
//! a failover, with nothing replicated for it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use linkloom_core::render::RenderContext;
use linkloom_core::spec::{ShellCommand, TaskKind, WorkflowSpec};
use linkloom_core::state::{AttemptResult, AttemptStatus, Execution, Reporter, TaskStatus};
use linkloom_core::{Command, Response};
use linkloom_raft::{Draw, Entropy};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use sha2::Digest;
use tokio::sync::watch;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::executor::{run_http, run_shell, AttemptInfo, Outcome};
use crate::EngineCtx;

pub(crate) struct ExecutionActor;

pub(crate) enum ExecMsg {
    /// Look at replicated state again.
    Poke,
}

pub(crate) struct ExecArgs {
    pub(crate) id: String,
    pub(crate) ctx: Arc<EngineCtx>,
}

/// An attempt this node runs.
pub(crate) struct Local {
    task_id: String,
    phase: Phase,
}

enum Phase {
    /// The executor runs it; `true` on the channel (or dropping it) stops the executor.
    Running { cancel: watch::Sender<bool> },
    /// An HTTP backend answered 202: wait for its callback until the deadline.
    AwaitingCallback { deadline_ms: i64 },
}

/// The attempts each execution has running on this node, by execution id, then attempt id.
/// It outlives execution actors: one that panics is restarted and finds its attempts here.
#[derive(Default)]
pub(crate) struct AttemptRegistry(std::sync::Mutex<BTreeMap<String, BTreeMap<u64, Local>>>);

impl AttemptRegistry {
    /// The attempts an executor runs on this node now (execution id, attempt id); not those
    /// waiting for a backend's callback.
    pub(crate) fn running(&self) -> Vec<(String, u64)> {
        let guard = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        guard
            .iter()
            .flat_map(|(execution, attempts)| {
                attempts
                    .iter()
                    .filter(|(_, local)| matches!(local.phase, Phase::Running { .. }))
                    .map(move |(id, _)| (execution.clone(), *id))
            })
            .collect()
    }

    /// Stops the executor of an attempt (a shell attempt's processes are killed) and forgets it.
    pub(crate) fn abandon(&self, execution_id: &str, attempt_id: u64) {
        self.with(execution_id, |local| {
            if let Some(Local { phase: Phase::Running { cancel }, .. }) = local.remove(&attempt_id) {
                let _ = cancel.send(true);
            }
        });
    }

    /// Runs `f` on the attempts of `execution_id` (never held across an await).
    fn with<R>(&self, execution_id: &str, f: impl FnOnce(&mut BTreeMap<u64, Local>) -> R) -> R {
        let mut guard = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let attempts = guard.entry(execution_id.to_string()).or_default();
        let result = f(attempts);
        if attempts.is_empty() {
            guard.remove(execution_id);
        }
        result
    }
}

/// Counts a poke that may start attempts, from before it checks the drain flag until the
/// attempts it started are in the registry.
struct StartGuard<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> StartGuard<'a> {
    fn enter(ctx: &'a EngineCtx) -> Self {
        ctx.starting.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        StartGuard(&ctx.starting)
    }
}

impl Drop for StartGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

pub(crate) struct ExecState {
    id: String,
    ctx: Arc<EngineCtx>,
    timer: Option<tokio::task::JoinHandle<()>>,
}

impl Actor for ExecutionActor {
    type Msg = ExecMsg;
    type State = ExecState;
    type Arguments = ExecArgs;

    async fn pre_start(&self, myself: ActorRef<ExecMsg>, args: ExecArgs) -> Result<ExecState, ActorProcessingErr> {
        let _ = myself.cast(ExecMsg::Poke);
        Ok(ExecState { id: args.id, ctx: args.ctx, timer: None })
    }

    /// A normal stop (the execution ended or moved) stops its attempts here. After a panic this
    /// is not called, and the restarted actor adopts the attempts from the registry.
    async fn post_stop(&self, _myself: ActorRef<ExecMsg>, state: &mut ExecState) -> Result<(), ActorProcessingErr> {
        state.ctx.attempts.with(&state.id, |attempts| {
            for local in attempts.values() {
                if let Phase::Running { cancel } = &local.phase {
                    let _ = cancel.send(true);
                }
            }
            attempts.clear();
        });
        if let Some(timer) = state.timer.take() {
            timer.abort();
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<ExecMsg>,
        message: ExecMsg,
        state: &mut ExecState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ExecMsg::Poke => state.poke(&myself).await,
        }
        Ok(())
    }
}

impl ExecState {
    async fn poke(&mut self, myself: &ActorRef<ExecMsg>) {
        let ctx = self.ctx.clone();
        let pokes = ctx.stats.pokes.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if ctx.config.chaos_panic_every.is_some_and(|n| n > 0 && pokes.is_multiple_of(n)) {
            panic!("chaos: injected panic in execution actor {} (LOOM_CHAOS_ACTOR_PANIC_EVERY)", self.id);
        }
        let me = ctx.cluster.node_id();
        let now = ctx.clock.now_ms();
        let view = ctx.cluster.state().read(|s| {
            let e = s.execution(&self.id)?;
            let spec = s.execution_spec(&e)?.clone();
            Some((e.into_owned(), spec, s.ready_tasks(&self.id, now)))
        });
        let Some((execution, spec, ready)) = view else {
            myself.stop(Some("execution gone".into()));
            return;
        };
        if execution.status.is_terminal() || execution.owner != Some(me) {
            // Cancelled, finished or moved: stop whatever still runs here.
            myself.stop(Some(format!("execution {} (owner {:?})", execution.status, execution.owner)));
            return;
        }

        // Past the execution's deadline: fail it (apply checks the deadline again).
        let deadline = spec.execution_timeout.map(|t| execution.created_at_ms + t.as_millis() as i64);
        if let Some(deadline) = deadline.filter(|d| *d <= now) {
            let command = Command::TimeOutExecution { execution_id: self.id.clone(), at_ms: now };
            match ctx.cluster.propose(command).await {
                Ok(Response::ExecutionTimedOut { .. }) => {
                    tracing::info!(execution_id = %self.id, deadline, "execution timed out")
                }
                Ok(other) => tracing::debug!(execution_id = %self.id, "time-out refused: {other:?}"),
                Err(e) => tracing::warn!(execution_id = %self.id, "time-out failed: {e}"),
            }
            return;
        }

        // Attempts running in replicated state but not here were lost (restart or takeover);
        // callbacks past their deadline timed out; local entries for ended attempts are dropped.
        // Worker attempts are not this node's: their leases decide their fate.
        let running: BTreeMap<u64, u64> = execution
            .tasks
            .iter()
            .filter_map(|t| t.attempts.last())
            .filter(|a| a.status == AttemptStatus::Running && a.worker_id.is_none())
            .map(|a| (a.id, a.node_id))
            .collect();
        // This node's view may lag its own proposals (a follower applies after the leader
        // answered), so a local attempt is forgotten only once state shows it ended.
        let known: Vec<u64> = execution.tasks.iter().flat_map(|t| t.attempts.iter().map(|a| a.id)).collect();
        let mut endings = Vec::new();
        self.ctx.attempts.with(&self.id, |local| {
            local.retain(|id, _| running.contains_key(id) || !known.contains(id));
            for (&attempt_id, &node_id) in &running {
                match local.get(&attempt_id).map(|l| &l.phase) {
                    None => {
                        let reason = if node_id == me {
                            "the node restarted while the attempt ran".to_string()
                        } else {
                            format!("node {node_id}, which ran the attempt, lost ownership of the execution")
                        };
                        endings.push((attempt_id, AttemptResult::Lost { reason }));
                    }
                    Some(Phase::AwaitingCallback { deadline_ms }) if *deadline_ms <= now => {
                        endings.push((attempt_id, AttemptResult::TimedOut));
                    }
                    Some(_) => {}
                }
            }
            for (attempt_id, _) in &endings {
                local.remove(attempt_id);
            }
        });
        for (attempt_id, result) in endings {
            finish(&ctx, attempt_id, result, None).await;
        }

        // A node that is shutting down starts nothing more (see `EngineHandle::drain`). The guard
        // is taken before the flag is read, so a drain that sets the flag either stops this start
        // or waits for it (and then for the attempt it began).
        let starting = StartGuard::enter(&ctx);
        if ctx.draining.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }

        // Start every ready task (worker tasks wait for the leader's dispatcher to hand them to a
        // worker), except those this node already runs but its lagging view does not show yet.
        let busy: Vec<String> =
            self.ctx.attempts.with(&self.id, |local| local.values().map(|l| l.task_id.clone()).collect());
        let starts = ready
            .iter()
            .filter(|t| !busy.contains(t))
            .filter(|t| spec.task(t).is_some_and(|ts| ts.kind != TaskKind::Worker))
            .map(|task| {
                // An HTTP attempt gets a callback token of its own: only its backend, which
                // receives it with the request, may call back or heartbeat (only the hash is
                // replicated).
                let is_http = spec.task(task).is_some_and(|ts| ts.kind == TaskKind::Http);
                let callback_token = is_http.then(|| new_callback_token(&*ctx.entropy));
                let command = Command::StartAttempt {
                    execution_id: self.id.clone(),
                    task_id: task.clone(),
                    node_id: me,
                    worker_id: None,
                    lease_expires_at_ms: None,
                    callback_token_hash: callback_token.as_deref().map(linkloom_core::state::secret_hash),
                    at_ms: now,
                };
                let ctx = ctx.clone();
                async move { (task.clone(), callback_token, ctx.cluster.propose(command).await) }
            });
        for (task_id, callback_token, answer) in futures::future::join_all(starts).await {
            match answer {
                Ok(Response::AttemptStarted { attempt_id, n }) => {
                    if let Some(run) = execution.task(&task_id) {
                        ctx.stats.dispatch_latency.observe_ms(now - execution.ready_since_ms(&spec, run));
                    }
                    let (cancel, cancelled) = watch::channel(false);
                    let local = Local { task_id: task_id.clone(), phase: Phase::Running { cancel } };
                    self.ctx.attempts.with(&self.id, |attempts| attempts.insert(attempt_id, local));
                    let info = AttemptInfo {
                        execution_id: self.id.clone(),
                        workflow_id: execution.workflow_id.clone(),
                        task_id: task_id.clone(),
                        attempt_id,
                        n,
                        started_at_ms: now,
                        timeout: spec
                            .task(&task_id)
                            .and_then(|t| spec.task_timeout(t))
                            .map(|d| Duration::from_millis(d.as_millis())),
                    };
                    let kind = spec.task(&task_id).map(|t| t.kind);
                    let prepared = prepare(&ctx, &execution, &spec, &task_id, attempt_id, callback_token);
                    tokio::spawn(run_attempt(ctx.clone(), myself.clone(), info, kind, prepared, cancelled));
                }
                Ok(Response::Rejected(r)) => tracing::debug!(execution_id = %self.id, task_id, "start refused: {r}"),
                Ok(other) => {
                    tracing::warn!(execution_id = %self.id, task_id, "unexpected answer to a start: {other:?}")
                }
                Err(e) => tracing::warn!(execution_id = %self.id, task_id, "start failed: {e}"),
            }
        }
        drop(starting);

        // Wake for the earliest retry or callback deadline.
        let retry_at =
            execution.tasks.iter().filter(|t| t.status == TaskStatus::Retrying).filter_map(|t| t.retry_at_ms);
        let deadlines: Vec<i64> = self.ctx.attempts.with(&self.id, |local| {
            local
                .values()
                .filter_map(|l| match l.phase {
                    Phase::AwaitingCallback { deadline_ms } => Some(deadline_ms),
                    Phase::Running { .. } => None,
                })
                .collect()
        });
        if let Some(at) = retry_at.chain(deadlines).chain(deadline).min() {
            if let Some(old) = self.timer.take() {
                old.abort();
            }
            let delay = Duration::from_millis((at - now).clamp(1, 60_000) as u64);
            let me = myself.clone();
            self.timer = Some(tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = me.cast(ExecMsg::Poke);
            }));
        }
    }
}

/// What an attempt will run, with templates rendered (or why they could not be).
enum Prepared {
    Http(crate::executor::HttpCall),
    Shell(crate::executor::ShellCall),
    Invalid(String),
}

/// A fresh callback token: 256 random bits in hex.
fn new_callback_token(entropy: &dyn Entropy) -> String {
    let mut bytes = [0u8; 32];
    // The engine's entropy: a ChaCha generator seeded from the OS (from the run's seed only in
    // simulations).
    entropy.fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    // A recognisable prefix, so secret scanners and log filters can find a leaked one.
    format!("loomcb_{hex}")
}

fn prepare(
    ctx: &EngineCtx,
    execution: &Execution,
    spec: &WorkflowSpec,
    task_id: &str,
    attempt_id: u64,
    callback_token: Option<String>,
) -> Prepared {
    let Some(task) = spec.task(task_id) else { return Prepared::Invalid(format!("task `{task_id}` not in the spec")) };
    let render = RenderContext { execution };
    let rendered = (|| -> Result<Prepared, linkloom_core::render::RenderError> {
        Ok(match task.kind {
            TaskKind::Http => {
                let signing_key = match &spec.signing_key {
                    None => ctx
                        .config
                        .signing_secret
                        .clone()
                        .map(|secret| (linkloom_wire::signature::DEFAULT_KEY_ID.to_string(), secret)),
                    Some(key) => match ctx.config.signing_keys.get(key) {
                        Some(secret) => Some((key.clone(), secret.clone())),
                        None => {
                            return Ok(Prepared::Invalid(format!(
                                "signing key `{key}` is not configured on node {} (LOOM_SIGNING_KEYS)",
                                ctx.cluster.node_id()
                            )))
                        }
                    },
                };
                let mut headers = BTreeMap::new();
                for (k, v) in &task.headers {
                    headers.insert(k.clone(), render.render_str(v)?);
                }
                Prepared::Http(crate::executor::HttpCall {
                    method: task.method.clone().unwrap_or_else(|| "POST".into()),
                    url: render.render_url(task.url.as_deref().unwrap_or_default())?,
                    headers,
                    input: match &task.input {
                        Some(input) => render.render_json(&input.0)?,
                        None => serde_json::Value::Object(Default::default()),
                    },
                    params: execution.params.0.clone(),
                    callback_url: format!(
                        "{}://{}/api/v1/tasks/{attempt_id}/callback",
                        ctx.config.api_scheme,
                        ctx.cluster.advertise_addr()
                    ),
                    callback_token: callback_token.unwrap_or_default(),
                    signing_key,
                })
            }
            TaskKind::Shell => {
                let argv = match &task.command {
                    Some(ShellCommand::Argv(argv)) => {
                        argv.iter().map(|a| render.render_str(a)).collect::<Result<_, _>>()?
                    }
                    Some(ShellCommand::Script(script)) => {
                        vec!["sh".into(), "-c".into(), render.render_shell_script(script)?]
                    }
                    None => Vec::new(),
                };
                let mut env = BTreeMap::new();
                for (k, v) in &task.env {
                    env.insert(k.clone(), render.render_str(v)?);
                }
                if let Some(input) = &task.input {
                    env.insert("LOOM_INPUT".into(), render.render_json(&input.0)?.to_string());
                }
                Prepared::Shell(crate::executor::ShellCall { argv, env, workdir: task.workdir.clone() })
            }
            TaskKind::Worker => Prepared::Invalid("worker tasks are pulled by workers".into()),
        })
    })();
    rendered.unwrap_or_else(|e| Prepared::Invalid(e.to_string()))
}

async fn run_attempt(
    ctx: Arc<EngineCtx>,
    myself: ActorRef<ExecMsg>,
    info: AttemptInfo,
    kind: Option<TaskKind>,
    prepared: Prepared,
    cancelled: watch::Receiver<bool>,
) {
    // Instrumented, not entered: a span guard held across an await would tag whatever else the
    // thread polls meanwhile (other attempts, other nodes in the simulation) with this attempt.
    let span =
        tracing::info_span!("attempt", execution_id = %info.execution_id, task_id = %info.task_id, attempt = info.n);
    let traced = trace_attempt(&span, &info, kind);
    let end = tracing::Instrument::instrument(attempt_body(ctx, myself, info, prepared, cancelled), span.clone()).await;
    if traced {
        end.record(&span);
    }
}

/// How an attempt's run on this node ended, for its trace.
enum AttemptEnd {
    /// Reported to the state machine as this (which may still refuse it, after a takeover).
    Reported(&'static str, Option<String>),
    /// An HTTP backend accepted it (202); its callback will end it.
    AwaitingCallback,
    /// Cancelled, or its actor stopped: replicated state decides what became of it.
    Abandoned,
}

impl AttemptEnd {
    fn reported(result: &AttemptResult) -> AttemptEnd {
        match result {
            AttemptResult::Succeeded { .. } => AttemptEnd::Reported("succeeded", None),
            AttemptResult::Failed { error, .. } => AttemptEnd::Reported("failed", Some(error.clone())),
            AttemptResult::TimedOut => AttemptEnd::Reported("timed_out", Some("ran past its timeout".into())),
            AttemptResult::Lost { reason } => AttemptEnd::Reported("lost", Some(reason.clone())),
            AttemptResult::Released { .. } => AttemptEnd::Reported("released", None),
        }
    }

    /// `loom.attempt.status` on the span, and an error status for a failure.
    fn record(self, span: &tracing::Span) {
        let (status, error) = match self {
            AttemptEnd::Reported(status, error) => (status, error),
            AttemptEnd::AwaitingCallback => ("awaiting_callback", None),
            AttemptEnd::Abandoned => ("abandoned", None),
        };
        span.set_attribute("loom.attempt.status", status);
        if let Some(error) = error {
            span.set_status(opentelemetry::trace::Status::error(error));
        }
    }
}

/// The trace every attempt of `execution_id` belongs to: trace id the first 16 bytes of the
/// SHA-256 of the execution id, parent span id the next 8 (an "execution" span that is never
/// sent itself). Any node computes the same ids, so a failover keeps the trace.
pub(crate) fn execution_trace(execution_id: &str) -> opentelemetry::trace::SpanContext {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    let digest = sha2::Sha256::digest(execution_id.as_bytes());
    let mut trace_id = [0u8; 16];
    trace_id.copy_from_slice(&digest[..16]);
    let mut span_id = [0u8; 8];
    span_id.copy_from_slice(&digest[16..24]);
    // All-zero ids are invalid; a digest that begins so is not going to happen, but stay valid.
    if trace_id == [0; 16] {
        trace_id[15] = 1;
    }
    if span_id == [0; 8] {
        span_id[7] = 1;
    }
    let (trace_id, span_id) = (TraceId::from_bytes(trace_id), SpanId::from_bytes(span_id));
    SpanContext::new(trace_id, span_id, TraceFlags::SAMPLED, true, TraceState::default())
}

/// Puts an attempt's span into its execution's trace, with the attempt's attributes, if traces
/// are exported; answers whether they are. Without an exporter `set_parent` finds no layer and
/// nothing else is done.
fn trace_attempt(span: &tracing::Span, info: &AttemptInfo, kind: Option<TaskKind>) -> bool {
    use opentelemetry::trace::TraceContextExt;
    let parent = opentelemetry::Context::new().with_remote_span_context(execution_trace(&info.execution_id));
    if span.set_parent(parent).is_err() {
        return false;
    }
    span.set_attribute("loom.execution_id", info.execution_id.clone());
    span.set_attribute("loom.workflow_id", info.workflow_id.clone());
    span.set_attribute("loom.task_id", info.task_id.clone());
    span.set_attribute("loom.attempt", i64::from(info.n));
    if let Some(kind) = kind {
        span.set_attribute("loom.task.kind", kind.to_string());
    }
    true
}

async fn attempt_body(
    ctx: Arc<EngineCtx>,
    myself: ActorRef<ExecMsg>,
    info: AttemptInfo,
    prepared: Prepared,
    mut cancelled: watch::Receiver<bool>,
) -> AttemptEnd {
    let outcome = match prepared {
        Prepared::Invalid(error) => {
            Outcome::Done { result: AttemptResult::Failed { error, retryable: false }, logs: None }
        }
        // A cancel (or the actor's death) abandons the attempt without a report: its fate is
        // decided in replicated state (cancelled, or lost when the next owner looks).
        Prepared::Http(call) => {
            tokio::select! {
                biased;
                _ = cancelled.wait_for(|c| *c) => return AttemptEnd::Abandoned,
                outcome = run_http(&*ctx.http, &ctx.targets, &info, call) => outcome,
            }
        }
        Prepared::Shell(call) => match run_shell(ctx.clone(), &info, call, cancelled).await {
            Some(outcome) => outcome,
            None => return AttemptEnd::Abandoned,
        },
    };
    match outcome {
        Outcome::AwaitCallback { deadline_ms } => {
            ctx.attempts.with(&info.execution_id, |local| {
                if let Some(attempt) = local.get_mut(&info.attempt_id) {
                    attempt.phase = Phase::AwaitingCallback { deadline_ms };
                }
            });
            let _ = myself.cast(ExecMsg::Poke);
            AttemptEnd::AwaitingCallback
        }
        Outcome::Done { result, logs } => {
            let end = AttemptEnd::reported(&result);
            finish(&ctx, info.attempt_id, result, logs).await;
            ctx.attempts.with(&info.execution_id, |local| local.remove(&info.attempt_id));
            end
        }
    }
}

/// Proposes the end of an attempt; a refusal (stale attempt) is expected after a takeover.
pub(crate) async fn finish(ctx: &EngineCtx, attempt_id: u64, result: AttemptResult, logs: Option<String>) {
    let jitter_permille = rand::Rng::gen_range(&mut Draw(&*ctx.entropy), 0..=1000);
    let at_ms = ctx.clock.now_ms();
    let command = Command::FinishAttempt { attempt_id, by: Reporter::Owner, result, logs, jitter_permille, at_ms };
    match ctx.cluster.propose(command).await {
        Ok(Response::AttemptFinished { task_status, execution_status }) => {
            tracing::info!(attempt_id, %task_status, %execution_status, "attempt finished");
        }
        Ok(Response::Rejected(r)) => tracing::info!(attempt_id, "finish refused: {r}"),
        Ok(other) => tracing::warn!(attempt_id, "unexpected answer to a finish: {other:?}"),
        Err(e) => tracing::warn!(attempt_id, "finish failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_executions_trace_ids_come_from_its_id_alone() {
        let a = execution_trace("exec-0001");
        assert_eq!(a, execution_trace("exec-0001"), "every node derives the same ids");
        assert!(a.is_valid() && a.is_remote() && a.is_sampled());
        // SHA-256("exec-0001"): the first 16 bytes are the trace id, the next 8 the parent span id
        // (docs/deployment.md promises this rule: operators look traces up by it).
        assert_eq!(a.trace_id().to_string(), "9381f094b508172d721b13273cbc9b35");
        assert_eq!(a.span_id().to_string(), "89b27b7d42e728d3");
        assert_ne!(a.trace_id(), execution_trace("exec-0002").trace_id());
    }
}
