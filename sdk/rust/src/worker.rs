//! Workers: run `type: worker` tasks inside your own service, pulled from the cluster.
//!
//! A [`Worker`] opens one connection to a node (any node in the client's list) and receives the
//! tasks the cluster leases to it on that connection. It runs each with the handler registered
//! for the task's queue (or for that queue and task id), heartbeats running attempts so their
//! leases stay alive, and reports each result. If its node goes away it connects to the next one
//! and tells it which attempts it is still running, so their leases survive the move.
//!
//! Delivery is at-least-once across attempts: a worker that loses its lease (it was cut off for
//! longer than the lease) sees its late result refused, and the task runs again elsewhere. Within
//! one attempt, a handler runs once. Handlers should therefore be idempotent, or use the
//! execution and task ids as an idempotency key.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use linkloom_wire::worker::{Drain, Heartbeat, Release, TaskAssignment, WorkerEvent, WorkerHello};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};

use crate::client::{segment, ApiRequest, Client};
use crate::error::Error;

/// The longest a line of the event stream may be (a task's input is at most 64 KiB).
const MAX_EVENT_LINE_BYTES: usize = 4 * 1024 * 1024;
/// Pauses between reconnects grow from the first to the last.
const RECONNECT_FIRST: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(2);

/// What a handler answers: the task's output, or why it failed.
///
/// ```
/// fn answer(rows: u64) -> linkloom::TaskResult {
///     if rows == 0 {
///         return Err(linkloom::TaskError::fatal("nothing to load"));
///     }
///     Ok(serde_json::json!({"rows": rows}))
/// }
/// assert!(answer(3).is_ok());
/// ```
pub type TaskResult = Result<Value, TaskError>;

type Handler = Arc<dyn Fn(TaskContext) -> Pin<Box<dyn Future<Output = TaskResult> + Send>> + Send + Sync>;

/// A task failure. Retryable failures are retried per the task's retry policy; fatal ones fail
/// the task at once.
///
/// ```
/// use linkloom::TaskError;
/// let e = TaskError::fatal("the invoice does not exist");
/// assert!(!e.is_retryable());
/// // Any std error converts (retryable), so `?` works in handlers.
/// let parsed: Result<u32, TaskError> = "x".parse::<u32>().map_err(TaskError::from);
/// assert!(parsed.unwrap_err().is_retryable());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskError {
    message: String,
    retryable: bool,
}

impl TaskError {
    /// A failure worth retrying (a timeout, an unavailable dependency).
    ///
    /// ```
    /// assert!(linkloom::TaskError::retryable("database busy").is_retryable());
    /// ```
    pub fn retryable(message: impl Into<String>) -> Self {
        TaskError { message: message.into(), retryable: true }
    }

    /// A failure no retry will fix (bad input): the task fails now.
    ///
    /// ```
    /// assert!(!linkloom::TaskError::fatal("no such customer").is_retryable());
    /// ```
    pub fn fatal(message: impl Into<String>) -> Self {
        TaskError { message: message.into(), retryable: false }
    }

    /// Whether the task may be retried.
    ///
    /// ```
    /// assert!(linkloom::TaskError::retryable("x").is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// The message recorded as the attempt's error.
    ///
    /// ```
    /// assert_eq!(linkloom::TaskError::fatal("bad").message(), "bad");
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for TaskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for TaskError {
    fn from(e: E) -> Self {
        TaskError::retryable(e.to_string())
    }
}

/// Log text and progress an attempt produced since its last heartbeat.
#[derive(Default)]
struct Pending {
    logs: String,
    progress: Option<Value>,
}

/// What a handler gets: the task, a way to log and report progress, and a cancellation signal.
///
/// ```no_run
/// # async fn demo(task: linkloom::TaskContext) -> linkloom::TaskResult {
/// #[derive(serde::Deserialize)]
/// struct Invoice { id: String }
/// let invoice: Invoice = task.input_as()?;
/// task.log(format!("charging {}", invoice.id));
/// task.progress(serde_json::json!({"step": 1, "of": 2}));
/// if task.is_cancelled() {
///     return Err(linkloom::TaskError::retryable("stopped"));
/// }
/// Ok(serde_json::json!({"charged": invoice.id}))
/// # }
/// ```
#[derive(Clone)]
pub struct TaskContext {
    task: Arc<TaskAssignment>,
    pending: Arc<Mutex<Pending>>,
    cancelled: watch::Receiver<bool>,
}

impl TaskContext {
    /// The task's input, templates rendered.
    ///
    /// ```no_run
    /// # fn demo(task: linkloom::TaskContext) {
    /// let rows = task.input()["rows"].as_u64();
    /// # }
    /// ```
    pub fn input(&self) -> &Value {
        &self.task.input
    }

    /// The input decoded as `T`; a mismatch is a fatal [`TaskError`] (retrying will not fix it).
    ///
    /// ```no_run
    /// # fn demo(task: linkloom::TaskContext) -> Result<(), linkloom::TaskError> {
    /// let input: std::collections::BTreeMap<String, u32> = task.input_as()?;
    /// # Ok(()) }
    /// ```
    pub fn input_as<T: DeserializeOwned>(&self) -> Result<T, TaskError> {
        serde_json::from_value(self.task.input.clone()).map_err(|e| TaskError::fatal(format!("task input: {e}")))
    }

    /// The execution's params.
    ///
    /// ```no_run
    /// # fn demo(task: linkloom::TaskContext) {
    /// let region = task.params()["region"].as_str().unwrap_or("eu");
    /// # }
    /// ```
    pub fn params(&self) -> &Value {
        &self.task.params
    }

    /// The whole assignment as the node sent it (ids, queue, lease, deadline).
    ///
    /// ```no_run
    /// # fn demo(task: linkloom::TaskContext) {
    /// println!("{} / {} attempt {}", task.assignment().execution_id, task.assignment().task_id, task.assignment().attempt);
    /// # }
    /// ```
    pub fn assignment(&self) -> &TaskAssignment {
        &self.task
    }

    /// Appends a line to the attempt's log (sent with the next heartbeat or the result).
    ///
    /// ```no_run
    /// # fn demo(task: linkloom::TaskContext) {
    /// task.log("fetched 200 rows");
    /// # }
    /// ```
    pub fn log(&self, line: impl AsRef<str>) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.logs.push_str(line.as_ref());
        if !line.as_ref().ends_with('\n') {
            pending.logs.push('\n');
        }
    }

    /// Reports progress (any JSON), shown with the attempt after the next heartbeat.
    ///
    /// ```no_run
    /// # fn demo(task: linkloom::TaskContext) {
    /// task.progress(serde_json::json!(0.5));
    /// # }
    /// ```
    pub fn progress(&self, progress: Value) {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).progress = Some(progress);
    }

    /// Whether the attempt was cancelled (the execution was cancelled, the task timed out, the
    /// lease was lost, or the worker is shutting down past its grace).
    ///
    /// ```no_run
    /// # fn demo(task: linkloom::TaskContext) {
    /// while !task.is_cancelled() { /* one more batch */ break; }
    /// # }
    /// ```
    pub fn is_cancelled(&self) -> bool {
        *self.cancelled.borrow()
    }

    /// Resolves when the attempt is cancelled; race it against long work with `tokio::select!`.
    ///
    /// ```no_run
    /// # async fn demo(task: linkloom::TaskContext) -> linkloom::TaskResult {
    /// tokio::select! {
    ///     _ = task.cancelled() => Err(linkloom::TaskError::retryable("cancelled")),
    ///     _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => Ok(serde_json::json!({})),
    /// }
    /// # }
    /// ```
    pub async fn cancelled(&self) {
        let mut cancelled = self.cancelled.clone();
        let _ = cancelled.wait_for(|c| *c).await;
    }

    fn take_pending(&self) -> Pending {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Builds a [`Worker`].
///
/// ```no_run
/// # async fn demo() -> Result<(), linkloom::Error> {
/// let client = linkloom::Client::from_list("http://127.0.0.1:8081,http://127.0.0.1:8082")?;
/// let worker = linkloom::Worker::builder(client)
///     .id("billing-1")
///     .concurrency(8)
///     .handle("billing", |task| async move { Ok(task.input().clone()) })
///     .build()?;
/// worker.run_until(async { let _ = tokio::signal::ctrl_c().await; }).await?;
/// # Ok(()) }
/// ```
pub struct WorkerBuilder {
    client: Client,
    id: Option<String>,
    concurrency: u32,
    handlers: BTreeMap<String, Handler>,
    task_handlers: BTreeMap<(String, String), Handler>,
    shutdown_grace: Duration,
}

impl WorkerBuilder {
    /// The worker's id: unique per process (reconnecting with the same id replaces the earlier
    /// connection). Defaults to `<hostname>-<pid>`.
    ///
    /// ```no_run
    /// # fn demo(b: linkloom::WorkerBuilder) -> linkloom::WorkerBuilder {
    /// b.id("billing-1")
    /// # }
    /// ```
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// How many tasks run at once (default 4). The cluster never leases the worker more.
    ///
    /// ```no_run
    /// # fn demo(b: linkloom::WorkerBuilder) -> linkloom::WorkerBuilder {
    /// b.concurrency(16)
    /// # }
    /// ```
    pub fn concurrency(mut self, concurrency: u32) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// Serves `queue` with `handler`.
    ///
    /// ```no_run
    /// # fn demo(b: linkloom::WorkerBuilder) -> linkloom::WorkerBuilder {
    /// b.handle("resize", |task| async move {
    ///     let width = task.input()["width"].as_u64().ok_or_else(|| linkloom::TaskError::fatal("width missing"))?;
    ///     Ok(serde_json::json!({"width": width / 2}))
    /// })
    /// # }
    /// ```
    pub fn handle<F, Fut>(mut self, queue: impl Into<String>, handler: F) -> Self
    where
        F: Fn(TaskContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = TaskResult> + Send + 'static,
    {
        self.handlers.insert(queue.into(), Arc::new(move |task| Box::pin(handler(task))));
        self
    }

    /// Serves task `task_id` of `queue` with its own handler (other tasks of the queue go to the
    /// queue's handler). The queue is served even without a queue-wide handler.
    ///
    /// ```no_run
    /// # fn demo(b: linkloom::WorkerBuilder) -> linkloom::WorkerBuilder {
    /// b.handle_task("etl", "load", |_task| async move { Ok(serde_json::json!({"loaded": true})) })
    /// # }
    /// ```
    pub fn handle_task<F, Fut>(mut self, queue: impl Into<String>, task_id: impl Into<String>, handler: F) -> Self
    where
        F: Fn(TaskContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = TaskResult> + Send + 'static,
    {
        self.task_handlers.insert((queue.into(), task_id.into()), Arc::new(move |task| Box::pin(handler(task))));
        self
    }

    /// How long a shutdown waits for running tasks before giving them back (default 30 s).
    ///
    /// ```no_run
    /// # fn demo(b: linkloom::WorkerBuilder) -> linkloom::WorkerBuilder {
    /// b.shutdown_grace(std::time::Duration::from_secs(5))
    /// # }
    /// ```
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Checks the settings (the same rules the server applies) and builds the worker.
    ///
    /// ```
    /// let client = linkloom::Client::new(["http://127.0.0.1:8080"]).unwrap();
    /// let err = linkloom::Worker::builder(client).build().err().unwrap();
    /// assert!(err.to_string().contains("at least one queue"));
    /// ```
    pub fn build(self) -> Result<Worker, Error> {
        let id = self.id.unwrap_or_else(default_worker_id);
        let mut queues: Vec<String> = self.handlers.keys().cloned().collect();
        queues.extend(self.task_handlers.keys().map(|(q, _)| q.clone()));
        queues.sort();
        queues.dedup();
        linkloom_core::state::validate_worker(&id, &queues, self.concurrency).map_err(Error::Invalid)?;
        Ok(Worker {
            inner: Arc::new(Inner {
                client: self.client,
                id,
                queues,
                concurrency: self.concurrency,
                handlers: self.handlers,
                task_handlers: self.task_handlers,
                shutdown_grace: self.shutdown_grace,
                running: Mutex::new(BTreeMap::new()),
                timing: Mutex::new(Timing { heartbeat: Duration::from_secs(1), lease: Duration::from_secs(10) }),
            }),
        })
    }
}

fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect::<String>())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into());
    format!("{host}-{}", std::process::id())
}

/// Heartbeat and lease times, as the node announced them.
#[derive(Clone, Copy)]
struct Timing {
    heartbeat: Duration,
    lease: Duration,
}

/// An attempt this worker runs.
struct Running {
    cancel: watch::Sender<bool>,
}

struct Inner {
    client: Client,
    id: String,
    queues: Vec<String>,
    concurrency: u32,
    handlers: BTreeMap<String, Handler>,
    task_handlers: BTreeMap<(String, String), Handler>,
    shutdown_grace: Duration,
    running: Mutex<BTreeMap<String, Running>>,
    timing: Mutex<Timing>,
}

/// A worker process's connection to the cluster. Build one with [`Worker::builder`].
///
/// ```no_run
/// # async fn demo() -> Result<(), linkloom::Error> {
/// let client = linkloom::Client::new(["http://127.0.0.1:8080"])?;
/// linkloom::Worker::builder(client)
///     .handle("demo", |task| async move { Ok(task.input().clone()) })
///     .build()?
///     .run()
///     .await
/// # }
/// ```
pub struct Worker {
    inner: Arc<Inner>,
}

/// How a stream of events ended.
enum StreamEnd {
    /// Reconnect (the node went away, closed the connection, or went silent).
    Reconnect(String),
    /// The shutdown signal fired.
    Shutdown,
}

impl Worker {
    /// Starts building a worker that talks to the cluster through `client`.
    ///
    /// ```no_run
    /// # fn demo(client: linkloom::Client) -> linkloom::WorkerBuilder {
    /// linkloom::Worker::builder(client)
    /// # }
    /// ```
    pub fn builder(client: Client) -> WorkerBuilder {
        WorkerBuilder {
            client,
            id: None,
            concurrency: 4,
            handlers: BTreeMap::new(),
            task_handlers: BTreeMap::new(),
            shutdown_grace: Duration::from_secs(30),
        }
    }

    /// The worker's id.
    ///
    /// ```no_run
    /// # fn demo(worker: linkloom::Worker) { println!("{}", worker.id()); }
    /// ```
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// Runs until Ctrl-C or SIGTERM, then shuts down gracefully.
    ///
    /// ```no_run
    /// # async fn demo(worker: linkloom::Worker) -> Result<(), linkloom::Error> {
    /// worker.run().await
    /// # }
    /// ```
    pub async fn run(self) -> Result<(), Error> {
        self.run_until(termination()).await
    }

    /// Runs until `shutdown` resolves, then shuts down gracefully: the cluster stops handing it
    /// tasks, running tasks get the grace period to finish, and those still running after it
    /// are cancelled and given back (they run again elsewhere without using a retry).
    ///
    /// Connection failures are retried for ever (with the next server each time); only a
    /// refusal that retrying cannot fix (an invalid worker declaration) ends it with an error.
    ///
    /// ```no_run
    /// # async fn demo(worker: linkloom::Worker) -> Result<(), linkloom::Error> {
    /// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    /// let run = tokio::spawn(worker.run_until(async { let _ = stopped.await; }));
    /// // ... later
    /// let _ = stop.send(());
    /// run.await.expect("worker task")?;
    /// # Ok(()) }
    /// ```
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), Error> {
        let inner = self.inner;
        let mut shutdown = std::pin::pin!(shutdown);
        let mut pause = RECONNECT_FIRST;
        loop {
            let hello = WorkerHello {
                id: inner.id.clone(),
                queues: inner.queues.clone(),
                concurrency: inner.concurrency,
                running: inner.running_ids(),
            };
            let request = ApiRequest::post("/api/v1/workers/connect".into()).json(&hello)?;
            let opened = tokio::select! {
                opened = inner.client.open(&request) => opened,
                _ = &mut shutdown => return inner.shut_down(false).await,
            };
            let response = match opened {
                Ok(response) => response,
                Err(e @ Error::Api { status: 400..=499, .. }) if e.code() != Some("unavailable") => return Err(e),
                Err(e) => {
                    tracing::warn!(worker_id = %inner.id, "cannot connect, retrying in {pause:?}: {e}");
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = &mut shutdown => return inner.shut_down(false).await,
                    }
                    pause = (pause * 2).min(RECONNECT_MAX);
                    continue;
                }
            };
            pause = RECONNECT_FIRST;
            match inner.serve(response, &mut shutdown).await {
                (StreamEnd::Shutdown, _) => return inner.shut_down(true).await,
                (StreamEnd::Reconnect(why), _) => {
                    tracing::warn!(worker_id = %inner.id, "connection lost ({why}); reconnecting");
                    // Try another node first: this one may be down or cut off.
                    let next = inner.client.advance(inner.client.current());
                    inner.client.set_current(next);
                }
            }
        }
    }
}

impl Inner {
    fn running_ids(&self) -> Vec<String> {
        self.running.lock().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect()
    }

    fn timing(&self) -> Timing {
        *self.timing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads one connection's events until it ends; answers how, and the session it had.
    /// When `shutdown` fires the worker drains (the cluster stops handing it tasks) and keeps
    /// reading (cancellations still arrive) until its attempts end or the grace runs out.
    async fn serve(
        self: &Arc<Self>,
        response: reqwest::Response,
        shutdown: &mut Pin<&mut (impl Future<Output = ()> + Send)>,
    ) -> (StreamEnd, Option<String>) {
        let mut session = None;
        let mut bytes = response.bytes_stream();
        let mut buffer: Vec<u8> = Vec::new();
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
            buffer.extend_from_slice(&chunk);
            while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=end).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match serde_json::from_slice::<WorkerEvent>(&line) {
                    Ok(WorkerEvent::Welcome { session: s, node_id, heartbeat_interval_ms, lease_ms }) => {
                        tracing::info!(worker_id = %self.id, node_id, "connected");
                        *self.timing.lock().unwrap_or_else(|p| p.into_inner()) = Timing {
                            heartbeat: Duration::from_millis(heartbeat_interval_ms.max(50)),
                            lease: Duration::from_millis(lease_ms),
                        };
                        session = Some(s);
                    }
                    // Handed over before the drain took effect: still ours to run.
                    Ok(WorkerEvent::Task(task)) => self.start(task),
                    Ok(WorkerEvent::Cancel { attempt_id, reason }) => {
                        if let Some(running) = self.running.lock().unwrap_or_else(|p| p.into_inner()).get(&attempt_id) {
                            tracing::info!(worker_id = %self.id, attempt_id, "attempt cancelled by the cluster: {reason}");
                            let _ = running.cancel.send(true);
                        }
                    }
                    Ok(WorkerEvent::Ping) => {}
                    Ok(WorkerEvent::Closing { .. }) if draining_until.is_some() => {
                        return (StreamEnd::Shutdown, session)
                    }
                    Ok(WorkerEvent::Closing { reason }) => return (StreamEnd::Reconnect(reason), session),
                    // A newer server may send events this SDK does not know: skip them.
                    Ok(_) => tracing::debug!(worker_id = %self.id, "skipping an event of a newer kind"),
                    Err(e) => tracing::debug!(worker_id = %self.id, "skipping a malformed event: {e}"),
                }
            }
            if buffer.len() > MAX_EVENT_LINE_BYTES {
                return (StreamEnd::Reconnect("an event line too long".into()), session);
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
                        // The attempt is no longer ours: stop the handler, report nothing.
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
        let mut body = match result {
            Ok(output) => json!({"status": "succeeded", "output": output}),
            Err(e) => json!({"status": "failed", "error": e.message, "retryable": e.retryable}),
        };
        if !logs.is_empty() {
            body["logs"] = Value::String(logs);
        }
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
    async fn shut_down(self: &Arc<Self>, drained: bool) -> Result<(), Error> {
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
async fn termination() {
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
