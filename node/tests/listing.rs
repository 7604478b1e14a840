//! Listing executions through the API: both orders, filters, cursors that walk every page once,
//! and the errors a bad order or a foreign cursor get.

use std::time::Duration;

use chrono::DateTime;
use linkloom_harness::{url_escape, Cluster, ClusterOptions};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_loom-node");
const READY: Duration = Duration::from_secs(30);

/// Every item of a listing, page by page (`limit` per page), and how many pages it took.
fn walk(cluster: &Cluster, via: u64, query: &str, limit: usize) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            None => format!("/api/v1/executions?{query}&limit={limit}"),
            Some(c) => format!("/api/v1/executions?{query}&limit={limit}&cursor={}", url_escape(c)),
        };
        let (status, page) = cluster.get_json(via, &path).expect("list executions");
        assert_eq!(status, 200, "{path}: {page}");
        pages += 1;
        let got = page["items"].as_array().cloned().unwrap_or_default();
        assert!(got.len() <= limit, "{path} gave {} items", got.len());
        items.extend(got);
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return (items, pages),
        }
        assert!(pages < 100, "{query}: cursors never ended");
    }
}

fn ids(items: &[Value]) -> Vec<String> {
    items.iter().map(|e| e["id"].as_str().expect("id").to_string()).collect()
}

fn created_ms(e: &Value) -> i64 {
    let text = e["created_at"].as_str().expect("created_at");
    DateTime::parse_from_rfc3339(text).expect("RFC 3339").timestamp_millis()
}

#[test]
fn executions_list_newest_first_across_workflows_and_pages_by_cursor() {
    let mut cluster = Cluster::start(BIN, ClusterOptions::new(3)).expect("start cluster");
    let leader = cluster.wait_ready(READY).expect("ready");
    let via = cluster.ids().into_iter().find(|id| *id != leader).expect("a follower");
    // Worker tasks with no worker: the executions stay queued, so nothing changes under the reads.
    for w in ["alpha", "beta"] {
        cluster.put_workflow(via, &format!("id: {w}\ntasks:\n  - {{id: t, type: worker, queue: nobody}}\n")).unwrap();
    }
    // Interleaved, so id order (workflow first) and creation order differ.
    let mut triggered = Vec::new();
    for i in 0..7 {
        let w = if i % 2 == 0 { "alpha" } else { "beta" };
        triggered.push(cluster.trigger(via, w, serde_json::json!({"n": i})).unwrap());
    }

    let (by_id, _) = walk(&cluster, via, "consistency=linearizable", 100);
    let (newest, pages) = walk(&cluster, via, "order=newest", 2);
    assert_eq!(pages, 4, "7 executions at 2 a page");
    let mut expected = by_id.clone();
    expected.sort_by(|a, b| (created_ms(b), b["id"].as_str()).cmp(&(created_ms(a), a["id"].as_str())));
    assert_eq!(ids(&newest), ids(&expected), "newest first, each once, across pages");
    assert_ne!(ids(&newest), ids(&by_id).into_iter().rev().collect::<Vec<_>>(), "the orders differ here");
    // Triggered one after another through Raft: creation order is trigger order.
    assert_eq!(ids(&newest), triggered.iter().rev().cloned().collect::<Vec<_>>());

    // Filters apply before the order; a follower answers the same.
    let (alpha, _) = walk(&cluster, leader, "order=newest&workflow=alpha", 3);
    let alpha_expected: Vec<String> = triggered.iter().rev().filter(|id| id.starts_with("alpha:")).cloned().collect();
    assert_eq!(ids(&alpha), alpha_expected);
    let (queued, _) = walk(&cluster, via, "order=newest&status=queued&trigger=manual", 5);
    assert_eq!(queued.len(), 7);
    let (none, pages) = walk(&cluster, via, "order=newest&status=failed", 5);
    assert!(none.is_empty());
    assert_eq!(pages, 1);

    // `order=id` is the default and keeps its own cursor.
    let (explicit, _) = walk(&cluster, via, "order=id", 3);
    assert_eq!(ids(&explicit), ids(&by_id));

    for (path, names) in [
        ("/api/v1/executions?order=oldest", "order `oldest`"),
        ("/api/v1/executions?order=newest&cursor=alpha:20260101", "cursor `alpha:20260101`"),
        ("/api/v1/executions?order=newest&cursor=12345", "cursor `12345`"),
    ] {
        let (status, body) = cluster.get_json(via, path).unwrap();
        assert_eq!(status, 400, "{path}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(names), "{path}: {message}");
    }
}
