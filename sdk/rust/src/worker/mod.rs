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

mod builder;
mod context;
mod session;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use linkloom_wire::worker::WorkerHello;

use crate::client::{ApiRequest, Client};
use crate::error::Error;

pub use builder::WorkerBuilder;
pub use context::{TaskContext, TaskError, TaskResult};
use session::{termination, Inner};

/// Pauses between reconnects grow from the first to the last.
const RECONNECT_FIRST: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(2);

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
            on_connected: None,
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
