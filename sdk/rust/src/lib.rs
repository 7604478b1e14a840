//! # linkloom: the Rust SDK for Link Loom
//!
//! Link Loom runs workflows on a cluster of (usually three) nodes, and every node serves the
//! whole HTTP API. This crate is how a Rust program talks to it without caring which node is up:
//!
//! - [`Client`] calls the API with failover: it knows every node, uses the one that answered
//!   last and moves on when a node cannot be reached. Its answers are typed ([`Execution`],
//!   [`Workflow`], ...) and tolerant of fields a newer server adds.
//! - [`WorkflowBuilder`] and [`TaskBuilder`] write workflows in Rust and check them with the
//!   server's own validation before anything is sent, every problem listed with its path.
//! - [`Worker`] runs `type: worker` tasks in this process: it connects out to any node, receives
//!   the tasks leased to it, heartbeats them, reports results and moves to another node when its
//!   node goes away (see docs/workers.md).
//! - [`TaskRequest`] and [`TaskAnswer`] are the two halves of the contract for backends of
//!   `type: http` tasks, usable from any web framework.
//!
//! What this crate must not do: decide anything the server decides. Local validation is an early
//! copy of the server's; the server checks again and has the last word.
//!
//! ```no_run
//! use std::time::Duration;
//! use linkloom::{Client, TaskBuilder, WorkflowBuilder};
//!
//! # async fn demo() -> Result<(), linkloom::Error> {
//! let client = Client::from_list("http://127.0.0.1:8081,http://127.0.0.1:8082,http://127.0.0.1:8083")?;
//! let spec = WorkflowBuilder::new("hello")
//!     .task(TaskBuilder::shell("say", ["echo", "hello, {{ params.name }}"]))
//!     .param("name", "world")
//!     .build()?;
//! client.put_workflow(&spec).await?;
//! let id = client.trigger("hello", serde_json::json!({"name": "loom"})).await?;
//! let execution = client.wait_for_execution(&id, Duration::from_secs(60)).await?;
//! println!("{id}: {}", execution.status);
//! print!("{}", client.logs(&id, Some("say")).await?);
//! # Ok(()) }
//! ```

mod backend;
mod builder;
mod client;
mod cluster;
mod error;
mod events;
mod execution;
mod logs;
mod sse;
mod tokens;
mod worker;
mod workflow;

pub use backend::{complete_callback, Callback, Completion, TaskAnswer, TaskRequest};
pub use builder::{parse_workflow, Retry, TaskBuilder, WorkflowBuilder};
pub use client::{new_idempotency_key, Client, ClientBuilder, Page, IDEMPOTENCY_KEY};
pub use cluster::{ClusterView, LimitValues, Limits, LimitsChange, Member, Queue, WorkerInfo};
pub use error::Error;
pub use events::{Event, EventHook, EventOutcome, EventSource, StartEvent};
pub use execution::{
    Attempt, AttemptStatus, Cancelled, Execution, ExecutionFilter, ExecutionStatus, Retried, TaskRun, TaskStatus,
    Trigger,
};
pub use tokens::{CreatedToken, Role, Token};
pub use worker::{TaskContext, TaskError, TaskResult, Worker, WorkerBuilder};
pub use workflow::{parse_spec, Backfilled, Paused, StoredWorkflow, Workflow, WorkflowVersion};

/// The HTTP method type [`Client::request_json`] takes (the `http` crate's, as reqwest exports it).
///
/// ```
/// let method = linkloom::Method::GET;
/// assert_eq!(method.as_str(), "GET");
/// ```
pub use reqwest::Method;

pub mod protocol;
pub mod signature;

/// The workflow spec types, shared with the server (`linkloom-core`). Build one with
/// [`WorkflowBuilder`] or [`parse_workflow`].
///
/// ```
/// let spec: linkloom::WorkflowSpec = linkloom::parse_workflow("id: a\ntasks: [{id: t, type: worker, queue: q}]")?;
/// assert_eq!(spec.tasks[0].kind, linkloom::TaskKind::Worker);
/// # Ok::<(), linkloom::Error>(())
/// ```
pub use linkloom_core::spec::{Catchup, Concurrency, Problem, TaskKind, TaskSpec, When, WorkflowSpec};
