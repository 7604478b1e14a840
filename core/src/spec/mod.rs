//! The workflow spec: what users write in YAML or JSON, and its validation.
//!
//! Parsing rejects unknown fields with their path; [`validate`] then checks everything serde
//! cannot (ids, the DAG, templates, schedule, time zone, per-type fields) and reports every
//! problem at once, each with its path, so a user fixes a file in one round.

mod dag;
mod template;
mod trigger;
mod validate;

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::codec::Added;
use crate::duration::DurationMs;
use crate::json::Json;

pub use dag::Dag;
pub use template::{find_template_refs, TemplateRef};
pub use trigger::{
    event_execution_suffix, filter_matches, is_event_id, is_event_name, ChainOn, TriggerKind, TriggerSpec, WebhookAuth,
    EVENT_ID_RULE, EVENT_NAME_RULE, MAX_FILTER_FIELDS, MAX_TRIGGERS,
};
pub use validate::validate;

/// A workflow as the user describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowSpec {
    /// 1 to 64 of `A-Z a-z 0-9 _ -`.
    #[schemars(regex(pattern = r"^[A-Za-z0-9_-]{1,64}$"))]
    pub id: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Crontab: 5 fields, or 6 with seconds first.
    #[serde(default)]
    pub schedule: Option<String>,
    /// IANA time zone of the schedule; UTC when absent.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub timezone: Option<String>,
    #[serde(default)]
    pub concurrency: Concurrency,
    #[serde(default)]
    pub catchup: Catchup,
    /// Default parameters (a JSON object); a manual trigger may override them.
    #[serde(default = "Json::empty_object")]
    #[schemars(with = "serde_json::Map<String, serde_json::Value>")]
    pub params: Json,
    #[serde(default)]
    pub defaults: TaskDefaults,
    /// Longest an execution may run, from its creation; past it the execution fails.
    #[serde(default)]
    pub execution_timeout: Option<DurationMs>,
    /// Signs this workflow's HTTP task requests with the node's key of this name
    /// (`LOOM_SIGNING_KEYS`) instead of the cluster-wide secret. Only the name is stored: secrets
    /// stay in the nodes' configuration.
    #[serde(default)]
    pub signing_key: Option<String>,
    /// The tasks: at least one.
    #[schemars(length(min = 1))]
    pub tasks: Vec<TaskSpec>,
    /// What else starts this workflow besides its schedule and manual triggers: named events,
    /// other workflows ending, webhooks.
    #[serde(default)]
    pub triggers: Added<Vec<TriggerSpec>>,
}

/// What happens when a tick fires while an earlier execution still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Concurrency {
    #[default]
    Allow,
    Forbid,
    BufferOne,
    Replace,
}

/// What a scheduler does with ticks missed while the cluster was down or the workflow paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Catchup {
    None,
    #[default]
    Latest,
    All,
}

/// Settings every task inherits unless it sets its own.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskDefaults {
    #[serde(default)]
    pub timeout: Option<DurationMs>,
    #[serde(default)]
    pub retry: Option<RetrySpec>,
}

/// A retry policy as written; unset fields fall back to the workflow defaults, then to
/// [`RetryPolicy::default`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub max_attempts: Option<u32>,
    #[serde(default)]
    pub backoff: Option<DurationMs>,
    #[serde(default)]
    pub max_backoff: Option<DurationMs>,
    #[serde(default)]
    #[schemars(range(min = 1.0))]
    pub multiplier: Option<f64>,
}

/// A fully resolved retry policy.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub backoff: DurationMs,
    pub max_backoff: DurationMs,
    pub multiplier: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 1,
            backoff: DurationMs::from_secs(1),
            max_backoff: DurationMs::from_secs(60),
            multiplier: 2.0,
        }
    }
}

impl RetryPolicy {
    /// Delay before attempt `next_n` (2 for the first retry). `jitter_permille` (0..=1000) comes
    /// from the proposer's randomness and scales the delay into [50%, 100%] of its nominal value.
    pub fn delay_before(&self, next_n: u32, jitter_permille: u16) -> DurationMs {
        let exponent = next_n.saturating_sub(2).min(63) as i32;
        let nominal = self.backoff.0 as f64 * self.multiplier.powi(exponent);
        let capped = nominal.min(self.max_backoff.0 as f64).max(0.0);
        let jitter = 0.5 + 0.5 * (f64::from(jitter_permille.min(1000)) / 1000.0);
        DurationMs((capped * jitter) as u64)
    }
}

/// The kind of a task: who runs it and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    Http,
    Shell,
    Worker,
}

impl fmt::Display for TaskKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TaskKind::Http => "http",
            TaskKind::Shell => "shell",
            TaskKind::Worker => "worker",
        })
    }
}

/// When a task may run, given how its dependencies ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum When {
    /// Every dependency succeeded.
    #[default]
    AllSuccess,
    /// Every dependency ended, however.
    AllDone,
    /// At least one dependency failed.
    AnyFailed,
}

/// One task of a workflow. Fields that belong to another kind are rejected by [`validate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    /// Unique in the workflow: 1 to 64 of `A-Z a-z 0-9 _ -`.
    #[schemars(regex(pattern = r"^[A-Za-z0-9_-]{1,64}$"))]
    pub id: String,
    #[serde(rename = "type")]
    pub kind: TaskKind,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub depends_on: Vec<String>,
    #[serde(default)]
    pub when: When,
    #[serde(default)]
    pub timeout: Option<DurationMs>,
    #[serde(default)]
    pub retry: Option<RetrySpec>,
    /// Input passed to the task (templated).
    #[serde(default)]
    pub input: Option<Json>,
    /// `http`: the backend URL (templated).
    #[serde(default)]
    pub url: Option<String>,
    /// `http`: the method, POST when absent.
    #[serde(default)]
    pub method: Option<String>,
    /// `http`: extra request headers (templated values).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `shell`: argv list, or a string run by `sh -c` (templated).
    #[serde(default)]
    pub command: Option<ShellCommand>,
    /// `shell`: environment variables (templated values).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// `shell`: working directory.
    #[serde(default)]
    pub workdir: Option<String>,
    /// `worker`: the queue workers pull this task from.
    #[serde(default)]
    pub queue: Option<String>,
}

impl WorkflowSpec {
    pub fn task(&self, id: &str) -> Option<&TaskSpec> {
        self.tasks.iter().find(|t| t.id == id)
    }

    /// The retry policy of `task`, resolved through the workflow defaults.
    pub fn retry_policy(&self, task: &TaskSpec) -> RetryPolicy {
        let base = RetryPolicy::default();
        let defaults = self.defaults.retry.clone().unwrap_or_default();
        let own = task.retry.clone().unwrap_or_default();
        RetryPolicy {
            max_attempts: own.max_attempts.or(defaults.max_attempts).unwrap_or(base.max_attempts),
            backoff: own.backoff.or(defaults.backoff).unwrap_or(base.backoff),
            max_backoff: own.max_backoff.or(defaults.max_backoff).unwrap_or(base.max_backoff),
            multiplier: own.multiplier.or(defaults.multiplier).unwrap_or(base.multiplier),
        }
    }

    /// The per-attempt timeout of `task`, if any.
    pub fn task_timeout(&self, task: &TaskSpec) -> Option<DurationMs> {
        task.timeout.or(self.defaults.timeout)
    }

    /// The time zone name, UTC when unset.
    pub fn timezone_name(&self) -> &str {
        self.timezone.as_deref().unwrap_or("UTC")
    }
}

/// A shell command: an argv list, or one string for `sh -c`.
#[derive(Debug, Clone, PartialEq)]
pub enum ShellCommand {
    Argv(Vec<String>),
    Script(String),
}

impl JsonSchema for ShellCommand {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ShellCommand".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "An argv list (run as is), or one string run by `sh -c`.",
            "oneOf": [
                {"type": "array", "items": {"type": "string"}, "minItems": 1},
                {"type": "string"},
            ],
        })
    }
}

#[derive(Serialize, Deserialize)]
enum ShellCommandBinary {
    Argv(Vec<String>),
    Script(String),
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum ShellCommandText {
    Argv(Vec<String>),
    Script(String),
}

impl Serialize for ShellCommand {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            match self {
                ShellCommand::Argv(argv) => ShellCommandText::Argv(argv.clone()),
                ShellCommand::Script(s) => ShellCommandText::Script(s.clone()),
            }
            .serialize(serializer)
        } else {
            match self {
                ShellCommand::Argv(argv) => ShellCommandBinary::Argv(argv.clone()),
                ShellCommand::Script(s) => ShellCommandBinary::Script(s.clone()),
            }
            .serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for ShellCommand {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            match ShellCommandText::deserialize(deserializer) {
                Ok(ShellCommandText::Argv(argv)) => Ok(ShellCommand::Argv(argv)),
                Ok(ShellCommandText::Script(s)) => Ok(ShellCommand::Script(s)),
                Err(_) => {
                    Err(serde::de::Error::custom("expected a list of strings (argv) or one string (run by sh -c)"))
                }
            }
        } else {
            Ok(match ShellCommandBinary::deserialize(deserializer)? {
                ShellCommandBinary::Argv(argv) => ShellCommand::Argv(argv),
                ShellCommandBinary::Script(s) => ShellCommand::Script(s),
            })
        }
    }
}

/// One problem found in a spec, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Path into the document, e.g. `tasks[2].depends_on[0]`; empty for the whole document.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in a spec. Never empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SpecError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let texts: Vec<String> = self.problems.iter().map(Problem::to_string).collect();
        f.write_str(&texts.join("; "))
    }
}

impl SpecError {
    pub(crate) fn one(path: impl Into<String>, message: impl Into<String>) -> Self {
        SpecError { problems: vec![Problem { path: path.into(), message: message.into() }] }
    }
}

/// Parses a spec from YAML text (JSON is accepted too, as YAML is a superset), without
/// validating it beyond its shape.
pub fn parse_yaml(text: &str) -> Result<WorkflowSpec, SpecError> {
    let deserializer = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(deserializer).map_err(|e| shape_error(e.path(), e.inner()))
}

/// Parses a spec from JSON text, without validating it beyond its shape.
pub fn parse_json(text: &str) -> Result<WorkflowSpec, SpecError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let spec = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| shape_error(e.path(), e.inner()))?;
    deserializer.end().map_err(|e| SpecError::one("", e.to_string()))?;
    Ok(spec)
}

/// Parses and validates in one step.
pub fn parse_and_validate_yaml(text: &str) -> Result<WorkflowSpec, SpecError> {
    let spec = parse_yaml(text)?;
    validate(&spec)?;
    Ok(spec)
}

fn shape_error(path: &serde_path_to_error::Path, inner: &dyn fmt::Display) -> SpecError {
    let path = path.to_string();
    let path = if path == "." || path == "?" { String::new() } else { path };
    // serde_yaml already prefixes some messages with the path; do not say it twice.
    let message = inner.to_string();
    let message = message.strip_prefix(&format!("{path}: ")).map(str::to_string).unwrap_or(message);
    SpecError::one(path, message)
}
