//! openraft's state machine: applies committed entries to the [`State`] and keeps the latest
//! snapshot on the node's [`Disk`]: the history base in a tree (written in place by each
//! checkpoint) and the state in memory in a file beside it, tied by a pointer in the tree.
//! Snapshots go to followers a part at a time (`transfer.rs`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use linkloom_core::metrics::Histogram;
use std::ops::Bound;

use linkloom_core::{codec, HistoryStore, Response, State};
use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder, Snapshot, StorageIOError, Vote};
use serde::{Deserialize, Serialize};

use super::disk::{Blob, Disk, DiskError, Tree};
use super::transfer::{Part, Reader, SnapshotData, PART_BYTES};
use super::{io_error, read_error, StateHandle};
use crate::types::{LogId, Membership, SnapshotMeta, StorageError, TypeConfig};

type Entry = openraft::Entry<TypeConfig>;

const KEY_CURRENT: &str = "current";

/// Where the current snapshot is, kept in the history tree beside the base it belongs to, so one
/// batch moves both (core's keys never start with `n:`).
pub(super) const KEY_POINTER: &[u8] = b"n:snapshot";

/// In the `meta` tree: the name of the history tree in use (installing a snapshot fills a new
/// tree and then switches to it, so a crash leaves the old one whole).
const KEY_HISTORY_TREE: &[u8] = b"history_tree";

/// The two files a snapshot's state is written to, in turn: the pointer names the current one,
/// so the other can be written without touching it.
const BLOBS: [&str; 2] = ["snapshot-a", "snapshot-b"];

/// How many executions one hold of the apply lock forgets after a checkpoint.
const ABSORB_PART: usize = 256;

/// What the pointer says: the snapshot's metadata, which file holds it, and whether the file's
/// writes are all in the history tree yet.
#[derive(Serialize, Deserialize)]
struct Pointer {
    meta: SnapshotMeta,
    blob: String,
    applied: bool,
}

/// A snapshot file: the state in memory at the checkpoint, and the writes that bring the
/// history tree to the checkpoint. The writes are a redo record: the tree takes them a few
/// hundred at a time (sled holds on to the memory of large batches: 72,000 writes in one batch,
/// ten times over, left a test process at 1.6 GB; in batches of 60, at 70 MB), and a node that
/// crashed half way applies them all again when it opens (each write sets or removes one key,
/// so applying the whole list again over a part of it ends in the same tree).
#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    state: Vec<u8>,
    writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

/// Writes per sled batch when the history tree takes a checkpoint or an installed snapshot.
const WRITES_PER_BATCH: usize = 256;

/// Applies `writes` to `tree` in order, a batch of [`WRITES_PER_BATCH`] at a time.
fn apply_in_parts(tree: &Tree, writes: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<(), DiskError> {
    for part in writes.chunks(WRITES_PER_BATCH) {
        tree.apply_batch(part.to_vec())?;
    }
    Ok(())
}

/// How snapshots were stored before the history base (a file of their own, or the `snapshot`
/// tree): the metadata and the whole state. Read once, when a node upgraded in place starts.
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
    /// The history base in use (see [`linkloom_core::State::checkpoint`]), with the pointer to
    /// the current snapshot.
    history: Arc<std::sync::RwLock<Tree>>,
    meta: Tree,
    /// Written while a snapshot is built or installed (a checkpoint changes the base in place),
    /// read while one is sent or read out whole.
    snapshot_lock: Arc<tokio::sync::RwLock<()>>,
    /// The snapshot being received from the leader, part by part.
    incoming: Arc<tokio::sync::Mutex<Option<Incoming>>>,
    /// Where snapshots were kept before the history base: read when there is no pointer yet, so
    /// a node upgraded in place starts from its snapshot.
    legacy_blob: Blob,
    legacy: Tree,
    metrics: Arc<SnapshotMetrics>,
}

/// A snapshot transfer under way: which snapshot, from which leader, the part expected next,
/// and the tree the parts go to.
struct Incoming {
    vote: Vote<u64>,
    meta: SnapshotMeta,
    next: u64,
    name: String,
    tree: Tree,
}

/// What building snapshots costs, for `/metrics`.
#[derive(Debug, Default)]
pub struct SnapshotMetrics {
    /// The copy of the state taken under the read lock: while it runs, no command applies.
    pub copy: Histogram,
    /// The whole build: copy, checkpoint, the writes to disk, and forgetting what the base took.
    pub build: Histogram,
    /// Size of the state in memory in the last snapshot built or installed (the base is
    /// written in place, and counted by the data directory's size).
    pub bytes: AtomicU64,
}

/// The base as core reads it: a page at a time from a tree.
struct TreeStore(Tree);

impl HistoryStore for TreeStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        self.0.get(key).map_err(|e| e.to_string())
    }

    fn scan(
        &self,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        rev: bool,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, String> {
        self.0.scan(from, to, rev, limit).map_err(|e| e.to_string())
    }
}

impl StateMachineStore {
    /// Opens the store, restoring the state from the latest snapshot if there is one.
    pub fn open(disk: &Disk) -> Result<Self, OpenError> {
        let meta = disk.open_tree("meta")?;
        let history_name = match meta.get(KEY_HISTORY_TREE)? {
            Some(name) => String::from_utf8(name).map_err(|e| OpenError::Snapshot(e.to_string()))?,
            None => "history".to_string(),
        };
        // Trees of a transfer cut short, or of a base replaced while the node stopped: unused.
        drop_history_trees_but(disk, &[&history_name])?;
        let history = disk.open_history_tree(&history_name)?;
        let store = StateMachineStore {
            state: StateHandle::default(),
            disk: disk.clone(),
            history: Arc::new(std::sync::RwLock::new(history.clone())),
            meta,
            snapshot_lock: Arc::default(),
            incoming: Arc::default(),
            legacy_blob: disk.blob("snapshot")?,
            legacy: disk.open_tree("snapshot")?,
            metrics: Arc::default(),
        };
        let loaded = match store.pointer().map_err(|e| OpenError::Snapshot(e.to_string()))? {
            Some(pointer) => {
                let file = store.snapshot_file(&pointer.blob)?;
                if !pointer.applied {
                    // The node stopped while the history tree took this checkpoint: redo it.
                    apply_in_parts(&history, &file.writes)?;
                    let applied = Pointer { applied: true, ..pointer };
                    let bytes = codec::encode(&applied).map_err(|e| OpenError::Snapshot(e.to_string()))?;
                    history.insert(KEY_POINTER, bytes)?;
                    tracing::info!(writes = file.writes.len(), "redid the history writes of an unfinished checkpoint");
                    return Self::reopened(store, history, Some((applied.meta, file.state)));
                }
                Some((pointer.meta, file.state))
            }
            None => store.legacy_snapshot()?.map(|s| (s.meta, s.data)),
        };
        Self::reopened(store, history, loaded)
    }

    /// Loads the state of the snapshot read at open (if any) over `history`.
    fn reopened(
        store: StateMachineStore,
        history: Tree,
        loaded: Option<(SnapshotMeta, Vec<u8>)>,
    ) -> Result<Self, OpenError> {
        let mut state = match &loaded {
            Some((_, bytes)) => State::from_snapshot(bytes).map_err(|e| OpenError::Snapshot(e.to_string()))?,
            None => State::default(),
        };
        state.attach(Arc::new(TreeStore(history)));
        if let Some(fault) = state.history_fault() {
            return Err(OpenError::Snapshot(fault));
        }
        store.state.write(|a| {
            a.state = state;
            a.generation += 1;
            if let Some((meta, _)) = loaded {
                a.last_log_id = meta.last_log_id;
                a.membership = meta.last_membership;
            }
        });
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

    fn history(&self) -> Tree {
        self.history.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn pointer(&self) -> Result<Option<Pointer>, StorageError> {
        let bytes = self.history().get(KEY_POINTER).map_err(read_error)?;
        bytes.map(|b| codec::decode(&b).map_err(read_error)).transpose()
    }

    /// Makes the history tree look as if the node stopped just after pointing at the current
    /// snapshot: the pointer says "not applied" and the checkpoint's records are gone.
    #[cfg(test)]
    pub(super) fn undo_last_checkpoint_writes(&self) -> Result<(), StorageError> {
        let tree = self.history();
        let pointer = self.pointer()?.ok_or_else(|| read_error("no snapshot"))?;
        let file = self.snapshot_file(&pointer.blob).map_err(read_error)?;
        let undo: Vec<_> = file.writes.iter().map(|(k, _)| (k.clone(), None)).collect();
        apply_in_parts(&tree, &undo).map_err(read_error)?;
        let bytes = codec::encode(&Pointer { applied: false, ..pointer }).map_err(read_error)?;
        tree.insert(KEY_POINTER, bytes).map_err(read_error)
    }

    /// The snapshot file called `name`.
    fn snapshot_file(&self, name: &str) -> Result<SnapshotFile, OpenError> {
        let bytes = self
            .disk
            .blob(name)?
            .read()?
            .ok_or_else(|| OpenError::Snapshot(format!("the snapshot file {name} is missing")))?;
        codec::decode(&bytes).map_err(|e| OpenError::Snapshot(format!("the snapshot file {name}: {e}")))
    }

    fn legacy_snapshot(&self) -> Result<Option<StoredSnapshot>, OpenError> {
        let bytes = match self.legacy_blob.read()? {
            Some(bytes) => Some(bytes),
            None => self.legacy.get(KEY_CURRENT.as_bytes())?,
        };
        bytes.map(|b| codec::decode(&b).map_err(|e| OpenError::Snapshot(e.to_string()))).transpose()
    }

    /// The file the next snapshot's state goes to: the one the pointer does not name.
    fn next_blob(&self) -> Result<&'static str, StorageError> {
        let current = self.pointer()?.map(|p| p.blob);
        Ok(if current.as_deref() == Some(BLOBS[0]) { BLOBS[1] } else { BLOBS[0] })
    }

    /// Makes a snapshot current: its file (the state and `writes`, the redo record), then the
    /// pointer to it marked "not applied", then `writes` to `tree` in parts, then the pointer
    /// marked "applied". A crash before the pointer leaves the previous snapshot and base whole;
    /// after it, opening the node redoes the writes (see [`SnapshotFile`]).
    async fn commit(
        &self,
        tree: &Tree,
        meta: &SnapshotMeta,
        state: Vec<u8>,
        writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    ) -> Result<(), StorageError> {
        let signature = Some(meta.signature());
        let failed = |e: String| StorageIOError::write_snapshot(signature.clone(), &io_error(e));
        let name = self.next_blob()?;
        let blob = self.disk.blob(name).map_err(|e| failed(e.to_string()))?;
        let pointer = |applied| {
            codec::encode(&Pointer { meta: meta.clone(), blob: name.to_string(), applied })
                .map_err(|e| failed(e.to_string()))
        };
        let (unapplied, applied) = (pointer(false)?, pointer(true)?);
        // 1. The file, with the redo record, durably.
        let file = SnapshotFile { state, writes };
        let written = blob.clone();
        let file = off_the_runtime(&self.disk, move || {
            let bytes = codec::encode(&file).map_err(|e| e.to_string())?;
            written.write(&bytes).map_err(|e| e.to_string())?;
            Ok::<_, String>(file)
        })
        .await
        .map_err(failed)?;
        if blob.needs_flush() {
            self.disk.flush().await.map_err(|e: DiskError| failed(e.to_string()))?;
        }
        // 2. The pointer to it: from here a restart redoes the writes before anything reads.
        tree.insert(KEY_POINTER, unapplied).map_err(|e| failed(e.to_string()))?;
        self.disk.flush_history().await.map_err(|e: DiskError| failed(e.to_string()))?;
        // 3. The writes, in parts, then the pointer saying so.
        let target = tree.clone();
        off_the_runtime(&self.disk, move || apply_in_parts(&target, &file.writes).map_err(|e| e.to_string()))
            .await
            .map_err(failed)?;
        tree.insert(KEY_POINTER, applied).map_err(|e| failed(e.to_string()))?;
        self.disk.flush_history().await.map_err(|e: DiskError| failed(e.to_string()))?;
        // The old format's copy is out of date from now on.
        self.legacy_blob.remove().map_err(|e| failed(e.to_string()))?;
        Ok(())
    }

    /// Reads the current snapshot, which must be the one `meta` describes: the state file, then
    /// the base a page at a time. Holds the snapshot read lock until dropped, so no checkpoint
    /// changes the base under it (a new snapshot waits for the transfer).
    pub(crate) async fn reader(&self, meta: &SnapshotMeta) -> Result<Reader, String> {
        let held = self.snapshot_lock.clone().read_owned().await;
        match self.pointer().map_err(|e| e.to_string())? {
            Some(pointer) if pointer.meta == *meta => {
                let state = self.snapshot_file(&pointer.blob).map_err(|e| e.to_string())?.state;
                Ok(Reader::of_tree(self.history(), self.disk.clone(), state, held))
            }
            Some(pointer) => Err(format!(
                "snapshot {} was replaced by {} before it was sent; the next attempt sends the new one",
                meta.snapshot_id, pointer.meta.snapshot_id
            )),
            None => match self.legacy_snapshot().map_err(|e| e.to_string())? {
                // Stored before the history base: the state is all there is.
                Some(stored) if stored.meta == *meta => Ok(Reader::in_memory(stored.data, Vec::new())),
                _ => Err(format!("snapshot {} is no longer stored", meta.snapshot_id)),
            },
        }
    }

    /// The current snapshot read out whole (the [`super::transfer::Transfer`] encoding), for a
    /// backup. This holds the base whole in memory.
    pub(crate) async fn export(&self) -> Result<Option<(SnapshotMeta, Vec<u8>)>, StorageError> {
        let Some(meta) = self.current_meta().map_err(read_error)? else { return Ok(None) };
        let reader = self.reader(&meta).await.map_err(read_error)?;
        Ok(Some((meta, reader.into_whole().await.map_err(read_error)?)))
    }

    /// The metadata of the current snapshot (tests).
    #[cfg(test)]
    pub(super) fn current_snapshot_meta(&self) -> Option<SnapshotMeta> {
        self.current_meta().ok().flatten()
    }

    /// The metadata of the current snapshot, if there is one.
    fn current_meta(&self) -> Result<Option<SnapshotMeta>, OpenError> {
        if let Some(pointer) = self.pointer().map_err(|e| OpenError::Snapshot(e.to_string()))? {
            return Ok(Some(pointer.meta));
        }
        Ok(self.legacy_snapshot()?.map(|s| s.meta))
    }

    /// Writes a part of a snapshot sent by the leader; answers the snapshot to install once the
    /// last part is in. Part 0 starts a transfer (a new tree, dropping what an unfinished one
    /// wrote); any other part must be the one expected next, of the same transfer.
    pub(crate) async fn receive(&self, part: Part) -> Result<Option<(Vote<u64>, SnapshotMeta, SnapshotData)>, String> {
        let mut incoming = self.incoming.lock().await;
        if part.seq == 0 {
            let in_use = self.history_tree_name().map_err(|e| e.to_string())?;
            let mut name = format!("history-{}", part.meta.snapshot_id);
            if name == in_use {
                name.push_str("-next");
            }
            // What an unfinished transfer wrote goes (it may be this very snapshot's tree).
            if let Some(unfinished) = incoming.take() {
                if unfinished.name != in_use {
                    self.disk.drop_history_tree(&unfinished.name).map_err(|e| e.to_string())?;
                }
            }
            let tree = self.disk.open_history_tree(&name).map_err(|e| e.to_string())?;
            tree.clear().map_err(|e| e.to_string())?;
            *incoming = Some(Incoming { vote: part.vote, meta: part.meta.clone(), next: 0, name, tree });
        }
        let transfer = match incoming.as_mut() {
            Some(t) if t.vote == part.vote && t.meta == part.meta && t.next == part.seq => t,
            _ => {
                return Err(format!(
                    "part {} of snapshot {} is not the part expected next: the transfer starts again",
                    part.seq, part.meta.snapshot_id
                ))
            }
        };
        let writes: Vec<_> = part.entries.into_iter().map(|(k, v)| (k, Some(v))).collect();
        let target = transfer.tree.clone();
        let written =
            off_the_runtime(&self.disk, move || apply_in_parts(&target, &writes).map_err(|e| e.to_string())).await;
        if let Err(e) = written {
            *incoming = None;
            return Err(format!("writing a part of snapshot {}: {e}", part.meta.snapshot_id));
        }
        transfer.next += 1;
        let Some(state) = part.state else { return Ok(None) };
        let Incoming { vote, meta, name, .. } = incoming.take().ok_or("the transfer ended")?;
        Ok(Some((vote, meta, SnapshotData::Received { tree: name, state })))
    }

    /// What a snapshot's base is read from when it is not this node's: every part `reader`
    /// gives, into a new, empty tree; answers the tree's name and the snapshot's state.
    async fn copy_into_new_tree(
        &self,
        meta: &SnapshotMeta,
        mut reader: Reader,
    ) -> Result<(String, Vec<u8>), StorageError> {
        let signature = Some(meta.signature());
        let failed = |e: String| StorageIOError::write_snapshot(signature.clone(), &io_error(e));
        let in_use = self.history_tree_name().map_err(|e| failed(e.to_string()))?;
        let generation = self.state.read_applied(|a| a.generation);
        let mut name = format!("history-{}-{generation}", meta.last_log_id.map_or(0, |id| id.index));
        // Never the tree in use (a node reopened and seeded again at the same index would
        // otherwise clear what it is about to read).
        if name == in_use {
            name.push_str("-next");
        }
        let tree = self.disk.open_history_tree(&name).map_err(|e| failed(e.to_string()))?;
        tree.clear().map_err(|e| failed(e.to_string()))?;
        loop {
            let entries = reader.next(PART_BYTES).await.map_err(&failed)?;
            if entries.is_empty() {
                break;
            }
            let writes: Vec<_> = entries.into_iter().map(|(k, v)| (k, Some(v))).collect();
            let target = tree.clone();
            off_the_runtime(&self.disk, move || apply_in_parts(&target, &writes).map_err(|e| e.to_string()))
                .await
                .map_err(&failed)?;
        }
        Ok((name, reader.take_state()))
    }

    /// The name of the history tree in use.
    fn history_tree_name(&self) -> Result<String, DiskError> {
        match self.meta.get(KEY_HISTORY_TREE)? {
            Some(name) => String::from_utf8(name).map_err(|e| DiskError::new(e.to_string())),
            None => Ok("history".to_string()),
        }
    }
}

/// Drops every tree of the history database but those named in `keep`.
fn drop_history_trees_but(disk: &Disk, keep: &[&str]) -> Result<(), DiskError> {
    for name in disk.history_tree_names() {
        if !keep.contains(&name.as_str()) {
            disk.drop_history_tree(&name)?;
            tracing::info!(tree = %name, "dropped a history tree no snapshot uses");
        }
    }
    Ok(())
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
    /// A checkpoint: finished executions move from memory to the base on disk (only those that
    /// finished or went since the last one: the cost follows the change, not the history), and
    /// the state left in memory is written beside it.
    ///
    /// openraft uses only the metadata of a built snapshot (0.9: `sm::worker` reports
    /// `snap.meta`); what a follower is sent is read by `get_current_snapshot`. Either way the
    /// snapshot is a handle on this store, read when it is sent.
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let _writing = self.snapshot_lock.write().await;
        // The copy is O(1) (the state lives in persistent maps), so taking it under the read
        // lock stops nothing; the checkpoint and the writes run off the async workers.
        let started = Instant::now();
        let (copy, last_log_id, membership) =
            self.state.read_applied(|a| (a.state.clone(), a.last_log_id, a.membership.clone()));
        self.metrics.copy.observe(started.elapsed());
        let copy = Arc::new(copy);
        let at = copy.clone();
        let computing = Instant::now();
        let (writes, state) = off_the_runtime(&self.disk, move || {
            let checkpoint = at.checkpoint()?;
            let state = checkpoint.hot.to_snapshot().map_err(|e| e.to_string())?;
            Ok::<_, String>((checkpoint.writes, state))
        })
        .await
        .map_err(|e| StorageIOError::write_snapshot(None, &io_error(e)))?;
        let snapshot_id = match last_log_id {
            Some(id) => format!("{}-{}-{}", id.leader_id.term, id.index, state.len()),
            None => format!("empty-{}", state.len()),
        };
        let meta = SnapshotMeta { last_log_id, last_membership: membership, snapshot_id };
        let bytes = state.len();
        let entries = writes.len();
        let computed = computing.elapsed();
        let writing = Instant::now();
        self.commit(&self.history(), &meta, state, writes).await?;
        let written = writing.elapsed();
        // The base holds them now: forget them in memory (what anyone sees does not change).
        // A few hundred at a time, so commands apply in between (the longest hold is metered).
        let mut absorbed = Duration::ZERO;
        let ids = copy.checkpointed();
        for part in ids.chunks(ABSORB_PART) {
            let absorbing = Instant::now();
            self.state.write(|a| a.state.absorb_executions(&copy, part));
            absorbed = absorbed.max(absorbing.elapsed());
            tokio::task::yield_now().await;
        }
        self.state.write(|a| a.state.absorb_drops(&copy));
        self.metrics.build.observe(started.elapsed());
        self.metrics.bytes.store(bytes as u64, Ordering::Relaxed);
        tracing::info!(
            last_log_id = ?meta.last_log_id,
            bytes,
            base_writes = entries,
            checkpoint_ms = computed.as_millis() as u64,
            write_ms = written.as_millis() as u64,
            longest_absorb_ms = absorbed.as_millis() as u64,
            ms = started.elapsed().as_millis() as u64,
            "snapshot built"
        );
        Ok(Snapshot { meta, snapshot: Box::new(SnapshotData::Stored(Box::new(self.clone()))) })
    }
}

/// Runs CPU- or disk-heavy work (encoding a snapshot, storing it) on the blocking pool, so a
/// half-second encode does not hold one of the async workers that serve requests and flush the
/// log. On the simulation's disk it runs inline: a run must replay, and a thread pool would not.
pub(super) async fn off_the_runtime<T: Send + 'static>(
    disk: &Disk,
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    match disk {
        Disk::Sled(..) => {
            tokio::task::spawn_blocking(work).await.map_err(|e| format!("the blocking task failed: {e}"))?
        }
        Disk::Memory(_) => work(),
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
        let (responses, fault) = self.state.write(|applied| {
            let responses = entries
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
                .collect();
            (responses, applied.state.history_fault())
        });
        // The base could not be read: this node's state may differ from its peers' from here
        // on, so it stops (openraft shuts down on a storage error) rather than answer.
        if let Some(fault) = fault {
            return Err(StorageIOError::apply(
                self.state.read_applied(|a| a.last_log_id).unwrap_or_default(),
                &io_error(fault),
            )
            .into());
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<SnapshotData>, StorageError> {
        // Only openraft's chunked transfer asks for this, and it is never used (see
        // `transfer.rs`): parts are received by `receive`.
        Ok(Box::new(SnapshotData::Whole(Vec::new())))
    }

    /// Makes `snapshot` this node's state: its base becomes the history tree in use (a switch
    /// by one write, so a crash on the way leaves the current snapshot and base as they were),
    /// its state the state in memory. A received snapshot's base is in its tree already; any
    /// other is copied into a new tree first, a part at a time.
    async fn install_snapshot(&mut self, meta: &SnapshotMeta, snapshot: Box<SnapshotData>) -> Result<(), StorageError> {
        let signature = Some(meta.signature());
        let unreadable = |e: String| StorageIOError::read_snapshot(signature.clone(), &io_error(e));
        let failed = |e: String| StorageIOError::write_snapshot(signature.clone(), &io_error(e));
        let (name, bytes) = match *snapshot {
            SnapshotData::Received { tree, state } => (tree, state),
            SnapshotData::Whole(bytes) => {
                let reader = Reader::whole(&bytes).map_err(unreadable)?;
                drop(bytes);
                self.copy_into_new_tree(meta, reader).await?
            }
            SnapshotData::Stored(source) => {
                let reader = source.reader(meta).await.map_err(unreadable)?;
                self.copy_into_new_tree(meta, reader).await?
            }
        };
        let mut state = State::from_snapshot(&bytes).map_err(|e| unreadable(e.to_string()))?;
        let _writing = self.snapshot_lock.write().await;
        let old = self.history_tree_name().map_err(|e| failed(e.to_string()))?;
        let tree = self.disk.open_history_tree(&name).map_err(|e| failed(e.to_string()))?;
        self.disk.flush_history().await.map_err(|e| failed(e.to_string()))?;
        let state_bytes = bytes.len();
        self.commit(&tree, meta, bytes, Vec::new()).await?;
        self.meta.insert(KEY_HISTORY_TREE, name.clone().into_bytes()).map_err(|e| failed(e.to_string()))?;
        self.disk.flush().await.map_err(|e| failed(e.to_string()))?;
        *self.history.write().unwrap_or_else(|p| p.into_inner()) = tree.clone();
        state.attach(Arc::new(TreeStore(tree)));
        self.metrics.bytes.store(state_bytes as u64, Ordering::Relaxed);
        self.state.write(|a| {
            a.state = state;
            a.generation += 1;
            a.last_log_id = meta.last_log_id;
            a.membership = meta.last_membership.clone();
        });
        // The old base is no longer read by anything. Dropping a large tree takes a while: on
        // a node it runs aside (what a crash leaves is dropped when the node next opens).
        let disk = self.disk.clone();
        let drop_old =
            move || if old == name { Ok(()) } else { disk.drop_history_tree(&old).map_err(|e| e.to_string()) };
        match &self.disk {
            Disk::Sled(..) => {
                tokio::task::spawn_blocking(move || {
                    if let Err(e) = drop_old() {
                        tracing::warn!(error = %e, "dropping the replaced history tree failed; retried when the node opens");
                    }
                });
            }
            Disk::Memory(_) => drop_old().map_err(failed)?,
        }
        tracing::info!(last_log_id = ?meta.last_log_id, "snapshot installed");
        Ok(())
    }

    /// The current snapshot's metadata, and a handle that reads it when it is sent: openraft
    /// asks at every start and before every send, so this reads the pointer, never the base.
    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let meta = self.current_meta().map_err(read_error)?;
        Ok(meta.map(|meta| Snapshot { meta, snapshot: Box::new(SnapshotData::Stored(Box::new(self.clone()))) }))
    }
}
