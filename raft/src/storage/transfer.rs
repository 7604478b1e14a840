//! Snapshots between nodes, a part at a time.
//!
//! A snapshot is the history base, a tree holding every kept finished execution (millions of
//! them, gigabytes), plus the state in memory at the checkpoint (megabytes). Nothing holds the
//! base whole in memory on its way to a follower:
//!
//! - openraft carries a [`SnapshotData`] handle, not bytes. It asks for the current snapshot at
//!   every start (for its metadata) and before each send: that reads one pointer.
//! - The leader sends the base in [`Part`]s of about [`PART_BYTES`], read a page at a time from
//!   its tree under the snapshot read lock, so no checkpoint changes the tree halfway through.
//! - The follower writes each part into a tree of its own as it arrives. The last part carries
//!   the state; installing it switches the node to that tree in one write. A crash or a lost
//!   leader halfway leaves the follower's current snapshot whole; the half-filled tree is dropped
//!   when the node next opens or starts another transfer.
//!
//! A part out of order (an answer lost, another leader's transfer in between) is refused, and
//! openraft sends the snapshot again from its first part. A peer of the previous release, which
//! knows only the whole transfer, is sent the snapshot whole, as that release sends it.

use std::fmt;
use std::ops::Bound;

use openraft::raft::SnapshotResponse;
use openraft::Vote;
use serde::{Deserialize, Serialize};
use tokio::sync::OwnedRwLockReadGuard;

use super::disk::{Disk, Item, Tree};
use super::state_machine::{off_the_runtime, StateMachineStore, KEY_POINTER};
use crate::types::SnapshotMeta;
use linkloom_core::codec;

/// About how many bytes of the base one part carries (one entry more than this at most).
pub const PART_BYTES: usize = 4 * 1024 * 1024;

/// Entries read from the tree per scan while a part is gathered.
const PAGE: usize = 256;

/// A snapshot as openraft carries it between storage and network.
pub enum SnapshotData {
    /// A node's current snapshot, read from its disk a page at a time when it is sent (or
    /// installed by another store in the same process: tests, openraft's storage suite).
    Stored(Box<StateMachineStore>),
    /// A snapshot received from the leader: its base is already in history tree `tree`, written
    /// as the parts arrived; `state` is the state in memory at it.
    Received { tree: String, state: Vec<u8> },
    /// A whole snapshot in one buffer (the [`Transfer`] encoding): a backup, or what a leader of
    /// the previous release sends.
    Whole(Vec<u8>),
}

impl fmt::Debug for SnapshotData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotData::Stored(_) => f.write_str("Stored"),
            SnapshotData::Received { tree, state } => {
                write!(f, "Received {{ tree: {tree}, state: {} bytes }}", state.len())
            }
            SnapshotData::Whole(bytes) => write!(f, "Whole({} bytes)", bytes.len()),
        }
    }
}

/// A whole snapshot in one message: the state in memory at the checkpoint, and every entry of
/// the base. Backups are stored this way, and the previous release sends snapshots so.
#[derive(Serialize, Deserialize)]
pub(crate) struct Transfer {
    pub(crate) state: Vec<u8>,
    pub(crate) base: Vec<Item>,
}

/// One part of a snapshot on its way to a follower (`/raft/snapshot-part`).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Part {
    /// The leader's vote, checked by the follower before it writes anything.
    pub(crate) vote: Vote<u64>,
    pub(crate) meta: SnapshotMeta,
    /// Counts from 0; part 0 starts a transfer (and ends any unfinished one).
    pub(crate) seq: u64,
    /// Entries of the base, in key order, after those of the parts before.
    pub(crate) entries: Vec<Item>,
    /// The state in memory at the snapshot: set on the last part only.
    pub(crate) state: Option<Vec<u8>>,
}

/// What a follower answers a part.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum PartAnswer {
    /// Written; send the next.
    Next,
    /// That was the last: the snapshot is installed (openraft's answer).
    Installed(SnapshotResponse<u64>),
}

/// Reads a snapshot out a part at a time.
pub(crate) struct Reader {
    pages: Pages,
    state: Vec<u8>,
}

enum Pages {
    /// From a node's history tree, holding the snapshot read lock throughout.
    Tree(Box<TreePages>),
    /// From a whole snapshot in memory.
    Memory(std::vec::IntoIter<Item>),
}

struct TreePages {
    tree: Tree,
    disk: Disk,
    /// The last key read.
    after: Option<Vec<u8>>,
    done: bool,
    _held: OwnedRwLockReadGuard<()>,
}

impl Reader {
    /// Reads the base in `tree` (all but the pointer, the tree's own bookkeeping), whose
    /// snapshot `held` keeps from changing, and then `state`.
    pub(crate) fn of_tree(tree: Tree, disk: Disk, state: Vec<u8>, held: OwnedRwLockReadGuard<()>) -> Reader {
        Reader { pages: Pages::Tree(Box::new(TreePages { tree, disk, after: None, done: false, _held: held })), state }
    }

    /// Reads a whole snapshot (the [`Transfer`] encoding).
    pub(crate) fn whole(bytes: &[u8]) -> Result<Reader, String> {
        let Transfer { state, base } = codec::decode(bytes).map_err(|e| format!("a whole snapshot: {e}"))?;
        Ok(Reader::in_memory(state, base))
    }

    /// Reads `state` and the base `base`, both in memory.
    pub(crate) fn in_memory(state: Vec<u8>, base: Vec<Item>) -> Reader {
        Reader { pages: Pages::Memory(base.into_iter()), state }
    }

    /// The next entries of the base, about `max_bytes` of them; none once all are read.
    pub(crate) async fn next(&mut self, max_bytes: usize) -> Result<Vec<Item>, String> {
        match &mut self.pages {
            Pages::Memory(items) => {
                let mut out = Vec::new();
                let mut bytes = 0;
                for item in items.by_ref() {
                    bytes += item.0.len() + item.1.len();
                    out.push(item);
                    if bytes >= max_bytes {
                        break;
                    }
                }
                Ok(out)
            }
            Pages::Tree(pages) => {
                let TreePages { tree, disk, after, done, .. } = &mut **pages;
                if *done {
                    return Ok(Vec::new());
                }
                let (source, from) = (tree.clone(), after.clone());
                let gathered = off_the_runtime(disk, move || gather(&source, from, max_bytes)).await?;
                *after = gathered.after.or(after.take());
                *done = gathered.exhausted;
                Ok(gathered.entries)
            }
        }
    }

    /// The state in memory at the snapshot (once; sent with the last part).
    pub(crate) fn take_state(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.state)
    }

    /// Everything left, as one [`Transfer`] encoding: a backup, or a peer of the previous
    /// release. This holds the base whole in memory.
    pub(crate) async fn into_whole(mut self) -> Result<Vec<u8>, String> {
        let mut base = Vec::new();
        loop {
            let entries = self.next(PART_BYTES).await?;
            if entries.is_empty() {
                break;
            }
            base.extend(entries);
        }
        codec::encode(&Transfer { state: self.take_state(), base }).map_err(|e| e.to_string())
    }
}

/// A part's worth of a tree's entries.
struct Gathered {
    entries: Vec<Item>,
    /// The last key read (the next part starts after it).
    after: Option<Vec<u8>>,
    /// Whether the tree has no entries after these.
    exhausted: bool,
}

/// Gathers about `max_bytes` of `tree`'s base entries after `after`.
fn gather(tree: &Tree, mut after: Option<Vec<u8>>, max_bytes: usize) -> Result<Gathered, String> {
    let mut entries = Vec::new();
    let mut bytes = 0;
    loop {
        let from = match &after {
            Some(key) => Bound::Excluded(key.as_slice()),
            None => Bound::Unbounded,
        };
        let page = tree.scan(from, Bound::Unbounded, false, PAGE).map_err(|e| e.to_string())?;
        let exhausted = page.len() < PAGE;
        for (key, value) in page {
            after = Some(key.clone());
            if key.as_slice() == KEY_POINTER {
                continue;
            }
            bytes += key.len() + value.len();
            entries.push((key, value));
            if bytes >= max_bytes {
                return Ok(Gathered { entries, after, exhausted: false });
            }
        }
        if exhausted {
            return Ok(Gathered { entries, after, exhausted: true });
        }
    }
}
