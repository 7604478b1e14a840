//! The byte store under the Raft log and the snapshots: sled on a real node, or an in-memory disk
//! for the deterministic simulation.
//!
//! The log store and the state machine store use only what is here (named trees of ordered keys,
//! batches, flush), so the simulation runs the same storage code as production over a disk whose
//! behaviour it controls. [`MemoryDisk`] models durability the way a crash sees it: writes are
//! visible at once but survive [`MemoryDisk::crash`] only once a flush has covered them, which
//! is exactly the promise an fsync gives.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// sled's page cache, per database. Its default (1 GiB) would let a node's memory grow with
/// the history on its disk; history reads are few and mostly of recent pages.
const CACHE_BYTES: u64 = 32 * 1024 * 1024;

/// A failed disk operation.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DiskError(String);

impl DiskError {
    pub fn new(reason: impl Into<String>) -> DiskError {
        DiskError(reason.into())
    }
}

impl From<sled::Error> for DiskError {
    fn from(e: sled::Error) -> Self {
        DiskError(format!("sled: {e}"))
    }
}

/// One node's storage.
#[derive(Clone)]
pub enum Disk {
    /// sled, and the directory it lives in (where [`Blob`]s get files of their own).
    Sled(SledDisk),
    Memory(MemoryDisk),
}

/// A node's sled databases: one for the Raft log and its hard state, one for the history base
/// (see [`Disk::open_history_tree`]), each with its own write-ahead log, so a checkpoint's
/// batch of tens of thousands of history writes never sits in front of the log's fsyncs.
#[derive(Clone)]
pub struct SledDisk {
    log: sled::Db,
    history: sled::Db,
    dir: PathBuf,
}

/// One durable value written whole: a snapshot. On a real disk it is a file of its own beside
/// sled, written to a temporary file, fsynced and renamed over the old one, so writing tens of
/// MiB does not queue the Raft log's fsyncs behind it in sled's single write-ahead log. On the
/// simulation's disk it is a tree entry, durable once the disk is flushed (as a crash sees it).
#[derive(Clone)]
pub enum Blob {
    File(PathBuf),
    Tree(Tree, Vec<u8>),
}

impl Blob {
    pub fn read(&self) -> Result<Option<Vec<u8>>, DiskError> {
        match self {
            Blob::File(path) => match std::fs::read(path) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(DiskError(format!("reading {}: {e}", path.display()))),
            },
            Blob::Tree(tree, key) => tree.get(key),
        }
    }

    /// Replaces the value. A file is durable when this returns; a tree entry once the disk is
    /// flushed ([`Blob::needs_flush`]).
    pub fn write(&self, bytes: &[u8]) -> Result<(), DiskError> {
        match self {
            Blob::File(path) => {
                let failed = |what: &str, e: std::io::Error| DiskError(format!("{what} {}: {e}", path.display()));
                let temporary = path.with_extension("tmp");
                // Owner-only: the state holds token hashes and task parameters, and a data directory
                // may be traversable by the user shell tasks run as.
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&temporary)
                    .map_err(|e| failed("creating", e))?;
                std::io::Write::write_all(&mut file, bytes).map_err(|e| failed("writing", e))?;
                file.sync_all().map_err(|e| failed("syncing", e))?;
                std::fs::rename(&temporary, path).map_err(|e| failed("renaming over", e))?;
                if let Some(dir) = path.parent() {
                    std::fs::File::open(dir)
                        .and_then(|d| d.sync_all())
                        .map_err(|e| failed("syncing the directory of", e))?;
                }
                Ok(())
            }
            Blob::Tree(tree, key) => tree.insert(key, bytes.to_vec()),
        }
    }

    /// Removes the value, if there is one.
    pub fn remove(&self) -> Result<(), DiskError> {
        match self {
            Blob::File(path) => match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(DiskError(format!("removing {}: {e}", path.display())))
                }
                _ => Ok(()),
            },
            Blob::Tree(tree, key) => tree.apply_batch(vec![(key.clone(), None)]),
        }
    }

    pub fn needs_flush(&self) -> bool {
        matches!(self, Blob::Tree(..))
    }
}

impl Disk {
    /// Opens (or creates) the node's sled database under `dir`.
    pub fn open_sled(dir: &Path) -> Result<Disk, DiskError> {
        let open = |name: &str| {
            sled::Config::new().path(dir.join(name)).mode(sled::Mode::HighThroughput).cache_capacity(CACHE_BYTES).open()
        };
        Ok(Disk::Sled(SledDisk { log: open("sled")?, history: open("history")?, dir: dir.to_path_buf() }))
    }

    /// The durable value called `name` (see [`Blob`]).
    pub fn blob(&self, name: &str) -> Result<Blob, DiskError> {
        Ok(match self {
            Disk::Sled(sled) => Blob::File(sled.dir.join(format!("{name}.bin"))),
            Disk::Memory(_) => Blob::Tree(self.open_tree("blobs")?, name.as_bytes().to_vec()),
        })
    }

    pub fn open_tree(&self, name: &str) -> Result<Tree, DiskError> {
        Ok(match self {
            Disk::Sled(sled) => Tree::Sled(sled.log.open_tree(name)?),
            Disk::Memory(disk) => Tree::Memory { disk: disk.clone(), name: name.to_string() },
        })
    }

    /// A tree of the history database (on a memory disk, a tree like the others).
    pub fn open_history_tree(&self, name: &str) -> Result<Tree, DiskError> {
        Ok(match self {
            Disk::Sled(sled) => Tree::Sled(sled.history.open_tree(name)?),
            Disk::Memory(disk) => Tree::Memory { disk: disk.clone(), name: format!("history/{name}") },
        })
    }

    /// The names of the history database's trees.
    pub fn history_tree_names(&self) -> Vec<String> {
        match self {
            Disk::Sled(sled) => sled
                .history
                .tree_names()
                .into_iter()
                .filter_map(|name| String::from_utf8(name.to_vec()).ok())
                .filter(|name| name != "__sled__default")
                .collect(),
            Disk::Memory(disk) => disk.with(|m| {
                m.view
                    .iter()
                    .filter(|(_, tree)| !tree.is_empty())
                    .filter_map(|(name, _)| name.strip_prefix("history/").map(str::to_string))
                    .collect()
            }),
        }
    }

    /// Drops a tree of the history database and everything in it (on a memory disk: empties it,
    /// a write like any other).
    pub fn drop_history_tree(&self, name: &str) -> Result<(), DiskError> {
        match self {
            Disk::Sled(sled) => sled.history.drop_tree(name).map(|_| ()).map_err(DiskError::from),
            Disk::Memory(_) => self.open_history_tree(name)?.clear(),
        }
    }

    /// Makes every write to the history database so far durable.
    pub async fn flush_history(&self) -> Result<(), DiskError> {
        match self {
            Disk::Sled(sled) => sled.history.flush_async().await.map(|_| ()).map_err(DiskError::from),
            Disk::Memory(_) => self.flush().await,
        }
    }

    /// Makes every write so far durable.
    pub async fn flush(&self) -> Result<(), DiskError> {
        match self {
            Disk::Sled(sled) => sled.log.flush_async().await.map(|_| ()).map_err(DiskError::from),
            Disk::Memory(disk) => {
                let delay = disk.with(|m| m.flush_delay);
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                disk.flush();
                Ok(())
            }
        }
    }
}

/// A named tree of ordered keys.
#[derive(Clone)]
pub enum Tree {
    Sled(sled::Tree),
    Memory { disk: MemoryDisk, name: String },
}

/// A write in a batch: `None` removes the key.
pub type Write = (Vec<u8>, Option<Vec<u8>>);

/// A key and its value.
pub type Item = (Vec<u8>, Vec<u8>);

impl Tree {
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, DiskError> {
        match self {
            Tree::Sled(tree) => Ok(tree.get(key)?.map(|v| v.to_vec())),
            Tree::Memory { disk, name } => Ok(disk.with(|m| m.view.get(name).and_then(|t| t.get(key)).cloned())),
        }
    }

    pub fn insert(&self, key: &[u8], value: Vec<u8>) -> Result<(), DiskError> {
        self.apply_batch(vec![(key.to_vec(), Some(value))])
    }

    /// Applies the writes atomically.
    pub fn apply_batch(&self, writes: Vec<Write>) -> Result<(), DiskError> {
        match self {
            Tree::Sled(tree) => {
                let mut batch = sled::Batch::default();
                for (key, value) in writes {
                    match value {
                        Some(value) => batch.insert(key, value),
                        None => batch.remove(key),
                    }
                }
                Ok(tree.apply_batch(batch)?)
            }
            Tree::Memory { disk, name } => {
                disk.with(|m| {
                    let tree = m.view.entry(name.clone()).or_default();
                    for (key, value) in &writes {
                        match value {
                            Some(value) => tree.insert(key.clone(), value.clone()),
                            None => tree.remove(key),
                        };
                    }
                    m.pending.push((name.clone(), writes));
                });
                Ok(())
            }
        }
    }

    /// Entries with keys in the range, in key order.
    pub fn range(&self, from: Bound<&[u8]>, to: Bound<&[u8]>) -> Result<Vec<Item>, DiskError> {
        match self {
            Tree::Sled(tree) => {
                let range = (from.map(|k| k.to_vec()), to.map(|k| k.to_vec()));
                tree.range::<Vec<u8>, _>(range)
                    .map(|item| item.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(DiskError::from))
                    .collect()
            }
            Tree::Memory { disk, name } => Ok(disk.with(|m| {
                let range = (from.map(|k| k.to_vec()), to.map(|k| k.to_vec()));
                m.view
                    .get(name)
                    .map(|t| t.range::<Vec<u8>, _>(range).map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default()
            })),
        }
    }

    /// Up to `limit` entries with keys in the range, in key order (descending if `rev`): a
    /// page of a range too large to read whole.
    pub fn scan(&self, from: Bound<&[u8]>, to: Bound<&[u8]>, rev: bool, limit: usize) -> Result<Vec<Item>, DiskError> {
        let range = (from.map(|k| k.to_vec()), to.map(|k| k.to_vec()));
        match self {
            Tree::Sled(tree) => {
                let items = tree.range::<Vec<u8>, _>(range);
                let items: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> =
                    if rev { Box::new(items.rev()) } else { Box::new(items) };
                items
                    .take(limit)
                    .map(|item| item.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(DiskError::from))
                    .collect()
            }
            Tree::Memory { disk, name } => Ok(disk.with(|m| {
                let Some(tree) = m.view.get(name) else { return Vec::new() };
                let items = tree.range::<Vec<u8>, _>(range).map(|(k, v)| (k.clone(), v.clone()));
                if rev {
                    items.rev().take(limit).collect()
                } else {
                    items.take(limit).collect()
                }
            })),
        }
    }

    /// Removes every entry (durable once the disk is flushed).
    pub fn clear(&self) -> Result<(), DiskError> {
        match self {
            Tree::Sled(tree) => Ok(tree.clear()?),
            Tree::Memory { .. } => {
                let keys = self.range(Bound::Unbounded, Bound::Unbounded)?;
                self.apply_batch(keys.into_iter().map(|(k, _)| (k, None)).collect())
            }
        }
    }

    /// The entry with the largest key.
    pub fn last(&self) -> Result<Option<Item>, DiskError> {
        match self {
            Tree::Sled(tree) => Ok(tree.last()?.map(|(k, v)| (k.to_vec(), v.to_vec()))),
            Tree::Memory { disk, name } => {
                Ok(disk
                    .with(|m| m.view.get(name).and_then(|t| t.last_key_value()).map(|(k, v)| (k.clone(), v.clone()))))
            }
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Tree::Sled(tree) => tree.len(),
            Tree::Memory { disk, name } => disk.with(|m| m.view.get(name).map_or(0, BTreeMap::len)),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A disk in memory that outlives the node using it (the simulation holds it outside the
/// simulated host), keeping across [`MemoryDisk::crash`] only what a flush covered.
#[derive(Clone, Default)]
pub struct MemoryDisk(Arc<Mutex<MemoryState>>);

type Trees = BTreeMap<String, BTreeMap<Vec<u8>, Vec<u8>>>;

#[derive(Default)]
struct MemoryState {
    /// What a flush made durable.
    durable: Trees,
    /// What reads see: durable plus the writes since the last flush.
    view: Trees,
    /// Writes since the last flush, in order.
    pending: Vec<(String, Vec<Write>)>,
    /// Fault injection: flushes report success but make nothing durable.
    flush_lies: bool,
    /// Fault injection: every flush takes this long (a slow disk).
    flush_delay: std::time::Duration,
}

impl MemoryDisk {
    fn with<R>(&self, f: impl FnOnce(&mut MemoryState) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn flush(&self) {
        self.with(|m| {
            if m.flush_lies {
                return;
            }
            for (name, writes) in std::mem::take(&mut m.pending) {
                let tree = m.durable.entry(name).or_default();
                for (key, value) in writes {
                    match value {
                        Some(value) => tree.insert(key, value),
                        None => tree.remove(&key),
                    };
                }
            }
        });
    }

    /// Makes every write so far durable, now (tests).
    pub fn flush_now(&self) {
        self.flush();
    }

    /// A power cut: every write no flush covered is gone.
    pub fn crash(&self) {
        self.with(|m| {
            m.pending.clear();
            m.view = m.durable.clone();
        });
    }

    /// Fault injection for checker tests: flushes succeed without making anything durable.
    pub fn set_flush_lies(&self, lies: bool) {
        self.with(|m| m.flush_lies = lies);
    }

    /// Fault injection: every flush takes `delay` (of the simulation's time) from now on.
    pub fn set_flush_delay(&self, delay: std::time::Duration) {
        self.with(|m| m.flush_delay = delay);
    }

    /// Bytes held durably (for reports).
    pub fn durable_bytes(&self) -> usize {
        self.with(|m| m.durable.values().flat_map(|t| t.iter()).map(|(k, v)| k.len() + v.len()).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_flushed_writes_survive_a_crash() {
        let memory = MemoryDisk::default();
        let disk = Disk::Memory(memory.clone());
        let tree = disk.open_tree("log").unwrap();
        tree.insert(b"a", b"1".to_vec()).unwrap();
        disk.flush().await.unwrap();
        tree.apply_batch(vec![(b"b".to_vec(), Some(b"2".to_vec())), (b"a".to_vec(), None)]).unwrap();
        assert_eq!(tree.get(b"a").unwrap(), None);
        assert_eq!(tree.len(), 1);
        memory.crash();
        assert_eq!(tree.get(b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(tree.get(b"b").unwrap(), None);
        memory.set_flush_lies(true);
        tree.insert(b"c", b"3".to_vec()).unwrap();
        disk.flush().await.unwrap();
        memory.crash();
        assert_eq!(tree.get(b"c").unwrap(), None, "a lying flush keeps nothing");
    }

    #[test]
    fn a_blob_file_is_replaced_whole_and_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let disk = Disk::open_sled(dir.path()).unwrap();
        let blob = disk.blob("snapshot").unwrap();
        assert_eq!(blob.read().unwrap(), None);
        blob.write(b"first").unwrap();
        blob.write(b"second").unwrap();
        assert_eq!(blob.read().unwrap().as_deref(), Some(&b"second"[..]));
        let mode = std::fs::metadata(dir.path().join("snapshot.bin")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!dir.path().join("snapshot.tmp").exists());
    }

    #[test]
    fn ranges_and_last_agree_between_sled_and_memory() {
        let dir = tempfile::tempdir().unwrap();
        let disks = [Disk::open_sled(dir.path()).unwrap(), Disk::Memory(MemoryDisk::default())];
        let results: Vec<_> = disks
            .iter()
            .map(|disk| {
                let tree = disk.open_tree("t").unwrap();
                for i in 0u8..10 {
                    tree.insert(&[i], vec![i]).unwrap();
                }
                tree.apply_batch(vec![(vec![3], None)]).unwrap();
                let from = tree.range(Bound::Included(&[2][..]), Bound::Unbounded).unwrap();
                let to = tree.range(Bound::Unbounded, Bound::Included(&[4][..])).unwrap();
                (from, to, tree.last().unwrap(), tree.len())
            })
            .collect();
        assert_eq!(results[0], results[1]);
        assert_eq!(results[0].3, 9);
    }
}
