//! Link Loom's replication layer: openraft wired to sled storage, an HTTP transport and the
//! seams (clock, randomness, transport) that let the simulation replace the outside world.
//!
//! Architecture invariant: the state machine logic lives in `linkloom-core`; this crate only
//! moves commands into the log, persists it, applies committed entries in order and answers
//! reads. It never interprets a command.

// openraft's traits fix `StorageError` (224 bytes) as the error type of storage calls.
#![allow(clippy::result_large_err)]

pub mod backup;
pub mod identity;
mod network;
pub mod node;
pub mod rpc;
pub mod runtime;
pub mod seams;
pub mod storage;
pub mod transport;
mod types;

pub use node::{Changes, ClusterInfo, Member, NodeError, RaftSettings, ReplicatedNode};
pub use rpc::Replication;
pub use seams::{Clock, Draw, Entropy, SystemClock, ThreadEntropy};
pub use storage::StateHandle;
pub use transport::{HttpTransport, Transport, TransportError};
pub use types::TypeConfig;
