//! Durable storage in one [`Disk`] per node: a sled database, or an in-memory disk in the
//! simulation.
//!
//! Layout (all values are [`linkloom_core::codec`] encodings, which start with a format version):
//! - tree `log`: key = log index as 8 big-endian bytes, value = the openraft entry;
//! - tree `meta`: `vote`, `committed`, `last_purged` (openraft's hard state);
//! - tree `snapshot`: `current` = the latest snapshot's metadata and the encoded [`State`].
//!
//! The state machine lives in memory and is made durable by the log plus snapshots: on start it
//! is restored from the latest snapshot and openraft re-applies the committed entries after it.
//! Snapshots are taken every `snapshot_logs` entries and the log is purged behind them, so disk
//! stays bounded by one snapshot plus the entries since.

mod disk;
mod log_store;
mod state_machine;

use std::sync::{Arc, RwLock};

use linkloom_core::State;

pub use disk::{Blob, Disk, DiskError, MemoryDisk, Tree};
pub use log_store::{LogMetrics, LogStore};
pub use state_machine::{SnapshotMetrics, StateMachineStore};

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
    use crate::types::TypeConfig;

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
}
