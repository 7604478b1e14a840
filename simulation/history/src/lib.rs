//! Client histories of a Link Loom cluster, and the checks judged on them.
//!
//! A history is what clients saw: every operation with when it was called, when (and whether) it
//! returned, and what it answered. The Jepsen-style test of real processes (`loom-jepsen`) and
//! the simulator (`loom-sim`) both record one and hand it to the same checks:
//!
//! - [`linearizability`]: is there one order of the operations, consistent with real time, in
//!   which a sequential object (a [`Model`]) gives every answer the clients got? The search is
//!   Wing and Gong's, with Lowe's memoization of (operations done, state) pairs, run per key
//!   (P-compositionality). An operation whose outcome the client never learned may have taken
//!   effect at any time after its call, or never.
//! - [`exactly_once`]: effects that carry a unique id (an execution created by a trigger, a
//!   cancel recorded in the audit trail) counted against what clients were told.
//!
//! This crate is pure: no I/O, no clock, no randomness. Times are numbers on any one clock the
//! recorder chose (nanoseconds since the test began, simulated milliseconds).

pub mod exactly_once;
pub mod linearizability;
pub mod register;

pub use linearizability::{check, check_by_key, Model, Op, Outcome, Verdict};
