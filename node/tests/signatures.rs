//! Signed task calls on a real cluster: with `LOOM_SIGNING_SECRET` every HTTP task request
//! carries `X-Loom-Signature`, which verifies against the raw body with the secret, and fails for
//! a tampered body, another secret, or a stale timestamp.

use std::time::Duration;

use linkloom_core::signature::{verify, SignatureError};
use linkloom_harness::backend::Backend;
use linkloom_harness::{Cluster, ClusterOptions};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_loom-node");

#[test]
fn task_requests_are_signed_with_the_cluster_secret() {
    let backend = Backend::start().expect("backend");
    let mut cluster =
        Cluster::start(BIN, ClusterOptions::new(3).env("LOOM_SIGNING_SECRET", "s3cret")).expect("start cluster");
    let leader = cluster.wait_ready(Duration::from_secs(30)).expect("ready");
    cluster
        .put_workflow(
            leader,
            &format!("id: signed\ntasks:\n  - {{id: t, type: http, url: {}/echo, input: {{n: 1}}}}\n", backend.url),
        )
        .unwrap();
    let id = cluster.trigger(leader, "signed", json!({})).unwrap();
    let done = cluster.wait_execution(leader, &id, Duration::from_secs(30)).unwrap();
    assert_eq!(done["status"], "succeeded", "{done:#}");

    let raw = backend.raw();
    let request = raw.iter().find(|r| r.path == "/echo").expect("the backend was called");
    let header = request.signature.as_deref().expect("X-Loom-Signature is sent");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let t = verify(b"s3cret", header, &request.body, now, 300).expect("the signature verifies");
    assert!((now - t).abs() < 60, "signed at {t}, now {now}");

    let mut tampered = request.body.to_vec();
    tampered.extend_from_slice(b" ");
    assert_eq!(verify(b"s3cret", header, &tampered, now, 300), Err(SignatureError::Mismatch));
    assert_eq!(verify(b"other", header, &request.body, now, 300), Err(SignatureError::Mismatch));
    assert!(matches!(verify(b"s3cret", header, &request.body, t + 301, 300), Err(SignatureError::Stale { .. })));
    // The secret never reaches the logs.
    for id in cluster.ids() {
        assert!(!cluster.log_text(id).contains("s3cret"), "node {id} logged the secret");
    }
}

#[test]
fn a_workflow_can_choose_a_named_signing_key() {
    let backend = Backend::start().expect("backend");
    let mut cluster = Cluster::start(
        BIN,
        ClusterOptions::new(1)
            .env("LOOM_SIGNING_SECRET", "cluster-wide")
            .env("LOOM_SIGNING_KEYS", "billing=b1lling-key,reports=r3ports-key"),
    )
    .expect("start cluster");
    let node = cluster.wait_ready(Duration::from_secs(30)).expect("ready");
    let yaml = |id: &str, key: &str, path: &str| {
        format!("id: {id}\nsigning_key: {key}\ntasks:\n  - {{id: t, type: http, url: {}/{path}}}\n", backend.url)
    };
    cluster.put_workflow(node, &yaml("bill", "billing", "echo")).unwrap();
    cluster.put_workflow(node, &yaml("ghost", "nowhere", "slow/1")).unwrap();
    let billed = cluster.trigger(node, "bill", json!({})).unwrap();
    assert_eq!(cluster.wait_execution(node, &billed, Duration::from_secs(30)).unwrap()["status"], "succeeded");
    let request = backend.raw().into_iter().find(|r| r.path == "/echo").expect("called");
    let header = request.signature.as_deref().expect("signed");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    verify(b"b1lling-key", header, &request.body, now, 300).expect("signed with the workflow's key");
    assert_eq!(verify(b"cluster-wide", header, &request.body, now, 300), Err(SignatureError::Mismatch));
    // The key's name is stored and shown; its secret is not.
    let (_, workflow) = cluster.get_json(node, "/api/v1/workflows/bill").unwrap();
    assert_eq!(workflow["spec"]["signing_key"], "billing");
    assert!(!workflow.to_string().contains("b1lling-key"));

    // A key this node does not have fails the task and names the key; nothing is sent unsigned.
    let ghost = cluster.trigger(node, "ghost", json!({})).unwrap();
    let done = cluster.wait_execution(node, &ghost, Duration::from_secs(30)).unwrap();
    assert_eq!(done["status"], "failed");
    let error = done["tasks"][0]["attempts"][0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("signing key `nowhere` is not configured"), "{done}");
    assert!(backend.raw().iter().all(|r| r.path != "/slow/1"), "an unsigned call went out");
}
