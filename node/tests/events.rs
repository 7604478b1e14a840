//! Event triggers on a real three-node cluster with a real HTTP backend on 127.0.0.1: an event
//! sent twice (across a leader kill) starts one execution per matching workflow, filters that do
//! not match start nothing, chained workflows start once per upstream end, and webhooks refuse
//! callers who cannot prove the secret, storing nothing.

use std::time::{Duration, Instant};

use linkloom_api::webhook::{github_signature, stripe_signature};
use linkloom_harness::backend::Backend;
use linkloom_harness::{Cluster, ClusterOptions};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_loom-node");
const READY: Duration = Duration::from_secs(30);
const RUN: Duration = Duration::from_secs(60);

fn cluster(options: ClusterOptions) -> (Cluster, u64, u64) {
    let mut cluster = Cluster::start(BIN, options).expect("start cluster");
    let leader = cluster.wait_ready(READY).expect("ready");
    let follower = cluster.ids().into_iter().find(|id| *id != leader).expect("a follower");
    (cluster, leader, follower)
}

/// Sends an event through `via`, retrying (bounded) while the cluster has no leader.
fn send(cluster: &Cluster, via: u64, body: &Value) -> (u16, Value) {
    let deadline = Instant::now() + READY;
    loop {
        let answer = cluster.post(via, "/api/v1/events", "application/json", body.to_string());
        match answer {
            Ok((status, body)) if status != 503 && status != 500 => return (status, body),
            other if Instant::now() > deadline => panic!("sending an event: {other:?}\n{}", cluster.logs_tail(30)),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// The executions of `workflow`, as node `via` lists them.
fn executions_of(cluster: &Cluster, via: u64, workflow: &str) -> Vec<Value> {
    match cluster.get_json(via, &format!("/api/v1/executions?workflow={workflow}")) {
        Ok((200, page)) => page["items"].as_array().cloned().unwrap_or_default(),
        other => panic!("listing executions of {workflow}: {other:?}"),
    }
}

fn started(answer: &Value) -> Vec<String> {
    answer["outcomes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["execution_id"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn an_event_sent_twice_across_a_leader_kill_starts_one_execution_per_matching_workflow() {
    let backend = Backend::start().expect("backend");
    let (mut cluster, leader, via) = cluster(ClusterOptions::new(3));
    let workflow = |id: &str, filter: &str| {
        format!(
            "id: {id}\ntriggers:\n  - event: order.created\n{filter}tasks:\n  - id: ship\n    type: http\n    url: {url}/echo\n    input: {{order: \"{{{{ event.payload.order_id }}}}\", by: \"{{{{ event.name }}}}\"}}\n",
            url = backend.url
        )
    };
    cluster.put_workflow(via, &workflow("fulfil", "    filter: {region: eu}\n")).unwrap();
    cluster.put_workflow(via, &workflow("audit", "")).unwrap();
    cluster.put_workflow(via, &workflow("americas", "    filter: {region: us}\n")).unwrap();

    let event = json!({"name": "order.created", "id": "ev-1", "payload": {"order_id": "o-1", "region": "eu"}});
    let (status, first) = send(&cluster, via, &event);
    assert_eq!(status, 202, "{first}");
    assert_eq!(started(&first), vec!["audit:ev-ev-1", "fulfil:ev-ev-1"]);
    assert_eq!(first["repeated"], false);

    // The leader dies; the client, not knowing whether it got through, sends again elsewhere.
    cluster.kill(leader).expect("kill the leader");
    let survivor = cluster.ids().into_iter().find(|id| *id != leader && *id != via).expect("a survivor");
    let (status, again) = send(&cluster, survivor, &event);
    assert_eq!(status, 200, "a repeat is acknowledged: {again}");
    assert_eq!(again["repeated"], true);
    assert_eq!(started(&again), started(&first));

    for id in started(&first) {
        let done = cluster.wait_execution(survivor, &id, RUN).unwrap();
        assert_eq!(done["status"], "succeeded", "{done:#}");
        assert_eq!(done["trigger"], "event");
        assert_eq!(done["event"]["id"], "ev-1");
        assert_eq!(done["event"]["payload"]["order_id"], "o-1");
    }
    for workflow in ["fulfil", "audit"] {
        let runs = executions_of(&cluster, survivor, workflow);
        assert_eq!(runs.len(), 1, "{workflow}: {runs:#?}");
    }
    assert!(executions_of(&cluster, survivor, "americas").is_empty(), "a filter that does not match starts nothing");
    // The backend saw one request per execution, with the payload rendered in.
    let requests = backend.received();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    for r in &requests {
        assert_eq!(r.body["input"], json!({"order": "o-1", "by": "order.created"}));
    }

    // The same id for another payload is a mistake, not a retry; a bad name is named.
    let (status, body) = send(&cluster, survivor, &json!({"name": "order.created", "id": "ev-1", "payload": {"x": 1}}));
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("event_id_reused")), "{body}");
    let (status, body) = send(&cluster, survivor, &json!({"name": "no spaces", "payload": {}}));
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_event")), "{body}");

    // GET /api/v1/events lists it with what it started.
    let (status, listed) = cluster.get_json(survivor, "/api/v1/events?name=order.created&cursor=").unwrap();
    assert_eq!(status, 200);
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed["items"][0]["id"], "ev-1");
    assert_eq!(listed["items"][0]["outcomes"].as_array().map(Vec::len), Some(2));
    let (status, past) = cluster.get_json(survivor, "/api/v1/events?cursor=%23").unwrap();
    assert_eq!((status, past["items"].as_array().map(Vec::len)), (200, Some(0)), "{past}");
}

#[test]
fn a_chained_workflow_starts_once_per_upstream_end() {
    let backend = Backend::start().expect("backend");
    let (cluster, _, via) = cluster(ClusterOptions::new(3));
    let url = &backend.url;
    cluster
        .put_workflow(via, &format!("id: extract\ntasks:\n  - {{id: pull, type: http, url: '{url}/echo', input: {{n: '{{{{ params.n }}}}'}}}}\n"))
        .unwrap();
    cluster
        .put_workflow(
            via,
            &format!(
                "id: report\ntriggers: [{{workflow: extract}}]\ntasks:\n  - {{id: send, type: http, url: '{url}/echo', input: {{after: '{{{{ event.payload.execution_id }}}}'}}}}\n"
            ),
        )
        .unwrap();
    cluster
        .put_workflow(via, &format!("id: pager\ntriggers: [{{workflow: extract, on: failed}}]\ntasks:\n  - {{id: page, type: http, url: '{url}/echo'}}\n"))
        .unwrap();
    // A cycle is refused at registration, with its path.
    let cyclic = format!(
        "id: extract\ntriggers: [{{workflow: report}}]\ntasks:\n  - {{id: pull, type: http, url: '{url}/echo'}}\n"
    );
    let (status, body) = cluster.post(via, "/api/v1/workflows", "application/yaml", cyclic).unwrap();
    assert_eq!(status, 422, "{body}");
    let problem = &body["error"]["details"]["problems"][0];
    assert_eq!(problem["path"], "triggers[0].workflow", "{body}");
    assert_eq!(problem["message"], "chaining cycle: extract -> report -> extract", "{body}");

    let mut upstream = Vec::new();
    for n in 0..2 {
        let id = cluster.trigger(via, "extract", json!({"n": n})).unwrap();
        assert_eq!(cluster.wait_execution(via, &id, RUN).unwrap()["status"], "succeeded");
        upstream.push(id);
    }
    cluster
        .wait_for("two chained reports to end", RUN, |c| {
            let runs = executions_of(c, via, "report");
            runs.len() == 2 && runs.iter().all(|r| r["status"] == "succeeded")
        })
        .unwrap();
    let reports = executions_of(&cluster, via, "report");
    let mut after: Vec<String> =
        reports.iter().map(|r| r["event"]["id"].as_str().unwrap_or_default().to_string()).collect();
    after.sort();
    upstream.sort();
    assert_eq!(after, upstream, "one report per upstream end");
    assert!(reports.iter().all(|r| r["trigger"] == "workflow" && r["event"]["name"] == "workflow.extract.succeeded"));
    assert_eq!(backend.received_for("send").len(), 2);
    assert!(executions_of(&cluster, via, "pager").is_empty(), "nothing failed");
}

#[test]
fn webhooks_refuse_callers_without_the_secret_and_store_nothing() {
    let (cluster, _, via) =
        cluster(ClusterOptions::new(3).env("LOOM_WEBHOOK_SECRETS", "gh=s3cret-gh,stripe=whsec_abc"));
    cluster
        .put_workflow(
            via,
            "id: deploy\ntriggers:\n  - {webhook: push, auth: github, secret: gh}\n  - {webhook: paid, auth: stripe, secret: stripe}\n  - {webhook: ops, auth: bearer, secret: gh}\ntasks:\n  - {id: t, type: worker, queue: deploys, input: {ref: '{{ event.payload.ref }}'}}\n",
        )
        .unwrap();
    // A webhook naming a secret the nodes do not hold is refused at registration.
    let unknown = "id: nosecret\ntriggers: [{webhook: x, auth: github, secret: missing}]\ntasks: [{id: t, type: worker, queue: q}]\n";
    let (status, body) = cluster.post(via, "/api/v1/workflows", "application/yaml", unknown).unwrap();
    assert_eq!(
        (status, body["error"]["details"]["problems"][0]["path"].as_str()),
        (422, Some("triggers[0].secret")),
        "{body}"
    );

    let hook = |name: &str, headers: &[(&str, String)], body: &str| -> (u16, Value) {
        let mut request = cluster
            .http()
            .post(format!("{}/api/v1/hooks/deploy/{name}", cluster.url(via)))
            .header("content-type", "application/json");
        for (k, v) in headers {
            request = request.header(*k, v);
        }
        let response = request.body(body.to_string()).send().expect("webhook call");
        let status = response.status().as_u16();
        (status, response.json().unwrap_or(Value::Null))
    };
    let body = r#"{"ref":"refs/heads/main"}"#;

    // Refused: a wrong signature, a signature of another body, none at all, a wrong bearer.
    let bad = [
        hook("push", &[("x-hub-signature-256", github_signature("wrong", body.as_bytes()))], body),
        hook("push", &[("x-hub-signature-256", github_signature("s3cret-gh", b"{}"))], body),
        hook("push", &[], body),
        hook("ops", &[("authorization", "Bearer nope".to_string())], body),
        hook("paid", &[("stripe-signature", stripe_signature("whsec_abc", 1_000, body.as_bytes()))], body),
    ];
    for (status, answer) in &bad {
        assert_eq!((*status, answer["error"]["code"].as_str()), (401, Some("invalid_signature")), "{answer}");
    }
    let (status, _) = hook("nope", &[], body);
    assert_eq!(status, 404);
    let (_, events) = cluster.get_json(via, "/api/v1/events").unwrap();
    assert_eq!(events["items"].as_array().map(Vec::len), Some(0), "nothing stored: {events}");
    assert!(executions_of(&cluster, via, "deploy").is_empty());

    // Accepted: each scheme with the secret. A signed call's id is its body's hash: a redelivery,
    // or a captured call replayed under another (unsigned) delivery id, starts nothing new.
    let delivery = |id: &str| ("x-github-delivery", id.to_string());
    let signed = ("x-hub-signature-256", github_signature("s3cret-gh", body.as_bytes()));
    let (status, first) = hook("push", &[signed.clone(), delivery("72d3162e-cc78-11e3-81ab-4c9367dc0958")], body);
    assert_eq!(status, 202, "{first}");
    assert_eq!(first["source"], "webhook");
    let id = first["id"].as_str().unwrap_or_default().to_string();
    assert!(id.starts_with("sha256-") && id.len() == 47, "{first}");
    assert_eq!(started(&first), vec![format!("deploy:ev-{id}")]);
    let (status, again) = hook("push", &[signed, delivery("a-replay")], body);
    assert_eq!((status, again["repeated"].as_bool()), (200, Some(true)), "{again}");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let (status, paid) =
        hook("paid", &[("stripe-signature", stripe_signature("whsec_abc", now, body.as_bytes()))], body);
    assert_eq!(status, 202, "{paid}");
    // A bearer call names its delivery in a header.
    let bearer = ("authorization", "Bearer s3cret-gh".to_string());
    let (status, ops) = hook("ops", &[bearer.clone(), ("x-loom-event-id", "deploy-42".to_string())], r#"{"ref":"v2"}"#);
    assert_eq!((status, started(&ops)), (202, vec!["deploy:ev-deploy-42".to_string()]), "{ops}");
    let runs = executions_of(&cluster, via, "deploy");
    assert_eq!(runs.len(), 3, "{runs:#?}");
    assert!(runs.iter().all(|r| r["trigger"] == "webhook"));
}
