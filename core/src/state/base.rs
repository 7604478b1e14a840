//! The history base: finished executions, with their attempts' logs, kept on disk instead of in
//! memory.
//!
//! The state in memory holds what the engine works on (unfinished executions) and what finished
//! since the last checkpoint. A checkpoint ([`State::checkpoint`], taken with each snapshot)
//! folds the finished ones into the base, an ordered key-value store the node keeps on disk
//! ([`HistoryStore`]), and the state in memory then forgets them ([`State::absorb`]). The state
//! as a whole, what `apply` and every reader see, is the base overlaid by the state in memory:
//!
//! - an execution in memory hides the base's copy (a finished one retried is copied in first);
//! - an execution dropped since the checkpoint (retention) is listed in `dropped` and hidden;
//! - everything else in the base is visible.
//!
//! So between checkpoints the base only ever gains entries that are hidden and loses entries
//! that are hidden: what is visible in it does not change, whenever the node writes the next
//! checkpoint. That is what keeps `apply` deterministic although nodes checkpoint at different
//! moments: two nodes with the same commands applied see the same executions, byte for byte,
//! whatever their split between memory and disk (property-tested in `tests/base.rs`).
//!
//! The layout is this module's (the node stores bytes): one ordered keyspace with
//! - `e:<id>` → the execution and its attempts' logs ([`Record`]),
//! - `a:<attempt id>` → the execution id (attempts are addressed by id alone),
//! - `o:<finished at><id>` and `w:<workflow>:<finished at><id>` → retention order, oldest first,
//! - `c:<created at><id>` and `d:<workflow>:<created at><id>` → listing order, newest last,
//! - `s:summary` → what the base holds in counts ([`Summary`]), so a node restarting does not
//!   walk its history to count it.
//!
//! Times are 8 bytes, big-endian with the sign bit flipped, so byte order is time order.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Bound;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::execution::{AttemptStatus, Execution, ExecutionStatus};
use super::log::AttemptLog;
use crate::codec;

/// An ordered key-value store holding the base: sled trees on a node, memory in the simulation
/// and in tests. Reads only; a checkpoint's writes are applied by the node (see
/// [`Checkpoint::writes`]).
pub trait HistoryStore: Send + Sync {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String>;
    /// Up to `limit` entries with keys in the range, ascending (or descending if `rev`).
    fn scan(&self, from: Bound<&[u8]>, to: Bound<&[u8]>, rev: bool, limit: usize) -> Result<Vec<Entry>, String>;
}

/// A key and its value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// A write of a checkpoint: `None` removes the key.
pub type Write = (Vec<u8>, Option<Vec<u8>>);

/// What the base stores per execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Record {
    pub(super) execution: Execution,
    pub(super) logs: Vec<(u64, AttemptLog)>,
}

/// What the base holds, in counts (a node restarts from these instead of a walk of the base).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct Summary {
    pub(super) finished: u64,
    pub(super) per_workflow: BTreeMap<String, u64>,
    pub(super) statuses: BTreeMap<ExecutionStatus, u64>,
    pub(super) attempts: BTreeMap<AttemptStatus, u64>,
    pub(super) log_bytes: u64,
}

const SUMMARY: &[u8] = b"s:summary";

/// The state's handle on its base. Cloning shares the store. A read that fails (the disk under
/// the store failed) is remembered as a fault and answered as if nothing was there: the node
/// checks [`Base::fault`] after every apply and stops, since from then on its state may differ
/// from its peers'.
#[derive(Clone, Default)]
pub struct Base {
    store: Option<Arc<dyn HistoryStore>>,
    fault: Arc<Mutex<Option<String>>>,
}

impl fmt::Debug for Base {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Base").field("attached", &self.store.is_some()).finish()
    }
}

/// States compare by what they hold in memory; [`super::State::digest`] compares whole states.
impl PartialEq for Base {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Base {
    pub fn new(store: Arc<dyn HistoryStore>) -> Base {
        Base { store: Some(store), fault: Arc::default() }
    }

    pub(super) fn is_attached(&self) -> bool {
        self.store.is_some()
    }

    /// The first read that failed, if one did.
    pub fn fault(&self) -> Option<String> {
        self.fault.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(super) fn failed(&self, e: String) {
        let mut fault = self.fault.lock().unwrap_or_else(|p| p.into_inner());
        if fault.is_none() {
            *fault = Some(format!("reading the history base: {e}"));
        }
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let store = self.store.as_ref()?;
        store.get(key).unwrap_or_else(|e| {
            self.failed(e);
            None
        })
    }

    fn scan(&self, from: Bound<&[u8]>, to: Bound<&[u8]>, rev: bool, limit: usize) -> Vec<Entry> {
        let Some(store) = self.store.as_ref() else { return Vec::new() };
        store.scan(from, to, rev, limit).unwrap_or_else(|e| {
            self.failed(e);
            Vec::new()
        })
    }

    fn decode<T: serde::de::DeserializeOwned>(&self, bytes: &[u8], what: &str) -> Option<T> {
        codec::decode(bytes).map_err(|e| self.failed(format!("{what}: {e}"))).ok()
    }

    /// The record of execution `id`, visible or not.
    pub(super) fn record(&self, id: &str) -> Option<Record> {
        let bytes = self.get(&key(b"e:", id.as_bytes()))?;
        self.decode(&bytes, id)
    }

    /// The execution attempt `attempt_id` belongs to, if the base holds it.
    pub(super) fn attempt_execution(&self, attempt_id: u64) -> Option<String> {
        let bytes = self.get(&attempt_key(attempt_id))?;
        String::from_utf8(bytes).map_err(|e| self.failed(e.to_string())).ok()
    }

    pub(super) fn summary(&self) -> Summary {
        self.get(SUMMARY).and_then(|b| self.decode(&b, "summary")).unwrap_or_default()
    }

    /// Up to `limit` keys of an index (`o`, `w`, `c`, `d` above) after `after` (exclusive) in
    /// the direction asked, with the execution id each names.
    pub(super) fn index_page(
        &self,
        index: &Index,
        after: Option<&[u8]>,
        rev: bool,
        limit: usize,
    ) -> Vec<(Vec<u8>, i64, String)> {
        let (lo, hi) = index.bounds();
        let (from, to) = match (after, rev) {
            (None, _) => (Bound::Included(lo.as_slice()), Bound::Excluded(hi.as_slice())),
            (Some(a), false) => (Bound::Excluded(a), Bound::Excluded(hi.as_slice())),
            (Some(a), true) => (Bound::Included(lo.as_slice()), Bound::Excluded(a)),
        };
        self.scan(from, to, rev, limit)
            .into_iter()
            .filter_map(|(k, _)| {
                let n = index.prefix_len();
                let at = time_of(k.get(n..n + 8)?)?;
                let id = String::from_utf8(k.get(n + 8..)?.to_vec()).ok()?;
                Some((k, at, id))
            })
            .collect()
    }

    /// Up to `limit` records (of one workflow, or all) after execution id `after` (exclusive),
    /// in id order.
    pub(super) fn records_after(
        &self,
        workflow: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Vec<(String, Vec<u8>)> {
        let (lo, hi) = match workflow {
            Some(w) => (key(b"e:", format!("{w}:").as_bytes()), key(b"e:", format!("{w};").as_bytes())),
            None => (b"e:".to_vec(), b"e;".to_vec()),
        };
        let start = after.map(|a| key(b"e:", a.as_bytes())).filter(|s| *s >= lo);
        let from = match &start {
            Some(s) => Bound::Excluded(s.as_slice()),
            None => Bound::Included(lo.as_slice()),
        };
        self.scan(from, Bound::Excluded(hi.as_slice()), false, limit)
            .into_iter()
            .filter_map(|(k, v)| Some((String::from_utf8(k.get(2..)?.to_vec()).ok()?, v)))
            .collect()
    }

    pub(super) fn decode_record(&self, bytes: &[u8]) -> Option<Record> {
        self.decode(bytes, "execution record")
    }
}

/// One of the base's ordered indexes.
pub(super) enum Index<'a> {
    /// Finished executions by the time they finished: `o`, or `w` for one workflow.
    Finished(Option<&'a str>),
    /// Executions by the time they were created: `c`, or `d` for one workflow.
    Created(Option<&'a str>),
}

impl Index<'_> {
    fn prefix(&self) -> Vec<u8> {
        match self {
            Index::Finished(None) => b"o:".to_vec(),
            Index::Finished(Some(w)) => [b"w:", w.as_bytes(), b":"].concat(),
            Index::Created(None) => b"c:".to_vec(),
            Index::Created(Some(w)) => [b"d:", w.as_bytes(), b":"].concat(),
        }
    }

    fn prefix_len(&self) -> usize {
        self.prefix().len()
    }

    fn bounds(&self) -> (Vec<u8>, Vec<u8>) {
        let lo = self.prefix();
        let mut hi = lo.clone();
        // Every prefix ends in `:`; `;` is the byte after it.
        if let Some(last) = hi.last_mut() {
            *last += 1;
        }
        (lo, hi)
    }

    /// The key of execution `id` at time `at` in this index.
    pub(super) fn key(&self, at: i64, id: &str) -> Vec<u8> {
        [self.prefix().as_slice(), &ordered_time(at), id.as_bytes()].concat()
    }
}

fn key(prefix: &[u8], rest: &[u8]) -> Vec<u8> {
    [prefix, rest].concat()
}

fn attempt_key(attempt_id: u64) -> Vec<u8> {
    key(b"a:", &attempt_id.to_be_bytes())
}

/// Big-endian with the sign bit flipped: byte order is numeric order, negatives included.
fn ordered_time(at: i64) -> [u8; 8] {
    ((at as u64) ^ (1 << 63)).to_be_bytes()
}

fn time_of(bytes: &[u8]) -> Option<i64> {
    let raw: [u8; 8] = bytes.try_into().ok()?;
    Some((u64::from_be_bytes(raw) ^ (1 << 63)) as i64)
}

/// When a finished execution counts as finished (for retention order).
pub(super) fn finished_at(execution: &Execution) -> i64 {
    execution.finished_at_ms.unwrap_or(execution.created_at_ms)
}

/// The writes that add `record` to the base.
pub(super) fn put(record: &Record) -> Result<Vec<Write>, codec::CodecError> {
    let e = &record.execution;
    let (id, workflow) = (e.id.as_str(), e.workflow_id.as_str());
    let mut writes = vec![(key(b"e:", id.as_bytes()), Some(codec::encode(record)?))];
    for attempt in e.tasks.iter().flat_map(|t| &t.attempts) {
        writes.push((attempt_key(attempt.id), Some(id.as_bytes().to_vec())));
    }
    let done = finished_at(e);
    for index_key in [
        Index::Finished(None).key(done, id),
        Index::Finished(Some(workflow)).key(done, id),
        Index::Created(None).key(e.created_at_ms, id),
        Index::Created(Some(workflow)).key(e.created_at_ms, id),
    ] {
        writes.push((index_key, Some(Vec::new())));
    }
    Ok(writes)
}

/// The writes that take `record` out of the base.
pub(super) fn remove(record: &Record) -> Vec<Write> {
    let e = &record.execution;
    let (id, workflow) = (e.id.as_str(), e.workflow_id.as_str());
    let done = finished_at(e);
    let mut writes = vec![(key(b"e:", id.as_bytes()), None)];
    for attempt in e.tasks.iter().flat_map(|t| &t.attempts) {
        writes.push((attempt_key(attempt.id), None));
    }
    for index_key in [
        Index::Finished(None).key(done, id),
        Index::Finished(Some(workflow)).key(done, id),
        Index::Created(None).key(e.created_at_ms, id),
        Index::Created(Some(workflow)).key(e.created_at_ms, id),
    ] {
        writes.push((index_key, None));
    }
    writes
}

/// The write that records `summary`.
pub(super) fn put_summary(summary: &Summary) -> Result<Write, codec::CodecError> {
    Ok((SUMMARY.to_vec(), Some(codec::encode(summary)?)))
}

/// A checkpoint: the writes that make the base hold the history of a state, and that state
/// without the history (what a snapshot stores beside the base).
pub struct Checkpoint {
    /// Applied in order, atomically, by the node.
    pub writes: Vec<Write>,
    pub hot: super::State,
}

/// A map of the store's contents in memory: the base of tests, and of a state restored from a
/// snapshot before it has a disk.
#[derive(Debug, Default)]
pub struct MemoryStore(Mutex<BTreeMap<Vec<u8>, Vec<u8>>>);

impl MemoryStore {
    /// Applies a checkpoint's writes in order.
    pub fn apply(&self, writes: &[Write]) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for (k, v) in writes {
            match v {
                Some(v) => map.insert(k.clone(), v.clone()),
                None => map.remove(k),
            };
        }
    }

    /// Everything held, as writes that recreate it.
    pub fn entries(&self) -> Vec<Write> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect()
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl HistoryStore for MemoryStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        Ok(self.0.lock().unwrap_or_else(|p| p.into_inner()).get(key).cloned())
    }

    fn scan(&self, from: Bound<&[u8]>, to: Bound<&[u8]>, rev: bool, limit: usize) -> Result<Vec<Entry>, String> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let range = map.range::<[u8], _>((from, to)).map(|(k, v)| (k.clone(), v.clone()));
        Ok(if rev { range.rev().take(limit).collect() } else { range.take(limit).collect() })
    }
}
