//! The worker protocol's messages, shared by the node (which serves them) and the SDKs (which
//! speak them), so both sides agree by construction. docs/workers.md describes the protocol for
//! SDKs in other languages.
//!
//! A worker opens `POST /api/v1/workers/connect` with a [`WorkerHello`]; the node answers with a
//! stream of [`WorkerEvent`]s, one JSON object per line. Everything else (heartbeats,
//! completions, releases, drain) is an ordinary request to any node. Attempt ids travel as
//! strings, so languages whose numbers are doubles keep them exact.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a worker declares when it connects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerHello {
    /// Unique per worker process; reconnecting with the same id replaces the earlier connection
    /// (only through the API token that registered it).
    pub id: String,
    pub queues: Vec<String>,
    /// Tasks it runs at once; the cluster never leases it more.
    pub concurrency: u32,
    /// Attempts it is still running from an earlier connection (after a reconnect), so that the
    /// node does not hand them over again.
    #[serde(default)]
    pub running: Vec<String>,
}

/// One line of the connection's stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
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
}

/// A task handed to a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    pub lease_expires_at: Option<String>,
    /// RFC 3339: the task's timeout as an instant, if it has one.
    pub deadline: Option<String>,
}

/// Body of `POST /api/v1/workers/{worker}/attempts/{attempt}/heartbeat`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Any JSON (a fraction, a counter, an object); shown with the attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Value>,
    /// Log text produced since the last heartbeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<String>,
}

/// Body of `POST /api/v1/workers/{worker}/drain`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drain {
    pub session: String,
}

/// Body of `POST /api/v1/workers/{worker}/attempts/{attempt}/release`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Release {
    #[serde(default)]
    pub reason: Option<String>,
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
    }
}
