//! The SDK conformance kit (see `sdk/conformance/README.md`): what "correct" means for every
//! Link Loom SDK, in a form no single language owns.
//!
//! - [`vectors`]: cases run through the Rust SDK's pure functions and written down as JSON, so
//!   every other SDK is tested against the reference's answers.
//! - [`fake`]: a scripted node (`loom-fake-node`) that replays worker transcripts, for SDK unit
//!   tests without a cluster.
//! - [`scenarios`]: the driver (`loom-conformance`) that runs an SDK's conformance program
//!   against a real three-node cluster.

pub mod fake;
pub mod program;
pub mod scenarios;
pub mod vectors;
