//! Backups and the two ways a cluster is rebuilt from one node's data: restoring a backup into a
//! new cluster, and forcing a survivor of a lost quorum to carry on alone.
//!
//! A backup is the state at one committed log index, exactly what a lagging follower is sent
//! (the state in memory plus every entry of the history base), with which node took it and when,
//! in [`linkloom_core::archive`]'s envelope (a magic string, a version and a SHA-256 checksum).
//!
//! Restoring and forcing a new cluster both end the same way: the data directory holds that
//! state as its snapshot, with a membership the operator chose, an empty log purged up to the
//! snapshot's index, and a vote for itself in the snapshot's term. The nodes then start as usual
//! and elect a leader in the next term. Log indexes carry on from the snapshot's, so everything
//! in the state that records an index stays meaningful.
//!
//! Each rebuilt cluster gets a new identity ([`cluster_identity`]): its nodes refuse Raft
//! messages from members of the cluster it was rebuilt from, which may still be running at the
//! same addresses.

use std::collections::{BTreeMap, BTreeSet};

use linkloom_core::archive::{self, ArchiveError};
use linkloom_core::codec;
use openraft::storage::{RaftLogReader, RaftLogStorage, RaftStateMachine};
use openraft::{BasicNode, RaftSnapshotBuilder};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::storage::{Disk, LogStore, SnapshotData, StateMachineStore};
use crate::types::{LogId, Membership, SnapshotMeta};

/// Why a backup could not be made, read or restored. Each names what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("the backup's contents cannot be read: {0}")]
    Contents(String),
    #[error("the backup holds no committed state")]
    Empty,
    #[error("the data directory already holds Raft state (last log index {0}); restore into an empty one")]
    NotEmpty(u64),
    #[error("the membership must list this node (id {0})")]
    NotAMember(u64),
    #[error("storage: {0}")]
    Storage(String),
}

fn storage(e: impl std::fmt::Display) -> BackupError {
    BackupError::Storage(e.to_string())
}

/// What an archive holds besides the state.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Contents {
    meta: SnapshotMeta,
    /// Which node wrote it, and when (ms since the epoch, from the node's clock).
    taken_by: u64,
    taken_at_ms: i64,
    /// The state as a follower is sent it (the storage's `Transfer` encoding).
    data: Vec<u8>,
}

/// A backup read back and checked.
pub struct Backup {
    contents: Contents,
    /// Hex SHA-256 of the archive's contents (what its header records).
    pub sha256: String,
}

/// What a backup or a restore reports.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BackupSummary {
    /// The last log entry the state includes, and its term.
    pub last_index: u64,
    pub term: u64,
    /// The members when it was taken (or, after a restore, the new ones).
    pub members: BTreeMap<u64, String>,
    pub taken_by: u64,
    pub taken_at_ms: i64,
    pub sha256: String,
    /// Size of the state inside, in bytes.
    pub state_bytes: u64,
}

impl Backup {
    /// Checks and decodes an archive.
    pub fn decode(bytes: &[u8]) -> Result<Backup, BackupError> {
        let (body, sha256) = archive::open(bytes)?;
        let contents: Contents = codec::decode(body).map_err(|e| BackupError::Contents(e.to_string()))?;
        if contents.meta.last_log_id.is_none() {
            return Err(BackupError::Empty);
        }
        Ok(Backup { contents, sha256 })
    }

    /// Writes an archive of a snapshot.
    pub(crate) fn encode(
        meta: SnapshotMeta,
        data: Vec<u8>,
        taken_by: u64,
        taken_at_ms: i64,
    ) -> Result<(Vec<u8>, BackupSummary), BackupError> {
        let contents = Contents { meta, taken_by, taken_at_ms, data };
        let body = codec::encode(&contents).map_err(|e| BackupError::Contents(e.to_string()))?;
        let (out, sha256) = archive::seal(&body);
        drop(body);
        let summary = Backup { contents, sha256 }.summary();
        Ok((out, summary))
    }

    pub fn summary(&self) -> BackupSummary {
        let c = &self.contents;
        let last = c.meta.last_log_id.unwrap_or_default();
        BackupSummary {
            last_index: last.index,
            term: last.leader_id.term,
            members: members_of(&c.meta.last_membership),
            taken_by: c.taken_by,
            taken_at_ms: c.taken_at_ms,
            sha256: self.sha256.clone(),
            state_bytes: c.data.len() as u64,
        }
    }
}

fn members_of(membership: &Membership) -> BTreeMap<u64, String> {
    membership.membership().nodes().map(|(id, node)| (*id, node.addr.clone())).collect()
}

/// The identity of a cluster rebuilt from `origin` (a backup's checksum, or a survivor's last
/// log id) with `members`: the same on every node given the same inputs, different from the
/// cluster it came from.
pub fn cluster_identity(origin: &str, members: &BTreeMap<u64, String>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"linkloom cluster\n");
    hasher.update(origin.as_bytes());
    for (id, addr) in members {
        hasher.update(format!("\n{id}={addr}").as_bytes());
    }
    archive::hex(&hasher.finalize())[..16].to_string()
}

/// What [`restore`] did.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    /// The backup restored, with the new members.
    pub backup: BackupSummary,
    /// The new cluster's identity.
    pub cluster_id: String,
}

/// What [`force_new_cluster`] did.
#[derive(Debug, Clone, Serialize)]
pub struct ForcedCluster {
    /// The state now ends at this log index.
    pub last_index: u64,
    /// The last commit this node knew of: entries after it were applied too, and may never
    /// have been acknowledged to a client.
    pub known_committed: Option<u64>,
    /// Entries applied from the log that the state had not applied yet.
    pub replayed: u64,
    /// The members before.
    pub previous_members: BTreeMap<u64, String>,
    pub cluster_id: String,
}

/// A backup archive of `state_machine`'s current snapshot.
pub async fn take_from(
    state_machine: &StateMachineStore,
    taken_by: u64,
    taken_at_ms: i64,
) -> Result<(Vec<u8>, BackupSummary), BackupError> {
    let (meta, data) = state_machine.export().await.map_err(storage)?.ok_or(BackupError::Empty)?;
    Backup::encode(meta, data, taken_by, taken_at_ms)
}

/// Seeds an empty data directory with a backup, as node `node_id` of a new cluster of `members`.
/// Every member is seeded the same way, from the same file, before any of them starts.
pub async fn restore(
    disk: &Disk,
    backup: Backup,
    node_id: u64,
    members: BTreeMap<u64, String>,
) -> Result<Restored, BackupError> {
    if !members.contains_key(&node_id) {
        return Err(BackupError::NotAMember(node_id));
    }
    let mut log = LogStore::open(disk).map_err(storage)?;
    let state_machine = StateMachineStore::open(disk).map_err(storage)?;
    let state = log.get_log_state().await.map_err(storage)?;
    let applied = state_machine.state().read_applied(|a| a.last_log_id);
    if let Some(last) = state.last_log_id.or(applied) {
        return Err(BackupError::NotEmpty(last.index));
    }
    let identity = cluster_identity(&backup.sha256, &members);
    let mut summary = backup.summary();
    let Contents { meta, data, .. } = backup.contents;
    let last = meta.last_log_id.ok_or(BackupError::Empty)?;
    seed(disk, log, state_machine, last, data, node_id, &members, &identity).await?;
    summary.members = members;
    Ok(Restored { backup: summary, cluster_id: identity })
}

/// Turns a survivor of a lost quorum into the only member of a new cluster: applies every entry
/// in its log (committed or not: the survivor cannot tell which of the last ones were), makes
/// that the snapshot, and sets the membership to itself alone. Other members join it afresh.
pub async fn force_new_cluster(disk: &Disk, node_id: u64, advertise: &str) -> Result<ForcedCluster, BackupError> {
    let mut log = LogStore::open(disk).map_err(storage)?;
    let mut state_machine = StateMachineStore::open(disk).map_err(storage)?;
    let known_committed = log.read_committed().await.map_err(storage)?.map(|id| id.index);
    let applied = state_machine.state().read_applied(|a| a.last_log_id);
    let log_state = log.get_log_state().await.map_err(storage)?;
    let Some(last) = log_state.last_log_id.max(applied) else {
        return Err(BackupError::Storage(
            "this data directory holds no Raft state: there is nothing to recover".into(),
        ));
    };
    let from = applied.map_or(0, |id| id.index + 1);
    let mut replayed = 0;
    let mut next = from;
    while next <= last.index {
        let until = (next + 1_000).min(last.index + 1);
        let entries = log.try_get_log_entries(next..until).await.map_err(storage)?;
        if entries.is_empty() {
            return Err(BackupError::Storage(format!("log entry {next} is missing")));
        }
        next = entries.last().map_or(until, |e| e.log_id.index + 1);
        replayed += entries.len() as u64;
        state_machine.apply(entries).await.map_err(storage)?;
    }
    let previous_members = state_machine.state().read_applied(|a| members_of(&a.membership));
    // The state as it now stands, as a snapshot, read back whole as a follower would be sent it.
    state_machine.build_snapshot().await.map_err(storage)?;
    let (meta, data) = state_machine.export().await.map_err(storage)?.ok_or(BackupError::Empty)?;
    let last = meta.last_log_id.ok_or(BackupError::Empty)?;
    let members = BTreeMap::from([(node_id, advertise.to_string())]);
    let identity = cluster_identity(&format!("forced {}-{}", last.leader_id.term, last.index), &members);
    seed(disk, log, state_machine, last, data, node_id, &members, &identity).await?;
    Ok(ForcedCluster { last_index: last.index, known_committed, replayed, previous_members, cluster_id: identity })
}

/// Installs `data` as the snapshot at `last` with `members` as the membership, empties the log
/// up to it, votes for this node in its term, and records the cluster's identity.
#[allow(clippy::too_many_arguments)]
async fn seed(
    disk: &Disk,
    mut log: LogStore,
    mut state_machine: StateMachineStore,
    last: LogId,
    data: Vec<u8>,
    node_id: u64,
    members: &BTreeMap<u64, String>,
    identity: &str,
) -> Result<(), BackupError> {
    let voters: BTreeSet<u64> = members.keys().copied().collect();
    let nodes: BTreeMap<u64, BasicNode> = members.iter().map(|(id, addr)| (*id, BasicNode::new(addr))).collect();
    let membership = Membership::new(Some(last), openraft::Membership::new(vec![voters], nodes));
    let meta = SnapshotMeta {
        last_log_id: Some(last),
        last_membership: membership,
        snapshot_id: format!("seeded-{}-{}", last.leader_id.term, last.index),
    };
    state_machine.install_snapshot(&meta, Box::new(SnapshotData::Whole(data))).await.map_err(storage)?;
    log.purge(last).await.map_err(storage)?;
    // A vote for itself in the snapshot's term: the first election runs in the next term, above
    // every log id the state holds (openraft needs a leader's entries to sort after them).
    let vote = log.read_vote().await.map_err(storage)?;
    let term = vote.map_or(0, |v| v.leader_id().term).max(last.leader_id.term);
    log.save_vote(&openraft::Vote::new(term, node_id)).await.map_err(storage)?;
    log.save_committed(Some(last)).await.map_err(storage)?;
    crate::identity::store(disk, identity).map_err(storage)?;
    disk.flush().await.map_err(storage)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use linkloom_core::{Command, State};
    use openraft::{CommittedLeaderId, Entry, EntryPayload};

    use super::*;
    use crate::storage::MemoryDisk;
    use crate::types::TypeConfig;

    fn entry(term: u64, index: u64, command: Command) -> Entry<TypeConfig> {
        Entry { log_id: LogId::new(CommittedLeaderId::new(term, 1), index), payload: EntryPayload::Normal(command) }
    }

    fn put(term: u64, index: u64, id: &str) -> Entry<TypeConfig> {
        let spec = linkloom_core::spec::parse_yaml(&format!("id: {id}\ntasks: [{{id: t, type: worker, queue: q}}]\n"))
            .expect("spec");
        entry(term, index, Command::PutWorkflow { spec, actor: None, at_ms: index as i64 })
    }

    fn members(ids: &[u64]) -> BTreeMap<u64, String> {
        ids.iter().map(|id| (*id, format!("127.0.0.1:{}", 9000 + id))).collect()
    }

    #[tokio::test]
    async fn a_restored_directory_holds_the_state_under_the_new_membership() {
        let disk = Disk::Memory(MemoryDisk::default());
        let mut source = StateMachineStore::open(&disk).expect("open");
        source.apply((1..=20).map(|i| put(3, i, &format!("wf{i}"))).collect::<Vec<_>>()).await.expect("apply");
        source.build_snapshot().await.expect("snapshot");
        let (meta, data) = source.export().await.expect("export").expect("a snapshot");
        let (file, summary) = Backup::encode(meta, data, 1, 42).expect("encode");
        assert_eq!((summary.last_index, summary.term, summary.taken_at_ms), (20, 3, 42));

        let target = Disk::Memory(MemoryDisk::default());
        let backup = Backup::decode(&file).expect("decode");
        let restored = restore(&target, backup, 2, members(&[1, 2, 3])).await.expect("restore");
        assert_eq!(restored.backup.members, members(&[1, 2, 3]));
        assert_ne!(restored.cluster_id, crate::identity::founded(&members(&[1, 2, 3])));
        assert_eq!(crate::identity::load(&target).expect("load").as_deref(), Some(restored.cluster_id.as_str()));

        let reopened = StateMachineStore::open(&target).expect("reopen");
        let digest = |s: &State| s.digest();
        assert_eq!(reopened.state().read(digest), source.state().read(digest));
        let (applied, membership) = reopened.state().read_applied(|a| (a.last_log_id, members_of(&a.membership)));
        assert_eq!(applied.map(|id| id.index), Some(20));
        assert_eq!(membership, members(&[1, 2, 3]));
        let mut log = LogStore::open(&target).expect("log");
        let state = log.get_log_state().await.expect("log state");
        assert_eq!(state.last_purged_log_id.map(|id| id.index), Some(20));
        let vote = log.read_vote().await.expect("vote").expect("a vote");
        assert_eq!((vote.leader_id().term, vote.is_committed()), (3, false));

        // Never over existing state.
        let again = restore(&target, Backup::decode(&file).expect("decode"), 2, members(&[1, 2, 3])).await;
        assert!(matches!(again, Err(BackupError::NotEmpty(20))), "{again:?}");
        let outsider =
            restore(&Disk::Memory(MemoryDisk::default()), Backup::decode(&file).expect("decode"), 4, members(&[1]))
                .await;
        assert!(matches!(outsider, Err(BackupError::NotAMember(4))), "{outsider:?}");
    }

    #[tokio::test]
    async fn a_forced_survivor_keeps_its_whole_log_and_leads_alone() {
        let disk = Disk::Memory(MemoryDisk::default());
        let mut log = LogStore::open(&disk).expect("log");
        let mut state_machine = StateMachineStore::open(&disk).expect("state machine");
        let entries: Vec<_> = (1..=12).map(|i| put(2, i, &format!("wf{i}"))).collect();
        // A snapshot at 8; 9..=12 are in the log only (committed or not: the survivor cannot tell).
        state_machine.apply(entries[..8].to_vec()).await.expect("apply");
        state_machine.build_snapshot().await.expect("snapshot");
        // Written as the log store writes them (its `append` needs openraft's flush callback).
        for e in &entries {
            let key = e.log_id.index.to_be_bytes().to_vec();
            disk.open_tree("log").expect("tree").insert(&key, codec::encode(e).expect("encode")).expect("insert");
        }
        log.save_committed(Some(entries[7].log_id)).await.expect("committed");
        drop((log, state_machine));

        let forced = force_new_cluster(&disk, 2, "10.0.0.2:8080").await.expect("forced");
        assert_eq!((forced.last_index, forced.replayed, forced.known_committed), (12, 4, Some(8)));
        let reopened = StateMachineStore::open(&disk).expect("reopen");
        assert!(reopened.state().read(|s| s.workflow("wf12").is_some()));
        let membership = reopened.state().read_applied(|a| members_of(&a.membership));
        assert_eq!(membership, BTreeMap::from([(2, "10.0.0.2:8080".to_string())]));
    }
}
