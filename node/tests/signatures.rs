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
