//! Kept history: which executions are unfinished (what the engine works on), which are finished
//! and in what order, and the retention that drops the oldest finished ones.
//!
//! Retention is replicated state, like every other limit ([`crate::limits::Tunable`]): finished
//! executions per workflow, finished executions in the whole cluster, log bytes, and the age of
//! a finished execution. `apply` enforces the counts and bytes after every command (so they are
//! bounds, not goals), and the age when the leader's periodic `PruneExecutions` carries the time.
//! The oldest finished execution (by the time it finished) goes first, whole: its attempts and
//! logs with it. An unfinished execution is never dropped.
//!
//! The indexes here are derived from `executions`: [`State::reindex`] keeps them in step,
//! `check_invariants` compares them with a recount, and a loaded snapshot rebuilds them. So they
//! are not part of the replicated format, and the engine's questions ("what is unfinished?")
//! cost what is unfinished, not everything kept.

use std::collections::{BTreeMap, BTreeSet};

use imbl::{OrdMap, OrdSet};

use super::command::Response;
use super::execution::{AttemptStatus, Execution, ExecutionStatus};
use super::log::AttemptLog;
use super::State;

/// Where each execution stands, and the bytes of every kept log.
#[derive(Debug, Clone, Default)]
pub(super) struct HistoryIndex {
    unfinished: OrdSet<String>,
    /// Finished executions, oldest first: (finished at, id).
    finished: OrdSet<(i64, String)>,
    /// The same, per workflow.
    by_workflow: OrdMap<String, OrdSet<(i64, String)>>,
    /// Where each finished execution sits in `finished`, and what it was counted as.
    finished_at: OrdMap<String, Filed>,
    /// Finished executions by status, and their attempts by outcome (what `/metrics` shows
    /// without walking the history).
    finished_statuses: BTreeMap<ExecutionStatus, u64>,
    finished_attempts: BTreeMap<AttemptStatus, u64>,
    /// Bytes kept in every attempt log.
    pub(super) log_bytes: u64,
    /// Workflows that gained a finished execution since retention last looked.
    grown: BTreeSet<String>,
    /// The change journal: each execution filed since this index was built, under the sequence
    /// number of its latest filing (so the engine can ask "what changed since n?" and look at
    /// those executions only). One entry per execution: bounded by what is kept.
    journal: OrdMap<u64, String>,
    journaled_at: OrdMap<String, u64>,
    next_seq: u64,
}

/// Two indexes are equal when they index the same things: what is derived from the executions.
/// The retention work list and the change journal record how the state got here, which a
/// snapshot (and so a recount) does not carry.
impl PartialEq for HistoryIndex {
    fn eq(&self, other: &Self) -> bool {
        self.unfinished == other.unfinished
            && self.finished == other.finished
            && self.by_workflow == other.by_workflow
            && self.finished_at == other.finished_at
            && self.finished_statuses == other.finished_statuses
            && self.finished_attempts == other.finished_attempts
            && self.log_bytes == other.log_bytes
    }
}

/// How a finished execution was counted when filed (finished executions do not change until
/// they are reopened or dropped, and then exactly this is taken back out).
#[derive(Debug, Clone, PartialEq)]
struct Filed {
    at: i64,
    status: ExecutionStatus,
    attempts: Vec<(AttemptStatus, u32)>,
}

/// What is kept, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub unfinished_executions: usize,
    pub finished_executions: usize,
    pub log_bytes: u64,
    /// Finished executions by status, and their attempts by outcome.
    pub finished_statuses: BTreeMap<ExecutionStatus, u64>,
    pub finished_attempts: BTreeMap<AttemptStatus, u64>,
}

impl HistoryIndex {
    /// Files execution `id` (`None`: gone) by its status, replacing where it was filed before.
    fn file(&mut self, id: &str, execution: Option<&Execution>) {
        self.touch(id, execution.is_some());
        self.unfinished.remove(id);
        if let Some(filed) = self.finished_at.remove(id) {
            let key = (filed.at, id.to_string());
            self.finished.remove(&key);
            let workflow = workflow_of(id);
            if let Some(set) = self.by_workflow.get_mut(workflow) {
                set.remove(&key);
                if set.is_empty() {
                    self.by_workflow.remove(workflow);
                }
            }
            uncount(&mut self.finished_statuses, filed.status, 1);
            for (status, n) in filed.attempts {
                uncount(&mut self.finished_attempts, status, u64::from(n));
            }
        }
        let Some(execution) = execution else { return };
        if !execution.status.is_terminal() {
            self.unfinished.insert(id.to_string());
            return;
        }
        let at = execution.finished_at_ms.unwrap_or(execution.created_at_ms);
        let mut attempts: BTreeMap<AttemptStatus, u32> = BTreeMap::new();
        for attempt in execution.tasks.iter().flat_map(|t| &t.attempts) {
            *attempts.entry(attempt.status).or_default() += 1;
        }
        *self.finished_statuses.entry(execution.status).or_default() += 1;
        for (status, n) in &attempts {
            *self.finished_attempts.entry(*status).or_default() += u64::from(*n);
        }
        self.finished.insert((at, id.to_string()));
        self.by_workflow.entry(workflow_of(id).to_string()).or_default().insert((at, id.to_string()));
        let filed = Filed { at, status: execution.status, attempts: attempts.into_iter().collect() };
        self.finished_at.insert(id.to_string(), filed);
        self.grown.insert(workflow_of(id).to_string());
    }

    /// Records in the journal that execution `id` changed (`kept`: it is still there).
    fn touch(&mut self, id: &str, kept: bool) {
        if let Some(seq) = self.journaled_at.remove(id) {
            self.journal.remove(&seq);
        }
        if kept {
            self.journal.insert(self.next_seq, id.to_string());
            self.journaled_at.insert(id.to_string(), self.next_seq);
            self.next_seq += 1;
        }
    }

    /// The index of these executions and logs, from scratch.
    fn of(executions: &OrdMap<String, Execution>, logs: &OrdMap<u64, AttemptLog>) -> HistoryIndex {
        let mut index = HistoryIndex::default();
        for (id, execution) in executions {
            index.file(id, Some(execution));
        }
        index.log_bytes = logs.values().map(|l| l.kept_bytes).sum();
        index.grown.clear();
        index
    }
}

impl State {
    /// Files one execution in the history index by its current status (or takes it out, if it
    /// is gone). Called, through [`State::reindex`], wherever an execution is created, changes
    /// status or is removed.
    pub(super) fn file_history(&mut self, id: &str) {
        let execution = self.executions.get(id);
        self.history.file(id, execution);
        // An execution that ended may release one buffered behind it: that one changed too.
        if execution.is_some_and(|e| e.status.is_terminal()) {
            let waiting: Vec<String> = self
                .unfinished_ids_of(workflow_of(id))
                .into_iter()
                .filter(|w| self.executions.get(w).is_some_and(|e| e.blocked_by.as_deref() == Some(id)))
                .collect();
            for w in waiting {
                self.history.touch(&w, true);
            }
        }
    }

    /// The executions changed since journal position `since`, oldest change first, and the
    /// position to ask from next time. Positions start again when the state is replaced (a
    /// snapshot loaded); `StateHandle` counts replacements, so a reader knows to look at
    /// everything then.
    pub fn changed_since(&self, since: u64) -> (Vec<String>, u64) {
        let changed = self.history.journal.range(since..).map(|(_, id)| id.clone()).collect();
        (changed, self.history.next_seq)
    }

    /// Rebuilds the history index from the executions and logs (after loading a snapshot).
    pub(super) fn rebuild_history(&mut self) {
        self.history = HistoryIndex::of(&self.executions, &self.logs);
    }

    /// Accounts for an attempt log that grew or shrank from `before` to `after` kept bytes.
    pub(super) fn log_resized(&mut self, before: u64, after: u64) {
        self.history.log_bytes = self.history.log_bytes - before + after;
    }

    /// Enforces the count and byte limits: drops the oldest finished executions of each workflow
    /// that grew past its limit, then the oldest in the cluster until both cluster-wide limits
    /// hold (or nothing finished is left). Answers how many went.
    pub(super) fn enforce_retention(&mut self) -> u32 {
        let limits = self.limits;
        let mut dropped = 0;
        for workflow in std::mem::take(&mut self.history.grown) {
            dropped += self.trim_workflow(&workflow, limits.max_kept_executions_per_workflow as usize);
        }
        while self.history.finished.len() > limits.max_kept_executions as usize
            || self.history.log_bytes > u64::from(limits.max_kept_log_bytes)
        {
            let Some((_, oldest)) = self.history.finished.get_min().cloned() else { break };
            self.evict(&oldest);
            dropped += 1;
        }
        dropped
    }

    /// `PruneExecutions`: drops finished executions older than `max_finished_age_secs` at `now`,
    /// then enforces the other limits on every workflow.
    pub(super) fn prune(&mut self, now: i64) -> Response {
        let cutoff = now.saturating_sub(i64::from(self.limits.max_finished_age_secs).saturating_mul(1_000));
        let mut count = 0;
        while let Some((at, oldest)) = self.history.finished.get_min().cloned() {
            if at >= cutoff {
                break;
            }
            self.evict(&oldest);
            count += 1;
        }
        self.history.grown = self.history.by_workflow.keys().cloned().collect();
        count += self.enforce_retention();
        Response::ExecutionsPruned { count }
    }

    fn trim_workflow(&mut self, workflow: &str, keep: usize) -> u32 {
        let excess = self.history.by_workflow.get(workflow).map_or(0, |set| set.len().saturating_sub(keep));
        let doomed: Vec<String> = self
            .history
            .by_workflow
            .get(workflow)
            .map(|set| set.iter().take(excess).map(|(_, id)| id.clone()).collect())
            .unwrap_or_default();
        for id in &doomed {
            self.evict(id);
        }
        doomed.len() as u32
    }

    /// Removes a finished execution with its attempts and logs. Never an unfinished one.
    fn evict(&mut self, id: &str) {
        if self.executions.get(id).is_none_or(|e| !e.status.is_terminal()) {
            return;
        }
        if let Some(execution) = self.executions.remove(id) {
            for attempt in execution.tasks.iter().flat_map(|t| &t.attempts) {
                self.attempts.remove(&attempt.id);
                if let Some(log) = self.logs.remove(&attempt.id) {
                    self.history.log_bytes -= log.kept_bytes;
                }
            }
        }
        self.history.file(id, None);
    }

    /// Unfinished executions, in id order: what the engine works on, however much is kept.
    pub fn unfinished_executions(&self) -> impl Iterator<Item = &Execution> {
        self.history.unfinished.iter().filter_map(|id| self.executions.get(id))
    }

    /// The ids of a workflow's unfinished executions, in id order (ids start with `<workflow>:`,
    /// and `;` is the character after `:`).
    pub(super) fn unfinished_ids_of(&self, workflow_id: &str) -> Vec<String> {
        self.history.unfinished.range(format!("{workflow_id}:")..format!("{workflow_id};")).cloned().collect()
    }

    /// What is kept now.
    pub fn kept(&self) -> Kept {
        Kept {
            unfinished_executions: self.history.unfinished.len(),
            finished_executions: self.history.finished.len(),
            log_bytes: self.history.log_bytes,
            finished_statuses: self.history.finished_statuses.clone(),
            finished_attempts: self.history.finished_attempts.clone(),
        }
    }

    /// The history index matches a recount of the executions and logs.
    pub(super) fn check_history(&self) -> Result<(), String> {
        let mut actual = self.history.clone();
        actual.grown.clear();
        if actual != HistoryIndex::of(&self.executions, &self.logs) {
            return Err("the history index does not match a recount of the executions and logs".into());
        }
        Ok(())
    }
}

/// Takes `n` off a count, forgetting it at zero (so equal contents compare equal).
fn uncount<K: Ord>(counts: &mut BTreeMap<K, u64>, key: K, n: u64) {
    if let Some(count) = counts.get_mut(&key) {
        *count -= n;
        if *count == 0 {
            counts.remove(&key);
        }
    }
}

/// The workflow of an execution id: ids are `<workflow>:<rest>` (checked when one is created),
/// and workflow ids have no `:`.
fn workflow_of(id: &str) -> &str {
    id.split_once(':').map_or(id, |(w, _)| w)
}
