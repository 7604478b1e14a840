//! An execution's life as the cluster sees it: created (by a trigger or a schedule tick, under
//! the workflow's concurrency policy), assigned to the node that drives it, cancelled, timed out,
//! and retried (retention, which drops finished ones, is `history.rs`).
//!
//! Execution ids start with `<workflow>:`, so a workflow's executions are one range of the map
//! (see `State::executions_of`); creating an id that exists is answered with the existing one,
//! which is what makes a trigger and a tick exactly-once.

use super::command::{Rejection, Response};
use super::execution::{AuditAction, Execution, Trigger};
use super::{workflow, State, Workflow};
use crate::ids::NodeId;
use crate::json::Json;
use crate::spec::Concurrency;

impl State {
    pub(super) fn assign_execution(&mut self, execution_id: String, node_id: NodeId) -> Response {
        self.promote(&execution_id);
        match self.executions.get_mut(&execution_id) {
            None => Response::Rejected(Rejection::ExecutionNotFound(execution_id)),
            Some(e) if e.status.is_terminal() => {
                Response::Rejected(Rejection::ExecutionFinished { execution_id, status: e.status })
            }
            Some(e) => {
                e.owner = Some(node_id);
                self.reindex(&execution_id);
                Response::ExecutionAssigned { execution_id, node_id }
            }
        }
    }

    pub(super) fn cancel_execution(&mut self, execution_id: String, actor: Option<String>, now: i64) -> Response {
        self.promote(&execution_id);
        let Some(execution) = self.executions.get_mut(&execution_id) else {
            return Response::Rejected(Rejection::ExecutionNotFound(execution_id));
        };
        match execution.cancel(now) {
            Ok(()) => {
                execution.record(AuditAction::Cancelled, actor, now);
                self.reindex(&execution_id);
                Response::ExecutionCancelled { execution_id }
            }
            Err(r) => Response::Rejected(r),
        }
    }

    /// Ends an execution past its spec's `execution_timeout` (refused before the deadline, judged
    /// on replicated time).
    pub(super) fn time_out_execution(&mut self, execution_id: String, now: i64) -> Response {
        self.promote(&execution_id);
        let Some(execution) = self.executions.get_mut(&execution_id) else {
            return Response::Rejected(Rejection::ExecutionNotFound(execution_id));
        };
        let deadline = workflow::spec_of(&self.workflows, execution)
            .and_then(|spec| spec.execution_timeout)
            .map(|t| execution.created_at_ms.saturating_add(t.0 as i64));
        match deadline {
            Some(deadline) if now >= deadline => match execution.time_out(now) {
                Ok(()) => {
                    self.reindex(&execution_id);
                    Response::ExecutionTimedOut { execution_id }
                }
                Err(r) => Response::Rejected(r),
            },
            _ => Response::Rejected(Rejection::NotTimedOut { execution_id }),
        }
    }

    pub(super) fn retry_execution(&mut self, execution_id: String, actor: Option<String>, now: i64) -> Response {
        self.promote(&execution_id);
        let Some(execution) = self.executions.get_mut(&execution_id) else {
            return Response::Rejected(Rejection::ExecutionNotFound(execution_id));
        };
        match execution.reopen() {
            Ok(tasks_reset) => {
                execution.record(AuditAction::Retried, actor, now);
                self.reindex(&execution_id);
                Response::ExecutionReopened { execution_id, tasks_reset }
            }
            Err(r) => Response::Rejected(r),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn create_execution(
        &mut self,
        execution_id: String,
        workflow_id: &str,
        trigger: Trigger,
        scheduled_at_ms: Option<i64>,
        overrides: Json,
        actor: Option<String>,
        now: i64,
    ) -> Response {
        let mut execution_id = execution_id;
        if self.exists(&execution_id) {
            if !(crate::bugs::active(crate::bugs::Bug::CronDuplicate) && trigger == Trigger::Schedule) {
                return Response::ExecutionExists { execution_id };
            }
            execution_id = format!("{execution_id}-dup{}", self.kept_executions());
        }
        // Ids start with `<workflow>:`, which keeps a workflow's executions together in the map
        // (see `executions_of`).
        if !execution_id.strip_prefix(workflow_id).is_some_and(|rest| rest.starts_with(':')) {
            return Response::Rejected(Rejection::InvalidParams(format!(
                "execution id `{execution_id}` must start with `{workflow_id}:`"
            )));
        }
        let Some(active) = self.workflows.get(workflow_id).and_then(Workflow::active) else {
            return Response::Rejected(Rejection::WorkflowNotFound(workflow_id.to_string()));
        };
        let params = match merge_params(&active.spec.params, &overrides, self.limits.max_params_bytes as usize) {
            Ok(p) => p,
            Err(r) => return Response::Rejected(r),
        };
        let concurrency = active.spec.concurrency;
        let mut blocked_by = None;
        // Concurrency governs what starts on its own (ticks, events, chains), not what a caller
        // asks for by name (manual triggers, backfills).
        let policed = match (trigger, scheduled_at_ms) {
            (Trigger::Schedule, Some(tick)) => {
                // The schedule cursor moves whether the tick fires or is skipped.
                if let Some(wf) = self.workflows.get_mut(workflow_id) {
                    wf.last_tick_ms = Some(wf.last_tick_ms.map_or(tick, |t| t.max(tick)));
                }
                Some(tick)
            }
            (Trigger::Event | Trigger::Webhook | Trigger::Workflow, _) => Some(now),
            _ => None,
        };
        if let Some(tick) = policed {
            let unfinished: Vec<(String, bool)> = self
                .unfinished_ids_of(workflow_id)
                .into_iter()
                .filter_map(|id| self.executions.get(&id).map(|e| (id, e.blocked_by.is_some())))
                .collect();
            let skip = |state: &mut State, reason: &str| {
                if trigger == Trigger::Schedule {
                    if let Some(wf) = state.workflows.get_mut(workflow_id) {
                        wf.skipped_ticks += 1;
                    }
                }
                Response::TickSkipped {
                    workflow_id: workflow_id.to_string(),
                    scheduled_at_ms: tick,
                    reason: reason.to_string(),
                }
            };
            match concurrency {
                Concurrency::Allow => {}
                Concurrency::Forbid if !unfinished.is_empty() => {
                    return skip(self, "an earlier execution is still running (concurrency: forbid)");
                }
                Concurrency::Forbid => {}
                Concurrency::BufferOne => {
                    if unfinished.iter().any(|(_, waiting)| *waiting) {
                        return skip(self, "one execution is already buffered (concurrency: buffer_one)");
                    }
                    blocked_by = unfinished.iter().map(|(id, _)| id.clone()).max();
                }
                Concurrency::Replace => {
                    for (id, _) in &unfinished {
                        if let Some(e) = self.executions.get_mut(id) {
                            let _ = e.cancel(now);
                        }
                        self.reindex(id);
                    }
                }
            }
        }
        let Some(active) = self.workflows.get(workflow_id).and_then(Workflow::active) else {
            return Response::Rejected(Rejection::WorkflowNotFound(workflow_id.to_string()));
        };
        let mut execution = Execution::new(
            execution_id.clone(),
            &active.spec,
            active.version,
            trigger,
            scheduled_at_ms,
            params,
            actor,
            now,
        );
        execution.blocked_by = blocked_by;
        // Validation rules out tasks that can never run, but settle anyway: an execution must
        // never wait on a task nothing will start.
        execution.settle(&active.spec, now);
        self.executions.insert(execution_id.clone(), execution);
        self.reindex(&execution_id);
        Response::ExecutionCreated { execution_id }
    }

    /// The unfinished execution a buffered execution still waits for.
    pub(super) fn blocker<'a>(&'a self, execution: &'a Execution) -> Option<&'a str> {
        let by = execution.blocked_by.as_deref()?;
        self.executions.get(by).filter(|e| !e.status.is_terminal()).map(|_| by)
    }

    /// Tasks of execution `id` that may start an attempt at `now_ms` (none while the execution
    /// waits for another one).
    pub fn ready_tasks(&self, id: &str, now_ms: i64) -> Vec<String> {
        let Some(execution) = self.executions.get(id) else { return Vec::new() };
        let Some(spec) = self.execution_spec(execution) else { return Vec::new() };
        if self.blocker(execution).is_some() {
            return Vec::new();
        }
        execution.ready_tasks(spec, now_ms).into_iter().map(String::from).collect()
    }
}

/// The defaults with the overrides' keys replaced (one level deep, as params are named values).
fn merge_params(defaults: &Json, overrides: &Json, max_bytes: usize) -> Result<Json, Rejection> {
    let mut merged = match &defaults.0 {
        serde_json::Value::Object(map) => map.clone(),
        _ => serde_json::Map::new(),
    };
    match &overrides.0 {
        serde_json::Value::Null => {}
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                merged.insert(k.clone(), v.clone());
            }
        }
        other => return Err(Rejection::InvalidParams(format!("params must be an object, not {other}"))),
    }
    let merged = Json(serde_json::Value::Object(merged));
    if merged.encoded_len() > max_bytes {
        return Err(Rejection::TooLarge { what: "params".into(), size: merged.encoded_len(), limit: max_bytes });
    }
    Ok(merged)
}
