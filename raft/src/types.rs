//! The openraft type configuration: our commands and responses, u64 node ids, nodes known by
//! their HTTP address, snapshots as a handle read a part at a time, and our own async runtime.

use linkloom_core::{Command, Response};

openraft::declare_raft_types!(
    /// Link Loom's Raft types.
    pub TypeConfig:
        D = Command,
        R = Response,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = crate::storage::SnapshotData,
        AsyncRuntime = crate::runtime::LoomRuntime,
);

pub(crate) type Raft = openraft::Raft<TypeConfig>;
pub(crate) type LogId = openraft::LogId<u64>;
pub(crate) type StorageError = openraft::StorageError<u64>;
pub(crate) type Membership = openraft::StoredMembership<u64, openraft::BasicNode>;
pub(crate) type SnapshotMeta = openraft::SnapshotMeta<u64, openraft::BasicNode>;
