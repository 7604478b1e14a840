//! The cluster as one node sees it: health, Raft state and members, the leader's replication
//! figures, the engine's counters, and the limits an operator tunes at run time.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `/healthz` and `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(rename = "Status")]
pub struct Health {
    /// `ok` (`/healthz`) or `ready` (`/readyz`).
    pub status: String,
    /// `/readyz`: the leader this node knows of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader_id: Option<u64>,
    /// `/readyz`: the last log index this node applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_applied: Option<u64>,
}

/// One member of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct Member {
    /// Its node id.
    pub id: u64,
    /// Its `host:port`.
    pub addr: String,
    /// Votes (a learner does not).
    pub voter: bool,
}

/// Answer to a membership change: the members after it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct Members {
    pub members: Vec<Member>,
}

/// Body of `POST /api/v1/cluster/members`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    /// The new node's id (from 1; not a member's).
    #[schemars(range(min = 1))]
    pub id: u64,
    /// Where the other nodes reach it: `host:port`.
    #[schemars(regex(pattern = r"^[^\s]+:[0-9]{1,5}$"))]
    pub addr: String,
}

/// One node's view of the cluster (`GET /api/v1/cluster`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(rename = "Cluster")]
pub struct ClusterView {
    /// The node that answered.
    pub node_id: u64,
    /// The leader it knows of, if any.
    pub leader_id: Option<u64>,
    /// The Raft term.
    pub term: u64,
    /// Its Raft role: `Leader`, `Follower`, `Learner`, `Candidate` or `Shutdown`.
    pub state: String,
    /// Index of its last log entry.
    pub last_log_index: Option<u64>,
    /// Index of the last entry it applied.
    pub last_applied: Option<u64>,
    /// Index its latest snapshot covers.
    pub snapshot_index: Option<u64>,
    /// Index up to which its log was purged behind the snapshot.
    pub purged_index: Option<u64>,
    /// Log entries it keeps on disk.
    pub log_entries_on_disk: u64,
    /// Every member of the cluster.
    pub members: Vec<Member>,
    /// The leader's view of how far behind each member is; null if the leader did not answer
    /// within a second (during an election, say), with `replication_error` saying why.
    pub replication: Option<Replication>,
    pub replication_error: Option<String>,
    /// The engine's counters on this node (null on a node without an engine).
    pub engine: Option<EngineCounters>,
    /// Whether the node requires tokens.
    pub auth: AuthState,
}

/// The leader's replication figures.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct Replication {
    pub leader_id: u64,
    pub last_log_index: Option<u64>,
    pub members: Vec<ReplicationMember>,
}

/// How far one member's log is behind the leader's.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct ReplicationMember {
    pub id: u64,
    /// The last index the member acknowledged (null until it first does).
    pub matched_index: Option<u64>,
    /// How many entries its log lacks (null until it first acknowledges).
    pub behind: Option<u64>,
}

/// The engine's counters since the node started.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct EngineCounters {
    /// Actors the supervisor restarted after a panic.
    pub actor_restarts: u64,
    /// Schedule ticks this node fired as leader.
    pub ticks_fired: u64,
    /// Their summed lateness, in milliseconds.
    pub tick_lateness_ms_total: u64,
    /// Worker tasks this node handed to workers (while it led).
    pub worker_dispatches: u64,
    /// Workers connected to this node now.
    pub worker_connections: u64,
}

/// Whether the node requires tokens.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct AuthState {
    /// Tokens are required (`LOOM_ADMIN_TOKEN` is set).
    pub enabled: bool,
    /// Nodes prove the cluster secret to each other.
    pub peers_authenticated: bool,
    /// Said while the node runs open.
    pub warning: Option<String>,
}

/// The tunable limits, each a count or a size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct LimitValues {
    /// Tasks in one workflow.
    pub max_tasks_per_workflow: u32,
    /// A workflow's default params, or a trigger's params merged into them, as JSON bytes.
    pub max_params_bytes: u32,
    /// One task's output, as JSON bytes; a larger output fails its attempt without retry.
    pub max_output_bytes: u32,
    /// Log bytes kept per attempt; older chunks are dropped (and counted) beyond it.
    pub max_log_bytes_per_attempt: u32,
    /// How long a client request (`Idempotency-Key`) is remembered, in seconds.
    pub request_window_secs: u32,
    /// Client requests remembered at most.
    pub max_remembered_requests: u32,
    /// Finished executions kept per workflow; the oldest go first.
    pub max_kept_executions_per_workflow: u32,
    /// Finished executions kept in the whole cluster; the oldest go first.
    pub max_kept_executions: u32,
    /// Log bytes kept in the whole cluster; the oldest finished executions go (whole) until the
    /// logs fit. Unfinished executions are never dropped, so their logs may exceed it alone.
    pub max_kept_log_bytes: u32,
    /// Seconds a finished execution is kept after it finished.
    pub max_finished_age_secs: u32,
}

impl LimitValues {
    /// Every limit with its name, in the order of the struct.
    pub fn named(&self) -> [(&'static str, u32); 10] {
        [
            ("max_tasks_per_workflow", self.max_tasks_per_workflow),
            ("max_params_bytes", self.max_params_bytes),
            ("max_output_bytes", self.max_output_bytes),
            ("max_log_bytes_per_attempt", self.max_log_bytes_per_attempt),
            ("request_window_secs", self.request_window_secs),
            ("max_remembered_requests", self.max_remembered_requests),
            ("max_kept_executions_per_workflow", self.max_kept_executions_per_workflow),
            ("max_kept_executions", self.max_kept_executions),
            ("max_kept_log_bytes", self.max_kept_log_bytes),
            ("max_finished_age_secs", self.max_finished_age_secs),
        ]
    }
}

/// The limits in force (`GET`/`PUT /api/v1/cluster/limits`), with the ceiling of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct Limits {
    #[serde(flatten)]
    pub values: LimitValues,
    /// The most each may be set to.
    pub ceilings: LimitValues,
}

/// The most each tunable limit may be set to. Fixed in the code (a node's memory and the Raft log
/// entry size bound them), so the document states them; `core`'s limits are checked against them.
pub const LIMIT_CEILINGS: LimitValues = LimitValues {
    max_tasks_per_workflow: CEILING_TASKS,
    max_params_bytes: CEILING_PARAMS,
    max_output_bytes: CEILING_OUTPUT,
    max_log_bytes_per_attempt: CEILING_LOG,
    request_window_secs: CEILING_WINDOW,
    max_remembered_requests: CEILING_REMEMBERED,
    max_kept_executions_per_workflow: CEILING_KEPT_PER_WORKFLOW,
    max_kept_executions: CEILING_KEPT,
    max_kept_log_bytes: CEILING_KEPT_LOG,
    max_finished_age_secs: CEILING_AGE,
};
const CEILING_TASKS: u32 = 2_000;
const CEILING_PARAMS: u32 = 1024 * 1024;
const CEILING_OUTPUT: u32 = 4 * 1024 * 1024;
const CEILING_LOG: u32 = 16 * 1024 * 1024;
const CEILING_WINDOW: u32 = 24 * 3_600;
const CEILING_REMEMBERED: u32 = 1_000_000;
const CEILING_KEPT_PER_WORKFLOW: u32 = 1_000_000;
const CEILING_KEPT: u32 = 10_000_000;
const CEILING_KEPT_LOG: u32 = u32::MAX;
const CEILING_AGE: u32 = 10 * 365 * 24 * 3_600;

/// Body of `PUT /api/v1/cluster/limits`: the limits to change (each between 1 and its ceiling,
/// [`LIMIT_CEILINGS`]); the rest stay as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsChange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = CEILING_TASKS))]
    pub max_tasks_per_workflow: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = CEILING_PARAMS))]
    pub max_params_bytes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = CEILING_OUTPUT))]
    pub max_output_bytes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = CEILING_LOG))]
    pub max_log_bytes_per_attempt: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = CEILING_WINDOW))]
    pub request_window_secs: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = CEILING_REMEMBERED))]
    pub max_remembered_requests: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = CEILING_KEPT_PER_WORKFLOW))]
    pub max_kept_executions_per_workflow: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = CEILING_KEPT))]
    pub max_kept_executions: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = CEILING_KEPT_LOG))]
    pub max_kept_log_bytes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = CEILING_AGE))]
    pub max_finished_age_secs: Option<u32>,
}

impl LimitsChange {
    /// Sets the limit called `name` to `value`; `false` if no limit has that name.
    ///
    /// ```
    /// let mut change = linkloom_wire::LimitsChange::default();
    /// assert!(change.set("max_kept_executions", 5_000));
    /// assert_eq!(change.max_kept_executions, Some(5_000));
    /// assert!(!change.set("max_kept_everything", 1));
    /// ```
    pub fn set(&mut self, name: &str, value: u32) -> bool {
        let slot = match name {
            "max_tasks_per_workflow" => &mut self.max_tasks_per_workflow,
            "max_params_bytes" => &mut self.max_params_bytes,
            "max_output_bytes" => &mut self.max_output_bytes,
            "max_log_bytes_per_attempt" => &mut self.max_log_bytes_per_attempt,
            "request_window_secs" => &mut self.request_window_secs,
            "max_remembered_requests" => &mut self.max_remembered_requests,
            "max_kept_executions_per_workflow" => &mut self.max_kept_executions_per_workflow,
            "max_kept_executions" => &mut self.max_kept_executions,
            "max_kept_log_bytes" => &mut self.max_kept_log_bytes,
            "max_finished_age_secs" => &mut self.max_finished_age_secs,
            _ => return false,
        };
        *slot = Some(value);
        true
    }
}

#[cfg(test)]
mod limit_names {
    use super::*;

    #[test]
    fn every_named_limit_can_be_set_by_its_name() {
        for (name, _) in LIMIT_CEILINGS.named() {
            let mut change = LimitsChange::default();
            assert!(change.set(name, 7), "{name}");
            let json = serde_json::to_value(change).unwrap();
            assert_eq!(json[name], 7, "{name} sets its own field: {json}");
        }
    }
}
