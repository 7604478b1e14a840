//! A Link Loom node as a turmoil host: `linkloom_node::assemble`, the assembly `loom-node` runs,
//! over turmoil's network, the simulated clock and an in-memory disk that survives crashes (only
//! what was flushed).

use std::collections::BTreeMap;
use std::sync::Arc;

use linkloom_actors::{EngineConfig, HyperTaskHttp};
use linkloom_api::{ApiLimits, AuthConfig, BrowserGuard, UiAssets};
use linkloom_node::{Parts, Seams};
use linkloom_raft::storage::Disk;
use linkloom_raft::{Clock, HttpTransport, RaftSettings, ThreadEntropy};

use crate::net::{SimConnector, SimListener, SimTransport};
use crate::world::World;

/// Every simulated node shares it; a request without it to `/raft/*` is refused.
const CLUSTER_SECRET: &str = "simulated-cluster-secret";

/// The API (and Raft) port of every node.
pub const NODE_PORT: u16 = 8080;

pub fn host_name(id: u64) -> String {
    format!("n{id}")
}

pub fn node_addr(id: u64) -> String {
    format!("{}:{NODE_PORT}", host_name(id))
}

/// Wall-clock time from the simulation, shifted by this node's skew.
pub struct SimClock {
    pub skew_ms: i64,
}

impl Clock for SimClock {
    fn now_ms(&self) -> i64 {
        turmoil::since_epoch().map(|d| d.as_millis() as i64).unwrap_or(0) + self.skew_ms
    }
}

/// Timing of the engine in the simulation: production defaults, with worker leases short enough
/// that a scenario sees them expire.
pub fn engine_config() -> EngineConfig {
    let mut config = EngineConfig::new("/nonexistent-shell-tasks-do-not-run-in-the-simulation");
    config.worker_lease_ms = 3_000;
    config.worker_heartbeat_ms = 500;
    config.prune_every = std::time::Duration::from_secs(5);
    config
}

/// Guarantees a run switches off in every node, to prove its checkers see what follows.
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeBugs {
    /// A restarted leader answers reads from its possibly stale commit index.
    pub stale_restored_reads: bool,
    /// Retried proposals and client requests apply again.
    pub no_dedup: bool,
}

/// Runs node `id` until it is crashed: start Raft on its disk, the engine, then serve the API.
pub async fn run_node(
    world: World,
    id: u64,
    nodes: u64,
    skew_ms: i64,
    bugs: NodeBugs,
) -> Result<(), Box<dyn std::error::Error>> {
    let disk = world.disks.get(&id).cloned().ok_or("no disk for this node")?;
    let mut settings = RaftSettings::new(id, node_addr(id), "/simulated");
    settings.initial_members = (1..=nodes).map(|n| (n, node_addr(n))).collect::<BTreeMap<_, _>>();
    settings.snapshot_logs = 500;
    settings.logs_kept_after_snapshot = 100;
    settings.forward_wait_ms = 5_000;
    settings.forward_timeout_ms = 2_000;
    settings.guard_restored_reads = !bugs.stale_restored_reads;
    settings.exactly_once = !bugs.no_dedup;
    let seams = Seams {
        transport: SimTransport::new(
            HttpTransport::with_connector(SimConnector).with_cluster_secret(CLUSTER_SECRET),
            id,
            world.clone(),
        ),
        disk: Disk::Memory(disk),
        clock: Arc::new(SimClock { skew_ms }),
        entropy: Arc::new(ThreadEntropy),
        task_http: Arc::new(HyperTaskHttp::with_connector(SimConnector)),
    };
    let parts = Parts {
        raft: settings,
        engine: engine_config(),
        limits: ApiLimits::default(),
        // Node-to-node traffic proves the cluster secret, as in production; clients run open.
        auth: AuthConfig::new(None, Some(CLUSTER_SECRET.to_string()), 0, 0),
        // Open, as a developer's node: requests must name this node's host, as peers and
        // clients addressing it do.
        browser: BrowserGuard::new(&[&node_addr(id)], &[], &[], true),
        ui: UiAssets::default(),
        max_log_streams: 16,
        idempotency_keys: !bugs.no_dedup,
        webhooks: Default::default(),
    };
    let assembled = linkloom_node::assemble(seams, parts).await?;
    world.with(|w| w.nodes.insert(id, assembled.node.clone()));
    let app = assembled.router;
    let listener = SimListener::bind(NODE_PORT).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
