//! Workflows as the API shows them. The spec itself is the user's document: its schema
//! (`WorkflowSpec`) is derived from the domain type in `linkloom-core`, which validates it; here it
//! travels as JSON, so an older client keeps fields a newer server knows.

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The schema of a spec field: a reference to `WorkflowSpec`, which the document builder adds
/// from `linkloom-core` (a test fails if it is missing).
fn spec_ref(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"$ref": "#/components/schemas/WorkflowSpec"})
}

/// A workflow at its active version.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct Workflow {
    /// The workflow id.
    pub id: String,
    /// The active version: the one a new execution runs.
    pub version: u32,
    /// Scheduled ticks are not fired while paused.
    pub paused: bool,
    /// The schedule's next tick after now (the answering node's clock); null when paused or
    /// unscheduled.
    #[schemars(extend("format" = "date-time"))]
    pub next_fire_at: Option<String>,
    /// The latest tick the scheduler handled (fired or skipped).
    #[schemars(extend("format" = "date-time"))]
    pub last_tick_at: Option<String>,
    /// When the active version was stored.
    #[schemars(extend("format" = "date-time"))]
    pub created_at: String,
    /// The last change of any kind.
    #[schemars(extend("format" = "date-time"))]
    pub updated_at: String,
    /// The token name that stored the active version (null: an open node).
    pub created_by: Option<String>,
    /// The token name of the last change (null: an open node).
    pub updated_by: Option<String>,
    /// Every kept version number, oldest first.
    pub versions: Vec<u32>,
    /// The active version's spec, as stored (absent optional fields left out).
    #[schemars(schema_with = "spec_ref")]
    pub spec: Value,
}

/// One version of a workflow.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct WorkflowVersion {
    pub id: String,
    pub version: u32,
    /// Whether it is the version new executions run.
    pub active: bool,
    #[schemars(extend("format" = "date-time"))]
    pub created_at: String,
    /// The token name that stored it (null: an open node).
    pub created_by: Option<String>,
    #[schemars(schema_with = "spec_ref")]
    pub spec: Value,
}

/// Answer to storing a workflow.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct StoredWorkflow {
    pub id: String,
    /// The version this request stored.
    pub version: u32,
    #[schemars(extend("format" = "date-time"))]
    pub created_at: String,
    #[schemars(schema_with = "spec_ref")]
    pub spec: Value,
}

/// Answer to a pause or resume.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct Paused {
    pub id: String,
    pub paused: bool,
}
