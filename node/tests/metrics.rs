//! `/metrics` scraped from every node of a real cluster while scheduled and manual executions
//! run, and parsed as the Prometheus text format: every sample belongs to a declared family,
//! histogram buckets are cumulative and end at the count, and the numbers agree with what ran.

use std::collections::BTreeMap;
use std::time::Duration;

use linkloom_harness::{Cluster, ClusterOptions};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_loom-node");
const READY: Duration = Duration::from_secs(30);

/// One parsed sample: family name, labels, value.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the text format strictly enough to catch malformed output; panics naming the line.
fn parse(text: &str) -> (BTreeMap<String, String>, Vec<Sample>) {
    let mut types = BTreeMap::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or_else(|| panic!("bad TYPE line: {line}"));
            assert!(["counter", "gauge", "histogram"].contains(&kind), "unknown type in {line}");
            assert!(types.insert(name.to_string(), kind.to_string()).is_none(), "family declared twice: {line}");
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(!line.starts_with('#') && !line.trim().is_empty(), "unexpected line: {line:?}");
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value: {line}"));
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("unclosed labels: {line}"));
                let mut labels = BTreeMap::new();
                for pair in body.split("\",").filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once("=\"").unwrap_or_else(|| panic!("bad label in {line}"));
                    labels.insert(k.to_string(), v.trim_end_matches('"').to_string());
                }
                (name.to_string(), labels)
            }
        };
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "bad metric name: {line}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| types.get(*f).is_some_and(|t| t == "histogram")))
            .unwrap_or(&name)
            .to_string();
        assert!(types.contains_key(&family), "sample before its TYPE: {line}");
        samples.push(Sample { name, labels, value });
    }
    (types, samples)
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
        .map(|s| s.value)
}

/// A series' labels other than `le`, in order.
type LabelSet = Vec<(String, String)>;

/// Buckets of each histogram series never decrease, and `+Inf` equals `_count`.
fn check_histograms(types: &BTreeMap<String, String>, samples: &[Sample]) {
    for (family, _) in types.iter().filter(|(_, t)| *t == "histogram") {
        let mut series: BTreeMap<LabelSet, Vec<(f64, f64)>> = BTreeMap::new();
        for s in samples.iter().filter(|s| s.name == format!("{family}_bucket")) {
            let le = s.labels.get("le").expect("bucket has le");
            let bound = if le == "+Inf" { f64::INFINITY } else { le.parse().expect("numeric le") };
            let key: LabelSet =
                s.labels.iter().filter(|(k, _)| *k != "le").map(|(k, v)| (k.clone(), v.clone())).collect();
            series.entry(key).or_default().push((bound, s.value));
        }
        for (key, buckets) in series {
            assert!(buckets.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1), "{family} {key:?}: {buckets:?}");
            let labels: Vec<(&str, &str)> = key.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let count = value(samples, &format!("{family}_count"), &labels).expect("count");
            assert_eq!(buckets.last().map(|b| b.1), Some(count), "{family} {key:?}: +Inf is the count");
        }
    }
}

#[test]
fn metrics_are_well_formed_and_follow_the_work() {
    let mut cluster = Cluster::start(BIN, ClusterOptions::new(3)).expect("start cluster");
    let leader = cluster.wait_ready(READY).expect("ready");
    cluster
        .put_workflow(
            leader,
            "id: ticking\nschedule: \"* * * * * *\"\ncatchup: none\ntasks:\n  - id: a\n    type: shell\n    command: [\"true\"]\n",
        )
        .unwrap();
    cluster
        .put_workflow(leader, "id: manual\ntasks:\n  - id: a\n    type: shell\n    command: [\"true\"]\n  - id: b\n    type: shell\n    command: [\"true\"]\n    depends_on: [a]\n")
        .unwrap();
    let runs: Vec<String> = (0..5).map(|_| cluster.trigger(leader, "manual", json!({})).unwrap()).collect();
    // Scrape while work is going on, not only after.
    let (_, during) = cluster.get_json(leader, "/metrics").unwrap();
    let during = during.as_str().expect("text").to_string();
    parse(&during);
    for id in &runs {
        let done = cluster.wait_execution(leader, id, Duration::from_secs(60)).unwrap();
        assert_eq!(done["status"], "succeeded", "{done}");
    }
    cluster
        .wait_for("two scheduled executions to succeed", Duration::from_secs(30), |c| {
            c.get_json(leader, "/api/v1/executions?workflow=ticking&status=succeeded")
                .is_ok_and(|(_, v)| v["items"].as_array().is_some_and(|i| i.len() >= 2))
        })
        .unwrap();
    cluster.post(leader, "/api/v1/workflows/ticking/pause", "application/json", "").unwrap();

    let mut dispatched = 0.0;
    let mut ticks = 0.0;
    for id in cluster.ids() {
        let (status, text) = cluster.get_json(id, "/metrics").unwrap();
        assert_eq!(status, 200);
        let text = text.as_str().expect("metrics are text, not JSON").to_string();
        let (types, samples) = parse(&text);
        check_histograms(&types, &samples);
        for family in [
            "loom_raft_term",
            "loom_raft_is_leader",
            "loom_raft_leader_changes_total",
            "loom_raft_commit_index",
            "loom_raft_applied_index",
            "loom_raft_append_latency_seconds",
            "loom_raft_propose_latency_seconds",
            "loom_executions",
            "loom_attempts",
            "loom_dispatch_latency_seconds",
            "loom_schedule_tick_lateness_seconds",
            "loom_worker_connections",
            "loom_actor_restarts_total",
            "loom_http_requests_total",
            "loom_http_request_duration_seconds",
            "process_resident_memory_bytes",
            "process_open_fds",
        ] {
            assert!(types.contains_key(family), "node {id} lacks {family}");
        }
        // Each node is its own process: the figure is that process's, between a few MiB and the
        // machine's memory.
        let rss = value(&samples, "process_resident_memory_bytes", &[]).unwrap();
        assert!((1024.0 * 1024.0..64.0 * 1024.0 * 1024.0 * 1024.0).contains(&rss), "node {id}: rss {rss}");
        assert!(value(&samples, "loom_raft_term", &[]).unwrap() >= 1.0);
        assert_eq!(value(&samples, "loom_raft_is_leader", &[]), Some(if id == leader { 1.0 } else { 0.0 }));
        assert!(value(&samples, "loom_raft_commit_index", &[]).unwrap() > 10.0, "node {id}");
        assert!(value(&samples, "loom_raft_append_latency_seconds_count", &[]).unwrap() > 0.0);
        let succeeded = value(&samples, "loom_executions", &[("status", "succeeded")]).unwrap();
        assert!(succeeded >= 7.0, "node {id} sees {succeeded} succeeded executions");
        assert!(value(&samples, "loom_attempts", &[("status", "succeeded")]).unwrap() >= 12.0);
        dispatched += value(&samples, "loom_dispatch_latency_seconds_count", &[]).unwrap();
        ticks += value(&samples, "loom_schedule_tick_lateness_seconds_count", &[]).unwrap();
        if id == leader {
            let triggers = value(
                &samples,
                "loom_http_requests_total",
                &[("method", "POST"), ("route", "/api/v1/workflows/{id}/trigger"), ("status", "202")],
            );
            assert_eq!(triggers, Some(5.0), "{text}");
        }
    }
    // Every attempt started was measured by the node that started it.
    assert!(dispatched >= 12.0, "dispatch latency observations: {dispatched}");
    assert!(ticks >= 2.0, "tick lateness observations: {ticks}");
}

#[test]
fn retention_is_a_cluster_limit_enforced_as_executions_finish_and_shown_in_metrics() {
    let mut cluster = Cluster::start(BIN, ClusterOptions::new(3)).expect("start cluster");
    let leader = cluster.wait_ready(READY).expect("ready");
    let follower = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    let (status, limits) =
        cluster.put_json(follower, "/api/v1/cluster/limits", &json!({"max_kept_executions_per_workflow": 2})).unwrap();
    assert_eq!((status, limits["max_kept_executions_per_workflow"].as_u64()), (200, Some(2)), "{limits}");
    assert_eq!(limits["ceilings"]["max_kept_executions"], 10_000_000, "{limits}");
    cluster.put_workflow(leader, "id: kept\ntasks:\n  - id: a\n    type: shell\n    command: [\"true\"]\n").unwrap();
    let mut runs = Vec::new();
    for _ in 0..5 {
        let id = cluster.trigger(follower, "kept", json!({})).unwrap();
        cluster.wait_execution(follower, &id, Duration::from_secs(60)).unwrap();
        runs.push(id);
    }
    // The newest two are kept on every node, the older three are gone: no prune pass needed.
    for id in cluster.ids() {
        let (_, page) = cluster.get_json(id, "/api/v1/executions?workflow=kept&order=newest").unwrap();
        let kept: Vec<&str> = page["items"].as_array().unwrap().iter().filter_map(|e| e["id"].as_str()).collect();
        assert_eq!(kept, [runs[4].as_str(), runs[3].as_str()], "node {id}");
        let (status, gone) = cluster.get_json(id, &format!("/api/v1/executions/{}", runs[0])).unwrap();
        assert_eq!(status, 404, "{gone}");
        let (_, text) = cluster.get_json(id, "/metrics").unwrap();
        let (_, samples) = parse(text.as_str().unwrap());
        let limit = value(&samples, "loom_retention_limit", &[("limit", "max_kept_executions_per_workflow")]);
        assert_eq!(limit, Some(2.0), "node {id}");
        assert!(value(&samples, "loom_kept_log_bytes", &[]).is_some(), "node {id}");
        assert_eq!(value(&samples, "loom_executions", &[("status", "succeeded")]), Some(2.0), "node {id}");
    }
}
