//! Events: what a service sends when something happened (`POST /api/v1/events`), and what the
//! cluster did with it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Body of `POST /api/v1/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "EventBody")]
pub struct PublishEvent {
    /// The event's name, which `event` triggers match: 1 to 128 of letters, digits, `.`, `_`
    /// and `-`, starting with a letter or digit.
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"))]
    pub name: String,
    /// Makes the send idempotent: the same id again within the event window (24 h) is answered
    /// 200 with the first outcome and starts nothing. Absent: the node draws one, and a retry
    /// is a new event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9._-]{1,128}$"))]
    pub id: Option<String>,
    /// Any JSON (an object, for filters and templates to look into); null when absent.
    #[serde(default)]
    pub payload: Value,
}

open_enum! {
    /// Where an event came from.
    pub enum EventSource {
        /// `POST /api/v1/events`.
        Api => "api",
        /// `POST /api/v1/hooks/{workflow}/{name}`.
        Webhook => "webhook",
        /// An upstream execution ended (`workflow` triggers); recorded by the cluster itself.
        Workflow => "workflow",
    }
}

/// What an event did for one workflow it matched.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct EventOutcome {
    pub workflow_id: String,
    /// The execution it started (null if skipped).
    pub execution_id: Option<String>,
    /// Why it started none: the workflow is paused, or its concurrency policy refused.
    pub skipped: Option<String>,
}

/// An event as the cluster remembers it, with what it started.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct Event {
    pub name: String,
    pub id: String,
    pub source: EventSource,
    /// For a webhook event, the workflow and webhook it was sent to.
    pub webhook: Option<EventHook>,
    /// For a chained start (`source: workflow`), the upstream execution whose end it was.
    pub upstream_execution_id: Option<String>,
    /// When the cluster accepted it.
    #[schemars(extend("format" = "date-time"))]
    pub received_at: String,
    /// The token name of the sender (null: an open node, or a webhook).
    pub by: Option<String>,
    /// SHA-256 of the payload as JSON text, lowercase hex.
    pub payload_sha256: String,
    /// The payload's size as JSON text.
    pub payload_bytes: u32,
    /// One per matching workflow, in workflow id order (at most 64).
    pub outcomes: Vec<EventOutcome>,
    /// Matching workflows beyond those listed.
    pub more_outcomes: u32,
    /// True when this answers a repeat of an id seen within the window: nothing new started.
    pub repeated: bool,
}

/// The workflow and webhook a webhook event was sent to.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct EventHook {
    pub workflow_id: String,
    pub name: String,
}
