//! What the simulated hosts share with the runner: node handles (to read each node's replicated
//! state from outside, the way a checker must), the disks that outlive crashes, the history of
//! acknowledged writes, and the event trace whose hash identifies a run.
//!
//! Hosts run on turmoil's single thread, one at a time, so a plain mutex is never contended; it
//! is there because tasks spawned inside a host must be `Send`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use linkloom_history::exactly_once::Told;
use linkloom_history::register::{Input, Output};
use linkloom_history::Op;
use linkloom_raft::storage::MemoryDisk;
use linkloom_raft::ReplicatedNode;
use sha2::{Digest, Sha256};

use crate::net::SimTransport;

/// The node type the simulation runs.
pub type SimNode = ReplicatedNode<SimTransport>;

/// A write the cluster acknowledged to a client: it must be on every node after the faults heal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ack {
    WorkflowVersion {
        workflow_id: String,
        version: u32,
    },
    ExecutionCreated {
        execution_id: String,
    },
    ExecutionCancelled {
        execution_id: String,
    },
    /// A worker's completion was accepted.
    Completion {
        attempt_id: u64,
    },
}

#[derive(Default)]
pub struct WorldState {
    /// Running nodes, by id (absent while crashed).
    pub nodes: BTreeMap<u64, SimNode>,
    pub acks: Vec<(Duration, Ack)>,
    /// Human-readable events in order; the trace.
    pub events: Vec<String>,
    /// Executions a client asked to retry (their terminal state may change legitimately).
    pub retried: Vec<String>,
    /// Completions workers sent after being told their attempt was over (must all be refused).
    pub late_completions: Vec<u64>,
    /// Every register operation clients made (workflows written and read), with simulated
    /// call and return times in ns: the history `linearizable` judges.
    pub registers: Vec<(String, Op<Input, Output>)>,
    /// Every trigger by its op id (in the execution's params), with what its client was told:
    /// `exactly-once` counts the executions per op id.
    pub triggers: Vec<(String, Told)>,
    /// Every event send by its event id, whether the id's payload matches the `on-event`
    /// trigger's filter, and what its client was told (ids are sent again on purpose).
    pub sent_events: Vec<(String, bool, Told)>,
    /// Bytes per second of node-to-node links the runner throttled, by (from, to) node id.
    pub bandwidth: BTreeMap<(u64, u64), u64>,
}

/// Shared between the runner and every host.
#[derive(Clone, Default)]
pub struct World {
    inner: Arc<Mutex<WorldState>>,
    /// One disk per node id, created up front and kept across crashes.
    pub disks: Arc<BTreeMap<u64, MemoryDisk>>,
}

impl World {
    pub fn new(nodes: u64) -> World {
        World { inner: Arc::default(), disks: Arc::new((1..=nodes).map(|id| (id, MemoryDisk::default())).collect()) }
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut WorldState) -> R) -> R {
        f(&mut self.inner.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Appends an event at simulated time `at`.
    pub fn event(&self, at: Duration, text: impl AsRef<str>) {
        let line = format!("{:>9.3}s {}", at.as_secs_f64(), text.as_ref());
        tracing::debug!(target: "loom_sim::trace", "{line}");
        self.with(|w| w.events.push(line));
    }

    pub fn ack(&self, at: Duration, ack: Ack) {
        self.event(at, format!("ack {ack:?}"));
        self.with(|w| w.acks.push((at, ack)));
    }

    pub fn node(&self, id: u64) -> Option<SimNode> {
        self.with(|w| w.nodes.get(&id).cloned())
    }

    pub fn running_nodes(&self) -> Vec<(u64, SimNode)> {
        self.with(|w| w.nodes.iter().map(|(id, n)| (*id, n.clone())).collect())
    }

    /// SHA-256 of the trace.
    pub fn trace_hash(&self) -> String {
        self.with(|w| {
            let mut hasher = Sha256::new();
            for line in &w.events {
                hasher.update(line.as_bytes());
                hasher.update(b"\n");
            }
            hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
        })
    }

    pub fn trace_text(&self) -> String {
        self.with(|w| w.events.join("\n") + "\n")
    }
}

/// Simulated time now (zero outside a simulation).
pub fn sim_now() -> Duration {
    turmoil::sim_elapsed().unwrap_or_default()
}
