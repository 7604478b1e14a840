//! Authentication and authorization on real nodes: the full role × endpoint matrix (written out
//! here by hand from the issue, not read back from the route table, so a wrong entry in the table
//! fails), tokens created, listed and revoked on every node, the cluster secret on node-to-node
//! routes, the audit trail, a worker authenticating with a worker token, a worker bound to its
//! token (another worker token can neither speak for it nor replace it) and a token bound to its
//! queues, the per-token rate limit, and the warning of a node that runs open.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use linkloom_harness::worker::{example_worker_binary, WorkerProcess};
use linkloom_harness::{Cluster, ClusterOptions};
use reqwest::blocking::{Client, RequestBuilder};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_loom-node");
const READY: Duration = Duration::from_secs(30);
const RUN: Duration = Duration::from_secs(60);
const ADMIN: &str = "test-admin-token-0123456789abcdef";

/// Marks an operation only an attempt's callback token opens: any bearer gets past the door, but
/// no API token is an attempt's token, so the state machine refuses it (404 for an unknown
/// attempt, 409 for another's) and changes nothing.
const ATTEMPT_ONLY: &[&str] = &["attempt"];
/// A webhook's own secret, checked by its handler: no API token opens it or changes its answer.
const HOOK_ONLY: &[&str] = &["hook"];

/// Who may call each operation (by `operationId`), as the issue assigns them.
fn expected_roles() -> BTreeMap<&'static str, &'static [&'static str]> {
    const ANYONE: &[&str] = &["admin", "operator", "viewer", "worker", "publisher", "none"];
    const READ: &[&str] = &["admin", "operator", "viewer"];
    const OPERATE: &[&str] = &["admin", "operator"];
    const ADMIN_ONLY: &[&str] = &["admin"];
    const WORK: &[&str] = &["admin", "worker"];
    const PUBLISH: &[&str] = &["admin", "operator", "publisher"];
    BTreeMap::from([
        ("healthz", ANYONE),
        ("readyz", ANYONE),
        ("openapi", ANYONE),
        ("apiDocs", ANYONE),
        ("metrics", READ),
        ("showCluster", READ),
        ("addMember", ADMIN_ONLY),
        ("removeMember", ADMIN_ONLY),
        ("promoteMember", ADMIN_ONLY),
        ("showLimits", READ),
        ("setLimits", ADMIN_ONLY),
        ("saveSnapshot", ADMIN_ONLY),
        ("createToken", ADMIN_ONLY),
        ("listTokens", ADMIN_ONLY),
        ("revokeToken", ADMIN_ONLY),
        ("putWorkflow", OPERATE),
        ("listWorkflows", READ),
        ("showWorkflow", READ),
        ("deleteWorkflow", OPERATE),
        ("listWorkflowVersions", READ),
        ("showWorkflowVersion", READ),
        ("triggerWorkflow", OPERATE),
        ("pauseWorkflow", OPERATE),
        ("resumeWorkflow", OPERATE),
        ("backfillWorkflow", OPERATE),
        ("listExecutions", READ),
        ("showExecution", READ),
        ("cancelExecution", OPERATE),
        ("retryExecution", OPERATE),
        ("executionLogs", READ),
        // An attempt's own callback token, and no API token of any role (see ATTEMPT_ONLY).
        ("taskCallback", ATTEMPT_ONLY),
        ("taskHeartbeat", ATTEMPT_ONLY),
        ("listWorkers", READ),
        ("connectWorker", WORK),
        ("drainWorker", WORK),
        ("workerHeartbeat", WORK),
        ("workerComplete", WORK),
        ("workerRelease", WORK),
        ("listQueues", READ),
        ("publishEvent", PUBLISH),
        ("listEvents", READ),
        // The webhook's own secret, and no API token of any role (tested in events.rs).
        ("callWebhook", HOOK_ONLY),
        // Node-to-node: no token of any role opens it (the cluster secret does; tested apart).
        ("raftRpc", &[]),
    ])
}

fn secure_cluster(nodes: u64, extra: &[(&str, &str)]) -> (Cluster, u64) {
    let mut options = ClusterOptions::new(nodes).env("LOOM_ADMIN_TOKEN", ADMIN);
    for (k, v) in extra {
        options = options.env(k, v);
    }
    let mut cluster = Cluster::start(BIN, options).expect("start cluster");
    let leader = cluster.wait_ready(READY).expect("ready");
    (cluster, leader)
}

fn client() -> Client {
    linkloom_harness::install_crypto_provider();
    Client::builder().timeout(Duration::from_secs(15)).build().expect("client")
}

fn with_token(request: RequestBuilder, token: Option<&str>) -> RequestBuilder {
    match token {
        Some(t) => request.bearer_auth(t),
        None => request,
    }
}

/// Creates a token through `url` as the bootstrap admin; its secret.
fn create_token(http: &Client, url: &str, name: &str, role: &str) -> String {
    create_token_with(http, url, json!({"name": name, "role": role}))
}

/// Creates a token from a request body; its secret.
fn create_token_with(http: &Client, url: &str, request: Value) -> String {
    let (name, role) = (request["name"].as_str().unwrap_or_default(), request["role"].as_str().unwrap_or_default());
    let response =
        http.post(format!("{url}/api/v1/tokens")).bearer_auth(ADMIN).json(&request).send().expect("create token");
    assert_eq!(response.status().as_u16(), 201, "creating {name}");
    let body: Value = response.json().expect("json");
    assert_eq!((body["name"].as_str(), body["role"].as_str()), (Some(name), Some(role)));
    body["token"].as_str().expect("token shown once").to_string()
}

/// A concrete path for an OpenAPI path template, naming things that do not exist (no request
/// of the matrix may change anything that matters).
fn concrete(path: &str) -> String {
    path.replace("{id}", "99")
        .replace("{version}", "1")
        .replace("{attempt_id}", "999999")
        .replace("{worker_id}", "nobody")
        .replace("{name}", "nobody")
        .replace("{kind}", "vote")
        .replace("{workflow}", "nobody")
}

#[test]
fn every_role_reaches_exactly_its_endpoints() {
    let (cluster, leader) = secure_cluster(3, &[]);
    let http = client();
    let follower = cluster.ids().into_iter().find(|id| *id != leader).expect("a follower");
    let url = cluster.url(follower);
    let mut tokens: BTreeMap<&str, Option<String>> = BTreeMap::new();
    for role in ["operator", "viewer", "worker", "publisher"] {
        tokens.insert(role, Some(create_token(&http, &url, &format!("t-{role}"), role)));
    }
    tokens.insert("admin", Some(ADMIN.to_string()));
    tokens.insert("none", None);
    // Tokens are checked against each node's applied state: wait until this node knows them.
    cluster
        .wait_for("the new tokens to reach the follower", READY, |_| {
            let viewer = tokens["viewer"].as_deref();
            with_token(http.get(format!("{url}/api/v1/workflows")), viewer)
                .send()
                .is_ok_and(|r| r.status().as_u16() == 200)
        })
        .unwrap();

    let doc: Value = http.get(format!("{url}/api/openapi.json")).send().unwrap().json().unwrap();
    let expected = expected_roles();
    let mut seen = Vec::new();
    let mut failures = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("operations") {
            let id = operation["operationId"].as_str().expect("operationId");
            seen.push(id.to_string());
            let Some(allowed) = expected.get(id) else {
                failures.push(format!("{id}: a new endpoint; add it to expected_roles"));
                continue;
            };
            let documented: Vec<&str> =
                operation["x-loom-roles"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
            let documented_expected: Vec<&str> =
                allowed.iter().copied().filter(|r| *r != "none" && *r != "attempt" && *r != "hook").collect();
            if !allowed.contains(&"none") && documented != documented_expected {
                failures.push(format!("{id}: documents roles {documented:?}, expected {documented_expected:?}"));
            }
            for (role, token) in &tokens {
                let request = http.request(method.to_uppercase().parse().unwrap(), format!("{url}{}", concrete(path)));
                let request =
                    with_token(request, token.as_deref()).header("content-type", "application/json").body("{}");
                // Streams (a worker connecting) are not read; the status line is enough.
                let status = request.send().map(|r| r.status().as_u16()).unwrap_or(0);
                let want_in = allowed.contains(role);
                let ok = match (want_in, token) {
                    // No such webhook, whoever asks.
                    _ if *allowed == HOOK_ONLY => status == 404,
                    _ if *allowed == ATTEMPT_ONLY => match token {
                        None => status == 401,
                        Some(_) => matches!(status, 404 | 409),
                    },
                    (true, _) => !matches!(status, 401 | 403 | 0) && status < 500,
                    (false, None) => status == 401,
                    (false, Some(_)) => status == 403 || (id == "raftRpc" && status == 401),
                };
                if !ok {
                    failures.push(format!("{method} {path} ({id}) as {role}: {status}"));
                }
            }
        }
    }
    let mut missing: Vec<&&str> = expected.keys().filter(|id| !seen.iter().any(|s| s == **id)).collect();
    missing.sort();
    assert!(missing.is_empty(), "endpoints expected but not in the description: {missing:?}");
    assert!(failures.is_empty(), "{} wrong answers:\n{}", failures.len(), failures.join("\n"));

    // A wrong token is refused like a missing one, and says why.
    let wrong = http.get(format!("{url}/api/v1/workflows")).bearer_auth("loom_not-a-real-token").send().unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    assert!(wrong.headers().contains_key("www-authenticate"));
    let body: Value = wrong.json().unwrap();
    assert_eq!(body["error"]["code"], "invalid_token");
}

#[test]
fn tokens_are_listed_without_secrets_and_revocation_reaches_every_node() {
    let (cluster, leader) = secure_cluster(3, &[]);
    let http = client();
    let url = cluster.url(leader);
    let secret = create_token(&http, &url, "ci", "operator");
    // The same name twice is a conflict and changes nothing.
    let again =
        http.post(format!("{url}/api/v1/tokens")).bearer_auth(ADMIN).json(&json!({"name": "ci", "role": "viewer"}));
    assert_eq!(again.send().unwrap().status().as_u16(), 409);
    for (body, problem) in [
        (json!({"name": "bad name", "role": "viewer"}), "bad name"),
        (json!({"name": "x", "role": "root"}), "root"),
        (json!({"name": "admin", "role": "admin"}), "reserved"),
        (json!({"role": "viewer"}), "name"),
    ] {
        let response = http.post(format!("{url}/api/v1/tokens")).bearer_auth(ADMIN).json(&body).send().unwrap();
        assert_eq!(response.status().as_u16(), 400, "{body}");
        let error: Value = response.json().unwrap();
        assert!(error["error"]["message"].as_str().unwrap().contains(problem), "{error}");
    }
    let list: Value = http.get(format!("{url}/api/v1/tokens")).bearer_auth(ADMIN).send().unwrap().json().unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!((items[0]["name"].as_str(), items[0]["role"].as_str()), (Some("ci"), Some("operator")));
    assert_eq!(items[0]["created_by"], "admin");
    assert!(!list.to_string().contains(&secret[5..]), "a listing never shows a secret");

    // Works on every node, then revoked: refused on every node.
    for id in cluster.ids() {
        let node = cluster.url(id);
        cluster
            .wait_for("the token on every node", READY, |_| {
                http.get(format!("{node}/api/v1/executions"))
                    .bearer_auth(&secret)
                    .send()
                    .is_ok_and(|r| r.status() == 200)
            })
            .unwrap();
    }
    let revoke = http.delete(format!("{url}/api/v1/tokens/ci")).bearer_auth(ADMIN).send().unwrap();
    assert_eq!(revoke.status().as_u16(), 204);
    for id in cluster.ids() {
        let node = cluster.url(id);
        cluster
            .wait_for("the revocation on every node", READY, |_| {
                http.get(format!("{node}/api/v1/executions"))
                    .bearer_auth(&secret)
                    .send()
                    .is_ok_and(|r| r.status() == 401)
            })
            .unwrap();
    }
    let gone = http.delete(format!("{url}/api/v1/tokens/ci")).bearer_auth(ADMIN).send().unwrap();
    assert_eq!(gone.status().as_u16(), 404);
}

#[test]
fn peers_need_the_cluster_secret_and_writes_still_travel_through_followers() {
    let (cluster, leader) = secure_cluster(3, &[]);
    let http = client();
    for id in cluster.ids() {
        let response = http.post(format!("{}/raft/append", cluster.url(id))).body(vec![2u8, 0, 0]).send().unwrap();
        assert_eq!(response.status().as_u16(), 401, "node {id} accepted a stranger's append");
        let wrong = http
            .post(format!("{}/raft/vote", cluster.url(id)))
            .header("x-loom-cluster-secret", "guess")
            .body(vec![2u8])
            .send()
            .unwrap();
        assert_eq!(wrong.status().as_u16(), 401);
    }
    // A write through a follower is forwarded to the leader over the authenticated channel.
    let follower = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    cluster.put_workflow(follower, "id: fwd\ntasks:\n  - id: a\n    type: shell\n    command: [\"true\"]\n").unwrap();
    let (status, view) = cluster.get_json(leader, "/api/v1/workflows/fwd").unwrap();
    assert_eq!(status, 200, "{view}");
    let (_, info) = cluster.get_json(follower, "/api/v1/cluster").unwrap();
    assert_eq!(info["auth"], json!({"enabled": true, "peers_authenticated": true, "warning": null}));
}

#[test]
fn the_audit_trail_names_the_token_behind_each_change() {
    let (cluster, leader) = secure_cluster(1, &[]);
    let http = client();
    let url = cluster.url(leader);
    let alice = create_token(&http, &url, "alice", "operator");
    let bob = create_token(&http, &url, "bob", "operator");
    let yaml = "id: audited\ntasks:\n  - id: wait\n    type: shell\n    command: [\"sleep\", \"30\"]\n";
    let stored = http
        .post(format!("{url}/api/v1/workflows"))
        .bearer_auth(&alice)
        .header("content-type", "application/yaml")
        .body(yaml);
    assert_eq!(stored.send().unwrap().status().as_u16(), 201);
    let triggered: Value = http
        .post(format!("{url}/api/v1/workflows/audited/trigger"))
        .bearer_auth(&alice)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let execution_id = triggered["execution_id"].as_str().unwrap().to_string();
    let cancel = http.post(format!("{url}/api/v1/executions/{execution_id}/cancel")).bearer_auth(&bob).send().unwrap();
    assert_eq!(cancel.status().as_u16(), 200);
    let retry = http.post(format!("{url}/api/v1/executions/{execution_id}/retry")).bearer_auth(&alice).send().unwrap();
    assert_eq!(retry.status().as_u16(), 200);
    let pause = http.post(format!("{url}/api/v1/workflows/audited/pause")).bearer_auth(&bob).send().unwrap();
    assert_eq!(pause.status().as_u16(), 200);

    let workflow = cluster.get_json(leader, "/api/v1/workflows/audited").unwrap().1;
    assert_eq!((workflow["created_by"].as_str(), workflow["updated_by"].as_str()), (Some("alice"), Some("bob")));
    let execution = cluster.execution(leader, &execution_id).unwrap();
    assert_eq!(execution["created_by"], "alice");
    let trail: Vec<(String, String)> = execution["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["action"].as_str().unwrap().to_string(), a["by"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(trail, [("cancelled".to_string(), "bob".to_string()), ("retried".to_string(), "alice".to_string())]);
    cluster.post(leader, &format!("/api/v1/executions/{execution_id}/cancel"), "application/json", "").unwrap();
}

#[test]
fn a_worker_works_with_a_worker_token_and_not_with_a_viewer_one() {
    let (cluster, leader) = secure_cluster(1, &[]);
    let http = client();
    let url = cluster.url(leader);
    let worker_token = create_token(&http, &url, "w", "worker");
    let viewer_token = create_token(&http, &url, "v", "viewer");
    cluster
        .put_workflow(leader, "id: pulled\ntasks:\n  - id: job\n    type: worker\n    queue: demo\n    input: {n: 7}\n")
        .unwrap();
    let binary = example_worker_binary().expect("the worker example is built");
    let mut refused = WorkerProcess::start_with_env(
        &binary,
        &url,
        "demo",
        "viewer-w",
        1,
        cluster.dir(),
        &[("LOOM_TOKEN", &viewer_token)],
    )
    .expect("start worker");
    let mut worker = WorkerProcess::start_with_env(
        &binary,
        &url,
        "demo",
        "good-w",
        1,
        cluster.dir(),
        &[("LOOM_TOKEN", &worker_token)],
    )
    .expect("start worker");
    let execution_id = cluster.trigger(leader, "pulled", json!({})).unwrap();
    let done = cluster.wait_execution(leader, &execution_id, RUN).unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["tasks"][0]["attempts"][0]["worker_id"], "good-w");
    assert_eq!(done["tasks"][0]["output"]["n"], 7, "{done}");
    let workers = cluster.get_json(leader, "/api/v1/workers").unwrap().1;
    let ids: Vec<&str> = workers["items"].as_array().unwrap().iter().filter_map(|w| w["id"].as_str()).collect();
    assert_eq!(ids, ["good-w"], "a viewer token cannot register a worker");
    cluster
        .wait_for("the viewer's worker to report its refusal", READY, |_| refused.log_text().contains("403 forbidden"))
        .unwrap();
    let _ = refused.kill();
    let _ = worker.kill();
}

/// An open worker connection read line by line, as a worker in another language would.
struct RawWorker {
    lines: std::io::Lines<BufReader<reqwest::blocking::Response>>,
    session: String,
}

impl RawWorker {
    /// Connects worker `id` to `queues` with `token`; Err(status, body) if refused.
    fn connect(url: &str, token: &str, id: &str, queues: &[&str]) -> Result<RawWorker, (u16, Value)> {
        let http = Client::builder().timeout(Duration::from_secs(60)).build().expect("client");
        let response = http
            .post(format!("{url}/api/v1/workers/connect"))
            .bearer_auth(token)
            .json(&json!({"id": id, "queues": queues, "concurrency": 1}))
            .send()
            .expect("connect");
        let status = response.status().as_u16();
        if status != 200 {
            return Err((status, response.json().unwrap_or(Value::Null)));
        }
        let mut lines = BufReader::new(response).lines();
        let welcome: Value = serde_json::from_str(&lines.next().expect("a welcome").expect("read")).expect("json");
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        let session = welcome["session"].as_str().expect("session").to_string();
        Ok(RawWorker { lines, session })
    }

    /// The next task handed to this worker (pings skipped), within `timeout`.
    fn next_task(&mut self, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let line = self.lines.next().expect("the stream is open").expect("read");
            let event: Value = serde_json::from_str(&line).expect("json");
            if event["type"] == "task" {
                return event;
            }
        }
        panic!("no task within {timeout:?}");
    }
}

#[test]
fn a_worker_is_bound_to_its_token_and_a_token_to_its_queues() {
    let (cluster, leader) = secure_cluster(1, &[]);
    let http = client();
    let url = cluster.url(leader);
    let pool_a = create_token_with(&http, &url, json!({"name": "pool-a", "role": "worker", "queues": ["demo"]}));
    let pool_b = create_token(&http, &url, "pool-b", "worker");
    cluster
        .put_workflow(leader, "id: pulled\ntasks:\n  - {id: job, type: worker, queue: demo, input: {n: 7}}\n")
        .unwrap();

    // A token limited to queues serves only those; limits are for worker tokens only.
    let (status, body) = RawWorker::connect(&url, &pool_a, "w-wide", &["demo", "billing"]).err().expect("refused");
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_worker")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap_or_default().contains("`billing`"), "{body}");
    let refused = http
        .post(format!("{url}/api/v1/tokens"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "eyes", "role": "viewer", "queues": ["demo"]}))
        .send()
        .unwrap();
    assert_eq!(refused.status().as_u16(), 400);

    let mut w1 = RawWorker::connect(&url, &pool_a, "w1", &["demo"]).expect("pool-a connects w1");
    let execution_id = cluster.trigger(leader, "pulled", json!({})).unwrap();
    let task = w1.next_task(RUN);
    let attempt = task["attempt_id"].as_str().expect("attempt id").to_string();
    let before = cluster.execution(leader, &execution_id).unwrap();

    // Another worker token can neither answer for w1's attempt nor drain or replace w1, and the
    // refusals name no holder.
    let as_b = |path: String, body: Value| {
        let response = http.post(format!("{url}{path}")).bearer_auth(&pool_b).json(&body).send().unwrap();
        (response.status().as_u16(), response.json::<Value>().unwrap_or(Value::Null))
    };
    let attempt_path = format!("/api/v1/workers/w1/attempts/{attempt}");
    for (what, path, body) in [
        ("heartbeat", format!("{attempt_path}/heartbeat"), json!({})),
        ("complete", format!("{attempt_path}/complete"), json!({"status": "succeeded", "output": {"forged": true}})),
        ("release", format!("{attempt_path}/release"), json!({})),
    ] {
        let (status, body) = as_b(path, body);
        assert_eq!((status, body["error"]["code"].as_str()), (409, Some("stale_attempt")), "{what}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(!message.contains("w1") && !message.contains("pool-a"), "{what} names the holder: {message}");
    }
    let (status, body) = as_b("/api/v1/workers/w1/drain".into(), json!({"session": w1.session}));
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "drain: {body}");
    let (status, body) = RawWorker::connect(&url, &pool_b, "w1", &["demo"]).err().expect("replacing w1 is refused");
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "replace: {body}");
    let workers = cluster.get_json(leader, "/api/v1/workers").unwrap().1;
    assert_eq!(workers["items"][0]["draining"], false, "{workers}");
    let after = cluster.execution(leader, &execution_id).unwrap();
    assert_eq!(before["tasks"], after["tasks"], "refused requests change nothing");

    // The worker's own token completes it.
    let response = http
        .post(format!("{url}{attempt_path}/complete"))
        .bearer_auth(&pool_a)
        .json(&json!({"status": "succeeded", "output": {"n": 7}}))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let done = cluster.wait_execution(leader, &execution_id, RUN).unwrap();
    assert_eq!((done["status"].as_str(), &done["tasks"][0]["output"]), (Some("succeeded"), &json!({"n": 7})));
}

#[test]
fn a_token_over_its_rate_gets_429_with_retry_after() {
    let (cluster, leader) = secure_cluster(1, &[("LOOM_RATE_LIMIT", "5"), ("LOOM_RATE_BURST", "5")]);
    let http = client();
    let url = cluster.url(leader);
    let token = create_token(&http, &url, "busy", "viewer");
    cluster
        .wait_for("the token to work", READY, |_| {
            http.get(format!("{url}/healthz")).bearer_auth(&token).send().is_ok_and(|r| r.status() == 200)
        })
        .unwrap();
    let statuses: Vec<(u16, Option<String>)> = (0..12)
        .map(|_| {
            let r = http.get(format!("{url}/api/v1/workflows?consistency=stale")).bearer_auth(&token).send().unwrap();
            (r.status().as_u16(), r.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(String::from))
        })
        .collect();
    let limited: Vec<&(u16, Option<String>)> = statuses.iter().filter(|(s, _)| *s == 429).collect();
    assert!(!limited.is_empty(), "12 requests at once against 5/s with a burst of 5: {statuses:?}");
    assert!(statuses.iter().take(5).all(|(s, _)| *s == 200), "the burst passes: {statuses:?}");
    assert!(limited.iter().all(|(_, retry)| retry.as_deref() == Some("1")), "{statuses:?}");
    // Other tokens have their own budget; a 429 stored nothing and the node still answers.
    let other = http.get(format!("{url}/api/v1/workflows")).bearer_auth(ADMIN).send().unwrap();
    assert_eq!(other.status().as_u16(), 200);
}

#[test]
fn an_open_node_says_so() {
    let mut cluster = Cluster::start(BIN, ClusterOptions::new(1)).expect("start");
    let leader = cluster.wait_ready(READY).unwrap();
    let (_, info) = cluster.get_json(leader, "/api/v1/cluster").unwrap();
    assert_eq!(info["auth"]["enabled"], false);
    assert!(info["auth"]["warning"].as_str().unwrap().contains("LOOM_ADMIN_TOKEN"), "{info}");
    assert!(cluster.log_text(leader).contains("runs open"), "the start-up log warns");
    // Every answer carries a request id: the caller's if sane, else a fresh one.
    let http = client();
    let echoed = http.get(format!("{}/healthz", cluster.url(leader))).header("x-request-id", "abc-123").send().unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "abc-123");
    let fresh = http.get(format!("{}/api/v1/nowhere", cluster.url(leader))).send().unwrap();
    assert_eq!(fresh.status().as_u16(), 404);
    assert_eq!(fresh.headers()["x-request-id"].len(), 32);
}

fn task_error<'v>(execution: &'v Value, task: &str) -> &'v str {
    let run = execution["tasks"].as_array().unwrap().iter().find(|t| t["id"] == task).expect("task");
    run["attempts"][0]["error"].as_str().unwrap_or("")
}

#[test]
fn a_node_enforces_its_task_policy() {
    let mut cluster = Cluster::start(
        BIN,
        ClusterOptions::new(1)
            .env("LOOM_SHELL_ALLOW", "true,sh")
            .env("LOOM_SHELL_OUTPUT_MB", "1")
            .env("LOOM_SHELL_CPU_SECS", "1")
            .env("LOOM_SHELL_OPEN_FILES", "64")
            .env("LOOM_HTTP_ALLOW", "10.9.9.0/24"),
    )
    .expect("start");
    let leader = cluster.wait_ready(READY).unwrap();
    let yaml = r#"
id: guarded
tasks:
  - id: allowed
    type: shell
    command: ["true"]
  - id: path_swap
    type: shell
    command: ["true"]
    env: {PATH: /nonexistent}
  - id: not_listed
    type: shell
    command: ["python3", "-c", "pass"]
  - id: noisy
    type: shell
    command: "yes loom | head -c 3000000"
  - id: spinning
    type: shell
    command: "while :; do :; done"
    timeout: 30s
  - id: files
    type: shell
    command: "ulimit -n"
  - id: metadata
    type: http
    url: http://169.254.169.254/latest/meta-data
"#;
    cluster.put_workflow(leader, yaml).unwrap();
    let id = cluster.trigger(leader, "guarded", json!({})).unwrap();
    let done = cluster.wait_execution(leader, &id, RUN).unwrap();
    let status = |task: &str| {
        done["tasks"].as_array().unwrap().iter().find(|t| t["id"] == task).unwrap()["status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(status("allowed"), "succeeded", "{done}");
    assert_eq!(status("path_swap"), "succeeded", "a task's PATH cannot swap the allowed program: {done}");
    assert_eq!(status("files"), "succeeded", "{done}");
    assert!(task_error(&done, "not_listed").contains("`python3` is not in this node's shell allow-list"), "{done}");
    assert!(task_error(&done, "noisy").contains("output passed the limit of 1048576 bytes"), "{done}");
    assert!(task_error(&done, "spinning").contains("CPU time limit"), "{done}");
    let metadata = task_error(&done, "metadata");
    assert!(metadata.contains("169.254.169.254:80") && metadata.contains("link-local"), "{done}");
    let logs =
        cluster.http().get(format!("{}/api/v1/executions/{id}/logs?task=files", cluster.url(leader))).send().unwrap();
    assert!(logs.text().unwrap().lines().any(|l| l.trim() == "64"), "the open-files limit reaches the process");

    let mut off = Cluster::start(BIN, ClusterOptions::new(1).env("LOOM_SHELL_TASKS", "off")).expect("start");
    let node = off.wait_ready(READY).unwrap();
    off.put_workflow(node, "id: s\ntasks:\n  - id: a\n    type: shell\n    command: [\"true\"]\n").unwrap();
    let id = off.trigger(node, "s", json!({})).unwrap();
    let done = off.wait_execution(node, &id, RUN).unwrap();
    assert_eq!(done["status"], "failed");
    assert!(task_error(&done, "a").contains("shell tasks are disabled"), "{done}");
}
