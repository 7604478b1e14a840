//! Link Loom's core: the domain model (workflow specs, executions, tasks, attempts, leases) and
//! the replicated state machine, as plain data and pure functions.
//!
//! Architecture invariant: this crate does no I/O. No clock, no randomness, no network, no disk,
//! no tokio. Everything that varies between runs is an argument, which is what lets the same
//! state machine run in production, in property tests and under simulation.

pub mod archive;
pub mod bugs;
pub mod codec;
pub mod duration;
pub mod ids;
pub mod json;
pub mod limits;
pub mod metrics;
pub mod render;
pub mod schedule;
pub mod spec;
pub mod state;
pub mod task_answer;

pub use duration::DurationMs;
pub use json::Json;
pub use spec::WorkflowSpec;
pub use state::{Command, HistoryStore, Response, State};
