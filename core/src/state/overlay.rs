//! The state as everyone sees it: the executions in memory over the history base (see
//! [`super::base`] for the rules), and the checkpoints that move finished executions from the one
//! to the other.
//!
//! Readers get executions as [`Cow`]: borrowed when in memory, decoded when from the base.
//! Commands that change an execution the base holds first copy it into memory ([`State::promote`]),
//! which changes nothing anyone can see, and then change it there like any other.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::iter::Peekable;
use std::sync::Arc;

use super::attempt::AttemptRef;
use super::base::{self, Base, Checkpoint, HistoryStore, Index, Record};
use super::execution::{Attempt, Execution, TaskRun};
use super::log::AttemptLog;
use super::State;

/// How many base entries one read asks for.
const PAGE: usize = 64;

/// An attempt with the execution it belongs to.
#[derive(Debug, Clone)]
pub struct AttemptAt<'a> {
    pub execution: Cow<'a, Execution>,
    task_index: usize,
    attempt_index: usize,
}

impl AttemptAt<'_> {
    pub fn task(&self) -> &TaskRun {
        &self.execution.tasks[self.task_index]
    }

    pub fn attempt(&self) -> &Attempt {
        &self.task().attempts[self.attempt_index]
    }
}

impl State {
    /// Whether the base's copy of `id`, if any, is hidden: by the execution in memory, or
    /// because it was dropped since the last checkpoint.
    pub(super) fn hidden_in_base(&self, id: &str) -> bool {
        self.executions.contains_key(id) || self.dropped.contains_key(id)
    }

    /// Hides the base's copy of `id` until the next checkpoint removes it.
    pub(super) fn hide_in_base(&mut self, id: &str) {
        if self.base.is_attached() {
            self.next_drop += 1;
            self.dropped.insert(id.to_string(), self.next_drop);
        }
    }

    /// The base's record of `id`, if it is visible.
    pub(super) fn base_record(&self, id: &str) -> Option<Record> {
        if !self.base.is_attached() || self.hidden_in_base(id) {
            return None;
        }
        self.base.record(id)
    }

    /// Every record visible in the base, in id order (checks and digests: reads the whole base).
    pub(super) fn visible_base_records(&self) -> Vec<Record> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.base.records_after(None, after.as_deref(), PAGE);
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            for (id, bytes) in &page {
                if !self.hidden_in_base(id) {
                    out.extend(self.base.decode_record(bytes));
                }
            }
        }
        out
    }

    pub fn execution(&self, id: &str) -> Option<Cow<'_, Execution>> {
        match self.executions.get(id) {
            Some(e) => Some(Cow::Borrowed(e)),
            None => self.base_record(id).map(|r| Cow::Owned(r.execution)),
        }
    }

    /// Whether execution `id` is kept, in memory or in the base.
    pub(super) fn exists(&self, id: &str) -> bool {
        self.executions.contains_key(id) || self.base_record(id).is_some()
    }

    /// Copies execution `id` from the base into memory (with its attempts and logs), so a command
    /// can change it there. Changes nothing anyone can see: the copy hides the base's.
    pub(super) fn promote(&mut self, id: &str) {
        if self.executions.contains_key(id) {
            return;
        }
        let Some(Record { execution, logs }) = self.base_record(id) else { return };
        for (task_index, task) in execution.tasks.iter().enumerate() {
            for attempt in &task.attempts {
                self.attempts.insert(attempt.id, AttemptRef::new(id, task_index));
            }
        }
        for (attempt_id, log) in logs {
            self.logs.insert(attempt_id, log);
        }
        self.executions.insert(id.to_string(), execution);
        self.file_promoted(id);
    }

    /// Promotes the execution attempt `attempt_id` belongs to (see [`State::promote`]).
    pub(super) fn promote_attempt(&mut self, attempt_id: u64) {
        if self.attempts.contains_key(&attempt_id) || !self.base.is_attached() {
            return;
        }
        if let Some(id) = self.base.attempt_execution(attempt_id) {
            self.promote(&id);
        }
    }

    /// The attempt `attempt_id` with its execution.
    pub fn attempt(&self, attempt_id: u64) -> Option<AttemptAt<'_>> {
        let (execution, task_index) = match self.attempts.get(&attempt_id) {
            Some(at) => (Cow::Borrowed(self.executions.get(at.execution_id())?), at.task_index()),
            None => {
                let id = self.base.attempt_execution(attempt_id).filter(|_| self.base.is_attached())?;
                let execution = self.base_record(&id)?.execution;
                let task_index = execution.tasks.iter().position(|t| t.attempts.iter().any(|a| a.id == attempt_id))?;
                (Cow::Owned(execution), task_index)
            }
        };
        let attempt_index = execution.tasks.get(task_index)?.attempts.iter().position(|a| a.id == attempt_id)?;
        Some(AttemptAt { execution, task_index, attempt_index })
    }

    pub fn attempt_log(&self, attempt_id: u64) -> Option<Cow<'_, AttemptLog>> {
        if let Some(log) = self.logs.get(&attempt_id) {
            return Some(Cow::Borrowed(log));
        }
        if self.attempts.contains_key(&attempt_id) || !self.base.is_attached() {
            return None;
        }
        let id = self.base.attempt_execution(attempt_id)?;
        let record = self.base_record(&id)?;
        record.logs.into_iter().find(|(a, _)| *a == attempt_id).map(|(_, log)| Cow::Owned(log))
    }

    /// Executions in id order, starting after `after`.
    pub fn executions_after<'a>(&'a self, after: Option<&'a str>) -> impl Iterator<Item = Cow<'a, Execution>> + 'a {
        self.executions_by_id(None, after)
    }

    /// The executions of one workflow, in id order (every id starts with `<workflow>:`).
    pub fn executions_of<'a>(&'a self, workflow_id: &'a str) -> impl Iterator<Item = Cow<'a, Execution>> + 'a {
        self.executions_by_id(Some(workflow_id), None)
    }

    /// Executions (of one workflow, or all) in id order, starting after `after`.
    pub fn executions_by_id<'a>(
        &'a self,
        workflow: Option<&'a str>,
        after: Option<&'a str>,
    ) -> impl Iterator<Item = Cow<'a, Execution>> + 'a {
        let prefix = workflow.map(|w| format!("{w}:"));
        let start = match (after, &prefix) {
            (Some(a), Some(p)) if a < p.as_str() => std::ops::Bound::Included(p.clone()),
            (Some(a), _) => std::ops::Bound::Excluded(a.to_string()),
            (None, Some(p)) => std::ops::Bound::Included(p.clone()),
            (None, None) => std::ops::Bound::Unbounded,
        };
        let end = match workflow {
            Some(w) => std::ops::Bound::Excluded(format!("{w};")),
            None => std::ops::Bound::Unbounded,
        };
        let live = self.executions.range((start, end)).map(|(_, e)| Cow::Borrowed(e));
        let mut cursor = after.map(str::to_string);
        let base = Pages::new(move || {
            let page = self.base.records_after(workflow, cursor.as_deref(), PAGE);
            cursor = page.last().map(|(id, _)| id.clone()).or(cursor.take());
            let visible = page.iter().filter(|(id, _)| !self.hidden_in_base(id));
            let executions = visible.filter_map(|(_, bytes)| self.base.decode_record(bytes)).map(|r| r.execution);
            (executions.collect(), page.len() < PAGE)
        });
        Merge {
            a: live.peekable(),
            b: base.map(Cow::Owned).peekable(),
            key: |e: &Cow<'a, Execution>| e.id.clone(),
            newest: false,
        }
    }

    /// Executions (of one workflow, or all), newest first by (created at, id), starting below
    /// `before`.
    pub fn executions_newest<'a>(
        &'a self,
        workflow: Option<&'a str>,
        before: Option<(i64, &str)>,
    ) -> impl Iterator<Item = Cow<'a, Execution>> + 'a {
        let below = |e: &Execution| before.is_none_or(|(ms, id)| (e.created_at_ms, e.id.as_str()) < (ms, id));
        let mut live: Vec<&Execution> = match workflow {
            Some(w) => {
                self.executions.range(format!("{w}:")..format!("{w};")).map(|(_, e)| e).filter(|e| below(e)).collect()
            }
            None => self.executions.values().filter(|e| below(e)).collect(),
        };
        live.sort_unstable_by(|a, b| (b.created_at_ms, &b.id).cmp(&(a.created_at_ms, &a.id)));
        let mut cursor = before.map(|(ms, id)| Index::Created(workflow).key(ms, id));
        let base = Pages::new(move || {
            let page = self.base.index_page(&Index::Created(workflow), cursor.as_deref(), true, PAGE);
            cursor = page.last().map(|(key, _, _)| key.clone()).or(cursor.take());
            let executions = page.iter().filter_map(|(_, _, id)| self.base_record(id)).map(|r| r.execution);
            (executions.collect(), page.len() < PAGE)
        });
        Merge {
            a: live.into_iter().map(Cow::Borrowed).peekable(),
            b: base.map(Cow::Owned).peekable(),
            key: |e: &Cow<'a, Execution>| (e.created_at_ms, e.id.clone()),
            newest: true,
        }
    }

    // ----- checkpoints -----

    /// Attaches the base this state's history lives in (when a node opens its disk, or installs
    /// a snapshot), and counts what the base holds from its summary.
    pub fn attach(&mut self, store: Arc<dyn HistoryStore>) {
        self.base = Base::new(store);
        self.dropped.clear();
        self.rebuild_history();
    }

    /// The first failed read of the base, if one failed: the node must stop applying, since its
    /// state may now differ from its peers'.
    pub fn history_fault(&self) -> Option<String> {
        self.base.fault()
    }

    /// A checkpoint of this state: the writes that make the base hold every finished execution
    /// (and no dropped one), and the state without them. Reads the base (to find the entries of
    /// what it replaces), so it runs off the apply path on a copy of the state.
    pub fn checkpoint(&self) -> Result<Checkpoint, String> {
        let mut writes = Vec::new();
        let mut hot = self.clone();
        // Dropped first: an id dropped and then created again is put back below.
        for id in self.dropped.keys() {
            if let Some(old) = self.base.record(id) {
                writes.extend(base::remove(&old));
            }
        }
        for id in self.finished_in_memory() {
            let Some(execution) = self.executions.get(&id) else { continue };
            if self.base.is_attached() && !self.dropped.contains_key(&id) {
                if let Some(old) = self.base.record(&id) {
                    writes.extend(base::remove(&old));
                }
            }
            let record = Record { execution: execution.clone(), logs: self.logs_of(execution) };
            writes.extend(base::put(&record).map_err(|e| e.to_string())?);
            hot.forget(&id);
        }
        hot.dropped.clear();
        hot.forget_floors();
        let unfinished_log_bytes = hot.logs.values().map(|l| l.kept_bytes).sum();
        writes.push(base::put_summary(&self.summary_for_base(unfinished_log_bytes)).map_err(|e| e.to_string())?);
        if let Some(fault) = self.base.fault() {
            return Err(fault);
        }
        Ok(Checkpoint { writes, hot })
    }

    /// After the base took the checkpoint of `at` (an earlier copy of this state), forgets what
    /// the base now holds: finished executions unchanged since `at`, and the drops `at` made.
    pub fn absorb(&mut self, at: &State) {
        self.absorb_executions(at, &at.checkpointed());
        self.absorb_drops(at);
    }

    /// The executions a checkpoint of this state puts in the base (what [`State::absorb_executions`]
    /// is given, in parts if the caller wants to release its lock between them).
    pub fn checkpointed(&self) -> Vec<String> {
        self.finished_in_memory()
    }

    /// The part of [`State::absorb`] for the executions `ids` (from [`State::checkpointed`] of
    /// `at`): any subset leaves what anyone sees unchanged, so a node can absorb a checkpoint a
    /// few hundred at a time and let commands apply in between.
    pub fn absorb_executions(&mut self, at: &State, ids: &[String]) {
        for id in ids {
            let (Some(now), Some(then)) = (self.executions.get(id), at.executions.get(id)) else { continue };
            // Dropped (again) since the copy: the base's record stays hidden by that drop, so the
            // copy in memory, even one equal to the checkpoint's, is the only visible one. (An
            // id dropped and created again with the same content would otherwise vanish.)
            let mark = self.dropped.get(id).copied();
            if mark != at.dropped.get(id).copied() {
                continue;
            }
            // Untouched since the copy, the value is still shared with it: the pointer says so
            // without a deep comparison.
            let unchanged = std::ptr::eq(now, then) || now == then;
            let logs_unchanged =
                now.tasks.iter().flat_map(|t| &t.attempts).all(|a| match (self.logs.get(&a.id), at.logs.get(&a.id)) {
                    (Some(x), Some(y)) => std::ptr::eq(x, y) || x == y,
                    (x, y) => x.is_none() && y.is_none(),
                });
            if unchanged && logs_unchanged {
                // Dropped before the copy and created again: the checkpoint removed the old record
                // and put this one, so the mark has done its work (absorb_drops would lift it
                // too, but this execution must not be hidden in between).
                if mark.is_some() {
                    self.dropped.remove(id);
                }
                self.forget(id);
            }
        }
        self.forget_floors();
    }

    /// The part of [`State::absorb`] for the drops `at` wrote.
    pub fn absorb_drops(&mut self, at: &State) {
        for (id, seq) in &at.dropped {
            if self.dropped.get(id) == Some(seq) {
                self.dropped.remove(id);
            }
        }
        self.forget_floors();
    }

    /// Takes a finished execution the base holds out of memory.
    fn forget(&mut self, id: &str) {
        if let Some(execution) = self.executions.remove(id) {
            for attempt in execution.tasks.iter().flat_map(|t| &t.attempts) {
                self.attempts.remove(&attempt.id);
                self.logs.remove(&attempt.id);
            }
        }
        self.unfile_absorbed(id);
    }

    fn logs_of(&self, execution: &Execution) -> Vec<(u64, AttemptLog)> {
        execution
            .tasks
            .iter()
            .flat_map(|t| &t.attempts)
            .filter_map(|a| self.logs.get(&a.id).map(|l| (a.id, l.clone())))
            .collect()
    }

    /// This state with everything visible in the base copied into memory and no base: what two
    /// nodes compare (see [`State::digest`]).
    pub fn logical(&self) -> State {
        if !self.base.is_attached() {
            return self.clone();
        }
        let mut whole = self.clone();
        for Record { execution, logs } in self.visible_base_records() {
            let id = execution.id.clone();
            for (task_index, task) in execution.tasks.iter().enumerate() {
                for attempt in &task.attempts {
                    whole.attempts.insert(attempt.id, AttemptRef::new(&id, task_index));
                }
            }
            for (attempt_id, log) in logs {
                whole.logs.insert(attempt_id, log);
            }
            whole.executions.insert(id, execution);
        }
        whole.base = Base::default();
        whole.dropped.clear();
        whole.rebuild_history();
        whole
    }
}

/// Base executions read a page at a time: `read` answers the next page (of visible ones) and
/// whether it was the last.
struct Pages<F> {
    read: F,
    page: VecDeque<Execution>,
    done: bool,
}

impl<F: FnMut() -> (Vec<Execution>, bool)> Pages<F> {
    fn new(read: F) -> Self {
        Pages { read, page: VecDeque::new(), done: false }
    }
}

impl<F: FnMut() -> (Vec<Execution>, bool)> Iterator for Pages<F> {
    type Item = Execution;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(e) = self.page.pop_front() {
                return Some(e);
            }
            if self.done {
                return None;
            }
            let (page, last) = (self.read)();
            self.page.extend(page);
            self.done = last;
        }
    }
}

/// Two ordered streams of executions with no id in both, merged in order (descending if
/// `newest`).
struct Merge<'a, A: Iterator<Item = Cow<'a, Execution>>, B: Iterator<Item = Cow<'a, Execution>>, F> {
    a: Peekable<A>,
    b: Peekable<B>,
    key: F,
    newest: bool,
}

impl<'a, A, B, F, K> Iterator for Merge<'a, A, B, F>
where
    A: Iterator<Item = Cow<'a, Execution>>,
    B: Iterator<Item = Cow<'a, Execution>>,
    F: Fn(&Cow<'a, Execution>) -> K,
    K: Ord,
{
    type Item = Cow<'a, Execution>;

    fn next(&mut self) -> Option<Self::Item> {
        let take_a = match (self.a.peek(), self.b.peek()) {
            (Some(a), Some(b)) => ((self.key)(a) < (self.key)(b)) != self.newest,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if take_a {
            self.a.next()
        } else {
            self.b.next()
        }
    }
}
