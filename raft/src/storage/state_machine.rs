//! openraft's state machine: applies committed entries to the in-memory [`State`] and keeps the
//! latest snapshot on the node's [`Disk`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use linkloom_core::metrics::Histogram;
use linkloom_core::{codec, Response, State};
use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder, Snapshot, StorageIOError};
use serde::{Deserialize, Serialize};

use super::disk::{Blob, Disk, DiskError, Tree};
use super::{io_error, read_error, StateHandle};
use crate::types::{LogId, Membership, SnapshotMeta, StorageError, TypeConfig};

type Entry = openraft::Entry<TypeConfig>;

const KEY_CURRENT: &str = "current";

/// What the snapshot tree stores: the metadata openraft needs and the encoded state.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

/// The applied state plus what openraft needs to know about it.
#[derive(Clone)]
pub struct StateMachineStore {
    state: StateHandle,
    disk: Disk,
    /// The current snapshot (see [`Blob`]: a file of its own on a real disk).
    snapshot: Blob,
    /// Where snapshots were kept before they had a file of their own: read when there is no
    /// file yet, so a node upgraded in place starts from its snapshot.
    legacy: Tree,
    metrics: Arc<SnapshotMetrics>,
}

/// What building snapshots costs, for `/metrics`.
#[derive(Debug, Default)]
pub struct SnapshotMetrics {
    /// The copy of the state taken under the read lock: while it runs, no command applies.
    pub copy: Histogram,
    /// The whole build: copy, encoding, and the write to disk.
    pub build: Histogram,
    /// Size of the last snapshot built or installed.
    pub bytes: AtomicU64,
}

impl StateMachineStore {
    /// Opens the store, restoring the state from the latest snapshot if there is one.
    pub fn open(disk: &Disk) -> Result<Self, OpenError> {
        let store = StateMachineStore {
            state: StateHandle::default(),
            disk: disk.clone(),
            snapshot: disk.blob("snapshot")?,
            legacy: disk.open_tree("snapshot")?,
            metrics: Arc::default(),
        };
        if let Some(stored) = store.stored_snapshot().map_err(|e| OpenError::Snapshot(e.to_string()))? {
            let state = State::from_snapshot(&stored.data).map_err(|e| OpenError::Snapshot(e.to_string()))?;
            store.state.write(|a| {
                a.state = state;
                a.generation += 1;
                a.last_log_id = stored.meta.last_log_id;
                a.membership = stored.meta.last_membership.clone();
            });
        }
        Ok(store)
    }

    /// The shared read handle to the applied state.
    pub fn state(&self) -> StateHandle {
        self.state.clone()
    }

    /// What building snapshots costs.
    pub fn metrics(&self) -> Arc<SnapshotMetrics> {
        self.metrics.clone()
    }

    fn stored_snapshot(&self) -> Result<Option<StoredSnapshot>, StorageError> {
        let bytes = match self.snapshot.read().map_err(read_error)? {
            Some(bytes) => Some(bytes),
            None => self.legacy.get(KEY_CURRENT.as_bytes()).map_err(read_error)?,
        };
        bytes.map(|bytes| codec::decode(&bytes).map_err(read_error)).transpose()
    }

    /// Stores `stored` as the current snapshot, durably; answers it back.
    async fn save_snapshot(&self, stored: StoredSnapshot) -> Result<StoredSnapshot, StorageError> {
        let signature = Some(stored.meta.signature());
        let failed = |e: String| StorageIOError::write_snapshot(signature.clone(), &io_error(e));
        let snapshot = self.snapshot.clone();
        let stored = off_the_runtime(&self.disk, move || {
            let bytes = codec::encode(&stored).map_err(|e| e.to_string())?;
            snapshot.write(&bytes).map_err(|e| e.to_string())?;
            Ok::<_, String>(stored)
        })
        .await
        .and_then(|r| r)
        .map_err(failed)?;
        if self.snapshot.needs_flush() {
            self.disk.flush().await.map_err(|e: DiskError| failed(e.to_string()))?;
        }
        Ok(stored)
    }
}

/// Why the state machine store could not open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("disk: {0}")]
    Disk(#[from] DiskError),
    #[error("stored snapshot is unreadable: {0}")]
    Snapshot(String),
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        // The copy is O(1) (the state lives in persistent maps), so taking it under the read
        // lock stops nothing; encoding and storing it run off the async workers.
        let started = Instant::now();
        let (state, last_log_id, membership) =
            self.state.read_applied(|a| (a.state.clone(), a.last_log_id, a.membership.clone()));
        self.metrics.copy.observe(started.elapsed());
        let data = off_the_runtime(&self.disk, move || state.to_snapshot())
            .await
            .and_then(|encoded| encoded.map_err(|e| e.to_string()))
            .map_err(|e| StorageIOError::write_snapshot(None, &io_error(e)))?;
        let snapshot_id = match last_log_id {
            Some(id) => format!("{}-{}-{}", id.leader_id.term, id.index, data.len()),
            None => format!("empty-{}", data.len()),
        };
        let meta = SnapshotMeta { last_log_id, last_membership: membership, snapshot_id };
        let stored = StoredSnapshot { meta, data };
        let stored = self.save_snapshot(stored).await?;
        self.metrics.build.observe(started.elapsed());
        self.metrics.bytes.store(stored.data.len() as u64, Ordering::Relaxed);
        tracing::info!(
            last_log_id = ?stored.meta.last_log_id,
            bytes = stored.data.len(),
            ms = started.elapsed().as_millis() as u64,
            "snapshot built"
        );
        Ok(Snapshot { meta: stored.meta, snapshot: Box::new(stored.data) })
    }
}

/// Runs CPU- or disk-heavy work (encoding a snapshot, storing it) on the blocking pool, so a
/// half-second encode does not hold one of the async workers that serve requests and flush the
/// log. On the simulation's disk it runs inline: a run must replay, and a thread pool would not.
async fn off_the_runtime<T: Send + 'static>(
    disk: &Disk,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    match disk {
        Disk::Sled(..) => tokio::task::spawn_blocking(work).await.map_err(|e| format!("the blocking task failed: {e}")),
        Disk::Memory(_) => Ok(work()),
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, Membership), StorageError> {
        Ok(self.state.read_applied(|a| (a.last_log_id, a.membership.clone())))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let responses = self.state.write(|applied| {
            entries
                .into_iter()
                .map(|entry| {
                    applied.last_log_id = Some(entry.log_id);
                    match entry.payload {
                        EntryPayload::Blank => Response::Noop,
                        EntryPayload::Normal(command) => applied.state.apply(command),
                        EntryPayload::Membership(m) => {
                            applied.membership = Membership::new(Some(entry.log_id), m);
                            Response::Noop
                        }
                    }
                })
                .collect()
        });
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Vec<u8>>, StorageError> {
        Ok(Box::default())
    }

    async fn install_snapshot(&mut self, meta: &SnapshotMeta, snapshot: Box<Vec<u8>>) -> Result<(), StorageError> {
        let state = State::from_snapshot(&snapshot)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &io_error(e)))?;
        let stored = self.save_snapshot(StoredSnapshot { meta: meta.clone(), data: *snapshot }).await?;
        self.metrics.bytes.store(stored.data.len() as u64, Ordering::Relaxed);
        self.state.write(|a| {
            a.state = state;
            a.generation += 1;
            a.last_log_id = meta.last_log_id;
            a.membership = meta.last_membership.clone();
        });
        tracing::info!(last_log_id = ?meta.last_log_id, "snapshot installed");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        Ok(self.stored_snapshot()?.map(|stored| Snapshot { meta: stored.meta, snapshot: Box::new(stored.data) }))
    }
}
