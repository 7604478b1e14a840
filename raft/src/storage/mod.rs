//! Durable storage in one [`Disk`] per node: a sled database, or an in-memory disk in the
//! simulation.
//!
//! Layout (all values are [`linkloom_core::codec`] encodings, which start with a format version):
//! - tree `log`: key = log index as 8 big-endian bytes, value = the openraft entry;
//! - tree `meta`: `vote`, `committed`, `last_purged` (openraft's hard state);
//! - tree `history` (or the tree `meta`'s `history_tree` names): the history base, laid out by
//!   `linkloom_core`'s `state/base.rs`, plus `n:snapshot` = the current snapshot's metadata and
//!   which file holds its state. Any other tree of the history database is a snapshot being
//!   received (`transfer.rs`) or one replaced, dropped when the node next opens;
//! - files `snapshot-a.bin` / `snapshot-b.bin` beside sled: the state in memory at a snapshot,
//!   written in turn.
//!
//! What the engine works on lives in memory; finished executions move to the history base at
//! each snapshot (a checkpoint, see `state_machine.rs`). The whole is made durable by the log
//! plus snapshots: on start a node loads the snapshot file the pointer names, attaches the base,
//! and openraft re-applies the committed entries after it. Snapshots are taken every
//! `snapshot_logs` entries and the log is purged behind them, so disk stays bounded by the
//! history kept, one snapshot file and the entries since.

mod disk;
mod log_store;
mod state_machine;
mod transfer;

use std::sync::{Arc, RwLock};

use linkloom_core::State;

pub use disk::{Blob, Disk, DiskError, MemoryDisk, Tree};
pub use log_store::{LogMetrics, LogStore};
pub use state_machine::{SnapshotMetrics, StateMachineStore};
pub use transfer::SnapshotData;
pub(crate) use transfer::{Part, PartAnswer, Reader, PART_BYTES};

use crate::types::{LogId, Membership, StorageError};

/// The state with the id of the last entry applied to it and the membership in force. They sit
/// under one lock so that a snapshot never claims an entry it does not contain, or the reverse.
#[derive(Default)]
pub(crate) struct Applied {
    pub(crate) state: State,
    pub(crate) last_log_id: Option<LogId>,
    pub(crate) membership: Membership,
    /// How many times the state was replaced whole (restored or installed from a snapshot):
    /// positions in its change journal start again then.
    pub(crate) generation: u64,
}

/// Read access to the applied state, shared with the API. Readers hold the lock briefly and
/// copy out what they need; `apply` takes it for writing once per batch of entries.
#[derive(Clone, Default)]
pub struct StateHandle(Arc<RwLock<Applied>>);

impl StateHandle {
    /// Runs `f` with the current state.
    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        let guard = self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&guard.state)
    }

    /// Runs `f` with the current state, and answers which generation of it that was (see
    /// [`linkloom_core::State::changed_since`]: a new generation means look at everything).
    pub fn read_with_generation<R>(&self, f: impl FnOnce(&State) -> R) -> (u64, R) {
        let guard = self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        (guard.generation, f(&guard.state))
    }

    pub(crate) fn read_applied<R>(&self, f: impl FnOnce(&Applied) -> R) -> R {
        let guard = self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&guard)
    }

    pub(crate) fn write<R>(&self, f: impl FnOnce(&mut Applied) -> R) -> R {
        let mut guard = self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }
}

fn io_error(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

fn read_error(e: impl std::fmt::Display) -> StorageError {
    openraft::StorageIOError::read(&io_error(e)).into()
}

#[cfg(test)]
mod tests {
    use linkloom_core::{Command, Response};
    use openraft::storage::RaftStateMachine;
    use openraft::testing::{StoreBuilder, Suite};
    use openraft::{CommittedLeaderId, Entry, EntryPayload, RaftSnapshotBuilder};

    use super::*;
    use crate::types::{SnapshotMeta, TypeConfig};

    struct SledBuilder;

    impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for SledBuilder {
        async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachineStore), StorageError> {
            let dir = tempfile::tempdir().map_err(read_error)?;
            let db = Disk::open_sled(dir.path()).map_err(read_error)?;
            let log = LogStore::open(&db).map_err(read_error)?;
            let sm = StateMachineStore::open(&db).map_err(read_error)?;
            Ok((dir, log, sm))
        }
    }

    struct MemoryBuilder;

    impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, ()> for MemoryBuilder {
        async fn build(&self) -> Result<((), LogStore, StateMachineStore), StorageError> {
            let disk = Disk::Memory(MemoryDisk::default());
            let log = LogStore::open(&disk).map_err(read_error)?;
            let sm = StateMachineStore::open(&disk).map_err(read_error)?;
            Ok(((), log, sm))
        }
    }

    /// openraft's own conformance suite for log and state machine storage, on both disks.
    #[test]
    fn openraft_storage_suite_passes() {
        Suite::test_all(SledBuilder).expect("storage suite on sled");
        Suite::test_all(MemoryBuilder).expect("storage suite on the memory disk");
    }

    #[tokio::test]
    async fn a_snapshot_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let spec = linkloom_core::spec::parse_yaml("id: wf\ntasks: [{id: t, type: worker, queue: q}]\n").unwrap();
        let entry = Entry::<TypeConfig> {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), 1),
            payload: EntryPayload::Normal(Command::PutWorkflow { spec, actor: None, at_ms: 5 }),
        };
        let digest = {
            let db = Disk::open_sled(dir.path()).unwrap();
            let mut sm = StateMachineStore::open(&db).unwrap();
            let responses = sm.apply(vec![entry.clone()]).await.unwrap();
            assert_eq!(responses, vec![Response::WorkflowStored { workflow_id: "wf".into(), version: 1 }]);
            sm.build_snapshot().await.unwrap();
            sm.state().read(|s| s.digest())
        };
        // sled holds a file lock: the first handle is dropped above before reopening.
        let db = Disk::open_sled(dir.path()).unwrap();
        let mut sm = StateMachineStore::open(&db).unwrap();
        assert_eq!(sm.state().read(|s| s.digest()), digest);
        let (applied, _) = sm.applied_state().await.unwrap();
        assert_eq!(applied, Some(entry.log_id));
    }

    fn entry(index: u64, command: Command) -> Entry<TypeConfig> {
        Entry { log_id: LogId::new(CommittedLeaderId::new(1, 1), index), payload: EntryPayload::Normal(command) }
    }

    /// A workflow and `n` executions of it, cancelled (so finished) at once.
    fn finished_history(n: u64) -> Vec<Entry<TypeConfig>> {
        let spec = linkloom_core::spec::parse_yaml("id: wf\ntasks: [{id: t, type: worker, queue: q}]\n").unwrap();
        let mut entries = vec![entry(1, Command::PutWorkflow { spec, actor: None, at_ms: 5 })];
        for i in 0..n {
            let execution_id = format!("wf:e{i:04}");
            entries.push(entry(
                2 + 2 * i,
                Command::CreateExecution {
                    execution_id: execution_id.clone(),
                    workflow_id: "wf".into(),
                    trigger: linkloom_core::state::Trigger::Manual,
                    scheduled_at_ms: None,
                    params: linkloom_core::json::Json::null(),
                    actor: None,
                    at_ms: 10 + i as i64,
                },
            ));
            entries
                .push(entry(3 + 2 * i, Command::CancelExecution { execution_id, actor: None, at_ms: 10 + i as i64 }));
        }
        entries
    }

    #[tokio::test]
    async fn finished_history_moves_to_disk_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let digest = {
            let db = Disk::open_sled(dir.path()).unwrap();
            let mut sm = StateMachineStore::open(&db).unwrap();
            sm.apply(finished_history(300)).await.unwrap();
            assert_eq!(sm.state().read(|s| s.kept().finished_in_memory), 300);
            sm.build_snapshot().await.unwrap();
            let kept = sm.state().read(|s| s.kept());
            assert_eq!((kept.finished_executions, kept.finished_in_memory), (300, 0), "{kept:?}");
            // Still read through the state, from the base.
            let e = sm.state().read(|s| s.execution("wf:e0042").map(|e| e.into_owned())).expect("kept on disk");
            assert_eq!(e.status, linkloom_core::state::ExecutionStatus::Cancelled);
            // More history after the checkpoint, then a second one that only adds it.
            let more = finished_history(320).into_iter().skip(601).collect::<Vec<_>>();
            sm.apply(more).await.unwrap();
            sm.build_snapshot().await.unwrap();
            sm.state().read(|s| s.digest())
        };
        let db = Disk::open_sled(dir.path()).unwrap();
        let sm = StateMachineStore::open(&db).unwrap();
        let kept = sm.state().read(|s| s.kept());
        assert_eq!((kept.finished_executions, kept.finished_in_memory), (320, 0), "{kept:?}");
        assert_eq!(sm.state().read(|s| s.digest()), digest);
        let newest: Vec<String> =
            sm.state().read(|s| s.executions_newest(Some("wf"), None).take(3).map(|e| e.id.clone()).collect());
        assert_eq!(newest, vec!["wf:e0319", "wf:e0318", "wf:e0317"]);
    }

    #[tokio::test]
    async fn a_follower_installs_the_history_with_the_snapshot() {
        let leader_disk = Disk::Memory(MemoryDisk::default());
        let mut leader = StateMachineStore::open(&leader_disk).unwrap();
        leader.apply(finished_history(50)).await.unwrap();
        leader.build_snapshot().await.unwrap();
        let snapshot = leader.get_current_snapshot().await.unwrap().expect("a snapshot");
        let memory = MemoryDisk::default();
        let follower_disk = Disk::Memory(memory.clone());
        let mut follower = StateMachineStore::open(&follower_disk).unwrap();
        // What the follower had before is replaced whole.
        follower.apply(finished_history(7)).await.unwrap();
        follower.build_snapshot().await.unwrap();
        follower.install_snapshot(&snapshot.meta, snapshot.snapshot).await.unwrap();
        let digest = leader.state().read(|s| s.digest());
        assert_eq!(follower.state().read(|s| s.digest()), digest);
        // And it is durable: after a power cut the follower restarts from it.
        memory.crash();
        let reopened = StateMachineStore::open(&follower_disk).unwrap();
        assert_eq!(reopened.state().read(|s| s.digest()), digest);
        assert_eq!(reopened.state().read(|s| s.kept().finished_executions), 50);
    }

    /// Sends `leader`'s current snapshot to `follower` through `receive`, in parts of about
    /// `part_bytes`, stopping after `parts` parts if given; answers how many parts went and
    /// what the last one left to install.
    async fn send_in_parts(
        leader: &StateMachineStore,
        follower: &StateMachineStore,
        part_bytes: usize,
        parts: Option<u64>,
    ) -> (u64, Option<(SnapshotMeta, SnapshotData)>) {
        let meta = leader.current_snapshot_meta().expect("a snapshot");
        let mut reader = leader.reader(&meta).await.expect("reader");
        let vote = openraft::Vote::new_committed(1, 1);
        for seq in 0.. {
            if parts == Some(seq) {
                return (seq, None);
            }
            let entries = if seq == 0 { Vec::new() } else { reader.next(part_bytes).await.unwrap() };
            let last = seq > 0 && entries.is_empty();
            let part = Part { vote, meta: meta.clone(), seq, entries, state: last.then(|| reader.take_state()) };
            if let Some((_, meta, data)) = follower.receive(part).await.expect("part taken") {
                return (seq + 1, Some((meta, data)));
            }
        }
        unreachable!("the loop returns")
    }

    #[tokio::test(start_paused = true)]
    async fn a_snapshot_goes_over_in_parts_and_a_transfer_cut_short_changes_nothing() {
        let mut leader = StateMachineStore::open(&Disk::Memory(MemoryDisk::default())).unwrap();
        leader.apply(finished_history(200)).await.unwrap();
        leader.build_snapshot().await.unwrap();
        let memory = MemoryDisk::default();
        let disk = Disk::Memory(memory.clone());
        let mut follower = StateMachineStore::open(&disk).unwrap();
        follower.apply(finished_history(7)).await.unwrap();
        follower.build_snapshot().await.unwrap();
        let before = follower.state().read(|s| s.digest());

        // Cut short after three parts, written durably, then the node stops: it opens with
        // the state it had, and without the half-filled tree.
        let (sent, _) = send_in_parts(&leader, &follower, 2_000, Some(3)).await;
        assert_eq!(sent, 3);
        assert_eq!(disk.history_tree_names().len(), 2, "{:?}", disk.history_tree_names());
        memory.flush_now();
        memory.crash();
        let follower = StateMachineStore::open(&disk).unwrap();
        assert_eq!(follower.state().read(|s| s.digest()), before);
        assert_eq!(disk.history_tree_names(), vec!["history".to_string()]);

        // A part that is not the one expected next is refused, and changes nothing.
        let meta = leader.current_snapshot_meta().unwrap();
        let stray = Part { vote: openraft::Vote::new_committed(1, 1), meta, seq: 4, entries: Vec::new(), state: None };
        let refused = follower.receive(stray).await.map(|_| ()).unwrap_err();
        assert!(refused.contains("not the part expected next"), "{refused}");

        // Whole, in many parts: the follower holds what the leader holds, durably.
        let (sent, received) = send_in_parts(&leader, &follower, 2_000, None).await;
        assert!(sent > 10, "only {sent} parts");
        let (meta, data) = received.expect("the last part");
        let mut installing = follower.clone();
        installing.install_snapshot(&meta, Box::new(data)).await.unwrap();
        let digest = leader.state().read(|s| s.digest());
        assert_eq!(follower.state().read(|s| s.digest()), digest);
        assert_eq!(disk.history_tree_names().len(), 1, "the replaced tree is dropped");
        memory.crash();
        let reopened = StateMachineStore::open(&disk).unwrap();
        assert_eq!(reopened.state().read(|s| s.digest()), digest);
        assert_eq!(reopened.state().read(|s| s.kept().finished_executions), 200);
    }

    #[tokio::test(start_paused = true)]
    async fn a_checkpoint_waits_for_a_snapshot_being_sent_and_replaces_it_after() {
        let mut leader = StateMachineStore::open(&Disk::Memory(MemoryDisk::default())).unwrap();
        leader.apply(finished_history(20)).await.unwrap();
        leader.build_snapshot().await.unwrap();
        let meta = leader.current_snapshot_meta().unwrap();
        let reader = leader.reader(&meta).await.unwrap();
        leader.apply(finished_history(30).into_iter().skip(41).collect::<Vec<_>>()).await.unwrap();
        let waited = tokio::time::timeout(std::time::Duration::from_secs(5), leader.build_snapshot()).await;
        assert!(waited.is_err(), "a checkpoint changed the base while it was being read");
        drop(reader);
        leader.build_snapshot().await.unwrap();
        let stale = leader.reader(&meta).await.map(|_| ()).unwrap_err();
        assert!(stale.contains("was replaced"), "{stale}");
    }

    #[tokio::test]
    async fn a_checkpoint_cut_short_is_redone_when_the_node_opens() {
        let memory = MemoryDisk::default();
        let disk = Disk::Memory(memory.clone());
        let mut sm = StateMachineStore::open(&disk).unwrap();
        sm.apply(finished_history(40)).await.unwrap();
        sm.build_snapshot().await.unwrap();
        let digest = sm.state().read(|s| s.digest());
        sm.undo_last_checkpoint_writes().unwrap();
        memory.flush_now();
        memory.crash();
        let reopened = StateMachineStore::open(&disk).unwrap();
        assert_eq!(reopened.state().read(|s| s.digest()), digest);
        assert_eq!(reopened.state().read(|s| s.kept().finished_executions), 40);
    }
}
