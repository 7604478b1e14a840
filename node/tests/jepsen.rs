//! The Jepsen-style test (`linkloom_harness::jepsen`) in CI: a short run with faults must pass,
//! and the same run with deduplication switched off must fail, or the checks prove nothing.
//!
//! Longer runs: `cargo run --release -p linkloom-harness --bin loom-jepsen -- --duration 90`.
//! `LOOM_JEPSEN_SECS` lengthens the passing run here.

use std::time::Duration;

use linkloom_harness::jepsen::{self, Fault, Options};
use linkloom_harness::Netns;

const BIN: &str = env!("CARGO_BIN_EXE_loom-node");

fn options(seed: u64, secs: u64) -> Options {
    let mut options = Options::new(BIN);
    options.seed = seed;
    options.duration = Duration::from_secs(secs);
    options.clients = 8;
    options.fault_every = Duration::from_millis(2_500);
    options
}

#[test]
fn a_short_run_under_kills_and_pauses_is_linearizable_and_exactly_once() {
    let secs = std::env::var("LOOM_JEPSEN_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
    let report = jepsen::run(&options(7, secs)).expect("the test runs");
    println!("{report}");
    assert!(report.passed(), "{report}");
    assert!(report.faults.len() >= 4, "too few faults to mean anything:\n{report}");
    assert!(report.register_ops > 500, "too few operations to mean anything:\n{report}");
}

#[test]
fn with_deduplication_off_the_run_finds_duplicates() {
    let mut options = options(8, 25);
    options.faults = vec![Fault::KillLeader];
    options.node_env.push(("LOOM_CHAOS_NO_DEDUP".into(), "true".into()));
    // The failure is the point: no logs to keep.
    options.keep_logs = false;
    let report = jepsen::run(&options).expect("the test runs");
    println!("{report}");
    let duplicates = !report.anomalies.is_empty() || !report.trigger_violations.is_empty();
    assert!(duplicates, "retried writes applied twice went unnoticed:\n{report}");
}

#[test]
fn a_short_run_under_partitions_is_linearizable_and_exactly_once() {
    // Each node on its own network host (a namespace at 10.79.0.N), partitions cut with nftables.
    let netns = Netns { prefix: "ljt".into(), subnet: "10.79.0".into() };
    if let Some(why) = netns.unavailable() {
        println!("SKIPPED: nodes on separate network hosts are not possible here: {why}");
        return;
    }
    let mut options = options(9, 30);
    options.netns = Some(netns);
    options.faults = vec![Fault::IsolateLeader, Fault::IsolateNode, Fault::CutOneWay, Fault::KillLeader];
    let report = jepsen::run(&options).expect("the test runs");
    println!("{report}");
    assert!(report.passed(), "{report}");
    let partitions =
        report.faults.iter().filter(|(_, what)| what.starts_with("isolate") || what.starts_with("cut")).count();
    assert!(partitions >= 2, "too few partitions to mean anything:\n{report}");
}
