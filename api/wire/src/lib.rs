//! The wire: every shape that crosses the network between a Link Loom node and anything else.
//!
//! The API serializes these types and nothing else; the Rust SDK and the CLI deserialize the same
//! types; the OpenAPI document (`docs/openapi.json`) is derived from their JSON Schemas, and the web
//! UI's TypeScript types and the other SDKs' models are generated from that document. So a field
//! added here appears everywhere at once, and a field changed here cannot silently drift in one
//! copy.
//!
//! Rules every type here keeps, so that an older client reads a newer server's answers:
//! - Answers ignore fields they do not know (no `deny_unknown_fields` on answer types) and default
//!   what is absent.
//! - Every status-like enum has an `Unknown` variant that a value from a newer server decodes to
//!   (`open_enum!`, open_enum.rs); the documented schema lists only the values this version sends.
//! - Request bodies do deny unknown fields: the server names a misspelled field instead of
//!   ignoring it.
//! - Times are RFC 3339 text; attempt ids are decimal strings, so languages whose numbers are
//!   doubles keep them exact.
//!
//! This crate has no I/O and no dependency on the rest of Link Loom: SDKs and tools can use it
//! alone.

#[macro_use]
mod open_enum;

pub mod answer;
pub mod cluster;
pub mod error;
pub mod event;
pub mod execution;
pub mod page;
pub mod signature;
pub mod token;
pub mod worker;
pub mod workflow;

pub use answer::{AnswerStatus, TaskAnswer, TaskOutcome};
pub use cluster::{
    AuthState, ClusterView, EngineCounters, Health, LimitValues, Limits, LimitsChange, Member, Members, NewMember,
    Replication, ReplicationMember,
};
pub use error::{ErrorBody, ErrorClass, ErrorCode, ErrorDetail, Problem};
pub use event::{Event, EventHook, EventOutcome, EventSource, PublishEvent};
pub use execution::{
    Attempt, AttemptFinished, AttemptRef, AttemptStatus, AuditAction, AuditEntry, Backfill, Backfilled, Cancelled,
    Execution, ExecutionStatus, Retried, StartEvent, TaskRun, TaskStatus, Trigger, TriggerRequest, Triggered,
};
pub use page::Page;
pub use token::{CreatedToken, NewToken, Role, Token};
pub use worker::{
    Drain, Draining, Heartbeat, LeaseExtended, Queue, QueueList, Release, TaskAssignment, WorkerEvent, WorkerHello,
    WorkerInfo,
};
pub use workflow::{Paused, StoredWorkflow, Workflow, WorkflowVersion};
