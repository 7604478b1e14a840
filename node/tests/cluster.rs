//! A real three-node cluster of `loom-node` processes on 127.0.0.1: writes through followers,
//! SIGKILL of the leader, restarts, snapshots, membership changes.

use std::collections::BTreeSet;
use std::time::Duration;

use linkloom_harness::{Cluster, ClusterOptions};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_loom-node");
const READY: Duration = Duration::from_secs(30);

fn workflow_yaml(id: &str) -> String {
    format!("id: {id}\ntasks:\n  - {{id: t, type: worker, queue: q}}\n")
}

/// Puts a workflow through node `via`; returns its version if acknowledged.
fn put(cluster: &Cluster, via: u64, id: &str) -> Option<u64> {
    match cluster.post(via, "/api/v1/workflows", "application/yaml", workflow_yaml(id)) {
        Ok((201, body)) => body["version"].as_u64(),
        _ => None,
    }
}

/// Workflow ids a node has applied locally (stale read: what this node itself holds).
fn local_ids(cluster: &Cluster, id: u64) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/workflows?consistency=stale&limit=500&cursor={c}"),
            None => "/api/v1/workflows?consistency=stale&limit=500".to_string(),
        };
        let Ok((200, page)) = cluster.get_json(id, &path) else {
            return ids;
        };
        for item in page["items"].as_array().into_iter().flatten() {
            if let Some(wf) = item["id"].as_str() {
                ids.insert(wf.to_string());
            }
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return ids,
        }
    }
}

fn followers(cluster: &Cluster, leader: u64) -> Vec<u64> {
    cluster.ids().into_iter().filter(|id| *id != leader).collect()
}

#[test]
fn acknowledged_writes_survive_killing_the_leader() {
    let mut cluster = Cluster::start(BIN, ClusterOptions::new(3)).expect("start cluster");
    let leader = cluster.wait_ready(READY).expect("cluster ready");
    let via = followers(&cluster, leader)[0];

    let mut acknowledged = BTreeSet::new();
    for i in 0..20 {
        let id = format!("before-{i}");
        assert!(put(&cluster, via, &id).is_some(), "write through follower {via} failed");
        acknowledged.insert(id);
    }

    cluster.kill(leader).expect("SIGKILL the leader");
    let survivor = followers(&cluster, leader).into_iter().find(|id| *id != via).unwrap_or(via);
    // The first write may wait for the election; the node retries internally (bounded).
    for i in 0..20 {
        let id = format!("after-{i}");
        let version = put(&cluster, survivor, &id);
        assert!(version.is_some(), "write through survivor {survivor} failed\n{}", cluster.logs_tail(30));
        acknowledged.insert(id);
    }
    let new_leader = cluster.leader_seen_by(survivor).expect("a new leader");
    assert_ne!(new_leader, leader);

    cluster.restart(leader).expect("restart the killed node");
    cluster
        .wait_for("the restarted node to hold every acknowledged write", READY, |c| {
            local_ids(c, leader).is_superset(&acknowledged)
        })
        .expect("restarted node caught up");
    for id in cluster.ids() {
        assert!(local_ids(&cluster, id).is_superset(&acknowledged), "node {id} is missing writes");
    }
}

#[test]
fn a_node_restarts_from_its_data_dir() {
    let mut cluster = Cluster::start(BIN, ClusterOptions::new(1)).expect("start");
    cluster.wait_ready(READY).expect("ready");
    for i in 0..10 {
        let answer = cluster.post(1, "/api/v1/workflows", "application/yaml", workflow_yaml("kept"));
        assert!(matches!(&answer, Ok((201, body)) if body["version"] == i + 1), "put {}: {answer:?}", i + 1);
    }
    // SIGKILL right after the acknowledgement: fsync before ack means nothing is lost.
    cluster.kill(1).unwrap();
    cluster.restart(1).unwrap();
    cluster.wait_ready(READY).expect("ready after SIGKILL");
    let (status, wf) = cluster.get_json(1, "/api/v1/workflows/kept").unwrap();
    assert_eq!(status, 200);
    assert_eq!(wf["version"], 10);

    // A clean stop with SIGTERM exits 0 and restarts just as well.
    assert_eq!(cluster.terminate(1, Duration::from_secs(10)).unwrap(), Some(0));
    cluster.restart(1).unwrap();
    cluster.wait_ready(READY).expect("ready after SIGTERM");
    assert_eq!(put(&cluster, 1, "kept"), Some(11));
}

#[test]
fn a_lagging_node_catches_up_by_snapshot_and_logs_stay_bounded() {
    let options = ClusterOptions::new(3).env("LOOM_SNAPSHOT_LOGS", 20).env("LOOM_LOGS_KEPT_AFTER_SNAPSHOT", 0);
    let mut cluster = Cluster::start(BIN, options).expect("start");
    let leader = cluster.wait_ready(READY).expect("ready");
    let lagging = followers(&cluster, leader)[1];
    cluster.kill(lagging).unwrap();

    let mut written = BTreeSet::new();
    for i in 0..150 {
        let id = format!("wf-{i}");
        assert!(put(&cluster, leader, &id).is_some());
        written.insert(id);
    }
    cluster
        .wait_for("the leader to snapshot and purge its log", READY, |c| {
            c.get_json(leader, "/api/v1/cluster").is_ok_and(|(_, v)| {
                v["purged_index"].as_u64().unwrap_or(0) > 100
                    && v["log_entries_on_disk"].as_u64().unwrap_or(u64::MAX) < 60
            })
        })
        .expect("leader purged");
    // Any node shows the leader's view of the lag: the dead member is 150+ entries behind, the
    // live one in step (asked through the live follower, which forwards to the leader).
    let via = followers(&cluster, leader)[0];
    let (_, view) = cluster.get_json(via, "/api/v1/cluster").unwrap();
    let behind = |view: &Value, id: u64| {
        view["replication"]["members"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["id"] == id))
            .map(|m| m["behind"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(view["replication"]["leader_id"], leader, "{view}");
    assert!(behind(&view, lagging).as_u64().unwrap_or(0) >= 150, "{view}");
    assert_eq!(behind(&view, leader), 0, "{view}");

    cluster.restart(lagging).unwrap();
    cluster
        .wait_for("the lagging node to install a snapshot and hold every write", READY, |c| {
            let snapshot = c.get_json(lagging, "/api/v1/cluster").ok().and_then(|(_, v)| v["snapshot_index"].as_u64());
            snapshot.unwrap_or(0) > 100 && local_ids(c, lagging).is_superset(&written)
        })
        .expect("caught up by snapshot");
    assert!(cluster.log_text(lagging).contains("snapshot installed"), "the lagging node never installed a snapshot");
    cluster
        .wait_for("the caught-up node to show no lag", READY, |c| {
            c.get_json(lagging, "/api/v1/cluster").is_ok_and(|(_, v)| behind(&v, lagging) == 0)
        })
        .expect("lag back to zero");
}

#[test]
fn membership_changes_add_promote_and_remove() {
    let mut cluster = Cluster::start(BIN, ClusterOptions::new(3)).expect("start");
    let leader = cluster.wait_ready(READY).expect("ready");
    let via = followers(&cluster, leader)[0];
    put(&cluster, via, "before-join").expect("write");
    let new_id = cluster.add_joining_node().expect("start a joining node");
    let addr = format!("127.0.0.1:{}", cluster.node(new_id).port);
    let body = serde_json::json!({"id": new_id, "addr": addr}).to_string();
    let (status, answer) = cluster.post(via, "/api/v1/cluster/members", "application/json", body).unwrap();
    assert_eq!(status, 201, "{answer}");
    let (status, answer) =
        cluster.post(via, &format!("/api/v1/cluster/members/{new_id}/promote"), "application/json", "").unwrap();
    assert_eq!(status, 200, "{answer}");
    let voters =
        |v: &Value| v["members"].as_array().map(|m| m.iter().filter(|m| m["voter"] == true).count()).unwrap_or(0);
    cluster
        .wait_for("four voters", READY, |c| c.get_json(new_id, "/api/v1/cluster").is_ok_and(|(_, v)| voters(&v) == 4))
        .unwrap();
    assert!(local_ids(&cluster, new_id).contains("before-join"));

    let response =
        cluster.http().delete(format!("{}/api/v1/cluster/members/{new_id}", cluster.url(via))).send().unwrap();
    assert_eq!(response.status().as_u16(), 200);
    cluster
        .wait_for("three members again", READY, |c| {
            c.get_json(via, "/api/v1/cluster").is_ok_and(|(_, v)| v["members"].as_array().map(Vec::len) == Some(3))
        })
        .unwrap();
}

#[test]
fn a_learner_that_never_caught_up_is_not_promoted() {
    let mut cluster = Cluster::start(BIN, ClusterOptions::new(1)).expect("start");
    let node = cluster.wait_ready(READY).expect("ready");
    // Nothing listens there: the learner never receives a byte of the log.
    let body = serde_json::json!({"id": 7, "addr": "127.0.0.1:9"}).to_string();
    let (status, answer) = cluster.post(node, "/api/v1/cluster/members", "application/json", body).unwrap();
    assert_eq!(status, 201, "{answer}");
    let (status, answer) = cluster.post(node, "/api/v1/cluster/members/7/promote", "application/json", "").unwrap();
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["error"]["code"], "membership_conflict");
    assert!(answer["error"]["message"].as_str().unwrap_or_default().contains("node 7 has not received"), "{answer}");
    // Still a one-voter cluster: writes commit at once.
    let started = std::time::Instant::now();
    put(&cluster, node, "after-refused-promotion").expect("write");
    assert!(started.elapsed() < Duration::from_secs(2), "a write took {:?}", started.elapsed());
    let (_, view) = cluster.get_json(node, "/api/v1/cluster").unwrap();
    let voters: Vec<&Value> = view["members"].as_array().unwrap().iter().filter(|m| m["voter"] == true).collect();
    assert_eq!(voters.len(), 1, "{view}");
}

#[test]
fn concurrent_writes_are_batched_and_each_gets_its_own_answer() {
    let mut cluster = Cluster::start(BIN, ClusterOptions::new(3)).expect("start");
    let leader = cluster.wait_ready(READY).expect("ready");
    let via = followers(&cluster, leader)[0];
    let cluster = &cluster;
    // 8 threads x 25 puts of one workflow: every version 1..=200 must be answered exactly once.
    let versions: Vec<u64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(move || (0..25).map(|_| put(cluster, via, "contended").expect("put")).collect::<Vec<_>>())
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("thread")).collect()
    });
    let unique: BTreeSet<u64> = versions.iter().copied().collect();
    assert_eq!(versions.len(), 200);
    assert_eq!(unique, (1..=200).collect::<BTreeSet<u64>>(), "answers were lost, duplicated or misrouted");
    let (_, wf) = cluster.get_json(leader, "/api/v1/workflows/contended").unwrap();
    assert_eq!(wf["version"], 200);
}
