//! openraft's log storage on the node's [`Disk`]: entries, vote, committed index, purge point.
//!
//! An append is acknowledged to openraft only after the disk has flushed it, but `append`
//! itself returns as soon as the entries are in the disk's in-memory view: a flusher task fsyncs and
//! then fires every callback that queued up meanwhile (group commit). One fsync thus covers all
//! the entries that arrived while the previous one was in flight; that is where write throughput
//! comes from. openraft counts an entry as persisted only when its callback fires, so a crash
//! before the fsync loses nothing that was acknowledged.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};

use linkloom_core::codec;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use linkloom_core::metrics::Histogram;
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{LogState, OptionalSend, RaftLogId, RaftLogReader, StorageIOError, Vote};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::disk::{Disk, DiskError, Tree};
use super::{io_error, read_error};
use crate::types::{LogId, StorageError, TypeConfig};

type Entry = openraft::Entry<TypeConfig>;

/// The Raft log. Cheap to clone (trees are shared handles).
#[derive(Clone)]
pub struct LogStore {
    disk: Disk,
    log: Tree,
    meta: Tree,
    flusher: mpsc::Sender<(Instant, LogFlushed<TypeConfig>)>,
    metrics: Arc<LogMetrics>,
}

/// What the log measures about itself, for `/metrics`.
#[derive(Debug, Default)]
pub struct LogMetrics {
    /// From `append` to the fsync that made the entries durable.
    pub append_latency: Histogram,
    pub fsyncs: AtomicU64,
    /// The last committed index openraft reported (0 before the first).
    pub committed_index: AtomicU64,
}

/// Appends waiting for their fsync; `append` waits for room beyond this (back-pressure).
const MAX_PENDING_FLUSHES: usize = 8192;

const KEY_VOTE: &str = "vote";
const KEY_COMMITTED: &str = "committed";
const KEY_LAST_PURGED: &str = "last_purged";

impl LogStore {
    /// Opens the log trees and starts the flusher task (call inside a tokio runtime).
    pub fn open(disk: &Disk) -> Result<Self, DiskError> {
        let (flusher, pending) = mpsc::channel(MAX_PENDING_FLUSHES);
        let metrics = Arc::new(LogMetrics::default());
        tokio::spawn(flush_loop(disk.clone(), pending, metrics.clone()));
        Ok(LogStore {
            disk: disk.clone(),
            log: disk.open_tree("log")?,
            meta: disk.open_tree("meta")?,
            flusher,
            metrics,
        })
    }

    pub fn metrics(&self) -> Arc<LogMetrics> {
        self.metrics.clone()
    }

    fn get_meta<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StorageError> {
        match self.meta.get(key.as_bytes()).map_err(read_error)? {
            None => Ok(None),
            Some(bytes) => codec::decode(&bytes).map(Some).map_err(read_error),
        }
    }

    fn put_meta<T: serde::Serialize>(&self, key: &str, value: &T) -> Result<(), std::io::Error> {
        let bytes = codec::encode(value).map_err(io_error)?;
        self.meta.insert(key.as_bytes(), bytes).map_err(io_error)?;
        Ok(())
    }

    async fn flush(&self) -> Result<(), std::io::Error> {
        self.disk.flush().await.map_err(io_error)
    }

    /// Entries currently on disk (for tests and metrics).
    pub fn len(&self) -> usize {
        self.log.len()
    }

    pub fn is_empty(&self) -> bool {
        self.log.is_empty()
    }
}

/// Fsyncs once for every batch of appends that queued up, then tells openraft they are durable.
async fn flush_loop(
    disk: Disk,
    mut pending: mpsc::Receiver<(Instant, LogFlushed<TypeConfig>)>,
    metrics: Arc<LogMetrics>,
) {
    let mut batch = Vec::new();
    while pending.recv_many(&mut batch, MAX_PENDING_FLUSHES).await > 0 {
        let flushed = disk.flush().await;
        metrics.fsyncs.fetch_add(1, Ordering::Relaxed);
        for (appended_at, callback) in batch.drain(..) {
            metrics.append_latency.observe(appended_at.elapsed());
            callback.log_io_completed(flushed.as_ref().map(|_| ()).map_err(io_error));
        }
        if let Err(e) = flushed {
            tracing::error!("log flush failed: {e}");
        }
    }
}

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        use std::ops::Bound;
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let mut entries = Vec::new();
        let start_key = index_key(start);
        let end = match range.end_bound() {
            Bound::Included(i) => Bound::Included(index_key(*i)),
            Bound::Excluded(i) => Bound::Excluded(index_key(*i)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let items =
            self.log.range(Bound::Included(&start_key[..]), end.as_ref().map(|k| &k[..])).map_err(read_error)?;
        for (key, value) in items {
            let mut index_bytes = [0u8; 8];
            index_bytes.copy_from_slice(&key);
            if !range.contains(&u64::from_be_bytes(index_bytes)) {
                break;
            }
            entries.push(codec::decode(&value).map_err(read_error)?);
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged: Option<LogId> = self.get_meta(KEY_LAST_PURGED)?;
        let last = match self.log.last().map_err(read_error)? {
            Some((_, value)) => {
                let entry: Entry = codec::decode(&value).map_err(read_error)?;
                Some(*entry.get_log_id())
            }
            None => last_purged,
        };
        Ok(LogState { last_purged_log_id: last_purged, last_log_id: last })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError> {
        self.put_meta(KEY_VOTE, vote).map_err(|e| StorageIOError::write_vote(&e))?;
        self.flush().await.map_err(|e| StorageIOError::write_vote(&e))?;
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError> {
        self.get_meta(KEY_VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Not flushed on its own: losing it only means re-applying from the snapshot on restart.
        self.put_meta(KEY_COMMITTED, &committed).map_err(|e| StorageIOError::write(&e))?;
        if let Some(id) = committed {
            self.metrics.committed_index.fetch_max(id.index, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.get_meta::<Option<LogId>>(KEY_COMMITTED)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = Vec::new();
        for entry in entries {
            let bytes = codec::encode(&entry).map_err(|e| StorageIOError::write_logs(&io_error(e)))?;
            batch.push((index_key(entry.get_log_id().index).to_vec(), Some(bytes)));
        }
        self.log.apply_batch(batch).map_err(|e| StorageIOError::write_logs(&io_error(e)))?;
        // Durable once the flusher's next fsync completes; it fires the callback then.
        self.flusher
            .send((Instant::now(), callback))
            .await
            .map_err(|_| StorageIOError::write_logs(&io_error("the log flusher has stopped")).into())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // Removes every entry from `log_id` on (a new leader overwrote them).
        let from = index_key(log_id.index);
        let doomed = self.log.range(Bound::Included(&from[..]), Bound::Unbounded).map_err(read_error)?;
        let batch = doomed.into_iter().map(|(key, _)| (key, None)).collect();
        self.log.apply_batch(batch).map_err(|e| StorageIOError::write_logs(&io_error(e)))?;
        self.flush().await.map_err(|e| StorageIOError::write_logs(&e))?;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // Record the purge point first: a crash between the two steps leaves extra entries, which
        // the next purge removes, never a gap that the state does not know about.
        self.put_meta(KEY_LAST_PURGED, &log_id).map_err(|e| StorageIOError::write(&e))?;
        self.flush().await.map_err(|e| StorageIOError::write(&e))?;
        let to = index_key(log_id.index);
        let doomed = self.log.range(Bound::Unbounded, Bound::Included(&to[..])).map_err(read_error)?;
        let batch = doomed.into_iter().map(|(key, _)| (key, None)).collect();
        self.log.apply_batch(batch).map_err(|e| StorageIOError::write_logs(&io_error(e)))?;
        Ok(())
    }
}
