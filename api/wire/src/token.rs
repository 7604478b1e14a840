//! API tokens: what a token may do is its role (and, for a worker token, its queues).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

open_enum! {
    /// What a token may do. Roles are ordered: each may do what the ones below it may, except
    /// `worker`, which may only speak the worker protocol.
    pub enum Role {
        /// Everything, including tokens, membership and limits.
        Admin => "admin",
        /// Workflows and executions: store, trigger, cancel, retry, pause.
        Operator => "operator",
        /// Reads only.
        Viewer => "viewer",
        /// The worker protocol only (connect, heartbeat, complete, release, drain).
        Worker => "worker",
        /// Sending events only (`POST /api/v1/events`).
        Publisher => "publisher",
    }
}

/// Body of `POST /api/v1/tokens`. Only a `worker` token may be limited to `queues`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend(
    "if" = {"properties": {"role": {"const": "worker"}}},
    "else" = {"properties": {"queues": {"type": "null"}}}
))]
pub struct NewToken {
    /// 1 to 64 of `A-Z a-z 0-9 . _ -`; unique.
    #[schemars(regex(pattern = r"^[A-Za-z0-9._-]{1,64}$"))]
    pub name: String,
    /// One of [`Role`]'s values (text, so that a node names a value it does not know).
    #[schemars(with = "Role")]
    pub role: String,
    /// A worker token limited to these queues (absent or null: any queue). Only for `worker`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1), inner(regex(pattern = r"^[a-z0-9][a-z0-9_-]{0,62}$")))]
    pub queues: Option<Vec<String>>,
}

/// A token as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct Token {
    pub name: String,
    pub role: Role,
    /// The queues a worker token is limited to (null: any queue).
    pub queues: Option<Vec<String>>,
    #[schemars(extend("format" = "date-time"))]
    pub created_at: String,
    /// The token name that created it (null: an open node or the admin token).
    pub created_by: Option<String>,
}

/// Answer to creating a token: the only time its secret is shown.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct CreatedToken {
    pub name: String,
    pub role: Role,
    pub queues: Option<Vec<String>>,
    /// The secret to send as `Authorization: Bearer <token>`. Shown only in this answer.
    pub token: String,
    #[schemars(extend("format" = "date-time"))]
    pub created_at: String,
}
