//! [`ReplicatedNode`]: one member of the cluster. Any node accepts any request: writes made on a
//! follower are forwarded to the leader, and reads are linearizable by default (read index).
//!
//! While there is no leader (an election is running), requests wait up to `forward_wait_ms` and
//! retry rather than fail. A retry never applies a command twice: every batch carries its origin
//! (this node, a session drawn at start, a sequence number), and the state machine answers a
//! batch it has seen with its first answers (see `linkloom_core::state::Origin`).

mod batching;
mod forwarding;
mod membership;

use batching::{batch_loop, Proposal, MAX_QUEUED_PROPOSALS};

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use linkloom_core::metrics::{Exposition, Histogram};
use linkloom_core::{codec, Command, Response};
use openraft::error::RaftError;
use openraft::{BasicNode, ServerState};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::backup::BackupSummary;
use crate::identity::{self, Identity};
use crate::network::NetworkFactory;
use crate::rpc::{
    Envelope, EnvelopeHead, LeaderRequest, LeaderResponse, Replication, PATH_APPEND, PATH_LEADER, PATH_SNAPSHOT,
    PATH_SNAPSHOT_PART, PATH_VOTE, UNKNOWN_RAFT_PATH,
};
use crate::storage::{
    Disk, LogMetrics, LogStore, Part, PartAnswer, SnapshotData, SnapshotMetrics, StateHandle, StateMachineStore,
};
use crate::transport::Transport;
use crate::types::{Raft, TypeConfig};

/// How a node runs its part of the cluster.
#[derive(Debug, Clone)]
pub struct RaftSettings {
    pub node_id: u64,
    /// The address other nodes reach this one at (`host:port`).
    pub advertise_addr: String,
    pub data_dir: PathBuf,
    /// Members to initialize a brand-new cluster with (id → address). Every founding node gets
    /// the same map; a node with existing state ignores it.
    pub initial_members: BTreeMap<u64, String>,
    pub heartbeat_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// Take a snapshot after this many entries since the last one.
    pub snapshot_logs: u64,
    /// Entries kept in the log behind a snapshot, for followers slightly behind.
    pub logs_kept_after_snapshot: u64,
    /// Also take a snapshot once this many finished executions are held in memory, whatever the
    /// entries since the last one: each snapshot moves them to the history base on disk, so
    /// this bounds the memory they take (0: by `snapshot_logs` alone).
    pub snapshot_finished: u64,
    /// How long a request waits for a leader (during an election) before failing.
    pub forward_wait_ms: u64,
    /// Timeout of one forwarded request to the leader.
    pub forward_timeout_ms: u64,
    /// Batches carry their origin so a retried one applies once. Off only for chaos testing
    /// (`LOOM_CHAOS_NO_DEDUP`), to prove a test sees the duplicates it must.
    pub exactly_once: bool,
    /// A leader restored at start-up answers read indexes no lower than its log's end (see
    /// [`RestoredLeadership`]). Off only for chaos testing (`LOOM_CHAOS_STALE_READS`), to prove
    /// a test sees the stale reads it must.
    pub guard_restored_reads: bool,
}

impl RaftSettings {
    /// Settings suited to a cluster on one machine or a LAN.
    pub fn new(node_id: u64, advertise_addr: impl Into<String>, data_dir: impl Into<PathBuf>) -> Self {
        RaftSettings {
            node_id,
            advertise_addr: advertise_addr.into(),
            data_dir: data_dir.into(),
            initial_members: BTreeMap::new(),
            heartbeat_ms: 100,
            // A leader's SIGKILL is followed by a write accepted through a survivor after the
            // lease (the max) plus the fastest survivor's timeout: 0.87 s p50 on loopback
            // (`loom-bench failover --count 20`; 1.78 s with 500-1000).
            election_timeout_min_ms: 250,
            election_timeout_max_ms: 500,
            snapshot_logs: 10_000,
            logs_kept_after_snapshot: 1_000,
            snapshot_finished: 5_000,
            forward_wait_ms: 10_000,
            forward_timeout_ms: 5_000,
            exactly_once: true,
            guard_restored_reads: true,
        }
    }
}

/// Wakes on every change of Raft metrics (entries applied, leader changes).
pub type Changes = tokio::sync::watch::Receiver<openraft::RaftMetrics<u64, BasicNode>>;

/// Why a node could not serve a request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NodeError {
    /// No leader became known within the wait.
    #[error("no leader is available (waited {waited_ms} ms): {last_error}")]
    NoLeader { waited_ms: u64, last_error: String },
    #[error("storage: {0}")]
    Storage(String),
    #[error("raft: {0}")]
    Raft(String),
    #[error("membership change refused: {0}")]
    Membership(String),
    #[error("bad request: {0}")]
    BadRequest(String),
    /// This node's Raft core stopped (a storage error: the disk is full or failing); the node
    /// cannot take part any more and should be restarted once the cause is fixed.
    #[error("this node's Raft stopped: {0}")]
    Stopped(String),
    /// A node-to-node message from a member of another cluster.
    #[error("wrong cluster: {0}")]
    WrongCluster(String),
    /// A membership change about a node that is not a member.
    #[error("node {0} is not a member (a node joins as a learner first)")]
    NotMember(u64),
}

/// A cluster member as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Member {
    pub id: u64,
    pub addr: String,
    pub voter: bool,
}

/// This node's view of the cluster.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterInfo {
    pub node_id: u64,
    pub leader_id: Option<u64>,
    pub term: u64,
    pub state: String,
    pub last_log_index: Option<u64>,
    pub last_applied: Option<u64>,
    pub snapshot_index: Option<u64>,
    pub purged_index: Option<u64>,
    pub members: Vec<Member>,
}

/// Counts changes of the known leader until the node stops.
async fn count_leader_changes(
    mut metrics: tokio::sync::watch::Receiver<openraft::RaftMetrics<u64, BasicNode>>,
    changes: Arc<AtomicU64>,
) {
    let mut leader = metrics.borrow().current_leader;
    while metrics.changed().await.is_ok() {
        let now = metrics.borrow().current_leader;
        if now != leader {
            changes.fetch_add(1, Ordering::Relaxed);
            leader = now;
        }
    }
}

/// Asks for a snapshot whenever `threshold` finished executions are held in memory (the
/// snapshot's checkpoint moves them to the history base). Under a steady stream of short
/// executions the log-count policy alone lets tens of thousands pile up between snapshots, and
/// they, not the history on disk, were most of a node's memory (measured: ~22,000 at 100,000
/// kept, in `loom-bench history`). Asks once per snapshot: openraft ignores a trigger while it
/// builds one, so a request is repeated only after a snapshot lands or a second goes by.
async fn snapshot_when_hot(raft: Raft, state: StateHandle, threshold: u64) {
    const RETRY: Duration = Duration::from_secs(1);
    let mut metrics = raft.metrics();
    let mut asked: Option<(Option<u64>, tokio::time::Instant)> = None;
    while metrics.changed().await.is_ok() {
        let snapshot = metrics.borrow().snapshot.map(|id| id.index);
        let hot = state.read(|s| s.kept().finished_in_memory) as u64;
        if hot < threshold {
            continue;
        }
        let now = tokio::time::Instant::now();
        if asked.is_some_and(|(at, when)| at == snapshot && now.duration_since(when) < RETRY) {
            continue;
        }
        tracing::debug!(finished_in_memory = hot, threshold, "asking for a snapshot: finished executions in memory");
        if raft.trigger().snapshot().await.is_err() {
            return; // shutting down
        }
        asked = Some((snapshot, now));
    }
}

/// The node's link to the leader, shared with the batcher task: everything needed to reach the
/// leader (forwarding, read index, batches) from any node.
struct LeaderLink<T> {
    id: u64,
    raft: Raft,
    transport: T,
    settings: RaftSettings,
    /// This process's proposer session (see [`Origin`]).
    session: u64,
    restored: Option<RestoredLeadership>,
    /// The cluster this node belongs to (see [`crate::identity`]).
    identity: Identity,
}

/// A leadership this node held when its process stopped, which openraft resumes at start-up
/// without an election.
///
/// openraft computes a leader's read index as the larger of its commit index and the first
/// entry of its term. A leader elected normally knows its commit index; a restored one only knows
/// the commit index it last wrote to disk, which is not flushed on its own and may be older than
/// writes it had committed and acknowledged before it died. Answering a read from there served
/// stale state (found by the Jepsen-style test: a read begun after write B was acknowledged
/// returned the value before B, when the leader was killed and restarted within its followers'
/// election timeout). Everything this leader committed is in its own log, so while the restored
/// leadership lasts, read indexes start at the log's end as it was found on disk; those entries
/// belong to the leader's term and commit as soon as a quorum has them.
#[derive(Debug, Clone, Copy)]
struct RestoredLeadership {
    vote: openraft::Vote<u64>,
    last_log_index: u64,
}

struct Inner<T> {
    link: Arc<LeaderLink<T>>,
    state: StateHandle,
    disk: Disk,
    log: LogStore,
    /// Kept to read snapshots out whole for backups (openraft owns the other handle).
    state_machine: StateMachineStore,
    proposals: mpsc::Sender<Proposal>,
    /// The committed index found on disk at start: the node is ready once it has applied it.
    committed_at_start: Option<u64>,
    metrics: NodeMetrics,
}

/// What the node measures for `/metrics`.
#[derive(Debug, Default)]
struct NodeMetrics {
    log: Arc<LogMetrics>,
    snapshots: Arc<SnapshotMetrics>,
    /// From `propose` to the command's answer (applied on the leader).
    propose_latency: Histogram,
    proposals_failed: AtomicU64,
    /// Times this node saw the leader change (elections, including to none).
    leader_changes: Arc<AtomicU64>,
}

/// A running cluster member. Cheap to clone.
pub struct ReplicatedNode<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for ReplicatedNode<T> {
    fn clone(&self) -> Self {
        ReplicatedNode { inner: self.inner.clone() }
    }
}

impl<T: Transport> ReplicatedNode<T> {
    /// Opens storage under `settings.data_dir`, starts Raft, and initializes a new cluster if this
    /// node has no state and `initial_members` is set.
    pub async fn start(settings: RaftSettings, transport: T) -> Result<Self, NodeError> {
        std::fs::create_dir_all(&settings.data_dir)
            .map_err(|e| NodeError::Storage(format!("create {}: {e}", settings.data_dir.display())))?;
        let disk = Disk::open_sled(&settings.data_dir).map_err(|e| NodeError::Storage(e.to_string()))?;
        Self::start_on(settings, transport, disk).await
    }

    /// Like [`ReplicatedNode::start`], on a given disk (the simulation's in-memory one).
    pub async fn start_on(settings: RaftSettings, transport: T, disk: Disk) -> Result<Self, NodeError> {
        let format = identity::check_data_format(&disk).map_err(|e| NodeError::Storage(e.to_string()))?;
        tracing::debug!(?format, "data format");
        let mut log = LogStore::open(&disk).map_err(|e| NodeError::Storage(e.to_string()))?;
        let state_machine = StateMachineStore::open(&disk).map_err(|e| NodeError::Storage(e.to_string()))?;
        let state = state_machine.state();
        let snapshot_metrics = state_machine.metrics();
        let (committed_at_start, restored, pristine) = {
            use openraft::storage::RaftLogStorage;
            let storage = |e: crate::types::StorageError| NodeError::Storage(e.to_string());
            let committed = log.read_committed().await.map_err(storage)?.map(|id| id.index);
            let vote = log.read_vote().await.map_err(storage)?;
            let last_log = log.get_log_state().await.map_err(storage)?.last_log_id;
            let restored = match (vote, last_log) {
                (Some(vote), Some(last))
                    if vote.is_committed()
                        && vote.leader_id().voted_for() == Some(settings.node_id)
                        && settings.guard_restored_reads =>
                {
                    Some(RestoredLeadership { vote, last_log_index: last.index })
                }
                _ => None,
            };
            let pristine = vote.is_none() && last_log.is_none();
            (committed, restored, pristine)
        };
        let mut cluster = identity::load(&disk).map_err(|e| NodeError::Storage(e.to_string()))?;
        if cluster.is_none() && pristine && settings.initial_members.contains_key(&settings.node_id) {
            let founded = identity::founded(&settings.initial_members);
            identity::store(&disk, &founded).map_err(|e| NodeError::Storage(e.to_string()))?;
            cluster = Some(founded);
        }
        let identity = Identity::new(disk.clone(), cluster);

        let config = openraft::Config {
            cluster_name: "linkloom".into(),
            heartbeat_interval: settings.heartbeat_ms,
            election_timeout_min: settings.election_timeout_min_ms,
            election_timeout_max: settings.election_timeout_max_ms,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(staggered(
                settings.snapshot_logs,
                settings.node_id,
            )),
            max_in_snapshot_log_to_keep: settings.logs_kept_after_snapshot,
            install_snapshot_timeout: 30_000,
            max_payload_entries: 1_000,
            ..Default::default()
        }
        .validate()
        .map_err(|e| NodeError::Raft(e.to_string()))?;
        let network = NetworkFactory {
            transport: transport.clone(),
            snapshot_timeout: Duration::from_secs(30),
            unreachable: Default::default(),
            identity: identity.clone(),
        };
        let raft = openraft::Raft::new(settings.node_id, Arc::new(config), network, log.clone(), state_machine.clone())
            .await
            .map_err(|e| NodeError::Raft(e.to_string()))?;

        let session = rand::Rng::gen::<u64>(&mut crate::runtime::ThreadRng);
        let link = Arc::new(LeaderLink {
            id: settings.node_id,
            raft,
            transport,
            settings: settings.clone(),
            session,
            restored,
            identity,
        });
        let (proposals, queued) = mpsc::channel(MAX_QUEUED_PROPOSALS);
        tokio::spawn(batch_loop(link.clone(), queued));
        let metrics = NodeMetrics { log: log.metrics(), snapshots: snapshot_metrics, ..NodeMetrics::default() };
        tokio::spawn(count_leader_changes(link.raft.metrics(), metrics.leader_changes.clone()));
        if settings.snapshot_finished > 0 {
            let threshold = staggered(settings.snapshot_finished, settings.node_id);
            tokio::spawn(snapshot_when_hot(link.raft.clone(), state.clone(), threshold));
        }
        let node = ReplicatedNode {
            inner: Arc::new(Inner { link, state, disk, log, state_machine, proposals, committed_at_start, metrics }),
        };
        if !settings.initial_members.is_empty() {
            node.initialize(&settings.initial_members).await?;
        }
        Ok(node)
    }

    async fn initialize(&self, members: &BTreeMap<u64, String>) -> Result<(), NodeError> {
        let raft = &self.inner.link.raft;
        if raft.is_initialized().await.map_err(|e| NodeError::Raft(e.to_string()))? {
            return Ok(());
        }
        if !members.contains_key(&self.inner.link.id) {
            // A node that joins later is added by the leader as a learner.
            return Ok(());
        }
        let nodes: BTreeMap<u64, BasicNode> = members.iter().map(|(id, addr)| (*id, BasicNode::new(addr))).collect();
        match raft.initialize(nodes).await {
            Ok(()) => Ok(()),
            // Another founder's membership reached us first: the cluster exists already.
            Err(RaftError::APIError(openraft::error::InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(NodeError::Raft(e.to_string())),
        }
    }

    pub fn id(&self) -> u64 {
        self.inner.link.id
    }

    /// The applied state, for reads.
    pub fn state(&self) -> &StateHandle {
        &self.inner.state
    }

    /// True while this node is the leader (as far as it knows).
    pub fn is_leader(&self) -> bool {
        self.inner.link.raft.metrics().borrow().current_leader == Some(self.inner.link.id)
    }

    /// The address other nodes and backends reach this node at.
    pub fn advertise_addr(&self) -> &str {
        &self.inner.link.settings.advertise_addr
    }

    /// A receiver that wakes whenever Raft metrics change (an entry applied, a leader elected).
    /// Keep it: a new receiver only sees changes made after it was taken.
    pub fn changes(&self) -> Changes {
        self.inner.link.raft.metrics()
    }

    /// Entries in the on-disk log (they shrink when snapshots purge it).
    pub fn log_len(&self) -> usize {
        self.inner.log.len()
    }

    /// True once a leader is known and this node has applied what was committed when it started.
    pub fn is_ready(&self) -> bool {
        let metrics = self.inner.link.raft.metrics().borrow().clone();
        let applied = metrics.last_applied.map(|id| id.index);
        metrics.current_leader.is_some() && applied >= self.inner.committed_at_start
    }

    pub fn cluster_info(&self) -> ClusterInfo {
        let m = self.inner.link.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        let members = membership
            .nodes()
            .map(|(id, node)| Member { id: *id, addr: node.addr.clone(), voter: voters.contains(id) })
            .collect();
        ClusterInfo {
            node_id: self.inner.link.id,
            leader_id: m.current_leader,
            term: m.current_term,
            state: match m.state {
                ServerState::Leader => "leader",
                ServerState::Follower => "follower",
                ServerState::Candidate => "candidate",
                ServerState::Learner => "learner",
                ServerState::Shutdown => "shutdown",
            }
            .into(),
            last_log_index: m.last_log_index,
            last_applied: m.last_applied.map(|id| id.index),
            snapshot_index: m.snapshot.map(|id| id.index),
            purged_index: m.purged.map(|id| id.index),
            members,
        }
    }

    /// Replicates `command` and returns what applying it answered, forwarding to the leader when
    /// this node is not it.
    pub async fn propose(&self, command: Command) -> Result<Response, NodeError> {
        if matches!(command, Command::Batch { .. }) {
            return Err(NodeError::BadRequest("batches are formed by the node, not proposed".into()));
        }
        let (reply, answer) = oneshot::channel();
        let stopped = || NodeError::Raft("the node is shutting down".into());
        let started = Instant::now();
        self.inner.proposals.send(Proposal { command, reply }).await.map_err(|_| stopped())?;
        let answer = answer.await.map_err(|_| stopped())?;
        match &answer {
            Ok(_) => self.inner.metrics.propose_latency.observe(started.elapsed()),
            Err(_) => {
                self.inner.metrics.proposals_failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        answer
    }

    /// Adds Raft's families to a `/metrics` page.
    pub fn render_metrics(&self, out: &mut Exposition) {
        let m = &self.inner.metrics;
        let info = self.cluster_info();
        out.gauge("loom_raft_term", "The current Raft term.", &[], info.term as f64);
        out.gauge("loom_raft_is_leader", "1 if this node is the leader.", &[], f64::from(u8::from(self.is_leader())));
        out.gauge(
            "loom_raft_leader_id",
            "The leader this node knows (0: none).",
            &[],
            info.leader_id.unwrap_or(0) as f64,
        );
        out.counter(
            "loom_raft_leader_changes_total",
            "Leader changes this node observed since it started.",
            &[],
            m.leader_changes.load(Ordering::Relaxed),
        );
        out.gauge(
            "loom_raft_last_log_index",
            "Index of the last log entry.",
            &[],
            info.last_log_index.unwrap_or(0) as f64,
        );
        out.gauge(
            "loom_raft_commit_index",
            "Highest index known committed.",
            &[],
            m.log.committed_index.load(Ordering::Relaxed) as f64,
        );
        out.gauge(
            "loom_raft_applied_index",
            "Highest index applied to the state.",
            &[],
            info.last_applied.unwrap_or(0) as f64,
        );
        out.gauge(
            "loom_raft_snapshot_index",
            "Index of the last snapshot.",
            &[],
            info.snapshot_index.unwrap_or(0) as f64,
        );
        out.gauge("loom_raft_log_entries", "Log entries on this node's disk.", &[], self.log_len() as f64);
        out.histogram(
            "loom_raft_snapshot_copy_seconds",
            "Copying the state for a snapshot, under the lock that stops commands from applying.",
            &[],
            &m.snapshots.copy.snapshot(),
        );
        out.histogram(
            "loom_raft_snapshot_build_seconds",
            "Building a snapshot: the copy, encoding it, and writing it to disk.",
            &[],
            &m.snapshots.build.snapshot(),
        );
        out.gauge(
            "loom_raft_snapshot_bytes",
            "Size of the last snapshot built or installed.",
            &[],
            m.snapshots.bytes.load(Ordering::Relaxed) as f64,
        );
        out.gauge(
            "loom_raft_members",
            "Members in the configuration (voters and learners).",
            &[],
            info.members.len() as f64,
        );
        out.histogram(
            "loom_raft_append_latency_seconds",
            "From appending entries to the log to the fsync that made them durable.",
            &[],
            &m.log.append_latency.snapshot(),
        );
        out.counter(
            "loom_raft_fsyncs_total",
            "Log fsyncs (one covers every append queued meanwhile).",
            &[],
            m.log.fsyncs.load(Ordering::Relaxed),
        );
        out.histogram(
            "loom_raft_propose_latency_seconds",
            "From proposing a command on this node to its answer (committed and applied).",
            &[],
            &m.propose_latency.snapshot(),
        );
        out.counter(
            "loom_raft_proposals_failed_total",
            "Proposals that failed (no leader in time, shutting down).",
            &[],
            m.proposals_failed.load(Ordering::Relaxed),
        );
    }

    /// Resolves when this node's Raft core stops for good (a storage error), with why. A node in
    /// that state answers every write and consistent read with an error, so `loom-node` exits on
    /// it and lets its supervisor (systemd, Kubernetes) restart it once the cause is fixed.
    pub async fn stopped(&self) -> String {
        let mut metrics = self.inner.link.raft.metrics();
        loop {
            if let Err(fatal) = &metrics.borrow_and_update().running_state {
                return fatal.to_string();
            }
            if metrics.changed().await.is_err() {
                return match &metrics.borrow().running_state {
                    Err(fatal) => fatal.to_string(),
                    Ok(()) => "the Raft core has stopped".to_string(),
                };
            }
        }
    }

    /// Waits until this node's state reflects every write acknowledged before the call
    /// (read index through the leader). Then read [`Self::state`].
    pub async fn linearizable_barrier(&self) -> Result<(), NodeError> {
        let index = match self.inner.link.on_leader(LeaderRequest::ReadIndex).await? {
            LeaderResponse::ReadIndex(index) => index,
            other => return Err(NodeError::Raft(format!("unexpected answer to a read index: {other:?}"))),
        };
        let wait = Duration::from_millis(self.inner.link.settings.forward_wait_ms);
        self.inner
            .link
            .raft
            .wait(Some(wait))
            .applied_index_at_least(index, "linearizable read")
            .await
            .map_err(|e| NodeError::NoLeader { waited_ms: wait.as_millis() as u64, last_error: e.to_string() })?;
        Ok(())
    }

    /// A backup of the state with every write acknowledged before the call: waits until this
    /// node has applied them (read index), has it take a snapshot at least that recent, and reads
    /// the snapshot out whole as an archive with a checksum (see [`crate::backup`]).
    pub async fn backup(&self, taken_at_ms: i64, within: Duration) -> Result<(Vec<u8>, BackupSummary), NodeError> {
        self.linearizable_barrier().await?;
        let raft = &self.inner.link.raft;
        let wanted = raft.metrics().borrow().last_applied.map(|id| id.index);
        let deadline = Instant::now() + within;
        loop {
            let snapshot = raft.metrics().borrow().snapshot.map(|id| id.index);
            if snapshot >= wanted {
                break;
            }
            // openraft ignores a trigger while it builds a snapshot: ask again until one covers it.
            raft.trigger().snapshot().await.map_err(|e| NodeError::Raft(e.to_string()))?;
            let pause = deadline.saturating_duration_since(Instant::now()).min(Duration::from_secs(1));
            if pause.is_zero() {
                return Err(NodeError::Raft(format!(
                    "no snapshot reached index {wanted:?} within {} ms",
                    within.as_millis()
                )));
            }
            let waited = raft
                .wait(Some(pause))
                .metrics(|m| m.snapshot.map(|id| id.index) >= wanted, "a snapshot for a backup")
                .await;
            if let Err(openraft::metrics::WaitError::ShuttingDown) = waited {
                return Err(NodeError::Raft("the node is shutting down".into()));
            }
        }
        crate::backup::take_from(&self.inner.state_machine, self.inner.link.id, taken_at_ms)
            .await
            .map_err(|e| NodeError::Storage(e.to_string()))
    }

    /// The leader's view of how far each member's log has caught up, asked of the leader (or read
    /// here if this node leads). Bounded by `within`: a status page must not wait out an election.
    pub async fn replication(&self, within: Duration) -> Result<Replication, NodeError> {
        let asked = self.inner.link.on_leader(LeaderRequest::Replication);
        match tokio::time::timeout(within, asked).await {
            Err(_) => Err(NodeError::NoLeader {
                waited_ms: within.as_millis() as u64,
                last_error: "no answer from the leader in time".into(),
            }),
            Ok(answer) => match answer? {
                LeaderResponse::Replication(replication) => Ok(replication),
                LeaderResponse::Failed(e) => Err(NodeError::Raft(e)),
                other => Err(NodeError::Raft(format!("unexpected answer to a replication query: {other:?}"))),
            },
        }
    }

    /// Serves a node-to-node request arriving at `path` (one of [`crate::rpc`]'s paths).
    pub async fn serve_rpc(&self, path: &str, body: &[u8]) -> Result<Vec<u8>, NodeError> {
        let raft = &self.inner.link.raft;
        let bad = |e: codec::CodecError| NodeError::BadRequest(e.to_string());
        // The version and the cluster first: a message this node cannot read, or from another
        // cluster, is refused before any of it is decoded.
        let head: EnvelopeHead = codec::decode_prefix(body).map_err(bad)?;
        identity::check_wire(head.wire).map_err(NodeError::BadRequest)?;
        self.inner.link.identity.check(head.cluster.as_deref()).map_err(NodeError::WrongCluster)?;
        fn open<M: serde::de::DeserializeOwned>(body: &[u8]) -> Result<M, NodeError> {
            let envelope: Envelope<M> = codec::decode(body).map_err(|e| NodeError::BadRequest(e.to_string()))?;
            Ok(envelope.message)
        }
        let encoded = match path {
            PATH_APPEND => {
                let request: openraft::raft::AppendEntriesRequest<TypeConfig> = open(body)?;
                self.refuse_own_vote(&request.vote)?;
                codec::encode(&raft.append_entries(request).await)
            }
            PATH_VOTE => {
                let request: openraft::raft::VoteRequest<u64> = open(body)?;
                self.refuse_own_vote(&request.vote)?;
                codec::encode(&raft.vote(request).await)
            }
            PATH_SNAPSHOT => {
                let (vote, meta, data): (openraft::Vote<u64>, openraft::SnapshotMeta<u64, BasicNode>, Vec<u8>) =
                    open(body)?;
                self.refuse_own_vote(&vote)?;
                let snapshot = openraft::Snapshot::<TypeConfig> { meta, snapshot: Box::new(SnapshotData::Whole(data)) };
                codec::encode(&raft.install_full_snapshot(vote, snapshot).await)
            }
            PATH_SNAPSHOT_PART => {
                let part: Part = open(body)?;
                self.refuse_own_vote(&part.vote)?;
                // A deposed leader's transfer must not displace the current one's.
                let current = raft.metrics().borrow().vote;
                if part.vote < current {
                    return Err(NodeError::BadRequest(format!(
                        "a snapshot part under vote {} when this node has seen {current}",
                        part.vote
                    )));
                }
                let received = self.inner.state_machine.receive(part).await.map_err(NodeError::BadRequest)?;
                match received {
                    None => codec::encode(&Ok::<_, openraft::error::Fatal<u64>>(PartAnswer::Next)),
                    Some((vote, meta, data)) => {
                        let snapshot = openraft::Snapshot::<TypeConfig> { meta, snapshot: Box::new(data) };
                        codec::encode(&raft.install_full_snapshot(vote, snapshot).await.map(PartAnswer::Installed))
                    }
                }
            }
            PATH_LEADER => codec::encode(&self.inner.link.serve_leader_request(open(body)?).await),
            other => return Err(NodeError::BadRequest(format!("{UNKNOWN_RAFT_PATH} {other}"))),
        };
        encoded.map_err(|e| NodeError::Raft(e.to_string()))
    }

    /// Refuses a Raft message that claims to come from this node's own candidacy or leadership.
    ///
    /// No peer sends one: a node's vote names itself only in the messages it sends. But openraft
    /// asserts on it (a leader handed an append under its own vote panics, and its Raft core dies
    /// with it), and on a node without a cluster secret anyone can post to `/raft/*`. Refused
    /// here, such a message changes nothing.
    fn refuse_own_vote(&self, vote: &openraft::Vote<u64>) -> Result<(), NodeError> {
        match vote.leader_id().voted_for() {
            Some(node) if node == self.inner.link.id => Err(NodeError::BadRequest(format!(
                "a Raft message under this node's own vote (term {}, node {node}): no peer sends one",
                vote.leader_id().term
            ))),
            _ => Ok(()),
        }
    }

    /// Stops Raft and flushes storage.
    pub async fn shutdown(&self) -> Result<(), NodeError> {
        self.inner.link.raft.shutdown().await.map_err(|e| NodeError::Raft(e.to_string()))?;
        self.inner.disk.flush().await.map_err(|e| NodeError::Storage(e.to_string()))?;
        Ok(())
    }
}

/// The snapshot interval of node `node_id`: `snapshot_logs`, lengthened by an eighth for each
/// step of the node id modulo 3. Nodes that snapshot at the same entries all spend their CPU on
/// it at the same moment (measured: the write tail's p99.9 is the snapshots'); spread apart, at
/// most one of three usually is.
fn staggered(snapshot_logs: u64, node_id: u64) -> u64 {
    snapshot_logs.saturating_add(snapshot_logs / 8 * (node_id % 3))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::HttpTransport;

    #[test]
    fn the_three_nodes_of_a_cluster_snapshot_at_different_intervals() {
        let intervals: Vec<u64> = (1..=3).map(|id| staggered(10_000, id)).collect();
        assert_eq!(intervals, vec![11_250, 12_500, 10_000]);
        assert_eq!(staggered(7, 2), 7, "an interval under 8 is not stretched");
        assert_eq!(staggered(u64::MAX, 2), u64::MAX);
    }

    /// A single-node cluster on an in-memory disk, leading.
    async fn leading_node() -> ReplicatedNode<HttpTransport> {
        leading_node_with(RaftSettings::new(1, "127.0.0.1:9", "/unused")).await
    }

    async fn leading_node_with(mut settings: RaftSettings) -> ReplicatedNode<HttpTransport> {
        settings.initial_members = BTreeMap::from([(1, "127.0.0.1:9".to_string())]);
        let node = ReplicatedNode::start_on(settings, HttpTransport::tcp(), Disk::Memory(Default::default()))
            .await
            .expect("a node starts on a memory disk");
        let deadline = Instant::now() + Duration::from_secs(10);
        while node.inner.link.raft.metrics().borrow().current_leader != Some(1) {
            assert!(Instant::now() < deadline, "no leadership within 10 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        node
    }

    #[tokio::test]
    async fn finished_executions_piling_up_in_memory_bring_a_snapshot_before_the_entry_count() {
        let mut settings = RaftSettings::new(1, "127.0.0.1:9", "/unused");
        settings.snapshot_logs = 1_000_000;
        settings.snapshot_finished = 40;
        let node = leading_node_with(settings).await;
        let spec = linkloom_core::spec::parse_yaml("id: wf\ntasks: [{id: t, type: worker, queue: q}]\n").expect("spec");
        node.propose(Command::PutWorkflow { spec, actor: None, at_ms: 1 }).await.expect("workflow");
        let finish = |i: u32| {
            let execution_id = format!("wf:e{i}");
            let create = Command::CreateExecution {
                execution_id: execution_id.clone(),
                workflow_id: "wf".into(),
                trigger: linkloom_core::state::Trigger::Manual,
                scheduled_at_ms: None,
                params: linkloom_core::json::Json::null(),
                actor: None,
                at_ms: 2,
            };
            (create, Command::CancelExecution { execution_id, actor: None, at_ms: 3 })
        };
        // Node 1 waits an eighth longer than the setting, as with `snapshot_logs`.
        let threshold = u32::try_from(staggered(40, 1)).expect("small");
        for i in 0..threshold - 1 {
            let (create, cancel) = finish(i);
            node.propose(create).await.expect("created");
            node.propose(cancel).await.expect("cancelled");
        }
        let raft = &node.inner.link.raft;
        assert_eq!(raft.metrics().borrow().snapshot, None, "under the threshold");
        let (create, cancel) = finish(threshold - 1);
        node.propose(create).await.expect("created");
        node.propose(cancel).await.expect("cancelled");
        raft.wait(Some(Duration::from_secs(10)))
            .metrics(|m| m.snapshot.is_some(), "a snapshot at the threshold")
            .await
            .expect("a snapshot within 10 s");
        let kept = node.state().read(|s| s.kept());
        assert_eq!((kept.finished_executions, kept.finished_in_memory), (threshold as usize, 0), "moved to the base");
    }

    #[tokio::test]
    async fn a_message_under_this_nodes_own_vote_is_refused_and_raft_lives_on() {
        let node = leading_node().await;
        let vote = node.inner.link.raft.metrics().borrow().vote;
        let append = openraft::raft::AppendEntriesRequest::<TypeConfig> {
            vote,
            prev_log_id: None,
            entries: Vec::new(),
            leader_commit: None,
        };
        let ballot = openraft::raft::VoteRequest { vote, last_log_id: None };
        let ours = node.inner.link.identity.get();
        let wrap = |message| Envelope { wire: identity::WIRE_VERSION, cluster: ours.clone(), message };
        for (path, body) in [
            (PATH_APPEND, codec::encode(&wrap(&append)).expect("encodes")),
            (
                PATH_VOTE,
                codec::encode(&Envelope { wire: identity::WIRE_VERSION, cluster: ours.clone(), message: &ballot })
                    .expect("encodes"),
            ),
        ] {
            let refused = node.serve_rpc(path, &body).await;
            assert!(matches!(&refused, Err(NodeError::BadRequest(m)) if m.contains("own vote")), "{path}: {refused:?}");
        }
        // The Raft core is alive and still leads: it answers a linearizable read barrier.
        assert!(node.inner.link.raft.metrics().borrow().running_state.is_ok());
        tokio::time::timeout(Duration::from_secs(5), node.inner.link.raft.ensure_linearizable())
            .await
            .expect("answered in time")
            .expect("still the leader");
    }

    #[tokio::test]
    async fn messages_from_another_cluster_or_protocol_are_refused_before_decoding() {
        let node = leading_node().await;
        let ours = node.inner.link.identity.get();
        assert_eq!(
            ours.as_deref(),
            Some(identity::founded(&BTreeMap::from([(1, "127.0.0.1:9".to_string())]))).as_deref()
        );
        let ballot = openraft::raft::VoteRequest { vote: openraft::Vote::new(99, 2), last_log_id: None };
        let other =
            Envelope { wire: identity::WIRE_VERSION, cluster: Some("0123456789abcdef".to_string()), message: &ballot };
        let refused = node.serve_rpc(PATH_VOTE, &codec::encode(&other).expect("encodes")).await;
        assert!(matches!(&refused, Err(NodeError::WrongCluster(m)) if m.contains("0123456789abcdef")), "{refused:?}");
        let newer = Envelope { wire: identity::WIRE_VERSION + 1, cluster: ours.clone(), message: &ballot };
        let refused = node.serve_rpc(PATH_VOTE, &codec::encode(&newer).expect("encodes")).await;
        assert!(matches!(&refused, Err(NodeError::BadRequest(m)) if m.contains("protocol")), "{refused:?}");
        // Neither reached Raft: the node still leads in its own term.
        assert_eq!(node.inner.link.raft.metrics().borrow().current_leader, Some(1));
    }
}
