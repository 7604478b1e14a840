//! One worker's life with the cluster: the event stream of its connection, the attempts it runs
//! with their heartbeats, completions retried until the lease ends, drain and shutdown.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use linkloom_wire::worker::{Drain, Heartbeat, Release, TaskAssignment};
use linkloom_wire::TaskAnswer;
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use super::context::{Handler, TaskContext, TaskError, TaskResult};
use super::{StreamEnd, RECONNECT_FIRST, RECONNECT_MAX};
use crate::client::{segment, ApiRequest, Client};
use crate::error::Error;
use crate::protocol::{Ignored, ReconnectReason, StreamAction, StreamDecoder, MAX_EVENT_LINE_BYTES};

/// Heartbeat and lease times, as the node announced them.
#[derive(Clone, Copy)]
pub(super) struct Timing {
    pub(super) heartbeat: Duration,
    pub(super) lease: Duration,
}

/// Called with the node's id when a connection is registered.
pub(super) type OnConnected = Arc<dyn Fn(u64) + Send + Sync>;

/// An attempt this worker runs.
pub(super) struct Running {
    pub(super) cancel: watch::Sender<bool>,
}

pub(super) struct Inner {
    pub(super) client: Client,
    pub(super) id: String,
    pub(super) queues: Vec<String>,
    pub(super) concurrency: u32,
    pub(super) handlers: BTreeMap<String, Handler>,
    pub(super) task_handlers: BTreeMap<(String, String), Handler>,
    pub(super) shutdown_grace: Duration,
    pub(super) on_connected: Option<OnConnected>,
    pub(super) running: Mutex<BTreeMap<String, Running>>,
    pub(super) timing: Mutex<Timing>,
}

impl Inner {
    pub(super) fn running_ids(&self) -> Vec<String> {
        self.running.lock().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect()
    }

    pub(super) fn timing(&self) -> Timing {
        *self.timing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads one connection's events until it ends; answers how, and the session it had.
    /// When `shutdown` fires the worker drains (the cluster stops handing it tasks) and keeps
    /// reading (cancellations still arrive) until its attempts end or the grace runs out.
    pub(super) async fn serve(
        self: &Arc<Self>,
        response: reqwest::Response,
        shutdown: &mut Pin<&mut (impl Future<Output = ()> + Send)>,
    ) -> (StreamEnd, Option<String>) {
        let mut session = None;
        let mut bytes = response.bytes_stream();
        let mut decoder = StreamDecoder::new(MAX_EVENT_LINE_BYTES);
        let mut draining_until: Option<tokio::time::Instant> = None;
        loop {
            if let Some(until) = draining_until {
                if self.running_ids().is_empty() || tokio::time::Instant::now() >= until {
                    return (StreamEnd::Shutdown, session);
                }
            }
            // A silent stream (no ping for three intervals) is a dead or cut-off node.
            let silence = self.timing().heartbeat * 3;
            let tick = if draining_until.is_some() { Duration::from_millis(20) } else { silence };
            let chunk = tokio::select! {
                chunk = tokio::time::timeout(tick, bytes.next()) => chunk,
                _ = &mut *shutdown, if draining_until.is_none() => {
                    self.drain(session.clone()).await;
                    draining_until = Some(tokio::time::Instant::now() + self.shutdown_grace);
                    continue;
                }
            };
            let chunk = match chunk {
                Err(_) if draining_until.is_some() => continue,
                Err(_) => return (StreamEnd::Reconnect(format!("no event for {silence:?}")), session),
                Ok(None) if draining_until.is_some() => return (StreamEnd::Shutdown, session),
                Ok(None) => return (StreamEnd::Reconnect("the node closed the stream".into()), session),
                Ok(Some(Err(_))) if draining_until.is_some() => return (StreamEnd::Shutdown, session),
                Ok(Some(Err(e))) => return (StreamEnd::Reconnect(e.to_string()), session),
                Ok(Some(Ok(chunk))) => chunk,
            };
            let running: BTreeSet<String> = self.running_ids().into_iter().collect();
            for action in decoder.push(&chunk, &running) {
                match action {
                    StreamAction::Welcome { session: s, node_id, heartbeat, lease } => {
                        tracing::info!(worker_id = %self.id, node_id, "connected");
                        *self.timing.lock().unwrap_or_else(|p| p.into_inner()) = Timing { heartbeat, lease };
                        session = Some(s);
                        if let Some(hook) = &self.on_connected {
                            hook(node_id);
                        }
                    }
                    // Handed over before the drain took effect: still ours to run.
                    StreamAction::Run(task) => self.start(*task),
                    StreamAction::AlreadyRunning { .. } => {}
                    StreamAction::Cancel { attempt_id, reason } => {
                        if let Some(running) = self.running.lock().unwrap_or_else(|p| p.into_inner()).get(&attempt_id) {
                            tracing::info!(worker_id = %self.id, attempt_id, "attempt cancelled by the cluster: {reason}");
                            let _ = running.cancel.send(true);
                        }
                    }
                    // A newer server may send events this SDK does not know: skip them.
                    StreamAction::Ignore { why } => {
                        if why != Ignored::Ping && why != Ignored::Blank {
                            tracing::debug!(worker_id = %self.id, "skipping an event: {}", why.as_str());
                        }
                    }
                    StreamAction::Reconnect { why: ReconnectReason::Closing(_) } if draining_until.is_some() => {
                        return (StreamEnd::Shutdown, session)
                    }
                    StreamAction::Reconnect { why: ReconnectReason::Closing(reason) } => {
                        return (StreamEnd::Reconnect(reason), session)
                    }
                    StreamAction::Reconnect { why } => {
                        return (StreamEnd::Reconnect(format!("stream ended: {}", why.as_str())), session)
                    }
                }
            }
        }
    }

    /// Asks the cluster to hand this worker nothing new.
    async fn drain(&self, session: Option<String>) {
        let Some(session) = session else { return };
        let path = format!("/api/v1/workers/{}/drain", segment(&self.id));
        if let Ok(request) = ApiRequest::post(path).json(&Drain { session }) {
            if let Err(e) = self.client.call(&request).await {
                tracing::debug!(worker_id = %self.id, "drain failed: {e}");
            }
        }
    }

    /// Starts running one attempt (unless it already runs here: a redelivery after reconnect).
    fn start(self: &Arc<Self>, task: TaskAssignment) {
        let handler = self
            .task_handlers
            .get(&(task.queue.clone(), task.task_id.clone()))
            .or_else(|| self.handlers.get(&task.queue))
            .cloned();
        let (cancel, cancelled) = watch::channel(false);
        {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            if running.contains_key(&task.attempt_id) {
                return;
            }
            running.insert(task.attempt_id.clone(), Running { cancel });
        }
        let inner = self.clone();
        tokio::spawn(async move {
            let attempt_id = task.attempt_id.clone();
            let context = TaskContext { task: Arc::new(task), pending: Arc::default(), cancelled: cancelled.clone() };
            let result = match handler {
                Some(handler) => inner.run_with_heartbeats(handler, context.clone()).await,
                None => Some(Err(TaskError::fatal(format!(
                    "worker `{}` has no handler for task `{}` of queue `{}`",
                    inner.id, context.task.task_id, context.task.queue
                )))),
            };
            // A cancelled attempt's fate is decided (cancelled, timed out, lost, or given back
            // at shutdown): its result would be refused, so it is not sent.
            match result {
                Some(result) if !context.is_cancelled() => inner.complete(&context, result).await,
                _ => {}
            }
            inner.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&attempt_id);
        });
    }

    /// Runs the handler while heartbeating; `None` if the lease was lost (nothing to report).
    async fn run_with_heartbeats(&self, handler: Handler, context: TaskContext) -> Option<TaskResult> {
        let work = handler(context.clone());
        let mut work = std::pin::pin!(work);
        loop {
            let interval = self.timing().heartbeat;
            tokio::select! {
                result = &mut work => return Some(result),
                _ = tokio::time::sleep(interval) => {
                    if !self.heartbeat(&context).await {
                        // The attempt is no longer ours: its cancellation is signalled; give the
                        // handler up to one lease length to see it and wind down, then drop it.
                        // Its result is not reported either way.
                        let _ = tokio::time::timeout(self.timing().lease, &mut work).await;
                        return None;
                    }
                }
            }
        }
    }

    /// Sends one heartbeat; `false` once the cluster says the attempt is no longer this
    /// worker's (409), which also cancels the handler.
    async fn heartbeat(&self, context: &TaskContext) -> bool {
        let pending = context.take_pending();
        let beat = Heartbeat { progress: pending.progress, logs: Some(pending.logs).filter(|l| !l.is_empty()) };
        let path = self.attempt_path(&context.task.attempt_id, "heartbeat");
        let request = match ApiRequest::post(path).json(&beat) {
            Ok(r) => r,
            Err(_) => return true,
        };
        match self.client.call(&request).await {
            Ok(_) => true,
            Err(e) if e.is_conflict() || e.is_not_found() => {
                tracing::warn!(worker_id = %self.id, attempt_id = %context.task.attempt_id, "lease lost: {e}");
                if let Some(running) =
                    self.running.lock().unwrap_or_else(|p| p.into_inner()).get(&context.task.attempt_id)
                {
                    let _ = running.cancel.send(true);
                }
                false
            }
            // The node is unreachable: keep working, the next heartbeat may get through.
            Err(e) => {
                tracing::debug!(worker_id = %self.id, "heartbeat failed: {e}");
                true
            }
        }
    }

    fn attempt_path(&self, attempt_id: &str, what: &str) -> String {
        format!("/api/v1/workers/{}/attempts/{}/{what}", segment(&self.id), segment(attempt_id))
    }

    /// Reports the result, retrying through node failures until the lease would have expired.
    async fn complete(&self, context: &TaskContext, result: TaskResult) {
        let logs = context.take_pending().logs;
        let answer = match result {
            Ok(output) => TaskAnswer::succeeded(output),
            Err(e) => TaskAnswer::failed(e.message(), e.is_retryable()),
        };
        let answer = if logs.is_empty() { answer } else { answer.with_logs(logs) };
        let Ok(body) = serde_json::to_value(&answer) else { return };
        let attempt_id = &context.task.attempt_id;
        let path = self.attempt_path(attempt_id, "complete");
        self.post_until_lease_ends(&path, &body, "completion").await;
    }

    /// POSTs `body`, retrying transport failures (the node died mid-request) until one lease
    /// length has passed; a 409 after a retry means the first try got through.
    async fn post_until_lease_ends(&self, path: &str, body: &Value, what: &str) {
        let Ok(request) = ApiRequest::post(path.to_string()).json(body) else { return };
        let deadline = tokio::time::Instant::now() + self.timing().lease;
        let mut pause = RECONNECT_FIRST;
        let mut retried = false;
        loop {
            match self.client.call(&request).await {
                Ok(_) => return,
                Err(e) if e.is_conflict() => {
                    if retried {
                        tracing::debug!(worker_id = %self.id, path, "{what} refused after a retry (the first try likely applied): {e}");
                    } else {
                        tracing::warn!(worker_id = %self.id, path, "{what} refused: {e}");
                    }
                    return;
                }
                // Rate limited (429) is worth waiting out; other client errors are final.
                Err(e @ Error::Api { status: 400..=428 | 430..=499, .. }) => {
                    tracing::warn!(worker_id = %self.id, path, "{what} refused: {e}");
                    return;
                }
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    tracing::warn!(worker_id = %self.id, path, "{what} not delivered; the lease will expire: {e}");
                    return;
                }
                Err(e) => {
                    tracing::debug!(worker_id = %self.id, path, "{what} failed, retrying: {e}");
                    retried = true;
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(RECONNECT_MAX);
                    let next = self.client.advance(self.client.current());
                    self.client.set_current(next);
                }
            }
        }
    }

    /// Gives back the attempts still running after the drain (or, when the shutdown came while
    /// disconnected, waits out the grace for them first).
    pub(super) async fn shut_down(self: &Arc<Self>, drained: bool) -> Result<(), Error> {
        if !drained {
            let deadline = tokio::time::Instant::now() + self.shutdown_grace;
            while !self.running_ids().is_empty() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let left = self.running_ids();
        let (done, mut finished) = mpsc::unbounded_channel::<()>();
        for attempt_id in &left {
            if let Some(running) = self.running.lock().unwrap_or_else(|p| p.into_inner()).remove(attempt_id) {
                let _ = running.cancel.send(true);
            }
            let (inner, attempt_id, done) = (self.clone(), attempt_id.clone(), done.clone());
            tokio::spawn(async move {
                let body = serde_json::to_value(Release { reason: Some("the worker shut down".into()) })
                    .unwrap_or(Value::Null);
                inner.post_until_lease_ends(&inner.attempt_path(&attempt_id, "release"), &body, "release").await;
                let _ = done.send(());
            });
        }
        drop(done);
        while finished.recv().await.is_some() {}
        tracing::info!(worker_id = %self.id, released = left.len(), "worker stopped");
        Ok(())
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub(super) async fn termination() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
