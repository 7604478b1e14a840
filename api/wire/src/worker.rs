//! The worker protocol's messages, shared by the node (which serves them) and the SDKs (which
//! speak them), so both sides agree by construction, and the worker views of the API.
//! docs/workers.md describes the protocol for SDKs in other languages.
//!
//! A worker opens `POST /api/v1/workers/connect` with a [`WorkerHello`]; the node answers with a
//! stream of [`WorkerEvent`]s, one JSON object per line. Everything else (heartbeats,
//! completions, releases, drain) is an ordinary request to any node. Attempt ids travel as
//! strings, so languages whose numbers are doubles keep them exact.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a worker declares when it connects. Fields a node does not know are ignored, so a newer
/// worker can connect to an older node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WorkerHello {
    /// Unique per worker process; reconnecting with the same id replaces the earlier connection
    /// (only through the API token that registered it).
    #[schemars(regex(pattern = r"^[A-Za-z0-9._:-]{1,128}$"))]
    pub id: String,
    /// The queues it takes tasks from (1 to 64 queue names).
    #[schemars(length(min = 1, max = 64), inner(regex(pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$")))]
    pub queues: Vec<String>,
    /// Tasks it runs at once (1 to 1024); the cluster never leases it more.
    #[schemars(range(min = 1, max = 1024))]
    pub concurrency: u32,
    /// Attempts it is still running from an earlier connection (after a reconnect), so that the
    /// node does not hand them over again.
    #[serde(default)]
    pub running: Vec<String>,
}

/// One line of the connection's stream, told apart by `type`. A worker ignores a line of a type
/// it does not know (a newer node may send more kinds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum WorkerEvent {
    /// First event: the connection is registered.
    Welcome {
        /// Names this connection in `drain` requests.
        session: String,
        node_id: u64,
        /// How often the worker should heartbeat each running attempt.
        heartbeat_interval_ms: u64,
        /// How long a lease lasts without a heartbeat.
        lease_ms: u64,
    },
    /// A task to run: the attempt is leased to this worker.
    Task(TaskAssignment),
    /// Stop running an attempt: it was cancelled, timed out, or its lease was lost.
    Cancel { attempt_id: String, reason: String },
    /// Keeps the stream alive; also how the node notices a worker that went away.
    Ping,
    /// The node closes this connection (the worker connected elsewhere, or the node stops).
    Closing { reason: String },
    /// An event of a type this version does not know (sent by a newer node). Never sent.
    #[serde(other)]
    #[schemars(skip)]
    Unknown,
}

/// A task handed to a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TaskAssignment {
    pub attempt_id: String,
    /// 1 for the task's first attempt.
    pub attempt: u32,
    pub execution_id: String,
    pub workflow_id: String,
    pub task_id: String,
    pub queue: String,
    /// The task's `input` with templates rendered (an empty object when it has none).
    pub input: Value,
    /// The execution's params.
    pub params: Value,
    /// RFC 3339; heartbeats move it forward.
    #[schemars(extend("format" = "date-time"))]
    pub lease_expires_at: Option<String>,
    /// RFC 3339: the task's timeout as an instant, if it has one.
    #[schemars(extend("format" = "date-time"))]
    pub deadline: Option<String>,
}

/// Body of `POST /api/v1/workers/{worker}/attempts/{attempt}/heartbeat` (optional).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "WorkerHeartbeat")]
pub struct Heartbeat {
    /// Any JSON (a fraction, a counter, an object); shown with the attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Value>,
    /// Log text produced since the last heartbeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<String>,
}

/// Body of `POST /api/v1/workers/{worker}/drain`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Drain {
    /// The `session` of the connection's `welcome` event (a decimal number as text): only that
    /// connection is drained.
    #[schemars(regex(pattern = r"^[0-9]{1,19}$"))]
    pub session: String,
}

/// Body of `POST /api/v1/workers/{worker}/attempts/{attempt}/release` (optional).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Release {
    /// Why, for the attempt's record.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A worker connected to the cluster (`GET /api/v1/workers`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(rename = "Worker")]
pub struct WorkerInfo {
    /// The worker's id.
    pub id: String,
    /// The node it is connected to.
    pub node_id: u64,
    /// The queues it takes tasks from.
    pub queues: Vec<String>,
    /// Tasks it runs at once at most.
    pub concurrency: u32,
    /// Tasks it runs now.
    pub running: u32,
    /// It takes no new tasks.
    pub draining: bool,
    /// When it connected.
    #[schemars(extend("format" = "date-time"))]
    pub connected_at: String,
    /// When it was last heard from.
    #[schemars(extend("format" = "date-time"))]
    pub last_seen_at: String,
}

/// Answer to a drain.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct Draining {
    pub id: String,
    pub draining: bool,
}

/// Answer to a worker's heartbeat: the attempt's lease now ends later.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct LeaseExtended {
    pub attempt_id: String,
    /// When the lease now runs out.
    #[schemars(extend("format" = "date-time"))]
    pub lease_expires_at: Option<String>,
}

/// One queue: ready tasks waiting for a worker, and the workers that serve it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct Queue {
    /// The queue name.
    pub queue: String,
    /// Ready tasks no worker has taken yet.
    pub waiting: u64,
    /// Since when the oldest of them waits.
    #[schemars(extend("format" = "date-time"))]
    pub oldest_waiting_since: Option<String>,
    /// How long the oldest of them waits, in milliseconds.
    pub oldest_waiting_ms: Option<i64>,
    /// Live workers serving it.
    pub workers: u64,
    /// Their summed concurrency.
    pub capacity: u64,
    /// Attempts they run now.
    pub running: u64,
}

/// Every queue with waiting tasks or live workers, by name (not paged: one entry per queue).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct QueueList {
    pub items: Vec<Queue>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_tagged_lines() {
        let ping = serde_json::to_string(&WorkerEvent::Ping).unwrap();
        assert_eq!(ping, r#"{"type":"ping"}"#);
        let cancel: WorkerEvent =
            serde_json::from_str(r#"{"type":"cancel","attempt_id":"7","reason":"cancelled"}"#).unwrap();
        assert_eq!(cancel, WorkerEvent::Cancel { attempt_id: "7".into(), reason: "cancelled".into() });
        let hello: WorkerHello = serde_json::from_str(r#"{"id":"w","queues":["q"],"concurrency":2}"#).unwrap();
        assert!(hello.running.is_empty());
        let newer: WorkerEvent = serde_json::from_str(r#"{"type":"rebalance","to":3}"#).unwrap();
        assert_eq!(newer, WorkerEvent::Unknown);
    }
}
