//! A Jepsen-style test of real `loom-node` processes: concurrent clients record every operation
//! they make (when it was called, when it returned, what it answered), a nemesis kills, restarts
//! and pauses nodes meanwhile, and after the faults heal the history is judged:
//!
//! - **workflows as registers**: clients write workflows (each write a new version with a unique
//!   `description`) and read them back through random nodes with the default (linearizable)
//!   consistency; [`linkloom_history::linearizability`] must find an order of every write and
//!   read, consistent with real time, that a versioned register explains. A stale read, a lost
//!   acknowledged write or a write applied twice (a skipped version) has no such order.
//! - **triggers and cancels, exactly once**: each trigger carries a unique op id in its params
//!   and each cancel targets its own execution; after the run the executions per op id and the
//!   cancels in each audit trail are counted against what clients were told.
//!
//! Clients behave as the SDKs do: every mutating call carries an `Idempotency-Key` made for that
//! logical operation, and an answer that never came (a timeout, a lost connection, a 5xx) is
//! retried with the same key through another node. An operation that never got a definite
//! answer is recorded as unknown: it may or may not have taken effect, at any time after its call.
//!
//! Keys rotate: each of `slots` registers is replaced by a fresh workflow after `ops_per_key`
//! operations, so every key's history stays short enough to search (Jepsen's "independent" keys).
//!
//! `loom-jepsen` is the command line; `node/tests/jepsen.rs` runs a short version in CI.

mod client;
mod nemesis;
mod verdict;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::{Cluster, ClusterOptions};
pub use nemesis::Fault;
pub use verdict::{Anomaly, Report};

/// How to run the test.
#[derive(Debug, Clone)]
pub struct Options {
    pub node_binary: PathBuf,
    /// How long clients run (the nemesis stops a fault interval before the end).
    pub duration: Duration,
    pub clients: usize,
    /// Registers written and read at any one time.
    pub slots: usize,
    /// Operations on one register before its slot moves to a fresh one.
    pub ops_per_key: u64,
    /// Faults the nemesis picks from; empty for a run without faults.
    pub faults: Vec<Fault>,
    /// A fault every this long.
    pub fault_every: Duration,
    /// How long a killed node stays down.
    pub down_for: Duration,
    pub seed: u64,
    /// Extra `LOOM_*` settings for every node.
    pub node_env: Vec<(String, String)>,
    /// Per request; a request without an answer in time counts as unknown and is retried.
    pub request_timeout: Duration,
    /// Copy the nodes' logs out of the cluster's temporary directory when a check fails.
    pub keep_logs: bool,
    /// Run each node on its own network host, which partition faults need (root only).
    pub netns: Option<crate::Netns>,
}

impl Options {
    pub fn new(node_binary: impl Into<PathBuf>) -> Self {
        Options {
            node_binary: node_binary.into(),
            duration: Duration::from_secs(60),
            clients: 12,
            slots: 4,
            ops_per_key: 400,
            faults: vec![Fault::KillLeader, Fault::PauseLeader, Fault::KillNode],
            fault_every: Duration::from_secs(5),
            down_for: Duration::from_millis(1_500),
            seed: 1,
            node_env: Vec::new(),
            request_timeout: Duration::from_secs(3),
            keep_logs: true,
            netns: None,
        }
    }
}

/// The workflow every trigger starts: one worker task on a queue no worker serves, so its
/// executions stay pending until a client cancels them.
pub(crate) const TRIGGER_WORKFLOW: &str = "jepsen-trigger";

/// Runs the test: starts a fresh cluster, runs clients and nemesis, heals, reads the final state
/// and judges the history.
pub fn run(options: &Options) -> anyhow::Result<Report> {
    if options.netns.is_none() {
        if let Some(fault) = options.faults.iter().find(|f| f.is_partition()) {
            anyhow::bail!("{} needs nodes on separate network hosts (--netns, as root)", fault.name());
        }
    }
    let mut cluster_options = ClusterOptions::new(3);
    if let Some(netns) = &options.netns {
        cluster_options = cluster_options.netns(netns.clone());
    }
    for (k, v) in &options.node_env {
        cluster_options = cluster_options.env(k, v);
    }
    let mut cluster = Cluster::start(&options.node_binary, cluster_options)?;
    cluster.wait_ready(Duration::from_secs(30)).context("the cluster did not come up")?;
    // Cancelled executions must stay to be counted: retention keeps as many as it can.
    let keep_all =
        serde_json::json!({"max_kept_executions_per_workflow": 1_000_000, "max_kept_executions": 10_000_000});
    match cluster.put_json(1, "/api/v1/cluster/limits", &keep_all)? {
        (200, _) => {}
        (status, body) => anyhow::bail!("raising the retention limits answered {status}: {body}"),
    }
    let trigger_spec = serde_json::json!({
        "id": TRIGGER_WORKFLOW,
        "description": "started by loom-jepsen; its task waits for a worker that never comes",
        "tasks": [{"id": "wait", "type": "worker", "queue": "loom-jepsen-nobody"}],
    });
    match cluster.post(1, "/api/v1/workflows", "application/json", trigger_spec.to_string())? {
        (201, _) => {}
        (status, body) => anyhow::bail!("registering {TRIGGER_WORKFLOW} answered {status}: {body}"),
    }
    let urls: Vec<String> = cluster.ids().into_iter().map(|id| cluster.url(id)).collect();

    let started = Instant::now();
    let clock = Clock { started };
    let keys = Arc::new(client::Keys::new(options.slots, options.ops_per_key));
    let stop = Arc::new(AtomicBool::new(false));
    let done_ops = Arc::new(AtomicU64::new(0));
    let cluster = Arc::new(Mutex::new(cluster));

    let nemesis = {
        let (cluster, stop, options) = (cluster.clone(), stop.clone(), options.clone());
        std::thread::spawn(move || nemesis::run(&cluster, &options, clock, &stop))
    };
    let clients: Vec<_> = (0..options.clients)
        .map(|i| {
            let worker = client::Client::new(i as u32, urls.clone(), options, clock, keys.clone(), done_ops.clone())?;
            let stop = stop.clone();
            Ok(std::thread::spawn(move || worker.run(&stop)))
        })
        .collect::<anyhow::Result<_>>()?;
    let deadline = started + options.duration;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100).min(deadline.saturating_duration_since(Instant::now())));
    }
    stop.store(true, Ordering::SeqCst);
    let mut history = client::History::default();
    for handle in clients {
        let part = handle.join().map_err(|_| anyhow::anyhow!("a client thread panicked"))?;
        history.extend(part);
    }
    let faults = nemesis.join().map_err(|_| anyhow::anyhow!("the nemesis thread panicked"))??;

    // Heal (the nemesis already undid its faults), then read what the cluster holds.
    let mut cluster = match Arc::try_unwrap(cluster) {
        Ok(mutex) => mutex.into_inner().unwrap_or_else(|p| p.into_inner()),
        Err(_) => anyhow::bail!("the nemesis still holds the cluster"),
    };
    cluster.wait_ready(Duration::from_secs(60)).context("the cluster did not recover after the faults")?;
    let final_state = verdict::read_final(&cluster, &history, clock)?;
    let mut report = verdict::judge(options, history, final_state, faults, started.elapsed());
    if !report.passed() && options.keep_logs {
        report.kept = report.keep_logs(&cluster);
    }
    Ok(report)
}

/// Nanoseconds since the test began: the one clock every record uses.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    started: Instant,
}

impl Clock {
    pub(crate) fn now(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }
}

/// Fault events as the nemesis logged them: (time ns, description).
pub(crate) type FaultLog = Vec<(u64, String)>;

/// Counts per kind of thing, for the report.
pub(crate) type Tally = BTreeMap<String, u64>;
