//! Workflows: registering a version, pausing, deleting, and the schedule cursor.
//!
//! A workflow keeps its last [`limits::MAX_VERSIONS_KEPT`] versions (never one an unfinished
//! execution still runs), and a deleted workflow keeps its version counter, so a version number
//! always means one spec.

use serde::{Deserialize, Serialize};

use super::command::{Rejection, Response};
use super::execution::{AuditAction, Execution};
use super::State;
use crate::limits;
use crate::spec::{validate, WorkflowSpec};

/// A workflow: its kept versions (the latest is active), and whether it is paused or deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workflow {
    pub id: String,
    pub latest: u32,
    pub paused: bool,
    /// A deleted workflow keeps its version counter, so versions are never reused.
    pub deleted: bool,
    pub updated_at_ms: i64,
    /// Who made the last change (a new version, pause, resume, delete): a token name.
    pub updated_by: Option<String>,
    /// A persistent map: copying a workflow (as a snapshot's copy of the state makes the next
    /// write do) does not copy every kept spec.
    pub versions: imbl::OrdMap<u32, WorkflowVersion>,
    /// The latest schedule tick handled (fired or skipped): the scheduler resumes after it.
    pub last_tick_ms: Option<i64>,
    /// Ticks skipped by `concurrency: forbid` (or a full `buffer_one`) since the workflow exists.
    pub skipped_ticks: u64,
}

/// One immutable version of a workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowVersion {
    pub version: u32,
    pub spec: WorkflowSpec,
    pub created_at_ms: i64,
    pub created_by: Option<String>,
}

impl Workflow {
    /// The active version (absent only if it was deleted).
    pub fn active(&self) -> Option<&WorkflowVersion> {
        if self.deleted {
            None
        } else {
            self.versions.get(&self.latest)
        }
    }
}

impl State {
    pub(super) fn set_paused(
        &mut self,
        workflow_id: String,
        paused: bool,
        actor: Option<String>,
        now: i64,
    ) -> Response {
        match self.live_workflow_mut(&workflow_id) {
            Ok(wf) => {
                wf.paused = paused;
                wf.updated_at_ms = now;
                wf.updated_by = actor;
                Response::PausedSet { workflow_id, paused }
            }
            Err(r) => Response::Rejected(r),
        }
    }

    /// Moves the schedule cursor (never backwards): the scheduler resumes after `tick_ms`.
    pub(super) fn advance_schedule(&mut self, workflow_id: String, tick_ms: i64) -> Response {
        match self.live_workflow_mut(&workflow_id) {
            Ok(wf) => {
                let last_tick_ms = wf.last_tick_ms.map_or(tick_ms, |t| t.max(tick_ms));
                wf.last_tick_ms = Some(last_tick_ms);
                Response::ScheduleAdvanced { workflow_id, last_tick_ms }
            }
            Err(r) => Response::Rejected(r),
        }
    }

    pub(super) fn live_workflow_mut(&mut self, id: &str) -> Result<&mut Workflow, Rejection> {
        match self.workflows.get_mut(id) {
            Some(wf) if !wf.deleted => Ok(wf),
            _ => Err(Rejection::WorkflowNotFound(id.to_string())),
        }
    }

    pub(super) fn put_workflow(&mut self, spec: WorkflowSpec, actor: Option<String>, now: i64) -> Response {
        if let Err(e) = validate(&spec) {
            return Response::Rejected(Rejection::InvalidSpec(e.to_string()));
        }
        let limits = self.limits;
        if spec.tasks.len() > limits.max_tasks_per_workflow as usize {
            return Response::Rejected(Rejection::InvalidSpec(format!(
                "tasks: {} tasks; this cluster allows at most {} (max_tasks_per_workflow)",
                spec.tasks.len(),
                limits.max_tasks_per_workflow
            )));
        }
        if spec.params.encoded_len() > limits.max_params_bytes as usize {
            return Response::Rejected(Rejection::InvalidSpec(format!(
                "params: larger than {} bytes as JSON (max_params_bytes)",
                limits.max_params_bytes
            )));
        }
        if let Err(r) = self.check_chaining(&spec) {
            return Response::Rejected(r);
        }
        let id = spec.id.clone();
        let workflow = self.workflows.entry(id.clone()).or_insert_with(|| Workflow {
            id: id.clone(),
            latest: 0,
            paused: false,
            deleted: false,
            updated_at_ms: now,
            updated_by: None,
            versions: imbl::OrdMap::new(),
            last_tick_ms: None,
            skipped_ticks: 0,
        });
        let version = workflow.latest + 1;
        workflow.latest = version;
        workflow.deleted = false;
        workflow.updated_at_ms = now;
        workflow.updated_by.clone_from(&actor);
        workflow.versions.insert(version, WorkflowVersion { version, spec, created_at_ms: now, created_by: actor });
        self.drop_old_versions(&id);
        self.reindex_triggers(&id);
        Response::WorkflowStored { workflow_id: id, version }
    }

    /// Keeps at most [`limits::MAX_VERSIONS_KEPT`] versions, never one an unfinished execution
    /// still runs.
    pub(super) fn drop_old_versions(&mut self, id: &str) {
        let Some(workflow) = self.workflows.get(id) else {
            return;
        };
        if workflow.versions.len() <= limits::MAX_VERSIONS_KEPT {
            return;
        }
        let in_use: Vec<u32> = self
            .unfinished_ids_of(id)
            .iter()
            .filter_map(|e| self.executions.get(e).map(|e| e.workflow_version))
            .collect();
        let excess = workflow.versions.len() - limits::MAX_VERSIONS_KEPT;
        let latest = workflow.latest;
        let doomed: Vec<u32> =
            workflow.versions.keys().copied().filter(|v| *v != latest && !in_use.contains(v)).take(excess).collect();
        if let Some(workflow) = self.workflows.get_mut(id) {
            for v in doomed {
                workflow.versions.remove(&v);
            }
        }
    }

    pub(super) fn delete_workflow(&mut self, id: &str, actor: Option<String>, now: i64) -> Response {
        match self.live_workflow_mut(id) {
            Err(r) => Response::Rejected(r),
            Ok(workflow) => {
                workflow.deleted = true;
                workflow.updated_at_ms = now;
                workflow.updated_by.clone_from(&actor);
                self.reindex_triggers(id);
                let mut cancelled = 0;
                for execution_id in self.unfinished_ids_of(id) {
                    let Some(execution) = self.executions.get_mut(&execution_id) else { continue };
                    if execution.cancel(now).is_ok() {
                        execution.record(AuditAction::Cancelled, actor.clone(), now);
                        cancelled += 1;
                        self.reindex(&execution_id);
                    }
                }
                Response::WorkflowDeleted { workflow_id: id.to_string(), cancelled_executions: cancelled }
            }
        }
    }

    /// A live (not deleted) workflow.
    pub fn workflow(&self, id: &str) -> Option<&Workflow> {
        self.workflows.get(id).filter(|w| !w.deleted)
    }

    /// Live workflows in id order, starting after `after`.
    pub fn workflows_after<'a>(&'a self, after: Option<&'a str>) -> impl Iterator<Item = &'a Workflow> + 'a {
        let start = match after {
            Some(a) => std::ops::Bound::Excluded(a.to_string()),
            None => std::ops::Bound::Unbounded,
        };
        self.workflows.range((start, std::ops::Bound::Unbounded)).map(|(_, w)| w).filter(|w| !w.deleted)
    }

    /// Every live workflow, in id order.
    pub fn workflows(&self) -> impl Iterator<Item = &Workflow> {
        self.workflows.values().filter(|w| !w.deleted)
    }

    /// The spec an execution runs.
    pub fn execution_spec(&self, execution: &Execution) -> Option<&WorkflowSpec> {
        spec_of(&self.workflows, execution)
    }
}

/// The spec an execution runs, from the workflow map alone: a caller may hold the execution
/// mutably meanwhile (the maps are disjoint fields of the state).
pub(super) fn spec_of<'a>(
    workflows: &'a imbl::OrdMap<String, Workflow>,
    execution: &Execution,
) -> Option<&'a WorkflowSpec> {
    workflows.get(&execution.workflow_id).and_then(|w| w.versions.get(&execution.workflow_version)).map(|v| &v.spec)
}
