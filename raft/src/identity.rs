//! What a node checks before it trusts bytes it did not write: the data format of its own
//! directory, and the wire version and cluster of each peer's message.
//!
//! - **Data format.** The `meta` tree records the data format the directory was written in
//!   ([`DATA_VERSION`]) and which release wrote it last. A build refuses a directory written in
//!   a newer format (it would misread it) with a message naming both; an older format would be
//!   migrated here on open (there is none yet: format 1 is the first release's).
//! - **Wire version.** Every node-to-node request is an [`Envelope`](crate::rpc::Envelope) that
//!   starts with the sender's wire version. A node answers versions from [`MIN_WIRE_VERSION`] to
//!   [`WIRE_VERSION`] and refuses others with both ranges in the message, so a rolling upgrade
//!   across an incompatible change stops loudly at the first node instead of corrupting a log.
//! - **Cluster identity.** A cluster's identity is derived from how it was made: from its
//!   founding members, or (restored or forced, see [`crate::backup`]) from what it was rebuilt
//!   from. A node refuses messages from another cluster: after a restore, old members still
//!   running at reused addresses cannot vote in or append to the new one. A node that joins
//!   takes the identity of the first leader that reaches it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};

use crate::storage::{Disk, DiskError};

/// The data directory's layout and encodings. Raise it with every change a previous release
/// cannot read, and teach [`check_data_format`] to migrate from the one before.
pub const DATA_VERSION: u32 = 1;

/// The node-to-node protocol this build speaks.
pub const WIRE_VERSION: u16 = 1;
/// The oldest peer protocol this build still answers (during a rolling upgrade, the previous
/// release's).
pub const MIN_WIRE_VERSION: u16 = 1;

/// This build's release.
pub const RELEASE: &str = env!("CARGO_PKG_VERSION");

const KEY_FORMAT: &[u8] = b"format";
const KEY_CLUSTER: &[u8] = b"cluster_id";

/// What the `meta` tree records about the data directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFormat {
    pub version: u32,
    /// The release that last opened the directory.
    pub release: String,
}

/// Why a node refuses its data directory or a peer.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("this data directory is in data format {found} (last written by Link Loom {release}); this build ({RELEASE}) reads formats up to {DATA_VERSION}: run the newer release, or restore a backup into an empty directory")]
    NewerData { found: u32, release: String },
    #[error("the data directory's format record is unreadable: {0}")]
    Unreadable(String),
    #[error("disk: {0}")]
    Disk(#[from] DiskError),
}

/// Checks the directory's format and records this release as the last to open it. A directory
/// without a record is either new or from before records existed (the first release's format).
pub fn check_data_format(disk: &Disk) -> Result<DataFormat, FormatError> {
    let meta = disk.open_tree("meta")?;
    let found = match meta.get(KEY_FORMAT)? {
        Some(bytes) => Some(decode_format(&bytes)?),
        None => None,
    };
    if let Some(found) = &found {
        if found.version > DATA_VERSION {
            return Err(FormatError::NewerData { found: found.version, release: found.release.clone() });
        }
    }
    let now = DataFormat { version: DATA_VERSION, release: RELEASE.to_string() };
    if found.as_ref() != Some(&now) {
        meta.insert(KEY_FORMAT, encode_format(&now))?;
    }
    Ok(found.unwrap_or(now))
}

/// The format record is plain JSON, not the codec: a release that cannot decode the codec's
/// newer version must still be able to read why.
fn encode_format(format: &DataFormat) -> Vec<u8> {
    serde_json::to_vec(format).unwrap_or_default()
}

fn decode_format(bytes: &[u8]) -> Result<DataFormat, FormatError> {
    serde_json::from_slice(bytes).map_err(|e| FormatError::Unreadable(e.to_string()))
}

/// The cluster identity recorded in the directory, if any.
pub fn load(disk: &Disk) -> Result<Option<String>, DiskError> {
    let meta = disk.open_tree("meta")?;
    Ok(meta.get(KEY_CLUSTER)?.map(|b| String::from_utf8_lossy(&b).into_owned()))
}

/// Records the cluster identity (durable with the next flush).
pub fn store(disk: &Disk, identity: &str) -> Result<(), DiskError> {
    disk.open_tree("meta")?.insert(KEY_CLUSTER, identity.as_bytes().to_vec())
}

/// The identity of a cluster founded with `members`: every founder derives the same.
pub fn founded(members: &BTreeMap<u64, String>) -> String {
    crate::backup::cluster_identity("founded", members)
}

/// This node's cluster identity, shared by everything that sends or checks messages.
#[derive(Clone)]
pub(crate) struct Identity {
    current: Arc<RwLock<Option<String>>>,
    disk: Disk,
    /// The last refused cluster and when it was logged.
    warned: Arc<Mutex<Option<(String, tokio::time::Instant)>>>,
}

/// How often a refused cluster is logged at most.
const WARN_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

impl Identity {
    pub(crate) fn new(disk: Disk, current: Option<String>) -> Self {
        Identity { current: Arc::new(RwLock::new(current)), disk, warned: Arc::default() }
    }

    pub(crate) fn get(&self) -> Option<String> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Checks a message's cluster; a node without an identity takes the first one offered.
    pub(crate) fn check(&self, theirs: Option<&str>) -> Result<(), String> {
        let Some(theirs) = theirs else { return Ok(()) };
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        match current.as_deref() {
            Some(ours) if ours == theirs => Ok(()),
            Some(ours) => {
                let why = format!(
                    "a message from cluster {theirs}, but this node belongs to cluster {ours}: is a member of another \
                     (or a restored or re-formed) cluster running at an address this cluster uses?"
                );
                // Once per cluster and ten seconds: a stray member sends several messages a second.
                let now = tokio::time::Instant::now();
                let mut warned = self.warned.lock().unwrap_or_else(|p| p.into_inner());
                if warned.as_ref().is_none_or(|(who, at)| who != theirs || now.duration_since(*at) >= WARN_EVERY) {
                    tracing::warn!(ours, theirs, "refused a message from another cluster: {why}");
                    *warned = Some((theirs.to_string(), now));
                }
                Err(why)
            }
            None => {
                store(&self.disk, theirs).map_err(|e| format!("recording the cluster identity: {e}"))?;
                tracing::info!(cluster = theirs, "joined cluster");
                *current = Some(theirs.to_string());
                Ok(())
            }
        }
    }
}

/// Checks a peer's wire version.
pub(crate) fn check_wire(theirs: u16) -> Result<(), String> {
    if (MIN_WIRE_VERSION..=WIRE_VERSION).contains(&theirs) {
        Ok(())
    } else {
        Err(format!(
            "a peer speaks node-to-node protocol {theirs}; this node (Link Loom {RELEASE}) speaks {MIN_WIRE_VERSION} to \
             {WIRE_VERSION}: upgrade one release at a time (docs/operations.md, rolling upgrade)"
        ))
    }
}

/// Encodes a format record (tests of other modules write old or future ones).
#[cfg(test)]
pub(crate) fn write_format(disk: &Disk, format: &DataFormat) -> Result<(), DiskError> {
    disk.open_tree("meta")?.insert(KEY_FORMAT, encode_format(format))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryDisk;

    #[test]
    fn a_new_directory_is_stamped_and_a_newer_one_refused() {
        let disk = Disk::Memory(MemoryDisk::default());
        let format = check_data_format(&disk).unwrap();
        assert_eq!(format.version, DATA_VERSION);
        write_format(&disk, &DataFormat { version: DATA_VERSION + 1, release: "9.9.9".into() }).unwrap();
        let e = check_data_format(&disk).unwrap_err().to_string();
        assert!(e.contains("9.9.9") && e.contains(&format!("format {}", DATA_VERSION + 1)), "{e}");
    }

    #[test]
    fn a_node_takes_the_first_identity_offered_and_refuses_others() {
        let disk = Disk::Memory(MemoryDisk::default());
        let identity = Identity::new(disk.clone(), None);
        identity.check(None).unwrap();
        identity.check(Some("aaaa")).unwrap();
        assert_eq!(load(&disk).unwrap().as_deref(), Some("aaaa"));
        identity.check(Some("aaaa")).unwrap();
        let e = identity.check(Some("bbbb")).unwrap_err();
        assert!(e.contains("bbbb") && e.contains("aaaa"), "{e}");
    }

    #[test]
    fn wire_versions_outside_the_range_are_refused_with_both() {
        check_wire(WIRE_VERSION).unwrap();
        let e = check_wire(WIRE_VERSION + 1).unwrap_err();
        assert!(e.contains(&format!("protocol {}", WIRE_VERSION + 1)), "{e}");
    }
}
