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
//! Finished executions live in memory until the next checkpoint and in the base after it
//! ([`super::base`]). The index here covers those in memory one by one, and all of them in
//! counts: the oldest in the base are found through the base's own order, from a floor below
//! which everything is known to be hidden (so retention reads each base entry once between
//! checkpoints, not once per drop).
//!
//! The index is derived: [`State::reindex`] keeps it in step, `check_invariants` compares it with
//! a recount, and a loaded snapshot rebuilds it (its counts of the base come from the base's
//! summary). So it is not part of the replicated format, and the engine's questions ("what is
//! unfinished?") cost what is unfinished, not everything kept.

use std::collections::{BTreeMap, BTreeSet};

use imbl::{OrdMap, OrdSet};

use super::base::{self, Index, Record, Summary};
use super::command::Response;
use super::execution::{AttemptStatus, Execution, ExecutionStatus};
use super::log::AttemptLog;
use super::workflow::{spec_of, Workflow};
use super::State;
use crate::spec::TaskKind;

/// What changed since a position in the change journal ([`State::changed_since`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes {
    /// The executions changed, each once, oldest change first.
    pub executions: Vec<String>,
    /// The position to ask from next time.
    pub next: u64,
    /// False when executions that changed since the position have moved to the base since (a
    /// checkpoint) and left the journal: the reader must look at everything it tracks once.
    pub complete: bool,
}

/// Where each execution in memory stands, and the counts of everything finished.
#[derive(Debug, Clone, Default)]
pub(super) struct HistoryIndex {
    unfinished: OrdSet<String>,
    /// The unfinished executions whose workflow version has a `worker` task: what the worker
    /// dispatcher looks at, so it costs nothing while no such execution runs.
    unfinished_worker: OrdSet<String>,
    /// Finished executions in memory, oldest first: (finished at, id).
    finished: OrdSet<(i64, String)>,
    /// The same, per workflow.
    by_workflow: OrdMap<String, OrdSet<(i64, String)>>,
    /// Where each finished execution in memory sits in `finished`, and what it was counted as.
    finished_at: OrdMap<String, Filed>,
    /// Every finished execution, in memory or in the base, in counts: all of them, per
    /// workflow, by status, and their attempts by outcome (what `/metrics` shows and retention
    /// enforces without walking the history).
    counts: Summary,
    /// Workflows that gained a finished execution since retention last looked.
    grown: BTreeSet<String>,
    /// The change journal: each execution in memory filed since this index was built, under the
    /// sequence number of its latest filing (so the engine can ask "what changed since n?" and
    /// look at those executions only). One entry per execution in memory: an execution moved to
    /// the base leaves the journal with it, or the journal would grow with the whole history.
    journal: OrdMap<u64, String>,
    journaled_at: OrdMap<String, u64>,
    next_seq: u64,
    /// Positions below this may have lost entries to the base: a reader from there is told to
    /// look at everything (see [`Changes::complete`]).
    forgotten_below: u64,
    /// Per retention order (all, or one workflow's): a key of the base's order below which
    /// (inclusive) every entry is hidden. Hidden base entries stay hidden until the next
    /// checkpoint, which forgets the floors.
    floors: BTreeMap<Option<String>, Vec<u8>>,
}

/// Two indexes are equal when they index the same things: what is derived from the executions.
/// The retention work list, the change journal and the floors record how the state got here,
/// which a snapshot (and so a recount) does not carry.
impl PartialEq for HistoryIndex {
    fn eq(&self, other: &Self) -> bool {
        self.unfinished == other.unfinished
            && self.unfinished_worker == other.unfinished_worker
            && self.finished == other.finished
            && self.by_workflow == other.by_workflow
            && self.finished_at == other.finished_at
            && self.counts == other.counts
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

impl Filed {
    fn of(execution: &Execution) -> Filed {
        let mut attempts: BTreeMap<AttemptStatus, u32> = BTreeMap::new();
        for attempt in execution.tasks.iter().flat_map(|t| &t.attempts) {
            *attempts.entry(attempt.status).or_default() += 1;
        }
        Filed { at: base::finished_at(execution), status: execution.status, attempts: attempts.into_iter().collect() }
    }
}

/// What is kept, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub unfinished_executions: usize,
    pub finished_executions: usize,
    /// Finished executions still in memory: those that finished (or were read back for a
    /// change) since the last checkpoint; the rest are in the base on disk.
    pub finished_in_memory: usize,
    pub log_bytes: u64,
    /// Finished executions by status, and their attempts by outcome.
    pub finished_statuses: BTreeMap<ExecutionStatus, u64>,
    pub finished_attempts: BTreeMap<AttemptStatus, u64>,
}

impl Summary {
    fn count(&mut self, workflow: &str, filed: &Filed) {
        self.finished += 1;
        *self.per_workflow.entry(workflow.to_string()).or_default() += 1;
        *self.statuses.entry(filed.status).or_default() += 1;
        for (status, n) in &filed.attempts {
            *self.attempts.entry(*status).or_default() += u64::from(*n);
        }
    }

    fn uncount(&mut self, workflow: &str, filed: &Filed) {
        self.finished -= 1;
        uncount(&mut self.per_workflow, workflow.to_string(), 1);
        uncount(&mut self.statuses, filed.status, 1);
        for (status, n) in &filed.attempts {
            uncount(&mut self.attempts, *status, u64::from(*n));
        }
    }

    /// Adds `other`'s counts to these.
    fn add(&mut self, other: &Summary) {
        self.finished += other.finished;
        for (w, n) in &other.per_workflow {
            *self.per_workflow.entry(w.clone()).or_default() += n;
        }
        for (s, n) in &other.statuses {
            *self.statuses.entry(*s).or_default() += n;
        }
        for (s, n) in &other.attempts {
            *self.attempts.entry(*s).or_default() += n;
        }
        self.log_bytes += other.log_bytes;
    }
}

impl HistoryIndex {
    /// Files execution `id` (`None`: gone) by its status, replacing where it was filed before,
    /// and counts the change. `worker`: its workflow version has a `worker` task.
    fn file(&mut self, id: &str, execution: Option<&Execution>, worker: bool) {
        self.touch(id, execution.is_some());
        self.unfile(id, true);
        if let Some(execution) = execution {
            self.enter(id, execution, true, worker);
        }
    }

    /// Takes execution `id` out of the index of what is in memory (`count`: and out of the
    /// counts, as it is gone or changing; otherwise it moved to the base).
    fn unfile(&mut self, id: &str, count: bool) {
        self.unfinished.remove(id);
        self.unfinished_worker.remove(id);
        let Some(filed) = self.finished_at.remove(id) else { return };
        let key = (filed.at, id.to_string());
        self.finished.remove(&key);
        let workflow = workflow_of(id);
        if let Some(set) = self.by_workflow.get_mut(workflow) {
            set.remove(&key);
            if set.is_empty() {
                self.by_workflow.remove(workflow);
            }
        }
        if count {
            self.counts.uncount(workflow, &filed);
        }
    }

    /// Enters execution `id`, in memory, into the index (`count`: and into the counts, as it is
    /// new or changed; otherwise it came from the base, which is counted already).
    fn enter(&mut self, id: &str, execution: &Execution, count: bool, worker: bool) {
        if !execution.status.is_terminal() {
            self.unfinished.insert(id.to_string());
            if worker {
                self.unfinished_worker.insert(id.to_string());
            }
            return;
        }
        let filed = Filed::of(execution);
        let workflow = workflow_of(id);
        self.finished.insert((filed.at, id.to_string()));
        self.by_workflow.entry(workflow.to_string()).or_default().insert((filed.at, id.to_string()));
        if count {
            self.counts.count(workflow, &filed);
            self.grown.insert(workflow.to_string());
        }
        self.finished_at.insert(id.to_string(), filed);
    }

    /// Records in the journal that execution `id` changed (`kept`: it is still there).
    fn touch(&mut self, id: &str, kept: bool) {
        self.leave_journal(id);
        if kept {
            self.journal.insert(self.next_seq, id.to_string());
            self.journaled_at.insert(id.to_string(), self.next_seq);
            self.next_seq += 1;
        }
    }

    /// Takes execution `id` out of the journal; answers the position it had there.
    fn leave_journal(&mut self, id: &str) -> Option<u64> {
        let seq = self.journaled_at.remove(id)?;
        self.journal.remove(&seq);
        Some(seq)
    }

    /// The index of these executions and logs in memory, from scratch.
    fn of(
        executions: &OrdMap<String, Execution>,
        logs: &OrdMap<u64, AttemptLog>,
        workflows: &OrdMap<String, Workflow>,
    ) -> HistoryIndex {
        let mut index = HistoryIndex::default();
        for (id, execution) in executions {
            index.file(id, Some(execution), runs_worker_tasks(workflows, execution));
        }
        index.counts.log_bytes = logs.values().map(|l| l.kept_bytes).sum();
        index.grown.clear();
        index
    }
}

/// Whether the workflow version `execution` runs has a `worker` task (fixed for its life: a
/// version is never changed, and is kept while an execution runs it).
fn runs_worker_tasks(workflows: &OrdMap<String, Workflow>, execution: &Execution) -> bool {
    spec_of(workflows, execution).is_some_and(|spec| spec.tasks.iter().any(|t| t.kind == TaskKind::Worker))
}

impl State {
    /// Files one execution in the history index by its current status (or takes it out, if it
    /// is gone). Called, through [`State::reindex`], wherever an execution is created, changes
    /// status or is removed.
    pub(super) fn file_history(&mut self, id: &str) {
        let execution = self.executions.get(id);
        let worker = execution.is_some_and(|e| runs_worker_tasks(&self.workflows, e));
        let was_unfinished = self.history.unfinished.contains(id);
        self.history.file(id, execution, worker);
        if was_unfinished && execution.is_some_and(|e| e.status.is_terminal()) {
            self.ended.push(id.to_string());
        }
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

    /// Enters an execution just copied from the base into memory: indexed, but counted already.
    pub(super) fn file_promoted(&mut self, id: &str) {
        if let Some(execution) = self.executions.get(id) {
            // Promoted executions are finished: never the dispatcher's.
            self.history.enter(id, execution, false, false);
        }
    }

    /// Takes an execution whose copy the base now holds out of the index of what is in memory,
    /// and out of the change journal.
    pub(super) fn unfile_absorbed(&mut self, id: &str) {
        self.history.unfile(id, false);
        if let Some(seq) = self.history.leave_journal(id) {
            self.history.forgotten_below = self.history.forgotten_below.max(seq + 1);
        }
    }

    /// The ids of the finished executions in memory.
    pub(super) fn finished_in_memory(&self) -> Vec<String> {
        self.history.finished_at.keys().cloned().collect()
    }

    /// Forgets where the base's hidden entries end (the base changed under them).
    pub(super) fn forget_floors(&mut self) {
        self.history.floors.clear();
    }

    /// The executions changed since journal position `since`, oldest change first, and the
    /// position to ask from next time. Positions start again when the state is replaced (a
    /// snapshot loaded); `StateHandle` counts replacements, so a reader knows to look at
    /// everything then.
    pub fn changed_since(&self, since: u64) -> Changes {
        Changes {
            executions: self.history.journal.range(since..).map(|(_, id)| id.clone()).collect(),
            next: self.history.next_seq,
            complete: since >= self.history.forgotten_below,
        }
    }

    /// Rebuilds the history index from the executions and logs in memory and the base's
    /// summary (after loading a snapshot, or attaching a base).
    pub(super) fn rebuild_history(&mut self) {
        self.history = HistoryIndex::of(&self.executions, &self.logs, &self.workflows);
        let summary = self.base.summary();
        self.history.counts.add(&summary);
    }

    /// Accounts for an attempt log that grew or shrank from `before` to `after` kept bytes.
    pub(super) fn log_resized(&mut self, before: u64, after: u64) {
        self.history.counts.log_bytes = self.history.counts.log_bytes - before + after;
    }

    /// What the base holds after a checkpoint of this state: every finished execution, so the
    /// counts of everything less the logs of unfinished executions (which stay in memory).
    pub(super) fn summary_for_base(&self, unfinished_log_bytes: u64) -> Summary {
        let mut summary = self.history.counts.clone();
        summary.log_bytes -= unfinished_log_bytes;
        summary
    }

    /// Enforces the count and byte limits: drops the oldest finished executions of each workflow
    /// that grew past its limit, then the oldest in the cluster until both cluster-wide limits
    /// hold (or nothing finished is left). Answers how many went.
    pub(super) fn enforce_retention(&mut self) -> u32 {
        let limits = self.limits;
        let mut dropped = 0;
        for workflow in std::mem::take(&mut self.history.grown) {
            dropped += self.trim_workflow(&workflow, u64::from(limits.max_kept_executions_per_workflow));
        }
        while self.history.counts.finished > u64::from(limits.max_kept_executions)
            || self.history.counts.log_bytes > u64::from(limits.max_kept_log_bytes)
        {
            let Some((_, oldest)) = self.oldest_finished(None) else { break };
            if !self.evict(&oldest) {
                break;
            }
            dropped += 1;
        }
        dropped
    }

    /// `PruneExecutions`: drops finished executions older than `max_finished_age_secs` at `now`,
    /// then enforces the other limits on every workflow.
    pub(super) fn prune(&mut self, now: i64) -> Response {
        let cutoff = now.saturating_sub(i64::from(self.limits.max_finished_age_secs).saturating_mul(1_000));
        let mut count = 0;
        while let Some((at, oldest)) = self.oldest_finished(None) {
            if at >= cutoff || !self.evict(&oldest) {
                break;
            }
            count += 1;
        }
        self.history.grown = self.history.counts.per_workflow.keys().cloned().collect();
        count += self.enforce_retention();
        Response::ExecutionsPruned { count }
    }

    fn trim_workflow(&mut self, workflow: &str, keep: u64) -> u32 {
        let mut dropped = 0;
        while self.history.counts.per_workflow.get(workflow).is_some_and(|n| *n > keep) {
            let Some((_, oldest)) = self.oldest_finished(Some(workflow)) else { break };
            if !self.evict(&oldest) {
                break;
            }
            dropped += 1;
        }
        dropped
    }

    /// The oldest finished execution (of one workflow, or of all): the older of the oldest in
    /// memory and the oldest visible in the base.
    fn oldest_finished(&mut self, workflow: Option<&str>) -> Option<(i64, String)> {
        let in_memory = match workflow {
            None => self.history.finished.get_min().cloned(),
            Some(w) => self.history.by_workflow.get(w).and_then(|set| set.get_min().cloned()),
        };
        let in_base = self.oldest_in_base(workflow);
        match (in_memory, in_base) {
            (Some(m), Some(b)) => Some(m.min(b)),
            (m, b) => m.or(b),
        }
    }

    /// The oldest finished execution visible in the base, read from its floor up; raises the
    /// floor past the hidden entries it reads.
    fn oldest_in_base(&mut self, workflow: Option<&str>) -> Option<(i64, String)> {
        if !self.base.is_attached() {
            return None;
        }
        let index = Index::Finished(workflow);
        let floor_key = workflow.map(str::to_string);
        let mut after = self.history.floors.get(&floor_key).cloned();
        let found = 'scan: loop {
            let page = self.base.index_page(&index, after.as_deref(), false, 64);
            if page.is_empty() {
                break 'scan None;
            }
            for (key, at, id) in page {
                if !self.hidden_in_base(&id) {
                    break 'scan Some((at, id));
                }
                after = Some(key);
            }
        };
        if let Some(floor) = after {
            self.history.floors.insert(floor_key, floor);
        }
        found
    }

    /// Removes a finished execution with its attempts and logs, from memory or from view in
    /// the base. Never an unfinished one. Answers whether it went (the loops above stop if not,
    /// rather than ask for the same oldest execution forever).
    fn evict(&mut self, id: &str) -> bool {
        if let Some(execution) = self.executions.get(id) {
            if !execution.status.is_terminal() {
                return false;
            }
            if let Some(execution) = self.executions.remove(id) {
                for attempt in execution.tasks.iter().flat_map(|t| &t.attempts) {
                    self.attempts.remove(&attempt.id);
                    if let Some(log) = self.logs.remove(&attempt.id) {
                        self.history.counts.log_bytes -= log.kept_bytes;
                    }
                }
            }
        } else if let Some(Record { execution, logs }) = self.base_record(id) {
            let filed = Filed::of(&execution);
            self.history.counts.uncount(workflow_of(id), &filed);
            self.history.counts.log_bytes -= logs.iter().map(|(_, l)| l.kept_bytes).sum::<u64>();
        } else {
            // The base's order named it and the base does not hold it: a damaged base. The
            // fault stops the node after this command.
            self.base.failed(format!("the base's order names execution {id}, which it does not hold"));
            return false;
        }
        self.history.file(id, None, false);
        // The base may hold a copy (this one came from it, or an older one): hide it.
        self.hide_in_base(id);
        true
    }

    /// Unfinished executions, in id order: what the engine works on, however much is kept.
    pub fn unfinished_executions(&self) -> impl Iterator<Item = &Execution> {
        self.history.unfinished.iter().filter_map(|id| self.executions.get(id))
    }

    /// The unfinished executions whose workflow version has a `worker` task, in id order.
    pub(super) fn unfinished_worker_executions(&self) -> impl Iterator<Item = &Execution> {
        self.history.unfinished_worker.iter().filter_map(|id| self.executions.get(id))
    }

    /// The ids of a workflow's unfinished executions, in id order (ids start with `<workflow>:`,
    /// and `;` is the character after `:`).
    pub(super) fn unfinished_ids_of(&self, workflow_id: &str) -> Vec<String> {
        self.history.unfinished.range(format!("{workflow_id}:")..format!("{workflow_id};")).cloned().collect()
    }

    /// How many executions are kept, finished or not.
    pub(super) fn kept_executions(&self) -> u64 {
        self.history.unfinished.len() as u64 + self.history.counts.finished
    }

    /// What is kept now.
    pub fn kept(&self) -> Kept {
        Kept {
            unfinished_executions: self.history.unfinished.len(),
            finished_executions: self.history.counts.finished as usize,
            finished_in_memory: self.history.finished_at.len(),
            log_bytes: self.history.counts.log_bytes,
            finished_statuses: self.history.counts.statuses.clone(),
            finished_attempts: self.history.counts.attempts.clone(),
        }
    }

    /// The history index matches a recount of the executions and logs in memory and of what is
    /// visible in the base.
    pub(super) fn check_history(&self) -> Result<(), String> {
        let mut actual = self.history.clone();
        actual.grown.clear();
        let mut expected = HistoryIndex::of(&self.executions, &self.logs, &self.workflows);
        let mut in_base = Summary::default();
        for Record { execution, logs } in self.visible_base_records() {
            in_base.count(&execution.workflow_id, &Filed::of(&execution));
            in_base.log_bytes += logs.iter().map(|(_, l)| l.kept_bytes).sum::<u64>();
        }
        expected.counts.add(&in_base);
        if actual != expected {
            return Err(format!(
                "the history index does not match a recount of the executions and logs: {:?} vs {:?}",
                actual.counts, expected.counts
            ));
        }
        // The journal names only executions in memory, once each: it is bounded by them, not
        // by the history.
        let journal = &self.history.journal;
        if journal.len() != self.history.journaled_at.len()
            || journal
                .iter()
                .any(|(seq, id)| self.history.journaled_at.get(id) != Some(seq) || !self.executions.contains_key(id))
        {
            return Err(format!(
                "the change journal ({} entries) names executions not in memory ({})",
                journal.len(),
                self.executions.len()
            ));
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
pub(super) fn workflow_of(id: &str) -> &str {
    id.split_once(':').map_or(id, |(w, _)| w)
}
