//! Building a worker: its id, concurrency, handlers per queue (and per task), shutdown grace.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::context::{Handler, TaskContext, TaskResult};
use super::session::{Inner, OnConnected, Timing};
use super::Worker;
use crate::client::Client;
use crate::error::Error;

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
    pub(super) client: Client,
    pub(super) id: Option<String>,
    pub(super) concurrency: u32,
    pub(super) handlers: BTreeMap<String, Handler>,
    pub(super) task_handlers: BTreeMap<(String, String), Handler>,
    pub(super) shutdown_grace: Duration,
    pub(super) on_connected: Option<OnConnected>,
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

    /// Calls `hook` with the node's id each time a connection is registered (the node's
    /// `welcome`): after start and after every reconnect. For readiness probes and logs; it
    /// runs on the worker's task, so keep it short.
    ///
    /// ```no_run
    /// # fn demo(b: linkloom::WorkerBuilder) -> linkloom::WorkerBuilder {
    /// b.on_connected(|node_id| eprintln!("serving tasks through node {node_id}"))
    /// # }
    /// ```
    pub fn on_connected(mut self, hook: impl Fn(u64) + Send + Sync + 'static) -> Self {
        self.on_connected = Some(Arc::new(hook));
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
                on_connected: self.on_connected,
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
