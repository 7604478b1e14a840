//! Signed task calls on a real cluster: with `LOOM_SIGNING_SECRET` every HTTP task request
//! carries `X-Loom-Signature: t=..,kid=..,v1=..`, which verifies against the method, the full URL,
//! the `Idempotency-Key` and the raw body with the secret, and fails when any of them was changed,
//! for another secret, or for a stale timestamp.

use std::time::Duration;

use linkloom_harness::backend::{Backend, RawRequest};
use linkloom_harness::{Cluster, ClusterOptions};
use linkloom_wire::signature::{verify, SignatureError, Signed};
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
    assert!(header.contains(",kid=default,"), "the unnamed secret signs as `default`: {header}");
    let url = format!("{}{}", backend.url, request.path_and_query);
    let signed = as_sent(request, &url);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let keys: [(&str, &[u8]); 1] = [("default", b"s3cret")];
    let t = verify(&keys, header, &signed, now, 300).expect("the signature verifies");
    assert!((now - t).abs() < 60, "signed at {t}, now {now}");

    let mut tampered = request.body.to_vec();
    tampered.extend_from_slice(b" ");
    let mismatch = Err(SignatureError::Mismatch);
    assert_eq!(verify(&keys, header, &Signed { body: &tampered, ..signed }, now, 300), mismatch);
    assert_eq!(verify(&keys, header, &Signed { method: "PUT", ..signed }, now, 300), mismatch);
    let elsewhere = format!("{}/refund", backend.url);
    assert_eq!(verify(&keys, header, &Signed { url: &elsewhere, ..signed }, now, 300), mismatch);
    assert_eq!(verify(&keys, header, &Signed { idempotency_key: "other/t/1", ..signed }, now, 300), mismatch);
    assert_eq!(verify(&[("default", b"other")], header, &signed, now, 300), mismatch);
    assert!(matches!(verify(&keys, header, &signed, t + 301, 300), Err(SignatureError::Stale { .. })));
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
    let url = format!("{}{}", backend.url, request.path_and_query);
    let signed = as_sent(&request, &url);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    // A backend rotating keys holds several; the header's `kid` picks the workflow's.
    let rotating: [(&str, &[u8]); 3] =
        [("default", b"cluster-wide"), ("billing-old", b"retired"), ("billing", b"b1lling-key")];
    verify(&rotating, header, &signed, now, 300).expect("signed with the workflow's key");
    assert_eq!(verify(&[("billing", b"cluster-wide")], header, &signed, now, 300), Err(SignatureError::Mismatch));
    assert_eq!(
        verify(&[("default", b"b1lling-key")], header, &signed, now, 300),
        Err(SignatureError::UnknownKey("billing".into()))
    );
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

/// What the node signed, as the backend received it.
fn as_sent<'a>(request: &'a RawRequest, url: &'a str) -> Signed<'a> {
    Signed {
        method: &request.method,
        url,
        idempotency_key: request.idempotency_key.as_deref().unwrap_or_default(),
        body: &request.body,
    }
}
