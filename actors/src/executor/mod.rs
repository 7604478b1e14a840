//! Running one attempt: an HTTP call to the user's backend, or a shell command on this node.
//!
//! An executor returns how the attempt ended ([`Outcome`]); the execution actor turns that into
//! a `FinishAttempt` command. Executors never touch replicated state themselves, except that shell
//! output is streamed into the attempt's log as it is produced.

mod http;
pub(crate) mod log_rate;
mod policy;
mod sandbox;
mod shell;

use std::time::Duration;

use linkloom_core::state::AttemptResult;

pub(crate) use http::{run_http, HttpCall};
pub use http::{CallError, HyperTaskHttp, TaskHttp};
pub use policy::{parse_host_rules, HostRule, ShellLimits, TargetRules, TaskPolicy, DEFAULT_MAX_PROCESSES};
pub(crate) use sandbox::Cgroups;
pub(crate) use shell::{run_shell, ShellCall};

/// How an executor left an attempt.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Ended; report this result (with log text to append first, if any).
    Done { result: AttemptResult, logs: Option<String> },
    /// The backend accepted the task and will call back (HTTP 202); wait until `deadline_ms`.
    AwaitCallback { deadline_ms: i64 },
}

/// What an attempt needs to know about itself.
#[derive(Debug, Clone)]
pub(crate) struct AttemptInfo {
    pub(crate) execution_id: String,
    pub(crate) workflow_id: String,
    pub(crate) task_id: String,
    pub(crate) attempt_id: u64,
    pub(crate) n: u32,
    pub(crate) started_at_ms: i64,
    pub(crate) timeout: Option<Duration>,
}

impl AttemptInfo {
    pub(crate) fn deadline_ms(&self) -> Option<i64> {
        self.timeout.map(|t| self.started_at_ms + t.as_millis() as i64)
    }
}
