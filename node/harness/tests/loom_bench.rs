//! `loom-bench` end to end: it starts its own cluster, runs a suite scenario, adds the process
//! figures only it can read, and drives `failover` through real SIGKILLs and restarts.

use std::process::Command;

use serde_json::Value;

fn loom_bench(args: &[&str]) -> Vec<Value> {
    let node = linkloom_harness::worker::node_binary().expect("loom-node is built");
    let output = Command::new(env!("CARGO_BIN_EXE_loom-bench"))
        .args(args)
        .arg("--json")
        .arg("--loom-node")
        .arg(node)
        .output()
        .expect("run loom-bench");
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "loom-bench {args:?} failed:\n{stdout}\n{stderr}");
    stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

#[test]
fn a_scenario_on_a_fresh_cluster_reports_process_figures() {
    let reports = loom_bench(&["writes", "--count", "40", "--concurrency", "4", "--warmup", "2"]);
    assert_eq!(reports.len(), 1, "{reports:?}");
    let r = &reports[0];
    assert_eq!(
        (r["scenario"].as_str(), r["count"].as_u64(), r["errors"].as_u64()),
        (Some("writes"), Some(40), Some(0))
    );
    for key in ["node1_rss_mib", "node2_rss_mib", "node3_rss_mib", "disk_mib", "p999_ms"] {
        assert!(r[key].as_f64().is_some_and(|v| v > 0.0), "{key} in {r}");
    }
}

#[test]
fn failover_kills_leaders_and_times_the_first_accepted_write() {
    let reports = loom_bench(&["failover", "--count", "2"]);
    let r = &reports[0];
    assert_eq!((r["count"].as_u64(), r["errors"].as_u64()), (Some(2), Some(0)), "{r}");
    // An election cannot finish before the survivors' timeouts run out: a figure under 100 ms
    // would mean no leader was killed.
    let p50 = r["p50_ms"].as_f64().unwrap_or_default();
    assert!((100.0..30_000.0).contains(&p50), "{r}");
}

#[test]
fn history_times_a_follower_restart_on_the_filled_cluster() {
    let reports = loom_bench(&["history", "--count", "60", "--workflows", "3", "--samples", "5"]);
    let r = &reports[0];
    assert_eq!(
        (r["filled"].as_f64(), r["count"].as_u64(), r["errors"].as_u64()),
        (Some(60.0), Some(5), Some(0)),
        "{r}"
    );
    assert!(r["restart_to_ready_ms"].as_f64().is_some_and(|v| v > 0.0), "{r}");
}
