//! Link Loom under deterministic simulation.
//!
//! A three-node cluster runs inside [turmoil]: the same `ReplicatedNode`, engine actors, API
//! router and executors that `loom-node` runs, over turmoil's simulated network and clock, with an
//! in-memory disk per node that survives a crash only as far as it was flushed. Around it run a
//! scripted HTTP task backend, two workers speaking the worker protocol, and a client that
//! registers, triggers, cancels, backfills and reads. A scenario injects faults (crashes, power
//! loss, partitions, one-way links, latency, clock skew, a failing backend, dying workers); then
//! everything heals, the cluster must settle, and the checkers judge what every node holds.
//!
//! Everything that varies comes from the seed: turmoil's network, the nodes' election timeouts
//! (openraft's RNG hook), ids, the workload, the backend, the faults. The same seed gives the same
//! event trace, byte for byte; its hash is printed so a failure can be replayed exactly.

pub mod backend;
pub mod checker;
pub mod net;
pub mod node;
pub mod probe;
pub mod run;
pub mod scenario;
pub mod workload;
pub mod world;

pub use checker::{Violation, INVARIANTS};
pub use node::NodeBugs;
pub use probe::{run_probe, Probe, ProbeOutcome};
pub use run::{run, Outcome, RunConfig, BUGS};
pub use scenario::Scenario;
