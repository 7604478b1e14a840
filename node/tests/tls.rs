//! TLS end to end: three nodes serving HTTPS with certificates from a private CA, replicating and
//! forwarding writes to each other over TLS, a worker connecting over TLS, and clients that do
//! not trust the CA, or speak plain HTTP, refused.

use std::time::Duration;

use linkloom_harness::pki::TestPki;
use linkloom_harness::worker::{example_worker_binary, WorkerProcess};
use linkloom_harness::{Cluster, ClusterOptions};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_loom-node");
const ADMIN: &str = "tls-admin-token-0123456789abcdef";

#[test]
fn a_cluster_serves_and_replicates_over_tls() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = TestPki::generate(dir.path()).expect("certificates");
    let options = ClusterOptions::new(3)
        .env("LOOM_ADMIN_TOKEN", ADMIN)
        .tls(&pki.node_cert, &pki.node_key, &pki.ca_cert)
        .expect("TLS options");
    let mut cluster = Cluster::start(BIN, options).expect("start cluster");
    // Ready means a leader was elected: votes and appends travelled over TLS.
    let leader = cluster.wait_ready(Duration::from_secs(30)).expect("ready over TLS");
    let follower = cluster.ids().into_iter().find(|id| *id != leader).expect("a follower");
    assert!(cluster.url(follower).starts_with("https://"));

    // A write through a follower is forwarded to the leader over TLS, and reaches every node.
    cluster
        .put_workflow(
            follower,
            "id: tls-wf\ntasks:\n  - id: job\n    type: worker\n    queue: tls\n    input: {n: 3}\n",
        )
        .expect("write through a follower");
    for id in cluster.ids() {
        cluster
            .wait_for("the workflow on every node", Duration::from_secs(30), |c| {
                c.get_json(id, "/api/v1/workflows/tls-wf?consistency=stale").is_ok_and(|(status, _)| status == 200)
            })
            .unwrap();
    }

    // A worker connects over TLS, trusting the CA, and runs a task.
    let tokens = cluster
        .post(leader, "/api/v1/tokens", "application/json", json!({"name": "w", "role": "worker"}).to_string())
        .unwrap()
        .1;
    let worker_token = tokens["token"].as_str().expect("token").to_string();
    let binary = example_worker_binary().expect("the worker example is built");
    let ca = pki.ca_cert.display().to_string();
    let mut worker = WorkerProcess::start_with_env(
        &binary,
        &cluster.url(follower),
        "tls",
        "tls-worker",
        1,
        cluster.dir(),
        &[("LOOM_TOKEN", worker_token.as_str()), ("LOOM_TLS_CA", ca.as_str())],
    )
    .expect("start worker");
    let execution = cluster.trigger(leader, "tls-wf", json!({})).unwrap();
    let done = cluster.wait_execution(leader, &execution, Duration::from_secs(60)).unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["tasks"][0]["output"]["n"], 3);
    let _ = worker.kill();

    // Clients that do not trust the CA, or that speak plain HTTP, get nothing.
    linkloom_harness::install_crypto_provider();
    let stranger = reqwest::blocking::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let refused = stranger.get(format!("{}/healthz", cluster.url(leader))).send();
    assert!(refused.is_err_and(|e| e.is_connect() || e.is_request()), "an untrusted certificate was accepted");
    let plain = cluster.url(leader).replace("https://", "http://");
    let answer = stranger.get(format!("{plain}/healthz")).send();
    assert!(answer.is_err() || answer.is_ok_and(|r| !r.status().is_success()), "plain HTTP was served");
}
