//! Link Loom's engine: the actors that make executions happen.
//!
//! Every node runs a [`NodeSupervisor`](supervisor) with:
//! - one `ExecutionActor` per execution this node owns, which starts ready tasks, runs their
//!   attempts (HTTP calls, shell commands) and reports results through the replicated log;
//! - a `LeaderActor` that, on the leader only, (re)assigns executions to live nodes, expires
//!   leases and prunes finished executions;
//! - a `TickActor` that, on the leader only, fires cron ticks;
//! - a `DispatcherActor` that, on the leader only, hands ready `worker` tasks to connected
//!   workers;
//! - one `WorkerConnectionActor` per worker connected to this node, which delivers the tasks
//!   leased to its worker down the worker's stream.
//!
//! Architecture invariant: actors decide nothing the state machine must agree on. They propose
//! commands (start this attempt, this attempt ended) and `apply` accepts or rejects them; an actor
//! that lost ownership or raced another node is simply refused. Actor state is a cache of
//! replicated state and is rebuilt from it after a crash or restart.

mod cron;
mod dispatch;
mod execution;
mod executor;
mod leader;
mod supervisor;
mod worker_conn;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use linkloom_core::{Command, Response};
use linkloom_raft::{Changes, Clock, Entropy, NodeError, ReplicatedNode, StateHandle, Transport};

pub use executor::{
    parse_host_rules, CallError, HostRule, HyperTaskHttp, ShellLimits, TargetRules, TaskHttp, TaskPolicy,
    DEFAULT_MAX_PROCESSES,
};
pub use supervisor::{Drained, EngineHandle, EngineStats, WorkerStream};
pub use worker_conn::ConnectError;

/// What the engine needs from its node, as an object so actors need no type parameters.
pub trait Cluster: Send + Sync + 'static {
    fn node_id(&self) -> u64;
    fn is_leader(&self) -> bool;
    fn state(&self) -> &StateHandle;
    fn propose(&self, command: Command) -> BoxFuture<'_, Result<Response, NodeError>>;
    /// A subscription that wakes when replicated state may have changed.
    fn changes(&self) -> Changes;
    fn advertise_addr(&self) -> String;
}

impl<T: Transport> Cluster for ReplicatedNode<T> {
    fn node_id(&self) -> u64 {
        self.id()
    }
    fn is_leader(&self) -> bool {
        ReplicatedNode::is_leader(self)
    }
    fn state(&self) -> &StateHandle {
        ReplicatedNode::state(self)
    }
    fn propose(&self, command: Command) -> BoxFuture<'_, Result<Response, NodeError>> {
        Box::pin(ReplicatedNode::propose(self, command))
    }
    fn changes(&self) -> Changes {
        ReplicatedNode::changes(self)
    }
    fn advertise_addr(&self) -> String {
        ReplicatedNode::advertise_addr(self).to_string()
    }
}

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How long a node's liveness lease lasts; its executions move elsewhere after it lapses.
    pub node_lease_ms: u64,
    /// How often a node renews its lease.
    pub node_lease_renew_ms: u64,
    /// How often the leader checks assignments and lease expiry.
    pub housekeeping_ms: u64,
    /// A tick later than this counts as missed (and follows `catchup`).
    pub tick_tolerance_ms: i64,
    /// At most this many missed ticks are fired per workflow with `catchup: all`.
    pub max_catchup_ticks: usize,
    /// Where shell attempts get their working directories.
    pub work_dir: std::path::PathBuf,
    /// How often the leader proposes `PruneExecutions` (the age limit is judged then; the count
    /// and byte limits hold after every command).
    pub prune_every: Duration,
    /// Chaos testing: every Nth poke of an execution actor panics, to exercise supervision.
    pub chaos_panic_every: Option<u64>,
    /// Grace between SIGTERM and SIGKILL when a shell attempt is killed.
    pub kill_grace: Duration,
    /// How often buffered shell output is appended to the attempt's log.
    pub log_flush: Duration,
    /// How long a task leased to a worker stays leased without a heartbeat.
    pub worker_lease_ms: u64,
    /// How often workers heartbeat their attempts, and connections are pinged and renewed.
    pub worker_heartbeat_ms: u64,
    /// Signs every HTTP task request (`X-Loom-Signature`) with this secret when set.
    pub signing_secret: Option<Arc<str>>,
    /// Named signing secrets a workflow may choose with `signing_key` (the name is replicated,
    /// the secret is not).
    pub signing_keys: std::collections::BTreeMap<String, Arc<str>>,
    /// What shell and HTTP tasks may do on this node.
    pub task_policy: TaskPolicy,
    /// `https` when the node serves its API over TLS: the scheme of the callback URLs backends
    /// are given.
    pub api_scheme: &'static str,
}

impl EngineConfig {
    pub fn new(work_dir: impl Into<std::path::PathBuf>) -> Self {
        EngineConfig {
            node_lease_ms: 3_000,
            node_lease_renew_ms: 1_000,
            housekeeping_ms: 250,
            tick_tolerance_ms: 1_000,
            max_catchup_ticks: 100,
            prune_every: Duration::from_secs(10),
            chaos_panic_every: None,
            work_dir: work_dir.into(),
            kill_grace: Duration::from_secs(2),
            log_flush: Duration::from_millis(200),
            worker_lease_ms: 10_000,
            worker_heartbeat_ms: 1_000,
            signing_secret: None,
            signing_keys: Default::default(),
            task_policy: TaskPolicy::default(),
            api_scheme: "http",
        }
    }

    /// How long a worker's registration lasts unless its connection renews it: three heartbeat
    /// intervals, so one slow commit does not drop a live worker.
    pub fn worker_registration_ms(&self) -> u64 {
        self.worker_heartbeat_ms * 3
    }
}

/// Everything the actors share.
pub(crate) struct EngineCtx {
    pub(crate) cluster: Arc<dyn Cluster>,
    pub(crate) clock: Arc<dyn Clock>,
    /// Session ids, callback tokens and retry jitter: seeded per host in the simulation.
    pub(crate) entropy: Arc<dyn Entropy>,
    pub(crate) http: Arc<dyn TaskHttp>,
    pub(crate) config: EngineConfig,
    pub(crate) stats: Arc<supervisor::Counters>,
    /// Attempts running on this node, kept outside the actors that started them.
    pub(crate) attempts: execution::AttemptRegistry,
    /// Where shell attempts get their own cgroups; `None`: their descendants are tracked instead.
    pub(crate) cgroups: Option<executor::Cgroups>,
    /// Where HTTP tasks may connect (the allow-list and the addresses refused by default).
    pub(crate) targets: executor::TargetRules,
    /// The node's budget for task output appended to logs.
    pub(crate) log_budget: executor::log_rate::LogBudget,
    /// Set when the node shuts down: execution actors start no attempt from then on.
    pub(crate) draining: std::sync::atomic::AtomicBool,
    /// Pokes between checking `draining` and registering the attempts they start.
    pub(crate) starting: std::sync::atomic::AtomicUsize,
}

/// Starts the engine on this node.
pub async fn start(
    cluster: Arc<dyn Cluster>,
    clock: Arc<dyn Clock>,
    entropy: Arc<dyn Entropy>,
    http: Arc<dyn TaskHttp>,
    config: EngineConfig,
) -> Result<EngineHandle, ractor::SpawnErr> {
    let policy = &config.task_policy;
    let policy_allow = policy.http_allow.clone();
    let log_budget = executor::log_rate::LogBudget::new(policy.shell_limits.log_bytes_per_sec);
    let cgroups = match (policy.shell_enabled, policy.shell_cgroups) {
        (true, true) => match executor::Cgroups::detect() {
            Ok(cgroups) => {
                tracing::info!(
                    cgroup = %cgroups.base().display(),
                    pids_max = cgroups.limits_processes(),
                    "each shell attempt runs in its own cgroup"
                );
                Some(cgroups)
            }
            Err(why) => {
                tracing::warn!(
                    "shell attempts cannot have their own cgroups ({why}); tracking their descendants instead, \
                     which can miss a process that forks away between two looks"
                );
                None
            }
        },
        (true, false) => {
            tracing::info!("shell attempt cgroups are off (LOOM_SHELL_CGROUPS=off); tracking descendants instead");
            None
        }
        (false, _) => None,
    };
    let ctx = Arc::new(EngineCtx {
        cluster,
        clock,
        entropy,
        http,
        config,
        stats: Arc::default(),
        attempts: Default::default(),
        cgroups,
        targets: executor::TargetRules::new(policy_allow),
        log_budget,
        draining: Default::default(),
        starting: Default::default(),
    });
    supervisor::start(ctx).await
}

/// The key of a node's liveness lease.
pub fn node_lease_key(node_id: u64) -> String {
    format!("node/{node_id}")
}
